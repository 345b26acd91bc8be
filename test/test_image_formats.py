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


# ---- framing (issue 29): a 4:3 camera is cropped to the model's square 90 deg view ----------

def test_a_4_3_bag_is_framed_like_the_simulators_view(tmp_path):
    """640x480 frames of a 106.26 deg camera (its vertical view is 90 deg), recorded with
    their camera_info in a bag: cropped with the intrinsics to the model's 90 x 90 deg view
    they match the simulator's own 96x96, 90 deg camera at the same poses; squashed (the
    old conversion) they do not. Without intrinsics the centred square is taken (never a
    squash); a camera narrower than the model's view gives the largest part of it."""
    import math

    from o4a_nav import bagio, ros_conv
    from o4a_nav.image_conv import CameraView, crop_box, resize_rgb, to_model_input, view_fraction
    from o4a_nav.sim.render import Renderer
    from o4a_nav.sim.world import load_world
    from o4a_nav.types import Pose2D

    world = load_world("two_rooms")
    hfov = math.degrees(2 * math.atan(640 / 480 * math.tan(math.radians(45))))
    wide, model_view = Renderer(world, 640, 480, 0.4, hfov), Renderer(world, 96, 96, 0.4, 90.0)
    rng = np.random.default_rng(0)
    poses = [world.sample_free_pose(rng) for _ in range(4)]
    poses = [Pose2D(p.x, p.y, p.yaw) if isinstance(p, Pose2D) else Pose2D(*p) for p in poses]
    bag = tmp_path / "cam43"
    f = (640 / 2) / math.tan(math.radians(hfov) / 2)
    T = bagio.typestore().types
    with bagio.BagWriter(bag) as wr:
        for k, p in enumerate(poses):
            t = 1.0 + k
            msg = bagio.image_msg(wide.view(p)[..., ::-1].copy(), t, "front_camera")     # as bgr8
            msg.encoding = "bgr8"
            wr.write("/front_camera/image_raw", "sensor_msgs/msg/Image", t, msg)
            info = T["sensor_msgs/msg/CameraInfo"](
                header=msg.header, height=480, width=640, distortion_model="plumb_bob", d=np.zeros(5),
                k=np.array([f, 0, 319.5, 0, f, 239.5, 0, 0, 1], float), r=np.eye(3).reshape(-1),
                p=np.array([f, 0, 319.5, 0, 0, f, 239.5, 0, 0, 0, 1, 0], float), binning_x=0, binning_y=0,
                roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            wr.write("/front_camera/camera_info", "sensor_msgs/msg/CameraInfo", t, info)
    images = [m for _, _, _, m in bagio.read(bag, ["/front_camera/image_raw"])]
    [info] = [m for _, _, _, m in bagio.read(bag, ["/front_camera/camera_info"])][:1]
    camera = ros_conv.camera_info_to_view(info)
    assert crop_box(640, 480, camera) == (80, 0, 560, 480) and view_fraction(640, 480, camera) == pytest.approx(1.0)
    framed, squashed = [], []
    for msg, p in zip(images, poses):
        truth = model_view.view(p).astype(float)
        framed.append(np.abs(ros_conv.image_msg_to_model_input(msg, camera).astype(float) - truth).mean())
        squashed.append(np.abs(resize_rgb(ros_conv.image_msg_to_rgb(msg)).astype(float) - truth).mean())
        # no intrinsics: the centred square, here the same region
        assert np.array_equal(ros_conv.image_msg_to_model_input(msg), ros_conv.image_msg_to_model_input(msg, camera))
    wide.close(), model_view.close()
    assert max(framed) < 6.0, framed                      # resampling differences only (0..255 scale)
    assert min(squashed) > 2 * max(framed), (framed, squashed)
    # a 90 deg 4:3 camera sees only 73.7 deg vertically: the largest square of the view that fits
    narrow = CameraView.from_hfov(90.0, 640, 480)
    assert crop_box(640, 480, narrow) == (80, 0, 560, 480) and view_fraction(640, 480, narrow) == pytest.approx(0.75)
    # a square image without intrinsics is unchanged (the simulator's own images)
    img = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    assert np.array_equal(to_model_input(img), img)


def test_camera_intrinsics_follow_a_scaled_image_and_refuse_another_camera():
    """A camera's intrinsics are for its image size (camera_info width x height): a scaled
    copy of its image (a goal picture saved smaller) is framed alike, an image of another
    shape is an error naming both sizes, and the model input itself (96x96, e.g. a goal
    converted once already) is kept as it is."""
    from o4a_nav.errors import ImageFormatError
    from o4a_nav.image_conv import CameraView, crop_box, to_model_input

    cam = CameraView.from_hfov(120.0, 640, 480)
    assert cam.hfov_deg == pytest.approx(120.0)
    x0, y0, x1, y1 = crop_box(640, 480, cam)
    half = crop_box(320, 240, cam.for_size(320, 240))
    assert np.abs(np.subtract(half, (x0 / 2, y0 / 2, x1 / 2, y1 / 2))).max() <= 1.0, half
    yy, xx = np.indices((480, 640))
    big = np.stack([xx * 255 // 639, yy * 255 // 479, ((xx // 40 + yy // 40) % 2) * 200], -1).astype(np.uint8)
    small = big.reshape(240, 2, 320, 2, 3).mean(axis=(1, 3)).astype(np.uint8)
    diff = np.abs(to_model_input(big, cam).astype(int) - to_model_input(small, cam).astype(int)).mean()
    assert diff < 3.0, diff
    with pytest.raises(ImageFormatError, match=r"a 640x360 image does not come from the camera.*640x480"):
        to_model_input(np.zeros((360, 640, 3), np.uint8), cam)
    model_input = to_model_input(big, cam)
    assert np.array_equal(to_model_input(model_input, cam), model_input)
