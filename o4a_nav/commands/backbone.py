"""o4a backbone: the long, resumable job that trains the shared networks on generated worlds."""
from __future__ import annotations

HELP = ("train h, f-dagger and f on many generated worlds in rounds (resumable across runs); publish the "
        "networks when they beat the published ones on held-out worlds")

EXAMPLES = """examples:
  o4a backbone --hours 2                           # continue the job in runs/backbone for two hours
  o4a backbone --rounds 1 --device cuda            # one round on a GPU

scripts/backbone_job.sh runs it in the background (nice), logging to runs/backbone/job.log. Use what it
publishes: o4a train --base models/backbone --bags data/bags/my_building --out models/my_building.
What a round does, what is published and when: docs/LEARNING.md, "The backbone job".
"""


def add_arguments(p) -> None:
    from o4a_nav.learning.backbone import JobSpec

    d = JobSpec()
    p.add_argument("--state", default="runs/backbone", metavar="DIR",
                   help="the job's folder (worlds, bags, rounds, state.json); a second run continues it "
                        "(default runs/backbone)")
    p.add_argument("--start", default=None, metavar="MODEL",
                   help="networks of a new job's first round (default: the published backbone, --publish, when "
                        "there is one, as on a fresh clone after an earlier machine's job; else "
                        "models/o4a_default); a job continues from its own")
    p.add_argument("--publish", default="models/backbone", metavar="DIR",
                   help="model folder the networks are published to when they beat it on the held-out worlds "
                        "(default models/backbone; '' publishes nothing)")
    stop = p.add_mutually_exclusive_group()
    stop.add_argument("--rounds", type=int, metavar="N", help="run N more rounds")
    stop.add_argument("--hours", type=float, metavar="H",
                      help="start no new round after H hours (a round begun is finished; default: one round)")
    p.add_argument("--threads", type=int, default=2, metavar="N", help="torch CPU threads (default 2)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="stage-1 device (default cpu)")
    j = p.add_argument_group("the job", "fixed at the job's first run (job.json); a later run must ask for the same")
    j.add_argument("--train-worlds", type=int, default=d.train_worlds, metavar="N",
                   help=f"generated training worlds (default {d.train_worlds})")
    j.add_argument("--heldout-worlds", type=int, default=d.heldout_worlds, metavar="N",
                   help=f"generated held-out worlds, never trained on (default {d.heldout_worlds})")
    j.add_argument("--frames", type=int, default=d.frames, metavar="N",
                   help=f"exploration frames per world (default {d.frames})")
    j.add_argument("--train-seed", type=int, default=d.train_seed, help=f"generator seed of the training worlds "
                   f"(default {d.train_seed})")
    j.add_argument("--heldout-seed", type=int, default=d.heldout_seed, help=f"generator seed of the held-out "
                   f"worlds (default {d.heldout_seed})")
    j.add_argument("--epochs-per-round", type=int, default=d.epochs_per_round, metavar="N",
                   help=f"stage-1 epochs per round (default {d.epochs_per_round})")
    j.add_argument("--revisit-share", type=float, default=d.revisit_share, metavar="S",
                   help=f"share of stage-1 positives that are laser-verified revisits (default {d.revisit_share})")


def run(args) -> int:
    from o4a_nav.learning.backbone import JobSpec, run_job

    spec = JobSpec(train_worlds=args.train_worlds, heldout_worlds=args.heldout_worlds, frames=args.frames,
                   train_seed=args.train_seed, heldout_seed=args.heldout_seed,
                   epochs_per_round=args.epochs_per_round, revisit_share=args.revisit_share)
    rounds = args.rounds if args.rounds is not None or args.hours is not None else 1
    from o4a_nav.learning.backbone import default_start

    start = args.start or default_start(args.publish or None)
    st = run_job(args.state, start, spec, publish=args.publish or None, rounds=rounds, hours=args.hours,
                 threads=args.threads, device=args.device)
    print(f"{args.state}: {st['rounds_done']} rounds done, "
          f"{sum(r['published'] for r in st['rounds'])} published; held-out candidate recall: start "
          f"{st['start_eval']['mean']['candidate_recall']:.3f}"
          + "".join(f", r{r['round']} {r['heldout']['candidate_recall']:.3f}" for r in st["rounds"]))
    return 0
