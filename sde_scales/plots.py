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


def rate_plot(est: ExponentEstimate, *, predicted: float | None = None, title: str = "", xlabel: str = "width n",
              ylabel: str = "", verdict: str | None = None, ax=None):
    """Log-log plot of the measured points (with standard-error bars), the fitted line, the band
    of slopes inside the confidence interval (pivoting about the geometric centre of the data), and
    the predicted slope through the same centre."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 4.0), constrained_layout=True)
    else:
        fig = ax.figure
    x, y = est.x, est.values
    err = np.where(np.isfinite(est.errors), est.errors, 0.0)
    ok = y > 0
    ax.errorbar(x[ok], y[ok], yerr=err[ok], fmt="o", color="C0", ms=5, capsize=3, label="measured")
    xx = np.geomspace(x.min(), x.max(), 50)
    lx0 = np.log(x).mean()
    ly0 = est.intercept + est.exponent * lx0
    ax.plot(xx, np.exp(ly0 + est.exponent * (np.log(xx) - lx0)), color="C0",
            label=f"fit: slope {est.exponent:.3f} [{est.ci[0]:.3f}, {est.ci[1]:.3f}]")
    lo = np.exp(ly0 + np.outer(est.ci, np.log(xx) - lx0))
    ax.fill_between(xx, lo.min(axis=0), lo.max(axis=0), color="C0", alpha=0.15,
                    label=f"{int(round(est.confidence * 100))}% interval of the slope")
    if predicted is not None:
        ax.plot(xx, np.exp(ly0 + predicted * (np.log(xx) - lx0)), "--", color="C3", label=f"predicted slope {predicted:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if verdict:
        title = f"{title}  [{verdict}]" if title else verdict
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` atomically (temporary file, then rename) and close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=130)
    finally:
        plt.close(fig)
    return Path(path)
