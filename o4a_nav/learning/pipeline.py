"""`o4a train`: bags -> model directory, all four stages, resumable. ROS-free.

    train(bags, out)                       # stages 1-4 on all worlds found in the bags
    train(bags, out, base="models/x")      # keep h, f-dagger, f of the base model; build the
                                           # new worlds' graphs and train only their p+
    train(bags, out, init="models/x")      # warm start: h, f-dagger, f start from that model's
                                           # weights, then all four stages train on the bags
Under torchrun (torch.distributed) stages 1 and 2 run data-parallel on every process, each
holding the images of its data shards only (train.data_shards), and rank 0 writes
checkpoints, the model and the report (o4a_nav/learning/distributed.py).
Checkpoints live in a work directory (default runs/train_<name>): stage 1 after every
epoch, stage 3 and each world's p+ when done. Re-running the same command resumes; a
different configuration or bag set starts over.

Layout: the three modes (`_Scratch`, `_WarmStart`, `_Extend`, picked by `_mode`: each
answers what its run loads, trains, carries over and reports), `_initial_model`, then one
function per stage (`_stage1` h + f-dagger, `_stage2` graphs, `_stage3` f, `_stage4` p+),
`_save` and `_report`; `_train` runs them in that order and keeps the timings.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from o4a_nav.errors import UserError
from o4a_nav.learning import closures as C
from o4a_nav.learning import graph as G
from o4a_nav.learning import report as R
from o4a_nav.learning.config import TrainConfig, graph_logit_offset, make_configs, to_dict
from o4a_nav.learning.dataset import TopicNames, load_worlds
from o4a_nav.learning.model_io import (WEIGHTS_FILE, O4AModel, begin_model_dir, check_model_out, commit_model_dir,
                                       load_model, save_model)
from o4a_nav.learning.odometry import SegmentParams
from o4a_nav.learning.training import (chain_predictions, embed_frames, inverse_accuracy, train_forward, train_geodesic,
                                      train_stage1)


STAGE1_KEYS = ("batch_size", "lr", "margin_pos", "margin_neg", "ce_weight", "not_connected_share",
               "contrastive_weight", "augment", "val_fraction", "seed")
STAGE1_NEW_KEYS = {"revisit_share": 0.0}   # in the fingerprint only when not at their default (older runs resume)


def _fingerprint(bags, tcfg: TrainConfig, mcfg, base, init=None, segment: SegmentParams | None = None) -> str:
    """Identifies the stage-1 checkpoint: bags, architecture and the stage-1 settings only
    (not the epoch count, so a run can be extended; later stages key their own files)."""
    items = []
    for b in bags:
        p = Path(b).resolve()
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else 0
        items.append([str(p), size])
    train = {k: v for k, v in to_dict(tcfg).items() if k in STAGE1_KEYS}
    if tcfg.lr_schedule != "constant":   # (constant: the fingerprint of runs made before the option)
        train.update(lr_schedule=tcfg.lr_schedule, lr_min=tcfg.lr_min)
    if tcfg.data_shards != 1:            # (1: likewise)
        train.update(data_shards=tcfg.data_shards)
    for k, default in STAGE1_NEW_KEYS.items():
        if getattr(tcfg, k) != default:
            train[k] = getattr(tcfg, k)
    ident = {"bags": items, "train": train, "model": to_dict(mcfg), "base": str(base)}
    if segment is not None and segment != SegmentParams():   # odometry labels with other thresholds
        ident["segment"] = vars(segment)
    if init is not None:   # which weights the warm start began from (load_model has checked they exist)
        weights = (Path(init) / WEIGHTS_FILE).read_bytes()
        ident["init"] = [str(Path(init).resolve()), hashlib.sha256(weights).hexdigest()[:16]]
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def _settings_key(tcfg: TrainConfig, stage: str) -> str:
    """File-name key of a stage-3/4 checkpoint: stage-1 length + all other settings."""
    d = {k: v for k, v in to_dict(tcfg).items() if k not in ("threads", "report_graph_episodes")}
    return hashlib.sha1(json.dumps([stage, d], sort_keys=True).encode()).hexdigest()[:10]


def _prepare_work_dir(work: Path, fingerprint: str, data_shards: int, resume: bool, log) -> None:
    """A different fingerprint (or no resume) moves the checkpoints aside: a stage-1
    checkpoint continues only with the same bags, settings and train.data_shards (its
    batches are drawn per shard)."""
    work.mkdir(parents=True, exist_ok=True)
    state = work / "state.json"
    old = json.loads(state.read_text()) if state.is_file() else {}
    if old.get("fingerprint") != fingerprint or not resume:
        stale = list(work.glob("stage*.pt"))
        if stale:
            keep = work / "previous"
            keep.mkdir(exist_ok=True)
            for f in stale:           # moved aside, never deleted
                f.replace(keep / f.name)
            why = "bags or stage-1 settings changed"
            if old.get("data_shards", 1) != data_shards:
                why = f"train.data_shards changed from {old.get('data_shards', 1)} to {data_shards}"
            log(f"work dir {work}: {'--no-resume' if not resume else why}; "
                f"starting over (old checkpoints moved to {keep})")
    state.write_text(json.dumps({"fingerprint": fingerprint, "data_shards": data_shards}))


def _checkpointed(path: Path, module, fn):
    """Run fn() (training `module`) unless `path` holds its result; returns fn's history."""
    if path.is_file():
        ck = torch.load(path, map_location="cpu", weights_only=False)
        module.load_state_dict(ck["state"])
        return ck["history"]
    history = fn()
    tmp = Path(str(path) + ".tmp")
    torch.save({"state": module.state_dict(), "history": history}, tmp)
    tmp.replace(path)
    return history


def _previous_report_worlds(out: Path, base) -> dict:
    for d in (out, Path(base)):
        f = d / "report.json"
        if f.is_file():
            try:
                return dict(json.loads(f.read_text()).get("worlds", {}))
            except (OSError, ValueError):
                return {}
    return {}


@dataclass
class _WorldGraph:
    codes: torch.Tensor
    graph: dict
    sources: np.ndarray
    dist_rows: np.ndarray


def train(bags, out, *, work_dir=None, preset: str = "compact", overrides=None, base=None, init=None,
          topics: TopicNames | None = None, world: str | None = None, resume: bool = True,
          segment: SegmentParams | None = None, force: bool = False, progress=None, log=print,
          device: str = "cpu") -> dict:
    """The model is built in a sibling directory and swapped in at the end: an interrupted run
    leaves `out` as it was. An existing `out` is replaced only with `force` (or when it is
    the `base` being extended). Returns the report (rank 0; an empty dict on the other
    ranks under torchrun)."""
    from o4a_nav.learning import distributed

    ctx = distributed.setup(device)
    finished = False
    try:
        report = _train(bags, out, work_dir=work_dir, preset=preset, overrides=overrides, base=base, init=init,
                        topics=topics, world=world, resume=resume, segment=segment, force=force,
                        progress=progress, log=log, ctx=ctx)
        finished = True
        return report
    finally:
        ctx.close(wait=finished)   # a failed rank leaves at once (torchrun stops the others)


class _Scratch:
    """How a run starts, one class per mode (`_mode` picks it). This one, from scratch: all
    four stages on new networks. A mode answers every question the stages ask about it."""

    base: str | None = None     # the model kept (fast path) ...
    init: str | None = None     # ... or warm-started from
    trains_h = True             # stages 1 (h, f-dagger) and 3 (f) run

    def configs(self, preset: str, overrides):
        """(the start model or None, ModelConfig, TrainConfig)."""
        mcfg, tcfg = make_configs(preset, overrides)
        return None, mcfg, tcfg

    def networks(self, start_model, mcfg, worlds, log) -> O4AModel:
        """The networks stage 1 begins with."""
        return O4AModel(mcfg, [w.name for w in worlds])

    def carry_over(self, out: Path) -> None:
        """Files of the start model that the new model directory keeps (written into `out`)."""

    def earlier_worlds(self, final_out: Path, out: Path) -> dict:
        """The report's entries of worlds that this run keeps without training them."""
        return {}

    def preset_label(self, preset: str) -> str:
        return preset


@dataclass(frozen=True)
class _WarmStart(_Scratch):
    """Warm start (``--init``): h, f-dagger and f begin from that model's weights, then all
    four stages train (fresh p+ heads for the bags' worlds)."""

    init: str | None = None
    flag = "--init"

    def configs(self, preset: str, overrides):
        """A start model keeps its architecture: model.* overrides are refused."""
        model_overrides = [o for o in (overrides or []) if o.startswith("model.")]
        if model_overrides:
            raise UserError(f"{self.flag} keeps the model's architecture; cannot apply {model_overrides[0]}")
        model = load_model(self.base or self.init)
        _, tcfg = make_configs("compact", overrides)
        return model, model.config, tcfg

    def networks(self, start_model, mcfg, worlds, log) -> O4AModel:
        model = O4AModel(mcfg, [w.name for w in worlds])
        for part in ("backbone", "inverse", "forward_model"):
            getattr(model, part).load_state_dict(getattr(start_model, part).state_dict())
        log(f"warm start: h, f-dagger and f from {self.init}; all stages train on {', '.join(w.name for w in worlds)}")
        return model


@dataclass(frozen=True)
class _Extend(_WarmStart):
    """Fast path (``--base``): h, f-dagger and f of that model are kept; only the bags'
    worlds get a graph and a p+ (stages 1 and 3 skipped); its other worlds stay."""

    base: str | None = None
    flag = "--base"
    trains_h = False

    def networks(self, start_model, mcfg, worlds, log) -> O4AModel:
        model = start_model
        for w in worlds:
            if w.name in model.worlds:
                log(f"world {w.name}: replacing the base model's p+ head")
                model.geodesic_heads[model.worlds.index(w.name)] = type(model.geodesic_head(w.name))(mcfg)
            else:
                model.add_world(w.name)
        return model

    def carry_over(self, out: Path) -> None:
        """The other worlds' graph files and latent-map pictures."""
        if Path(self.base).resolve() == out.resolve():
            return
        for pattern in ("graph_*.npz", "report_latent_*.png"):
            for f in Path(self.base).glob(pattern):
                if not (out / f.name).exists():
                    shutil.copy2(f, out / f.name)

    def earlier_worlds(self, final_out: Path, out: Path) -> dict:
        kept = _previous_report_worlds(final_out, self.base)
        for m in kept.values():   # (their pictures were copied by carry_over; one the base lacks is not shown)
            if m.get("latent_map") and not (out / m["latent_map"]).exists():
                m["latent_map"] = None
        return kept

    def preset_label(self, preset: str) -> str:
        return "base"


def _mode(out: Path, base, init, force: bool) -> _Scratch:
    """The mode of these flags, once they are consistent and `out` may be written (UserError otherwise)."""
    if base is not None and init is not None:
        raise UserError("--base and --init exclude each other: --base keeps h, f-dagger and f as they are, "
                        "--init trains them further")
    if init is not None and Path(init).resolve() == Path(out).resolve():
        raise UserError(f"--init {init} and --out must differ: the warm start's weights would be overwritten")
    check_model_out(out, force=force, update=base is not None and Path(base).resolve() == out.resolve())
    if base is not None:
        return _Extend(base=base)
    return _WarmStart(init=init) if init is not None else _Scratch()


def _log_worlds(worlds, log) -> None:
    for w in worlds:
        log(f"world {w.name}: {len(w)} frames, {len(np.unique(w.traj))} trajectories "
            f"({len(w.val_traj)} held out), {int(w.next_ok.sum())} transitions, "
            f"poses {'yes' if w.poses is not None else 'no'}, simulator world {'yes' if w.known_world else 'no'}")
        for src, how in w.labelling.items():
            log(f"  {src}: labels from {how}")


def _log_shards(worlds, tcfg: TrainConfig, ctx, log) -> None:
    """With data shards or several processes: the shards' sizes and, per process, the
    frames whose images it holds and its peak memory so far (gathered on every rank)."""
    if tcfg.data_shards == 1 and not ctx.enabled:
        return
    import resource

    sizes = np.bincount(np.concatenate([w.shards for w in worlds]), minlength=tcfg.data_shards)
    mine = (sum(len(w.front) for w in worlds), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    per = ctx.all_gather(mine)
    log(f"data shards: {tcfg.data_shards} of {', '.join(map(str, sizes))} frames; images held per process: "
        f"{', '.join(str(p[0]) for p in per)} of {int(sizes.sum())} frames; peak RSS per process after reading: "
        f"{', '.join(str(p[1]) for p in per)} MiB")


def _initial_model(mode: _Scratch, start_model, mcfg, worlds, tcfg: TrainConfig, log) -> O4AModel:
    """The networks stage 1 begins with, seeded the same in every run and process."""
    torch.manual_seed(tcfg.seed)   # new networks start from the same weights in every run and process
    model = mode.networks(start_model, mcfg, worlds, log)
    torch.manual_seed(tcfg.seed)
    return model


def _revisits(model, worlds, tcfg: TrainConfig, mode: _Scratch, ctx, progress, log) -> None:
    """With train.revisit_share > 0: each world's laser-verified loop pairs by the start
    model's h (w.revisits: (K, 3) frame i, frame j, action), stage 1's revisit positives."""
    if tcfg.revisit_share <= 0 or not mode.trains_h:
        return
    if mode.init is None:
        log("stage 1: train.revisit_share needs a start model (--init) whose h proposes the revisits; "
            "training on the recorded transitions only")
        return
    for w in worlds:
        rule, mount, why = closure_rule(w, tcfg)
        if rule != "laser":
            log(f"stage 1 {w.name}: no revisit positives ({why})")
            continue
        codes = embed_frames(model, w, progress=progress, dist=ctx if ctx.enabled else None)
        w.revisits, stats = revisit_pairs(w, codes, mount, tcfg, progress)
        log(f"stage 1 {w.name}: {len(w.revisits)} revisit positives from {mode.init}'s h ({stats['edges']} "
            f"laser one-action pairs, {stats['seconds']:.0f}s)")


def revisit_pairs(w, codes, mount, tcfg: TrainConfig, progress=None) -> tuple[np.ndarray, dict]:
    """Stage 1's revisit positives of one world: the laser-verified one-action pairs among
    h's candidates (`codes`) that lie on different visits ((K, 3) int64 rows frame i, frame
    j, action), and the closure statistics."""
    lc = C.laser_closures(codes, w.laser.ranges, w.laser.geometry, mount, _closure_params(tcfg),
                          progress=progress, traj=w.traj)
    other_visit = (w.traj[lc["src"]] != w.traj[lc["dst"]]) | (np.abs(lc["src"] - lc["dst"]) > 2)
    return np.stack([lc["src"], lc["dst"], lc["action"]], 1)[other_visit].astype(np.int64), lc["stats"]


def _stage1(model, worlds, tcfg: TrainConfig, work: Path, mode: _Scratch, ctx, progress, log):
    """h + f-dagger (checkpointed in work/stage1.pt after every epoch); then frozen."""
    history = None
    _revisits(model, worlds, tcfg, mode, ctx, progress, log)
    if mode.trains_h:
        history = train_stage1(model, worlds, tcfg, checkpoint=work / "stage1.pt", progress=progress, log=log,
                               dist=ctx if ctx.enabled or ctx.device.type != "cpu" else None)
    else:
        log(f"stage 1 skipped: h and f-dagger from {mode.base}")
    for p in list(model.backbone.parameters()) + list(model.inverse.parameters()):
        p.requires_grad_(False)
    model.eval()
    return history


def _stage2(model, worlds, tcfg: TrainConfig, out, ctx, progress, log) -> tuple[dict, dict]:
    """Each world's loop-closure graph (saved in `out` by rank 0) and its Dijkstra rows
    from sampled sources: ({world: _WorldGraph}, {world: report summary}); empty on ranks
    other than 0."""
    graphs: dict[str, _WorldGraph] = {}
    summary_worlds: dict[str, dict] = {}
    rng = np.random.default_rng(tcfg.seed)
    for w in worlds:
        shard = ctx if ctx.enabled else None
        codes = embed_frames(model, w, progress=progress, dist=shard)
        if not ctx.is_main and closure_rule(w, tcfg)[0] == "laser":
            continue   # registration is rank 0's (its graph is the one kept)
        g, closures = world_graph(model, w, codes, tcfg, progress=progress, log=log, dist=shard)
        if not ctx.is_main:   # the rest (Dijkstra, f, p+, files, report) is rank 0's
            continue
        G.save_graph(out / G.graph_name(w.name), g, codes, w.name)
        train_frames = w.frames(val=False)
        sources = np.sort(rng.choice(train_frames, min(tcfg.geodesic_sources, len(train_frames)), replace=False))
        t1 = time.perf_counter()
        rows = G.shortest_paths(g, sources, progress=progress)
        log(f"stage 2 graph {w.name}: {int(g['chain'].sum())} chain + {int((~g['chain']).sum())} loop-closure edges "
            f"in {g['seconds']:.1f}s; Dijkstra from {len(sources)} sources {time.perf_counter() - t1:.1f}s; "
            f"reachable {np.isfinite(rows[:, train_frames]).mean():.3f}")
        conn = G.connectivity(g)
        if conn["largest_share"] < G.CONNECTED_SHARE:
            log(f"stage 2 graph {w.name}: WARNING fragmented: its largest strongly connected part holds "
                f"{conn['largest_share']:.1%} of the frames ({conn['components']} parts); goals outside it cannot "
                f"be reached on the graph. Record more of this place: drive through it again, in both directions")
        graphs[w.name] = _WorldGraph(codes, g, sources, rows)
        summary_worlds[w.name] = {
            "frames": len(w), "trajectories": int(len(np.unique(w.traj))), "val_trajectories": len(w.val_traj),
            "bags": w.sources, "graph_seconds": g["seconds"], "graph_file": G.graph_name(w.name),
            "graph_edges": {"chain": int(g["chain"].sum()), "loop_closure": int((~g["chain"]).sum())},
            "closures": closures, "graph_connectivity": conn,
        }
    return graphs, summary_worlds


def world_graph(model, w, codes, tcfg: TrainConfig, progress=None, log=print, dist=None) -> tuple[dict, dict]:
    """Stage 2 for one world: the loop-closure graph over its frames' codes (laser or
    f-dagger closures, `closure_rule`) and how the closures were found ({rule, why, the
    laser's counts}). `o4a train` and the graph baseline's rebuild of a graph file
    (bench/graph_baseline.py `load_training_graph`) both build it here."""
    rule, mount, why = closure_rule(w, tcfg)
    log(f"stage 2 graph {w.name}: {rule} loop closures ({why})")
    laser = None
    if rule == "laser":
        laser = C.laser_closures(codes, w.laser.ranges, w.laser.geometry, mount, _closure_params(tcfg),
                                 progress=progress, traj=w.traj)
        st = laser["stats"]
        log(f"stage 2 laser {w.name}: {st['candidates']} candidate pairs ({tcfg.laser_knn} nearest codes), "
            f"{st['after_precheck']} after the range pre-check, {st['grown']} grown along the trajectories, "
            f"{st['accepted']} of {st['registered']} registrations accepted, {st['edges']} "
            f"one-action edges; {st['seconds']:.1f}s (registration {st['register_seconds']:.1f}s)")
    g = G.build_graph(model.inverse, codes, w.actions, w.next_ok, tcfg.graph_block, progress=progress,
                      nc_offset=graph_logit_offset(tcfg), dist=dist if laser is None else None,
                      loops=None if laser is None else (laser["src"], laser["dst"], laser["action"]))
    if laser is not None:
        g["seconds"] += laser["stats"]["seconds"]
    if tcfg.graph_weights == "actions" or (tcfg.graph_weights == "auto" and laser is not None):
        g["weight"] = G.action_weights(g["action"])
    return g, {"rule": rule, "why": why, **(dict(laser["stats"]) if laser is not None else {})}


def closure_rule(w, tcfg: TrainConfig):
    """(rule "laser" or "image", the laser's mount Pose2D or None, why) for one world under
    train.graph_closures; UserError when "laser" is asked for and cannot be had."""
    setting = tcfg.graph_closures
    if setting == "image":
        return "image", None, "train.graph_closures=image"
    lf = w.laser
    if lf is None:
        problem = "the bags have no laser scans on the scan topic"
        mount = None
    else:
        mount = lf.mount if lf.mount is not None else tcfg.mount_pose()
        problem = "" if mount is not None else lf.usable()
        if lf.mount is None and mount is not None:
            problem = ""
    if problem:
        if setting == "laser":
            raise UserError(f"world {w.name}: train.graph_closures=laser needs laser scans: {problem}")
        return "image", None, f"f-dagger: {problem}"
    source = lf.mount_source if lf.mount is not None else "train.laser_mount"
    return "laser", mount, f"laser mount ({mount.x:.3f}, {mount.y:.3f}, {mount.yaw:.3f}) from {source}"


def _closure_params(tcfg: TrainConfig) -> C.ClosureParams:
    return C.ClosureParams(knn=tcfg.laser_knn, tol_m=tcfg.laser_tol_m, tol_deg=tcfg.laser_tol_deg,
                           workers=tcfg.laser_workers)


def _stage3(model, worlds, graphs: dict, tcfg: TrainConfig, work: Path, mode: _Scratch, progress, log):
    """f on the graphs' edges (checkpointed when done), or kept from the base model."""
    if not mode.trains_h:
        log(f"stage 3 skipped: f from {mode.base}")
        return None
    return _checkpointed(
        work / f"stage3_{_settings_key(tcfg, 'f')}.pt", model.forward_model,
        lambda: train_forward(model, [graphs[w.name].codes for w in worlds], [graphs[w.name].graph for w in worlds],
                              tcfg, progress=progress, log=log))


def _stage4(model, worlds, graphs: dict, tcfg: TrainConfig, work: Path, progress, log) -> dict:
    """p+ of each world (each checkpointed when done): {world: history}."""
    history = {}
    for w in worlds:
        wg = graphs[w.name]
        head = model.geodesic_head(w.name)
        key = hashlib.sha1(w.name.encode()).hexdigest()[:10]
        history[w.name] = _checkpointed(
            work / f"stage4_{key}_{_settings_key(tcfg, 'p+')}.pt", head,
            lambda: train_geodesic(head, wg.codes, wg.dist_rows, wg.sources, w.frames(val=False), tcfg,
                                   progress=progress, log=log, desc=f"stage 4 p+ {w.name}",
                                   predicted=(chain_predictions(model.forward_model, wg.codes, w)
                                              if tcfg.geodesic_predicted_share > 0 else None)))
    return history


def _save(model, out: Path, final_out: Path, mode: _Scratch, bags, worlds, tcfg: TrainConfig, preset: str,
          timings: dict, log) -> None:
    """weights.pt and meta.json into the staging directory `out` (with what the mode carries
    over from its start model)."""
    mode.carry_over(out)
    training_meta = {"bags": [str(b) for b in bags], "base": str(mode.base) if mode.base else None,
                     "train_config": to_dict(tcfg), "preset": mode.preset_label(preset),
                     "frames": {w.name: len(w) for w in worlds}, "timings_s": timings}
    prev = list(model.meta.get("training_runs", []))
    save_model(model, out, {"training": training_meta, "training_runs": prev + [training_meta]})
    log(f"model written to {out} (installed as {final_out} when the report is done)")


def _report(model, out: Path, final_out: Path, mode: _Scratch, worlds, graphs: dict, summary_worlds: dict,
            history: dict, mcfg, tcfg: TrainConfig, timings: dict) -> dict:
    """The report (ground-truth poses are used only here) written into `out`."""
    t0 = time.perf_counter()
    for w in worlds:
        wg = graphs[w.name]
        head = model.geodesic_head(w.name)
        m = summary_worlds[w.name]
        m["labels"] = R.label_summary(w)
        m["fdagger"] = inverse_accuracy(model, w, wg.codes, seed=tcfg.seed)
        m["loop_closure"] = R.loop_closure_metrics(wg.graph, w.poses, w.traj)
        m["geodesic"] = R.geodesic_metrics(w, wg.codes, head, wg.dist_rows, wg.sources, seed=tcfg.seed)
        fig = R.latent_map(out / f"report_latent_{G.graph_name(w.name)[6:-4]}.png", w, wg.codes, head)
        m["latent_map"] = fig.name if fig else None
        m["graph_pose"] = R.graph_pose_check(out, w, tcfg.report_graph_episodes)
    timings["report"] = time.perf_counter() - t0
    weights_bytes = (out / "weights.pt").stat().st_size
    summary_worlds = {**mode.earlier_worlds(final_out, out), **summary_worlds}   # a base's other worlds kept
    return R.write_report(out, {"worlds": summary_worlds, "history": history, "timings_s": timings,
                                "model_dir": str(final_out), "base": str(mode.base) if mode.base else None,
                                "init": str(mode.init) if mode.init else None,
                                "weights_bytes": weights_bytes, "config": to_dict(mcfg),
                                "train_config": to_dict(tcfg)})


def _train(bags, out, *, work_dir, preset, overrides, base, init, topics, world, resume, segment, force, progress,
           log, ctx) -> dict:
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(out)
    if progress is None:
        from o4a_nav.learning.training import default_progress
        progress = default_progress()
    if not ctx.is_main:   # one voice: rank 0 logs and shows progress
        import functools

        from tqdm import tqdm
        progress, log = functools.partial(tqdm, disable=True), (lambda *a, **k: None)
    elif ctx.enabled:
        log(f"torch.distributed: {ctx.world_size} processes, backend {torch.distributed.get_backend()}, "
            f"device {ctx.device}")
    mode = _mode(out, base, init, force)
    start_model, mcfg, tcfg = mode.configs(preset, overrides)
    torch.set_num_threads(max(1, tcfg.threads))
    work = Path(work_dir) if work_dir else Path("runs") / f"train_{out.resolve().name}"
    held = ctx.data_shards(tcfg.data_shards)   # this process's data shards (UserError on a bad split)
    if ctx.is_main:
        _prepare_work_dir(work, _fingerprint(bags, tcfg, mcfg, base, init, segment), tcfg.data_shards, resume, log)
    ctx.barrier()

    t0 = time.perf_counter()
    worlds = load_worlds(bags, topics, world, tcfg.val_fraction, tcfg.seed, progress=progress, segment=segment,
                         data_shards=tcfg.data_shards, held=held)
    timings["read_bags"] = time.perf_counter() - t0
    _log_worlds(worlds, log)
    _log_shards(worlds, tcfg, ctx, log)
    model = _initial_model(mode, start_model, mcfg, worlds, tcfg, log)
    history: dict = {"stage4": {}}

    t0 = time.perf_counter()
    h1 = _stage1(model, worlds, tcfg, work, mode, ctx, progress, log)
    if mode.trains_h:
        history["stage1"] = h1
    timings["stage1_h_fdagger"] = time.perf_counter() - t0

    # from here on `out` is the staging directory, swapped in at `final_out` at the end
    final_out, out = out, (begin_model_dir(out) if ctx.is_main else None)   # rank 0 writes the model
    t0 = time.perf_counter()
    graphs, summary_worlds = _stage2(model, worlds, tcfg, out, ctx, progress, log)
    timings["stage2_graph"] = time.perf_counter() - t0
    if not ctx.is_main:
        return {}

    t0 = time.perf_counter()
    h3 = _stage3(model, worlds, graphs, tcfg, work, mode, progress, log)
    if mode.trains_h:
        history["stage3"] = h3
    timings["stage3_f"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    history["stage4"] = _stage4(model, worlds, graphs, tcfg, work, progress, log)
    timings["stage4_pplus"] = time.perf_counter() - t0
    timings["total_training"] = time.perf_counter() - t_start

    _save(model, out, final_out, mode, bags, worlds, tcfg, preset, timings, log)
    report = _report(model, out, final_out, mode, worlds, graphs, summary_worlds, history, mcfg, tcfg, timings)
    commit_model_dir(out, final_out)
    log(f"model saved to {final_out}")
    log(f"report: {final_out / 'report.md'}  (Spearman {report.get('geodesic_spearman')}, "
        f"loop-closure precision {report.get('loop_closure_precision')}, "
        f"f-dagger balanced accuracy {report.get('fdagger_val_balanced_accuracy')})")
    return report
