"""`skillstack robots` lists the robot descriptions; `skillstack bench experts` measures experts per robot."""

import json

from skillstack.cli import main


def test_robots_table_lists_every_robot(capsys):
    assert main(["robots"]) == 0
    out = capsys.readouterr().out
    assert "panda" in out and "ur5e" in out and "shoulder_pan_joint" in out and "skillstack/UR5e<Task>-v0" in out


def test_robots_json_is_the_full_descriptions(capsys):
    assert main(["robots", "--json"]) == 0
    robots = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(robots) >= {"panda", "ur5e"}
    ur = robots["ur5e"]
    assert len(ur["arm"]["joints"]) == 6 and ur["gripper"]["width_range"] == [0.0, 0.085]
    assert "skillstack/UR5eStackThree-v0" in ur["env_ids"]
    assert robots["panda"]["home"]["arm"][3] == -2.2


def test_bench_experts_writes_per_robot_success(tmp_path, capsys):
    out = tmp_path / "experts.json"
    assert main(["bench", "experts", "--episodes", "2", "--tasks", "Reach", "--out", str(out)]) == 0
    rows = {r["robot"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) >= {"panda", "ur5e"}
    for row in rows.values():
        assert row["episodes"] == 2 and row["success_rate"] == 1.0 - len(row["failed_seeds"]) / 2
    assert "success" in capsys.readouterr().out


def test_bench_experts_refuses_an_unknown_robot(capsys):
    assert main(["bench", "experts", "--robots", "kuka", "--episodes", "1"]) == 2
    assert "unknown robot" in capsys.readouterr().err


def test_robots_lists_the_ros_profiles_with_the_description_each_binds_to(capsys):
    from ros_bridge.profile import load_profile, profile_names

    assert main(["robots"]) == 0
    out = capsys.readouterr().out
    assert "ROS 2 profile" in out
    for name in profile_names():
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert load_profile(name).description.name in row.split()
    assert main(["robots", "--json"]) == 0
    robots = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    bound = {p["name"]: name for name, r in robots.items() for p in r["ros_profiles"]}
    assert bound == {n: load_profile(n).description.name for n in profile_names()}
    assert bound["ur"] == "ur5e" and bound["fr3"] == "panda"
    ur = next(p for p in robots["ur5e"]["ros_profiles"] if p["name"] == "ur")
    assert ur["arm"]["interface"] == "trajectory" and len(ur["arm"]["joints"]) == 6


def test_robots_command_imports_no_rclpy():
    import subprocess
    import sys

    code = "import sys; from skillstack.commands.robots import robot_listing; robot_listing(); print('rclpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
