"""One thread per process for all OpenGL work.

An OpenGL context is current in one thread only, pyglet keeps the current context in a
module global, and pyglet 1.5 creates its shadow context (the one every later context
shares textures and display lists with) in the thread that first imports pyglet.gl.
Rendering from any other thread (a ROS executor's worker, say) silently draws with the
wrong state and returns a picture of some other place. So pyglet and MiniWorld are
imported, and every GL call of every renderer is made, on this one thread.
"""
from __future__ import annotations

import importlib
import threading
from concurrent.futures import ThreadPoolExecutor

_NAME = "o4a-gl"
_pool: list = [None]
_lock = threading.Lock()


def call(fn, *args):
    """Run fn(*args) on the process's GL thread; return its result or raise its error."""
    if threading.current_thread().name.startswith(_NAME):
        return fn(*args)
    with _lock:
        if _pool[0] is None:
            _pool[0] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_NAME)
    return _pool[0].submit(fn, *args).result()


def import_gl_modules() -> None:
    """Import pyglet (headless) and MiniWorld on the GL thread (idempotent)."""
    call(importlib.import_module, "o4a_nav.sim._gl")
