#!/usr/bin/env bash
# The backbone job in the background (nice, 2 torch threads): continues the job in
# runs/backbone (or STATE) for HOURS hours, logging to STATE/job.log; run it again to go on
# (it resumes from the last finished epoch after a kill). What it does and publishes:
# docs/LEARNING.md, "The backbone job". Extra arguments go to `o4a backbone`, e.g.
#   scripts/backbone_job.sh --device cuda
#   HOURS=8 scripts/backbone_job.sh
# Watch it: tail -f runs/backbone/job.log; what it measured: runs/backbone/state.json.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${STATE:-runs/backbone}
HOURS=${HOURS:-2}
mkdir -p "$STATE"
nohup nice -n 10 .venv/bin/o4a backbone --state "$STATE" --hours "$HOURS" "$@" >> "$STATE/job.log" 2>&1 &
echo "backbone job running in the background (pid $!): tail -f $STATE/job.log"
