"""ament_python build of the ros_bridge package, for ROS 2 workspaces (colcon build).

This directory is the `ros_bridge` Python package itself (it is also part of the
skillstack pip package), so `package_dir` maps the package onto this folder. Launch and
config files go to share/ros_bridge, the node executables to lib/ros_bridge, where
`ros2 launch` / `ros2 run` find them. The rest of skillstack (envs, sim_assets,
skill_library) must be pip-installed into the same interpreter.
"""

from glob import glob

from setuptools import setup

PACKAGE = "ros_bridge"

if __name__ == "__main__":  # colcon runs this file as a script; never on import
    setup(
        name=PACKAGE,
        version="0.1.0",
        packages=[PACKAGE],
        package_dir={PACKAGE: "."},
        # Read through importlib.resources at run time (robot profiles, control_msgs definitions).
        package_data={PACKAGE: ["config/profiles/*.yaml", "idl/control_msgs/LICENSE", "idl/control_msgs/*/*"]},
        data_files=[
            ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
            (f"share/{PACKAGE}", ["package.xml"]),
            (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
            (f"share/{PACKAGE}/config", glob("config/*.yaml")),
            (f"share/{PACKAGE}/config/profiles", glob("config/profiles/*.yaml")),
        ],
        install_requires=["setuptools"],
        zip_safe=True,
        maintainer="skillstack maintainers",
        maintainer_email="skillstack@example.org",
        description="skillstack ROS 2 bridge: skill_executor and sim_robot nodes, safety layer, launch files.",
        license="Apache-2.0",
        entry_points={
            "console_scripts": [
                "skill_executor = ros_bridge.skill_executor:main",
                "sim_robot = ros_bridge.sim_robot:main",
                "perception = ros_bridge.perception_node:main",
            ],
        },
    )
