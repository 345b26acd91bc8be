"""ament_python package o4a_nav. `colcon build` on a ROS host; `make setup` here."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "o4a_nav"

# ROS 2 node executables (`ros2 run o4a_nav <name>`), each a thin adapter in o4a_nav/nodes.
NODES = ["sim", "explorer", "collision_checker", "navigator", "base_controller", "lifecycle_manager"]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["sim/worlds/*.yaml", "sim/textures/*.png"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
        # the shipped model: the navigator's default model_path ("") finds it here once installed
        (f"share/{PACKAGE}/models/o4a_default", sorted(glob("models/o4a_default/*"))),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="o4a_nav developers",
    maintainer_email="dev@o4a-nav.invalid",
    description="One-4-All image-goal navigation for ROS 2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [f"{n}=o4a_nav.nodes.{n}:main" for n in NODES]
        + ["o4a=o4a_nav.cli:main"],
    },
)
