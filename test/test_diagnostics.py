"""/diagnostics from the managed nodes: the core summaries (o4a_nav/nav/diagnostics.py)
and what real nodes publish (diagnostic_msgs/DiagnosticArray)."""
import math
import os

import pytest
from rclpy.parameter import Parameter

from conftest import wait_until
from o4a_nav.nav import diagnostics as diag
from o4a_nav.types import Action

NS = f"/o4a_diag_{os.getpid()}"


def test_input_freshness_levels_and_ages():
    d = diag.input_freshness({"scan": 9.8, "odom": -math.inf}, now=10.0, timeout=0.5)
    assert d.level == diag.WARN and "odom" in d.message and "scan" not in d.message
    assert d.values["scan age [s]"] == "0.200" and d.values["odom age [s]"] == "never"
    assert diag.input_freshness({"scan": 9.8}, 10.0, 0.5).level == diag.OK
    assert diag.input_freshness({"odom": 1.0}, 10.0, 0.5, required=False).level == diag.OK


def test_latency_model_motion_summaries():
    assert diag.latency([]).message == "no decision yet"
    d = diag.latency([5.0] * 99 + [float("nan")] + [50.0] * 10)
    assert d.level == diag.WARN and d.values["decisions"] == "110" and float(d.values["p95 [ms]"]) == 50.0
    assert diag.latency([5.0] * 100).level == diag.OK
    assert diag.model("/m", None, "missing").level == diag.ERROR and diag.model("/m", "w", "").level == diag.OK
    assert diag.motion("IDLE", 2, "blocked", True).level == diag.WARN
    assert diag.motion("IDLE", 2, "blocked", False).level == diag.OK


@pytest.mark.ros
def test_nodes_publish_diagnostics(ros, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray
    from o4a_msgs.msg import DiscreteAction
    from rclpy.node import Node

    from o4a_nav import topics
    from o4a_nav.nodes._common import reliable
    from o4a_nav.nodes.base_controller import BaseControllerNode
    from o4a_nav.nodes.collision_checker import CollisionCheckerNode
    from o4a_nav.nodes.navigator import NavigatorNode

    ctx, add = ros
    probe = add(Node("diag_probe", namespace=NS, context=ctx))
    got = {}

    def on_diag(msg):
        for st in msg.status:
            got[st.name] = st

    probe.create_subscription(DiagnosticArray, "/diagnostics", on_diag, reliable(50))
    add(CollisionCheckerNode(context=ctx, namespace=NS))
    nav = add(NavigatorNode(context=ctx, namespace=NS, parameter_overrides=[
        Parameter("model_path", value=str(tmp_path / "missing")), Parameter("autostart", value=False)]))
    nav.trigger_configure()
    nav.trigger_activate()   # refused: NO_MODEL
    assert not nav.active
    add(BaseControllerNode(context=ctx, namespace=NS))
    pre = NS.lstrip("/")

    def status(name):
        return got.get(f"{pre}/{name}")

    assert wait_until(lambda: all(status(n) for n in (
        "collision_checker: inputs", "navigator: model", "navigator: inputs", "navigator: decision latency",
        "base_controller: motion", "base_controller: inputs")), 30.0), sorted(got)
    model = status("navigator: model")
    assert model.level == bytes([diag.ERROR]) and "NO_MODEL" in model.message
    # a navigator that cannot navigate is neither active nor OK
    assert wait_until(lambda: status("navigator: navigation") is not None, 10.0)
    assert status("navigator: navigation").level == bytes([diag.ERROR])
    assert {kv.key: kv.value for kv in status("navigator: lifecycle").values}["active"] == "false"
    scan = status("collision_checker: inputs")
    assert scan.level == bytes([diag.WARN]) and {kv.key: kv.value for kv in scan.values}["scan age [s]"] == "never"
    assert status("navigator: inputs").level == bytes([diag.OK])   # no goal: stale inputs are not needed
    assert status("base_controller: motion").level == bytes([diag.OK])

    # a FORWARD without odometry is aborted: the motion fault shows up
    pub = probe.create_publisher(DiscreteAction, topics.ACTION, reliable(10))
    assert wait_until(lambda: pub.get_subscription_count() >= 1, 10.0)
    msg = DiscreteAction(action=int(Action.FORWARD), sequence=1)
    msg.header.stamp = probe.get_clock().now().to_msg()
    pub.publish(msg)
    assert wait_until(lambda: status("base_controller: motion").level == bytes([diag.WARN]), 10.0)
    values = {kv.key: kv.value for kv in status("base_controller: motion").values}
    assert values["aborted motions"] == "1" and "odometry" in values["last fault"]


def test_rviz_config_names_the_stack_topics():
    """RViz itself cannot run here: the config parses and shows the topics the nodes use."""
    from pathlib import Path

    import yaml

    from o4a_nav import topics

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "o4a_nav.rviz").read_text())
    shown = {d["Topic"]["Value"] for d in cfg["Visualization Manager"]["Displays"] if "Topic" in d}
    assert shown == {"/" + t for t in (topics.SCAN, topics.SWEPT_BOX, topics.ODOM, topics.FRONT_IMAGE,
                                       topics.REAR_IMAGE)}
    assert cfg["Visualization Manager"]["Global Options"]["Fixed Frame"] == topics.BASE_FRAME
