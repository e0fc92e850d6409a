"""PNG plot of a segmentation: the loss curve with detected (and, when known, true) boundaries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_segments"]


def plot_segments(episodes: Sequence[Any], out: str | Path, *, max_episodes: int = 4, title: str | None = None,
                  gap: float | str | None = None, phase_names: Sequence[Sequence[str] | None] | None = None) -> Path:
    """One panel per episode (up to `max_episodes`): loss_t (nats), detected boundaries (solid red,
    ▲ marks gripper-event boundaries), true phase changes (dashed green) and coloured skill-type bands.

    `episodes` are `EpisodeSegments` or their JSON dicts. Written atomically as PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from common.atomic import atomic_savefig

    eps = [e.to_json() if hasattr(e, "to_json") else e for e in episodes][:max_episodes]
    if not eps:
        raise ValueError("plot_segments: no episodes to plot")
    fig, axes = plt.subplots(len(eps), 1, figsize=(10, 2.4 * len(eps) + 0.6), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for i, (ax, ep) in enumerate(zip(axes[:, 0], eps)):
        loss = np.asarray(ep["loss"], dtype=float)
        t = np.arange(len(loss))
        for seg in ep["segments"]:
            k = int(seg["skill_type"])
            if k >= 0:
                ax.axvspan(seg["start"] - 0.5, seg["end"] - 0.5, color=cmap(k % 10), alpha=0.12, lw=0)
        ax.plot(t, loss, color="black", lw=1.2, label="loss $-\\log p(a_t|o_{\\leq t})$")
        top = float(loss.max()) if len(loss) else 1.0
        sources = ep.get("boundary_sources") or ["loss"] * len(ep["boundaries"])
        marked = False
        for j, b in enumerate(ep["boundaries"]):
            ax.axvline(b, color="tab:red", lw=1.6, label="detected" if j == 0 else None)
            if sources[j] == "event":
                ax.plot([b], [top * 1.05], marker="v", color="tab:red", ms=6, ls="none",
                        label=None if marked else "boundary from gripper event")
                marked = True
        for j, b in enumerate(ep.get("true_boundaries") or []):
            ax.axvline(b, color="tab:green", ls="--", lw=1.4, label="true (expert phase)" if j == 0 else None)
        names = phase_names[i] if phase_names and i < len(phase_names) else None
        if names and ep.get("true_boundaries") is not None:
            edges = [0, *ep["true_boundaries"], len(loss)]
            for s, e, nm in zip(edges[:-1], edges[1:], names):
                ax.text((s + e - 1) / 2, top * 1.16, nm, ha="center", va="bottom", fontsize=7, color="tab:green")
        ax.set_xlim(-0.5, len(loss) - 0.5)
        ax.set_ylim(min(0.0, float(loss.min()) if len(loss) else 0.0), top * 1.3 + 1e-6)
        src = " (actions from inverse dynamics)" if ep.get("actions_inferred") else ""
        ax.set_title(f"{ep['name']}{src}: {len(ep['boundaries'])} detected"
                     + (f", {len(ep['true_boundaries'])} true" if ep.get("true_boundaries") is not None else ""), fontsize=9)
        ax.set_ylabel("nats")
        ax.grid(alpha=0.25)
    handles: dict[str, Any] = {}
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    axes[-1, 0].set_xlabel("step (25 Hz)")
    head = 0.0
    if title or gap is not None:
        shown = "" if gap is None else f"   gap = {gap}" if isinstance(gap, str) else f"   gap = {gap:.2f} nats"
        fig.suptitle((title or "") + shown, fontsize=10, y=0.995)
        head = 0.35
    fig.legend(list(handles.values()), list(handles.keys()), loc="upper center", ncol=len(handles), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 1.0 - head / fig.get_figheight()))
    fig.tight_layout(rect=(0, 0, 1, 1.0 - (head + 0.12) / fig.get_figheight()))
    return atomic_savefig(fig, out, format="png", dpi=110)
