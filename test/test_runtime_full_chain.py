"""The full chain under real rclpy: sim -> collision_checker -> navigator ->
base_controller -> cmd_vel -> sim, with a goal sent through the o4a/navigate action.

test_chain_executes_decisions runs with a randomly initialised model (the plumbing: every
decided motion is executed by the base on the simulated robot and reported back).
test_chain_reaches_goal needs the shipped model models/o4a_default (learning issue) and
checks that the robot reaches a goal image and the action reports success."""
import math
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from o4a_nav import topics
from o4a_nav.types import Pose2D

pytestmark = [pytest.mark.ros, pytest.mark.slow]
NS = f"/o4a_chain_{os.getpid()}"  # own namespace on top of the per-process domain
# Staleness limits for these tests: the four nodes share one process on a busy 2-core
# machine, where a sensor message can be late by more than the 0.5 s default; the
# stale-input behaviour itself is tested in test_nav_runtime / test_runtime_nodes.
STALE_S = 2.0

ROOT = Path(__file__).resolve().parents[1]
# O4A_CHAIN_MODEL=DIR runs the goal-reaching case with another trained model directory
SHIPPED_MODEL = Path(os.environ.get("O4A_CHAIN_MODEL", ROOT / "models" / "o4a_default"))


def pick_start_goal(world, ahead: float, seed: int = 0):
    """A start pose with a straight, free corridor of `ahead` metres in front of it."""
    rng = np.random.default_rng(seed)
    for _ in range(2000):
        s = world.sample_free_pose(rng)
        ok = True
        for k in range(1, 11):
            d = ahead * k / 10
            if world.collides(s.x + d * math.cos(s.yaw), s.y + d * math.sin(s.yaw)):
                ok = False
                break
        if ok:
            g = Pose2D(s.x + ahead * math.cos(s.yaw), s.y + ahead * math.sin(s.yaw), s.yaw)
            if world.geodesic((s.x, s.y), (g.x, g.y)) < ahead + 0.3:
                return s, g
    raise AssertionError("no start/goal pair found")


class Chain:
    """The four nodes as `o4a bringup --sim` runs them: the navigation nodes in a
    SingleThreadedExecutor thread, the sim in the main thread, pumped
    by `wait`."""

    def __init__(self, model_path, world, start: Pose2D, nav_params: dict, seed: int = 0):
        from o4a_nav.nodes.base_controller import BaseControllerNode
        from o4a_nav.nodes.collision_checker import CollisionCheckerNode
        from o4a_nav.nodes.navigator import NavigatorNode
        from o4a_nav.nodes.sim import SimNode

        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        P = Parameter
        self.sim = SimNode(context=self.ctx, namespace=NS, parameter_overrides=[
            P("world", value=world), P("seed", value=seed), P("initial_pose", value=[start.x, start.y, start.yaw]),
            P("camera_rate", value=25.0), P("scan_rate", value=25.0)])
        self.cc = CollisionCheckerNode(context=self.ctx, namespace=NS)
        self.nav = NavigatorNode(context=self.ctx, namespace=NS, parameter_overrides=[
            P("model_path", value=str(model_path)), P("torch_threads", value=1), P("stale_timeout", value=STALE_S)]
            + [P(k, value=v) for k, v in nav_params.items()])
        self.base = BaseControllerNode(context=self.ctx, namespace=NS, parameter_overrides=[
            P("max_linear_speed", value=0.5), P("max_angular_speed", value=1.5),
            P("odom_timeout", value=STALE_S), P("command_timeout", value=STALE_S)])
        self.client_node = rclpy.create_node("chain_client", context=self.ctx, namespace=NS)
        self.actions, self.motion, self.clients = [], [], []
        from o4a_msgs.msg import DiscreteAction, MotionState

        from o4a_nav.nodes._common import reliable
        self.client_node.create_subscription(DiscreteAction, topics.ACTION, self.actions.append, reliable(10))
        self.client_node.create_subscription(MotionState, topics.MOTION_STATE, self.motion.append, reliable(10))
        from sensor_msgs.msg import Image

        from o4a_nav.nodes._common import SENSOR_QOS
        self.frames = set()  # distinct front images seen (the cameras must follow the robot)
        self.client_node.create_subscription(Image, topics.FRONT_IMAGE, lambda m: self.frames.add(bytes(m.data)),
                                             SENSOR_QOS)
        self.ex = SingleThreadedExecutor(context=self.ctx)  # as `o4a bringup` (--threads 1)
        self.sim_ex = SingleThreadedExecutor(context=self.ctx)
        self.sim_ex.add_node(self.sim)
        self.nodes = [self.sim, self.cc, self.nav, self.base, self.client_node]
        for n in self.nodes[1:]:
            self.ex.add_node(n)
        self.th = threading.Thread(target=self.ex.spin, daemon=True)

    def render_at(self, pose: Pose2D):
        """Goal images: the sim robot's own cameras at `pose` (before the executor runs)."""
        start = self.sim.robot.pose
        self.sim.robot.set_pose(pose)
        front, rear = self.sim.robot.render()
        self.sim.robot.set_pose(start)
        return front, rear

    def start(self):
        self.th.start()

    def wait(self, pred, timeout):
        """Spin the simulator in this (its own) thread until pred() or timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return True
            self.sim_ex.spin_once(timeout_sec=0.01)
        return pred()

    def navigate(self, front, rear, max_steps, timeout):
        from o4a_nav.nodes.goal_client import ImageGoalClient

        # the client node is spun by the executor thread; waiting pumps the simulator here
        client = ImageGoalClient(self.client_node, spin=lambda t: self.sim_ex.spin_once(timeout_sec=min(t, 0.01)))
        self.clients.append(client)  # destroyed in close(), once the executor has stopped
        assert client.wait_for_server(20.0)
        assert client.send(front, rear, max_steps, timeout=20.0)
        assert client.wait(timeout), f"no result after {timeout} s; status {self.nav.runtime.status}"
        return client.result()

    def close(self):
        self.ex.shutdown(timeout_sec=2.0)
        self.sim_ex.shutdown(timeout_sec=2.0)
        for c in self.clients:
            c.destroy()
        for n in self.nodes:
            if hasattr(n, "shutdown"):
                n.shutdown()
        for n in self.nodes:
            n.destroy_node()
        rclpy.shutdown(context=self.ctx)
        self.th.join(timeout=5.0)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    import torch

    from o4a_nav.learning.config import ModelConfig
    from o4a_nav.learning.model_io import O4AModel, save_model

    torch.manual_seed(0)
    return save_model(O4AModel(ModelConfig(), ["two_rooms"]), tmp_path_factory.mktemp("chain") / "m")


def test_chain_executes_decisions(random_model):
    """Every motion the navigator decides is executed on the simulated robot and reported:
    after N steps the ground-truth pose moved by exactly the executed primitives."""
    from o4a_nav.sim import load_world

    world = load_world("two_rooms")
    start, _ = pick_start_goal(world, 1.5)
    steps = 6
    chain = Chain(random_model, "two_rooms", start, {"stop_threshold": 0.0, "max_steps": steps})
    try:
        front, rear = chain.render_at(Pose2D(start.x, start.y, start.yaw + math.pi))
        chain.start()
        res = chain.navigate(front, rear, 0, timeout=90.0)
        assert not res.success and "max_steps" in res.reason
        assert res.steps == steps + 1 and res.forwards + res.rotations == steps
        moves = [m for m in chain.motion if m.state == 2 and m.action != 0]  # motions SUCCEEDED
        assert len(moves) == steps, [(m.sequence, m.state, m.message) for m in chain.motion if m.state == 3]
        end = chain.sim.robot.pose
        yaw_turned = math.remainder(end.yaw - start.yaw, 2 * math.pi)
        n_left = sum(1 for a in chain.actions if a.action == 2)
        n_right = sum(1 for a in chain.actions if a.action == 3)
        assert yaw_turned == pytest.approx(math.radians(15) * (n_left - n_right), abs=0.05 * steps)
        travelled = math.hypot(end.x - start.x, end.y - start.y)
        assert travelled <= 0.25 * res.forwards + 0.05
        if res.forwards:
            assert travelled > 0.1
        assert chain.sim.blocked_moves == 0
        assert chain.actions[-1].action == 0  # STOP at the end
        assert len(chain.frames) > steps  # the published views changed as the robot moved
    finally:
        chain.close()


def core_reaches(model, world_name, start: Pose2D, goal: Pose2D, max_steps: int) -> bool:
    """Does the navigator core (the same O4ANavigator the node runs) reach the goal in the
    discrete, exact simulator? Deterministic: no ROS, no timing."""
    from o4a_nav.nav.collision import CollisionChecker
    from o4a_nav.nav.navigator import NavigatorParams, O4ANavigator
    from o4a_nav.sim import SimRobot, load_world
    from o4a_nav.types import Action

    world = load_world(world_name)
    robot = SimRobot(world, seed=0, pose=goal)
    try:
        gf, gr, _ = robot.observe()
        robot.set_pose(start)
        nav = O4ANavigator(model, world=world_name, params=NavigatorParams(max_steps=max_steps))
        nav.set_goal(gf, gr)
        checker = CollisionChecker()
        for _ in range(max_steps):
            front, rear, scan = robot.observe()
            d = nav.step(front, rear, checker.free_actions(scan).free)
            if d.action == Action.STOP:
                p = robot.pose
                return math.hypot(p.x - goal.x, p.y - goal.y) < 1.0
            robot.step(d.action)
        return False
    finally:
        robot.close()


@pytest.mark.skipif(not (SHIPPED_MODEL / "meta.json").is_file(),
                    reason=f"{SHIPPED_MODEL} does not exist: models/o4a_default is not in the repository yet (trained and committed by the "
                           "learning issue); this test needs a trained model to reach a goal")
def test_chain_reaches_goal():
    """The shipped model drives the simulated robot through the ROS chain to a goal image
    1.5 m ahead and STOPs within 1 m of it; the action reports success.

    The episode is the first of a few seeded ones that the navigator core solves in the
    exact discrete simulator, from the start and from four slightly perturbed starts: the ROS chain (continuous motion, closed-loop base, real
    topics) must reproduce what the core does. How often the model solves episodes at all
    is the benchmark's business (o4a bench), not this test's."""
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.sim import load_world

    model = load_model(SHIPPED_MODEL)
    world_name = model.worlds[0]
    world = load_world(world_name)
    # the continuous chain never repeats the exact discrete poses: ask for an episode the
    # core also solves from slightly perturbed starts (+-3 cm, +-3 deg)
    jitter = [(0.0, 0.0, 0.0), (0.03, 0.0, 0.05), (-0.03, 0.0, -0.05), (0.0, 0.03, -0.05), (0.0, -0.03, 0.05)]
    for seed in range(1, 13):
        start, goal = pick_start_goal(world, 1.5, seed=seed)
        starts = [Pose2D(start.x + dx, start.y + dy, start.yaw + dyaw) for dx, dy, dyaw in jitter]
        if all(not world.collides(p.x, p.y) and core_reaches(model, world_name, p, goal, max_steps=40)
               for p in starts):
            break
    else:
        raise AssertionError("the navigator core robustly reaches none of 12 goals 1.5 m ahead with the shipped model")
    chain = Chain(SHIPPED_MODEL, world_name, start, {"world": world_name, "max_steps": 80})
    try:
        front, rear = chain.render_at(goal)
        chain.start()
        res = chain.navigate(front, rear, 80, timeout=240.0)
        end = chain.sim.robot.pose
        dist = math.hypot(end.x - goal.x, end.y - goal.y)
        assert res.success, f"seed {seed}: {res.reason}; steps {res.steps}; {dist:.2f} m from the goal"
        assert dist < 1.0, f"seed {seed}: STOP {dist:.2f} m from the goal"
        assert chain.sim.blocked_moves == 0
    finally:
        chain.close()
