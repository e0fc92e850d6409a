"""Learning curves of runs as a PNG (``skillstack plot``)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from common.atomic import atomic_savefig
from policies.training.run_files import read_eval_log

__all__ = ["plot_runs"]

_TITLES = {"success_rate": "success rate", "safety_cost": "safety cost / episode",
           "coverage": "cube-displacement coverage (2 cm cells)"}


def plot_runs(
    runs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], labels: Sequence[str] | None = None
) -> Path:
    """Plot the evaluation curves of runs to a PNG (written atomically); returns its path.

    Panels: success rate; the episodic return of every reward term (each critic's
    return); safety cost per episode; coverage when the runs discover skills.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if labels is not None and len(labels) != len(runs):
        raise ValueError(f"{len(labels)} labels for {len(runs)} runs")
    data = [(labels[i] if labels else Path(r).name, read_eval_log(r)) for i, r in enumerate(runs)]
    terms = sorted({k for _, rows in data for row in rows for k in row.get("returns", {})})
    has_cov = any("coverage" in row for _, rows in data for row in rows)
    panels = ["success_rate", *[f"return:{t}" for t in terms], "safety_cost"] + (["coverage"] if has_cov else [])
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.2 * nrows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for label, rows in data:
            steps = [r["step"] for r in rows]
            if panel.startswith("return:"):
                ys = [r.get("returns", {}).get(panel[7:], float("nan")) for r in rows]
                ax.set_title(f"return of term '{panel[7:]}' (its critic)")
            else:
                ys = [r.get(panel, float("nan")) for r in rows]
                ax.set_title(_TITLES[panel])
            ax.plot(steps, ys, marker="o", ms=3, label=label)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return atomic_savefig(fig, out, format="png", dpi=100)
