"""The environment `make setup` builds: imports with no `source` step, the `o4a` CLI, idempotence."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def _clean_env():
    keep = {k: os.environ[k] for k in ("HOME", "ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE") if k in os.environ}
    return {**keep, "PATH": "/usr/bin:/bin"}


def test_imports_in_clean_shell():
    out = subprocess.run(
        [sys.executable, "-c", "import rclpy, o4a_msgs.srv, o4a_msgs.action, o4a_nav; "
                               "from o4a_msgs.msg import DiscreteAction; print(DiscreteAction.ROTATE_RIGHT)"],
        env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"


def test_o4a_cli_is_installed_and_lists_commands():
    out = subprocess.run([str(VENV_BIN / "o4a"), "--help"], env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage: o4a" in out.stdout


def test_action_enum_matches_message_constants():
    from o4a_msgs.msg import DiscreteAction
    from o4a_nav.types import Action

    for a in Action:
        assert getattr(DiscreteAction, a.name) == a.value


def test_state_enums_match_message_constants():
    """NavState and MotionStatus are the o4a_msgs constants, name for name and value for
    value, in both directions."""
    from o4a_msgs.msg import MotionState, NavigatorStatus

    from o4a_nav.types import MotionStatus, NavState

    for enum, msg in ((NavState, NavigatorStatus), (MotionStatus, MotionState)):
        consts = {k: v for k, v in vars(msg).items() if k.isupper() and isinstance(v, int) and not k.startswith("_")}
        assert consts == {s.name: s.value for s in enum}, enum.__name__


def test_setup_is_idempotent_and_quick_when_nothing_changed():
    out = subprocess.run(["bash", str(ROOT / "scripts/setup.sh")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "up to date" in out.stdout and "building o4a_msgs" not in out.stdout
