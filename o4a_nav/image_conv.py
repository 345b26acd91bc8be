"""Image conversion to the model input: 96x96 RGB uint8. ROS-free.

The one place where camera images of any size and the common encodings become what the
networks eat. Used by the dataset, the navigator, the goal service and the benchmark.
"""
from __future__ import annotations

import cv2
import numpy as np

from o4a_nav.errors import ImageFormatError

MODEL_SIZE = 96

# encoding -> (channels, conversion to RGB or None)
_ENCODINGS = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)


def _as_bytes_array(data) -> np.ndarray:
    """bytes, bytearray, array.array('B') (rclpy), memoryview, numpy (rosbags) or a list -> flat uint8."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def to_rgb(data, height: int, width: int, encoding: str, step: int | None = None) -> np.ndarray:
    """Raw image buffer (sensor_msgs/Image fields) -> (height, width, 3) uint8 RGB."""
    encoding = (encoding or "").lower()
    if encoding not in _ENCODINGS:
        raise ImageFormatError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    if height <= 0 or width <= 0:
        raise ImageFormatError(f"empty image ({width}x{height})")
    channels, conversion = _ENCODINGS[encoding]
    buf = _as_bytes_array(data)
    row = width * channels
    step = step or row
    if step < row:
        raise ImageFormatError(f"image step {step} is shorter than a row of {width} {encoding} pixels ({row} bytes)")
    if buf.size < step * (height - 1) + row:
        raise ImageFormatError(
            f"image data has {buf.size} bytes, {width}x{height} {encoding} needs {step * height}")
    if buf.size >= step * height:
        rows = buf[: step * height].reshape(height, step)
    else:  # last row without padding
        rows = np.concatenate([buf, np.zeros(step * height - buf.size, np.uint8)]).reshape(height, step)
    img = np.ascontiguousarray(rows[:, :row]).reshape(height, width, channels)
    if conversion is not None:
        img = cv2.cvtColor(img, conversion)
    return img


def resize_rgb(img: np.ndarray, size: int = MODEL_SIZE) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8. INTER_AREA when shrinking."""
    if img.ndim != 3 or img.shape[2] != 3:
        raise ImageFormatError(f"expected an (H, W, 3) RGB array, got shape {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ImageFormatError(f"empty image ({img.shape[1]}x{img.shape[0]})")
    if img.shape[:2] == (size, size):
        return np.ascontiguousarray(img, dtype=np.uint8)
    shrink = img.shape[0] > size or img.shape[1] > size
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def to_model_input(data, height: int, width: int, encoding: str, step: int | None = None) -> np.ndarray:
    """Raw image buffer -> (96, 96, 3) uint8 RGB, the model input."""
    return resize_rgb(to_rgb(data, height, width, encoding, step))


def array_to_model_input(img: np.ndarray) -> np.ndarray:
    """An image already in memory (H, W) grey or (H, W, 3) RGB uint8 -> (96, 96, 3) uint8."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ImageFormatError(f"expected uint8 pixels, got {img.dtype}")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    return resize_rgb(img)


def check_pair(front_shape: tuple, rear_shape: tuple) -> None:
    """Front and rear images of one observation must have the same size."""
    if tuple(front_shape[:2]) != tuple(rear_shape[:2]):
        raise ImageFormatError(
            f"front and rear images differ in size: front {front_shape[1]}x{front_shape[0]}, "
            f"rear {rear_shape[1]}x{rear_shape[0]}")
