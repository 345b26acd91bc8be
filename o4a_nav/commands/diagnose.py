"""`o4a diagnose`: the graph/potential decomposition (o4a_nav/bench/diagnose.py): the
benchmark's episodes navigated by the paper's rule with the attractor p+ replaced by the
training graph's distance, or by the true distance, to find which part of the potential
keeps the robot from the goal. A diagnostic, not a policy."""
from __future__ import annotations

import json
from pathlib import Path

HELP = "which part of the potential loses episodes: the rule with p+ swapped for graph or true distances"

EXAMPLES = """modes (--mode):
  pplus          the model's p+ (control: the benchmark's o4a outcomes, exactly)
  graph          d_G of the training graph, waypoints localised at the nearest node code
  graph-knn      the same, smoothed over the --knn nearest nodes
  graph-pose     d_G with perfect localisation (nearest node by the bags' true poses)
  truth          4 x the true geodesic one FORWARD ahead of where the action leads
  truth-pos      4 x the true geodesic from where the action leads
  truth-lattice  a heading-aware true cost-to-go in action units (--rot-cost per turn)
  truth-snap     truth-lattice at the pose of the nearest graph node
graph variants (--graph-variant, graph modes): shipped (the model's graph_<world>.npz), or
built from --bags with the model's h and f-dagger: built, gt, exact, ideal, chain,
laser[=K], offset=X, classw, cap=C, loopw=K; comma-separated, e.g. gt,offset=0
(docs/journal/benchmark.md, "which part of the potential loses the episodes").

examples:
  o4a diagnose --mode truth --worlds two_rooms --difficulties easy --episodes 3 --out runs/diag/truth.json
  o4a diagnose --mode graph --episodes 4 --seed 1 --out runs/diag/graph_s1.json
  o4a diagnose --mode graph-pose --graph-variant gt --episodes 5 --seed 2 --out runs/diag/gp_gt_s2.json
  o4a diagnose --mode graph --graph-variant laser --worlds two_rooms --out runs/diag/laser.json
"""


def add_arguments(p) -> None:
    from o4a_nav.bench.diagnose import MODES, DiagnoseConfig

    d = DiagnoseConfig()
    p.add_argument("--model", default=d.model, help=f"model directory (default {d.model})")
    p.add_argument("--worlds", nargs="+", default=d.worlds, help="worlds (default: %(default)s)")
    p.add_argument("--difficulties", nargs="+", default=d.difficulties, help="default: all four")
    p.add_argument("--episodes", type=int, default=d.episodes, help="per world and difficulty (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="episode seed, as `o4a bench --seed` (default %(default)s)")
    p.add_argument("--mode", choices=MODES, default=d.mode, help="the attractor (default %(default)s; see below)")
    p.add_argument("--rot-cost", type=float, default=d.rot_cost,
                   help="truth-lattice: cost of one rotation (one FORWARD = 1)")
    p.add_argument("--knn", type=int, default=d.knn, help="graph-knn: neighbours (default %(default)s)")
    p.add_argument("--graph-variant", default=d.graph_variant, help="graph modes: which graph (default %(default)s)")
    p.add_argument("--bags", default=d.bags, help="folder of <world>_s0 bags (built graph variants)")
    p.add_argument("--cache-dir", default=d.cache_dir, help="where built graph variants are cached (one per model)")
    p.add_argument("--graph-bags", nargs="+", help="bags to build the graph from (one world; default <bags>/<world>_s0)")
    p.add_argument("--nav-param", action="append", default=[], metavar="K=V", help="NavigatorParams override")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="decisions per episode (default %(default)s)")
    p.add_argument("--out", required=True, help="JSON file of per-episode outcomes")


def run(args) -> int:
    import yaml

    from o4a_nav.bench.diagnose import DiagnoseConfig, diagnose

    cfg = DiagnoseConfig(
        model=args.model, worlds=args.worlds, difficulties=args.difficulties, episodes=args.episodes,
        seed=args.seed, mode=args.mode, rot_cost=args.rot_cost, knn=args.knn, graph_variant=args.graph_variant,
        bags=args.bags, cache_dir=args.cache_dir, graph_bags=args.graph_bags, max_steps=args.max_steps,
        nav_params={k: yaml.safe_load(v) for k, _, v in (kv.partition("=") for kv in args.nav_param)})
    result = diagnose(cfg, log=lambda msg: print(msg, flush=True))
    saved = {k: v for k, v in vars(args).items() if not k.startswith("_") and k != "command"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": saved, **result}, indent=1))
    s = result["summary"]
    print(f"{s['mode']}: {s['succeeded']}/{s['episodes']} succeed, {s['rotations_per_forward']:.2f} rotations "
          f"per forward; {out}")
    return 0
