"""Exact caches that make long episodes affordable without changing any decision.

- :class:`EmbedCache` wraps a model: ``embed`` of a single (front, rear) pair already
  seen in this episode returns the stored code (the networks are deterministic in eval
  mode, so the code is bit-identical). Other methods pass through. Policies that oscillate
  in place (the no-repulsor ablation, the graph baseline) revisit the same views for
  hundreds of steps.
- :class:`ViewCache`: the renderer is deterministic, so a pose revisited in the episode
  gets the images rendered the first time.

Decision latency is reported over cache misses only (``EmbedCache.last_hit``), so the
latency figures are those of a real decision, embedding included.
"""
from __future__ import annotations

import hashlib

import numpy as np


class EmbedCache:
    def __init__(self, model, max_entries: int = 4096):
        self._model = model
        self._codes: dict[bytes, object] = {}
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self.last_hit = False

    def __getattr__(self, name):  # everything but embed: the model itself
        return getattr(self._model, name)

    def clear(self) -> None:
        self._codes.clear()
        self.last_hit = False

    def embed(self, front, rear):
        f, r = np.asarray(front), np.asarray(rear)
        if f.ndim != 3:  # batches are not cached
            self.last_hit = False
            return self._model.embed(front, rear)
        key = hashlib.blake2b(f.tobytes() + r.tobytes(), digest_size=16).digest()
        code = self._codes.get(key)
        self.last_hit = code is not None
        if code is None:
            self.misses += 1
            code = self._model.embed(front, rear)
            if len(self._codes) >= self.max_entries:
                self._codes.pop(next(iter(self._codes)))
            self._codes[key] = code
        else:
            self.hits += 1
        return code.clone() if hasattr(code, "clone") else code.copy()


class ViewCache:
    def __init__(self, robot, max_entries: int = 2048):
        self.robot = robot
        self.max_entries = max_entries
        self._views: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}

    def clear(self) -> None:
        self._views.clear()

    def render(self):
        p = self.robot.pose
        key = (round(p.x * 1e6), round(p.y * 1e6), round(p.yaw * 1e6))
        views = self._views.get(key)
        if views is None:
            views = self.robot.render()
            if len(self._views) >= self.max_entries:
                self._views.pop(next(iter(self._views)))
            self._views[key] = views
        return views
