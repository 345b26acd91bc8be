"""o4a replay-check: a navigation run recorded in the simulator replays through the real
collision_checker and navigator nodes (real rclpy) with 100 % decision agreement; changed
decisions and unsafe FORWARDs are reported and fail the check; bad bags give clear errors.

Model: a small randomly initialised model saved with model_io (agreement is about
determinism, so any fixed weights do; stop_threshold 0 keeps it from stopping at once).
The same check on the shipped model: `o4a replay-check BAG --model models/o4a_default`
(docs/BAGS.md).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from o4a_nav import bagio, cli
from o4a_nav.bagtools import navrun
from o4a_nav.topics import absolute
from o4a_nav.types import Action

REPO = Path(__file__).resolve().parent.parent
WORLD = "two_rooms"
STEPS = 24


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(model dir, params file or None, MCAP bag, sqlite3 bag, actions of the run)."""
    import torch

    from o4a_nav.bagtools.simrun import write_sim_navigation_bag
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.nav.navigator import NavigatorParams

    tmp = tmp_path_factory.mktemp("replay_check")
    torch.set_num_threads(1)
    # A small randomly initialised model: agreement is about determinism, so any fixed
    # weights do, and the tests do not depend on how well a trained model navigates.
    # stop_threshold 0 keeps the random model from stopping at once.
    from o4a_nav.learning.config import ModelConfig
    from o4a_nav.learning.model_io import O4AModel, save_model

    torch.manual_seed(0)
    cfg = ModelConfig(compact_channels=(8, 16, 16, 32, 32), image_feature_dim=32, fusion_hidden=32,
                      embed_dim=16, inverse_hidden=(16, 16), forward_hidden=32, geodesic_dim=16,
                      geodesic_blocks=1, geodesic_hidden=16)
    model_dir = save_model(O4AModel(cfg, worlds=[WORLD]), tmp / "random_model")
    model = load_model(model_dir)
    params_file = tmp / "params.yaml"
    params_file.write_text("navigator:\n  ros__parameters:\n    stop_threshold: 0.0\n")
    nav_params = NavigatorParams(stop_threshold=0.0, max_steps=STEPS)
    world = WORLD
    mcap = tmp / "run_mcap"
    summary = write_sim_navigation_bag(mcap, model, world, max_steps=STEPS, seed=3, params=nav_params)
    sqlite = copy_bag(mcap, tmp / "run_sqlite3", "sqlite3")
    return model_dir, params_file, mcap, sqlite, summary["actions"]


def copy_bag(src, dst, storage, edit=None):
    """Copy a bag message by message (raw), optionally editing messages: edit(topic, msg) -> msg."""
    store = bagio.typestore()
    latched = [navrun.GOAL_FRONT, navrun.GOAL_REAR]
    with bagio.BagWriter(dst, storage=storage, latched_topics=latched) as w:
        for topic, msgtype, t, raw in bagio.read(src, raw=True):
            if edit is not None:
                msg = edit(absolute(topic), store.deserialize_cdr(raw, msgtype))
                if msg is None:
                    continue
                raw = store.serialize_cdr(msg, msgtype)
            w.write(topic, msgtype, t, raw)
    return Path(dst)


def replay_check(model_dir, params_file, bag, *extra, watch=None):
    """Run `o4a replay-check` in a subprocess; `watch`: list that receives the names of
    default-namespace topics on which the replay's data (its simulated time) appeared."""
    report = Path(str(bag) + ".report.json")
    cmd = [sys.executable, "-m", "o4a_nav.cli", "replay-check", str(bag), "--model", str(model_dir),
           "--report", str(report), "-q", *extra]
    if params_file:
        cmd += ["--params-file", str(params_file)]
    if watch is None:
        proc = subprocess.run(cmd, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    else:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image, LaserScan

        from o4a_msgs.msg import DiscreteAction, MotionState

        ctx = rclpy.Context()
        rclpy.init(context=ctx)
        node = rclpy.create_node("replay_check_watcher", context=ctx)
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        def seen(name, msg):   # only the replay's simulated time range (t0 = 1000 s), not other stacks' data
            stamp = msg.clock if name == "/clock" else msg.header.stamp
            if 1000 <= stamp.sec < 1100:
                watch.append(name)

        for cls, name in ((Clock, "/clock"), (DiscreteAction, "/o4a/action"), (MotionState, "/o4a/motion_state"),
                          (LaserScan, "/scan"), (Image, "/front_camera/image_raw")):
            node.create_subscription(cls, name, lambda m, n=name: seen(n, m), qos)
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        try:
            popen = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
            while popen.poll() is None:
                executor.spin_once(timeout_sec=0.05)
            out, err = popen.communicate(timeout=60)
            proc = subprocess.CompletedProcess(cmd, popen.returncode, out, err)
        finally:
            executor.shutdown()
            node.destroy_node()
            ctx.try_shutdown()
    data = json.loads(report.read_text()) if report.exists() else None
    return proc, data


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_sim_run_replays_with_full_agreement(setup, storage):
    model_dir, params_file, mcap, sqlite, actions = setup
    bag = mcap if storage == "mcap" else sqlite
    leaked: list = []
    proc, report = replay_check(model_dir, params_file, bag, "--min-agreement", "100", watch=leaked)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert leaked == []          # the replay stays in its private namespace: nothing reaches a robot
    assert report["steps"] == len(actions) > 5
    assert report["agreed"] == report["steps"] and report["agreement"] == 1.0
    assert [r["replayed"] for r in report["results"]] == actions
    assert report["unsafe_forwards"] == 0
    assert "PASS" in proc.stdout


@pytest.mark.ros
@pytest.mark.slow
def test_compressed_camera_run_replays_with_full_agreement(setup, tmp_path):
    """Cameras recorded as JPEG CompressedImage on <topic>/compressed: the navigator under
    test subscribes to them (image_transport compressed) and decides as the recording did."""
    from o4a_nav.bagtools.simrun import write_sim_navigation_bag
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.nav.navigator import NavigatorParams

    model_dir, params_file, _, _, _ = setup
    bag = tmp_path / "run_jpeg"
    summary = write_sim_navigation_bag(bag, load_model(model_dir), WORLD, max_steps=STEPS, seed=5, compressed=True,
                                       params=NavigatorParams(stop_threshold=0.0, max_steps=STEPS))
    types = {absolute(t): v[0] for t, v in bagio.topics(bag).items()}
    assert types["/front_camera/image_raw/compressed"] == "sensor_msgs/msg/CompressedImage"
    assert "/front_camera/image_raw" not in types
    proc, report = replay_check(model_dir, params_file, bag, "--min-agreement", "100")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report["steps"] == len(summary["actions"]) > 5
    assert [r["replayed"] for r in report["results"]] == summary["actions"]


@pytest.mark.ros
@pytest.mark.slow
def test_changed_decisions_are_reported_and_fail_a_strict_check(setup, tmp_path):
    model_dir, params_file, mcap, _, actions = setup
    flip = {Action.FORWARD: Action.ROTATE_LEFT, Action.ROTATE_LEFT: Action.ROTATE_RIGHT,
            Action.ROTATE_RIGHT: Action.FORWARD, Action.STOP: Action.FORWARD}
    last = len(actions) - 1

    def edit(topic, msg):   # the recording says something else at the last step
        if topic == navrun.ACTION and msg.sequence == last:
            msg.action = int(flip[Action(msg.action)])
        return msg

    bag = copy_bag(mcap, tmp_path / "edited", "mcap", edit)
    proc, report = replay_check(model_dir, params_file, bag, "--min-agreement", "100")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert report["agreed"] == report["steps"] - 1
    bad = [r for r in report["results"] if not r["agree"]]
    assert [r["index"] for r in bad] == [last] and bad[0]["replayed"] == actions[last]
    assert f"step {last}" in proc.stdout and "FAIL" in proc.stdout


@pytest.mark.ros
@pytest.mark.slow
def test_forward_into_an_obstacle_fails_the_check(setup, tmp_path):
    """A stack configured with a swept box too narrow for the robot issues FORWARD while
    the recorded scan shows a return inside the robot's true box: replay-check fails."""
    model_dir, params_file, mcap, _, actions = setup
    assert "FORWARD" in actions
    x, y = 0.45, 0.10     # inside the true box (x < 0.5, |y| < 0.2), outside a |y| < 0.05 box

    def edit(topic, msg):
        if topic == navrun.SCAN:
            i = int(round((np.arctan2(y, x) - msg.angle_min) / msg.angle_increment))
            r = np.array(msg.ranges, dtype=np.float32)
            r[i] = min(r[i], np.float32(np.hypot(x, y)))
            msg.ranges = r
        return msg

    bag = copy_bag(mcap, tmp_path / "obstacle", "mcap", edit)
    narrow = tmp_path / "narrow.yaml"
    lines = ["/**:", "  ros__parameters:", "    robot_radius: 0.05", "    box_half_width: 0.05"]
    if params_file:
        lines += ["navigator:", "  ros__parameters:", "    stop_threshold: 0.0"]
    narrow.write_text("\n".join(lines) + "\n")
    proc, report = replay_check(model_dir, narrow, bag)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert report["unsafe_forwards"] >= 1
    assert report["recorded_unsafe_forwards"] == actions.count("FORWARD")
    assert "UNSAFE" in proc.stdout


# ---- bad input (in process: fails before any node starts) ---------------------------------

def test_missing_goal_topic_is_named(setup, tmp_path, capsys):
    model_dir, _, mcap, _, _ = setup
    bag = copy_bag(mcap, tmp_path / "nogoal", "sqlite3",
                   lambda topic, msg: None if topic == navrun.GOAL_REAR else msg)
    code = cli.main(["replay-check", str(bag), "--model", str(model_dir), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "/o4a/goal/rear_image" in err and "Traceback" not in err


def test_corrupted_scan_is_named(setup, tmp_path, capsys):
    model_dir, _, mcap, _, _ = setup
    bag = tmp_path / "corrupt"
    with bagio.BagWriter(bag, storage="mcap") as w:
        for i, (topic, msgtype, t, raw) in enumerate(bagio.read(mcap, raw=True)):
            if absolute(topic) == navrun.SCAN and i > 20:
                raw = raw[:40]
            w.write(topic, msgtype, t, raw)
    code = cli.main(["replay-check", str(bag), "--model", str(model_dir), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "/scan" in err and "corrupted" in err


def test_extract_run_pairs_each_action_with_the_images_it_was_decided_on(setup):
    _, _, mcap, _, actions = setup
    records = ((absolute(t), ts, m) for t, _, ts, m in bagio.read(mcap))
    run = navrun.extract_run(records, "bag")
    assert [s.action.name for s in run.steps] == actions
    assert len(run.goals) == 1
    for s in run.steps:
        assert navrun._stamp(s.front) == navrun._stamp(s.rear) == navrun._stamp(s.scan)
    assert run.steps[-1].index == len(actions) - 1


# ---- the whole chain: a run recorded live from the simulated stack --------------------------

@pytest.mark.ros
@pytest.mark.slow
def test_live_sim_run_recorded_with_o4a_record_replays_with_full_agreement(setup, tmp_path):
    """sim + collision_checker + navigator + base_controller (o4a bringup --sim) drive to a
    goal while `o4a record` records; replay-check of that bag agrees on every decision."""
    import signal
    import time

    import cv2
    import rclpy
    from rclpy.qos import QoSProfile

    from o4a_msgs.msg import NavigatorStatus
    from o4a_msgs.srv import SetGoal
    from o4a_nav import ros_conv
    from o4a_nav.sim.robot import SimRobot

    model_dir, params_file, _, _, _ = setup
    max_steps = 10
    robot = SimRobot(WORLD, seed=11)
    try:
        goal_front, goal_rear = robot.render()
    finally:
        robot.close()
    files = []
    for name, img in (("goal_front.png", goal_front), ("goal_rear.png", goal_rear)):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        files.append(str(tmp_path / name))
    sets = ["--set", "navigator.torch_threads=1", "--set", f"navigator.max_steps={max_steps}"]
    live_params = tmp_path / "live_params.yaml"      # replay-check runs the navigator with the same parameters
    lines = ["navigator:", "  ros__parameters:", f"    max_steps: {max_steps}"]
    if params_file:
        sets += ["--set", "navigator.stop_threshold=0.0"]
        lines.append("    stop_threshold: 0.0")
    live_params.write_text("\n".join(lines) + "\n")
    env = dict(os.environ)
    stack_log = open(tmp_path / "stack.log", "w")       # files, not pipes: a full pipe would block them
    rec_log = open(tmp_path / "record.log", "w")
    ns = f"/bagtest_{os.getpid()}"      # own namespace: no cross-talk with other suites on the domain
    stack = subprocess.Popen([sys.executable, "-m", "o4a_nav.cli", "bringup", "--sim", "--world", WORLD,
                              "--seed", "2", "--model", str(model_dir), "--namespace", ns, *sets], cwd=REPO, env=env,
                             stdout=stack_log, stderr=subprocess.STDOUT, text=True)
    bag = tmp_path / "live"
    recorder = subprocess.Popen([sys.executable, "-m", "o4a_nav.cli", "record",
                                 "--namespace", ns, "front_camera/image_raw", "rear_camera/image_raw", "scan",
                                 "o4a/action", "o4a/motion_state", "o4a/status", "--goal", *files, "-o", str(bag), "-q"], cwd=REPO, env=env,
                                stdout=rec_log, stderr=subprocess.STDOUT, text=True)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("live_test_client", context=ctx)
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    states = []
    node.create_subscription(NavigatorStatus, f"{ns}/o4a/status", lambda m: states.append(int(m.state)), QoSProfile(depth=100))
    try:
        client = node.create_client(SetGoal, f"{ns}/o4a/set_goal")
        deadline = time.monotonic() + 90
        # the stack is up and the recorder subscribed to the action topic and the cameras
        while time.monotonic() < deadline and not (
                client.service_is_ready() and node.count_subscribers(f"{ns}/o4a/action") >= 2
                and node.count_subscribers(f"{ns}/front_camera/image_raw") >= 2):
            time.sleep(0.1)
        assert stack.poll() is None and recorder.poll() is None, "stack or recorder exited early"
        assert client.service_is_ready(), "navigator did not come up"
        time.sleep(1.0)
        req = SetGoal.Request()
        req.front = ros_conv.rgb_to_image_msg(goal_front, 0.0, "goal")
        req.rear = ros_conv.rgb_to_image_msg(goal_rear, 0.0, "goal")
        future = client.call_async(req)
        executor.spin_until_future_complete(future, timeout_sec=30)
        assert future.result() is not None and future.result().accepted, future.result()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(s in (4, 5) for s in states):   # REACHED / FAILED
            executor.spin_once(timeout_sec=0.1)
        assert any(s in (4, 5) for s in states), f"navigation did not finish: states {states[-10:]}"
        time.sleep(1.0)
    finally:
        executor.shutdown()
        node.destroy_node()
        ctx.try_shutdown()
        for proc in (recorder, stack):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)
        stack.wait(timeout=60)
        stack_log.close()
        rec_log.close()
        rec_out = (tmp_path / "record.log").read_text()
        stack_out = (tmp_path / "stack.log").read_text()
    assert recorder.returncode == 0, rec_out
    n_actions = bagio.topics(bag)[f"{ns}/o4a/action"][1]
    assert n_actions >= 3, rec_out + stack_out[-3000:]
    proc, report = replay_check(model_dir, live_params, bag, "--min-agreement", "100", "--namespace", ns)
    assert proc.returncode == 0, proc.stdout + proc.stderr + stack_out[-3000:]
    # max_steps motions and the final STOP (FAILED); STOPs the navigator published for a
    # stale input on this loaded machine are recorded too, and skipped as non-decisions;
    # a motion the base aborted (stale odometry under load) is not counted as a step
    from o4a_nav.commands.replay_check import load_run

    aborted = sum(s.motion_state != navrun.SUCCEEDED for s in load_run(bag, ns).steps)
    assert report["steps"] == max_steps + 1 + aborted
    assert report["steps"] + report["skipped_stops"] == n_actions
    assert report["agreement"] == 1.0


def test_recorded_safety_stops_are_not_decisions():
    """With o4a/status recorded, a STOP followed by STALE_INPUT is not a decision; a STOP
    followed by REACHED is (even when the recorder stored the status first)."""
    from types import SimpleNamespace as NS

    def hdr(t):
        return NS(stamp=NS(sec=int(t), nanosec=int(round((t - int(t)) * 1e9))))

    img = lambda t: NS(header=hdr(t))                       # noqa: E731
    act = lambda t, a, seq: NS(header=hdr(t), action=int(a), sequence=seq)   # noqa: E731
    status = lambda t, state: NS(header=hdr(t), state=state)                 # noqa: E731
    records = [(navrun.GOAL_FRONT, 0.5, img(0.5)), (navrun.GOAL_REAR, 0.5, img(0.5))]
    for t in (1.0, 2.0, 3.0):
        records += [(navrun.FRONT, t, img(t)), (navrun.REAR, t, img(t)), (navrun.SCAN, t, img(t))]
    records.insert(5, (navrun.ACTION, 1.05, act(1.01, Action.FORWARD, 1)))
    records += [(navrun.STATUS, 2.05, status(2.02, 3)),              # STALE_INPUT, stored before its STOP
                (navrun.ACTION, 2.06, act(2.02, Action.STOP, 2)),
                (navrun.ACTION, 3.05, act(3.01, Action.STOP, 3)),
                (navrun.STATUS, 3.06, status(3.01, 4))]              # REACHED
    run = navrun.extract_run(records, "bag")
    assert [(s.action, s.sequence) for s in run.steps] == [(Action.FORWARD, 1), (Action.STOP, 3)]
    assert run.skipped_stops == 1
    assert navrun._stamp(run.steps[1].front) == 3.0
    # without o4a/status every action is a step
    run = navrun.extract_run([r for r in records if r[0] != navrun.STATUS], "bag")
    assert [s.sequence for s in run.steps] == [1, 2, 3]


@pytest.mark.ros
@pytest.mark.slow
def test_shipped_model_sim_run_agrees(tmp_path):
    """The same check with the trained models/o4a_default (copied first: retraining must
    not change it under the test) and default navigator parameters."""
    import shutil

    import torch

    from o4a_nav.bagtools.simrun import write_sim_navigation_bag
    from o4a_nav.learning.model_io import load_model

    shipped = REPO / "models" / "o4a_default"
    if not (shipped / "meta.json").is_file():
        pytest.skip("models/o4a_default is not there yet")
    model_dir = tmp_path / "model"
    shutil.copytree(shipped, model_dir, ignore=shutil.ignore_patterns("graph_*", "*.png"))
    model = load_model(model_dir)
    world = WORLD if WORLD in model.worlds else model.worlds[0]
    torch.set_num_threads(1)
    summary = write_sim_navigation_bag(tmp_path / "run", model, world, max_steps=60, seed=1)
    params = tmp_path / "params.yaml"          # the navigator parameters of the run: defaults, max_steps 60
    params.write_text("navigator:\n  ros__parameters:\n    max_steps: 60\n")
    proc, report = replay_check(model_dir, params, tmp_path / "run", "--min-agreement", "100")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report["steps"] == summary["steps"] and report["agreement"] == 1.0
