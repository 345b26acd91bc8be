"""Closed-loop image-goal benchmark (ROS-free, in-process).

Modules: ``episodes`` (seeded start/goal sampling and difficulty bins), ``metrics``
(per-episode outcome and aggregation), ``policies`` (o4a and ablations, random with
oracle STOP, the SPTM-like graph baseline, the ground-truth oracle), ``runner`` (the
episode loop against the simulator), ``report`` (results.json, markdown table, plots,
trajectory pictures) and ``graph_scaling`` (graph baseline memory/latency vs graph size).
Nothing here imports rclpy.
"""
