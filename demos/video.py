"""MP4 writing and reading through OpenCV (codec mp4v), written atomically.

Frames are RGB uint8 HWC, as our renderers return them; OpenCV wants BGR, so we flip
channels here and nowhere else. The file is written under a temporary name in the same
folder and renamed into place on `close()`, so a reader never sees half a video.
Unlike `envs.video.write_mp4` (a list of frames in memory), this streams frames to disk,
so replaying a whole dataset to one video needs no memory per frame.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from demos.writer import atomic_replace

__all__ = ["Mp4Writer"]


class Mp4Writer:
    """Accumulates RGB frames into an .mp4 file at `fps`; the size is set by the first frame."""

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise ValueError(f"{self.path}: video path must end in .mp4")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        self.frames = 0
        self._tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp.mp4")
        self._writer = None
        self._size: tuple[int, int] | None = None

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame (H, W, 3); every frame must have the first frame's size."""
        import cv2

        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"video frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._size = (w, h)
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise ValueError(f"{self.path}: OpenCV cannot open an mp4v video writer here")
        elif (w, h) != self._size:
            raise ValueError(f"{self.path}: frame size {(w, h)} differs from the first frame's {self._size}")
        self._writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file and move it into place; returns its path (None if no frame was written)."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        atomic_replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial video."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        with contextlib.suppress(OSError):
            self._tmp.unlink()

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

