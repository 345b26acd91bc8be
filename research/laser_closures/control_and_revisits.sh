#!/usr/bin/env bash
# Two experiments on the same 10,000-frame bags of the three trained worlds (issue 25/26):
#  m_img3: the control that isolates the closure rule (image closures, shipped h, new bags)
#  m_rv3:  h warm-started with laser-verified revisit positives in stage 1, then laser graphs
# Each then benchmarked on seeds 1 (4 per bin) and 2 (5 per bin), plain and heading rule.
# Run from the repository root: research/laser_closures/control_and_revisits.sh (resumable:
# a finished model is not retrained, o4a train resumes from its work dir).
set -u
B3="data/bags/two_rooms_s0 data/bags/four_rooms_s0 data/bags/apartment_s0"
O4A=.venv/bin/o4a
bench() {  # model name
  for s in 1 2; do
    n=$([ $s = 1 ] && echo 4 || echo 5)
    [ -f runs/exp/b_$1_s$s/results.json ] || nice -n 3 $O4A bench --model runs/exp/$1 --worlds two_rooms four_rooms apartment \
      --episodes $n --seed $s --policy o4a,o4a-heading --jobs 1 --trajectories 0 --no-progress \
      --out runs/exp/b_$1_s$s > runs/exp/b_$1_s$s.log 2>&1
  done
}
img() {
  [ -f runs/exp/m_img3/meta.json ] || nice -n 3 $O4A train --base models/o4a_default --bags $B3 --out runs/exp/m_img3 \
    --work-dir runs/exp/w_img3 --threads 1 --set train.graph_closures=image > runs/exp/train_img3.log 2>&1
  bench m_img3
}
rv() {
  [ -f runs/exp/m_rv3/meta.json ] || nice -n 3 $O4A train --init models/o4a_default --bags $B3 --out runs/exp/m_rv3 \
    --work-dir runs/exp/w_rv3 --threads 1 --set train.revisit_share=0.3 --set train.graph_closures=laser \
    > runs/exp/train_rv3.log 2>&1
  bench m_rv3
}
img & rv & wait
echo done
