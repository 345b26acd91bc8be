"""o4a worlds: list the built-in simulator worlds."""
from __future__ import annotations

HELP = "list the built-in simulator worlds, one name per line (--long: size and description)"


def add_arguments(p) -> None:
    p.add_argument("-l", "--long", action="store_true",
                   help="also print rooms, free area and the description of each world")
    p.add_argument("--check", metavar="FILE", nargs="+", default=[],
                   help="validate world files (name or path) instead of listing; exit status 2 on the first error")


def run(args) -> int:
    from o4a_nav.sim.world import load_world, world_names

    if args.check:
        for f in args.check:
            w = load_world(f)
            print(f"{w.path}: ok: world '{w.name}', {len(w.rooms)} rooms, {w.free_area:.1f} m^2 free")
        return 0
    for name in world_names():
        if not args.long:
            print(name)
            continue
        w = load_world(name)
        x0, y0, x1, y1 = w.bounds
        print(f"{name}: {len(w.rooms)} rooms, {len(w.openings)} openings, {len(w.boxes)} boxes, "
              f"{x1 - x0:.1f} x {y1 - y0:.1f} m, {w.free_area:.1f} m^2 free. {w.description}")
    return 0
