"""Shared test set-up.

Every pytest process gets its own ROS 2 domain, restricted to this host, so that test
runs (and developers' runs side by side) never see each other's nodes. Set
O4A_TEST_DOMAIN_ID to force one.
"""
import os

os.environ["ROS_DOMAIN_ID"] = os.environ.get("O4A_TEST_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PYGLET_HEADLESS", "1")

import threading  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402


def wait_until(pred, timeout=20.0, period=0.01):
    """Poll pred() until it is true or timeout seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(period)
    return pred()


@pytest.fixture
def ros(request):
    """An rclpy context of the test's own, with an executor spinning in a background
    thread: SingleThreadedExecutor (as the console scripts), or MultiThreadedExecutor (as
    `o4a bringup`'s navigation nodes) with indirect parametrisation ("multi"). Yields
    (context, add) where add(node) puts a node on the executor; nodes are shut down and
    destroyed afterwards.

    Single-threaded by default: on this 2-core machine rclpy's MultiThreadedExecutor with
    the sim node and a 50 Hz odometry subscriber in one process starves itself (measured:
    6-9 instead of 50 sim ticks/s, 70-450 ms per render instead of 3 ms)."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    kind = getattr(request, "param", "single")
    ex = MultiThreadedExecutor(num_threads=4, context=ctx) if kind == "multi" else SingleThreadedExecutor(context=ctx)
    nodes = []
    stop = threading.Event()

    def spin():  # ex.spin() with a way out: the thread ends before the executor is shut down
        while not stop.is_set() and ctx.ok():
            ex.spin_once(timeout_sec=0.05)

    th = threading.Thread(target=spin, daemon=True)

    def add(node):
        nodes.append(node)
        ex.add_node(node)
        return node

    th.start()
    yield ctx, add
    # Stop spinning and join first: shutting the executor down under a spinning thread
    # destroys its guard condition mid-wait (AttributeError in the spin thread).
    stop.set()
    th.join(timeout=5.0)
    ex.shutdown(timeout_sec=2.0)
    for n in nodes:
        if hasattr(n, "shutdown"):
            n.shutdown()
    for n in nodes:
        n.destroy_node()
    rclpy.shutdown(context=ctx)


def _starts_ros(item) -> bool:
    """A test that runs ROS: uses the `ros` fixture, or its module imports rclpy or starts
    the o4a command-line tools, the launch files or the node executables."""
    if "ros" in getattr(item, "fixturenames", ()):
        return True
    module = getattr(item, "module", None)
    if module is None:
        return False
    names = vars(module)
    return "rclpy" in names or any(str(getattr(v, "__module__", "") or "").startswith("rclpy")
                                   for v in names.values())


@pytest.hookimpl(tryfirst=True)   # before -m deselects
def pytest_collection_modifyitems(config, items):
    """Mark every test that runs ROS with `ros`, so that `make test-fast` (-m "not ros and
    not slow") is the ROS-free core suite whatever each file remembered to mark."""
    for item in items:
        if _starts_ros(item) and "ros" not in item.keywords:
            item.add_marker(pytest.mark.ros)
