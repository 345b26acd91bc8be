"""World descriptions: YAML file -> geometry, occupancy grid and ground-truth geodesics.

ROS-free and GL-free: this module only reads the file and computes geometry, so the
benchmark and the learning reports can ask for geodesic distances without a renderer.
The file format is documented in docs/WORLDS.md. Coordinates are the ROS `map` frame:
x east, y north, yaw counter-clockwise from x, metres and radians.

Geometry model: every room is an axis-aligned rectangle with solid walls on its four
sides, `wall_thickness` thick (default 0.10 m) and centred on the room's boundary line; an
opening removes a stretch of the wall two touching rooms share (flat door jambs, so a
door keeps its width); a box is a solid rectangle standing on the floor; pictures hang on
walls and are purely visual. Every wall piece and box is stored as the outline of a
rectangle (4 segments); the same segment list drives the laser, the collision test and
the grid, so a wall end seen edge-on shows the laser a face as wide as the wall.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from o4a_nav.errors import WorldFileError
from o4a_nav.types import Pose2D

WORLDS_DIR = Path(__file__).resolve().parent / "worlds"
TEXTURES_DIR = Path(__file__).resolve().parent / "textures"

ROBOT_RADIUS = 0.2          # m, the simulated robot's footprint (a disc)
GRID_RESOLUTION = 0.05      # m per occupancy cell
DEFAULT_WALL_HEIGHT = 2.5   # m
DEFAULT_WALL_THICKNESS = 0.10   # m, solid walls centred on the rooms' boundary lines
MAX_WALL_THICKNESS = 0.30   # m; thicker than the robot's radius would let a disc hide inside a wall
BOX_COLORS = ("red", "green", "blue", "purple", "yellow", "grey")
SIDES = ("north", "south", "east", "west")


# ---- texture names -----------------------------------------------------------------

def _miniworld_texture_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("miniworld")  # does not import it (no GL here)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "textures"


@functools.lru_cache(maxsize=1)
def available_textures() -> dict[str, Path]:
    """Texture name -> PNG file: MiniWorld's built-in textures (`brick_wall`, ...),
    its portraits (`portraits/<name>`) and our own under o4a_nav/sim/textures/."""
    out: dict[str, Path] = {}
    mw = _miniworld_texture_dir()
    if mw is not None and mw.is_dir():
        for p in sorted(mw.glob("*.png")):
            base, _, num = p.stem.rpartition("_")
            if num.isdigit():
                if num == "1":
                    out[base] = p
            else:
                out[p.stem] = p
        for p in sorted((mw / "portraits").glob("*.png")):
            out["portraits/" + p.stem] = p
    if TEXTURES_DIR.is_dir():
        for p in sorted(TEXTURES_DIR.glob("*.png")):
            out[p.stem] = p
    return out


# ---- data classes --------------------------------------------------------------------

@dataclass(frozen=True)
class Room:
    name: str
    x0: float
    y0: float
    x1: float
    y1: float
    wall: str
    floor: str
    ceiling: str

    @property
    def area(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)


@dataclass(frozen=True)
class Opening:
    room_a: str
    room_b: str
    axis: str      # "x": the shared wall is horizontal (y = coord), the gap spans x in [start, end]
    coord: float
    start: float
    end: float


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    size_x: float
    size_y: float
    height: float
    yaw: float
    color: str

    def corners(self) -> np.ndarray:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        hx, hy = self.size_x / 2, self.size_y / 2
        local = np.array([[hx, hy], [-hx, hy], [-hx, -hy], [hx, -hy]])
        rot = np.array([[c, -s], [s, c]])
        return local @ rot.T + np.array([self.x, self.y])


@dataclass(frozen=True)
class Picture:
    x: float          # centre, on the wall
    y: float
    yaw: float        # direction the picture faces (into the room)
    texture: str
    width: float
    z: float          # height of the centre above the floor


@dataclass
class World:
    """A loaded world. Build with `load_world`."""

    name: str
    path: Path
    description: str
    rooms: list[Room]
    openings: list[Opening]
    boxes: list[Box]
    pictures: list[Picture]
    wall_height: float
    light: tuple[float, float, float]
    segments: np.ndarray = field(repr=False)   # (N, 2, 2) wall/box segments, map frame
    light_color: tuple[float, float, float] | None = None   # None: the renderer's default
    ambient: tuple[float, float, float] | None = None
    text: str = field(default="", repr=False)  # the world file's text, as read
    robot_radius: float = ROBOT_RADIUS
    resolution: float = GRID_RESOLUTION
    wall_thickness: float = DEFAULT_WALL_THICKNESS

    def __post_init__(self):
        xs = [r.x0 for r in self.rooms] + [r.x1 for r in self.rooms]
        ys = [r.y0 for r in self.rooms] + [r.y1 for r in self.rooms]
        self.bounds = (min(xs), min(ys), max(xs), max(ys))
        self._seg_lo = self.segments.min(axis=1)   # (N, 2) bounding boxes, to cull far segments
        self._seg_hi = self.segments.max(axis=1)
        self._build_grid()
        self._graph = None
        self._field_cache: dict[int, np.ndarray] = {}

    # ---- occupancy ---------------------------------------------------------------
    def _build_grid(self):
        from scipy import ndimage

        res = self.resolution
        x0, y0, x1, y1 = self.bounds
        self.origin = (x0, y0)
        self.shape = (int(math.ceil((y1 - y0) / res)), int(math.ceil((x1 - x0) / res)))  # rows=y, cols=x
        h, w = self.shape
        cx = x0 + (np.arange(w) + 0.5) * res
        cy = y0 + (np.arange(h) + 0.5) * res
        X, Y = np.meshgrid(cx, cy)
        inside = np.zeros(self.shape, bool)
        for r in self.rooms:
            inside |= (X >= r.x0) & (X <= r.x1) & (Y >= r.y0) & (Y <= r.y1)
        pts = np.stack([X.ravel(), Y.ravel()], axis=1)
        dist = np.full(len(pts), np.inf)
        for chunk in range(0, len(pts), 65536):
            dist[chunk:chunk + 65536] = points_segments_distance(pts[chunk:chunk + 65536], self.segments)
        self.clearance = np.where(inside, dist.reshape(self.shape), 0.0)
        for b in self.boxes:  # cells inside a box are not free even when far from its edges
            self.clearance[_points_in_polygon(X, Y, b.corners())] = 0.0
        # A cell is free when the robot's disc centred there touches no wall. Half a cell
        # of tolerance keeps doorways open on the grid.
        self.free = self.clearance >= self.robot_radius - 0.5 * res
        labels, n = ndimage.label(self.free, structure=np.ones((3, 3)))
        if n == 0:
            raise WorldFileError(f"{self.path}: rooms: the world has no free space for a robot of radius {self.robot_radius} m")
        sizes = np.bincount(labels.ravel())[1:]
        self.main_component = labels == (1 + int(np.argmax(sizes)))
        self._spawn_cells = np.flatnonzero((self.main_component & (self.clearance >= self.robot_radius + 0.05)).ravel())
        if len(self._spawn_cells) == 0:
            self._spawn_cells = np.flatnonzero(self.main_component.ravel())
        # nearest free cell for every cell (to snap positions that are not on a free cell)
        _, idx = ndimage.distance_transform_edt(~self.free, return_indices=True)
        self._nearest = idx

    @property
    def free_area(self) -> float:
        """Area [m^2] where the robot's centre can be (reachable component)."""
        return float(self.main_component.sum()) * self.resolution ** 2

    def cell_of(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of positions (clipped to the grid)."""
        col = np.clip(np.floor((np.asarray(x, float) - self.origin[0]) / self.resolution).astype(int), 0, self.shape[1] - 1)
        row = np.clip(np.floor((np.asarray(y, float) - self.origin[1]) / self.resolution).astype(int), 0, self.shape[0] - 1)
        return row, col

    def cell_center(self, row, col) -> tuple[np.ndarray, np.ndarray]:
        return (self.origin[0] + (np.asarray(col) + 0.5) * self.resolution,
                self.origin[1] + (np.asarray(row) + 0.5) * self.resolution)

    def collides(self, x0: float, y0: float, x1: float | None = None, y1: float | None = None,
                 radius: float | None = None) -> bool:
        """True if the robot's disc, moved in a straight line from (x0, y0) to (x1, y1),
        touches a wall or box (exact, against the segments). Also True outside the rooms."""
        r = self.robot_radius if radius is None else radius
        if x1 is None:
            x1, y1 = x0, y0
        if not self.inside(x1, y1) or not self.inside(x0, y0):
            return True
        lo = np.array([min(x0, x1) - r, min(y0, y1) - r])
        hi = np.array([max(x0, x1) + r, max(y0, y1) + r])
        near = np.all((self._seg_hi >= lo) & (self._seg_lo <= hi), axis=1)
        if not near.any():
            return False
        d = segments_segment_distance(self.segments[near], np.array([x0, y0]), np.array([x1, y1]))
        return bool(np.any(d < r))

    def inside(self, x: float, y: float) -> bool:
        """In some room; boundaries count (a doorway's line belongs to both rooms)."""
        e = 1e-9
        return any(r.x0 - e <= x <= r.x1 + e and r.y0 - e <= y <= r.y1 + e for r in self.rooms)

    def sample_free_pose(self, rng: np.random.Generator) -> Pose2D:
        """A random collision-free pose in the reachable free space (uniform over the
        area, clear of walls by at least the robot radius + 5 cm), random heading."""
        for _ in range(1000):
            i = int(self._spawn_cells[rng.integers(len(self._spawn_cells))])
            row, col = divmod(i, self.shape[1])
            cx, cy = self.cell_center(row, col)
            x = float(cx + (rng.random() - 0.5) * self.resolution)
            y = float(cy + (rng.random() - 0.5) * self.resolution)
            yaw = float(rng.uniform(-math.pi, math.pi))
            if not self.collides(x, y):
                return Pose2D(x, y, yaw)
        raise RuntimeError(f"{self.path}: could not sample a free pose")  # pragma: no cover

    # ---- geodesics -----------------------------------------------------------------
    def _graph_matrix(self):
        """Sparse graph over reachable free cells, 16-connected (8 neighbours plus knight
        moves whose two crossed cells are free), edge weight = Euclidean length."""
        if self._graph is not None:
            return self._graph
        from scipy import sparse

        free = self.free
        h, w = self.shape
        ids = np.full(self.shape, -1, dtype=np.int64)
        ids[free] = np.arange(int(free.sum()))
        src, dst, wt = [], [], []
        res = self.resolution

        def shifted(a, dr, dc, fill):
            out = np.full_like(a, fill)
            rs = slice(max(dr, 0), h + min(dr, 0))
            rd = slice(max(-dr, 0), h + min(-dr, 0))
            cs = slice(max(dc, 0), w + min(dc, 0))
            cd = slice(max(-dc, 0), w + min(-dc, 0))
            out[rd, cd] = a[rs, cs]
            return out  # out[r, c] = a[r + dr, c + dc]

        moves = [(0, 1), (1, 0), (1, 1), (1, -1), (1, 2), (2, 1), (1, -2), (2, -1)]
        for dr, dc in moves:
            ok = free & shifted(free, dr, dc, False)
            if abs(dr) + abs(dc) == 3:  # knight move: both cells it crosses must be free
                if abs(dr) == 2:
                    a, b = (int(math.copysign(1, dr)), 0), (int(math.copysign(1, dr)), dc)
                else:
                    a, b = (0, int(math.copysign(1, dc))), (dr, int(math.copysign(1, dc)))
                ok &= shifted(free, *a, False) & shifted(free, *b, False)
            elif dr != 0 and dc != 0:
                ok &= shifted(free, dr, 0, False) & shifted(free, 0, dc, False)
            s = ids[ok]
            d = shifted(ids, dr, dc, -1)[ok]
            src.append(s)
            dst.append(d)
            wt.append(np.full(len(s), res * math.hypot(dr, dc)))
        src, dst, wt = np.concatenate(src), np.concatenate(dst), np.concatenate(wt)
        n = int(free.sum())
        g = sparse.coo_matrix((np.concatenate([wt, wt]), (np.concatenate([src, dst]), np.concatenate([dst, src]))),
                              shape=(n, n)).tocsr()
        self._graph = (g, ids)
        return self._graph

    def _snap(self, x, y) -> tuple[int, int]:
        row, col = self.cell_of(x, y)
        r = int(self._nearest[0][row, col])
        c = int(self._nearest[1][row, col])
        return r, c

    def geodesic_field(self, x: float, y: float) -> np.ndarray:
        """Shortest-path distance [m] from every grid cell to position (x, y) (inf where
        unreachable or occupied). Cached per goal cell."""
        from scipy.sparse import csgraph

        g, ids = self._graph_matrix()
        r, c = self._snap(x, y)
        key = int(ids[r, c])
        if key not in self._field_cache:
            d = csgraph.dijkstra(g, directed=False, indices=key)
            out = np.full(self.shape, np.inf)
            out[ids >= 0] = d[ids[ids >= 0]]
            if len(self._field_cache) > 64:
                self._field_cache.pop(next(iter(self._field_cache)))
            self._field_cache[key] = out
        return self._field_cache[key]

    def geodesic(self, p, q) -> float:
        """Ground-truth shortest-path distance [m] for the robot between positions p and q
        (Pose2D or (x, y)), on the occupancy grid. Positions off the free grid are snapped
        to the nearest free cell. math.inf if there is no path between them."""
        px, py = _xy(p)
        qx, qy = _xy(q)
        field_ = self.geodesic_field(qx, qy)
        r, c = self._snap(px, py)
        return float(field_[r, c])


def _xy(p) -> tuple[float, float]:
    if isinstance(p, Pose2D):
        return p.x, p.y
    return float(p[0]), float(p[1])


# ---- vectorised geometry -------------------------------------------------------------

def points_segments_distance(pts: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """Min distance from each point (P, 2) to a set of segments (N, 2, 2) -> (P,)."""
    if len(segs) == 0:
        return np.full(len(pts), np.inf)
    a = segs[None, :, 0, :]
    e = segs[None, :, 1, :] - a
    ap = pts[:, None, :] - a
    t = np.clip(np.sum(ap * e, -1) / np.maximum(np.sum(e * e, -1), 1e-12), 0.0, 1.0)
    d = ap - t[..., None] * e
    return np.sqrt(np.min(np.sum(d * d, -1), axis=1))


def _cross(a, b):
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def segments_segment_distance(segs: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Distance between each segment (N, 2, 2) and the segment p0-p1 -> (N,)."""
    if len(segs) == 0:
        return np.zeros(0)
    a, b = segs[:, 0, :], segs[:, 1, :]

    def pseg(p, a, b):  # distance from point(s) p to segment(s) a-b
        e = b - a
        t = np.clip(np.sum((p - a) * e, -1) / np.maximum(np.sum(e * e, -1), 1e-12), 0, 1)
        q = a + t[..., None] * e
        return np.hypot(*(p - q).T)
    d = np.minimum.reduce([
        pseg(p0[None], a, b), pseg(p1[None], a, b),
        pseg(a, p0[None], p1[None]), pseg(b, p0[None], p1[None]),
    ])
    # proper intersection -> 0
    r = p1 - p0
    e = b - a
    den = _cross(r[None], e)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = _cross(a - p0[None], e) / den
        u = _cross(a - p0[None], r[None]) / den
    hit = (den != 0) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
    d[hit] = 0.0
    return d


def _points_in_polygon(X, Y, poly) -> np.ndarray:
    inside = np.zeros(X.shape, bool)
    n = len(poly)
    for i in range(n):
        (xa, ya), (xb, yb) = poly[i], poly[(i + 1) % n]
        cond = (ya > Y) != (yb > Y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = (xb - xa) * (Y - ya) / (yb - ya) + xa
        inside ^= cond & (X < xint)
    return inside


# ---- loading -------------------------------------------------------------------------

def world_names() -> list[str]:
    """Built-in world names (files o4a_nav/sim/worlds/*.yaml), sorted."""
    return sorted(p.stem for p in WORLDS_DIR.glob("*.yaml"))


def resolve_world_path(name_or_path: str | os.PathLike) -> Path:
    s = str(name_or_path)
    p = Path(s).expanduser()
    if s.endswith((".yaml", ".yml", ".json")) or os.sep in s or p.exists():
        if not p.is_file():
            raise WorldFileError(f"{p}: world file not found")
        return p
    cand = WORLDS_DIR / f"{s}.yaml"
    if not cand.is_file():
        raise WorldFileError(f"unknown world '{s}' (built-in worlds: {', '.join(world_names())}; or give a path to a .yaml file)")
    return cand


@functools.lru_cache(maxsize=32)
def _load_cached(path: str, mtime: float) -> World:
    return _parse(Path(path))


def load_world(name_or_path) -> World:
    """Load a built-in world by name or a world file by path. Raises WorldFileError with
    the file and field at fault."""
    p = resolve_world_path(name_or_path)
    return _load_cached(str(p.resolve()), p.stat().st_mtime)


class _Ctx:
    def __init__(self, path: Path):
        self.path = path

    def err(self, where: str, msg: str) -> WorldFileError:
        return WorldFileError(f"{self.path}: {where}: {msg}")

    def number(self, d: dict, key: str, where: str, default=None, positive=False) -> float:
        if key not in d:
            if default is None:
                raise self.err(f"{where}.{key}", "missing")
            return float(default)
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.err(f"{where}.{key}", f"expected a number, got {v!r}")
        if positive and v <= 0:
            raise self.err(f"{where}.{key}", f"must be > 0, got {v!r}")
        return float(v)

    def numbers(self, d: dict, key: str, where: str, n: int, default=None) -> list[float]:
        if key not in d:
            if default is None:
                raise self.err(f"{where}.{key}", "missing")
            return list(default)
        v = d[key]
        if not isinstance(v, (list, tuple)) or len(v) != n or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
            raise self.err(f"{where}.{key}", f"expected a list of {n} numbers, got {v!r}")
        return [float(x) for x in v]

    def texture(self, d: dict, key: str, where: str, default: str | None = None) -> str:
        v = d.get(key, default)
        if v is None:
            raise self.err(f"{where}.{key}", "missing")
        if not isinstance(v, str) or v not in available_textures():
            names = ", ".join(n for n in available_textures() if not n.startswith("portraits/"))
            raise self.err(f"{where}.{key}", f"unknown texture {v!r} (available: {names}; or portraits/<name>)")
        return v

    def items(self, data: dict, section: str, allowed: set[str], required: bool = False):
        """(where, entry) for each mapping of a list section, e.g. ("rooms[2]", {...});
        each entry is checked to be a mapping with only `allowed` keys."""
        raw = data.get(section)
        if required and (not isinstance(raw, list) or not raw):
            raise self.err(section, f"missing or empty: a world needs at least one {section.rstrip('s')}")
        raw = raw or []
        if not isinstance(raw, list):
            raise self.err(section, "expected a list")
        for i, entry in enumerate(raw):
            where = f"{section}[{i}]"
            self.keys(entry, allowed, where)
            yield where, entry

    def keys(self, d, allowed: set[str], where: str):
        if not isinstance(d, dict):
            raise self.err(where, f"expected a mapping, got {type(d).__name__}")
        extra = set(d) - allowed
        if extra:
            raise self.err(where, f"unknown field(s) {sorted(extra)} (allowed: {sorted(allowed)})")


def _parse(path: Path) -> World:
    try:
        text = path.read_text()
    except OSError as exc:
        raise WorldFileError(f"{path}: cannot read: {exc}") from exc
    return world_from_text(text, path)


def world_from_text(text: str, path: Path | str = "<text>") -> World:
    """A world from the text of a world file (YAML; JSON when `path` ends in .json).
    `path` names it in error messages and `World.path`."""
    import json

    import yaml

    path = Path(path)
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError
        raise WorldFileError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    return world_from_data(data, path, text)


def world_from_data(data, path: Path | str = "<data>", text: str = "") -> World:
    """A world from the parsed contents of a world file (a dict in the documented format)."""
    path = Path(path)
    ctx = _Ctx(path)
    ctx.keys(data, {"name", "description", "wall_height", "wall_thickness", "light", "light_color", "ambient",
                    "rooms", "openings", "boxes", "pictures"}, "top level")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise ctx.err("name", f"expected a non-empty string, got {name!r}")
    wall_height = ctx.number(data, "wall_height", "top level", DEFAULT_WALL_HEIGHT, positive=True)
    wall_thickness = ctx.number(data, "wall_thickness", "top level", DEFAULT_WALL_THICKNESS, positive=True)
    if wall_thickness > MAX_WALL_THICKNESS:
        raise ctx.err("wall_thickness", f"at most {MAX_WALL_THICKNESS} m, got {wall_thickness!r}")

    rooms, by_name = _rooms(ctx, data)
    openings = _openings(ctx, data, by_name)
    boxes = _boxes(ctx, data, rooms)
    pictures = _pictures(ctx, data, by_name)
    light, colours = _lighting(ctx, data, rooms, wall_height)
    segments = _wall_segments(rooms, openings, boxes, wall_thickness)
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise ctx.err("description", "expected a string")
    return World(name=name, path=path, description=desc.strip(), rooms=rooms, openings=openings, boxes=boxes,
                 pictures=pictures, wall_height=wall_height, light=light, segments=segments,
                 light_color=colours.get("light_color"), ambient=colours.get("ambient"), text=text,
                 wall_thickness=wall_thickness)


def _rooms(ctx: "_Ctx", data) -> tuple[list[Room], dict[str, Room]]:
    """The rooms (unique names, no overlaps) and the rooms by name."""
    rooms: list[Room] = []
    by_name: dict[str, Room] = {}
    for where, rr in ctx.items(data, "rooms", {"name", "rect", "wall", "floor", "ceiling"}, required=True):
        rname = rr.get("name", f"room{len(rooms)}")
        if not isinstance(rname, str) or rname in by_name:
            raise ctx.err(f"{where}.name", f"expected a unique string, got {rname!r}")
        x0, y0, x1, y1 = ctx.numbers(rr, "rect", where, 4)
        if x1 <= x0 or y1 <= y0:
            raise ctx.err(f"{where}.rect", f"expected [x_min, y_min, x_max, y_max] with max > min, got {rr['rect']!r}")
        room = Room(rname, x0, y0, x1, y1, ctx.texture(rr, "wall", where, "concrete"),
                    ctx.texture(rr, "floor", where, "floor_tiles_bw"), ctx.texture(rr, "ceiling", where, "ceiling_tiles"))
        for other in rooms:
            if min(room.x1, other.x1) - max(room.x0, other.x0) > 1e-9 and min(room.y1, other.y1) - max(room.y0, other.y0) > 1e-9:
                raise ctx.err(f"{where}.rect", f"room '{rname}' overlaps room '{other.name}'")
        rooms.append(room)
        by_name[rname] = room
    return rooms, by_name



def _openings(ctx: "_Ctx", data, by_name: dict) -> list[Opening]:
    """Openings in the walls two rooms share, wide enough for the robot."""
    openings: list[Opening] = []
    for where, ro in ctx.items(data, "openings", {"rooms", "from", "to"}):
        pair = ro.get("rooms")
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(n, str) for n in pair):
            raise ctx.err(f"{where}.rooms", f"expected two room names, got {pair!r}")
        for n in pair:
            if n not in by_name:
                raise ctx.err(f"{where}.rooms", f"unknown room {n!r} (rooms: {', '.join(by_name)})")
        a, b = by_name[pair[0]], by_name[pair[1]]
        start = ctx.number(ro, "from", where)
        end = ctx.number(ro, "to", where)
        if end <= start:
            raise ctx.err(f"{where}", f"'to' ({end}) must be greater than 'from' ({start})")
        shared = _shared_wall(a, b)
        if shared is None:
            raise ctx.err(f"{where}.rooms", f"rooms '{a.name}' and '{b.name}' do not share a wall")
        axis, coord, lo, hi = shared
        if start < lo - 1e-9 or end > hi + 1e-9:
            raise ctx.err(f"{where}", f"opening [{start}, {end}] lies outside the wall the rooms share "
                                      f"({'x' if axis == 'x' else 'y'} in [{lo}, {hi}])")
        if end - start < 2 * ROBOT_RADIUS + 0.1:
            raise ctx.err(f"{where}", f"opening of {end - start:.2f} m is too narrow for the robot (>= {2 * ROBOT_RADIUS + 0.1:.2f} m)")
        openings.append(Opening(a.name, b.name, axis, coord, start, end))
    return openings



def _boxes(ctx: "_Ctx", data, rooms: list[Room]) -> list[Box]:
    """Boxes inside the rooms."""
    boxes: list[Box] = []
    for where, rb in ctx.items(data, "boxes", {"pos", "size", "yaw_deg", "color"}):
        x, y = ctx.numbers(rb, "pos", where, 2)
        sx, sy, sz = ctx.numbers(rb, "size", where, 3)
        if min(sx, sy, sz) <= 0:
            raise ctx.err(f"{where}.size", "sizes must be > 0")
        color = rb.get("color", "grey")
        if color not in BOX_COLORS:
            raise ctx.err(f"{where}.color", f"unknown colour {color!r} (one of {', '.join(BOX_COLORS)})")
        yaw = math.radians(ctx.number(rb, "yaw_deg", where, 0.0))
        box = Box(x, y, sx, sy, sz, yaw, color)
        if not all(any(r.x0 <= cx <= r.x1 and r.y0 <= cy <= r.y1 for r in rooms) for cx, cy in box.corners()):
            raise ctx.err(f"{where}.pos", f"box at ({x}, {y}) is not inside the rooms")
        boxes.append(box)
    return boxes



def _pictures(ctx: "_Ctx", data, by_name: dict) -> list[Picture]:
    """Pictures on the rooms' walls."""
    pictures: list[Picture] = []
    for where, rp in ctx.items(data, "pictures", {"room", "wall", "at", "texture", "width", "height"}):
        rn = rp.get("room")
        if rn not in by_name:
            raise ctx.err(f"{where}.room", f"unknown room {rn!r} (rooms: {', '.join(by_name)})")
        r = by_name[rn]
        side = rp.get("wall")
        if side not in SIDES:
            raise ctx.err(f"{where}.wall", f"expected one of {', '.join(SIDES)}, got {side!r}")
        at = ctx.number(rp, "at", where)
        width = ctx.number(rp, "width", where, 0.8, positive=True)
        z = ctx.number(rp, "height", where, 0.9, positive=True)
        tex = ctx.texture(rp, "texture", where)
        eps = 0.01
        if side in ("north", "south"):
            if not r.x0 + width / 2 <= at <= r.x1 - width / 2:
                raise ctx.err(f"{where}.at", f"x={at} puts the picture outside the {side} wall of '{rn}' (x in [{r.x0}, {r.x1}])")
            y = r.y1 - eps if side == "north" else r.y0 + eps
            pictures.append(Picture(at, y, -math.pi / 2 if side == "north" else math.pi / 2, tex, width, z))
        else:
            if not r.y0 + width / 2 <= at <= r.y1 - width / 2:
                raise ctx.err(f"{where}.at", f"y={at} puts the picture outside the {side} wall of '{rn}' (y in [{r.y0}, {r.y1}])")
            x = r.x1 - eps if side == "east" else r.x0 + eps
            pictures.append(Picture(x, at, math.pi if side == "east" else 0.0, tex, width, z))
    return pictures



def _lighting(ctx: "_Ctx", data, rooms: list[Room], wall_height: float) -> tuple[tuple, dict]:
    """(the light's position, {light_color, ambient} given in the file)."""
    light = data.get("light")
    if light is None:
        xs = [v for r in rooms for v in (r.x0, r.x1)]
        ys = [v for r in rooms for v in (r.y0, r.y1)]
        light = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, wall_height)
    else:
        light = tuple(ctx.numbers(data, "light", "top level", 3))
    colours = {}
    for key in ("light_color", "ambient"):
        if key in data:
            rgb = ctx.numbers(data, key, "top level", 3)
            if not all(0.0 <= v <= 1.0 for v in rgb):
                raise ctx.err(key, f"expected 3 numbers in [0, 1] (red, green, blue), got {data[key]!r}")
            colours[key] = tuple(rgb)
    return light, colours


def _shared_wall(a: Room, b: Room):
    """(axis, coord, lo, hi) of the wall two touching rooms share, or None."""
    tol = 1e-6
    for ya, yb in ((a.y1, b.y0), (a.y0, b.y1)):
        if abs(ya - yb) < tol:
            lo, hi = max(a.x0, b.x0), min(a.x1, b.x1)
            if hi > lo:
                return "x", ya, lo, hi
    for xa, xb in ((a.x1, b.x0), (a.x0, b.x1)):
        if abs(xa - xb) < tol:
            lo, hi = max(a.y0, b.y0), min(a.y1, b.y1)
            if hi > lo:
                return "y", xa, lo, hi
    return None


def room_wall_gaps(room: Room, openings: list[Opening]) -> dict[str, list[tuple[float, float]]]:
    """side -> sorted list of (start, end) gaps on that side of the room."""
    gaps: dict[str, list[tuple[float, float]]] = {s: [] for s in SIDES}
    for o in openings:
        if room.name not in (o.room_a, o.room_b):
            continue
        if o.axis == "x":
            side = "north" if abs(o.coord - room.y1) < 1e-6 else "south"
        else:
            side = "east" if abs(o.coord - room.x1) < 1e-6 else "west"
        gaps[side].append((o.start, o.end))
    for s in gaps:
        gaps[s].sort()
    return gaps


def wall_pieces(rooms, openings) -> list[tuple[str, float, float, float]]:
    """The walls as (axis, coord, start, end) pieces of the rooms' boundary lines, with the
    openings cut out: axis "x" is a horizontal line y = coord spanning x in [start, end],
    axis "y" a vertical one. A wall two rooms share appears once (collinear pieces of one
    line are merged)."""
    lines: dict[tuple[str, float], list[tuple[float, float]]] = {}
    for r in rooms:
        gaps = room_wall_gaps(r, openings)
        for side, axis, coord, lo, hi in (("south", "x", r.y0, r.x0, r.x1), ("north", "x", r.y1, r.x0, r.x1),
                                          ("west", "y", r.x0, r.y0, r.y1), ("east", "y", r.x1, r.y0, r.y1)):
            key = (axis, round(coord, 9))
            cur = lo
            for g0, g1 in gaps[side]:
                if g0 > cur:
                    lines.setdefault(key, []).append((cur, g0))
                cur = max(cur, g1)
            if hi > cur:
                lines.setdefault(key, []).append((cur, hi))
    out = []
    for (axis, coord), spans in sorted(lines.items()):
        spans.sort()
        merged = [list(spans[0])]
        for a, b in spans[1:]:
            if a <= merged[-1][1] + 1e-9:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        out.extend((axis, coord, a, b) for a, b in merged)
    return out


def _rect_outline(corners) -> list:
    return [(tuple(corners[i]), tuple(corners[(i + 1) % 4])) for i in range(4)]


def _wall_segments(rooms, openings, boxes, thickness: float = DEFAULT_WALL_THICKNESS) -> np.ndarray:
    """Outlines (4 segments each) of the solid walls, `thickness` thick and centred on the
    boundary lines, and of the boxes. A ray or a disc coming from free space meets an
    outline before anything inside a solid, so the outlines are all that the laser, the
    collision test and the grid need (a wall's end at a room corner lies inside the
    perpendicular wall; a door jamb is a flat face `thickness` wide)."""
    h = thickness / 2
    segs = []
    for axis, coord, a, b in wall_pieces(rooms, openings):
        if axis == "x":
            corners = np.array([[a, coord - h], [b, coord - h], [b, coord + h], [a, coord + h]])
        else:
            corners = np.array([[coord - h, a], [coord + h, a], [coord + h, b], [coord - h, b]])
        segs += _rect_outline(corners)
    for box in boxes:
        segs += _rect_outline(box.corners())
    return np.asarray(segs, dtype=np.float64).reshape(-1, 2, 2)
