"""The one mp4 writer and reader of the project (OpenCV, codec mp4v), written through `common.atomic`.

Frames are RGB uint8 (H, W, 3), as MuJoCo renders them; OpenCV wants BGR, so channels are
swapped here and nowhere else. `Mp4Writer` streams frames to a temp file beside the target
and renames it into place on `close()`, so a reader never sees half a video and a failed or
aborted recording leaves nothing behind; replaying a whole dataset into one video keeps no
frame in memory. `write_mp4` writes a list of frames through it; `iter_mp4` / `read_mp4` decode.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from common.atomic import atomic_replace, temp_path

__all__ = ["FOURCC", "Mp4Writer", "iter_mp4", "read_mp4", "write_mp4"]

FOURCC = "mp4v"  # in every OpenCV build (no licensed H.264 encoder needed)


class Mp4Writer:
    """Streams RGB uint8 frames into an .mp4 at `fps`; the first frame sets the size.

    Use as a context manager (the file appears when the block ends without error, and not at
    all if it raises), or call `write` then `close()` (or `abort()` to drop the partial video).
    """

    def __init__(self, path: str | os.PathLike[str], fps: float):
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise ValueError(f"{self.path}: video path must end in .mp4")
        self.fps = float(fps)
        if not math.isfinite(self.fps) or self.fps <= 0:
            raise ValueError(f"fps must be a positive number, got {fps}")
        self.frames = 0
        self._tmp: Path | None = None
        self._writer = None
        self._shape: tuple[int, ...] | None = None

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame (H, W, 3); every frame must have the first frame's size."""
        import cv2

        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"{self.path}: video frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        if self._writer is None:
            h, w = frame.shape[:2]
            self._tmp = temp_path(self.path, suffix=".mp4")  # OpenCV picks the container by suffix
            writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*FOURCC), self.fps, (w, h))
            if not writer.isOpened():
                self.abort()
                raise RuntimeError(f"{self.path}: OpenCV cannot open an {FOURCC} video writer here")
            self._writer, self._shape = writer, frame.shape
        elif frame.shape != self._shape:
            raise ValueError(f"{self.path}: frame shape {frame.shape} differs from the first frame's {self._shape}")
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file and move it into place atomically; returns its path (None if no frame was written)."""
        if self._writer is None:
            self.abort()
            return None
        self._writer.release()
        self._writer = None
        tmp, self._tmp = self._tmp, None
        assert tmp is not None
        try:
            atomic_replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        """Drop the partial video: the target is left as it was (absent, or the previous file)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_mp4(frames: Iterable[np.ndarray], path: str | os.PathLike[str], fps: float = 25.0) -> Path:
    """Encode RGB uint8 (H, W, 3) frames as an mp4 at `path` atomically (see `Mp4Writer`); returns the path.

    No frames at all is an error (there would be no video to show), and nothing is written then."""
    with Mp4Writer(path, fps) as writer:
        for frame in frames:
            writer.write(frame)
        if writer.frames == 0:
            raise ValueError(f"{writer.path}: no frames to write")
    return writer.path


def iter_mp4(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Decode a video frame by frame as RGB uint8 (H, W, 3) arrays, holding one frame at a time."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ValueError(f"{path}: OpenCV cannot open this video")
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def read_mp4(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a whole video into a uint8 (T, H, W, 3) RGB array (for tests, checks and segmentation)."""
    frames = list(iter_mp4(path))
    if not frames:
        raise ValueError(f"{path}: video has no frames")
    return np.stack(frames)
