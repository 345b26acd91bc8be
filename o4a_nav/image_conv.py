"""Image conversion to the model input: 96x96 RGB uint8. ROS-free.

The one place where camera images of any size and the common encodings become what the
networks eat: to_rgb / compressed_to_rgb decode, to_model_input crops to the model's view
(a camera parameter: CameraView, from camera_info or the field of view; without one the
centred square, never a squashed image) and resizes. Used by the
dataset (ros_conv.image_msg_to_model_input) and the navigator core (o4a_nav/nav/navigator.py,
live and goal images, behind the ROS node and in the benchmark alike).

Raw images (sensor_msgs/Image fields): rgb8, bgr8, mono8, rgba8, bgra8, the packed 4:2:2
YUV layouts (yuv422 = uyvy, as in sensor_msgs/image_encodings; yuv422_yuy2 = yuyv) and
the 8-bit Bayer mosaics (bayer_rggb8, bayer_bggr8, bayer_gbrg8, bayer_grbg8; demosaiced
bilinearly). Compressed images (sensor_msgs/CompressedImage fields): JPEG or PNG bytes and
the image_transport `format` string, e.g. "jpeg", "png", "rgb8; jpeg compressed bgr8";
the channel order after "compressed" says how the decoded pixels are ordered.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

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
    # packed 4:2:2 YUV: ROS "yuv422" is U Y0 V Y1 (UYVY); "yuv422_yuy2" is Y0 U Y1 V (YUYV)
    "yuv422": (2, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": (2, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": (2, cv2.COLOR_YUV2RGB_YUYV),
    "yuyv": (2, cv2.COLOR_YUV2RGB_YUYV),
    # Bayer mosaics, named by the colours of the top-left 2x2 block; OpenCV names a pattern by
    # the second row's 2nd and 3rd pixels, hence the shifted names
    "bayer_rggb8": (1, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": (1, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": (1, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": (1, cv2.COLOR_BayerGB2RGB),
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
    if channels == 2 and width % 2:
        raise ImageFormatError(f"{encoding} image width {width} is odd; 4:2:2 YUV packs pixel pairs")
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


def compressed_to_rgb(data, fmt: str = "") -> np.ndarray:
    """Compressed image bytes (JPEG or PNG; sensor_msgs/CompressedImage fields) -> (H, W, 3)
    uint8 RGB. `fmt` follows image_transport: "jpeg" / "png", or "ENC; jpeg compressed ORDER"
    where ORDER (bgr8 by default, as image_transport writes) is the decoded channel order.
    16-bit PNGs are scaled to 8 bits; grey and alpha images come out as RGB."""
    fmt_l = (fmt or "").lower()
    if "compresseddepth" in fmt_l:
        raise ImageFormatError(f"compressed depth image (format {fmt!r}) is not a camera image")
    buf = _as_bytes_array(data)
    if buf.size == 0:
        raise ImageFormatError(f"empty compressed image (format {fmt!r})")
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageFormatError(f"compressed image (format {fmt!r}, {buf.size} bytes) cannot be decoded "
                               f"as JPEG or PNG")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageFormatError(f"compressed image (format {fmt!r}) decodes to {img.dtype} pixels, not 8-bit")
    order = fmt_l.split("compressed", 1)[1].strip() if "compressed" in fmt_l else ""
    rgb_order = order.startswith("rgb")       # the encoder was given RGB rows: the decoded rows are RGB
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_RGBA2RGB if rgb_order else cv2.COLOR_BGRA2RGB)
    return np.ascontiguousarray(img) if rgb_order else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def rgb_to_compressed(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> tuple[bytes, str]:
    """(H, W, 3) uint8 RGB -> (bytes, format string) as image_transport's compressed
    publisher writes them: ("...", "rgb8; jpeg compressed bgr8") or the png equivalent."""
    if fmt not in ("jpeg", "png"):
        raise ImageFormatError(f"unknown compression {fmt!r}; use jpeg or png")
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else []
    ok, enc = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", bgr, params)
    if not ok:
        raise ImageFormatError(f"cannot encode a {rgb.shape} image as {fmt}")
    return enc.tobytes(), f"rgb8; {fmt} compressed bgr8"


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


# ---- framing: which part of a camera image is the model's view ---------------------------

MODEL_HFOV_DEG = 90.0   # the view the model is trained with: the simulator's square 90 deg camera


@dataclass(frozen=True)
class CameraView:
    """Pinhole intrinsics of a camera's images, in pixels: from sensor_msgs/CameraInfo's K
    (`from_k`) or from the horizontal field of view with the principal point at the centre
    and square pixels (`from_hfov`). width, height: the image size they are for (0: not
    known); an image of another size with the same shape (a scaled copy) is framed with
    the intrinsics scaled to it (`for_size`)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int = 0
    height: int = 0

    @classmethod
    def from_k(cls, k, width: int = 0, height: int = 0) -> "CameraView":
        k = [float(v) for v in k]
        if len(k) != 9 or not (k[0] > 0 and k[4] > 0):
            raise ImageFormatError(f"camera matrix K must have 9 values with fx, fy > 0, got {k}")
        return cls(k[0], k[4], k[2], k[5], int(width), int(height))

    @classmethod
    def from_hfov(cls, hfov_deg: float, width: int, height: int) -> "CameraView":
        if not 0 < hfov_deg < 180:
            raise ImageFormatError(f"camera horizontal field of view must be in (0, 180) deg, got {hfov_deg}")
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(f, f, (width - 1) / 2.0, (height - 1) / 2.0, int(width), int(height))

    @property
    def hfov_deg(self) -> float:
        """The horizontal field of view of the whole image (nan when its width is not known)."""
        return 2 * math.degrees(math.atan(self.width / 2.0 / self.fx)) if self.width else float("nan")

    def for_size(self, width: int, height: int) -> "CameraView":
        """These intrinsics for an image of width x height: unchanged when the size is not
        known or the same; scaled for a scaled copy of the image (same shape within 1 %);
        ImageFormatError for an image of another shape (not this camera's)."""
        if not self.width or (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        if abs(sx / sy - 1.0) > 0.01:
            raise ImageFormatError(f"a {width}x{height} image does not come from the camera whose intrinsics are "
                                   f"given (camera_info / parameters: {self.width}x{self.height})")
        return CameraView(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
                          width, height)


def crop_box(width: int, height: int, camera: CameraView | None = None,
             view_deg: float = MODEL_HFOV_DEG) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), the pixels of a width x height image that show the model's view.

    With the camera's intrinsics: the region that subtends view_deg x view_deg (square, as
    the model was trained), centred on the principal point. Where the camera sees less
    than that, the largest region of the same shape that fits (the view is then narrower
    than the model's; `view_fraction` says by how much). Without intrinsics: the centred
    square (a square image is kept whole), never a squashed image."""
    if camera is None:
        side = min(width, height)
        x0, y0 = (width - side) // 2, (height - side) // 2
        return x0, y0, x0 + side, y0 + side
    t = math.tan(math.radians(view_deg) / 2.0)
    hx, hy = camera.fx * t, camera.fy * t                      # half extents (pixels) of the model's view
    ex, ey = camera.cx + 0.5, camera.cy + 0.5                  # the principal point in pixel-edge coordinates
    s = min(1.0, ex / hx, (width - ex) / hx, ey / hy, (height - ey) / hy)
    x0, x1 = int(round(ex - hx * s)), int(round(ex + hx * s))
    y0, y1 = int(round(ey - hy * s)), int(round(ey + hy * s))
    return max(0, x0), max(0, y0), min(width, max(x1, x0 + 1)), min(height, max(y1, y0 + 1))


def view_fraction(width: int, height: int, camera: CameraView | None, view_deg: float = MODEL_HFOV_DEG) -> float:
    """The share of the model's view (tangent extent) that the camera covers: 1.0 when its
    image holds the whole view_deg square, less when the crop had to shrink."""
    if camera is None:
        return float("nan")
    x0, _, x1, _ = crop_box(width, height, camera, view_deg)
    return (x1 - x0) / (2.0 * camera.fx * math.tan(math.radians(view_deg) / 2.0))


def to_model_input(img: np.ndarray, camera: CameraView | float | None = None) -> np.ndarray:
    """The model input, (96, 96, 3) uint8 RGB, from a decoded camera image of any size:
    (H, W) grey or (H, W, 3) RGB uint8 (what to_rgb / compressed_to_rgb return), cropped to
    the model's view (crop_box: from the camera's intrinsics when given, else the centred
    square) and resized. `camera`: a CameraView (camera_info), or the camera's horizontal
    field of view in degrees (principal point at the centre, square pixels), or None. An
    image that is already 96x96 is the model input (a converted goal, a simulator image)
    and is kept as it is. The one converter: the dataset (through
    ros_conv.image_msg_to_model_input) and the navigator core (goal and live images) call
    it, with the same camera in training and at run time."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ImageFormatError(f"expected uint8 pixels, got {img.dtype}")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.ndim == 3 and img.shape[:2] == (MODEL_SIZE, MODEL_SIZE):
        return resize_rgb(img)          # already the model input (a converted goal, a simulator image)
    if img.ndim == 3 and img.shape[0] and img.shape[1]:
        if isinstance(camera, (int, float)):
            camera = CameraView.from_hfov(float(camera), img.shape[1], img.shape[0]) if camera else None
        if camera is not None:
            camera = camera.for_size(img.shape[1], img.shape[0])
        x0, y0, x1, y1 = crop_box(img.shape[1], img.shape[0], camera)
        img = img[y0:y1, x0:x1]
    return resize_rgb(img)


def check_pair(front_shape: tuple, rear_shape: tuple) -> None:
    """Front and rear images of one observation must have the same size."""
    if tuple(front_shape[:2]) != tuple(rear_shape[:2]):
        raise ImageFormatError(
            f"front and rear images differ in size: front {front_shape[1]}x{front_shape[0]}, "
            f"rear {rear_shape[1]}x{rear_shape[0]}")
