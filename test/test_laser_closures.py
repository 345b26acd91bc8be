"""Laser loop closures: scan registration (scanreg), the closure rule (closures), the
bags' scans and laser mount (dataset), the rule's choice in stage 2 (pipeline) and the
simulator's executed-motion noise that makes revisits inexact."""
import math

import numpy as np
import pytest
import torch

from o4a_nav.errors import UserError
from o4a_nav.learning import closures as C
from o4a_nav.learning import scanreg as S
from o4a_nav.learning.config import make_configs
from o4a_nav.learning.report import exact_closures, ideal_pairs, relative_poses
from o4a_nav.sim.robot import LaserParams, MotionNoise, SimRobot
from o4a_nav.types import Action, Pose2D


@pytest.fixture(scope="module")
def apartment():
    return SimRobot("apartment", seed=3, render=False, laser=LaserParams(noise_std=0.01))


def _cloud(robot, pose):
    robot.set_pose(pose)
    sc = robot.scan()
    return S.prepare(S.scan_points(sc.ranges, sc.angle_min, sc.angle_increment, sc.range_min, sc.range_max))


def _in_frame(a: Pose2D, b: Pose2D):
    """True pose of b in a's frame."""
    p = np.array([[a.x, a.y, a.yaw], [b.x, b.y, b.yaw]])
    x, y, yaw = relative_poses(p, np.array([0]), np.array([1]))
    return float(x[0]), float(y[0]), float(yaw[0])


@pytest.mark.parametrize("motion, action", [((0.0, 0.0, 0.0), Action.STOP), ((0.0, 0.0, 15.0), Action.ROTATE_LEFT),
                                            ((0.0, 0.0, -15.0), Action.ROTATE_RIGHT),
                                            ((0.25, 0.0, 0.0), Action.FORWARD),
                                            ((0.23, 0.03, 3.0), Action.FORWARD)])
def test_registration_recovers_one_action_poses_with_laser_noise(apartment, motion, action):
    rng = np.random.default_rng(int(abs(motion[2]) * 10 + motion[0] * 100))
    hits = 0
    for _ in range(5):
        start = apartment.world.sample_free_pose(rng)
        dx, dy, dyaw = motion
        c, s = math.cos(start.yaw), math.sin(start.yaw)
        end = Pose2D(start.x + c * dx - s * dy, start.y + s * dx + c * dy, start.yaw + math.radians(dyaw))
        if apartment.world.collides(end.x, end.y):
            continue
        r = S.register(_cloud(apartment, start), _cloud(apartment, end))
        tx, ty, tyaw = _in_frame(start, end)
        assert r.ok, (r, start)
        assert math.hypot(r.x - tx, r.y - ty) < 0.03 and abs(math.degrees(r.yaw - tyaw)) < 1.0, (r, (tx, ty, tyaw))
        assert S.one_action(r.x, r.y, r.yaw) == int(action)
        hits += 1
    assert hits >= 3


def test_places_apart_are_not_one_action(apartment):
    rng = np.random.default_rng(5)
    for _ in range(8):
        a = apartment.world.sample_free_pose(rng)
        b = apartment.world.sample_free_pose(rng)
        if math.hypot(a.x - b.x, a.y - b.y) < 1.0:
            continue
        r = S.register(_cloud(apartment, a), _cloud(apartment, b))
        assert not (r.ok and S.one_action(r.x, r.y, r.yaw) >= 0), (a, b, r)


def test_one_action_and_its_reverse():
    assert S.one_action(0.25, 0.0, 0.0) == Action.FORWARD
    assert S.one_action(*S.inverse_pose(0.25, 0.0, 0.0)) == -1            # backwards: no action
    assert S.one_action(0.0, 0.0, math.radians(15)) == Action.ROTATE_LEFT
    assert S.one_action(*S.inverse_pose(0.0, 0.0, math.radians(15))) == Action.ROTATE_RIGHT
    assert S.one_action(0.05, 0.02, math.radians(2)) == Action.STOP
    assert S.one_action(0.12, 0.0, 0.0) == -1                              # between STOP and FORWARD
    assert S.one_action(0.0, 0.0, math.radians(30)) == -1                  # two turns
    x, y, yaw = S.inverse_pose(*S.inverse_pose(0.3, -0.2, 0.4))
    assert np.allclose([x, y, yaw], [0.3, -0.2, 0.4])


def test_reg_params_validated():
    with pytest.raises(ValueError, match="method"):
        S.RegParams(method="NDT").validate()
    with pytest.raises(ValueError, match="min_overlap"):
        S.RegParams(min_overlap=0).validate()


@pytest.fixture(scope="module")
def explored():
    """A random-walk exploration of two_rooms with laser and motion noise: scans, true poses."""
    from o4a_nav.sim.collector import explore

    robot = SimRobot("two_rooms", seed=4, render=False, laser=LaserParams(noise_std=0.01),
                     motion_noise=MotionNoise(0.05, 2.0))
    frames = list(explore(robot, 1200, seed=4, render=False))
    scans = np.stack([f.scan.ranges for f in frames]).astype(np.float32)
    poses = np.array([[f.pose.x, f.pose.y, f.pose.yaw] for f in frames])
    traj = np.array([f.trajectory for f in frames])
    sc = frames[0].scan
    geom = C.ScanGeometry(sc.angle_min, sc.angle_increment, sc.range_min, sc.range_max)
    return scans, poses, traj, geom


def test_laser_closures_are_exact_under_motion_noise(explored):
    """Candidates from a stand-in for h (codes that put nearby places near each other, with
    aliasing between the two rooms' mirror places); the scans decide. Every edge kept is the
    action it claims (targets' rule: 0.15 m, 10 deg), and most one-action pairs are found."""
    scans, poses, traj, geom = explored
    codes = np.stack([poses[:, 0], poses[:, 1] % 2.0, np.cos(poses[:, 2]), np.sin(poses[:, 2])], 1)
    out = C.laser_closures(torch.tensor(codes * 4.0, dtype=torch.float32), scans, geom, Pose2D(0, 0, 0),
                           C.ClosureParams(knn=20, workers=2))
    assert out["stats"]["edges"] > 200
    exact = exact_closures(poses, out["src"], out["dst"], out["action"])
    assert exact.mean() >= 0.99, exact.mean()
    s, d, _ = ideal_pairs(poses, traj)
    n = len(poses)
    found = np.isin(s.astype(np.int64) * n + d, out["src"].astype(np.int64) * n + out["dst"]).mean()
    assert found >= 0.6, found
    # both directions of a rotation pair are edges; a FORWARD pair only forwards
    keys = set(zip(out["src"].tolist(), out["dst"].tolist(), out["action"].tolist()))
    for i, j, a in list(keys)[:200]:
        if a == Action.ROTATE_LEFT:
            assert (j, i, int(Action.ROTATE_RIGHT)) in keys
        if a == Action.FORWARD:
            assert not any((j, i, b) in keys for b in range(4))


def test_one_and_two_workers_agree(explored):
    scans, poses, _, geom = explored
    clouds = C.scan_clouds(scans[:300], geom, Pose2D(0, 0, 0), S.RegParams())
    src, dst = C.knn_pairs(torch.tensor(poses[:300, :2], dtype=torch.float32), 4)
    a = C.register_pairs(clouds, src, dst, S.RegParams(), workers=1)
    b = C.register_pairs(clouds, src, dst, S.RegParams(), workers=2, chunk=50)
    assert np.array_equal(np.isnan(a), np.isnan(b)) and np.allclose(np.nan_to_num(a), np.nan_to_num(b))


def test_laser_mount_is_applied():
    """Points are placed in the base frame: a laser mounted 0.2 m ahead, turned 90 deg,
    sees a return at range 1 along its x axis at base (0.2, 1.0)."""
    ranges = np.full(5, np.inf, np.float32)
    ranges[2] = 1.0
    pts = S.scan_points(ranges, -0.2, 0.1, 0.05, 10.0, mount=Pose2D(0.2, 0.0, math.pi / 2))
    assert pts.shape == (1, 2) and np.allclose(pts[0], [0.2, 1.0], atol=1e-9)


def test_closure_settings_validated():
    with pytest.raises(UserError, match="graph_closures"):
        make_configs("compact", ["train.graph_closures=lidar"])
    with pytest.raises(UserError, match="laser_mount"):
        make_configs("compact", ["train.laser_mount=0,0"])
    _, t = make_configs("compact", ["train.laser_mount=0.1,0,1.5"])
    assert t.mount_pose() == Pose2D(0.1, 0.0, 1.5)


# ---- bags: scans and the laser's mount ------------------------------------------------------
@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    from o4a_nav.cli import main

    root = tmp_path_factory.mktemp("laser_bags")
    assert main(["collect", "--world", "two_rooms", "--steps", "200", "--trajectory-length", "100", "--seed", "2",
                 "--laser-noise", "0.01", "--motion-noise", "0.05,2", "--out", str(root / "b"), "-q"]) == 0
    return root / "b"


def test_collected_bag_gives_each_frame_its_scan_and_the_mount_from_tf_static(collected):
    from o4a_nav.learning.dataset import load_worlds

    (w,) = load_worlds([collected])
    assert w.laser is not None and w.laser.ranges.shape == (len(w), 541)
    assert np.isfinite(w.laser.ranges).any(1).all()
    assert w.laser.mount == Pose2D(0.0, 0.0, 0.0) and "/tf_static" in w.laser.mount_source
    assert w.laser.frame_id == "laser"


def _copy_without(src, dst, drop: str):
    from o4a_nav import bagio

    qos = bagio.offered_qos(src)
    with bagio.BagWriter(dst) as w:
        for topic, msgtype, t, raw in bagio.read(src, raw=True):
            if topic == drop:
                continue
            latched = any(q.durability.value == 1 for q in qos.get(topic, [])) if qos.get(topic) else False
            w.connection(topic, msgtype, latched=latched)
            w.write(topic, msgtype, t, raw)


def test_a_bag_that_does_not_place_its_laser_needs_the_mount(collected, tmp_path):
    from o4a_nav.learning.dataset import load_worlds
    from o4a_nav.learning.pipeline import closure_rule

    bag = tmp_path / "no_tf"
    _copy_without(collected, bag, "/tf_static")
    (w,) = load_worlds([bag])
    assert w.laser.mount is None and "train.laser_mount" in w.laser.mount_source
    _, auto = make_configs("compact", ["train.graph_closures=auto"])
    rule, mount, why = closure_rule(w, auto)
    assert rule == "image" and "train.laser_mount" in why          # auto falls back, saying why
    _, laser = make_configs("compact", ["train.graph_closures=laser"])
    with pytest.raises(UserError, match="train.laser_mount"):
        closure_rule(w, laser)
    _, given = make_configs("compact", ["train.graph_closures=laser", "train.laser_mount=0,0,0"])
    assert closure_rule(w, given)[:2] == ("laser", Pose2D(0.0, 0.0, 0.0))
    _, image = make_configs("compact", ["train.graph_closures=image"])
    assert closure_rule(w, image)[0] == "image"


def test_a_bag_without_scans_uses_image_closures(collected, tmp_path):
    from o4a_nav.learning.dataset import load_worlds
    from o4a_nav.learning.pipeline import closure_rule

    bag = tmp_path / "no_scan"
    _copy_without(collected, bag, "/scan")
    (w,) = load_worlds([bag])
    assert w.laser is None
    _, auto = make_configs("compact", ["train.graph_closures=auto"])
    assert closure_rule(w, auto)[0] == "image"
    _, laser = make_configs("compact", ["train.graph_closures=laser"])
    with pytest.raises(UserError, match="no laser scans"):
        closure_rule(w, laser)


# ---- the simulator's executed-motion noise ---------------------------------------------------
def test_motion_noise_is_seeded_and_of_the_asked_size():
    def run(seed):
        r = SimRobot("pillar_hall", seed=seed, render=False, motion_noise=MotionNoise(0.05, 2.0))
        out = []
        for a in [Action.ROTATE_LEFT] * 40:
            p0 = r.pose
            assert r.step(a)
            out.append(math.degrees(r.pose.yaw - p0.yaw))
        return np.array(out)

    a, b, c = run(1), run(1), run(2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    d = (a + 180) % 360 - 180
    assert 14.0 < d.mean() < 16.0 and 1.5 < d.std() < 3.0     # 15 deg x (1 + N(0, 5 %)) + N(0, 2 deg)
    exact = SimRobot("pillar_hall", seed=1, render=False)
    p0 = exact.pose
    exact.step(Action.ROTATE_LEFT)
    assert math.isclose((exact.pose.yaw - p0.yaw) % (2 * math.pi), math.radians(15), abs_tol=1e-9)


def test_motion_noise_parse_errors():
    assert MotionNoise.parse("0.05,2") == MotionNoise(0.05, 2.0)
    for bad in ("5", "0.05;2", "0.9,2", "0.05,90"):
        with pytest.raises(ValueError):
            MotionNoise.parse(bad)


def test_teleop_bag_closures_are_exact(tmp_path):
    """A joystick recording (continuous driving, odometry labels, no discrete actions): each
    kept frame gets its nearest scan and the mount from /tf_static, and the verified
    closures are exact by the recorded true poses."""
    from o4a_nav.learning.dataset import load_worlds
    from o4a_nav.learning.pipeline import closure_rule
    from o4a_nav.sim.teleop import TeleopParams, write_teleop_bag

    write_teleop_bag(tmp_path / "tele", "two_rooms", 90.0, seed=3, params=TeleopParams(style="steps"))
    (w,) = load_worlds([tmp_path / "tele"])
    assert w.laser is not None and np.isfinite(w.laser.ranges).any(1).mean() > 0.99
    _, auto = make_configs("compact", ["train.graph_closures=auto"])
    rule, mount, _ = closure_rule(w, auto)
    assert rule == "laser" and mount == Pose2D(0.0, 0.0, 0.0)
    P = w.poses.astype(np.float64)
    codes = torch.tensor(np.stack([P[:, 0], P[:, 1], np.cos(P[:, 2]), np.sin(P[:, 2])], 1) * 4.0, dtype=torch.float32)
    out = C.laser_closures(codes, w.laser.ranges, w.laser.geometry, mount, C.ClosureParams(workers=1), traj=w.traj)
    assert out["stats"]["edges"] > 20
    assert exact_closures(P, out["src"], out["dst"], out["action"]).mean() >= 0.98


# ---- stage 1: revisit positives ---------------------------------------------------------------
def test_pair_labels_name_a_revisit_partner():
    from o4a_nav.learning.config import action_to_class
    from o4a_nav.learning.losses import pair_labels

    frames = torch.tensor([10, 50, 90])
    trajs = torch.tensor([0, 1, 2])
    actions = torch.tensor([int(Action.FORWARD), int(Action.STOP), int(Action.ROTATE_LEFT)])
    plain, _ = pair_labels(frames, trajs, actions)
    same, _ = pair_labels(frames, trajs, actions, partner_ids=frames + 1, partner_traj=trajs)
    assert torch.equal(plain, same)                                  # default: the recorded transition
    lab, neg = pair_labels(frames, trajs, actions, partner_ids=torch.tensor([11, 300, 91]),
                           partner_traj=torch.tensor([0, 7, 2]))
    assert lab[1, 3 + 1] == action_to_class(int(Action.STOP))        # frame 50's partner: frame 300, STOP
    assert lab[0, 3 + 1] == 0 and neg[0, 3 + 1]                      # not frame 10's partner
    assert lab[0, 3] == action_to_class(int(Action.FORWARD))


def test_stage1_data_draws_revisit_positives_of_the_split():
    from o4a_nav.learning.dataset import from_arrays
    from o4a_nav.learning.training import Stage1Data

    n = 60
    front = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 96, 96, 3), np.uint8)
    actions = np.full(n, int(Action.FORWARD), np.int8)
    actions[29] = actions[59] = int(Action.STOP)
    traj = np.repeat([0, 1], 30)
    w = from_arrays("w", front, front.copy(), actions, traj, val_fraction=0.0, seed=0)
    plain = Stage1Data([w], val=False)
    w.revisits = np.array([[i, 30 + i, int(Action.STOP)] for i in range(20)], np.int64)
    data = Stage1Data([w], val=False, revisit_share=0.25, seed=0)
    assert data.revisits == round(0.25 / 0.75 * len(plain))          # capped at the share
    assert len(data) == len(plain) + data.revisits
    assert np.array_equal(data.index[:len(plain)], plain.index)      # transitions first, unchanged
    sel = np.arange(len(plain), len(data))
    fr, _, f_ids, _, act, p_ids, p_traj = data.batch(sel)
    b = len(sel)
    assert torch.all(p_ids - f_ids == 30) and torch.all(act == int(Action.STOP)) and torch.all(p_traj == 1)
    # the second half of the images are the partners' (pixel value = frame index)
    assert torch.allclose(fr[b:, 0, 0, 0] * 255 - fr[:b, 0, 0, 0] * 255, torch.full((b,), 30.0), atol=1e-3)
    assert Stage1Data([w], val=False, revisit_share=0.0).revisits == 0


def test_action_weights_count_motions():
    from o4a_nav.learning import graph as G

    w = G.action_weights(np.array([int(Action.STOP), int(Action.FORWARD), int(Action.ROTATE_LEFT),
                                   int(Action.ROTATE_RIGHT)]))
    assert w.tolist() == pytest.approx([G.STOP_EDGE_WEIGHT, 1.0, 1.0, 1.0])
    with pytest.raises(UserError, match="graph_weights"):
        make_configs("compact", ["train.graph_weights=unit"])
