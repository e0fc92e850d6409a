"""The mp4 side of LeRobotDataset v3: several episodes of one camera concatenated per file (PyAV).

LeRobot v3.0 stores `videos/<video_key>/chunk-CCC/file-FFF.mp4` with many episodes back to back;
each episode row in `meta/episodes/` says where its frames sit (`videos/<key>/from_timestamp`,
`to_timestamp`). A frame of episode e at `timestamp` t is the video frame shown at
`from_timestamp + t` (LeRobot's reader matches within a tolerance of 1e-4 s).

We encode with libx264 in yuv420p (H.264 is decoded everywhere, including torchcodec and the
browsers of the dataset visualiser; LeRobot's own default is libsvtav1), a keyframe every
`gop` frames (LeRobot uses 2: cheap random access for training), constant quality `crf`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["VideoSettings", "Mp4Shard", "decode_frames", "probe_video"]

# LeRobot's default tolerance when it matches a query timestamp to a decoded frame.
TOLERANCE_S = 1e-4


# encoder -> the codec name LeRobot records (the stream's canonical name), and its preset when none is given
CODEC_NAMES = {"libx264": "h264", "libsvtav1": "av1", "libx265": "hevc"}
DEFAULT_PRESETS = {"libx264": "veryfast", "libsvtav1": "12", "libx265": "veryfast"}


@dataclass(frozen=True)
class VideoSettings:
    """Encoder settings for every camera stream (recorded in info.json under each video feature).

    `codec` "libx264" (default) or "libsvtav1" (AV1, LeRobot's own default: smaller, slower to encode);
    `preset` defaults to the codec's fast one (x264 "veryfast", SVT-AV1 "12" as LeRobot uses)."""

    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    crf: int = 10
    gop: int = 2
    preset: str | None = None

    @property
    def encoder_preset(self) -> str:
        return self.preset or DEFAULT_PRESETS.get(self.codec, "medium")

    def info(self, fps: int, height: int, width: int) -> dict[str, Any]:
        """The `info` block LeRobot writes for a video feature (keys as in its `get_video_info`)."""
        return {
            "video.height": height,
            "video.width": width,
            "video.codec": CODEC_NAMES.get(self.codec, self.codec),
            "video.pix_fmt": self.pix_fmt,
            "video.fps": fps,
            "video.channels": 3,
            "video.g": self.gop,
            "video.crf": self.crf,
            "video.preset": self.encoder_preset,
            "is_depth_map": False,
            "has_audio": False,
        }


@dataclass
class Mp4Shard:
    """One open `file-FFF.mp4` of one camera: append episodes' frames, then `close()`.

    Frames get presentation times frame_count / fps, so an episode appended after n frames
    starts at n / fps (its `from_timestamp`).
    """

    path: Path
    fps: int
    settings: VideoSettings
    frames: int = 0
    _container: Any = field(default=None, repr=False)
    _stream: Any = field(default=None, repr=False)

    def append(self, images: np.ndarray) -> tuple[float, float]:
        """Encode uint8 (T, H, W, 3) frames; returns the episode's (from_timestamp, to_timestamp)."""
        import av

        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"{self.path}: frames must be uint8 (T, H, W, 3), got {images.dtype} {images.shape}")
        if self._container is None:
            h, w = images.shape[1:3]
            if self.settings.pix_fmt == "yuv420p" and (h % 2 or w % 2):
                raise ValueError(f"{self.path}: yuv420p needs even frame sizes, got {w}x{h}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self.path), mode="w")
            stream = self._container.add_stream(self.settings.codec, rate=self.fps)
            stream.width, stream.height = w, h
            stream.pix_fmt = self.settings.pix_fmt
            stream.time_base = Fraction(1, self.fps)
            stream.options = {"crf": str(self.settings.crf), "g": str(self.settings.gop), "preset": self.settings.encoder_preset}
            self._stream = stream
        elif images.shape[1:3] != (self._stream.height, self._stream.width):
            raise ValueError(
                f"{self.path}: frame size {images.shape[2]}x{images.shape[1]} differs from the stream's "
                f"{self._stream.width}x{self._stream.height}"
            )
        start = self.frames
        for img in images:
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = self.frames
            frame.time_base = Fraction(1, self.fps)
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
            self.frames += 1
        return start / self.fps, self.frames / self.fps

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None

    def abort(self) -> None:
        """Close without caring about the file (the staging folder is deleted anyway)."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file is discarded
                pass
            self._container = None


def decode_frames(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All frames of an mp4 as uint8 (N, H, W, 3) RGB and their presentation times (s), in time order."""
    import av

    frames, times = [], []
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.time))
    if not frames:
        raise ValueError(f"{path}: holds no video frames")
    order = np.argsort(times, kind="stable")
    return np.stack(frames)[order], np.asarray(times)[order]


def probe_video(path: Path) -> dict[str, Any]:
    """Codec, pixel format, size, frame rate and frame count of an mp4's first video stream."""
    import av

    with av.open(str(path)) as container:
        s = container.streams.video[0]
        return {"codec": s.codec_context.name, "pix_fmt": s.pix_fmt, "width": s.width, "height": s.height,
                "fps": float(s.average_rate or s.base_rate), "frames": int(s.frames)}
