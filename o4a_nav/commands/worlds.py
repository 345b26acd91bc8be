"""o4a worlds: list the built-in simulator worlds, check world files, generate new ones."""
from __future__ import annotations

HELP = ("list the built-in simulator worlds, one name per line (--long: size and description); "
        "--check world files; --generate N new ones")

EXAMPLES = """examples:
  o4a worlds --long
  o4a worlds --check data/worlds/my_world.yaml
  o4a worlds --generate 20 --seed 0 --out data/worlds/gen
"""


def add_arguments(p) -> None:
    p.add_argument("-l", "--long", action="store_true",
                   help="also print rooms, free area and the description of each world")
    p.add_argument("--check", metavar="FILE", nargs="+", default=[],
                   help="validate world files (name or path) instead of listing; exit status 2 on the first error")
    p.add_argument("--generate", type=int, metavar="N",
                   help="write N procedurally generated worlds (docs/WORLDS.md) into --out as gen_s<SEED>_<i>.yaml")
    p.add_argument("--seed", type=int, default=0, help="seed of --generate (default 0; same seed, same files)")
    p.add_argument("--out", metavar="DIR", help="folder for --generate")


def run(args) -> int:
    from o4a_nav.errors import UserError
    from o4a_nav.sim.world import load_world, world_names

    if args.generate is not None:
        if not args.out:
            raise UserError("--generate needs --out DIR")
        from o4a_nav.sim.generate import write_worlds

        for path, w in write_worlds(args.generate, args.seed, args.out):
            x0, y0, x1, y1 = w.bounds
            print(f"{path}: {len(w.rooms)} rooms, {len(w.openings)} openings, {len(w.boxes)} boxes, "
                  f"{x1 - x0:.1f} x {y1 - y0:.1f} m, {w.free_area:.1f} m^2 free")
        return 0
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
