"""segments.json: per episode the boundary frame indices and the (start, end, skill type) segments.

```
{"format": "skillstack-segments", "version": 1, "sources": ["demos.hdf5"], "detector": {...},
 "video_detector": {...} or null,   # the rule run on episodes whose actions were labelled (video)
 "cameras": [...], "image_size": 64,
 "episodes": [{"name": "demo_0", "length": 50, "boundaries": [8, 12, ...],
               "segments": [{"start": 0, "end": 8, "skill_type": 2}, ...],   # end exclusive
               "boundary_sources": ["event", "loss", ...], "gripper_events": [8, 27],
               "actions_inferred": false, "loss": [...], "true_boundaries": [...]}]}
```
`true_boundaries` (expert phase changes) appears only when the input has phase labels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_bytes

__all__ = ["FORMAT", "read_segments", "write_segments"]

FORMAT = "skillstack-segments"


def write_segments(path: str | Path, episodes: Sequence[Any], meta: Mapping[str, Any] | None = None) -> Path:
    """Write `EpisodeSegments` (or their `to_json()` dicts) to `path` atomically."""
    eps = [e.to_json() if hasattr(e, "to_json") else dict(e) for e in episodes]
    doc = {"format": FORMAT, "version": 1, **dict(meta or {}), "episodes": eps}
    p = Path(path)
    atomic_write_bytes(p, json.dumps(doc, indent=1).encode())
    return p


def read_segments(path: str | Path) -> dict[str, Any]:
    """Read and check a segments.json file; ValueError names what is wrong."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such segments file")
    try:
        doc = json.loads(p.read_text())
    except ValueError as exc:
        raise ValueError(f"{p}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{p}: not a {FORMAT} file")
    for i, ep in enumerate(doc.get("episodes", [])):
        segs = ep.get("segments", [])
        n = ep.get("length")
        if not segs or segs[0]["start"] != 0 or segs[-1]["end"] != n:
            raise ValueError(f"{p}: episode {i} segments do not cover 0..{n}")
        for a, b in zip(segs[:-1], segs[1:]):
            if a["end"] != b["start"]:
                raise ValueError(f"{p}: episode {i} segments are not contiguous at {a['end']}")
        if [s["start"] for s in segs[1:]] != list(ep.get("boundaries", [])):
            raise ValueError(f"{p}: episode {i} boundaries do not match its segments")
    return doc
