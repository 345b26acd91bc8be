"""o4a bag: bag maintenance. `o4a bag repair BAG` recovers a recording that was cut off."""
from __future__ import annotations

HELP = "bag maintenance: `o4a bag repair BAG` rebuilds a cut-off recording (killed recorder, power loss)"

EXAMPLES = """examples:
  o4a bag repair data/bags/run1                # in place; the damaged folder is kept as run1.damaged
  o4a bag repair data/bags/run1 -o data/bags/run1_fixed
"""


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="bag_command", metavar="ACTION")
    sub.required = True
    r = sub.add_parser("repair", help="rebuild the index and metadata.yaml of a cut-off MCAP or sqlite3 bag, "
                                      "keeping every complete message")
    r.add_argument("bag", metavar="BAG", help="rosbag2 folder left by a killed recorder")
    r.add_argument("-o", "--out", default=None, metavar="DIR",
                   help="write the repaired bag here (default: in place; the damaged folder is kept as BAG.damaged)")


def run(args) -> int:
    from o4a_nav.bagtools.repair import repair

    res = repair(args.bag, args.out)
    print(f"{res['bag']}: {res['messages']} complete messages recovered ({res['storage']}, "
          f"t = {res['start_s']:.3f} .. {res['end_s']:.3f} s)")
    for topic, n in sorted(res["topics"].items()):
        print(f"  {topic}: {n}")
    if res["cut_bytes"]:
        print(f"  {res['cut_bytes']} bytes at the end held no complete record (cut off) and were left out")
    if res["damaged_kept_in"]:
        print(f"  the damaged original is kept in {res['damaged_kept_in']}")
    return 0
