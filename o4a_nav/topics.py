"""Default topic, service, action and frame names (all remappable in ROS). Relative, as
the nodes use them; a bag stores them absolute (`absolute`)."""
from o4a_nav.errors import UserError

FRONT_IMAGE = "front_camera/image_raw"
REAR_IMAGE = "rear_camera/image_raw"
FRONT_CAMERA_INFO = "front_camera/camera_info"   # sensor_msgs/CameraInfo: framing (image_conv.crop_box)
REAR_CAMERA_INFO = "rear_camera/camera_info"
SCAN = "scan"
ODOM = "odom"
CMD_VEL = "cmd_vel"
CLOCK = "/clock"
TF = "/tf"                 # tf2_msgs/TFMessage: odom -> base_link (sim, or base_controller publish_odom_tf)
TF_STATIC = "/tf_static"   # tf2_msgs/TFMessage, transient local: sensor mounts in base_link

ACTION = "o4a/action"
FREE_ACTIONS = "o4a/free_actions"
SWEPT_BOX = "o4a/swept_box"
MOTION_STATE = "o4a/motion_state"
STATUS = "o4a/status"
SET_GOAL = "o4a/set_goal"
NAVIGATE = "o4a/navigate"

GROUND_TRUTH_POSE = "ground_truth/pose"
WORLD_NAME = "o4a/world_name"
WORLD_DEFINITION = "o4a/world_definition"   # the world file's text (simulator bags)
GOAL_FRONT_IMAGE = "o4a/goal/front_image"   # the goal of a recorded navigation run (`o4a record --goal`)
GOAL_REAR_IMAGE = "o4a/goal/rear_image"



def absolute(name: str) -> str:
    """The fully qualified name, as a bag of a node in the root namespace stores it: one
    leading '/', no trailing '/'. `ros2 bag record` stores absolute names ("/scan"); `o4a
    collect` and users often write relative ones ("scan"): the same topic for a node in the
    root namespace. The one normaliser of topic names (UserError for an empty name)."""
    t = name.strip()
    if not t or t == "/":
        raise UserError(f"invalid topic name {name!r}")
    return "/" + t.strip("/")


MAP_FRAME = "map"
ODOM_FRAME = "odom"
BASE_FRAME = "base_link"
LASER_FRAME = "laser"
FRONT_CAMERA_FRAME = "front_camera_optical"
REAR_CAMERA_FRAME = "rear_camera_optical"
