#!/usr/bin/env bash
# The graph-pose diagnostic (d_G of a model's own graph at perfect localisation) of
# models' graphs, seed 1 (4 per bin) in the three trained worlds: what each graph is worth
# before p+. Usage: research/laser_closures/graph_pose.sh MODEL_DIR...  (-> runs/exp/gp_<name>_s1.json)
for m in "$@"; do
  n=$(basename "$m")
  [ -f runs/exp/gp_${n}_s1.json ] || nice -n 3 .venv/bin/o4a diagnose --mode graph-pose --model "$m" \
    --worlds two_rooms four_rooms apartment --episodes 4 --seed 1 --out runs/exp/gp_${n}_s1.json > runs/exp/gp_${n}_s1.log 2>&1
  python3 -c "import json,sys; print('$n', json.load(open('runs/exp/gp_${n}_s1.json'))['summary'])"
done
