"""The simulator in lockstep under real rclpy: simulated time advances only when the stack
acts, motions end exactly where the in-process benchmark's simulator puts them, and a
whole episode through the real sim, collision_checker, navigator and base_controller
nodes is the same run every time (also under CPU load) and takes the core's decisions."""
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter

from o4a_nav import topics
from o4a_nav.nodes._common import reliable
from o4a_nav.types import Action, Pose2D

from conftest import wait_until  # noqa: E402

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "o4a_default"
START = Pose2D(1.0, 1.0, 0.3)   # two_rooms, west room, 3 m of free floor ahead


class Commander(Node):
    def __init__(self, ctx):
        super().__init__("commander", context=ctx)
        from o4a_msgs.msg import DiscreteAction, MotionState
        from rosgraph_msgs.msg import Clock

        self.DiscreteAction = DiscreteAction
        self.clock, self.motion = [], []
        self.create_subscription(Clock, topics.CLOCK, self.clock.append, reliable(100))
        self.create_subscription(MotionState, topics.MOTION_STATE, self.motion.append, reliable(100))
        self.pub = self.create_publisher(DiscreteAction, topics.ACTION, reliable(10))
        self.seq = 0

    def act(self, action: Action) -> int:
        self.seq += 1
        m = self.DiscreteAction()
        m.action, m.sequence = int(action), self.seq
        self.pub.publish(m)
        return self.seq

    def sim_time(self) -> float:
        c = self.clock[-1].clock
        return c.sec + c.nanosec * 1e-9


def test_lockstep_sim_waits_for_the_stack_and_executes_motions_exactly(ros):
    from o4a_nav.nodes.base_controller import BaseControllerNode
    from o4a_nav.nodes.sim import SimNode

    ctx, add = ros
    base = add(BaseControllerNode(context=ctx, parameter_overrides=[Parameter("use_sim_time", value=True)]))
    cmd = add(Commander(ctx))
    sim = add(SimNode(context=ctx, parameter_overrides=[
        Parameter("world", value="two_rooms"), Parameter("initial_pose", value=[START.x, START.y, START.yaw]),
        Parameter("lockstep", value=True), Parameter("lockstep_wait", value=5.0)]))
    assert sim.publish_clock
    # the first observation: one period, then nothing happens until the stack acts
    # (or lockstep_wait passes: 5 s)
    assert wait_until(lambda: cmd.clock and base.ctl.pose is not None, timeout=60.0)
    t_idle, n_idle = cmd.sim_time(), len(cmd.clock)
    spawn = sim.origin   # START with its yaw wrapped, as SimRobot.set_pose does in the benchmark too
    time.sleep(1.0)
    assert cmd.sim_time() == t_idle and len(cmd.clock) == n_idle and sim.robot.pose == spawn
    # each motion runs on the base controller's cmd_vel and ends exactly on the discrete step
    expected = spawn
    for action in (Action.FORWARD, Action.ROTATE_LEFT, Action.ROTATE_RIGHT, Action.ROTATE_RIGHT, Action.FORWARD):
        expected, moved = sim.robot.motion_result(action, expected)
        assert moved
        n_clock = len(cmd.clock)
        seq = cmd.act(action)
        assert wait_until(lambda: any(m.sequence == seq and m.state in (2, 3) for m in cmd.motion), timeout=60.0)
        assert [m.state for m in cmd.motion if m.sequence == seq and m.state in (2, 3)] == [2]
        assert wait_until(lambda: sim._motion is None and len(sim.motions) == seq)
        assert sim.robot.pose == expected   # bit for bit
        assert len(cmd.clock) > n_clock + 10    # the motion took many simulated periods
        # ... and then time stands still again until the next action
        time.sleep(0.3)
        n_after = len(cmd.clock)
        time.sleep(0.5)
        assert len(cmd.clock) == n_after
    assert [m.outcome for m in sim.motions] == ["succeeded"] * 5
    assert sim.blocked_moves == 0
    assert cmd.sim_time() > 2.0   # simulated seconds ...
    # a FORWARD whose exact step is blocked is refused and leaves the robot where it was
    sim.robot.snap(Pose2D(3.7, 1.0, 0.0))   # 0.1 m from the wall at x = 4 - radius
    seq = cmd.act(Action.FORWARD)
    assert wait_until(lambda: len(sim.motions) == seq, timeout=120.0)
    assert sim.motions[-1].outcome == "blocked" and not sim.motions[-1].moved
    assert sim.robot.pose == Pose2D(3.7, 1.0, 0.0)


def _episode(seed: int = 0, max_steps: int = 10):
    from o4a_nav.bench.episodes import sample_episodes
    from o4a_nav.sim import SimRobot, load_world

    world = load_world("two_rooms")
    ep = sample_episodes(world, "two_rooms", 1, seed, ("easy",)).episodes[0]
    robot = SimRobot(world, seed=seed, pose=ep.goal)
    try:
        gf, gr, _ = robot.observe()
    finally:
        robot.close()
    return ep, gf, gr


@pytest.mark.slow
@pytest.mark.skipif(not (MODEL / "meta.json").is_file(), reason="needs the shipped model models/o4a_default")
def test_lockstep_episode_is_the_same_run_every_time_also_under_load():
    """Two runs of one episode through the real nodes: identical decisions and identical
    poses, the second while another process keeps a CPU core busy."""
    from o4a_nav.nodes import lockstep

    ep, gf, gr = _episode()
    first = lockstep.run_episode("two_rooms", ep.start, gf, gr, MODEL, 10, seed=0, timeout=300.0)
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        second = lockstep.run_episode("two_rooms", ep.start, gf, gr, MODEL, 10, seed=0, timeout=300.0)
    finally:
        burner.kill()
        burner.wait()
    assert not first.timed_out and not second.timed_out
    assert len(first.decisions) >= 2
    assert first.decisions == second.decisions
    assert [(m.action, m.end) for m in first.motions] == [(m.action, m.end) for m in second.motions]
    assert first.final_pose == second.final_pose
    assert first.steps == second.steps and first.reason == second.reason
    assert all(m.outcome == "succeeded" for m in first.motions)


@pytest.mark.slow
@pytest.mark.skipif(not (MODEL / "meta.json").is_file(), reason="needs the shipped model models/o4a_default")
def test_bench_through_ros_agrees_with_the_core(tmp_path):
    """`o4a bench --through-ros` on two short episodes: the same decisions as the core at
    every step, results in the benchmark's layout with both policies."""
    out = tmp_path / "bench"
    env = dict(os.environ)
    run = subprocess.run(
        [sys.executable, "-m", "o4a_nav.cli", "bench", "--model", str(MODEL), "--worlds", "two_rooms",
         "--difficulties", "easy", "medium", "--episodes", "1", "--seed", "1", "--max-steps", "8",
         "--through-ros", "--out", str(out), "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    text = run.stdout + run.stderr
    assert run.returncode == 0, text[-4000:]
    payload = json.loads((out / "results.json").read_text())
    agreement = payload["ros_agreement"]
    assert agreement["episodes"] == 2
    assert agreement["steps"] >= 2 * 2
    assert agreement["agreeing_steps"] == agreement["steps"], agreement["per_episode"]
    assert agreement["identical_episodes"] == 2
    assert agreement["sr_core"] == agreement["sr_ros"]
    policies = {r["policy"] for r in payload["records"]}
    assert policies == {"o4a", "o4a-ros"}
    by_policy = {}
    for e in payload["episodes"]:
        by_policy.setdefault(e["policy"], []).append(e)
    for core, ros in zip(by_policy["o4a"], by_policy["o4a-ros"]):
        for key in ("steps", "forwards", "rotations", "success", "stopped", "path_length_m", "dtg"):
            assert core[key] == ros[key], (key, core, ros)
    md = (out / "results.md").read_text()
    assert "decision agreement" in md and "o4a-ros" in md and "--through-ros" in md
    assert math.isfinite(agreement["sr_core_se"])


def test_bringup_plan_puts_every_node_on_simulated_time_with_lockstep():
    from o4a_nav.nodes import stack

    args = dict(sim=True, params=None, model="/m", world="two_rooms", seed=0, sets=["sim.lockstep=true"])
    plan = {name: {p.name: p.value for p in ov} for name, _, _, ov in stack.plan(**args)}
    assert plan["sim"]["lockstep"] is True and "use_sim_time" not in plan["sim"]
    assert all(plan[n].get("use_sim_time") is True for n in ("collision_checker", "navigator", "base_controller"))
    args["sets"] = []
    plan = {name: {p.name: p.value for p in ov} for name, _, _, ov in stack.plan(**args)}
    assert plan["sim"]["lockstep"] is False and "use_sim_time" not in plan["navigator"]
