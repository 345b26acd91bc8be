"""Camera formats of real robots in the ROS-free converter: CompressedImage (JPEG / PNG with
image_transport's format strings), packed 4:2:2 YUV and Bayer mosaics."""
import cv2
import numpy as np
import pytest

from o4a_nav import bagio, image_conv, ros_conv
from o4a_nav.errors import ImageFormatError

RED, GREEN, BLUE = (200, 30, 40), (20, 180, 60), (30, 50, 210)


def _patches(h=48, w=64):
    """Three vertical colour bands (RGB)."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 3] = RED
    img[:, w // 3: 2 * w // 3] = GREEN
    img[:, 2 * w // 3:] = BLUE
    return img


def test_jpeg_in_image_transport_layout_keeps_colours():
    rgb = _patches(480, 640)
    data, fmt = image_conv.rgb_to_compressed(rgb, "jpeg")
    assert fmt == "rgb8; jpeg compressed bgr8" and data[:2] == b"\xff\xd8"
    out = image_conv.compressed_to_rgb(data, fmt)
    assert out.shape == rgb.shape
    # JPEG is lossy: compare band centres
    for col, colour in ((100, RED), (320, GREEN), (540, BLUE)):
        assert np.abs(out[240, col].astype(int) - colour).max() < 12
    # a bare "jpeg" format (e.g. usb_cam) means the same: OpenCV decodes to BGR
    assert np.array_equal(image_conv.compressed_to_rgb(data, "jpeg"), out)


def test_png_exact_and_channel_order_from_the_format_string():
    rgb = _patches()
    data, fmt = image_conv.rgb_to_compressed(rgb, "png")
    assert fmt == "rgb8; png compressed bgr8"
    assert np.array_equal(image_conv.compressed_to_rgb(data, fmt), rgb)
    # an encoder fed RGB rows says "compressed rgb8": the decoded rows are already RGB
    ok, enc = cv2.imencode(".png", rgb)
    assert np.array_equal(image_conv.compressed_to_rgb(enc.tobytes(), "rgb8; png compressed rgb8"), rgb)
    assert not np.array_equal(image_conv.compressed_to_rgb(enc.tobytes(), "png"), rgb)


def test_png_grey_16bit_and_alpha():
    grey16 = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 20).astype(np.uint16)
    ok, enc = cv2.imencode(".png", grey16)
    out = image_conv.compressed_to_rgb(enc.tobytes(), "mono16; png compressed mono16")
    assert out.dtype == np.uint8 and out.shape == (48, 64, 3)
    assert np.array_equal(out[..., 0], (grey16 >> 8).astype(np.uint8))
    bgra = np.dstack([cv2.cvtColor(_patches(), cv2.COLOR_RGB2BGR), np.full((48, 64), 255, np.uint8)])
    ok, enc = cv2.imencode(".png", bgra)
    assert np.array_equal(image_conv.compressed_to_rgb(enc.tobytes(), "bgra8; png compressed bgra8"), _patches())


def test_bad_compressed_images_are_clear_errors():
    with pytest.raises(ImageFormatError, match="cannot be decoded"):
        image_conv.compressed_to_rgb(b"\x00\x01not an image", "jpeg")
    with pytest.raises(ImageFormatError, match="empty compressed image"):
        image_conv.compressed_to_rgb(b"", "jpeg")
    with pytest.raises(ImageFormatError, match="depth"):
        image_conv.compressed_to_rgb(b"\x00" * 20, "16UC1; compressedDepth png")


def _yuv(rgb):
    """BT.601 studio-swing YUV of an RGB image (what camera drivers emit for yuv422)."""
    r, g, b = (rgb[..., k].astype(float) for k in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return y, u, v


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"])
def test_packed_yuv422(encoding):
    rgb = _patches()
    y, u, v = _yuv(rgb)
    h, w = y.shape
    u2 = (u[:, 0::2] + u[:, 1::2]) / 2
    v2 = (v[:, 0::2] + v[:, 1::2]) / 2
    packed = np.zeros((h, w // 2, 4))
    if encoding in ("yuv422", "uyvy"):          # U Y0 V Y1
        packed[..., 0], packed[..., 1], packed[..., 2], packed[..., 3] = u2, y[:, 0::2], v2, y[:, 1::2]
    else:                                       # Y0 U Y1 V
        packed[..., 0], packed[..., 1], packed[..., 2], packed[..., 3] = y[:, 0::2], u2, y[:, 1::2], v2
    data = np.clip(np.round(packed), 0, 255).astype(np.uint8).reshape(-1)
    out = image_conv.to_rgb(data, h, w, encoding, w * 2)
    assert out.shape == (h, w, 3)
    for col, colour in ((5, RED), (32, GREEN), (58, BLUE)):
        assert np.abs(out[20, col].astype(int) - colour).max() < 12, (encoding, out[20, col], colour)
    with pytest.raises(ImageFormatError, match="odd"):
        image_conv.to_rgb(data, h, w - 1, encoding)


@pytest.mark.parametrize("encoding,pattern", [("bayer_rggb8", "RGGB"), ("bayer_bggr8", "BGGR"),
                                              ("bayer_gbrg8", "GBRG"), ("bayer_grbg8", "GRBG")])
def test_bayer_mosaics(encoding, pattern):
    """A mosaic sampled from a known image demosaics back to its colours (ROS names the
    top-left 2x2 block)."""
    rgb = _patches()
    h, w = rgb.shape[:2]
    channel = {"R": 0, "G": 1, "B": 2}
    mosaic = np.zeros((h, w), np.uint8)
    for k, letter in enumerate(pattern):
        dy, dx = divmod(k, 2)
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, channel[letter]]
    out = image_conv.to_rgb(mosaic.reshape(-1), h, w, encoding, w)
    for col, colour in ((5, RED), (32, GREEN), (58, BLUE)):
        assert np.abs(out[20, col].astype(int) - colour).max() <= 2, (encoding, out[20, col], colour)


def test_ros_conv_dispatches_on_the_message_type():
    rgb = _patches()
    comp = bagio.compressed_image_msg(rgb, 1.5, "front", fmt="png")
    assert ros_conv.is_compressed_image(comp)
    assert np.array_equal(ros_conv.image_msg_to_rgb(comp), rgb)
    raw = bagio.image_msg(rgb, 1.5, "front")
    assert not ros_conv.is_compressed_image(raw)
    assert np.array_equal(ros_conv.image_msg_to_rgb(raw), rgb)
    assert ros_conv.image_msg_to_model_input(comp).shape == (96, 96, 3)
