"""Exploration data from rosbag2 folders: (front, rear) frames paired with the discrete
action that followed, split into trajectories and train/validation. ROS-free.

Pairing rule (works for `o4a collect` bags and real-robot recordings alike): every
DiscreteAction message is paired with the latest front and rear image whose header stamp
is at or before the action's header stamp (within `max_image_age` seconds). A STOP ends a
trajectory; a gap in the action `sequence` numbers or in time also starts a new one, and
so does a motion whose o4a/motion_state says it did not succeed (aborted, blocked).
Bags without actions (driven with a joystick) are labelled from their odometry
(learning/odometry.py). Images may be sensor_msgs/Image or CompressedImage.
Ground-truth poses (when recorded) are kept for the report only; nothing learns from them.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from o4a_nav import bagio, topics as T
from o4a_nav.errors import BagError, ImageFormatError, UserError
from o4a_nav.learning.odometry import SegmentParams, interpolate_poses
from o4a_nav.learning.odometry import segment as segment_odometry
from o4a_nav.frames import TransformTree
from o4a_nav.ros_conv import (IMAGE_TYPES, image_msg_to_model_input, pose_msg_to_pose2d, stamp_to_sec,
                              transform_from_msg)
from o4a_nav.types import FINAL_MOTION_STATES, Action, MotionStatus


@dataclass
class TopicNames:
    front: str = T.FRONT_IMAGE
    rear: str = T.REAR_IMAGE
    action: str = T.ACTION
    pose: str = T.GROUND_TRUTH_POSE
    world: str = T.WORLD_NAME
    odom: str = T.ODOM                  # continuous driving: used when the bag has no actions
    motion_state: str = T.MOTION_STATE  # optional: how each action ended
    world_definition: str = T.WORLD_DEFINITION
    scan: str = T.SCAN                  # optional: laser loop closures (graph.closures laser)
    tf_static: str = T.TF_STATIC        # optional: the laser's mount in base_frame
    base_frame: str = T.BASE_FRAME
    front_info: str = ""                # sensor_msgs/CameraInfo of each camera (framing); "": the
    rear_info: str = ""                 # camera's namespace + /camera_info (camera_info_topic)


@dataclass
class LaserFrames:
    """Each frame's laser scan (the one nearest the frame's stamp) and where the laser sits.

    ranges: (N, R) float32, a NaN row where no scan was close enough in time (that frame
    gets no laser loop closure); geometry: closures.ScanGeometry; mount: the laser's pose
    in the base frame (from the bag's /tf_static, or identity when the scans are stamped in
    the base frame, or given with train.laser_mount); mount_source says which."""

    ranges: np.ndarray
    geometry: object
    mount: object | None
    mount_source: str
    frame_id: str

    def usable(self) -> str:
        """'' when laser closures can run on these scans, else why not."""
        if self.mount is None:
            return self.mount_source
        return ""


@dataclass
class WorldData:
    """All frames of one world (several bags concatenated).

    front, rear: (M, 96, 96, 3) uint8, the images of the frames this process holds (all N,
    or those of its data shards, held_frames: see load_worlds; read them with images());
    actions: (N,) int8 Action taken from frame t;
    traj: (N,) int32 trajectory id; next_ok: (N,) bool, True when frame t+1 is the
    result of actions[t] (same trajectory, motion action); poses: (N, 3) x, y, yaw or None;
    val_traj: set of trajectory ids held out for validation.
    """

    name: str
    front: np.ndarray
    rear: np.ndarray
    actions: np.ndarray
    traj: np.ndarray
    poses: np.ndarray | None = None
    sources: list = field(default_factory=list)
    val_traj: set = field(default_factory=set)
    known_world: bool = False    # a simulator world (true geodesics available)
    labelling: dict = field(default_factory=dict)   # bag -> how its transitions were labelled
    label_stats: dict = field(default_factory=dict)  # bag -> its labelling counts (BagFrames.stats)
    world_text: str | None = None   # the world file's text, when the bag (or --world FILE) carries it
    shard: np.ndarray | None = None        # (N,) data shard of each frame (assign_shards); None: all in shard 0
    held_frames: np.ndarray | None = None  # the frames whose images front and rear hold, ascending; None: all
    laser: LaserFrames | None = None       # the frames' laser scans, when every bag of the world has them

    def __len__(self):
        return len(self.actions)

    @property
    def shards(self) -> np.ndarray:
        """(N,) the data shard of each frame."""
        return self.shard if self.shard is not None else np.zeros(len(self), np.int32)

    def images(self, cam: str, frames: np.ndarray) -> np.ndarray:
        """uint8 (len(frames), 96, 96, 3): camera `cam` ("front" or "rear") at these frames,
        which this process must hold."""
        frames = np.asarray(frames, np.int64)
        if self.held_frames is None:
            return getattr(self, cam)[frames]
        rows = np.minimum(np.searchsorted(self.held_frames, frames), max(len(self.held_frames) - 1, 0))
        if len(frames) and (not len(self.held_frames) or np.any(self.held_frames[rows] != frames)):
            raise IndexError(f"world {self.name}: the images of some of these frames are not held by this process "
                             f"(it holds {len(self.held_frames)} of {len(self)} frames: its data shards)")
        return getattr(self, cam)[rows]

    @property
    def next_ok(self) -> np.ndarray:
        ok = np.zeros(len(self), bool)
        if len(self) > 1:
            ok[:-1] = (self.traj[:-1] == self.traj[1:]) & (self.actions[:-1] != Action.STOP)
        return ok

    @property
    def is_val(self) -> np.ndarray:
        return np.isin(self.traj, np.fromiter(self.val_traj, dtype=np.int64, count=len(self.val_traj)))

    def transitions(self, val: bool) -> np.ndarray:
        """Indices t with a recorded transition t -> t+1, in the train or validation split."""
        ok = self.next_ok & (self.is_val == val)
        return np.flatnonzero(ok)

    def frames(self, val: bool) -> np.ndarray:
        return np.flatnonzero(self.is_val == val)


def _header_time(msg, fallback: float) -> float:
    header = getattr(msg, "header", None)
    if header is None:
        return fallback
    t = stamp_to_sec(header.stamp)
    return t if t > 0 else fallback


def _candidates(topic: str, camera: bool = False) -> list[str]:
    """The names a topic may be recorded under: with or without the leading slash, and for
    a camera also through image_transport's compressed plugin."""
    cands = [topic, "/" + topic.lstrip("/"), topic.lstrip("/")]
    if camera:
        cands += [c.rstrip("/") + "/compressed" for c in cands[:2]]
    return cands


def camera_info_topic(image_topic: str) -> str:
    """Where a camera driver publishes the CameraInfo of an image topic: beside it in the
    camera's namespace (front_camera/image_raw[/compressed] -> front_camera/camera_info)."""
    topic = image_topic.rstrip("/")
    if topic.endswith("/compressed"):
        topic = topic[: -len("/compressed")]
    ns = topic.rsplit("/", 1)[0] if "/" in topic.lstrip("/") else ""
    return f"{ns}/camera_info" if ns else "camera_info"


def _resolve_names(names: TopicNames, bag_topics: dict) -> TopicNames:
    """Accept topics recorded with or without the leading slash, and a camera recorded only
    through image_transport's compressed plugin (`<topic>/compressed`)."""
    out = TopicNames(**vars(names))
    for cam in ("front", "rear"):
        if not getattr(names, cam + "_info"):
            setattr(out, cam + "_info", camera_info_topic(getattr(names, cam)))
    for field_name, topic in vars(out).items():
        for cand in _candidates(topic, camera=field_name in ("front", "rear")):
            if cand in bag_topics and bag_topics[cand][1] > 0:
                setattr(out, field_name, cand)
                break
    return out


ACTION_TYPE = "o4a_msgs/msg/DiscreteAction"
ODOM_TYPE = "nav_msgs/msg/Odometry"


def _present(bag_topics: dict, topic: str) -> bool:
    return topic in bag_topics and bag_topics[topic][1] > 0


@dataclass
class BagFrames:
    """What read_bag takes from one bag: the frames kept as transitions, in time order."""

    front: np.ndarray | None       # (N, 96, 96, 3) uint8, the model input (None: not read yet, see scan_bag)
    rear: np.ndarray | None        # (N, 96, 96, 3) uint8
    actions: np.ndarray            # (N,) int8 Action values (the motion from frame k to k + 1)
    traj: np.ndarray               # (N,) int32 trajectory ids 0..k-1 (a chain breaks between them)
    times: np.ndarray              # (N,) float seconds: the stamps of the kept frames
    poses: np.ndarray | None       # (N, 3) float32 ground-truth x, y, yaw (evaluation only), or None
    world: str | None              # the bag's o4a/world_name, or None
    world_text: str | None         # the bag's world definition (simulator bags), or None
    labels: str                    # "actions" (DiscreteActions) or "odometry"
    skipped: int                   # actions (or frames) that could not be used
    stats: dict                    # labelling counts (see _describe_labels)
    source: str = ""               # the bag, as given
    image_topics: tuple = ()       # (front topic, rear topic) as recorded
    image_pos: tuple = ()          # (N,) int64 each, per camera: which message of its topic is frame k's image
    laser: LaserFrames | None = None   # the frames' scans (None: the bag has no scan topic)
    cameras: tuple = (None, None)      # (front, rear) image_conv.CameraView from the bag's CameraInfo, or None
    framing: str = ""                  # how the images are framed (the cameras' intrinsics, or why not)

    def read_images(self, frames: np.ndarray | None = None, out: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The (front, rear) images of `frames` (indices, default all), decoded from the bag
        in one sequential pass that converts only those messages; written into `out` (two
        uint8 arrays of len(frames) rows) when given."""
        frames = np.arange(len(self.actions)) if frames is None else np.asarray(frames, np.int64)
        if out is None:
            out = tuple(np.empty((len(frames), 96, 96, 3), np.uint8) for _ in range(2))
        wanted = {}
        for cam, (topic, pos) in enumerate(zip(self.image_topics, self.image_pos)):
            rows: dict[int, list] = {}
            for row, p in enumerate(pos[frames]):
                rows.setdefault(int(p), []).append(row)
            wanted[topic] = (cam, rows)
        if not len(frames):
            return out
        count = dict.fromkeys(wanted, -1)
        for topic, _, t_bag, msg in bagio.read(self.source, list(wanted)):
            count[topic] += 1
            cam, rows = wanted[topic]
            if count[topic] not in rows:
                continue
            try:
                img = image_msg_to_model_input(msg, self.cameras[cam] if self.cameras else None)
            except ImageFormatError as exc:
                raise BagError(f"bag {self.source}: unusable image on topic {topic} at t={t_bag:.3f}s: {exc}") from None
            out[cam][rows[count[topic]]] = img
        return out


def read_bag(path, names: TopicNames | None = None, max_image_age: float = 0.5, max_gap: float = 5.0,
             progress=None, segment: SegmentParams | None = None) -> BagFrames:
    """One bag -> BagFrames (frames, actions, trajectories, poses or None, world or None,
    labels, stats): scan_bag, then all its frames' images."""
    d = scan_bag(path, names, max_image_age, max_gap, progress, segment)
    d.front, d.rear = d.read_images()
    return d


def scan_bag(path, names: TopicNames | None = None, max_image_age: float = 0.5, max_gap: float = 5.0,
             progress=None, segment: SegmentParams | None = None) -> BagFrames:
    """read_bag without the images (front and rear None; BagFrames.read_images reads them):
    one pass over the bag that keeps only the images' stamps.

    Labels come from the DiscreteActions on `names.action` when the bag has them, else from
    the odometry on `names.odom` (continuous driving, see learning/odometry.py). Motions
    that the base reported as not SUCCEEDED on `names.motion_state` end the chain (they are
    never a transition). BagError on bad bags."""
    names = names or TopicNames()
    path = Path(path)
    bag_topics = bagio.topics(path)
    names = _resolve_names(names, bag_topics)
    use_actions = _check_topics(path, names, bag_topics)
    segment = (segment or SegmentParams()).validate()
    s = _read_streams(path, names, bag_topics, use_actions, progress)
    images, actions, poses, odom, motion, infos = s.images, s.actions, s.poses, s.odom, s.motion, s.infos
    world, world_text, scans, scan_meta, tf_tree = s.world, s.world_text, s.scans, s.scan_meta, s.tf_tree
    has_pose, has_scan = s.has_pose, s.has_scan

    def _sorted(times, items):
        order = np.argsort(np.asarray(times), kind="stable")
        return [times[i] for i in order], [items[i] for i in order]

    ft, ff = _sorted(*images[names.front])
    rt, rf = _sorted(*images[names.rear])
    pt, pp = _sorted(*poses) if has_pose else ([], [])
    if use_actions:
        picked = _pair_actions(path, names, actions, motion, ft, rt, max_image_age, max_gap)
    else:
        odom = _sorted(*odom)
        lag, lag_info = _image_lag(path, names.front, ft, ff, odom)
        ft, rt = [t + lag for t in ft], [t + lag for t in rt]      # the cameras' stamps on the odometry's clock
        picked = _pair_odometry(path, names, odom, ft, rt, max_image_age, segment)
        picked["stats"]["image_lag"] = {"seconds": lag, **lag_info}
    eps = 1e-6
    out_pose = []
    if has_pose:
        for t_a in picked["times"]:
            k = max(0, bisect.bisect_right(pt, t_a + eps) - 1)
            if not use_actions and k + 1 < len(pt) and pt[k + 1] - t_a < t_a - pt[k]:
                k += 1              # a frame's time is an estimate (stamp offset): the nearest pose
            out_pose.append(pp[k])
    laser = _laser_frames(path, names, scans, scan_meta, tf_tree, np.asarray(picked["times"], float)) \
        if has_scan and scans[0] else None
    if not use_actions:
        picked, out_pose, laser = _laser_check_labels(picked, out_pose if has_pose else None, laser, segment)
    # renumber trajectories 0..k-1
    _, traj_ids = np.unique(np.asarray(picked["traj"]), return_inverse=True)
    return BagFrames(
        front=None, rear=None, image_topics=(names.front, names.rear),
        image_pos=(np.asarray(ff, np.int64)[picked["front"]], np.asarray(rf, np.int64)[picked["rear"]]),
        actions=np.asarray(picked["actions"], np.int8), traj=traj_ids.astype(np.int32),
        times=np.asarray(picked["times"], float), poses=np.asarray(out_pose, np.float32) if has_pose else None,
        world=world, world_text=world_text, labels="actions" if use_actions else "odometry",
        skipped=picked["skipped"], stats=picked["stats"], source=str(path), laser=laser,
        **_cameras(names, infos))


def _check_topics(path, names: TopicNames, bag_topics: dict) -> bool:
    """The bag has both cameras and labels (BagError naming what is missing or of the
    wrong type): True when the labels are DiscreteActions, False when odometry."""
    have = ", ".join(sorted(bag_topics)) or "none"
    for role, topic in (("front camera", names.front), ("rear camera", names.rear)):
        empty = [t for t in _candidates(topic, camera=True) if t in bag_topics and bag_topics[t][1] == 0]
        if not _present(bag_topics, topic) and empty:
            raise BagError(f"bag {path}: {role} topic {empty[0]} has no messages (it is in the bag with "
                           f"0 messages: nothing was received on it while recording); record the camera, or "
                           f"set another topic with the topic options of `o4a train`")
        if not _present(bag_topics, topic):
            raise BagError(f"bag {path} has no {role} topic {topic} (topics in the bag: {have}); "
                           f"set it with the topic options of `o4a train`")
        if bag_topics[topic][0] not in IMAGE_TYPES:
            raise BagError(f"bag {path}: {role} topic {topic} has type {bag_topics[topic][0]}, "
                           f"not {' or '.join(IMAGE_TYPES)}")
    use_actions = _present(bag_topics, names.action)
    if use_actions and bag_topics[names.action][0] != ACTION_TYPE:
        raise BagError(f"bag {path}: action topic {names.action} has type {bag_topics[names.action][0]}, "
                       f"not {ACTION_TYPE}; a recording driven with velocities (joystick, cmd_vel) trains "
                       f"from its odometry: leave --action-topic out and set --odom-topic if it is not "
                       f"{TopicNames.odom}")
    if not use_actions:
        if not _present(bag_topics, names.odom):
            raise BagError(f"bag {path} has no action topic {names.action} and no odometry topic {names.odom} "
                           f"(topics in the bag: {have}); set them with --action-topic / --odom-topic")
        if bag_topics[names.odom][0] != ODOM_TYPE:
            raise BagError(f"bag {path}: odometry topic {names.odom} has type {bag_topics[names.odom][0]}, "
                           f"not {ODOM_TYPE}")
    return use_actions


@dataclass
class _Streams:
    """What scan_bag's one pass over a bag keeps, per topic role (stamps and values)."""

    images: dict                 # image topic -> (stamps, message positions)
    infos: dict                  # CameraInfo topic -> its first message (None: not seen)
    has_pose: bool
    has_scan: bool
    actions: list = field(default_factory=list)      # (stamp, action, sequence)
    poses: tuple = field(default_factory=lambda: ([], []))
    odom: tuple = field(default_factory=lambda: ([], []))
    motion: dict = field(default_factory=dict)       # sequence -> final MotionState
    world: str | None = None
    world_text: str | None = None
    scans: tuple = field(default_factory=lambda: ([], []))
    scan_meta: dict = field(default_factory=dict)
    tf_tree: TransformTree = field(default_factory=TransformTree)


def _wanted(names: TopicNames, bag_topics: dict, use_actions: bool) -> tuple[list, dict]:
    """(the topics to read, flags: has_pose, has_world, has_motion, has_scan, has_tf, infos)."""
    wanted = [names.front, names.rear, names.action if use_actions else names.odom]
    f = {"has_pose": _present(bag_topics, names.pose), "has_world": _present(bag_topics, names.world),
         "has_motion": use_actions and _present(bag_topics, names.motion_state),
         "has_scan": _present(bag_topics, names.scan) and bag_topics[names.scan][0] == SCAN_TYPE,
         "has_tf": _present(bag_topics, names.tf_static) and bag_topics[names.tf_static][0] == TF_TYPE,
         "infos": {t: None for t in (names.front_info, names.rear_info)
                   if _present(bag_topics, t) and bag_topics[t][0] == CAMERA_INFO_TYPE}}
    wanted += [names.pose] if f["has_pose"] else []
    wanted += [names.world] if f["has_world"] else []
    wanted += [names.motion_state] if f["has_motion"] else []
    if _present(bag_topics, names.world_definition):
        wanted.append(names.world_definition)
    wanted += [names.scan] if f["has_scan"] else []
    wanted += list(f["infos"])
    wanted += [names.tf_static] if f["has_tf"] else []
    return wanted, f


def _read_streams(path, names: TopicNames, bag_topics: dict, use_actions: bool, progress) -> _Streams:
    """One pass over the bag's wanted topics; images keep only their stamps and positions."""
    wanted, f = _wanted(names, bag_topics, use_actions)
    s = _Streams(images={names.front: ([], []), names.rear: ([], [])}, infos=f["infos"], has_pose=f["has_pose"],
                 has_scan=f["has_scan"])
    total = sum(bag_topics[t][1] for t in wanted)
    bar = progress(total=total, desc=f"reading {path.name}", unit="msg") if progress else None
    for topic, _, t_bag, msg in bagio.read(path, wanted):
        if bar is not None:
            bar.update(1)
        if topic in s.images:     # the stamp and the message's position; decoded later (read_images)
            times, positions = s.images[topic]
            times.append(_header_time(msg, t_bag))
            positions.append(len(positions))
        elif topic == names.action and use_actions:
            a = int(msg.action)
            if a not in (0, 1, 2, 3):
                raise BagError(f"bag {path}: action value {a} on topic {topic} at t={t_bag:.3f}s is not a DiscreteAction")
            s.actions.append((_header_time(msg, t_bag), a, int(getattr(msg, "sequence", len(s.actions)))))
        elif topic == names.odom and not use_actions:
            p = pose_msg_to_pose2d(msg.pose.pose)
            s.odom[0].append(_header_time(msg, t_bag))
            s.odom[1].append((p.x, p.y, p.yaw))
        elif topic == names.motion_state and f["has_motion"]:
            if int(msg.state) in FINAL_MOTION_STATES:
                s.motion[int(msg.sequence)] = int(msg.state)
        elif topic == names.pose:
            p = pose_msg_to_pose2d(msg.pose)
            s.poses[0].append(_header_time(msg, t_bag))
            s.poses[1].append((p.x, p.y, p.yaw))
        else:
            _read_other(path, names, topic, t_bag, msg, s, f)
    if bar is not None:
        bar.close()
    return s


def _read_other(path, names: TopicNames, topic: str, t_bag: float, msg, s: _Streams, f: dict) -> None:
    """_read_streams for the topics read once or rarely: world name and file, scans, camera
    infos, /tf_static."""
    if topic == names.world and s.world is None:
        s.world = str(msg.data)
    elif topic == names.world_definition and s.world_text is None:
        s.world_text = str(msg.data)
    elif topic == names.scan and f["has_scan"]:
        _add_scan(path, msg, t_bag, s.scans, s.scan_meta)
    elif topic in s.infos and s.infos[topic] is None:
        s.infos[topic] = msg
    elif topic == names.tf_static and f["has_tf"]:
        for tr in msg.transforms:
            s.tf_tree.add(transform_from_msg(tr))


CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"


def _cameras(names: TopicNames, infos: dict) -> dict:
    """BagFrames' cameras and framing from the first CameraInfo of each camera: its K frames
    the images to the model's view (image_conv.crop_box); a camera without one (or with an
    uncalibrated, zero K) is framed with the centred square."""
    from o4a_nav.image_conv import MODEL_HFOV_DEG
    from o4a_nav.ros_conv import camera_info_to_view

    views, text = [], []
    for cam, topic in (("front", names.front_info), ("rear", names.rear_info)):
        msg = infos.get(topic)
        view, how = None, f"no {topic}: centred square"
        if msg is not None:
            try:
                view = camera_info_to_view(msg)
                how = (f"{topic} ({view.width}x{view.height}, {view.hfov_deg:.1f} deg wide): "
                       f"{MODEL_HFOV_DEG:g} deg square")
            except ImageFormatError as exc:
                how = f"{topic} unusable ({exc}): centred square"
        views.append(view)
        text.append(f"{cam} {how}")
    return {"cameras": tuple(views), "framing": "; ".join(text)}


SCAN_TYPE = "sensor_msgs/msg/LaserScan"
TF_TYPE = "tf2_msgs/msg/TFMessage"
MAX_SCAN_AGE = 0.1   # [s] a frame's scan is the one nearest its stamp, at most this far


def _add_scan(path, msg, t_bag, scans, meta) -> None:
    geom = (float(msg.angle_min), float(msg.angle_increment), float(msg.range_min), float(msg.range_max),
            len(msg.ranges), str(msg.header.frame_id).lstrip("/"))
    if "geom" not in meta:
        meta["geom"] = geom
    elif geom != meta["geom"]:
        raise BagError(f"bag {path}: the laser scans change their geometry or frame at t={t_bag:.3f}s "
                       f"({meta['geom']} -> {geom}); one laser per bag is supported")
    scans[0].append(_header_time(msg, t_bag))
    scans[1].append(np.asarray(msg.ranges, np.float32))


def _laser_frames(path, names, scans, meta, tf_tree, times) -> LaserFrames:
    """Each frame's nearest scan (within MAX_SCAN_AGE) and the laser's mount."""
    from o4a_nav.frames import is_level, yaw_of
    from o4a_nav.learning.closures import ScanGeometry
    from o4a_nav.types import Pose2D

    st = np.asarray(scans[0], float)
    order = np.argsort(st, kind="stable")
    st = st[order]
    k = np.clip(np.searchsorted(st, times), 1, max(len(st) - 1, 1))
    prev = np.clip(k - 1, 0, len(st) - 1)
    k = np.clip(k, 0, len(st) - 1)
    near = np.where(np.abs(st[prev] - times) <= np.abs(st[k] - times), prev, k)
    ok = np.abs(st[near] - times) <= MAX_SCAN_AGE
    ranges = np.full((len(times), meta["geom"][4]), np.nan, np.float32)
    rows = np.asarray(order)[near[ok]]
    ranges[ok] = np.stack([scans[1][r] for r in rows]) if len(rows) else ranges[ok]
    amin, ainc, rmin, rmax, _, frame = meta["geom"]
    base = names.base_frame
    mount, source = None, ""
    tf = tf_tree.lookup(base, frame)
    if frame == base:
        mount, source = Pose2D(0.0, 0.0, 0.0), f"scans stamped in {base}"
    elif tf is not None:
        if not is_level(tf):
            source = f"bag {path}: the laser frame {frame} is not level in {base} (/tf_static): not a planar scan"
        else:
            mount, source = Pose2D(tf.x, tf.y, yaw_of(tf)), f"{names.tf_static} ({base} -> {frame})"
    else:
        source = (f"bag {path}: the scans are in frame {frame!r} and the bag's {names.tf_static} does not place it "
                  f"in {base}; give the laser's mount with --set train.laser_mount=x,y,yaw")
    return LaserFrames(ranges, ScanGeometry(amin, ainc, rmin, rmax), mount, source, frame)


def _laser_check_labels(picked: dict, poses, laser: LaserFrames | None, params: SegmentParams):
    """Odometry labels cross-checked with the laser (odometry.laser_check): a transition
    the scans contradict is dropped (the chain is cut there), and so are the frames that
    leaves in no transition. Counts in picked["stats"]["laser"]: labelled, checked, agree,
    disagree, unchecked, dropped_frames, and with ground-truth poses `true` (labels whose
    true displacement is the primitive, odometry.is_true_primitive) and `disagree_true`
    (of the dropped); `not_run` says why when the check cannot run. Returns (picked,
    poses, laser) with the frames' lists and arrays filtered alike."""
    import dataclasses

    from o4a_nav.learning.odometry import is_true_primitive, laser_check, relative
    from o4a_nav.types import FORWARD_STEP_M, ROTATE_STEP_RAD

    acts = np.asarray(picked["actions"], np.int8)
    chains = np.asarray(picked["traj"], np.int64)
    trans = (acts != Action.STOP) & np.r_[chains[1:] == chains[:-1], False]
    counts: dict = {"labelled": int(trans.sum())}
    picked["stats"]["laser"] = counts
    true = np.zeros(len(acts), bool)
    if poses is not None:
        for k in np.flatnonzero(trans):
            true[k] = is_true_primitive(int(acts[k]), *relative(poses[k], poses[k + 1]))
        counts["true"] = int(true.sum())
    if laser is None:
        counts["not_run"] = "the bag has no laser scans"
    elif laser.usable():
        counts["not_run"] = laser.usable()
    elif abs(params.forward_m - FORWARD_STEP_M) > 1e-9 or abs(np.radians(params.rotate_deg) - ROTATE_STEP_RAD) > 1e-9:
        counts["not_run"] = (f"the labels are not the model's primitives ({FORWARD_STEP_M} m, "
                             f"{np.degrees(ROTATE_STEP_RAD):g} deg)")
    if "not_run" in counts:
        return picked, poses, laser
    new_acts, new_chains, check = laser_check(acts, chains, laser.ranges, dataclasses.astuple(laser.geometry),
                                               laser.mount)
    counts.update(check)
    dropped = trans & (new_acts == Action.STOP)
    if poses is not None:
        counts["disagree_true"] = int((dropped & true).sum())
    left = (new_acts != Action.STOP) & np.r_[new_chains[1:] == new_chains[:-1], False]
    keep = ~(trans | np.r_[False, trans[:-1]]) | left | np.r_[False, left[:-1]]
    counts["dropped_frames"] = int((~keep).sum())
    idx = np.flatnonzero(keep)
    picked = {**picked, "front": [picked["front"][k] for k in idx], "rear": [picked["rear"][k] for k in idx],
              "actions": new_acts[idx].tolist(), "traj": new_chains[idx].tolist(),
              "times": [picked["times"][k] for k in idx], "skipped": picked["skipped"] + counts["dropped_frames"]}
    if poses is not None:
        poses = [poses[k] for k in idx]
    laser = LaserFrames(laser.ranges[idx], laser.geometry, laser.mount, laser.mount_source, laser.frame_id)
    return picked, poses, laser


def _pair_actions(path, names, actions, motion, ft, rt, max_image_age, max_gap) -> dict:
    """Every DiscreteAction with the latest front and rear image at or before its stamp."""
    actions.sort(key=lambda a: a[0])
    out = {"front": [], "rear": [], "actions": [], "traj": [], "times": [], "skipped": 0,
           "stats": {"not_succeeded": 0}}
    traj, last_t, last_seq = 0, None, None
    eps = 1e-6
    for t_a, a, seq in actions:
        i = bisect.bisect_right(ft, t_a + eps) - 1
        j = bisect.bisect_right(rt, t_a + eps) - 1
        if i < 0 or j < 0 or t_a - ft[i] > max_image_age or t_a - rt[j] > max_image_age:
            out["skipped"] += 1
            if out["actions"] and out["actions"][-1] != Action.STOP:
                traj += 1          # a missing frame breaks the chain
            last_t = None
            continue
        if last_t is not None and (t_a - last_t > max_gap or (last_seq is not None and seq != last_seq + 1)):
            if out["actions"] and out["actions"][-1] != Action.STOP:
                traj += 1
        out["front"].append(i), out["rear"].append(j), out["actions"].append(a)
        out["traj"].append(traj), out["times"].append(t_a)
        if a == Action.STOP:
            traj += 1
        elif motion.get(seq, MotionStatus.SUCCEEDED) != MotionStatus.SUCCEEDED:
            traj += 1              # aborted / blocked: the next frame is not this action's result
            out["stats"]["not_succeeded"] += 1
        last_t, last_seq = t_a, seq
    if not out["actions"]:
        raise BagError(f"bag {path}: no action on {names.action} could be paired with front and rear images "
                       f"(within {max_image_age}s before it); {out['skipped']} actions skipped")
    return out


IMAGE_LAG_FRAMES = 3000    # the camera-to-odometry offset is estimated on the bag's first this many frames


def _image_lag(path, topic: str, ft: list, ff: list, odom) -> tuple[float, dict]:
    """The offset to add to the camera stamps to put them on the odometry's clock
    (odometry.estimate_image_lag on the front camera's images: their horizontal shift
    between consecutive frames against the odometry's turn), 0.0 when it cannot be
    estimated (info["why"])."""
    import cv2

    from o4a_nav.learning.odometry import LagParams, estimate_image_lag, image_shift
    from o4a_nav.ros_conv import image_msg_to_rgb

    params = LagParams()
    n = min(len(ft), IMAGE_LAG_FRAMES)
    want = {int(p): k for k, p in enumerate(ff[:n])}        # message position -> sorted frame index
    grey: list = [None] * n
    last = max(want, default=-1)
    for pos, (_, _, t_bag, msg) in enumerate(bagio.read(path, [topic])):
        if pos in want:
            try:
                img = cv2.cvtColor(image_msg_to_rgb(msg), cv2.COLOR_RGB2GRAY)
            except ImageFormatError as exc:
                raise BagError(f"bag {path}: unusable image on topic {topic} at t={t_bag:.3f}s: {exc}") from None
            h, w = img.shape
            grey[want[pos]] = cv2.resize(img, (params.width, max(8, round(h * params.width / w))),
                                         interpolation=cv2.INTER_AREA)
        if pos >= last:
            break
    shifts = np.array([image_shift(grey[k], grey[k + 1]) for k in range(n - 1)])
    lag, info = estimate_image_lag(np.asarray(ft[:n]), shifts, np.asarray(odom[0], float),
                                   np.asarray(odom[1], float), params)
    return lag, info


def _pair_odometry(path, names, odom, ft, rt, max_image_age, params: SegmentParams) -> dict:
    """Front frames (with the nearest rear image) kept where the odometry shows one primitive."""
    odom_t, odom_p = np.asarray(odom[0], float), np.asarray(odom[1], float).reshape(-1, 3)
    frame_poses, ok = interpolate_poses(np.asarray(ft), odom_t, odom_p, params.max_odom_gap)
    rear_idx = np.zeros(len(ft), np.int64)
    rt_arr = np.asarray(rt)
    for k, t in enumerate(ft):
        j = int(np.clip(bisect.bisect_left(rt, t), 1, len(rt) - 1)) if len(rt) > 1 else 0
        if len(rt) > 1 and abs(rt_arr[j - 1] - t) <= abs(rt_arr[j] - t):
            j -= 1
        rear_idx[k] = j
        if abs(rt_arr[j] - t) > max_image_age:
            ok[k] = False
    kept, acts, chains, stats = segment_odometry(frame_poses, ok, params)
    if int((acts != Action.STOP).sum()) == 0:
        raise BagError(f"bag {path}: the odometry on {names.odom} shows no motion of {params.forward_m} m "
                       f"straight or {params.rotate_deg} deg in place between camera frames "
                       f"({len(ft)} front images, {len(odom_t)} odometry messages)")
    stats["frames"] = len(ft)
    return {"front": kept.tolist(), "rear": rear_idx[kept].tolist(), "actions": acts.tolist(),
            "traj": chains.tolist(), "times": [ft[i] for i in kept], "skipped": int(len(ft) - len(kept)),
            "stats": stats}


def _world_file(override: str | None):
    """`--world FILE.yaml`: (name, text) of that world file, else None."""
    if not override or not override.endswith((".yaml", ".yml", ".json")) or not Path(override).is_file():
        return None
    from o4a_nav.sim.world import load_world

    w = load_world(override)
    return w.name, w.text


def _known_world(name: str) -> bool:
    try:
        from o4a_nav.sim.world import world_names
    except Exception:
        return False
    try:
        return name in world_names()
    except Exception:
        return False


def load_worlds(bags, names: TopicNames | None = None, world_override: str | None = None,
                val_fraction: float = 0.3, seed: int = 0, max_segment: int = 1000, progress=None,
                segment: SegmentParams | None = None, data_shards: int = 1, held: slice | None = None
                ) -> list[WorldData]:
    """Read bags and group them by world name (o4a/world_name topic, else --world, else the
    bag folder name). Each world's trajectories are split train/validation.

    data_shards, held: the frames of all worlds form `data_shards` shards of whole
    trajectories (assign_shards); only the images of shards `held` (a slice of
    range(data_shards), default all) are decoded and kept. Actions, trajectories, poses
    and shards are kept for every frame."""
    if not bags:
        raise BagError("no bags given")
    groups: dict[str, list] = {}
    from_file = _world_file(world_override)
    for bag in bags:
        d = scan_bag(bag, names, progress=progress, segment=segment)
        if from_file is not None:      # a world file names the world and describes it
            name, d.world_text = from_file
        else:
            name = world_override or d.world or Path(bag).resolve().name
        d.source = str(bag)
        groups.setdefault(name, []).append(d)
    worlds = []
    for name, parts in groups.items():
        pose_flags = {p.poses is not None for p in parts}
        offset, trajs = 0, []
        for p in parts:
            t = p.traj.astype(np.int64)
            t = _segment(t, max_segment)
            trajs.append(t + offset)
            offset = int(trajs[-1].max()) + 1
        w = WorldData(
            name=name, front=None, rear=None,
            actions=np.concatenate([p.actions for p in parts]),
            traj=np.concatenate(trajs).astype(np.int32),
            poses=np.concatenate([p.poses for p in parts]) if pose_flags == {True} else None,
            sources=[p.source for p in parts],
            labelling={p.source: _describe_labels(p) for p in parts},
            label_stats={p.source: p.stats for p in parts},
            world_text=next((p.world_text for p in parts if p.world_text), None),
        )
        w.laser = _merge_laser(name, parts)
        w.known_world = w.world_text is not None or _known_world(name)
        w.val_traj = split_trajectories(w.traj, val_fraction, seed)
        worlds.append(w)
    assign_shards(worlds, data_shards)
    held = np.arange(data_shards)[held if held is not None else slice(None)]
    for w, parts in zip(worlds, groups.values()):
        mine = np.isin(w.shard, held)
        w.held_frames = None if mine.all() else np.flatnonzero(mine)
        w.front, w.rear = (np.empty((int(mine.sum()), 96, 96, 3), np.uint8) for _ in range(2))
        start, row = 0, 0                                       # the bag's frame 0 in the world; its first row
        for p in parts:                                          # each bag's held frames, decoded in place
            local = np.flatnonzero(mine[start:start + len(p.actions)])
            p.read_images(local, out=(w.front[row:row + len(local)], w.rear[row:row + len(local)]))
            start, row = start + len(p.actions), row + len(local)
    return worlds


def _merge_laser(name: str, parts) -> LaserFrames | None:
    """One LaserFrames for the world's bags, or None when a bag has no scans or the bags'
    lasers differ (a world's closures compare scans of one geometry and mount)."""
    lasers = [p.laser for p in parts]
    if any(lf is None for lf in lasers):
        return None
    first = lasers[0]
    for p, lf in zip(parts[1:], lasers[1:]):
        if lf.geometry != first.geometry or lf.ranges.shape[1] != first.ranges.shape[1] or lf.mount != first.mount:
            return LaserFrames(np.zeros((0, 0), np.float32), first.geometry, None,
                               f"world {name}: bag {p.source} has another laser (geometry or mount) than "
                               f"{parts[0].source}", first.frame_id)
    return LaserFrames(np.concatenate([lf.ranges for lf in lasers]), first.geometry, first.mount,
                       first.mount_source, first.frame_id)


def assign_shards(worlds: list[WorldData], shards: int) -> None:
    """Set each world's `shard`: the frames of all worlds form `shards` data shards of whole
    trajectories (a transition never straddles two). Validation and training trajectories
    are dealt out separately, largest first, each to the shard that has the fewest frames
    of its kind so far (ties: the lower shard), so that every shard has about the same
    number of training transitions and, where there are enough, validation trajectories.
    Deterministic: every process computes the same shards from the bags' metadata.
    UserError when there are fewer training trajectories than shards."""
    trajs = []                                   # (is_val, -frames, order, world, traj id)
    for k, w in enumerate(worlds):
        ids, sizes = np.unique(w.traj, return_counts=True)
        for t, n in zip(ids.tolist(), sizes.tolist()):
            trajs.append((t in w.val_traj, -n, len(trajs), k, t))
    n_train = sum(1 for t in trajs if not t[0])
    if shards > 1 and n_train < shards:
        raise UserError(f"train.data_shards={shards}: the bags hold {n_train} training trajectories; a shard is "
                        f"made of whole trajectories, so use at most {max(n_train, 1)} shards")
    owner: dict[tuple, int] = {}
    for val in (False, True):
        load = [0] * shards
        for _, neg, _, k, t in sorted(x for x in trajs if x[0] == val):
            s = min(range(shards), key=lambda i: (load[i], i))
            owner[(k, t)] = s
            load[s] -= neg
    for k, w in enumerate(worlds):
        ids, inv = np.unique(w.traj, return_inverse=True)
        w.shard = np.asarray([owner[(k, int(t))] for t in ids], np.int32)[inv].reshape(-1) if len(w) else \
            np.zeros(0, np.int32)


def _describe_labels(d: BagFrames) -> str:
    st = d.stats
    if d.labels == "odometry":
        text = (f"odometry: {st['forward']} FORWARD and {st['rotate']} ROTATE transitions from {st['frames']} "
                f"frames, {st['breaks']} chain breaks (arcs, gaps)")
        lag = st.get("image_lag", {})
        if "why" in lag:
            text += f"; camera stamps taken as they are (offset to the odometry not estimated: {lag['why']})"
        elif lag:
            text += (f"; camera stamps {1000 * lag['seconds']:+.1f} ms onto the odometry's clock (estimated from "
                     f"{lag['turning']} turning frame pairs, correlation {lag['corr']:.3f})")
        lc = st.get("laser", {})
        if "not_run" in lc:
            text += f"; laser cross-check not run ({lc['not_run']})"
        elif lc:
            text += (f"; laser cross-check of the {lc['labelled']} labels: {lc['checked']} checked, {lc['agree']} "
                     f"agree, {lc['disagree']} disagree (dropped, with {lc['dropped_frames']} frames left in no "
                     f"transition), {lc['unchecked']} unchecked; {lc['labelled'] - lc['disagree']} transitions kept")
        if "true" in lc:
            text += f"; ground truth: {lc['true']} of the {lc['labelled']} labels true"
            if "disagree_true" in lc:
                text += (f", {lc['true'] - lc['disagree_true']} of the {lc['labelled'] - lc['disagree']} kept "
                         f"({lc['disagree_true']} true labels dropped)")
        return text + _framed(d)
    text = f"DiscreteActions ({d.skipped} without images)"
    if st.get("not_succeeded"):
        text += f", {st['not_succeeded']} motions not SUCCEEDED on the motion state topic (not transitions)"
    return text + _framed(d)


def _framed(d: BagFrames) -> str:
    return f"; images framed: {d.framing}" if d.framing else ""


def _segment(traj: np.ndarray, max_segment: int) -> np.ndarray:
    """Cut very long trajectories (e.g. one long real-robot recording) into segments so that
    a validation split by trajectory is possible. Segment boundaries break the chain."""
    out = np.empty_like(traj)
    new_id, count, prev = -1, 0, None
    for k, t in enumerate(traj):
        if t != prev or count >= max_segment:
            new_id, count, prev = new_id + 1, 0, t
        out[k] = new_id
        count += 1
    return out


def split_trajectories(traj: np.ndarray, val_fraction: float, seed: int) -> set:
    ids = np.unique(traj)
    if len(ids) < 2 or val_fraction <= 0:
        return set()
    rng = np.random.default_rng(seed)
    n_val = int(round(len(ids) * val_fraction))
    n_val = min(max(n_val, 1), len(ids) - 1)
    return set(int(i) for i in rng.choice(ids, n_val, replace=False))


def from_arrays(name, front, rear, actions, traj, poses=None, val_fraction=0.3, seed=0, known_world=False) -> WorldData:
    """Build a WorldData from arrays (tests, synthetic data)."""
    w = WorldData(name=name, front=np.asarray(front, np.uint8), rear=np.asarray(rear, np.uint8),
                  actions=np.asarray(actions, np.int8), traj=np.asarray(traj, np.int32),
                  poses=None if poses is None else np.asarray(poses, np.float32), known_world=known_world)
    w.val_traj = split_trajectories(w.traj, val_fraction, seed)
    assign_shards([w], 1)
    return w
