"""The true heading-aware cost (o4a diagnose --mode truth-lattice) in a world file with the
navigator's arrival threshold set to T: what the arrival test costs when the potential is
right. 4 episodes per difficulty, seed 1.
Usage: .venv/bin/python research/backbone/truth_threshold.py MODEL_DIR WORLD_FILE T"""
import sys
from o4a_nav.bench.diagnose import DiagnoseConfig, diagnose
from o4a_nav.sim import load_world
m, wf, t = sys.argv[1], sys.argv[2], float(sys.argv[3])
world = load_world(wf)
cfg = DiagnoseConfig(model=m, worlds=[world.name], episodes=4, seed=1, mode="truth-lattice", nav_params={"stop_threshold": t})
r = diagnose(cfg, log=lambda *a, **k: None, sim_worlds={world.name: world})
print(world.name, "truth-lattice stop_threshold", t, r["summary"]["succeeded"], "/", r["summary"]["episodes"],
      [(int(e['success']), int(e['stopped']), round(e['final_m'], 1)) for e in r['episodes']], flush=True)
