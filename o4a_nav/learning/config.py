"""Model and training configuration (plain dataclasses, stored in meta.json).

Two model presets: `compact` (the default; trains on a 2-core CPU) and `paper` (ResNet-18
backbone from scratch, 512-d per image, 5-layer Conv1D fusion, 256-d codes: the paper's
network). Select with `o4a train --preset paper` or override single fields with
`--set model.backbone=resnet18`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from o4a_nav.errors import UserError

# f-dagger classes: index 0 = NOT_CONNECTED, then class k+1 = Action(k).
CLASSES = ("NOT_CONNECTED", "STOP", "FORWARD", "ROTATE_LEFT", "ROTATE_RIGHT")
NOT_CONNECTED = 0
NUM_CLASSES = len(CLASSES)


def action_to_class(action):
    """Action value (0..3) -> f-dagger class (1..4). Works on ints, numpy and torch."""
    return action + 1


@dataclass
class ModelConfig:
    backbone: str = "compact"            # "compact" | "resnet18"
    image_size: int = 96
    compact_channels: tuple = (16, 32, 64, 128, 128)
    image_feature_dim: int = 256          # per-camera vector (paper: 512 with ResNet-18)
    fusion_conv_layers: int = 2           # Conv1D layers over the 2 camera channels (paper: 5)
    fusion_conv_channels: int = 8
    fusion_hidden: int = 256              # MLP hidden width after fusion (paper: 256)
    embed_dim: int = 128                  # n, size of x = h(o) (paper: 256)
    inverse_hidden: tuple = (128, 64)     # f-dagger MLP on concat(x_i, x_j)
    forward_hidden: int = 256             # f residual MLP width
    geodesic_dim: int = 128               # width of g
    geodesic_blocks: int = 2              # residual blocks in g
    geodesic_hidden: int = 128            # MLP on g(x_g) - g(x_s)

    def __post_init__(self):
        self.compact_channels = tuple(int(c) for c in self.compact_channels)
        self.inverse_hidden = tuple(int(c) for c in self.inverse_hidden)
        if self.backbone not in ("compact", "resnet18"):
            raise UserError(f"model.backbone must be 'compact' or 'resnet18', not {self.backbone!r}")
        if self.image_size != 96:
            raise UserError("model.image_size must be 96 (the model input of o4a_nav.image_conv)")


@dataclass
class TrainConfig:
    """Training settings (stored in meta.json)."""

    # stage 1: h + f-dagger
    batch_size: int = 64                  # B consecutive pairs per step (B^2 in-batch pairs)
    local_epochs: int = 8
    lr: float = 3e-4                      # paper: Adam 1e-4; CPU default 3e-4 (far fewer steps, see docs/LEARNING.md)
    # stage-1 learning rate over the run's epochs: "constant" (lr throughout, as all shipped
    # models so far) or "cosine" (lr -> lr_min along a half cosine over local_epochs, per step;
    # a resumed run continues the curve)
    lr_schedule: str = "constant"
    lr_min: float = 1e-5
    margin_pos: float = 1.0               # m+ (paper)
    margin_neg: float = 10.0              # m- (paper)
    ce_weight: float = 1.0
    not_connected_share: float = 0.5      # share of the CE weight carried by NOT_CONNECTED pairs
    contrastive_weight: float = 1.0
    freeze_h_epochs: int = 1              # last epochs: h frozen, f-dagger fine-tuned alone
    augment: bool = True                  # small brightness/contrast jitter
    # Revisit positives: this share of stage-1 positive pairs are laser-verified one-action
    # pairs of frames on different visits (from the start model's h with laser closures; needs
    # --init). 0 = the paper's: recorded transitions only. Not a default until it wins.
    revisit_share: float = 0.0
    # stage 2: graph
    graph_block: int = 256                # f-dagger evaluated on block x block pairs at once
    # Stage-1 CE weights give NOT_CONNECTED half the weight although it is ~(B-1) times more
    # frequent per anchor; at graph time its logit gets log of that ratio back (logit
    # adjustment), i.e. argmax under the batch's natural class frequencies. -1 = auto
    # (log(batch_size - 1)); 0 = plain argmax as in the paper.
    graph_logit_adjust: float = -1.0
    # Loop closures: "auto" = "laser" for a world whose bags all carry laser scans with a
    # known mount, else "image"; "laser" = candidates from h's nearest codes verified by scan
    # registration and labelled by the registered pose (o4a_nav/learning/closures.py; refused
    # when a bag has no usable scans); "image" = f-dagger on all pairs (the paper's rule).
    # Default "image": laser graphs are exact (precision 1.000) but p+ fitted to them
    # navigates worse with the shipped h: on the same bags, seeds 1/2, 16/44 and 30/55
    # against 31/44 and 39/55 for image closures (docs/journal/laser_closures.md); use
    # --set train.graph_closures=auto to have them.
    graph_closures: str = "image"
    # Edge weights of the graph: "dh" = d_h(x_i, x_j) (the paper's); "actions" = what the
    # edge's action costs: 1 per FORWARD or rotation, 0.05 per STOP (same place) edge, so
    # that d_G counts the motions to the goal, turns included (meaningful when the actions of
    # the loop closures are exact); "auto" = "actions" for a laser-closure graph, "dh" for an
    # image one. On laser graphs actions beat dh on seed 1 (26 vs 16 of 44) and tied on seed 2
    # (29 vs 30 of 55): not a default (docs/journal/laser_closures.md).
    graph_weights: str = "dh"
    laser_knn: int = 20                   # candidates per frame: its nearest codes
    laser_tol_m: float = 0.1              # a registered pose is an action within these
    laser_tol_deg: float = 7.5
    laser_workers: int = 2                # registration processes
    # The laser's pose in the base frame "x,y,yaw" (m, m, rad) for bags whose /tf_static
    # does not give it; "" = from the bags.
    laser_mount: str = ""
    # stage 3: f
    forward_steps: int = 3000             # sampled mini-batches of graph motion edges
    forward_batch: int = 256
    # stage 4: p+
    geodesic_steps: int = 4000
    geodesic_batch: int = 512
    geodesic_noise: float = 0.1           # Gaussian noise on codes (paper sigma 0.1)
    geodesic_sources: int = 2000          # Dijkstra sources kept per world (rows of d_G)
    geodesic_lr: float = 1e-3
    # Share of stage-4 sources given as f's prediction f(x_{s-1}, a_{s-1}) from the recorded
    # predecessor instead of h's code x_s (same target d_G(s, t)): at run time p+ is only
    # ever queried on f's predictions, which lie off the codes p+ was fitted on. 0 = paper;
    # 0.5 won on two benchmark seeds (docs/journal/benchmark.md, decision-rule experiments).
    geodesic_predicted_share: float = 0.5
    # report: the graph check (`o4a diagnose --mode graph-pose`: the rule navigating by d_G of
    # the new graph at perfect localisation) on this many benchmark episodes per difficulty
    # and world (seed 1), for worlds with true poses and a simulator world; 0 = skipped
    report_graph_episodes: int = 2
    # data
    val_fraction: float = 0.3             # share of trajectories held out (paper 30 %)
    # The frames form this many shards of whole trajectories; a stage-1 batch takes
    # batch_size / data_shards transitions from each. Under torchrun with m processes
    # (data_shards a multiple of m) each process holds the images of data_shards / m shards
    # only, and 1 or m processes give the same batches (docs/LEARNING.md, Scale-out).
    data_shards: int = 1
    seed: int = 0
    threads: int = 2                      # torch CPU threads
    # stage-1 arithmetic: "fp32" or "bf16" (torch.autocast: convolutions and matrix products
    # in bfloat16, losses in float32; fast on CPUs with AMX/AVX-512-BF16 and on GPUs).
    # Measured by scripts/measure_stage1_throughput.py (docs/journal/learning.md, "Stage-1 throughput").
    precision: str = "fp32"

    def __post_init__(self):
        if self.data_shards < 1:
            raise UserError(f"train.data_shards must be >= 1, not {self.data_shards}")
        if self.batch_size % self.data_shards:
            raise UserError(f"train.batch_size ({self.batch_size}) must be a multiple of train.data_shards "
                            f"({self.data_shards}): every batch takes as many transitions from each shard")
        if not 0.0 <= self.geodesic_predicted_share <= 1.0:
            raise UserError(f"train.geodesic_predicted_share must be in [0, 1], not {self.geodesic_predicted_share}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise UserError(f"train.lr_schedule must be 'constant' or 'cosine', not {self.lr_schedule!r}")
        if not 0.0 <= self.lr_min <= self.lr:
            raise UserError(f"train.lr_min must be in [0, train.lr], not {self.lr_min}")
        if self.graph_weights not in ("auto", "dh", "actions"):
            raise UserError(f"train.graph_weights must be 'auto', 'dh' or 'actions', not {self.graph_weights!r}")
        if not 0.0 <= self.revisit_share < 1.0:
            raise UserError(f"train.revisit_share must be in [0, 1), not {self.revisit_share}")
        if self.graph_closures not in ("auto", "laser", "image"):
            raise UserError(f"train.graph_closures must be 'auto', 'laser' or 'image', not {self.graph_closures!r}")
        if self.laser_knn < 1 or self.laser_workers < 1 or not self.laser_tol_m > 0 or not self.laser_tol_deg > 0:
            raise UserError("train.laser_knn and train.laser_workers must be >= 1, train.laser_tol_m and "
                            "train.laser_tol_deg > 0")
        if self.laser_mount:
            self.mount_pose()
        if self.report_graph_episodes < 0:
            raise UserError(f"train.report_graph_episodes must be >= 0, not {self.report_graph_episodes}")
        if self.precision not in ("fp32", "bf16"):
            raise UserError(f"train.precision must be 'fp32' or 'bf16', not {self.precision!r}")


    def mount_pose(self):
        """train.laser_mount as a Pose2D, or None when not set."""
        from o4a_nav.types import Pose2D

        if not self.laser_mount:
            return None
        try:
            x, y, yaw = (float(v) for v in self.laser_mount.split(","))
        except ValueError:
            raise UserError(f"train.laser_mount must be 'x,y,yaw' (metres, metres, radians), not "
                            f"{self.laser_mount!r}") from None
        return Pose2D(x, y, yaw)


PRESETS = {
    "compact": {},
    "paper": {"backbone": "resnet18", "image_feature_dim": 512, "fusion_conv_layers": 5,
              "embed_dim": 256, "fusion_hidden": 256, "inverse_hidden": (256, 128),
              "forward_hidden": 256, "geodesic_dim": 256, "geodesic_hidden": 256},
}


def _coerce(value: str, current):
    if isinstance(current, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, tuple):
        return tuple(int(v) for v in value.split(",") if v)
    return value


def graph_logit_offset(cfg: "TrainConfig") -> float:
    import math
    return math.log(max(cfg.batch_size - 1, 1)) if cfg.graph_logit_adjust < 0 else float(cfg.graph_logit_adjust)


def make_configs(preset: str = "compact", overrides: list[str] | None = None) -> tuple[ModelConfig, TrainConfig]:
    """Preset + `section.field=value` overrides (section: model or train)."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    model_kw = dict(PRESETS[preset])
    train_kw: dict = {}
    mdefaults = {f.name: f.default for f in fields(ModelConfig)}
    tdefaults = {f.name: f.default for f in fields(TrainConfig)}
    for item in overrides or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise UserError(f"--set {item!r}: expected section.field=value (e.g. train.local_epochs=5)")
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        table, target = {"model": (mdefaults, model_kw), "train": (tdefaults, train_kw)}.get(section, (None, None))
        if table is None or name not in table:
            raise UserError(f"--set {item!r}: unknown setting {key}")
        try:
            target[name] = _coerce(value, table[name] if name not in target else target[name])
        except ValueError:
            raise UserError(f"--set {item!r}: bad value for {key}") from None
    return ModelConfig(**model_kw), TrainConfig(**train_kw)


def to_dict(cfg) -> dict:
    d = dataclasses.asdict(cfg)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def model_config_from_dict(d: dict) -> ModelConfig:
    known = {f.name for f in fields(ModelConfig)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown model settings {sorted(unknown)}")
    return ModelConfig(**d)
