"""Write rendered frames to an mp4 file (OpenCV), atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def write_mp4(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 25.0) -> Path:
    """Encode uint8 HxWx3 RGB frames as an mp4 (mp4v). Written to a temp file, then renamed."""
    import cv2

    if len(frames) == 0:
        raise ValueError("no frames to write")
    first = np.asarray(frames[0])
    if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 HxWx3, got {first.dtype} {first.shape}")
    h, w = first.shape[:2]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=path.parent, prefix=f".{path.stem}.")
    os.close(fd)
    try:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV could not open a video writer for {path}")
        for frame in frames:
            frame = np.asarray(frame)
            if frame.shape != first.shape:
                raise ValueError(f"frame shape {frame.shape} differs from the first frame {first.shape}")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_mp4(path: str | os.PathLike) -> np.ndarray:
    """Decode an mp4 into a uint8 (T, H, W, 3) RGB array (for tests and segmentation)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path}")
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise ValueError(f"video {path} has no frames")
    return np.stack(frames)
