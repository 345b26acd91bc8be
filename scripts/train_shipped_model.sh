#!/usr/bin/env bash
# Train the shipped model models/o4a_default from exploration bags of built-in worlds.
# Background-friendly (nice, 2 torch threads); progress lines go to the log in runs/.
#   nohup scripts/train_shipped_model.sh > runs/train_shipped.log 2>&1 &
# Bags: `o4a collect --world W --steps 10000 --seed 0 --out data/bags/W_s0` (random walk,
# 20 trajectories x 500 steps); collected here when missing.
# All four stages on WORLDS_MAIN, then each of WORLDS_EXTRA added with --base (its graph and
# p+ only: h, f-dagger and f are shared). WORLDS_EXTRA="" adds none.
# INIT=DIR warm-starts h, f-dagger and f from the model in DIR (`o4a train --init`); EPOCHS
# then counts the new stage-1 epochs only.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
WORLDS_MAIN=${WORLDS_MAIN:-"two_rooms four_rooms"}
WORLDS_EXTRA=${WORLDS_EXTRA-apartment}
INIT=${INIT:-}
STEPS=${STEPS:-10000}
OUT=${OUT:-models/o4a_default}
EPOCHS=${EPOCHS:-120}
WORK=${WORK:-runs/train_o4a_default}
mkdir -p runs data/bags
bag() { echo "data/bags/${1}_s0"; }
for w in $WORLDS_MAIN $WORLDS_EXTRA; do
  [ -d "$(bag "$w")" ] || nice -n 5 $PY -m o4a_nav.cli collect --world "$w" --steps "$STEPS" --seed 0 --out "$(bag "$w")" -q
done
MAIN_BAGS=$(for w in $WORLDS_MAIN; do bag "$w"; done)
start=$(date +%s)
nice -n 5 $PY -m o4a_nav.cli train --bags $MAIN_BAGS --out "$OUT" --threads 2 \
  --set train.local_epochs="$EPOCHS" --work-dir "$WORK" ${INIT:+--init "$INIT"}
echo "main training wall time: $(( $(date +%s) - start )) s"
for w in $WORLDS_EXTRA; do
  nice -n 5 $PY -m o4a_nav.cli train --base "$OUT" --bags "$(bag "$w")" --out "$OUT" --threads 2 \
    --work-dir "${WORK}_$w"
done
echo "total wall time: $(( $(date +%s) - start )) s"
du -sh "$OUT" "$OUT/weights.pt"
