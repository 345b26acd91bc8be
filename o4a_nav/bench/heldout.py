"""Held-out evaluation (`o4a heldout`): what a model gives a building it never saw. ROS-free.

Per world file (e.g. the backbone job's held-out worlds, generated with a seed no training
used): an exploration bag (``steps`` frames, as a user would record), the adaptation a user
would run (``o4a train --base MODEL``: graph and p+ on the frozen shared networks, or
``--init``: all stages fine-tuned on the bag), h's place metrics on the bag
(report.place_metrics), the graph's closure precision from the adaptation's report, and the
benchmark (policy o4a, ``episodes`` per difficulty, seeded). Results accumulate in
OUT/heldout.json and OUT/heldout.md; a world already there is not run again, so a killed
run continues where it stopped.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from o4a_nav.errors import UserError

ADAPT_MODES = ("base", "init")


def _bag(out: Path, world_file: str, steps: int, seed: int, log) -> Path:
    from tqdm import tqdm

    from o4a_nav.sim.collector import write_exploration_bag_once

    bag = out / "bags" / f"{Path(world_file).stem}_s{seed}"
    res = write_exploration_bag_once(bag, world_file, steps, seed, tqdm)
    if res is not None:
        log(f"{bag}: {steps} frames, coverage {res['coverage']:.0%} of {res['free_area']:.0f} m^2")
    return bag


def _row(name: str, mdir: Path, bag: Path, bench: dict, adapt_s: float, bench_s: float) -> dict:
    from o4a_nav.learning.dataset import load_worlds
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.learning.report import ideal_connectivity, place_metrics
    from o4a_nav.learning.training import embed_frames

    rep = json.loads((mdir / "report.json").read_text())["worlds"][name]
    (w,) = load_worlds([bag])
    place = place_metrics(embed_frames(load_model(mdir), w), w.poses, w.traj)
    eps = [e for e in bench["episodes"] if e["policy"] == "o4a"]
    n, k = len(eps), sum(bool(e["success"]) for e in eps)
    by_bin = {r["difficulty"]: r["sr"] for r in bench["records"] if r["policy"] == "o4a"}
    fwd = sum(e.get("forwards", 0) for e in eps)
    return {"world": name, "frames": len(w), "adapt_s": adapt_s, "bench_s": bench_s,
            "candidate_recall": place["candidate_recall"], "far_below": place["far_below"],
            "closure_rule": rep.get("closures", {}).get("rule"),
            "closure_precision": rep.get("loop_closure", {}).get("exact_precision"),
            "largest_component": rep.get("graph_connectivity", {}).get("largest_share"),
            "ideal_largest_component": ideal_connectivity(w.poses, w.traj)["largest_share"],
            "episodes": n, "successes": k, "sr": k / n if n else float("nan"),
            "sr_se": math.sqrt(k / n * (1 - k / n) / n) if n else float("nan"), "sr_by_bin": by_bin,
            "spl": sum(e.get("spl") or 0.0 for e in eps) / n if n else float("nan"),
            "rotations_per_forward": sum(e.get("rotations", 0) for e in eps) / max(fwd, 1)}


def _markdown(res: dict) -> str:
    bins = ("easy", "medium", "hard", "very_hard")
    lines = [f"# Held-out evaluation: {res['model']}", "", f"`{res['command']}`", "",
             "| world | adapt (s) | 20-NN candidate recall | far pairs taken for the goal | closure precision | "
             "largest part (best possible) | SR easy/medium/hard/very hard | SR (SE) | SPL | rot/fwd |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def f(v, spec=".3f"):
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    for r in res["worlds"].values():
        lines.append(f"| {r['world']} | {r['adapt_s']:.0f} | {f(r['candidate_recall'])} | {f(r['far_below'], '.4f')} | "
                     f"{f(r['closure_precision'])} | {f(r['largest_component'])} ({f(r.get('ideal_largest_component'))}) | "
                     + "/".join(f(r['sr_by_bin'].get(b), '.2f') for b in bins)
                     + f" | {r['successes']}/{r['episodes']} ({f(r['sr_se'], '.2f')}) | {f(r['spl'], '.2f')} | "
                     f"{f(r['rotations_per_forward'], '.2f')} |")
    rows = list(res["worlds"].values())
    if rows:
        n, k = sum(r["episodes"] for r in rows), sum(r["successes"] for r in rows)
        lines += ["", f"All: {k}/{n} episodes, SR {k / n:.2f} (SE {math.sqrt(k / n * (1 - k / n) / n):.2f}); "
                      f"adaptation {sum(r['adapt_s'] for r in rows) / len(rows) / 60:.1f} min per world on "
                      f"{os.cpu_count()} cores"]
    return "\n".join(lines) + "\n"


def evaluate_heldout(model: str, world_files: list[str], out, steps: int = 10000, episodes: int = 4, seed: int = 1,
                     adapt: str = "base", overrides: list[str] | None = None, jobs: int = 1, command: str = "",
                     log=print) -> dict:
    """Run the evaluation (module docstring) and return OUT/heldout.json's contents."""
    from o4a_nav.bench.run import BenchConfig, run_benchmark
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.learning.pipeline import train
    from o4a_nav.sim import load_world

    if adapt not in ADAPT_MODES:
        raise UserError(f"--adapt must be one of {', '.join(ADAPT_MODES)}, not {adapt!r}")
    if not world_files:
        raise UserError("no held-out world files given")
    known = set(load_model(model).worlds)
    names = {}
    for wf in world_files:
        names[wf] = load_world(wf).name
        if names[wf] in known:
            raise UserError(f"world {names[wf]} ({wf}) is one of {model}'s trained worlds: it is not held out")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res_file = out / "heldout.json"
    res = json.loads(res_file.read_text()) if res_file.is_file() else {}
    if res and (res.get("model") != str(model) or res.get("adapt") != adapt or res.get("steps") != steps
                or res.get("episodes") != episodes or res.get("seed") != seed):
        raise UserError(f"{res_file} holds a run with other settings ({res.get('command')}); choose another --out")
    res.update({"model": str(model), "adapt": adapt, "steps": steps, "episodes": episodes, "seed": seed,
                "overrides": list(overrides or []), "command": command})
    res.setdefault("worlds", {})
    for wf in world_files:
        name = names[wf]
        if name in res["worlds"]:
            log(f"{name}: done already ({res_file})")
            continue
        bag = _bag(out, wf, steps, seed, log)
        mdir = out / "models" / name
        t0 = time.perf_counter()
        train([bag], mdir, work_dir=out / "work" / name, overrides=overrides, force=True,
              **({"base": model} if adapt == "base" else {"init": model}), log=log)
        adapt_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        bench = run_benchmark(BenchConfig(model=str(mdir), worlds=[str(wf)], out=str(out / "bench" / name),
                                          episodes=episodes, seed=seed, policies=["o4a"], command=command),
                              progress=True, jobs=jobs)
        res["worlds"][name] = _row(name, mdir, bag, bench, adapt_s, time.perf_counter() - t0)
        tmp = res_file.with_name(res_file.name + ".tmp")
        tmp.write_text(json.dumps(res, indent=1))
        os.replace(tmp, res_file)
        (out / "heldout.md").write_text(_markdown(res))
        log(f"{name}: SR {res['worlds'][name]['sr']:.2f}, adaptation {adapt_s:.0f}s")
    return res
