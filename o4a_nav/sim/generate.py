"""Procedural worlds: seeded, valid by construction, written as ordinary world files.

    from o4a_nav.sim.generate import generate_world, write_worlds
    spec = generate_world(seed=7)                 # a dict in the world file format (docs/WORLDS.md)
    paths = write_worlds(20, seed=0, out="data/worlds/gen")   # gen_s0_000.yaml ... gen_s0_019.yaml

ROS- and GL-free. A world is drawn from a numpy Generator seeded with (seed, index), so
the same seed gives the same files on every machine. Construction:
  1. footprint: a rectangle of 6-24 m x 5-16 m (the built-in `office` is 14 x 9 m);
  2. layout: either a binary space partition into rooms of 2.5-7 m, or a corridor
     (1.5-2.2 m wide) with rows of rooms on both sides; some border rooms are then dropped
     (L-, U- and T-shaped buildings) as long as the rest stays connected;
  3. doors: a random spanning tree over the rooms that share at least 1.4 m of wall, plus
     extra doors that close loops; every door is 0.9-1.6 m wide (the robot is 0.4 m
     across) and at least 0.2 m from the end of the shared wall;
  4. boxes: furniture against walls and free-standing boxes, kept >= 0.7 m from other
     walls and boxes and out of a 1.2 m deep zone in front of every door, so they never
     cut a room in two;
  5. textures, pictures (MiniWorld's portraits), wall height, light position, colour and
     ambient level are drawn per world.
Each world is then loaded and checked (every free cell of the ground-truth grid is
reachable, every room has free space, every door passes the robot); a draw that fails
the check is redrawn from the same generator, so the result stays deterministic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from o4a_nav.errors import UserError, WorldFileError
from o4a_nav.sim.world import World, _shared_wall, available_textures, world_from_data

WALL_TEXTURES = ("brick_wall", "cinder_blocks", "concrete", "concrete_tiles", "drywall", "marble", "stucco",
                 "wood", "wood_planks", "rock", "metal_grill", "white", "airduct_grate", "picket_fence")
FLOOR_TEXTURES = ("floor_tiles_bw", "floor_tiles_white", "wood", "wood_planks", "concrete", "concrete_tiles",
                  "asphalt", "marble", "cardboard", "grass")
CEILING_TEXTURES = ("ceiling_tiles", "ceiling_tile_noborder", "white", "concrete", "wood_planks")
BOX_COLORS = ("red", "green", "blue", "purple", "yellow", "grey")

GRID = 0.25            # room corners on a 25 cm grid
FINE = 0.05            # doors, boxes and pictures on a 5 cm grid
DOOR_MIN, DOOR_MAX = 0.9, 1.6
DOOR_END_MARGIN = 0.2  # door edge to the end of the shared wall
MIN_SHARED = DOOR_MIN + 2 * DOOR_END_MARGIN + 0.1   # wall two rooms must share to get a door
BOX_GAP = 0.7          # box to any wall it does not touch, and box to box (robot: 0.4 m)
DOOR_ZONE_DEPTH = 1.2  # no box this far in front of a door ...
DOOR_ZONE_SIDE = 0.5   # ... nor this far beside it along the wall


@dataclass
class _Rect:
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def w(self):
        return self.x1 - self.x0

    @property
    def h(self):
        return self.y1 - self.y0


def _snap(v: float, step: float) -> float:
    return round(round(v / step) * step, 4)


def _uniform_snap(rng, lo, hi, step) -> float:
    """A value in [lo, hi] on the grid of `step` (lo if the interval holds no grid point)."""
    a, b = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    if b < a:
        return _snap(lo, step)
    return _snap(int(rng.integers(a, b + 1)) * step, step)


# ---- layout ----------------------------------------------------------------------------

def _bsp(rect: _Rect, rng, min_side: float, max_side: float, split_p: float) -> list[_Rect]:
    out, stack = [], [rect]
    while stack:
        r = stack.pop()
        can_x, can_y = r.w >= 2 * min_side, r.h >= 2 * min_side
        must = max(r.w, r.h) > max_side
        if (can_x or can_y) and (must or rng.random() < split_p):
            along_x = can_x and (not can_y or r.w > r.h * (0.8 + 0.4 * rng.random()))
            if along_x:
                c = _uniform_snap(rng, r.x0 + min_side, r.x1 - min_side, GRID)
                stack += [_Rect(r.x0, r.y0, c, r.y1), _Rect(c, r.y0, r.x1, r.y1)]
            else:
                c = _uniform_snap(rng, r.y0 + min_side, r.y1 - min_side, GRID)
                stack += [_Rect(r.x0, r.y0, r.x1, c), _Rect(r.x0, c, r.x1, r.y1)]
        else:
            out.append(r)
    return out


def _corridor_layout(w: float, h: float, rng) -> tuple[list[_Rect], int]:
    """A corridor across the footprint (along its longer side) with BSP rooms on both
    sides. Returns the rooms and the index of the corridor."""
    cw = _uniform_snap(rng, 1.5, 2.2, GRID)
    long_x = w >= h
    depth = (h if long_x else w) - cw          # room depth left for both sides together
    if depth >= 5.0:
        c0 = _uniform_snap(rng, 2.5, depth - 2.5, GRID)
    else:                                      # too shallow for two rows: rooms on one side
        c0 = 0.0 if rng.random() < 0.5 else _snap(depth, GRID)
    if long_x:
        corridor = _Rect(0, c0, w, c0 + cw)
        sides = [_Rect(0, 0, w, c0), _Rect(0, c0 + cw, w, h)]
    else:
        corridor = _Rect(c0, 0, c0 + cw, h)
        sides = [_Rect(0, 0, c0, h), _Rect(c0 + cw, 0, w, h)]
    rooms = [corridor]
    for s in sides:
        if s.w >= 2.0 and s.h >= 2.0:
            rooms += _bsp(s, rng, 2.5, 5.5, 0.5)
    return rooms, 0


def _adjacency(rooms: list[_Rect]) -> dict[tuple[int, int], tuple]:
    adj = {}
    for i in range(len(rooms)):
        for j in range(i + 1, len(rooms)):
            s = _shared_wall(rooms[i], rooms[j])
            if s is not None and s[3] - s[2] >= MIN_SHARED:
                adj[(i, j)] = s
    return adj


class _Components:
    """Union-find over n items."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def join(self, a: int, b: int) -> bool:
        """Join the sets of a and b; False if they were one already."""
        ra, rb = self.find(a), self.find(b)
        self.parent[ra] = rb
        return ra != rb


def _connected(n: int, edges) -> bool:
    comp = _Components(n)
    for i, j in edges:
        comp.join(i, j)
    return len({comp.find(i) for i in range(n)}) == 1


def _drop_rooms(rooms: list[_Rect], keep: int | None, rng, max_drop: int) -> list[_Rect]:
    """Remove up to max_drop rooms on the footprint's border, never room `keep`, keeping
    the door-capable adjacency connected."""
    bx0, by0 = min(r.x0 for r in rooms), min(r.y0 for r in rooms)
    bx1, by1 = max(r.x1 for r in rooms), max(r.y1 for r in rooms)
    for _ in range(max_drop):
        if len(rooms) <= 3:
            break
        border = [i for i, r in enumerate(rooms) if i != keep and
                  (r.x0 == bx0 or r.y0 == by0 or r.x1 == bx1 or r.y1 == by1)]
        rng.shuffle(border)
        for i in border:
            rest = rooms[:i] + rooms[i + 1:]
            if _connected(len(rest), _adjacency(rest)):
                rooms = rest
                if keep is not None and i < keep:
                    keep -= 1
                break
    return rooms


def _doors(rooms: list[_Rect], adj: dict, rng, loop_p: float, prefer: int | None) -> list[tuple]:
    """Spanning tree (random Kruskal; edges to room `prefer` first) plus loop doors."""
    keys = list(adj)
    weights = rng.random(len(keys))
    if prefer is not None:
        weights = np.where([prefer in k for k in keys], weights * 0.3, weights)
    comp = _Components(len(rooms))
    chosen = []
    for k in np.argsort(weights, kind="stable"):
        if comp.join(*keys[k]):
            chosen.append(keys[k])
        elif rng.random() < loop_p:
            chosen.append(keys[k])
    out = []
    for i, j in sorted(chosen):
        axis, coord, lo, hi = adj[(i, j)]
        width = _uniform_snap(rng, DOOR_MIN, min(DOOR_MAX, hi - lo - 2 * DOOR_END_MARGIN), FINE)
        start = _uniform_snap(rng, lo + DOOR_END_MARGIN, hi - DOOR_END_MARGIN - width, FINE)
        out.append((i, j, axis, coord, start, round(start + width, 4)))
    return out


# ---- furniture and decoration --------------------------------------------------------------

def _room_door_zones(k: int, r: _Rect, doors) -> list[_Rect]:
    zones = []
    for i, j, axis, coord, s, e in doors:
        if k not in (i, j):
            continue
        if axis == "x":      # horizontal wall y = coord
            y0, y1 = (coord - DOOR_ZONE_DEPTH, coord) if abs(coord - r.y1) < 1e-6 else (coord, coord + DOOR_ZONE_DEPTH)
            zones.append(_Rect(s - DOOR_ZONE_SIDE, y0, e + DOOR_ZONE_SIDE, y1))
        else:
            x0, x1 = (coord - DOOR_ZONE_DEPTH, coord) if abs(coord - r.x1) < 1e-6 else (coord, coord + DOOR_ZONE_DEPTH)
            zones.append(_Rect(x0, s - DOOR_ZONE_SIDE, x1, e + DOOR_ZONE_SIDE))
    return zones


def _overlap(a: _Rect, b: _Rect, gap: float = 0.0) -> bool:
    return a.x0 < b.x1 + gap and b.x0 < a.x1 + gap and a.y0 < b.y1 + gap and b.y0 < a.y1 + gap


def _box_fits(bb: _Rect, room: _Rect, touching: set, zones, placed) -> bool:
    for side, dist in (("west", bb.x0 - room.x0), ("east", room.x1 - bb.x1),
                       ("south", bb.y0 - room.y0), ("north", room.y1 - bb.y1)):
        if dist < -1e-9 or (side not in touching and dist < BOX_GAP):
            return False
    if any(_overlap(bb, z) for z in zones):
        return False
    return not any(_overlap(bb, p, BOX_GAP) for p in placed)


def _boxes(k: int, room: _Rect, doors, rng, n: int) -> list[dict]:
    zones = _room_door_zones(k, room, doors)
    placed: list[_Rect] = []
    out = []
    for _ in range(n):
        for _try in range(30):
            if rng.random() < 0.6:       # furniture against one wall, axis-aligned
                side = ("north", "south", "east", "west")[int(rng.integers(4))]
                length, depth = rng.uniform(0.6, 1.8), rng.uniform(0.4, 0.8)
                horiz = side in ("north", "south")
                sx, sy = (length, depth) if horiz else (depth, length)
                sx, sy = _snap(sx, FINE), _snap(sy, FINE)
                if horiz:
                    x = _uniform_snap(rng, room.x0 + sx / 2, room.x1 - sx / 2, FINE)
                    y = room.y1 - sy / 2 if side == "north" else room.y0 + sy / 2
                else:
                    y = _uniform_snap(rng, room.y0 + sy / 2, room.y1 - sy / 2, FINE)
                    x = room.x1 - sx / 2 if side == "east" else room.x0 + sx / 2
                x, y, yaw, touching = round(x, 4), round(y, 4), 0, {side}
                # a furniture piece in a corner touches two walls
                for s2, d in (("west", x - sx / 2 - room.x0), ("east", room.x1 - x - sx / 2),
                              ("south", y - sy / 2 - room.y0), ("north", room.y1 - y - sy / 2)):
                    if abs(d) < 1e-6:
                        touching.add(s2)
                bb = _Rect(x - sx / 2, y - sy / 2, x + sx / 2, y + sy / 2)
            else:                        # free-standing, any heading
                sx, sy = _snap(rng.uniform(0.3, 0.9), FINE), _snap(rng.uniform(0.3, 0.9), FINE)
                yaw = int(rng.integers(0, 12)) * 15
                rad = math.radians(yaw)
                ex = abs(sx * math.cos(rad)) / 2 + abs(sy * math.sin(rad)) / 2
                ey = abs(sx * math.sin(rad)) / 2 + abs(sy * math.cos(rad)) / 2
                if room.w < 2 * (ex + BOX_GAP) or room.h < 2 * (ey + BOX_GAP):
                    continue
                x = _uniform_snap(rng, room.x0 + BOX_GAP + ex, room.x1 - BOX_GAP - ex, FINE)
                y = _uniform_snap(rng, room.y0 + BOX_GAP + ey, room.y1 - BOX_GAP - ey, FINE)
                bb, touching = _Rect(x - ex, y - ey, x + ex, y + ey), set()
            if _box_fits(bb, room, touching, zones, placed):
                placed.append(bb)
                out.append({"pos": [x, y], "size": [sx, sy, _snap(rng.uniform(0.4, 1.1), FINE)],
                            "yaw_deg": yaw, "color": BOX_COLORS[int(rng.integers(len(BOX_COLORS)))]})
                break
    return out


def _pictures(name: str, room: _Rect, doors, k: int, rng, portraits: list[str], n: int) -> list[dict]:
    gaps = {s: [] for s in ("north", "south", "east", "west")}
    for i, j, axis, coord, s, e in doors:
        if k not in (i, j):
            continue
        if axis == "x":
            gaps["north" if abs(coord - room.y1) < 1e-6 else "south"].append((s, e))
        else:
            gaps["east" if abs(coord - room.x1) < 1e-6 else "west"].append((s, e))
    out, used = [], {s: [] for s in gaps}
    for _ in range(n):
        side = ("north", "south", "east", "west")[int(rng.integers(4))]
        lo, hi = (room.x0, room.x1) if side in ("north", "south") else (room.y0, room.y1)
        width = _snap(rng.uniform(0.6, 1.0), FINE)
        if hi - lo < width + 0.4:
            continue
        at = _uniform_snap(rng, lo + width / 2 + 0.2, hi - width / 2 - 0.2, FINE)
        span = (at - width / 2 - 0.1, at + width / 2 + 0.1)
        if any(span[0] < e and s < span[1] for s, e in gaps[side] + used[side]):
            continue
        used[side].append(span)
        out.append({"room": name, "wall": side, "at": at,
                    "texture": portraits[int(rng.integers(len(portraits)))], "width": width,
                    "height": _snap(rng.uniform(0.9, 1.4), FINE)})
    return out


def _portraits() -> list[str]:
    names = sorted(n for n in available_textures() if n.startswith("portraits/"))
    return names or ["portraits/byron1"]


# ---- one world -------------------------------------------------------------------------------

def _draw(rng, name: str) -> dict:
    style = "corridor" if rng.random() < 0.4 else "rooms"
    w = _uniform_snap(rng, 6.0, 24.0, GRID)
    h = _uniform_snap(rng, 5.0, min(16.0, max(5.0, w)), GRID)
    if style == "corridor":
        rects, keep = _corridor_layout(w, h, rng)
    else:
        rects, keep = _bsp(_Rect(0, 0, w, h), rng, 2.5, rng.uniform(4.5, 7.0), 0.6), None
    if len(rects) > 3 and rng.random() < 0.5:
        rects = _drop_rooms(rects, keep, rng, int(rng.integers(1, 4)))
    adj = _adjacency(rects)
    if len(rects) < 2 or not _connected(len(rects), adj):
        raise _Redraw("rooms not connected by door-capable walls")
    doors = _doors(rects, adj, rng, loop_p=rng.uniform(0.1, 0.5), prefer=keep)
    names = ["corridor" if k == keep else f"room{k}" for k in range(len(rects))]
    n_wall = int(rng.integers(3, len(WALL_TEXTURES) + 1))   # a palette: some worlds repeat textures
    palette = [WALL_TEXTURES[i] for i in rng.choice(len(WALL_TEXTURES), n_wall, replace=False)]
    floors = [FLOOR_TEXTURES[i] for i in rng.choice(len(FLOOR_TEXTURES), int(rng.integers(2, 6)), replace=False)]
    ceiling = CEILING_TEXTURES[int(rng.integers(len(CEILING_TEXTURES)))]
    wall_height = _snap(rng.uniform(2.3, 3.2), FINE)
    portraits = _portraits()
    rooms, boxes, pictures = [], [], []
    for k, r in enumerate(rects):
        rooms.append({"name": names[k], "rect": [r.x0, r.y0, r.x1, r.y1],
                      "wall": palette[int(rng.integers(len(palette)))],
                      "floor": floors[int(rng.integers(len(floors)))], "ceiling": ceiling})
        boxes += _boxes(k, r, doors, rng, int(rng.integers(0, 3 if k != keep else 1) + (r.w * r.h > 20)))
        pictures += _pictures(names[k], r, doors, k, rng, portraits, int(rng.integers(1, 4)))
    openings = [{"rooms": [names[i], names[j]], "from": s, "to": e} for i, j, _a, _c, s, e in doors]
    bx1, by1 = max(r.x1 for r in rects), max(r.y1 for r in rects)
    bx0, by0 = min(r.x0 for r in rects), min(r.y0 for r in rects)
    tint = rng.uniform(-0.08, 0.08, 3)
    level = rng.uniform(0.55, 0.95)
    light_color = [round(float(np.clip(level + t, 0.3, 1.0)), 2) for t in tint]
    amb = rng.uniform(0.3, 0.55)
    ambient = [round(float(np.clip(amb + t / 2, 0.2, 0.7)), 2) for t in tint]
    return {
        "name": name,
        "description": (f"Generated ({style} layout): {len(rooms)} rooms, {len(openings)} doors, "
                        f"{len(boxes)} boxes, {bx1 - bx0:g} x {by1 - by0:g} m."),
        "wall_height": wall_height,
        "light": [_uniform_snap(rng, bx0, bx1, FINE), _uniform_snap(rng, by0, by1, FINE), wall_height],
        "light_color": light_color,
        "ambient": ambient,
        "rooms": rooms, "openings": openings, "boxes": boxes, "pictures": pictures,
    }


class _Redraw(Exception):
    pass


def check_world(world) -> None:
    """Raise WorldFileError unless every free cell of the ground-truth grid is reachable,
    every room has reachable free space and every opening lets the robot through."""
    if int(world.main_component.sum()) != int(world.free.sum()):
        raise WorldFileError(f"{world.path}: {int(world.free.sum() - world.main_component.sum())} free cells "
                             "are not reachable")
    for r in world.rooms:
        row, col = world.cell_of(np.array([r.x0 + 0.01, r.x1 - 0.01]), np.array([r.y0 + 0.01, r.y1 - 0.01]))
        if not world.main_component[row[0]:row[1] + 1, col[0]:col[1] + 1].any():
            raise WorldFileError(f"{world.path}: room '{r.name}' has no reachable free space")
    for o in world.openings:
        if not door_is_open(world, o):
            raise WorldFileError(f"{world.path}: the robot cannot pass the opening between '{o.room_a}' "
                                 f"and '{o.room_b}'")


def door_is_open(world, opening, depth: float = 0.3) -> bool:
    """The robot's disc fits in the middle of the opening and `depth` m in front of and
    behind it (free cells of the ground-truth grid; with every free cell reachable, the
    robot can pass)."""
    mid = (opening.start + opening.end) / 2
    for d in (-depth, 0.0, depth):
        x, y = (mid, opening.coord + d) if opening.axis == "x" else (opening.coord + d, mid)
        row, col = world.cell_of(x, y)
        if not world.free[row, col]:
            return False
    return True


def generate_world(seed: int, index: int = 0, name: str | None = None, max_tries: int = 50) -> dict:
    """World file contents (a dict in the documented format) for (seed, index)."""
    return _generate(seed, index, name, max_tries)[0]


def _generate(seed: int, index: int, name: str | None, max_tries: int = 50) -> tuple[dict, World]:
    name = name or f"gen_s{seed}_{index:03d}"
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 0x0A4]))
    last = None
    for _ in range(max_tries):
        try:
            spec = _draw(rng, name)
            world = world_from_data(spec, Path(f"<generated {name}>"))
            check_world(world)
            return spec, world
        except (_Redraw, WorldFileError) as exc:
            last = exc
    raise RuntimeError(f"no valid world for seed {seed}, index {index} after {max_tries} draws: {last}")


def dump_world(spec: dict) -> str:
    """YAML text of a world dict: rooms, openings, boxes and pictures one per line."""
    import yaml

    def flow(item) -> str:
        text = yaml.safe_dump(item, default_flow_style=True, sort_keys=False, width=1 << 16).strip()
        return text[:-3].strip() if text.endswith("\n...") else text   # a scalar's document end

    lines = ["# generated by `o4a worlds --generate` (o4a_nav/sim/generate.py); format: docs/WORLDS.md"]
    for key in ("name", "description", "wall_height", "light", "light_color", "ambient"):
        lines.append(f"{key}: {flow(spec[key])}")
    for key in ("rooms", "openings", "boxes", "pictures"):
        lines.append(f"{key}:" if spec[key] else f"{key}: []")
        lines += [f"  - {flow(item)}" for item in spec[key]]
    return "\n".join(lines) + "\n"


def write_worlds(n: int, seed: int, out, prefix: str = "gen") -> list[tuple[Path, World]]:
    """Generate worlds (seed, 0..n-1) into `out` as <prefix>_s<seed>_<i>.yaml. An existing
    file is left alone when identical and is an error when it differs. Returns (path,
    checked World) pairs."""
    if n < 1:
        raise UserError(f"--generate needs N >= 1 (got {n})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        name = f"{prefix}_s{seed}_{i:03d}"
        spec, world = _generate(seed, i, name)
        text = dump_world(spec)
        path = out / f"{name}.yaml"
        if path.exists() and path.read_text() != text:
            raise UserError(f"{path} exists with other contents; choose another --out or --seed")
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        paths.append((path, world))
    return paths
