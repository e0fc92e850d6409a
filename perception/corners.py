"""Sub-pixel marker corners from the marker's four outer edges.

OpenCV's corner refinements (cv2.cornerSubPix and friends) pull a marker's corners about half a
pixel into the black square on small rendered or real markers (measured on the scene camera: the
marker looks 1.5 % small, which PnP turns into a 1 % depth error, 7 mm at 0.65 m). The edges
themselves are better measured: along each side, intensity profiles across the edge give where it
crosses the half-way level between the black border and the white quiet zone; a line fitted
through those points per side, and the intersections of adjacent lines, are the corners
(0.14 px mean corner error against the true projection in the same scenes).
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_CONTRAST = 20.0  # grey levels between border and quiet zone for an edge sample to count


def refine_corners_by_edges(grey: np.ndarray, quad: np.ndarray, samples: int = 10, half_width: float = 2.5,
                            step: float = 0.25, max_shift: float = 3.0) -> np.ndarray:
    """Corners (4, 2) of a dark square on a light surround, refined from its edges; `quad` is the
    detector's estimate (detector order). Returns `quad` unchanged when an edge cannot be measured
    (occlusion, low contrast) or the refinement would move a corner by more than `max_shift` px."""
    g = grey if grey.dtype == np.float32 else grey.astype(np.float32)
    centre = quad.mean(axis=0)
    offsets = np.arange(-half_width, half_width + 1e-9, step)
    along = np.linspace(0.2, 0.8, samples)  # keep away from the corners, where two edges mix
    lines = []
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        d = b - a
        length = float(np.hypot(*d))
        if length < 4.0:
            return quad
        normal = np.array([d[1], -d[0]]) / length
        if np.dot(normal, 0.5 * (a + b) - centre) < 0:
            normal = -normal  # outward: dark -> light along +offset
        pts = a + along[:, None, None] * d + offsets[None, :, None] * normal  # (samples, n_offsets, 2)
        prof = cv2.remap(g, pts[..., 0].astype(np.float32), pts[..., 1].astype(np.float32), cv2.INTER_LINEAR)
        lo, hi = prof.min(axis=1), prof.max(axis=1)
        mid = 0.5 * (lo + hi)[:, None]
        up = prof >= mid
        rising = ~up[:, :-1] & up[:, 1:]
        # per profile, the dark-to-light crossing nearest the detector's edge
        j = np.where(rising, np.abs(offsets[:-1]), np.inf).argmin(axis=1)
        rows = np.arange(samples)
        ok = rising[rows, j] & (hi - lo >= MIN_CONTRAST)
        v0, v1 = prof[rows, j], prof[rows, j + 1]
        e = offsets[j] + step * (mid[:, 0] - v0) / np.where(ok, v1 - v0, 1.0)
        edge_pts = (a + along[:, None] * d + e[:, None] * normal)[ok]
        if len(edge_pts) < 3:
            return quad
        c = edge_pts.mean(axis=0)
        direction = np.linalg.svd(edge_pts - c)[2][0]
        lines.append((c, direction))
    out = np.empty_like(quad)
    for i in range(4):
        (c1, d1), (c2, d2) = lines[(i - 1) % 4], lines[i]
        A = np.column_stack((d1, -d2))
        if abs(np.linalg.det(A)) < 1e-6:
            return quad
        t = np.linalg.solve(A, c2 - c1)
        out[i] = c1 + t[0] * d1
    if np.max(np.linalg.norm(out - quad, axis=1)) > max_shift:
        return quad
    return out
