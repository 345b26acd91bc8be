"""`o4a diagnose` (o4a_nav/bench/diagnose.py): the navigator's rule with the attractor swapped.

With the true distance as the attractor the shipped rule (repulsor over f's waypoints,
STOP on d_h, A_free from the checker) must reach easy goals: a regression test of the
rule that does not depend on how good p+ is. The `pplus` control must give exactly the
benchmark's outcomes on the same episodes."""
import json
from pathlib import Path

import pytest

from o4a_nav import cli

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "o4a_default"

pytestmark = pytest.mark.skipif(not (SHIPPED / "meta.json").is_file(), reason="needs the shipped model")


def test_true_attractor_reaches_easy_goals_with_few_rotations(tmp_path):
    out = tmp_path / "truth.json"
    assert cli.main(["diagnose", "--mode", "truth", "--worlds", "two_rooms", "--difficulties", "easy",
                     "--episodes", "3", "--seed", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    eps = result["episodes"]
    assert result["summary"] == {"mode": "truth", "episodes": 3, "succeeded": 3,
                                 "rotations_per_forward": result["summary"]["rotations_per_forward"]}
    assert len(eps) == 3 and all(e["success"] for e in eps)
    assert sum(e["rotations"] for e in eps) / sum(e["forwards"] for e in eps) < 3.0


def test_pplus_control_matches_the_benchmark(tmp_path):
    out = tmp_path / "pplus.json"
    args = ["--worlds", "two_rooms", "--difficulties", "easy", "--episodes", "2", "--seed", "1"]
    assert cli.main(["diagnose", "--mode", "pplus", *args, "--out", str(out)]) == 0
    diag = json.loads(out.read_text())["episodes"]
    assert cli.main(["bench", "--model", str(SHIPPED), *args, "--policy", "o4a", "--jobs", "1",
                     "--out", str(tmp_path / "bench")]) == 0
    bench = [e for e in json.loads((tmp_path / "bench" / "results.json").read_text())["episodes"]
             if e["policy"] == "o4a"]
    key = lambda e: (e["difficulty"], e["index"])  # noqa: E731
    assert [(key(e), e["success"], e["forwards"], e["rotations"]) for e in sorted(diag, key=key)] == \
        [(key(e), e["success"], e["forwards"], e["rotations"]) for e in sorted(bench, key=key)]


def test_unknown_mode_is_refused():
    with pytest.raises(SystemExit):
        cli.main(["diagnose", "--mode", "nope", "--out", "x.json"])
