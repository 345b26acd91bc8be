#!/usr/bin/env bash
# Train the shipped model models/o4a_default from exploration bags of built-in worlds.
# Background-friendly (nice, 2 torch threads); progress lines go to the log in runs/.
#   nohup scripts/train_shipped_model.sh > runs/train_shipped.log 2>&1 &
# Bags: `o4a collect --world W --steps 10000 --seed 0 --out data/bags/W_s0` (random walk,
# 20 trajectories x 500 steps); collected here when missing.
#
# Phase 1: all four stages on WORLDS_MAIN with EPOCHS stage-1 epochs, then each of
#   WORLDS_EXTRA added with --base (its graph and p+ only). WORLDS_EXTRA="" adds none.
# Phase 2 (WARM_EPOCHS > 0): `o4a train --init <phase-1 model>` on WORLDS_MAIN + WORLDS_EXTRA:
#   h, f-dagger and f start from phase 1 and train WARM_EPOCHS more stage-1 epochs on all
#   the worlds (so h also learns the extra ones), then graphs, f and p+ for every world.
# Phase 3: each of WORLDS_ADD added to OUT with --base (graph and p+ only, on h as trained
#   in phases 1-2), in one `o4a train --base` run. WORLDS_ADD="" adds none.
# Phase 1's model is kept in $WORK/phase1_model (or written to OUT when WARM_EPOCHS=0).
# Defaults (120 + 52 epochs) are how models/o4a_default (v10) was made; about 3 h on 2 cores;
# phase 3 (the six other built-in worlds, session 9) adds about 10 min.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
WORLDS_MAIN=${WORLDS_MAIN:-"two_rooms four_rooms"}
WORLDS_EXTRA=${WORLDS_EXTRA-apartment}
STEPS=${STEPS:-10000}
OUT=${OUT:-models/o4a_default}
EPOCHS=${EPOCHS:-120}
WARM_EPOCHS=${WARM_EPOCHS:-52}
WORLDS_ADD=${WORLDS_ADD-"corridor_loop dead_ends maze office pillar_hall twin_rooms"}
WORK=${WORK:-runs/train_o4a_default}
mkdir -p runs data/bags
bag() { echo "data/bags/${1}_s0"; }
for w in $WORLDS_MAIN $WORLDS_EXTRA $WORLDS_ADD; do
  [ -d "$(bag "$w")" ] || nice -n 5 $PY -m o4a_nav.cli collect --world "$w" --steps "$STEPS" --seed 0 --out "$(bag "$w")" -q
done
MAIN_BAGS=$(for w in $WORLDS_MAIN; do bag "$w"; done)
ALL_BAGS=$(for w in $WORLDS_MAIN $WORLDS_EXTRA; do bag "$w"; done)
if [ "$WARM_EPOCHS" -gt 0 ]; then FIRST="$WORK/phase1_model"; else FIRST="$OUT"; fi
start=$(date +%s)
nice -n 5 $PY -m o4a_nav.cli train --bags $MAIN_BAGS --out "$FIRST" --threads 2 \
  --set train.local_epochs="$EPOCHS" --work-dir "$WORK"
echo "phase 1 main training wall time: $(( $(date +%s) - start )) s"
for w in $WORLDS_EXTRA; do
  nice -n 5 $PY -m o4a_nav.cli train --base "$FIRST" --bags "$(bag "$w")" --out "$FIRST" --threads 2 \
    --work-dir "${WORK}_$w"
done
echo "phase 1 wall time: $(( $(date +%s) - start )) s"
if [ "$WARM_EPOCHS" -gt 0 ]; then
  t2=$(date +%s)
  nice -n 5 $PY -m o4a_nav.cli train --init "$FIRST" --bags $ALL_BAGS --out "$OUT" --threads 2 \
    --set train.local_epochs="$WARM_EPOCHS" --work-dir "${WORK}_warm"
  echo "phase 2 (warm start on all worlds) wall time: $(( $(date +%s) - t2 )) s"
fi
if [ -n "$WORLDS_ADD" ]; then
  t3=$(date +%s)
  ADD_BAGS=$(for w in $WORLDS_ADD; do bag "$w"; done)
  nice -n 5 $PY -m o4a_nav.cli train --base "$OUT" --bags $ADD_BAGS --out "$OUT" --threads 2 \
    --work-dir "${WORK}_add"
  echo "phase 3 (graph and p+ of the added worlds) wall time: $(( $(date +%s) - t3 )) s"
fi
echo "total wall time: $(( $(date +%s) - start )) s"
du -sh "$OUT" "$OUT/weights.pt"
