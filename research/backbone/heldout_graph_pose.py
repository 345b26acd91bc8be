"""What the graph alone is worth in a held-out world (`o4a diagnose` modes on a world file):
the rule at perfect localisation with d_G of a graph variant (`--graph-variant`: shipped =
the model's own graph, ideal = every true one-action pair, ideal,classw = the same with
action weights), or with a true cost (truth-lattice). One line per run.
Usage: .venv/bin/python research/backbone/heldout_graph_pose.py MODEL_DIR WORLD_FILE BAG MODE[:VARIANT]..."""
import sys
from pathlib import Path

from o4a_nav.bench.diagnose import DiagnoseConfig, diagnose
from o4a_nav.learning.dataset import scan_bag
from o4a_nav.sim import load_world

mdir, wfile, bag = sys.argv[1:4]
world = load_world(wfile)
poses = scan_bag(bag).poses
for spec in sys.argv[4:]:
    mode, _, variant = spec.partition(":")
    cfg = DiagnoseConfig(model=mdir, worlds=[world.name], episodes=4, seed=1, mode=mode,
                         graph_variant=variant or "shipped", graph_bags=[bag],
                         cache_dir=str(Path("runs/diag") / Path(mdir).name))
    r = diagnose(cfg, log=lambda *a, **k: None, sim_worlds={world.name: world},
                 graph_poses={world.name: poses} if (variant or "shipped") == "shipped" else None)
    s = r["summary"]
    out = Path("runs/diag") / Path(mdir).name / f"{spec.replace(':', '_').replace(',', '_')}.json"
    out.write_text(__import__("json").dumps(r, default=str))
    print(f"{world.name} {spec}: {s['succeeded']}/{s['episodes']}, rotations per forward "
          f"{s['rotations_per_forward']:.2f}", flush=True)
