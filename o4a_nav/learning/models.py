"""The four O4A networks as plain PyTorch modules (no rclpy).

h (LocalBackbone): two camera images -> shared CNN encoder per image -> Conv1D fusion over
the two camera channels -> MLP -> x in R^n.
f-dagger (InverseHead): MLP on concat(x_i, x_j) -> 5 logits. Its first layer is split in an
x_i part and an x_j part (`project_source`, `project_target`) so that all-pairs evaluation
computes it once per frame (see graph.py); mathematically identical to one Linear on the
concatenation.
f (ForwardHead): x' = x + MLP([x, onehot(a)]).
p+ (GeodesicHead): g = residual MLP on each code, p+ = ELU(MLP(g(x_g) - g(x_s))) + 1.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from o4a_nav.learning.config import NUM_CLASSES, ModelConfig


# ---- per-image encoders ----------------------------------------------------------------

class CompactEncoder(nn.Module):
    """Strided conv layers (default 5: 96 -> 3 px) + linear. About 2 ms per image per training step on 2 CPU cores."""

    def __init__(self, channels=(16, 32, 64, 128, 128), out_dim=256):
        super().__init__()
        layers, cin = [], 3
        for i, cout in enumerate(channels):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(cin, cout, k, stride=2, padding=k // 2),
                       nn.GroupNorm(min(8, cout), cout), nn.ReLU(inplace=True)]
            cin = cout
        self.conv = nn.Sequential(*layers)
        side = 96 // (2 ** len(channels))
        self.fc = nn.Linear(cin * side * side, out_dim)

    def forward(self, img):
        return self.fc(self.conv(img).flatten(1))


class _BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18Encoder(nn.Module):
    """ResNet-18 (trained from scratch, as in the paper), global pooled 512-d, optional projection."""

    def __init__(self, out_dim=512):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.proj = nn.Identity() if out_dim == 512 else nn.Linear(512, out_dim)

    def forward(self, img):
        y = self.blocks(self.stem(img))
        return self.proj(F.adaptive_avg_pool2d(y, 1).flatten(1))


# ---- h -----------------------------------------------------------------------------------

class LocalBackbone(nn.Module):
    """h: (front, rear) float images (B, 3, 96, 96) in [0, 1] -> x (B, n)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.backbone == "resnet18":
            self.encoder = ResNet18Encoder(cfg.image_feature_dim)
        else:
            self.encoder = CompactEncoder(cfg.compact_channels, cfg.image_feature_dim)
        convs, cin = [], 2
        for _ in range(cfg.fusion_conv_layers):
            convs += [nn.Conv1d(cin, cfg.fusion_conv_channels, 3, padding=1), nn.ReLU(inplace=True)]
            cin = cfg.fusion_conv_channels
        convs += [nn.Conv1d(cin, 1, 1)]
        self.fusion = nn.Sequential(*convs)
        self.mlp = nn.Sequential(nn.Linear(cfg.image_feature_dim, cfg.fusion_hidden), nn.ReLU(inplace=True),
                                 nn.Linear(cfg.fusion_hidden, cfg.embed_dim))

    def forward(self, front, rear):
        b = front.shape[0]
        feats = self.encoder(torch.cat([front, rear], 0))          # shared encoder, one pass
        stacked = torch.stack([feats[:b], feats[b:]], 1)             # (B, 2 cameras, d)
        fused = self.fusion(stacked).squeeze(1)                      # (B, d)
        return self.mlp(fused)


# ---- f-dagger ------------------------------------------------------------------------------

class InverseHead(nn.Module):
    """f-dagger: (x_i, x_j) -> logits over CLASSES. Order matters."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        n, hidden = cfg.embed_dim, cfg.inverse_hidden
        self.first_src = nn.Linear(n, hidden[0])               # W[:, :n] of Linear(2n, h0) (+ bias)
        self.first_dst = nn.Linear(n, hidden[0], bias=False)   # W[:, n:]
        rest, cin = [], hidden[0]
        for h in hidden[1:]:
            rest += [nn.ReLU(inplace=False), nn.Linear(cin, h)]
            cin = h
        rest += [nn.ReLU(inplace=False), nn.Linear(cin, NUM_CLASSES)]
        self.rest = nn.Sequential(*rest)

    def project_source(self, x_i):
        return self.first_src(x_i)

    def project_target(self, x_j):
        return self.first_dst(x_j)

    def from_projections(self, a_i, b_j):
        """a_i, b_j broadcastable (..., h0) -> logits (..., 5)."""
        return self.rest(a_i + b_j)

    def forward(self, x_i, x_j):
        return self.from_projections(self.project_source(x_i), self.project_target(x_j))

    def pairwise(self, x_src, x_dst):
        """All pairs: (B, n), (C, n) -> (B, C, 5) logits. One projection per code."""
        return self.from_projections(self.project_source(x_src)[:, None, :], self.project_target(x_dst)[None, :, :])


# ---- f ----------------------------------------------------------------------------------------

class ForwardHead(nn.Module):
    """f: x' = x + MLP([x, onehot(a)]) for a in {FORWARD, ROTATE_LEFT, ROTATE_RIGHT} (Action 1..3)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        n = cfg.embed_dim
        self.mlp = nn.Sequential(nn.Linear(n + 3, cfg.forward_hidden), nn.ReLU(inplace=True),
                                 nn.Linear(cfg.forward_hidden, cfg.forward_hidden), nn.ReLU(inplace=True),
                                 nn.Linear(cfg.forward_hidden, n))

    def forward(self, x, action):
        action = torch.as_tensor(action, dtype=torch.long, device=x.device).reshape(-1)
        if action.numel() == 1 and x.shape[0] != 1:
            action = action.expand(x.shape[0])
        if bool(((action < 1) | (action > 3)).any()):
            raise ValueError("forward kinematics is defined for FORWARD, ROTATE_LEFT, ROTATE_RIGHT (1..3) only")
        onehot = F.one_hot(action - 1, 3).to(x.dtype)
        return x + self.mlp(torch.cat([x, onehot], 1))


# ---- p+ -----------------------------------------------------------------------------------------

class _ResBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.l1 = nn.Linear(d, d)
        self.l2 = nn.Linear(d, d)

    def forward(self, x):
        return x + self.l2(F.relu(self.l1(F.relu(x))))


class GeodesicHead(nn.Module):
    """p+(x_s, x_g) = ELU(MLP(g(x_g) - g(x_s))) + 1 >= 0, in units of d_G (sums of d_h)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.g = nn.Sequential(nn.Linear(cfg.embed_dim, cfg.geodesic_dim),
                               *[_ResBlock(cfg.geodesic_dim) for _ in range(cfg.geodesic_blocks)])
        self.out = nn.Sequential(nn.Linear(cfg.geodesic_dim, cfg.geodesic_hidden), nn.ReLU(inplace=True),
                                 nn.Linear(cfg.geodesic_hidden, cfg.geodesic_hidden), nn.ReLU(inplace=True),
                                 nn.Linear(cfg.geodesic_hidden, 1))
        # d_G units per unit of ELU(.)+1, set from the training graph before stage 4 so the
        # MLP regresses O(1) values; saved with the weights.
        self.register_buffer("distance_scale", torch.ones(()))

    def forward(self, x_s, x_g):
        return self.distance_scale * (F.elu(self.out(self.g(x_g) - self.g(x_s))).squeeze(-1) + 1.0)


def images_to_tensor(imgs, device=None) -> torch.Tensor:
    """uint8 (B, 96, 96, 3) numpy/torch -> float (B, 3, 96, 96) in [0, 1] (no mean/std normalisation)."""
    t = torch.as_tensor(imgs, device=device)
    if t.ndim == 3:
        t = t[None]
    if t.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {t.dtype}")
    return t.permute(0, 3, 1, 2).float().div_(255.0)
