"""MiniWorld renderer for a World: builds the textured rooms, boxes and pictures once and
renders camera views from a Pose2D. Rendering only: motion, collisions and the laser are
computed on the World's geometry (o4a_nav/sim/robot.py), so the renderer never decides
anything about the robot.

MiniWorld frame: x east, y up, z = -north; an agent heading `dir` looks along
(cos dir, 0, -sin dir), so map yaw == MiniWorld dir and map (x, y) == MiniWorld (x, -z).
"""
from __future__ import annotations

import contextlib
import ctypes
import io
import math

import numpy as np

from o4a_nav.sim import glthread

glthread.import_gl_modules()  # pyglet's shadow context must live on the GL thread
from o4a_nav.sim._gl import entity, mw, opengl  # noqa: E402
from pyglet import gl  # noqa: E402
from o4a_nav.sim.world import World, available_textures
from o4a_nav.types import Pose2D

# Contexts created by pyglet share display lists; MiniWorld compiles every scene into list
# 1. Remember whose scene is in it, so several renderers can live in one process.
_static_owner: list = [None]


class _StaticBox(entity.Box):
    @property
    def is_static(self):
        return True


class _GLTexture:
    """What MiniWorld's Texture needs of a pyglet texture: target, id, width, height."""

    def __init__(self, tex_id: int, width: int, height: int):
        self.target, self.id, self.width, self.height = gl.GL_TEXTURE_2D, tex_id, width, height


def _load_texture_fast(tex_path: str) -> _GLTexture:
    """MiniWorld's Texture.load, with the PNG decoded by OpenCV instead of pyglet's
    pure-Python pixel conversion (which took ~1 s per texture). Same GL state: RGB
    internal format, mipmaps, trilinear filtering; rows bottom-up as OpenGL wants."""
    import cv2

    img = cv2.imread(str(tex_path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"cannot read texture {tex_path}")
    if img.dtype != np.uint8:
        img = (img / 257).astype(np.uint8)
    channels = 1 if img.ndim == 2 else img.shape[2]
    code = {1: cv2.COLOR_GRAY2RGBA, 3: cv2.COLOR_BGR2RGBA, 4: cv2.COLOR_BGRA2RGBA}[channels]
    rgba = np.ascontiguousarray(np.flipud(cv2.cvtColor(img, code)))
    h, w = rgba.shape[:2]
    tid = gl.GLuint(0)
    gl.glGenTextures(1, ctypes.byref(tid))
    gl.glBindTexture(gl.GL_TEXTURE_2D, tid.value)
    gl.glPixelStorei(gl.GL_UNPACK_ALIGNMENT, 1)
    gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGB, w, h, 0, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE,
                    rgba.ctypes.data_as(ctypes.POINTER(gl.GLubyte)))
    gl.glHint(gl.GL_GENERATE_MIPMAP_HINT, gl.GL_NICEST)
    gl.glGenerateMipmap(gl.GL_TEXTURE_2D)
    gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, gl.GL_LINEAR)
    gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, gl.GL_LINEAR_MIPMAP_LINEAR)
    gl.glBindTexture(gl.GL_TEXTURE_2D, 0)
    return _GLTexture(tid.value, w, h)


opengl.Texture.load = classmethod(lambda cls, tex_path: _load_texture_fast(tex_path))


def _register_textures():
    """Make our own textures (o4a_nav/sim/textures/*.png) and the portraits loadable by
    name through MiniWorld's texture cache."""
    for name, path in available_textures().items():
        opengl.Texture.tex_paths.setdefault(name, [str(path)])


class _Scene(mw.MiniWorldEnv):
    def __init__(self, world: World, width: int, height: int, cam_height: float, hfov_deg: float):
        self._world = world
        params = mw.DEFAULT_PARAMS.no_random()
        vfov = math.degrees(2 * math.atan(math.tan(math.radians(hfov_deg) / 2) * height / width))
        params.set("cam_height", cam_height)
        params.set("cam_fov_y", vfov)
        params.set("cam_fwd_disp", 0.0)
        params.set("cam_pitch", 0.0)
        params.set("light_pos", [world.light[0], world.light[2], -world.light[1]])
        if world.light_color is not None:     # else MiniWorld's default (0.7 grey)
            params.set("light_color", list(world.light_color))
        if world.ambient is not None:         # else MiniWorld's default (0.45 grey)
            params.set("light_ambient", list(world.ambient))
        params.set("sky_color", [0.0, 0.0, 0.0])
        with contextlib.redirect_stdout(io.StringIO()):  # MiniWorld prints about MSAA samples
            super().__init__(max_episode_steps=2**62, obs_width=width, obs_height=height,
                             window_width=8, window_height=8, params=params, domain_rand=False)

    def _gen_world(self):
        w = self._world
        _register_textures()
        rooms = {}
        for r in w.rooms:
            rooms[r.name] = self.add_rect_room(min_x=r.x0, max_x=r.x1, min_z=-r.y1, max_z=-r.y0,
                                               wall_height=w.wall_height, wall_tex=r.wall,
                                               floor_tex=r.floor, ceil_tex=r.ceiling)
        # add_rect_room edges: 0 east (x = max_x), 1 north (y = y1), 2 west, 3 south (y = y0)
        for o in w.openings:
            for name in (o.room_a, o.room_b):
                r = next(rr for rr in w.rooms if rr.name == name)
                room = rooms[name]
                if o.axis == "x":
                    edge = 1 if abs(o.coord - r.y1) < 1e-6 else 3
                    room.add_portal(edge, min_x=o.start, max_x=o.end)
                else:
                    edge = 0 if abs(o.coord - r.x1) < 1e-6 else 2
                    room.add_portal(edge, min_z=-o.end, max_z=-o.start)
        for b in w.boxes:
            ent = _StaticBox(b.color, size=[b.size_x, b.height, b.size_y])
            self.place_entity(ent, pos=np.array([b.x, 0.0, -b.y]), dir=b.yaw)
        for p in w.pictures:
            ent = entity.ImageFrame(pos=np.array([p.x, p.z, -p.y]), dir=p.yaw, tex_name=p.texture, width=p.width)
            self.entities.append(ent)
        self.agent.pos = np.array([w.rooms[0].x0 + 0.5, 0.0, -(w.rooms[0].y0 + 0.5)])
        self.agent.dir = 0.0
        self.agent.randomize(self.params, None)  # camera height / FOV / pitch from params

    def _render_static(self):
        super()._render_static()
        _static_owner[0] = self

    def ensure_static(self):
        """Make this scene's context current (framebuffers are not shared between
        contexts, and another renderer may have drawn last) and its scene the one in the
        shared display list."""
        self.shadow_window.switch_to()
        if _static_owner[0] is not self:
            self._render_static()


class Renderer:
    """Renders front and rear camera images of a World (MiniWorld, OpenGL, headless)."""

    def __init__(self, world: World, width: int = 96, height: int = 96, cam_height: float = 0.4,
                 hfov_deg: float = 90.0):
        self.world = world
        self.width, self.height = width, height
        self._scene = glthread.call(_Scene, world, width, height, cam_height, hfov_deg)
        self._scene.agent.radius = world.robot_radius

    def view(self, pose: Pose2D, yaw_offset: float = 0.0) -> np.ndarray:
        """(H, W, 3) uint8 RGB image seen from `pose`, camera turned by yaw_offset."""
        return glthread.call(self._view, pose, yaw_offset)

    def _view(self, pose: Pose2D, yaw_offset: float = 0.0) -> np.ndarray:
        s = self._scene
        s.ensure_static()
        s.agent.pos = np.array([pose.x, 0.0, -pose.y])
        s.agent.dir = pose.yaw + yaw_offset
        return s.render_obs().copy()

    def front_rear(self, pose: Pose2D) -> tuple[np.ndarray, np.ndarray]:
        return glthread.call(lambda: (self._view(pose), self._view(pose, math.pi)))

    def top_view(self, size: int = 512, pose: Pose2D | None = None) -> np.ndarray:
        """Orthographic picture of the whole world from above (ceilings hidden)."""
        return glthread.call(self._top_view, size, pose)

    def _top_view(self, size: int, pose: Pose2D | None) -> np.ndarray:
        s = self._scene
        fb = opengl.FrameBuffer(size, size, 4)
        hidden = [r.no_ceiling for r in s.rooms]
        for r in s.rooms:
            r.no_ceiling = True
        try:
            s._render_static()
            if pose is not None:
                s.agent.pos = np.array([pose.x, 0.0, -pose.y])
                s.agent.dir = pose.yaw
                s.agent.height = 2.0 * self.world.wall_height
            img = s.render_top_view(fb, render_agent=pose is not None).copy()
        finally:
            for r, h in zip(s.rooms, hidden):
                r.no_ceiling = h
            s._render_static()
        return img

    def close(self):
        """Release the scene's GL context (textures stay cached for the next renderer)."""
        glthread.call(self._close)

    def _close(self):
        s, self._scene = self._scene, None
        if s is None:
            return
        if _static_owner[0] is s:
            _static_owner[0] = None
        try:
            s.close()
            s.shadow_window.close()
        except Exception:
            pass
