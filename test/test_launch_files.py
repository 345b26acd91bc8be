"""The launch files under the real ROS 2 Jazzy launch system, against an installed package.

The package is built and installed with colcon into a temporary prefix (as on a robot:
launch files, config and the shipped model in share/o4a_nav, executables in
lib/o4a_nav); each launch file is started with ../shared/ros_launch/ros2-launch (the
upstream `launch` / `launch_ros`, run as `ros2 launch` does) with AMENT_PREFIX_PATH on
that prefix. A probe node then checks the running graph: every node up under the
namespace, its parameters (from the YAML, the launch arguments, start-up ones read-only),
its topics remapped, the navigator READY (IDLE) with the shipped model; then SIGINT and a
clean exit. Skipped, with the reason, where ../shared/ros_launch is absent (a user's
clone); O4A_ROS_LAUNCH=/path/to/ros_launch points elsewhere.

About a minute for the colcon install plus 20-40 s per launch on the loaded 2-core
machine.
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)   # the project's .venv: colcon, the ROS wheels, o4a_msgs
ROS_LAUNCH = Path(os.environ.get("O4A_ROS_LAUNCH", ROOT.parent / "shared" / "ros_launch"))
NAV_NODES = ("collision_checker", "navigator", "base_controller")

needs_launch = pytest.mark.skipif(
    not (ROS_LAUNCH / "ros2-launch").is_file(),
    reason=f"the ROS 2 launch system is not here ({ROS_LAUNCH}/ros2-launch absent: it comes with the project's "
           f"../shared folder; set O4A_ROS_LAUNCH to a ros_launch copy)")


def colcon_env() -> dict:
    env = os.environ.copy()
    env.update(VIRTUAL_ENV=str(VENV), PATH=f"{VENV / 'bin'}:{env.get('PATH', '')}",
               AMENT_PREFIX_PATH=str(VENV), CMAKE_PREFIX_PATH=str(VENV))
    return env


def colcon_build(ws: Path, base_paths: list, packages: list, timeout: float = 900) -> Path:
    """`colcon build` of these packages into ws/install (isolated, as a user runs it);
    returns the install base."""
    cmd = [str(VENV / "bin" / "colcon"), "--log-base", str(ws / "log"), "build", "--base-paths", *map(str, base_paths),
           "--build-base", str(ws / "build"), "--install-base", str(ws / "install"),
           "--packages-select", *packages, "--event-handlers", "console_cohesion-",
           "--cmake-args", f"-DPython3_EXECUTABLE={VENV / 'bin' / 'python'}", "-DBUILD_TESTING=OFF"]
    r = subprocess.run(cmd, cwd=ws, env=colcon_env(), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return ws / "install"


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """o4a_nav built and installed by colcon from this source tree (o4a_msgs: the venv's)."""
    ws = tmp_path_factory.mktemp("launch_ws")
    return colcon_build(ws, [ROOT], ["o4a_nav"]) / "o4a_nav"


def launch_env(prefix: Path) -> dict:
    env = os.environ.copy()
    env["AMENT_PREFIX_PATH"] = f"{prefix}:{VENV}"
    env["PYTHONPATH"] = os.pathsep.join([str(prefix / "lib" / "python3.11" / "site-packages"),
                                         env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _sigint_default():
    """In the launch process, before exec: SIGINT back to its default. A suite started in
    the background (`make test &`, nohup) inherits SIGINT ignored; Python then installs no
    handler, and launch, which only listens on Python's signal wakeup fd, never sees the
    Ctrl-C, while the nodes (rclpy installs its own handler) exit and, with use_respawn,
    are started again: the launch never ends (fresh-clone failures of sessions 6 and 7)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Launched:
    """One ros2-launch process (own process group); stop() sends SIGINT like Ctrl-C."""

    def __init__(self, prefix: Path, launch_file: str, args: list, log: Path):
        self.log = log
        self.out = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROS_LAUNCH / "ros2-launch"), str(prefix / "share/o4a_nav/launch" / launch_file), *args],
            env=launch_env(prefix), stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_sigint_default)

    def text(self) -> str:
        if not self.out.closed:   # after stop() the log is complete on disk
            self.out.flush()
        return self.log.read_text()

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()
        return self.proc.returncode


@pytest.fixture
def launched(prefix, tmp_path):
    started = []

    def start(launch_file, *args):
        started.append(Launched(prefix, launch_file, list(args), tmp_path / f"{launch_file}.log"))
        return started[-1]

    yield start
    for la in started:
        la.stop()


class Probe:
    """An rclpy node of the test that asks the launched nodes for their parameters and
    looks at the graph."""

    def __init__(self, ctx, add):
        from rclpy.node import Node

        self.node = add(Node(f"launch_probe_{os.getpid()}", context=ctx))

    def names(self) -> set:
        return {f"{ns.rstrip('/')}/{n}" for n, ns in self.node.get_node_names_and_namespaces()}

    def _call(self, srv_type, name, request, timeout=20.0):
        cli = self.node.create_client(srv_type, name)
        try:
            assert cli.wait_for_service(timeout_sec=timeout), f"no service {name}"
            fut = cli.call_async(request)
            assert wait_until(fut.done, timeout), f"{name} did not answer"
            return fut.result()
        finally:
            self.node.destroy_client(cli)

    def parameters(self, node: str) -> dict:
        from rcl_interfaces.srv import GetParameters, ListParameters
        from rclpy.parameter import parameter_value_to_python

        names = list(self._call(ListParameters, f"{node}/list_parameters", ListParameters.Request()).result.names)
        values = self._call(GetParameters, f"{node}/get_parameters", GetParameters.Request(names=names)).values
        return {n: parameter_value_to_python(v) for n, v in zip(names, values)}

    def lifecycle_state(self, node: str, timeout: float = 20.0) -> str | None:
        """The node's lifecycle state label; None when no answer came (e.g. a request that
        reached only a killed process' endpoint, which DDS forgets after its lease)."""
        from lifecycle_msgs.srv import GetState

        try:
            return self._call(GetState, f"{node}/get_state", GetState.Request(), timeout).current_state.label
        except AssertionError:
            return None

    def trigger(self, name: str):
        from std_srvs.srv import Trigger

        return self._call(Trigger, name, Trigger.Request(), timeout=90.0)

    def descriptors(self, node: str, names: list) -> dict:
        from rcl_interfaces.srv import DescribeParameters

        res = self._call(DescribeParameters, f"{node}/describe_parameters", DescribeParameters.Request(names=names))
        return dict(zip(names, res.descriptors))

    def topics_of(self, node: str) -> tuple[set, set]:
        ns, _, name = node.rpartition("/")
        ns = ns or "/"
        subs = {t for t, _ in self.node.get_subscriber_names_and_types_by_node(name, ns)}
        pubs = {t for t, _ in self.node.get_publisher_names_and_types_by_node(name, ns)}
        return subs, pubs

    def status(self, topic: str, timeout: float = 60.0):
        from o4a_msgs.msg import NavigatorStatus

        from o4a_nav.nodes._common import reliable

        got = []
        sub = self.node.create_subscription(NavigatorStatus, topic, got.append, reliable(10))
        try:
            wait_until(lambda: got, timeout)
        finally:
            self.node.destroy_subscription(sub)
        return got[-1] if got else None


def wait_for_nodes(probe, la, names, timeout=180.0):
    ok = wait_until(lambda: set(names) <= probe.names() or la.proc.poll() is not None
                    or "process has died" in la.text(), timeout, 0.2)
    assert ok and la.proc.poll() is None and "process has died" not in la.text(), f"nodes {set(names) - probe.names()} not up:\n{la.text()[-4000:]}"


@needs_launch
def test_installed_share_has_launch_config_and_model(prefix):
    share = prefix / "share" / "o4a_nav"
    assert {p.name for p in (share / "launch").glob("*.launch.py")} == {
        "navigation.launch.py", "sim_navigation.launch.py", "explore.launch.py"}
    assert all((share / "config" / f).is_file() for f in ("navigation.yaml", "sim.yaml", "o4a_nav.rviz"))
    assert (share / "models" / "o4a_default" / "weights.pt").is_file()
    for exe in ("sim", "explorer", "lifecycle_manager", *NAV_NODES):
        assert os.access(prefix / "lib" / "o4a_nav" / exe, os.X_OK), exe
    r = subprocess.run([sys.executable, str(ROS_LAUNCH / "ros2-launch"), str(share / "launch/navigation.launch.py"),
                        "--show-args"], env=launch_env(prefix), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for arg in ("model_path", "world", "params_file", "use_sim_time", "namespace", "log_level", "use_respawn",
                "autostart", "front_image_topic", "rear_image_topic", "scan_topic", "odom_topic", "cmd_vel_topic"):
        assert f"\n{arg}:" in "\n" + r.stdout, arg


@needs_launch
def test_navigation_launch_namespace_parameters_remaps(prefix, launched, ros, tmp_path):
    """navigation.launch.py with a namespace, a params file of our own (`/**/NODE` and
    plain NODE sections), model_path and world arguments, remapped robot topics."""
    ctx, add = ros
    ns = f"robot_{os.getpid()}"
    params = tmp_path / "robot.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    box_half_width: 0.25\n    box_x_max: 0.6\n    footprint: [0.3, 0.2, -0.3, 0.2, -0.3, -0.2, 0.3, -0.2]\n"
        "/**/navigator:\n  ros__parameters:\n    stop_threshold: 2.75\n    model_path: /nowhere\n    world: nowhere\n"
        "    stale_timout: 0.3\n"
        "base_controller:\n  ros__parameters:\n    max_linear_speed: 0.15\n")
    model = prefix / "share/o4a_nav/models/o4a_default"
    la = launched("navigation.launch.py", f"namespace:={ns}", f"params_file:={params}", f"model_path:={model}",
                  "world:=four_rooms", "scan_topic:=base_scan", "odom_topic:=wheel/odom", "cmd_vel_topic:=/diff/cmd_vel",
                  "front_image_topic:=cam_f/image", "rear_image_topic:=cam_r/image", "log_level:=warn")
    probe = Probe(ctx, add)
    nodes = [f"/{ns}/{n}" for n in NAV_NODES]
    wait_for_nodes(probe, la, nodes + [f"/{ns}/lifecycle_manager"])

    cc, nav, base = (probe.parameters(n) for n in nodes)
    # per-node sections kept under the namespace, `/**` for all, arguments over the file
    assert cc["box_half_width"] == nav["box_half_width"] == 0.25
    assert list(cc["footprint"]) == [0.3, 0.2, -0.3, 0.2, -0.3, -0.2, 0.3, -0.2]
    assert nav["stop_threshold"] == 2.75 and nav["model_path"] == str(model) and nav["world"] == "four_rooms"
    assert base["max_linear_speed"] == 0.15
    assert nav["use_sim_time"] is False and nav["memory_size"] == 500   # code default, dumpable
    # every declared parameter has a value (`ros2 param dump` prints them all)
    assert "initial_pose" not in nav and all(v is not None for p in (cc, nav, base) for v in p.values())
    d = probe.descriptors(nodes[1], ["model_path", "stop_threshold", "memory_size"])
    assert d["model_path"].read_only and d["memory_size"].read_only and not d["stop_threshold"].read_only
    assert d["stop_threshold"].floating_point_range[0].to_value == 1000.0 and d["stop_threshold"].description

    # managed nodes, brought up by the lifecycle_manager (autostart): topics exist once configured
    assert wait_until(lambda: all(probe.lifecycle_state(n) == "active" for n in nodes), 90.0, 0.5)
    # remapped topics, resolved in the namespace (absolute ones as given)
    assert wait_until(lambda: f"/{ns}/base_scan" in probe.topics_of(nodes[0])[0], 20.0)
    assert wait_until(lambda: {f"/{ns}/cam_f/image", f"/{ns}/cam_r/image", f"/{ns}/base_scan",
                               f"/{ns}/o4a/free_actions"} <= probe.topics_of(nodes[1])[0], 20.0)
    assert wait_until(lambda: f"/{ns}/o4a/status" in probe.topics_of(nodes[1])[1], 20.0)
    assert wait_until(lambda: f"/{ns}/wheel/odom" in probe.topics_of(nodes[2])[0]
                      and "/diff/cmd_vel" in probe.topics_of(nodes[2])[1], 20.0)

    # the navigator loaded the model for four_rooms: IDLE (no goal yet), not NO_MODEL
    from o4a_nav.types import NavState

    st = probe.status(f"/{ns}/o4a/status")
    assert st is not None and st.state == NavState.IDLE, (st, la.text()[-3000:])
    # pause deactivates the managed nodes
    res = probe.trigger(f"/{ns}/lifecycle_manager/pause")
    assert res.success and all(probe.lifecycle_state(n) == "inactive" for n in nodes), res.message
    assert "loaded (world four_rooms)" not in la.text()   # log_level warn reached the nodes: no INFO lines
    # a misspelt key is not silently ignored: a WARN names the closest real parameter
    assert "parameter 'stale_timout' is not a parameter of navigator" in la.text()
    assert "did you mean stale_timeout?" in la.text()

    assert la.stop() == 0, la.text()[-3000:]
    assert wait_until(lambda: not (set(nodes) & probe.names()), 20.0)


@needs_launch
def test_sim_navigation_launch_shipped_model_and_sim_time(prefix, launched, ros):
    """sim_navigation.launch.py with the defaults of an installed package: the shipped model
    found in the share, the navigator's p+ head following `world`, /clock with use_sim_time."""
    ctx, add = ros
    ns = f"sim_{os.getpid()}"
    la = launched("sim_navigation.launch.py", f"namespace:={ns}", "world:=four_rooms", "use_sim_time:=true",
                  "use_respawn:=true", "autostart:=false")
    probe = Probe(ctx, add)
    nodes = [f"/{ns}/{n}" for n in ("sim", *NAV_NODES)]
    wait_for_nodes(probe, la, nodes + [f"/{ns}/lifecycle_manager"])
    # autostart:=false: the managed nodes wait, unconfigured, for ~/startup
    assert all(probe.lifecycle_state(n) == "unconfigured" for n in nodes[1:])
    res = probe.trigger(f"/{ns}/lifecycle_manager/startup")
    assert res.success, res.message + la.text()[-3000:]
    sim, nav = probe.parameters(nodes[0]), probe.parameters(nodes[2])
    assert sim["world"] == nav["world"] == "four_rooms" and sim["publish_clock"] is True
    assert list(sim["initial_pose"]) == []   # declared with a value: dumpable
    assert nav["use_sim_time"] is True and nav["model_path"] == ""   # "" = the shipped model
    from o4a_nav.types import NavState

    st = probe.status(f"/{ns}/o4a/status", timeout=90.0)
    assert st is not None and st.state == NavState.IDLE, (st, la.text()[-3000:])
    assert str(Path("share/o4a_nav/models/o4a_default")) in la.text()   # loaded from the package share

    # use_respawn:=true: a killed node is started again, unconfigured. The manager's heartbeat
    # reports it lost and deactivates the others, then reaches the respawned node's own
    # services ("is back"; autostart false: it waits for ~/startup, which brings all back).
    # Every wait is for an answer from the live process, never for a time: a request can
    # reach only the killed process' endpoint until discovery forgets it.
    import re

    pid = int(re.search(r"\[collision_checker-\d+\]: process started with pid \[(\d+)\]", la.text()).group(1))
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: "collision_checker lost" in la.text(), 60.0, 0.2), la.text()[-3000:]
    for n in (nodes[2], nodes[3]):   # the others in a safe state
        assert wait_until(lambda: probe.lifecycle_state(n, timeout=3.0) == "inactive", 60.0, 0.5), n
    assert wait_until(lambda: "collision_checker is back (unconfigured)" in la.text(), 120.0, 0.2), la.text()[-3000:]
    assert len(re.findall(r"\[collision_checker-\d+\]: process started", la.text())) == 2
    res = probe.trigger(f"/{ns}/lifecycle_manager/startup")
    assert res.success, res.message + la.text()[-3000:]
    for n in nodes[1:]:
        assert wait_until(lambda: probe.lifecycle_state(n, timeout=3.0) == "active", 60.0, 0.5), n
    assert la.stop() == 0, la.text()[-3000:]


@needs_launch
def test_explore_launch_with_sim_drives(prefix, launched, ros):
    """explore.launch.py sim:=true: explorer + base_controller + sim; the explorer's
    actions reach the base (o4a/motion_state reports) under the namespace."""
    from o4a_msgs.msg import MotionState

    from o4a_nav.nodes._common import reliable

    ctx, add = ros
    ns = f"explore_{os.getpid()}"
    la = launched("explore.launch.py", "sim:=true", f"namespace:={ns}", "sim_world:=two_rooms", "seed:=3")
    probe = Probe(ctx, add)
    nodes = [f"/{ns}/{n}" for n in ("sim", "explorer", "base_controller")]
    wait_for_nodes(probe, la, nodes)
    assert probe.parameters(nodes[1])["seed"] == 3
    reports = []
    probe.node.create_subscription(MotionState, f"/{ns}/o4a/motion_state", reports.append, reliable(10))
    assert wait_until(lambda: any(r.state == MotionState.SUCCEEDED for r in reports), 120.0), la.text()[-3000:]
    assert la.stop() == 0, la.text()[-3000:]


@needs_launch
def test_bad_launch_argument_is_one_clear_error(prefix):
    r = subprocess.run([sys.executable, str(ROS_LAUNCH / "ros2-launch"),
                        str(prefix / "share/o4a_nav/launch/navigation.launch.py"), "use_respawn:=maybe"],
                       env=launch_env(prefix), capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "use_respawn:=maybe: expected true or false" in r.stdout + r.stderr


# ---------------------------------------------------------------- a bring-up that tells the truth (issue 27)
def _diagnostics(probe, timeout: float = 30.0, until=None) -> dict:
    """{name: DiagnosticStatus} from /diagnostics, until ``until(got)`` holds (or timeout)."""
    from diagnostic_msgs.msg import DiagnosticArray

    from o4a_nav.nodes._common import reliable

    got = {}

    def on(msg):
        for st in msg.status:
            got[st.name] = st

    sub = probe.node.create_subscription(DiagnosticArray, "/diagnostics", on, reliable(50))
    try:
        wait_until(lambda: until(got) if until else got, timeout, 0.1)
    finally:
        probe.node.destroy_subscription(sub)
    return got


@needs_launch
def test_navigation_launch_without_world_is_not_active_and_says_what_to_pass(prefix, launched, ros):
    """The shipped model has p+ heads for nine worlds: without world:= the navigator stays
    inactive in NO_MODEL (never reported active, /diagnostics ERROR) and the launch output
    says what to pass. Bring-up runs on the wall clock: with use_sim_time:=true and no
    /clock the nodes are configured all the same and the manager says at INFO that it waits
    for /clock. Then the README's first launch line, with world:=two_rooms, navigates."""
    from rosgraph_msgs.msg import Clock

    from o4a_nav.nav import diagnostics as diag
    from o4a_nav.types import NavState

    ctx, add = ros
    ns = f"truth_{os.getpid()}"
    la = launched("navigation.launch.py", f"namespace:={ns}", "use_sim_time:=true")
    probe = Probe(ctx, add)
    nodes = [f"/{ns}/{n}" for n in NAV_NODES]
    wait_for_nodes(probe, la, nodes + [f"/{ns}/lifecycle_manager"])
    assert wait_until(lambda: "autostart:" in la.text(), 120.0, 0.2), la.text()[-3000:]
    text = la.text()
    assert "autostart: active" not in text and "navigator: activate failed" in text, text[-3000:]
    assert "p+ heads for several worlds" in text and "world:=NAME" in text
    assert re_search(r"\[INFO\].*use_sim_time: waiting for /clock", text), text[-3000:]
    # configured and (before the navigator) activated without any /clock: wall-clock bring-up
    assert probe.lifecycle_state(nodes[0]) == "active"
    assert probe.lifecycle_state(nodes[1]) == "inactive" and probe.lifecycle_state(nodes[2]) == "inactive"
    # simulated time starts: the nodes' timers run; o4a/status says NO_MODEL and why,
    # /diagnostics says ERROR, not OK
    clock = probe.node.create_publisher(Clock, "/clock", 10)
    pre = ns
    tick = probe.node.create_timer(0.05, lambda: clock.publish(Clock(clock=probe.node.get_clock().now().to_msg())))
    st = probe.status(f"/{ns}/o4a/status")
    assert st is not None and st.state == NavState.NO_MODEL and "several worlds" in st.message
    got = _diagnostics(probe, 60.0, lambda g: f"{pre}/navigator: navigation" in g)
    probe.node.destroy_timer(tick)
    nav = got.get(f"{pre}/navigator: navigation")
    assert nav is not None and nav.level == bytes([diag.ERROR]), (sorted(got), la.text()[-2000:])
    assert {kv.key: kv.value for kv in got[f"{pre}/navigator: lifecycle"].values}["active"] == "false"
    assert wait_until(lambda: "/clock received" in la.text(), 20.0, 0.2)
    assert la.stop() == 0, la.text()[-3000:]

    # README: `ros2 launch o4a_nav navigation.launch.py world:=two_rooms`
    la = launched("navigation.launch.py", "world:=two_rooms")
    nodes = [f"/{n}" for n in NAV_NODES]
    wait_for_nodes(probe, la, nodes)
    assert wait_until(lambda: "autostart: active" in la.text(), 120.0, 0.2), la.text()[-3000:]
    assert all(probe.lifecycle_state(n) == "active" for n in nodes)
    st = probe.status("/o4a/status")
    assert st is not None and st.state == NavState.IDLE, (st, la.text()[-3000:])
    assert la.stop() == 0, la.text()[-3000:]


def re_search(pattern: str, text: str):
    import re

    return re.search(pattern, text)


def _rviz_topics_and_frame(path: Path) -> tuple[list, str]:
    import yaml

    cfg = yaml.safe_load(path.read_text())["Visualization Manager"]
    topics = [d["Topic"]["Value"] for d in cfg["Displays"] if "Topic" in d]
    return topics, cfg["Global Options"]["Fixed Frame"]


@needs_launch
def test_sim_launch_publishes_tf_and_everything_the_rviz_config_shows(prefix, launched, ros):
    """sim_navigation.launch.py: odom -> base_link on /tf, the sensor mounts on /tf_static;
    every topic config/o4a_nav.rviz names has a publisher, and the frame of every message
    it draws is connected to its fixed frame by the published TF."""
    from geometry_msgs.msg import PolygonStamped
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import LaserScan
    from tf2_msgs.msg import TFMessage

    from o4a_nav import ros_conv
    from o4a_nav.frames import TransformTree
    from o4a_nav.nodes._common import SENSOR_QOS, reliable

    ctx, add = ros
    la = launched("sim_navigation.launch.py", "world:=two_rooms")
    probe = Probe(ctx, add)
    wait_for_nodes(probe, la, ["/sim", *(f"/{n}" for n in NAV_NODES)])
    assert wait_until(lambda: "autostart: active" in la.text(), 120.0, 0.2), la.text()[-3000:]
    tree, dynamic, frames = TransformTree(), set(), {}

    def on_tf(msg, static):
        for t in msg.transforms:
            tree.add(ros_conv.transform_from_msg(t))
            if not static:
                dynamic.add((t.header.frame_id, t.child_frame_id))

    n = probe.node
    n.create_subscription(TFMessage, "/tf", lambda m: on_tf(m, False), reliable(100))
    n.create_subscription(TFMessage, "/tf_static", lambda m: on_tf(m, True), reliable(100, latched=True))
    topics, fixed = _rviz_topics_and_frame(prefix / "share/o4a_nav/config/o4a_nav.rviz")
    for topic, kind, qos in (("/scan", LaserScan, SENSOR_QOS), ("/odom", Odometry, SENSOR_QOS),
                             ("/o4a/swept_box", PolygonStamped, reliable(1, latched=True))):
        n.create_subscription(kind, topic, lambda m, t=topic: frames.setdefault(t, m.header.frame_id), qos)
    assert wait_until(lambda: len(frames) == 3 and ("odom", "base_link") in dynamic
                      and {"laser", "front_camera_optical", "rear_camera_optical"} <= tree.frames(), 60.0, 0.1), \
        (frames, dynamic, tree.frames())
    for topic in topics:
        assert n.count_publishers(topic) >= 1, f"the RViz config shows {topic}, which nothing publishes"
    assert set(frames) <= set(topics)
    for topic, frame in frames.items():
        assert tree.lookup(fixed, frame) is not None, f"{topic}: frame {frame} not connected to {fixed}"
    assert tree.lookup("base_link", "laser").x == 0.0    # the sim's laser at the robot's centre
    assert la.stop() == 0, la.text()[-3000:]


@needs_launch
def test_laser_mount_disagreeing_with_tf_is_refused(prefix, launched, ros, tmp_path):
    """The sim publishes its laser at the robot's centre; parameters that put it 10 cm ahead
    are refused with a clear error, and no action is free."""
    from o4a_msgs.msg import FreeActions

    from o4a_nav.nav import diagnostics as diag
    from o4a_nav.nodes._common import reliable

    ctx, add = ros
    ns = f"mount_{os.getpid()}"
    params = tmp_path / "mount.yaml"
    params.write_text("/**:\n  ros__parameters:\n    laser_x: 0.1\n")
    la = launched("sim_navigation.launch.py", f"namespace:={ns}", f"params_file:={params}")
    probe = Probe(ctx, add)
    wait_for_nodes(probe, la, [f"/{ns}/{n}" for n in ("sim", *NAV_NODES)])
    assert wait_until(lambda: "laser mount disagreement" in la.text(), 120.0, 0.2), la.text()[-3000:]
    assert "parameters laser_x/laser_y/laser_yaw say (0.100, 0.000, 0.000)" in la.text()
    free = []
    probe.node.create_subscription(FreeActions, f"/{ns}/o4a/free_actions", free.append, reliable(1))
    assert wait_until(lambda: len(free) >= 3, 60.0, 0.1), la.text()[-3000:]
    assert not any(f.forward or f.rotate_left or f.rotate_right for f in free)
    got = _diagnostics(probe, 30.0, lambda g: f"{ns}/collision_checker: laser mount" in g)
    assert got[f"{ns}/collision_checker: laser mount"].level == bytes([diag.ERROR])
    assert la.stop() == 0, la.text()[-3000:]


@needs_launch
def test_required_node_exit_ends_the_launch(prefix, launched, tmp_path):
    """Without use_respawn every node is required: the navigator exiting on an out-of-range
    parameter, or the sim on an unknown world, ends the launch with the reason."""
    params = tmp_path / "bad.yaml"
    params.write_text("/**/navigator:\n  ros__parameters:\n    stop_threshold: -1.0\n")
    la = launched("navigation.launch.py", f"params_file:={params}", "world:=two_rooms")
    assert la.proc.wait(timeout=180) == 1    # ros2 launch's status: the launch failed
    text = la.text()
    assert "stop_threshold" in text and "required node navigator exited with status 2" in text, text[-3000:]
    la = launched("sim_navigation.launch.py", "world:=no_such_world")
    assert la.proc.wait(timeout=180) == 1
    text = la.text()
    assert "no_such_world" in text and "required node sim exited with status 2" in text, text[-3000:]


@needs_launch
def test_heartbeat_reports_a_dead_node_and_brings_the_respawned_one_back(prefix, launched, ros):
    """use_respawn:=true, autostart: a killed navigator is reported lost by the manager's
    heartbeat, the others are deactivated (robot stopped), and once launch has started it
    again the manager brings every node back to active."""
    import re

    ctx, add = ros
    ns = f"beat_{os.getpid()}"
    la = launched("sim_navigation.launch.py", f"namespace:={ns}", "use_respawn:=true")
    probe = Probe(ctx, add)
    nodes = [f"/{ns}/{n}" for n in NAV_NODES]
    wait_for_nodes(probe, la, nodes + [f"/{ns}/sim"])
    assert wait_until(lambda: "autostart: active" in la.text(), 120.0, 0.2), la.text()[-3000:]
    pid = int(re.search(r"\[navigator-\d+\]: process started with pid \[(\d+)\]", la.text()).group(1))
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: "navigator lost" in la.text(), 60.0, 0.2), la.text()[-3000:]
    assert re_search(r"navigator lost: .*deactivating base_controller, collision_checker \(robot stopped\)",
                     la.text()), la.text()[-3000:]
    assert wait_until(lambda: "restart: active" in la.text(), 180.0, 0.2), la.text()[-3000:]
    for n in nodes:
        assert wait_until(lambda: probe.lifecycle_state(n, timeout=3.0) == "active", 60.0, 0.5), n
    assert la.stop() == 0, la.text()[-3000:]


# ---------------------------------------------------------------- without the launch system
def test_every_yaml_parameter_is_declared_by_its_node():
    """Build each node with the YAML overrides and check that it declared every key (a typo
    in the YAML would otherwise be silently ignored by ROS), with the YAML's value."""
    import importlib

    import rclpy

    from o4a_nav.nodes import stack
    from o4a_nav.package_data import data_path
    from o4a_nav.params import load_param_file

    class A:
        sim, params, model, world, seed, set = True, None, None, None, None, []

    shared = set(load_param_file(data_path("config") / "navigation.yaml")["**"])
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        for name, module, cls, overrides in stack.plan(**vars_of(A)):
            node = getattr(importlib.import_module(module), cls)(node_name=name, parameter_overrides=overrides,
                                                                 context=ctx)
            try:
                missing = [p.name for p in overrides if not node.has_parameter(p.name)]
                if name not in ("collision_checker", "navigator"):
                    # the /** footprint section concerns only the nodes that check collisions
                    missing = [m for m in missing if m not in shared]
                assert not missing, f"{name}: YAML parameters not declared by the node: {missing}"
                for p in overrides:
                    if node.has_parameter(p.name):
                        assert node.get_parameter(p.name).value == pytest.approx(p.value), (name, p.name)
            finally:
                if hasattr(node, "shutdown"):
                    node.shutdown()
                node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


def vars_of(a) -> dict:
    """stack.plan's keyword arguments from a class of `o4a bringup`-style attributes."""
    return {"sim": a.sim, "params": a.params, "model": a.model, "world": a.world, "seed": a.seed, "sets": a.set}


def test_param_file_sections_apply_by_node_and_namespace(tmp_path):
    from o4a_nav.params import node_parameters

    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters: {a: 1, b: 1}\n"
                 "/**/nav:\n  ros__parameters: {b: 2}\n"
                 "/robot1/nav:\n  ros__parameters: {c: 3}\n"
                 "other:\n  ros__parameters: {b: 9}\n"
                 "nav:\n  ros__parameters: {d: 4, e: []}\n")
    assert node_parameters([f], "nav") == {"a": 1, "b": 2, "d": 4}
    assert node_parameters([f], "nav", namespace="/robot1") == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert node_parameters([f], "nav", {"b": 7}, namespace="robot2") == {"a": 1, "b": 7, "d": 4}
    assert node_parameters([f], "x") == {"a": 1, "b": 1}


def test_bringup_plan_overrides_and_errors(tmp_path):
    from o4a_nav.nodes import stack
    from o4a_nav.errors import UserError

    class A:
        sim, params, model, world, seed = False, None, "/m", None, None
        set = ["navigator.stop_threshold=3.0", "base_controller.use_stamped=true"]

    plan = {name: {p.name: p.value for p in ov} for name, _, _, ov in stack.plan(**vars_of(A))}
    assert set(plan) == {"collision_checker", "navigator", "base_controller"}
    assert plan["navigator"]["model_path"] == "/m" and plan["navigator"]["stop_threshold"] == 3.0
    assert plan["base_controller"]["use_stamped"] is True
    assert plan["collision_checker"]["box_half_width"] == 0.22  # from the /** section
    assert plan["base_controller"]["max_linear_speed"] == 0.25  # from the /**/base_controller section
    A.sim, A.set = True, ["sim.publish_clock=true"]
    plan = {name: {p.name: p.value for p in ov} for name, _, _, ov in stack.plan(**vars_of(A))}
    assert plan["navigator"]["world"] == plan["sim"]["world"] == "two_rooms"  # p+ head follows the sim
    A.world = "four_rooms"
    plan = {name: {p.name: p.value for p in ov} for name, _, _, ov in stack.plan(**vars_of(A))}
    assert plan["navigator"]["world"] == plan["sim"]["world"] == "four_rooms"
    A.set = ["sim.publish_clock=true", "navigator.world=two_rooms"]
    plan = {name: {p.name: p.value for p in ov} for name, _, _, ov in stack.plan(**vars_of(A))}
    assert plan["navigator"]["world"] == "two_rooms" and plan["sim"]["world"] == "four_rooms"
    A.world, A.set = None, ["sim.publish_clock=true"]
    plan = {name: {p.name: p.value for p in ov} for name, _, _, ov in stack.plan(**vars_of(A))}
    assert all(plan[n].get("use_sim_time") is True for n in ("collision_checker", "navigator", "base_controller"))
    assert "use_sim_time" not in plan["sim"]
    A.sim = False
    A.set = ["nosuchnode.x=1"]
    with pytest.raises(UserError, match="nosuchnode"):
        stack.plan(**vars_of(A))
    A.set = []
    bad = tmp_path / "bad.yaml"
    bad.write_text("navigator: [1, 2]\n")
    A.params = [str(bad)]
    with pytest.raises(UserError, match="bad.yaml"):
        stack.plan(**vars_of(A))


def test_bringup_takes_the_same_remaps(ros, tmp_path):
    """`o4a bringup --ros-args -r ...` remaps like the launch files' *_topic arguments."""
    ctx, add = ros
    ns = f"bringup_{os.getpid()}"
    log = open(tmp_path / "bringup.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "o4a_nav.cli", "bringup", "--namespace", ns, "--duration", "120",
                             "--ros-args", "-r", "scan:=base_scan", "-r", "cmd_vel:=/diff/cmd_vel"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        probe = Probe(ctx, add)
        nodes = [f"/{ns}/{n}" for n in NAV_NODES]
        assert wait_until(lambda: set(nodes) <= probe.names() or proc.poll() is not None, 120.0, 0.2), \
            (tmp_path / "bringup.log").read_text()[-3000:]
        assert wait_until(lambda: f"/{ns}/base_scan" in probe.topics_of(nodes[0])[0], 20.0)
        assert wait_until(lambda: "/diff/cmd_vel" in probe.topics_of(nodes[2])[1], 20.0)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, (tmp_path / "bringup.log").read_text()[-3000:]
        log.close()
    r = subprocess.run([sys.executable, "-m", "o4a_nav.cli", "bringup", "--ros-args", "-r", "scan"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--ros-args -r scan" in r.stderr, r.stderr[-2000:]
