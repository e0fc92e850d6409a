"""The command line: help on every command, and `skillstack demo` writes real videos."""

import subprocess
import sys

import pytest

from envs.video import read_mp4
from skillstack.cli import COMMAND_MODULES, build_parser, main


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) >= {"demo", "envs", "bench"}
    for name in sub.choices:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert "usage: skillstack" in capsys.readouterr().out
    assert len(COMMAND_MODULES) == len(set(COMMAND_MODULES))


def test_console_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "skillstack", "--help"], capture_output=True, text=True, check=True)
    assert "demo" in out.stdout and "bench" in out.stdout


@pytest.mark.slow
def test_demo_writes_one_video_per_task(tmp_path, capsys):
    # The other stages (zoo, segment, compose with its stack-three video, deploy) are
    # tests/test_demo.py's; the train stage is the training tests'. Here the experts' stage.
    assert main(["demo", "--out", str(tmp_path), "--stages", "experts"]) == 0
    out = capsys.readouterr().out
    assert "4/4 tasks solved" in out
    for task, steps in [("PandaReach", 50), ("PandaPush", 50), ("PandaPickPlace", 50), ("PandaStack", 100)]:
        frames = read_mp4(tmp_path / f"{task}.mp4")
        assert frames.shape[0] == steps + 1
        assert frames.shape[1:] == (360, 480, 3)


def test_envs_listing_json(capsys):
    assert main(["envs", "--json"]) == 0
    assert "skillstack/PandaStackDense-v0" in capsys.readouterr().out


def test_bench_envs_writes_json(tmp_path, capsys):
    out = tmp_path / "envs.json"
    assert main(["bench", "envs", "--steps", "100", "--rounds", "1", "--envs", "skillstack/PandaReach-v0",
                 "--out", str(out)]) == 0
    import json

    data = json.loads(out.read_text())
    row = data["results"][0]
    # The figures' meaning, not their size (speed is the benchmark's output, never a test's):
    # with one round the overhead is exactly env time over physics time of the same steps.
    assert row["env_steps_per_s"] > 0 and row["physics_steps_per_s"] > 0
    assert row["overhead_ratio"] == pytest.approx(row["physics_steps_per_s"] / row["env_steps_per_s"])
    assert "overhead ratio" in capsys.readouterr().out


def test_demo_rejects_unknown_stage(capsys):
    assert main(["demo", "--stages", "experts,juggle"]) == 2
    assert "unknown demo stage" in capsys.readouterr().err


def test_user_error_is_one_line(capsys):
    assert main(["bench", "envs", "--envs", "skillstack/Nope-v0", "--out", "/tmp/x.json"]) == 2
    assert "unknown env id" in capsys.readouterr().err
