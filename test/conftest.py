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
