"""`make demo`'s command runs one short episode end to end through ROS with the shipped model."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "o4a_default"

pytestmark = pytest.mark.ros


def test_demo_short_episode(tmp_path):
    assert (MODEL / "meta.json").is_file(), "the shipped model models/o4a_default is missing"
    out = subprocess.run(
        [sys.executable, "-m", "o4a_nav.cli", "demo", "--max-steps", "6", "--timeout", "120",
         "--out", str(tmp_path), "--quiet"],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode in (0, 1), text[-3000:]
    assert "demo: world " in text
    verdict = [line for line in out.stdout.splitlines() if line.startswith("demo: SUCCESS") or
               line.startswith("demo: FAILURE")]
    assert len(verdict) == 1, text[-3000:]
    assert ("SUCCESS" in verdict[0]) == (out.returncode == 0)
    assert "true distance to goal" in verdict[0]
    for name in ("trajectory.png", "goal_front.png", "goal_rear.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_demo_with_a_missing_model_says_so(tmp_path):
    out = subprocess.run([sys.executable, "-m", "o4a_nav.cli", "demo", "--model", str(tmp_path / "nope")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "nope" in out.stderr and "Traceback" not in out.stderr
