#!/usr/bin/env bash
# Train the shipped model models/o4a_default from exploration bags of built-in worlds.
# Runs in the background-friendly way (nice, 2 torch threads); log in runs/.
#   scripts/train_shipped_model.sh            # collect missing bags, train, add worlds with --base
# Bags: `o4a collect --world W --steps 10000 --seed 0 --out data/bags/W_s0` (random walk, 20 x 500 steps).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
WORLDS_MAIN=${WORLDS_MAIN:-"two_rooms four_rooms"}      # h, f-dagger, f trained on these
WORLDS_EXTRA=${WORLDS_EXTRA:-"apartment"}               # added afterwards with --base (p+ only)
STEPS=${STEPS:-10000}
OUT=${OUT:-models/o4a_default}
EPOCHS=${EPOCHS:-4}
mkdir -p runs data/bags
bag() { echo "data/bags/${1}_s0"; }
for w in $WORLDS_MAIN $WORLDS_EXTRA; do
  [ -d "$(bag "$w")" ] || nice -n 5 $PY -m o4a_nav.cli collect --world "$w" --steps "$STEPS" --seed 0 --out "$(bag "$w")" -q
done
MAIN_BAGS=$(for w in $WORLDS_MAIN; do bag "$w"; done)
start=$(date +%s)
nice -n 5 $PY -m o4a_nav.cli train --bags $MAIN_BAGS --out "$OUT" --threads 2 \
  --set train.local_epochs="$EPOCHS" --set train.freeze_h_epochs=1 --work-dir runs/train_o4a_default
for w in $WORLDS_EXTRA; do
  nice -n 5 $PY -m o4a_nav.cli train --base "$OUT" --bags "$(bag "$w")" --out "$OUT" --threads 2 \
    --work-dir "runs/train_o4a_default_$w"
done
echo "wall time: $(( $(date +%s) - start )) s"
du -sh "$OUT" "$OUT/weights.pt"
