"""`skillstack discover`: videos to skill types, clips and library skills with the zoo's segmenter."""

from __future__ import annotations

import json

import pytest

from skillstack.cli import main
from zoo.manifest import read_manifest

SEGMENTER = read_manifest().get("segmenter").folder()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Eight pick-place expert episodes (front camera at the segmenter's size) and the first one's mp4."""
    from demos.record import record_demos

    out = tmp_path_factory.mktemp("discover") / "pp.hdf5"
    rec = record_demos("skillstack/PandaPickPlace-v0", "expert", 8, out, seed=70_000, cameras=("front",), image_size=64,
                       video=True, video_camera="front", progress=False)
    return rec.path, rec.videos[0]


@pytest.mark.slow
def test_discover_publishes_skills_and_reports(recorded, tmp_path, capsys):
    demo_file, video = recorded
    lib = tmp_path / "lib"
    assert main(["discover", str(demo_file), str(video), "--to-library", str(lib), "--segmenter", str(SEGMENTER),
                 "--report", str(tmp_path / "report"), "--bc-epochs", "3", "--no-evaluate", "--min-segments", "3"]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "report" / "discover.json").read_text())
    assert len(report["videos"]) == 9  # 8 episodes + the mp4
    assert all(v["segments"] >= 1 for v in report["videos"])
    assert report["videos"][-1]["teaches_skills"] is False and any("plain video" in n for n in report["notes"])
    assert report["skill_types"] == len(report["types"]) >= 2
    from common.video import read_mp4

    clips = [t["clip"] for t in report["types"] if t["clip"]]
    assert clips and all(read_mp4(c).shape[0] >= 1 for c in clips)
    from skill_library import SkillLibrary

    refs = {e.ref for e in SkillLibrary(lib).entries()}
    assert refs == {s["ref"] for s in report["skills"]} and refs
    assert all(s["ref"].startswith("sbd_") and "preconditions" in s for s in report["skills"])
    assert "skill(s) published into" in out and "example clip" in out


def test_discover_refuses_a_multi_camera_segmenter_and_missing_files(tmp_path):
    from zoo.discover import load_video_episodes

    class TwoCams:
        cameras = ("front", "wrist")
        idm = object()

    with pytest.raises(FileNotFoundError):
        load_video_episodes(tmp_path / "nope.mp4", TwoCams())
    (tmp_path / "v.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="one-camera segmenter"):
        load_video_episodes(tmp_path / "v.mp4", TwoCams())
