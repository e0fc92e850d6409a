"""common.video, the one mp4 writer: real OpenCV encoding and decoding, RGB in and out, written atomically."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest

from common.video import Mp4Writer, iter_mp4, read_mp4, write_mp4

H, W = 48, 64


def _frames(n: int = 12) -> list[np.ndarray]:
    """Frames with structure a codec keeps: red left half, blue right half, a white bar moving down."""
    out = []
    for t in range(n):
        f = np.zeros((H, W, 3), np.uint8)
        f[:, : W // 2] = (220, 30, 30)
        f[:, W // 2 :] = (30, 30, 220)
        f[4 * t % H : 4 * t % H + 4] = 255
        out.append(f)
    return out


def test_round_trip_keeps_frames_and_colour_order(tmp_path):
    frames = _frames()
    path = write_mp4(frames, tmp_path / "clip.mp4", fps=25.0)
    video = read_mp4(path)
    assert video.shape == (len(frames), H, W, 3) and video.dtype == np.uint8
    assert np.abs(video.astype(int) - np.stack(frames).astype(int)).mean() < 10  # mp4v is lossy, not wrong
    left, right = video[:, 24:, 4:20].reshape(-1, 3).mean(0), video[:, 24:, 44:60].reshape(-1, 3).mean(0)
    assert left[0] > 150 > left[2] and right[2] > 150 > right[0]  # RGB stays RGB (no BGR swap leaks out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_streaming_writer_and_iterator_agree_with_the_whole_file(tmp_path):
    with Mp4Writer(tmp_path / "stream.mp4", fps=10) as writer:
        for frame in _frames(6):
            writer.write(frame)
    assert writer.frames == 6
    streamed = list(iter_mp4(tmp_path / "stream.mp4"))
    assert len(streamed) == 6 and np.array_equal(np.stack(streamed), read_mp4(tmp_path / "stream.mp4"))


def test_a_frame_of_another_size_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"frame shape \(24, 32, 3\) differs from the first frame's \(48, 64, 3\)"):
        with Mp4Writer(tmp_path / "v.mp4", fps=25) as writer:
            writer.write(_frames(1)[0])
            writer.write(np.zeros((24, 32, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("frame", [np.zeros((H, W, 3), np.float32), np.zeros((H, W), np.uint8),
                                   np.zeros((H, W, 4), np.uint8)], ids=["float", "grey", "rgba"])
def test_a_frame_that_is_not_uint8_rgb_is_refused(tmp_path, frame):
    with pytest.raises(ValueError, match=r"must be uint8 \(H, W, 3\)"):
        write_mp4([frame], tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


def test_abort_leaves_nothing_behind(tmp_path):
    writer = Mp4Writer(tmp_path / "v.mp4", fps=25)
    for frame in _frames(3):
        writer.write(frame)
    assert len(list(tmp_path.iterdir())) == 1  # the hidden temp file being encoded
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_recording_keeps_the_previous_video(tmp_path):
    path = write_mp4(_frames(5), tmp_path / "v.mp4")
    with pytest.raises(KeyboardInterrupt):
        with Mp4Writer(path, fps=25) as writer:
            writer.write(_frames(1)[0])
            raise KeyboardInterrupt
    assert read_mp4(path).shape[0] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_no_frames_writes_no_file(tmp_path):
    assert Mp4Writer(tmp_path / "a.mp4", fps=25).close() is None
    with pytest.raises(ValueError, match="no frames to write"):
        write_mp4([], tmp_path / "b.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "fps", "match"), [("v.avi", 25, r"must end in \.mp4"), ("v.mp4", 0, "fps must be"),
                                                    ("v.mp4", float("nan"), "fps must be")])
def test_bad_path_or_fps_is_refused_before_any_frame(tmp_path, name, fps, match):
    with pytest.raises(ValueError, match=match):
        Mp4Writer(tmp_path / name, fps)


def test_reading_a_file_that_is_not_a_video_says_so(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="junk.mp4"):
        read_mp4(tmp_path / "junk.mp4")


@pytest.mark.parametrize(("old", "names"), [("envs.video", ["write_mp4", "read_mp4"]), ("demos.video", ["Mp4Writer"])])
def test_old_import_paths_warn_and_give_the_same_objects(old, names):
    """envs.video and demos.video stay importable for one release, as warning re-exports of the one writer."""
    import common.video

    with warnings.catch_warnings():  # the first import warns too; the reload below is what is checked
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"'{old}' moved to 'common.video'"):
        importlib.reload(module)
    assert all(getattr(module, name) is getattr(common.video, name) for name in names)
