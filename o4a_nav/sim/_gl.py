"""The one place that imports MiniWorld: pyglet must be told to render headless (Mesa
EGL, no X display) before anything imports pyglet.gl or miniworld."""
import os

os.environ.setdefault("PYGLET_HEADLESS", "1")

import pyglet  # noqa: E402

pyglet.options["headless"] = True
pyglet.options["debug_gl"] = False  # glGetError after every call costs ~30 % of a frame

import miniworld  # noqa: E402,F401
from miniworld import entity, miniworld as mw, opengl  # noqa: E402,F401
