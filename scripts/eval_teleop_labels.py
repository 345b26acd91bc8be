#!/usr/bin/env python3
"""How well `o4a train` labels continuous (joystick-like) driving from odometry, measured in
the simulator where the truth is known (a measurement, not a test).

Drives the sim robot with o4a_nav.sim.teleop (straight, turns in place, arcs, pauses; camera
15 Hz, odometry 30 Hz), writes the robot-style bag, reads it back with the training reader
(learning/dataset.read_bag: no action topic, so the odometry labels it) and scores every
labelled transition against the commanded motion between its two frames (label accuracy)
and against the true displacement (how far a FORWARD is from 0.25 m straight, a ROTATE from
15 deg).

Also drives stop-and-go primitives (`--style steps`), with odometry at its own rate
(`--odom-hz 10`) and camera stamps earlier than the image (`--image-delay`, `--image-jitter`,
seconds), and reports `true` (the transitions there are to label, see sim/teleop.score_bag),
`right` / `wrong` labels and `recall` (right / true).

Usage:
  .venv/bin/python scripts/eval_teleop_labels.py --world two_rooms --frames 3000 --out runs/teleop_two_rooms \
      [--odom-noise 0.02] [--json runs/teleop_labels.json]
  .venv/bin/python scripts/eval_teleop_labels.py --style steps --odom-hz 10 --image-delay 0.001 \
      --image-jitter 0.049 --frames 2000 --out runs/teleop_steps10
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default="two_rooms")
    ap.add_argument("--frames", type=int, default=3000, help="camera frames (15 Hz)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--odom-noise", type=float, default=0.0, help="relative odometry noise per step (wheel slip)")
    ap.add_argument("--compressed", action="store_true", help="JPEG CompressedImage cameras")
    ap.add_argument("--style", choices=["joystick", "steps"], default="joystick")
    ap.add_argument("--odom-hz", type=float, default=0.0, help="odometry rate (default: the control rate)")
    ap.add_argument("--control-hz", type=float, default=0.0,
                    help="physics / cmd_vel rate (default 30, 150 when --odom-hz 50: a multiple of the odometry "
                         "and camera rates)")
    ap.add_argument("--image-delay", type=float, default=0.0, help="camera stamps this many seconds early")
    ap.add_argument("--image-jitter", type=float, default=0.0, help="... plus uniform(0, this) per frame")
    ap.add_argument("--out", required=True, help="bag folder to write (must not exist)")
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args(argv)

    from o4a_nav.learning.dataset import read_bag
    from o4a_nav.sim.teleop import TeleopParams, score_bag, write_teleop_bag

    control = args.control_hz or (150.0 if args.odom_hz and 30.0 % args.odom_hz else 30.0)
    params = TeleopParams(odom_noise=args.odom_noise, style=args.style, odom_hz=args.odom_hz, control_hz=control,
                          image_delay=args.image_delay, image_jitter=args.image_jitter).validate()
    t0 = time.perf_counter()
    drive = write_teleop_bag(args.out, args.world, args.frames / params.camera_hz, seed=args.seed, params=params,
                             compressed=args.compressed)
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    d = read_bag(args.out)
    t_read = time.perf_counter() - t0
    score = score_bag(drive, d, params)
    out = {"world": args.world, "frames": len(drive["cameras"]), "seconds_driven": len(drive["ticks"]) / params.control_hz,
           "odom_noise": args.odom_noise, "seed": args.seed, "style": args.style,
           "odom_hz": args.odom_hz or params.control_hz, "control_hz": params.control_hz,
           "image_delay": args.image_delay, "image_jitter": args.image_jitter, "kept_frames": int(len(d.actions)),
           "segmentation": d.stats, "write_s": round(t_write, 1), "read_and_label_s": round(t_read, 1), **score}
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
