"""Figures: rate plots (log-log with fitted slope, confidence band, predicted slope) and loss curves.

Only matplotlib's object API is used (no global state), with the Agg backend when no display is set,
so figures can be drawn from scripts, tests and CI alike.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sde_scales.atomic import atomic_path  # noqa: E402
from sde_scales.rates import ExponentEstimate  # noqa: E402

__all__ = ["rate_plot", "save_figure"]


def rate_plot(series, *, predicted: float | None = None, predicted_label: str | None = None, xlabel: str = r"width $n$",
              ylabel: str = "", title: str = "", ax=None):
    """Log-log rate plot of one or several measured series.

    ``series``: an :class:`ExponentEstimate`, or a list of ``(estimate, label)``. Each series gets
    its points (standard-error bars where known), its fitted line, and the band of slopes inside its
    confidence interval (pivoting about the geometric centre of its data); the predicted slope is
    drawn dashed through the centre of the first series. The legend names every line; the verdict
    and its rule belong in the caption or the JSON, not in the figure."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    if isinstance(series, ExponentEstimate):
        series = [(series, "measured")]
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.4, 4.0), constrained_layout=True)
    else:
        fig = ax.figure
    centre = None
    for i, (est, label) in enumerate(series):
        color = f"C{i}"
        x, y = est.x, est.values
        err = np.where(np.isfinite(est.errors), est.errors, 0.0)
        ok = y > 0
        ax.errorbar(x[ok], y[ok], yerr=err[ok], fmt="o", color=color, ms=4.5, capsize=3)
        xx = np.geomspace(x.min(), x.max(), 50)
        lx0 = np.log(x).mean()
        ly0 = est.intercept + est.exponent * lx0
        if centre is None:
            centre = (lx0, ly0, xx)
        ax.plot(xx, np.exp(ly0 + est.exponent * (np.log(xx) - lx0)), color=color,
                label=f"{label}: slope {est.exponent:+.2f} [{est.ci[0]:+.2f}, {est.ci[1]:+.2f}]")
        band = np.exp(ly0 + np.outer(est.ci, np.log(xx) - lx0))
        ax.fill_between(xx, band.min(axis=0), band.max(axis=0), color=color, alpha=0.15, lw=0)
    if predicted is not None and centre is not None:
        lx0, ly0, xx = centre
        ax.plot(xx, np.exp(ly0 + predicted * (np.log(xx) - lx0)), "--", color="k", lw=1.2,
                label=predicted_label or f"predicted slope {predicted:g}")
    pow2 = all(np.allclose(np.log2(e.x), np.round(np.log2(e.x))) for e, _ in series)
    ax.set_xscale("log", base=2 if pow2 else 10)
    ax.set_yscale("log")
    if pow2:  # widths on a doubling grid: label them as plain numbers (64, 128, ...)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=6))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best", title="shaded: 95% interval of the slope", title_fontsize=7)
    ax.grid(True, which="major", alpha=0.3)
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` atomically (temporary file, then rename) and close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=130)
    finally:
        plt.close(fig)
    return Path(path)
