#!/usr/bin/env bash
# `make demo` over seeds 0-9: runs `o4a demo --seed N` (simulator in lockstep, so each
# seed's run is the same on any machine) and prints one table row per seed: outcome,
# steps, final distance to the goal, wall time, then the success count.
#
#   scripts/demo_seeds.sh                               # seeds 0-9, the demo's defaults
#   SEEDS="0 1 2" scripts/demo_seeds.sh --max-steps 300 # extra arguments go to o4a demo
#
# Environment: SEEDS (0..9), OUT (runs/demo_seeds: one folder per seed with the
# trajectory picture, goal images and episode.json).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SEEDS=${SEEDS:-0 1 2 3 4 5 6 7 8 9}
OUT=${OUT:-runs/demo_seeds}
mkdir -p "$OUT"
for seed in $SEEDS; do
    rm -f "$OUT/seed_$seed/episode.json"
    rc=0
    $PY -m o4a_nav.cli demo --seed "$seed" --quiet --out "$OUT/seed_$seed" "$@" > "$OUT/seed_$seed.log" 2>&1 || rc=$?
    if [[ $rc -gt 1 || ! -f "$OUT/seed_$seed/episode.json" ]]; then
        echo "seed $seed: o4a demo failed (exit $rc); see $OUT/seed_$seed.log" >&2
        tail -5 "$OUT/seed_$seed.log" >&2
    fi
done
$PY - "$OUT" $SEEDS <<'PY'
import json, sys
from pathlib import Path
out, seeds = Path(sys.argv[1]), sys.argv[2:]
rows, ok, first = [], 0, None
for s in seeds:
    f = out / f"seed_{s}" / "episode.json"
    if not f.is_file():
        rows.append(f"| {s} | (no result) | | | | | |")
        continue
    e = json.loads(f.read_text())
    first = first or e
    ok += bool(e["success"])
    rows.append(f"| {s} | {e['world']} {e['difficulty']} | {e['geodesic_m']:.2f} | {e['outcome']} | {e['steps']} | "
                f"{e['final_distance_m']:.2f} | {e['wall_s']:.0f} |")
print(f"o4a demo over seeds {' '.join(seeds)}" + (f" (model {first['model']}, max {first['max_steps']} steps)" if first else ""))
print()
print("| seed | episode | geodesic [m] | outcome | steps | final distance [m] | wall [s] |")
print("|---|---|---|---|---|---|---|")
print("\n".join(rows))
print()
print(f"{ok} of {len(seeds)} succeed (STOP within 1 m of the goal)")
PY
