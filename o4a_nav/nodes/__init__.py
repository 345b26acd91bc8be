"""Thin ROS 2 node adapters. These are the only modules (with some commands) that import rclpy."""
