#!/usr/bin/env bash
# The README benchmark: the graph baseline's memory/latency vs graph size next to O4A's
# (about a minute), then every policy on the same seeded episodes over the worlds the
# shipped model was trained on. Progress to the terminal/log, outputs under runs/.
# results.json/md are checkpointed every 2 minutes ("partial": true) while it runs.
#
#   scripts/run_benchmark.sh                      # 20 episodes per world and difficulty
#   EPISODES=5 OUT=runs/bench_small scripts/run_benchmark.sh
#   nohup scripts/run_benchmark.sh > runs/bench_readme.log 2>&1 &
#
# Environment: MODEL (models/o4a_default), EPISODES (20), SEED (0), JOBS (2), POLICIES
# (comma separated; default all), SCALING (1: the graph-scaling run first; 0 skips it), OUT
# (runs/bench_readme), WORLDS (default: the model's worlds), FIGURES (docs/figures:
# where the figures are copied as bench_*.png; empty to skip).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
MODEL=${MODEL:-models/o4a_default}
EPISODES=${EPISODES:-20}
SEED=${SEED:-0}
JOBS=${JOBS:-2}
OUT=${OUT:-runs/bench_readme}
FIGURES=${FIGURES-docs/figures}
WORLD_ARGS=()
if [[ -n "${WORLDS:-}" ]]; then WORLD_ARGS=(--worlds $WORLDS); fi
POLICY_ARGS=()
if [[ -n "${POLICIES:-}" ]]; then POLICY_ARGS=(--policy "$POLICIES"); fi

if [[ "${SCALING:-1}" != 0 ]]; then
    start=$(date +%s)
    $PY -m o4a_nav.cli bench --model "$MODEL" "${WORLD_ARGS[@]}" --seed "$SEED" --out "$OUT" \
        --policy none --graph-scaling
    echo "graph scaling wall time: $(( $(date +%s) - start )) s"
    if [[ -n "$FIGURES" ]]; then
        mkdir -p "$FIGURES"
        cp "$OUT/graph_scaling.png" "$FIGURES/bench_graph_scaling.png"
    fi
fi

start=$(date +%s)
$PY -m o4a_nav.cli bench --model "$MODEL" "${WORLD_ARGS[@]}" "${POLICY_ARGS[@]}" --episodes "$EPISODES" \
    --seed "$SEED" --jobs "$JOBS" --out "$OUT" --trajectories 1
echo "benchmark wall time: $(( $(date +%s) - start )) s"

if [[ -n "$FIGURES" ]]; then
    cp "$OUT/sr_spl.png" "$FIGURES/bench_sr_spl.png"
    for f in "$OUT"/traj_*_00.png; do
        [[ -e "$f" ]] && cp "$f" "$FIGURES/bench_$(basename "$f")"
    done
    echo "figures copied to $FIGURES/bench_*.png"
fi
