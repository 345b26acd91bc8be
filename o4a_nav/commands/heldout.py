"""o4a heldout: a model in buildings it never saw: record, adapt, benchmark, per world."""
from __future__ import annotations

HELP = ("evaluate a model in held-out worlds as a user meets a new building: exploration bag, adaptation "
        "(train --base or --init), benchmark; a table per world")

EXAMPLES = """examples:
  o4a heldout --model models/backbone --job runs/backbone --out runs/heldout/backbone     # the job's held-out worlds
  o4a heldout --model models/o4a_default --worlds data/worlds/gen/gen_s7_00*.yaml --adapt init --out runs/heldout/init
  o4a heldout --model models/o4a_default --job runs/backbone --steps 2000 --episodes 1 --out runs/heldout/quick

Each world takes the collection (about 1 min per 10,000 frames), the adaptation (--base: minutes; --init: tens of
minutes) and the benchmark (minutes). A killed run continues where it stopped (same --out). The table:
OUT/heldout.md; the numbers: OUT/heldout.json.
"""


def add_arguments(p) -> None:
    p.add_argument("--model", required=True, metavar="MODEL", help="the model to adapt (e.g. models/backbone)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--worlds", nargs="+", metavar="FILE", help="held-out world files (.yaml)")
    src.add_argument("--job", metavar="DIR", help="a backbone job's folder: its held-out worlds (DIR/worlds/heldout)")
    p.add_argument("--out", required=True, metavar="DIR", help="bags, adapted models, benchmarks and the table")
    p.add_argument("--adapt", choices=["base", "init"], default="base",
                   help="base: graph and p+ on the model's frozen networks (default); init: all stages fine-tuned")
    p.add_argument("--steps", type=int, default=10000, metavar="N", help="exploration frames per world (default 10000)")
    p.add_argument("--episodes", type=int, default=4, metavar="N",
                   help="benchmark episodes per difficulty and world (default 4)")
    p.add_argument("--seed", type=int, default=1, help="seed of the bags and the episodes (default 1)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="training setting of the adaptation, as in o4a train (repeatable)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="benchmark worker processes (default 1)")


def run(args) -> int:
    import shlex
    from pathlib import Path

    from o4a_nav.bench.heldout import evaluate_heldout
    from o4a_nav.errors import UserError

    if args.steps < 500 or args.episodes < 1:
        raise UserError("--steps must be >= 500 and --episodes >= 1")
    if args.job:
        files = sorted(str(p) for p in (Path(args.job) / "worlds" / "heldout").glob("*.yaml"))
        if not files:
            raise UserError(f"--job {args.job}: no held-out worlds in {Path(args.job) / 'worlds' / 'heldout'}")
    else:
        files = list(args.worlds)
    res = evaluate_heldout(args.model, files, args.out, steps=args.steps, episodes=args.episodes, seed=args.seed,
                           adapt=args.adapt, overrides=args.overrides, jobs=args.jobs,
                           command=shlex.join(["o4a", "heldout", "--model", args.model]
                                              + (["--job", args.job] if args.job else ["--worlds", *files])
                                              + ["--out", args.out, "--adapt", args.adapt, "--steps", str(args.steps),
                                                 "--episodes", str(args.episodes), "--seed", str(args.seed)]
                                              + [x for o in args.overrides for x in ("--set", o)]))
    print((Path(args.out) / "heldout.md").read_text())
    return 0 if res["worlds"] else 1
