"""`o4a bench`: closed-loop image-goal benchmark with the paper's protocol (in-process).

    o4a bench --model models/o4a_default --episodes 20 --seed 0 --out runs/bench
    o4a bench --model models/o4a_default --worlds two_rooms --episodes 2 --policy o4a,oracle
    o4a bench --model models/o4a_default --graph-scaling --policy none --out runs/scaling
    o4a bench --model models/o4a_default --through-ros --episodes 3 --seed 1 --out runs/bench_ros
"""
from __future__ import annotations

import shlex
from pathlib import Path

from o4a_nav.errors import UserError

HELP = "benchmark image-goal navigation policies (o4a, ablations, random, graph, oracle) in the simulator"

EXAMPLES = """How long: the default run is 20 episodes x 4 difficulties x every world the model knows
(9 for the shipped model: 720 episodes) x 8 policies, each episode up to --max-steps
(default 500) decisions: hours on 2 CPU cores (--jobs N runs N at once; results.json is
checkpointed every 2 minutes). One world, two episodes and one policy take a minute or two.

examples:
  o4a bench --worlds two_rooms --episodes 2 --policy o4a,oracle            # a quick look
  o4a bench --episodes 20 --seed 0 --jobs 2 --out runs/bench                # the full benchmark
  o4a bench --graph-scaling --policy none --out runs/scaling
  o4a bench --through-ros --worlds two_rooms --episodes 3 --seed 1 --out runs/bench_ros
"""

DEFAULT_MODEL = "models/o4a_default"


def _split(values) -> list[str]:
    out = []
    for v in values or []:
        out += [s.strip() for s in str(v).split(",") if s.strip()]
    return out


def add_arguments(p) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model directory (default {DEFAULT_MODEL})")
    p.add_argument("--worlds", nargs="+", metavar="WORLD",
                   help="world names or .yaml paths (default: the worlds the model was trained on)")
    p.add_argument("--episodes", type=int, default=20, help="episodes per world and difficulty (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the episode sampling and of the random policy")
    p.add_argument("--out", default="runs/bench", help="output folder (results.json, results.md, figures)")
    p.add_argument("--policy", "--policies", dest="policies", nargs="+", metavar="POLICY",
                   help="policies, space or comma separated (default: o4a o4a-anti-oscillation o4a-lookahead "
                        "o4a-no-repulsor o4a-no-attractor random graph oracle; 'none' to skip the episodes)")
    p.add_argument("--difficulties", nargs="+", metavar="D",
                   help="subset of easy medium hard very_hard (default: all)")
    p.add_argument("--max-steps", type=int, default=500, help="decisions per episode (default 500, the paper's)")
    p.add_argument("--trajectories", type=int, default=1,
                   help="top-down trajectory pictures for the first N episodes of each world and difficulty")
    p.add_argument("--nav-param", action="append", default=[], metavar="KEY=VALUE",
                   help="NavigatorParams override for every o4a* policy, e.g. stop_threshold=2.0 (repeatable)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (default 1)")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes running episodes in parallel (default 1; same results for any value)")
    p.add_argument("--graph-scaling", action="store_true",
                   help="also measure the graph baseline's memory and per-step latency vs graph size, next to O4A's")
    p.add_argument("--scaling-sizes", type=int, nargs="+", metavar="N",
                   help="graph sizes (nodes) for --graph-scaling (default: powers of two up to the full graph)")
    p.add_argument("--through-ros", action="store_true",
                   help="run policy o4a on every episode both in-process and through the ROS nodes (sim in lockstep, "
                        "collision_checker, navigator, base_controller; config/navigation.yaml) and report the decision "
                        "agreement (policy o4a-ros in the tables); --policy, --jobs and --graph-scaling do not apply")
    p.add_argument("--motion-noise", default="", metavar="FRAC,DEG",
                   help="executed-motion error of the simulated robot, e.g. 0.05,2: each FORWARD travels 0.25 m "
                        "x (1 + N(0, FRAC)), each motion adds N(0, DEG) to the heading (default exact motions)")
    p.add_argument("--laser-noise", type=float, default=0.0, metavar="SIGMA",
                   help="Gaussian range noise of the simulated laser [m] (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def command_line(cfg, args) -> str:
    """The canonical command that reproduces this run (recorded in results.json/md)."""
    parts = ["o4a", "bench", "--model", cfg.model or "", "--worlds", *cfg.worlds, "--episodes", str(cfg.episodes),
             "--seed", str(cfg.seed), "--out", cfg.out, "--policy", ",".join(cfg.policies) or "none",
             "--difficulties", *cfg.difficulties, "--max-steps", str(cfg.max_steps),
             "--trajectories", str(cfg.trajectories), "--threads", str(cfg.threads), "--jobs", str(args.jobs)]
    for k, v in cfg.nav_params.items():
        parts += ["--nav-param", f"{k}={v}"]
    if cfg.motion_noise:
        parts += ["--motion-noise", cfg.motion_noise]
    if cfg.laser_noise:
        parts += ["--laser-noise", str(cfg.laser_noise)]
    if args.graph_scaling:
        parts.append("--graph-scaling")
    if getattr(args, "through_ros", False):
        parts.append("--through-ros")
    return " ".join(shlex.quote(p) for p in parts)


def run(args) -> int:
    import yaml

    from o4a_nav.bench.run import DEFAULT_POLICIES, BenchConfig, check_noise, run_benchmark

    policies = _split(args.policies) or list(DEFAULT_POLICIES)
    if policies == ["none"]:
        policies = []
    model_dir = Path(args.model) if args.model else None
    worlds = args.worlds
    if not worlds:
        if model_dir is None or not (model_dir / "meta.json").is_file():
            raise UserError(f"no --worlds given and {model_dir}/meta.json not found to take the model's worlds from")
        from o4a_nav.learning.model_io import load_model

        worlds = load_model(model_dir).worlds
    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1 (got {args.jobs})")
    if args.threads < 1:
        raise UserError(f"--threads must be >= 1 (got {args.threads})")
    nav_params = {}
    for item in args.nav_param:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--nav-param {item!r}: expected KEY=VALUE")
        try:
            nav_params[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise UserError(f"--nav-param {item!r}: bad value ({exc})") from None
    cfg = BenchConfig(
        nav_params=nav_params,
        model=str(model_dir) if model_dir else None,
        worlds=list(worlds),
        out=args.out,
        episodes=args.episodes,
        seed=args.seed,
        policies=policies,
        difficulties=_split(args.difficulties) or ["easy", "medium", "hard", "very_hard"],
        max_steps=args.max_steps,
        trajectories=args.trajectories,
        threads=args.threads,
        motion_noise=args.motion_noise,
        laser_noise=args.laser_noise,
    )
    check_noise(cfg)
    if args.through_ros:
        if args.graph_scaling or args.jobs != 1 or (args.policies and policies != ["o4a"]):
            raise UserError("--through-ros runs policy o4a only, in one process: drop --policy, --jobs and "
                            "--graph-scaling")
        cfg.policies = ["o4a"]
    cfg.command = command_line(cfg, args)
    out = Path(args.out)
    if args.through_ros:
        from o4a_nav.nodes.lockstep import run_benchmark_through_ros

        payload = run_benchmark_through_ros(cfg, progress=not args.no_progress)
        print((out / "results.md").read_text())
        print(f"wrote {out / 'results.json'}, {out / 'results.md'} and {len(payload['trajectory_pictures'])} trajectory "
              f"pictures in {out} ({payload['wall_time_s']:.0f} s)")
        return 0
    if policies:
        payload = run_benchmark(cfg, progress=not args.no_progress, jobs=args.jobs)
        print((out / "results.md").read_text())
        print(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'sr_spl.png'} and "
              f"{len(payload['trajectory_pictures'])} trajectory pictures in {out} "
              f"({payload['wall_time_s']:.0f} s)")
    if args.graph_scaling:
        from o4a_nav.bench.graph_scaling import run_graph_scaling

        res = run_graph_scaling(cfg, sizes=args.scaling_sizes, progress=not args.no_progress)
        print(res["table"])
        print(f"wrote {out / 'graph_scaling.json'} and {out / 'graph_scaling.png'}")
    if not policies and not args.graph_scaling:
        raise UserError("nothing to do: --policy none without --graph-scaling")
    return 0
