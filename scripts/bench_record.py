#!/usr/bin/env python3
"""How much of a robot-shaped stream `o4a record` keeps (a measurement, not a test).

A publisher process offers two 640x480 bgr8 cameras at 15 Hz and nav_msgs/Odometry at
30 Hz (sensor-data QoS, like a camera driver and a base: about 28 MB/s) for --seconds;
`o4a record` (a separate process, as a user runs it) records them; then the recorder is
stopped with SIGINT and the bag is counted. Each message carries its publication index
in its header stamp, so what is missing is known per topic. With --sink count a plain
rclpy subscriber that only counts (no writing) takes the recorder's place: when it misses
messages too, the loss is in the publisher or the transport, not in the recorder.

The figures: offered and recorded messages per topic, the offered rate (MB/s) and the
sustained recorded rate (bytes written to the bag / seconds of publishing), and what the
recorder itself reported as dropped when it stopped.

Usage:
  .venv/bin/python scripts/bench_record.py [--seconds 15] [--sink record|count] [--out runs/bench_record.json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TOPICS = {"/front_camera/image_raw": "image", "/rear_camera/image_raw": "image", "/odom": "odom"}


def publisher(args) -> int:
    """Publish the stream; print {topic: published} as JSON on stdout at the end."""
    import numpy as np
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_record_publisher")
    pubs = {t: node.create_publisher(Image if k == "image" else Odometry, t, qos_profile_sensor_data)
            for t, k in TOPICS.items()}
    rng = np.random.default_rng(0)
    msgs = {}
    for t, kind in TOPICS.items():
        if kind == "image":
            m = Image()
            m.height, m.width, m.encoding, m.step = args.height, args.width, "bgr8", args.width * 3
            m.data = rng.integers(0, 256, args.height * args.width * 3, dtype=np.uint8).tobytes()
            m.header.frame_id = t.split("/")[1]
        else:
            m = Odometry()
            m.header.frame_id, m.child_frame_id = "odom", "base_link"
        msgs[t] = m
    # wait until the sink subscribes to every topic (discovery), as a robot's drivers run before
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(p.get_subscription_count() > 0 for p in pubs.values()):
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)
    period = {t: 1.0 / (args.camera_hz if k == "image" else args.odom_hz) for t, k in TOPICS.items()}
    count = dict.fromkeys(TOPICS, 0)
    t0 = time.monotonic()
    nxt = dict.fromkeys(TOPICS, t0)
    late = 0.0
    while True:
        now = time.monotonic()
        if now - t0 >= args.seconds:
            break
        t = min(nxt, key=nxt.get)
        if nxt[t] > now:
            time.sleep(nxt[t] - now)
        late = max(late, time.monotonic() - nxt[t])
        m = msgs[t]
        m.header.stamp.sec, m.header.stamp.nanosec = count[t], 0      # the publication index
        pubs[t].publish(m)
        count[t] += 1
        nxt[t] += period[t]
    elapsed = time.monotonic() - t0
    time.sleep(1.0)
    print(json.dumps({"published": count, "seconds": elapsed, "max_late_s": late}), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


def counter(args) -> int:
    """Only count (raw bytes, no writing) until SIGINT; print {topic: received} as JSON."""
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_record_counter")
    got = dict.fromkeys(TOPICS, 0)
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
    subs = [node.create_subscription(Image if k == "image" else Odometry, t,
                                     lambda m, t=t: got.__setitem__(t, got[t] + 1), qos, raw=True)
            for t, k in TOPICS.items()]
    stop = []
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    while not stop:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps({"received": got}), flush=True)
    del subs
    node.destroy_node()
    rclpy.shutdown()
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--camera-hz", type=float, default=15.0)
    ap.add_argument("--odom-hz", type=float, default=30.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--sink", choices=["record", "count"], default="record")
    ap.add_argument("--record-args", default="", help="extra arguments for o4a record")
    ap.add_argument("--pub-env", nargs="*", default=[], metavar="K=V", help="environment of the publisher only")
    ap.add_argument("--sink-env", nargs="*", default=[], metavar="K=V", help="environment of the recorder only")
    ap.add_argument("--out", default=None, help="write the figures here (JSON)")
    ap.add_argument("--role", choices=["bench", "publisher", "counter"], default="bench", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role == "publisher":
        return publisher(args)
    if args.role == "counter":
        return counter(args)

    env = dict(os.environ, ROS_DOMAIN_ID=str(random.randint(120, 200)), PYTHONPATH=str(REPO))
    pub_env = dict(env, **dict(kv.split("=", 1) for kv in args.pub_env))
    sink_env = dict(env, **dict(kv.split("=", 1) for kv in args.sink_env))
    me = [sys.executable, str(Path(__file__).resolve())]
    same = ["--seconds", str(args.seconds), "--camera-hz", str(args.camera_hz), "--odom-hz", str(args.odom_hz),
            "--width", str(args.width), "--height", str(args.height)]
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "bag"
        if args.sink == "record":
            sink = subprocess.Popen([sys.executable, "-m", "o4a_nav.cli", "record", *TOPICS, "-o", str(bag), "-q",
                                     *args.record_args.split()], cwd=REPO, env=sink_env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        else:
            sink = subprocess.Popen(me + ["--role", "counter"], cwd=REPO, env=sink_env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        time.sleep(2.0)
        pub = subprocess.run(me + same + ["--role", "publisher"], cwd=REPO, env=pub_env, capture_output=True, text=True,
                             timeout=args.seconds + 60)
        if pub.returncode != 0:
            sink.kill()
            print(pub.stderr[-3000:], file=sys.stderr)
            return 1
        offered = json.loads(pub.stdout.strip().splitlines()[-1])
        sink.send_signal(signal.SIGINT)
        out, err = sink.communicate(timeout=120)
        image_bytes = args.width * args.height * 3
        res = {"sink": args.sink, "seconds": round(offered["seconds"], 2), "published": offered["published"],
               "publisher_max_late_s": round(offered["max_late_s"], 3),
               "offered_MB_s": round(sum(n * (image_bytes if TOPICS[t] == "image" else 0)
                                         for t, n in offered["published"].items()) / offered["seconds"] / 1e6, 1)}
        if args.sink == "record":
            from o4a_nav import bagio

            counts = {t: n for t, (_, n) in bagio.topics(bag).items()}
            size = sum(f.stat().st_size for f in bag.iterdir())
            res.update({"recorded": counts, "bag_MB": round(size / 1e6, 1),
                        "sustained_MB_s": round(size / offered["seconds"] / 1e6, 1),
                        "recorder_report": [ln for ln in err.splitlines()
                                            if re.search(r"drop|lost|wrote|  /", ln)]})
        else:
            res["received"] = json.loads(out.strip().splitlines()[-1])["received"]
        kept = res.get("recorded", res.get("received", {}))
        res["kept_fraction"] = {t: round(kept.get(t, 0) / n, 3) if n else None for t, n in offered["published"].items()}
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
