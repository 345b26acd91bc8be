"""ROS-free navigation runtime core: collision checking, the O4A navigator and the
discrete-action base controller. Nodes in o4a_nav/nodes/ wrap these modules."""
