"""`skillstack demo` on learned parts: the zoo installed, a recorded video segmented (PNG), stack-three
composed from learned skills (mp4 with the decisions overlaid), deployed on sim_robot over ROS 2, and
a table where scripted skills are only the comparison row."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import pytest


@pytest.mark.slow
def test_demo_runs_the_mission_on_learned_parts(tmp_path):
    """The command as a user runs it (a process of its own: the ROS 2 nodes it starts need real file descriptors),
    on a fresh ROS 2 domain on loopback only (tests/test_ros_e2e.py) and a fresh key ring (the zoo verifies by the
    project key alone)."""
    import cv2

    from common.video import read_mp4

    env = {**os.environ, "ROS_DOMAIN_ID": str(100 + random.Random(os.getpid() ^ time.time_ns()).randrange(100)),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "SKILLSTACK_KEYS": str(tmp_path / "keys"), "MUJOCO_GL": "egl"}
    proc = subprocess.run([sys.executable, "-m", "skillstack", "demo", "--out", str(tmp_path), "--stages",
                           "zoo,segment,compose,deploy", "--episodes", "1"], env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    # zoo: learned skills in the library, the segmenter in its folder
    assert (tmp_path / "library" / "index.json").is_file() and (tmp_path / "segmenter" / "segmenter.json").is_file()
    # segment: a real PNG of the loss and boundaries, and the segments of the recorded mp4
    png = cv2.imread(str(tmp_path / "segments.png"))
    assert png is not None and png.shape[0] > 100 and png.shape[1] > 100
    seg = json.loads((tmp_path / "segments.json").read_text())
    episode = seg["episodes"][0]
    assert episode["actions_inferred"] and episode["segments"] and len(episode["loss"]) == episode["length"]
    # compose: learned skills only, a video with the decisions drawn on it, scripted skills as the comparison
    frames = read_mp4(tmp_path / "stack_three.mp4")
    assert frames.shape[0] > 50 and frames.shape[1:] == (360, 480, 3)
    assert "stack-three with learned skills (" in out and "_bc@" in out
    assert "stack-three with scripted starter skills: success" in out
    table = out[out.index("the mission on learned parts"):]
    assert "comparison: stack-three" in table and "scripted starter skills" in table
    assert [line for line in table.splitlines() if "scripted" in line] == [
        line for line in table.splitlines() if line.strip().startswith("comparison")]  # scripted skills: the comparison row only
    # deploy: the composed task ran on sim_robot over ROS 2 to its end
    assert "deploy stack-three on sim_robot (learned skills" in out and "done: yes, goal reached: " in out
    assert "decisions ['" in out and "_bc" in out[out.index("deploy stack-three"):]  # learned skills ran on the robot
    assert (tmp_path / "deploy-logs" / "skill_executor.log").is_file()
