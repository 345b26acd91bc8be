"""The model directory: save/load the O4A networks with their metadata.

Layout of models/NAME/ (contract in docs/ARCHITECTURE.md):
    meta.json        format, config, versions, world names, input spec, classes
    weights.pt       state dicts: backbone (h), inverse (f-dagger), forward (f), geodesic/<i> (p+ per world)
    report.json      training figures (written by the pipeline)
    report.md, *.png training report
    graph_<world>.npz  training graph (codes + sparse edges) for the graph baseline

    model = load_model(path)            # raises ModelLoadError (missing, corrupt, incompatible,
                                        # checksum mismatch, non-finite weights or outputs)
    model.integrity_warning             # "" or why the weights could not be verified
    model.worlds                        # world names with a p+ head
    x = model.embed(front, rear)        # uint8 (96,96,3) or (B,96,96,3) each -> float (B, n)
    model.inverse_logits(x_i, x_j)      # (B, 5) [NOT_CONNECTED, STOP, FORWARD, LEFT, RIGHT]
    model.forward_kinematics(x, a)      # a: Action values 1..3 -> (B, n)
    model.geodesic(x_s, x_g, world)     # (B,) p+ >= 0
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from o4a_nav.errors import ModelLoadError
from o4a_nav.image_conv import MODEL_HFOV_DEG
from o4a_nav.learning.config import CLASSES, ModelConfig, model_config_from_dict, to_dict
from o4a_nav.learning.models import ForwardHead, GeodesicHead, InverseHead, LocalBackbone, images_to_tensor

FORMAT = "o4a_nav.model"
FORMAT_VERSION = 1
META_FILE = "meta.json"
WEIGHTS_FILE = "weights.pt"
INPUT_SPEC = {"cameras": ["front", "rear"], "height": 96, "width": 96, "channels": 3, "encoding": "rgb8",
              "dtype": "uint8", "scale": "pixels / 255, no mean/std normalisation",
              "converter": "o4a_nav.image_conv.to_model_input",
              # the trained view: the simulator's square 90 deg camera; other cameras are cropped to it
              # (image_conv.crop_box) with their intrinsics: CameraInfo in training, the navigator's
              # camera_info / camera parameters at run time; without intrinsics the centred square
              "view": {"hfov_deg": MODEL_HFOV_DEG, "vfov_deg": MODEL_HFOV_DEG, "aspect": "square",
                       "framing": "o4a_nav.image_conv.crop_box"}}


class O4AModel(nn.Module):
    """h, f-dagger, f and one p+ per world. Inference methods run without gradients in eval mode."""

    integrity_warning: str = ""  # set by load_model when the weights could not be verified

    def __init__(self, cfg: ModelConfig, worlds=()):
        super().__init__()
        self.config = cfg
        self.backbone = LocalBackbone(cfg)
        self.inverse = InverseHead(cfg)
        self.forward_model = ForwardHead(cfg)
        self.geodesic_heads = nn.ModuleList()
        self.worlds: list[str] = []
        self.meta: dict = {}
        for w in worlds:
            self.add_world(w)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def add_world(self, name: str) -> GeodesicHead:
        if name in self.worlds:
            raise ValueError(f"world {name!r} already has a p+ head")
        head = GeodesicHead(self.config).to(self.device if len(list(self.parameters())) else "cpu")
        self.worlds.append(name)
        self.geodesic_heads.append(head)
        return head

    def geodesic_head(self, world: str) -> GeodesicHead:
        try:
            return self.geodesic_heads[self.worlds.index(world)]
        except ValueError:
            raise KeyError(f"no p+ head for world {world!r}; this model knows: {', '.join(self.worlds) or 'none'}") from None

    # ---- inference API (used by the navigator and the benchmark) ----
    @torch.inference_mode()
    def embed(self, front, rear) -> torch.Tensor:
        self.eval()
        f = images_to_tensor(front, self.device)
        r = images_to_tensor(rear, self.device)
        if f.shape != r.shape:
            raise ValueError(f"front {tuple(f.shape)} and rear {tuple(r.shape)} batches differ")
        return self.backbone(f, r)

    @torch.inference_mode()
    def inverse_logits(self, x_i, x_j) -> torch.Tensor:
        self.eval()
        x_i, x_j = _codes(x_i, self.device), _codes(x_j, self.device)
        return self.inverse(*torch.broadcast_tensors(x_i, x_j))

    @torch.inference_mode()
    def forward_kinematics(self, x, a) -> torch.Tensor:
        self.eval()
        return self.forward_model(_codes(x, self.device), a)

    @torch.inference_mode()
    def geodesic(self, x_s, x_g, world: str) -> torch.Tensor:
        self.eval()
        x_s, x_g = _codes(x_s, self.device), _codes(x_g, self.device)
        x_s, x_g = torch.broadcast_tensors(x_s, x_g)
        return self.geodesic_head(world)(x_s, x_g)


def _codes(x, device) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float32, device=device)
    return t[None] if t.ndim == 1 else t


def _versions() -> dict:
    import o4a_nav

    return {"o4a_nav": getattr(o4a_nav, "__version__", "unknown"), "torch": torch.__version__,
            "numpy": np.__version__, "python": sys.version.split()[0], "platform": platform.platform()}


def weights_sha256(path) -> str:
    """sha256 (hex) of a weights file, as recorded in meta.json (``weights_sha256``)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_outputs(model: O4AModel) -> str:
    """Run a fixed probe batch through every head; "" when all outputs are finite, else
    which head produced NaN/inf (corrupt weights)."""
    rng = np.random.default_rng(0)
    size = int(model.config.image_size)
    imgs = np.stack([np.zeros((size, size, 3), np.uint8), np.full((size, size, 3), 255, np.uint8),
                     rng.integers(0, 256, (size, size, 3), dtype=np.uint8)])
    with torch.inference_mode():
        x = model.embed(imgs, imgs[::-1].copy())
        outs = {"h (embedding)": x}
        acts = torch.tensor([1, 2, 3])
        outs["f (forward kinematics)"] = model.forward_kinematics(x, acts)
        outs["f-dagger (inverse)"] = model.inverse_logits(x, x.roll(1, 0))
        for w in model.worlds:
            outs[f"p+ ({w})"] = model.geodesic(x, x.roll(1, 0), w)
    bad = [name for name, t in outs.items() if not bool(torch.isfinite(t).all())]
    return f"non-finite outputs on a probe batch from {', '.join(bad)}" if bad else ""


def save_model(model: O4AModel, path, extra_meta: dict | None = None) -> Path:
    """Write weights.pt + meta.json (with the weights' sha256) atomically (temp file +
    rename). Returns the directory."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    tmp = path / (WEIGHTS_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path / WEIGHTS_FILE)
    meta = dict(model.meta)
    meta.update(extra_meta or {})
    meta["weights_sha256"] = weights_sha256(path / WEIGHTS_FILE)
    meta.update({"format": FORMAT, "format_version": FORMAT_VERSION, "config": to_dict(model.config),
                 "worlds": list(model.worlds), "classes": list(CLASSES), "input": INPUT_SPEC,
                 "embed_dim": model.config.embed_dim, "versions": _versions(),
                 "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    model.meta = meta
    tmp = path / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(tmp, path / META_FILE)
    return path


# ---- writing a whole model directory: into a sibling, swapped in at the end --------------

def _siblings(out: Path, kind: str) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.{kind}-*"))


def _owner_alive(sibling: Path) -> bool:
    """Is the process that made `.NAME.old-PID` / `.NAME.new-PID` still running (then it is
    in the middle of its swap and its directories are not to be touched)?"""
    try:
        pid = int(sibling.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():        # this process's own swap, interrupted by an exception: over
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:       # exists, another user's
        return True
    return True


def recover_model_dir(out) -> Path | None:
    """A swap interrupted between its two renames leaves `out` missing and the previous
    model in `.NAME.old-PID`: move it back (only when process PID is gone: a running swap
    is left alone). Returns the restored path or None."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        return None
    for old in reversed(_siblings(out, "old")):
        if (old / META_FILE).is_file() and not _owner_alive(old):
            os.replace(old, out)
            return out
    return None


def clean_model_siblings(out) -> list[Path]:
    """Remove what killed swaps left beside a complete model `out`: `.NAME.old-PID` copies
    (a kill after the second rename, before the old model was deleted) and `.NAME.new-PID`
    staging directories, of processes that are gone. Returns the removed paths."""
    import shutil

    out = Path(out)
    if not (out / META_FILE).is_file():
        return []
    removed = []
    for stale in _siblings(out, "old") + _siblings(out, "new"):
        if not _owner_alive(stale):
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    return removed


def check_model_out(out, force: bool = False, update: bool = False) -> Path:
    """Refuse an --out that would lose something, before any work: an existing file, or an
    existing non-empty directory unless `force` (replace it) or `update` (the run extends
    this very model, e.g. `--base X --out X`). UserError names the path."""
    from o4a_nav.errors import UserError

    out = Path(out)
    recover_model_dir(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file, not a model directory; choose another path")
    if out.is_dir() and any(out.iterdir()) and not (force or update):
        what = "a model" if (out / META_FILE).is_file() else "a non-empty directory"
        raise UserError(f"--out {out} is {what} already; choose a new directory or add --force to replace it")
    if out.parent.exists() and not out.parent.is_dir():
        raise UserError(f"--out {out}: {out.parent} is a file, not a directory")
    return out


def begin_model_dir(out) -> Path:
    """A fresh staging directory beside `out` (same file system, so the swap is a rename).
    What killed runs left is put right first: a model interrupted between the renames is
    moved back (recover_model_dir), staging directories and `.NAME.old-PID` copies of
    processes that are gone are removed (clean_model_siblings)."""
    import shutil

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    recover_model_dir(out)
    clean_model_siblings(out)
    for stale in _siblings(out, "new"):
        if not _owner_alive(stale):
            shutil.rmtree(stale, ignore_errors=True)
    stage = out.parent / f".{out.name}.new-{os.getpid()}"
    stage.mkdir()
    return stage


def commit_model_dir(stage, out) -> Path:
    """Put the staged directory in place of `out`: out -> .NAME.old-PID, stage -> out, then
    delete the old one. Killed at any point, either the old or the new model is complete
    (after a kill between the renames `recover_model_dir` brings the old one back)."""
    import shutil

    stage, out = Path(stage), Path(out)
    for f in (META_FILE, WEIGHTS_FILE):
        if not (stage / f).is_file():
            raise RuntimeError(f"staged model {stage} lacks {f}; not installed")
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


def _missing_model(path: Path) -> None:
    """`path` does not exist. A swap killed between its renames left the model in
    `.NAME.old-PID`: put it back and go on loading (a warning says so). Otherwise
    ModelLoadError, naming the copy when a swap is running or the move is not allowed."""
    olds = [o for o in reversed(_siblings(path, "old")) if (o / META_FILE).is_file()] if path.parent.is_dir() else []
    if not olds:
        raise ModelLoadError(f"model directory {path} does not exist (train one with `o4a train --bags ... --out {path}`)")
    try:
        restored = recover_model_dir(path)
    except OSError as exc:
        raise ModelLoadError(f"model directory {path} does not exist; the previous model is in {olds[0]} (a model "
                             f"swap was interrupted) and could not be moved back ({exc}): rename it to {path}") from None
    if restored is None:
        raise ModelLoadError(f"model directory {path} does not exist right now: `o4a train` (process "
                             f"{olds[0].name.rsplit('-', 1)[1]}) is swapping in a new model; the previous model is in "
                             f"{olds[0]}. Load again in a moment")
    warnings.warn(f"{path} was missing after an interrupted model swap; the previous model was moved back from "
                  f"{olds[0]}", stacklevel=3)


def _read_meta(path: Path) -> tuple[dict, ModelConfig, list[str]]:
    """(description, config, worlds) of an existing path's model directory, checked."""
    if not path.is_dir():
        raise ModelLoadError(f"{path} is not a model directory")
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise ModelLoadError(f"{path} is not an o4a model directory: {META_FILE} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{meta_path} is corrupt: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelLoadError(f"{meta_path} is not an o4a model description (format field missing or wrong)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(f"{meta_path}: model format version {meta.get('format_version')} is not supported "
                             f"by this o4a_nav (expects {FORMAT_VERSION}); retrain the model")
    if list(meta.get("classes", [])) != list(CLASSES):
        raise ModelLoadError(f"{meta_path}: f-dagger classes {meta.get('classes')} differ from {list(CLASSES)}")
    try:
        cfg = model_config_from_dict(meta["config"])
        worlds = [str(w) for w in meta["worlds"]]
    except Exception as exc:
        raise ModelLoadError(f"{meta_path}: invalid config or worlds field ({exc})") from None
    return meta, cfg, worlds


def _verify_weights(path: Path, meta: dict) -> str:
    """The weights file is there and matches the description's weights_sha256 -> "", or the
    warning (also issued, for load_model's caller) that it has none."""
    meta_path, weights_path = path / META_FILE, path / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ModelLoadError(f"{path}: {WEIGHTS_FILE} is missing")
    expected = meta.get("weights_sha256")
    if expected:
        actual = weights_sha256(weights_path)
        if actual != expected:
            raise ModelLoadError(f"{weights_path}: sha256 {actual[:16]}... differs from {expected[:16]}... in "
                                 f"{META_FILE}: the weights are corrupt or were replaced")
        return ""
    warning = (f"{meta_path} has no weights_sha256: {WEIGHTS_FILE} cannot be verified "
               f"(re-save the model to add it)")
    warnings.warn(warning, stacklevel=3)
    return warning


def _load_weights(weights_path: Path, cfg: ModelConfig, worlds: list[str]) -> O4AModel:
    """The model of cfg and worlds with the weights file's weights (all finite)."""
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"{weights_path} is corrupt or not a torch weights file: {exc}") from None
    model = O4AModel(cfg, worlds)
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:
        raise ModelLoadError(f"{weights_path} does not match the architecture in {META_FILE}: "
                             f"{str(exc).splitlines()[0]}") from None
    bad = [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ModelLoadError(f"{weights_path}: non-finite values (NaN/inf) in {len(bad)} tensor(s), e.g. {bad[0]}")
    return model


def load_model(path, device: str | torch.device = "cpu") -> O4AModel:
    """Load a model directory. ModelLoadError names the file and what is wrong."""
    path = Path(path)
    if not path.exists():
        _missing_model(path)
    meta, cfg, worlds = _read_meta(path)
    warning = _verify_weights(path, meta)
    weights_path = path / WEIGHTS_FILE
    model = _load_weights(weights_path, cfg, worlds)
    model.meta = meta
    model.integrity_warning = warning
    model.eval()
    why = check_outputs(model)
    if why:
        raise ModelLoadError(f"{weights_path}: {why}")
    model.to(device)
    return model
