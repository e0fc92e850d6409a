"""The bag section of `skillstack bench demos`: a franka_ros2-style ROS 2 bag imported through the fr3 profile.

A bag of `--bag-seconds` (default 10 minutes) is generated in the run (`demos.bag_synth`:
the arm's JointState at 1 kHz, the gripper's at 50 Hz, an object PoseStamped and a tf object at
30 Hz, a JPEG camera at 30 Hz of `--bag-image` pixels) in sqlite3 storage. Measured, best of
`--repeats`:

- the baseline: reading the raw bag with rosbags (every message read and deserialised, nothing
  else): what any importer built on rosbags must spend,
- `import_bag(bag, out, profile="fr3")`: merge, resample, poses, images, observation, HDF5 write.

Reported: seconds, messages/s, the import's ratio to the raw read, and the recording's length over
the import time (above 1: a bag imports faster than it took to record), with the sizes on disk.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the bag section."""
    parser.add_argument("--bag-seconds", type=float, default=600.0, help="length of the generated bag (default: 600 s; 0 skips it)")
    parser.add_argument("--bag-image", default="64x48", help="camera frame size WxH in the bag (default: 64x48)")


def _raw_read(bag: Path) -> tuple[float, int]:
    """Seconds to read and deserialise every message with rosbags, and the message count."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    n = 0
    t0 = time.perf_counter()
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        for conn, _, raw in reader.messages():
            reader.deserialize(raw, conn.msgtype)
            n += 1
    return time.perf_counter() - t0, n


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any] | None:
    """Generate the bag, time the raw read and the import; None when --bag-seconds is 0."""
    from demos import import_bag
    from demos.bag_synth import write_franka_bag

    if args.bag_seconds <= 0:
        return None
    w, h = (int(v) for v in args.bag_image.lower().split("x"))
    bag = tmp / "franka_bag"
    t0 = time.perf_counter()
    write_franka_bag(bag, args.bag_seconds, image_shape=(h, w))
    write_s = time.perf_counter() - t0
    raw_s, import_s = float("inf"), float("inf")
    messages, samples = 0, 0
    out = tmp / "franka_bag.hdf5"
    for _ in range(max(1, args.repeats)):
        s, messages = _raw_read(bag)
        raw_s = min(raw_s, s)
        t0 = time.perf_counter()
        res = import_bag(bag, out, profile="fr3", overwrite=True)
        import_s = min(import_s, time.perf_counter() - t0)
        samples = sum(res.samples)
    return {
        "recorded_s": args.bag_seconds,
        "image": [w, h],
        "messages": messages,
        "bag_bytes": _size(bag),
        "hdf5_bytes": _size(out),
        "samples": samples,
        "write_bag_s": write_s,
        "raw_read_s": raw_s,
        "raw_read_messages_per_s": messages / raw_s,
        "import_s": import_s,
        "import_messages_per_s": messages / import_s,
        "import_vs_raw_read": raw_s / import_s,
        "recorded_over_import": args.bag_seconds / import_s,
        "faster_than_recorded": import_s < args.bag_seconds,
    }


def print_result(r: dict[str, Any]) -> None:
    """The bag section of the table."""
    mb = 1024 * 1024
    rows = [
        (f"bag: {r['recorded_s']:g} s franka_ros2-style, {r['messages']} messages, {r['image'][0]}x{r['image'][1]} JPEG",
         f"{r['bag_bytes'] / mb:.1f} MiB sqlite3 -> {r['hdf5_bytes'] / mb:.1f} MiB HDF5 ({r['samples']} samples at 25 Hz)"),
        ("  raw rosbags read + deserialise (baseline)", f"{r['raw_read_s']:.1f} s ({r['raw_read_messages_per_s']:.0f} msg/s)"),
        ("  import --profile fr3", f"{r['import_s']:.1f} s ({r['import_messages_per_s']:.0f} msg/s; "
                                   f"{r['import_vs_raw_read']:.2f} x the raw read's rate)"),
        ("  recorded time / import time", f"{r['recorded_over_import']:.1f}  (goal > 1: {'met' if r['faster_than_recorded'] else 'NOT met'})"),
    ]  # fmt: skip
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"  {a:<{width}}  {b}")
