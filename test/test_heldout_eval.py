"""`o4a heldout` (o4a_nav/bench/heldout.py) on one small generated world: bag, --base
adaptation, benchmark, table; a second run continues instead of redoing; worlds the model
was trained on and changed settings are refused."""
import json
from pathlib import Path

import pytest

from o4a_nav.cli import main
from o4a_nav.sim.generate import write_worlds

START = str(Path(__file__).resolve().parents[1] / "models" / "o4a_default")


def test_heldout_adapts_benchmarks_and_continues(tmp_path, capsys):
    (wf, _), = write_worlds(1, 7, tmp_path / "worlds")
    out = tmp_path / "ho"
    args = ["heldout", "--model", START, "--worlds", str(wf), "--steps", "600", "--episodes", "1", "--out", str(out)]
    assert main(args) == 0
    res = json.loads((out / "heldout.json").read_text())
    row = res["worlds"]["gen_s7_000"]
    assert row["frames"] == 600 and row["episodes"] == 4 and set(row["sr_by_bin"]) == {"easy", "medium", "hard",
                                                                                        "very_hard"}
    assert 0.0 <= row["candidate_recall"] <= 1.0 and 0.0 <= row["closure_precision"] <= 1.0 and row["adapt_s"] > 0
    assert (out / "models" / "gen_s7_000" / "report.json").is_file()
    table = (out / "heldout.md").read_text()
    assert "| gen_s7_000 |" in table and "o4a heldout --model" in table
    capsys.readouterr()

    assert main(args) == 0                                       # continues: nothing to redo
    assert "done already" in capsys.readouterr().out
    assert main(args[:-6] + ["--steps", "700"] + args[-4:]) == 2   # other settings, same --out
    assert "other settings" in capsys.readouterr().err
    assert main(["heldout", "--model", START, "--worlds", "two_rooms", "--out", str(tmp_path / "x")]) == 2
    assert "not held out" in capsys.readouterr().err


def test_heldout_bad_arguments(tmp_path, capsys):
    base = ["heldout", "--model", START, "--out", str(tmp_path / "o")]
    assert main(base + ["--job", str(tmp_path), "--steps", "10"]) == 2
    assert "--steps must be >= 500" in capsys.readouterr().err
    assert main(base + ["--job", str(tmp_path)]) == 2
    assert "no held-out worlds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base + ["--job", str(tmp_path), "--adapt", "none"])
