"""o4a train: train the O4A networks (h, f-dagger, f, p+ per world) from exploration bags."""
from __future__ import annotations

HELP = "train an O4A model from exploration bags (all four stages), or add worlds to a model with --base"

EXAMPLES = """examples:
  o4a train --bags data/bags/two_rooms_s0 --out models/my_model                 # all four stages
  o4a train --base models/my_model --bags data/bags/apartment_s0 --out models/my_model   # add a place: p+ only
  o4a train --init models/my_model --bags data/bags/two_rooms_s0 data/bags/apartment_s0 --out models/my_model2
  o4a train --bags data/bags/robot_run1 --odom-topic /wheel/odom --world lab --out models/lab   # a teleop recording
"""


def add_arguments(p) -> None:
    p.add_argument("--bags", nargs="+", required=True, metavar="BAG",
                   help="rosbag2 folders written by `o4a collect` (or real-robot recordings with the same topics)")
    p.add_argument("--out", required=True, metavar="DIR", help="model directory to write (e.g. models/my_model)")
    p.add_argument("--base", metavar="MODEL",
                   help="keep h, f-dagger and f of this model; build the new worlds' graphs and train only their p+")
    p.add_argument("--init", metavar="MODEL",
                   help="warm start: h, f-dagger and f begin from this model's weights, then all four stages "
                        "train on --bags (e.g. to add a world to what h has learned; p+ heads start fresh)")
    p.add_argument("--preset", choices=["compact", "paper"], default="compact",
                   help="compact (default, CPU) or paper (ResNet-18 backbone, 256-d codes)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override one setting, e.g. --set train.local_epochs=20 --set model.embed_dim=256 (repeatable)")
    p.add_argument("--work-dir", metavar="DIR", help="checkpoints (default runs/train_<out name>)")
    p.add_argument("--no-resume", action="store_true", help="ignore checkpoints in the work dir and start over")
    p.add_argument("--world", metavar="NAME",
                   help="world name for bags without an o4a/world_name topic (default: the bag folder name); "
                        "a world file (.yaml) names the world and gives the report its true geodesics")
    p.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default 2)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="stage-1 device (default cpu); under torchrun: cpu = gloo, cuda = NCCL with one GPU per "
                        "process (docs/LEARNING.md, Scale-out)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing model directory at --out (it stays intact until the new one is complete)")

    t = p.add_argument_group("topics", "names in the bags, for recordings whose topics are not o4a's defaults")
    t.add_argument("--front-topic", default=None, metavar="TOPIC", help="front camera topic (default front_camera/image_raw)")
    t.add_argument("--rear-topic", default=None, metavar="TOPIC", help="rear camera topic (default rear_camera/image_raw)")
    t.add_argument("--front-info-topic", default=None, metavar="TOPIC",
                   help="sensor_msgs/CameraInfo of the front camera, whose intrinsics crop its images to the model's "
                        "square 90 deg view (default: beside the image topic, front_camera/camera_info; without "
                        "one the centred square)")
    t.add_argument("--rear-info-topic", default=None, metavar="TOPIC",
                   help="sensor_msgs/CameraInfo of the rear camera (default rear_camera/camera_info)")
    t.add_argument("--action-topic", default=None, metavar="TOPIC", help="action topic (default o4a/action)")
    t.add_argument("--pose-topic", default=None, metavar="TOPIC",
                   help="ground-truth pose topic, used only for the report (default ground_truth/pose)")
    t.add_argument("--odom-topic", default=None, metavar="TOPIC",
                   help="nav_msgs/Odometry topic that labels bags without an action topic (driven with a "
                        "joystick / velocities; default odom)")
    t.add_argument("--scan-topic", default=None, metavar="TOPIC",
                   help="sensor_msgs/LaserScan topic whose scans verify the loop closures (default scan; "
                        "train.graph_closures, docs/LEARNING.md)")
    t.add_argument("--motion-state-topic", default=None, metavar="TOPIC",
                   help="o4a_msgs/MotionState topic: motions not SUCCEEDED are never transitions "
                        "(default o4a/motion_state, used when present)")
    o = p.add_argument_group("odometry labels", "bags without an action topic (driven with a joystick or "
                             "velocities) are labelled from odometry: how a motion becomes an action")
    o.add_argument("--odom-forward", type=float, default=None, metavar="M",
                   help="odometry labels: advance that makes a FORWARD (default 0.25)")
    o.add_argument("--odom-rotate", type=float, default=None, metavar="DEG",
                   help="odometry labels: turn in place that makes a ROTATE (default 15)")
    o.add_argument("--odom-max-turn", type=float, default=None, metavar="DEG",
                   help="odometry labels: a FORWARD turns less than this (default 5; more is an arc, skipped)")
    o.add_argument("--odom-max-shift", type=float, default=None, metavar="M",
                   help="odometry labels: a ROTATE (and a FORWARD sideways) moves less than this "
                        "(default 0.05; more is an arc, skipped)")


def run(args) -> int:
    from pathlib import Path

    from o4a_nav.errors import UserError
    from o4a_nav.learning.dataset import TopicNames
    from o4a_nav.learning.pipeline import train

    names = TopicNames()
    for field, value in (("front", args.front_topic), ("rear", args.rear_topic),
                         ("action", args.action_topic), ("pose", args.pose_topic), ("odom", args.odom_topic),
                         ("motion_state", args.motion_state_topic), ("scan", args.scan_topic),
                         ("front_info", args.front_info_topic), ("rear_info", args.rear_info_topic)):
        if value:
            setattr(names, field, value.lstrip("/"))
    from o4a_nav.learning.odometry import SegmentParams

    segment = SegmentParams()
    for field, value in (("forward_m", args.odom_forward), ("rotate_deg", args.odom_rotate),
                         ("max_turn_deg", args.odom_max_turn), ("max_shift_m", args.odom_max_shift)):
        if value is not None:
            setattr(segment, field, value)
    if args.odom_max_shift is not None:
        segment.max_lateral_m = args.odom_max_shift
    segment.validate()
    overrides = list(args.overrides)
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be >= 1 (got {args.threads})")
        overrides.append(f"train.threads={args.threads}")
    for b in args.bags:
        if not Path(b).exists():
            raise UserError(f"bag {b} does not exist")
    report = train(args.bags, args.out, work_dir=args.work_dir, preset=args.preset, overrides=overrides,
                   base=args.base, init=args.init, topics=names, world=args.world, resume=not args.no_resume,
                   segment=segment, force=args.force, device=args.device)
    if report:   # (the other ranks of a torchrun return an empty report)
        print(f"model written to {args.out}; report: {Path(args.out) / 'report.md'}")
    return 0 if report is not None else 1
