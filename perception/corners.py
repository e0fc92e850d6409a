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
PEAK_FRACTION = 0.15
_NEXT, _PREV = np.array([1, 2, 3, 0]), np.array([3, 0, 1, 2])


def refine_corners_by_edges(grey: np.ndarray, quad: np.ndarray, samples: int = 10, half_width: float = 2.5,
                            step: float = 0.25, max_shift: float = 3.0) -> np.ndarray:
    """Corners (4, 2) of a dark square on a light surround, refined from its edges; `quad` is the
    detector's estimate (detector order). Returns `quad` unchanged when an edge cannot be measured
    (occlusion, low contrast) or the refinement would move a corner by more than `max_shift` px.
    All four sides are measured at once (one remap), so a marker costs well under a millisecond."""
    g = grey if grey.dtype == np.float32 else grey.astype(np.float32)
    quad = np.asarray(quad, dtype=np.float64)
    a, d = quad, quad[_NEXT] - quad  # side i runs from corner i to corner i+1
    length = np.hypot(d[:, 0], d[:, 1])
    if np.any(length < 4.0):
        return quad
    normal = np.column_stack((d[:, 1], -d[:, 0])) / length[:, None]
    outward = np.einsum("ij,ij->i", normal, a + 0.5 * d - quad.mean(axis=0))
    normal[outward < 0] *= -1.0  # dark -> light along +offset
    offsets = np.arange(-half_width, half_width + 1e-9, step)
    along = np.linspace(0.2, 0.8, samples)  # keep away from the corners, where two edges mix
    base = a[:, None, :] + along[None, :, None] * d[:, None, :]  # (4, samples, 2) points on the detected sides
    pts = base[:, :, None, :] + offsets[None, None, :, None] * normal[:, None, None, :]
    prof = cv2.remap(g, pts[..., 0].reshape(4 * samples, -1).astype(np.float32),
                     pts[..., 1].reshape(4 * samples, -1).astype(np.float32), cv2.INTER_LINEAR)
    lo, hi = prof.min(axis=1), prof.max(axis=1)
    # The edge is where the profile is steepest: the centroid of its gradient over the peak (the part
    # above PEAK_FRACTION of the maximum). A blurred step's gradient is symmetric about the edge; the
    # soft shadow a raised marker casts on its surround only adds a weak tail, left out by the cut.
    grad = np.diff(prof, axis=1)
    peak = grad.max(axis=1, keepdims=True)
    wgt = np.where(grad >= PEAK_FRACTION * peak, grad, 0.0)
    ok = (hi - lo >= MIN_CONTRAST) & (peak[:, 0] > 0)
    e = (wgt * (offsets[:-1] + 0.5 * step)).sum(axis=1) / np.where(ok, wgt.sum(axis=1), 1.0)
    edge = base.reshape(-1, 2) + e[:, None] * np.repeat(normal, samples, axis=0)  # (4 * samples, 2)
    w = ok.reshape(4, samples).astype(np.float64)
    n = w.sum(axis=1)
    if np.any(n < 3):
        return quad
    edge = edge.reshape(4, samples, 2)
    c = (w[..., None] * edge).sum(axis=1) / n[:, None]  # per side: centroid and principal direction
    r = (edge - c[:, None, :]) * w[..., None]
    sxx, syy, sxy = (r[..., 0] ** 2).sum(1), (r[..., 1] ** 2).sum(1), (r[..., 0] * r[..., 1]).sum(1)
    theta = 0.5 * np.arctan2(2 * sxy, sxx - syy)
    u = np.column_stack((np.cos(theta), np.sin(theta)))
    # corner i is where side i-1 meets side i
    c1, u1, c2, u2 = c[_PREV], u[_PREV], c, u
    den = u1[:, 0] * u2[:, 1] - u1[:, 1] * u2[:, 0]
    if np.any(np.abs(den) < 1e-6):
        return quad
    diff = c2 - c1
    t = (diff[:, 0] * u2[:, 1] - diff[:, 1] * u2[:, 0]) / den
    out = c1 + t[:, None] * u1
    if np.max(np.linalg.norm(out - quad, axis=1)) > max_shift:
        return quad
    return out
