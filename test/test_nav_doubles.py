"""Test double for the model API (o4a_nav.learning.model_io), for navigator unit tests only:
a grid world whose state (x, y, heading in quarter turns) is written into the images."""
import math

import numpy as np
import torch

R = math.sqrt(0.5)  # heading circle radius: a quarter turn moves the code by 1, like a step


def grid_obs(x: int, y: int, h: int, size: int = 96):
    """Front/rear images encoding a grid state; 96x96 so the converter keeps pixels intact."""
    f = np.zeros((size, size, 3), np.uint8)
    f[..., 0], f[..., 1], f[..., 2] = x + 100, y + 100, h % 4
    return f, f.copy()


class GridModel:
    """embed -> (x, y, R cos h, R sin h), a quarter turn is 1 apart; f moves one cell or turns a quarter; p+ = |dx| + |dy|."""

    worlds = ["grid"]

    def __init__(self):
        self.calls = {"embed": 0, "forward": 0, "geodesic": 0}

    def embed(self, front, rear):
        self.calls["embed"] += 1
        f = torch.as_tensor(np.asarray(front))
        if f.ndim == 3:
            f = f[None]
        px = f[:, 0, 0, 0].float() - 100
        py = f[:, 0, 0, 1].float() - 100
        h = f[:, 0, 0, 2].float() * (math.pi / 2)
        return torch.stack([px, py, R * torch.cos(h), R * torch.sin(h)], 1)

    def forward_kinematics(self, x, a):
        self.calls["forward"] += 1
        a = torch.as_tensor(a).reshape(-1)
        out = x.clone()
        c, s = x[:, 2] / R, x[:, 3] / R
        fwd = a == 1
        out[fwd, 0] += torch.round(c[fwd])
        out[fwd, 1] += torch.round(s[fwd])
        for val, sign in ((2, 1.0), (3, -1.0)):
            m = a == val
            ang = torch.atan2(s[m], c[m]) + sign * math.pi / 2
            out[m, 2], out[m, 3] = R * torch.cos(ang), R * torch.sin(ang)
        return out

    def geodesic(self, x_s, x_g, world):
        self.calls["geodesic"] += 1
        assert world == "grid"
        return (x_s[:, :2] - x_g[:, :2]).abs().sum(1)

    def inverse_logits(self, x_i, x_j):
        d = (x_i - x_j).norm(dim=1)
        out = torch.zeros(x_i.shape[0], 5)
        out[:, 0] = 1.0
        out[d < 0.1, 1] = 2.0
        return out


def grid_apply(state, action, blocked=frozenset()):
    """Ground-truth transition of the grid world (cells in `blocked` cannot be entered)."""
    x, y, h = state
    if action == 1:
        dx, dy = [(1, 0), (0, 1), (-1, 0), (0, -1)][h % 4]
        if (x + dx, y + dy) in blocked:
            return state
        return (x + dx, y + dy, h)
    if action == 2:
        return (x, y, (h + 1) % 4)
    if action == 3:
        return (x, y, (h - 1) % 4)
    return state
