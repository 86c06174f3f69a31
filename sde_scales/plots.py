"""Figures: rate plots (log-log with fitted slope, confidence band, predicted slope) and loss curves.

Only matplotlib's object API is used (no global state), with the Agg backend when no display is set,
so figures can be drawn from scripts, tests and CI alike.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sde_scales.atomic import atomic_path  # noqa: E402
from sde_scales.rates import ExponentEstimate  # noqa: E402

__all__ = ["convergence_plot", "law_comparison", "rate_plot", "save_figure", "wrap_label"]


#: Characters per line of an axis label beside a panel of the default size (about 3.5 in tall at
#: 10 pt): a longer label ran off the figure ("... (evaluation b").
LABEL_WIDTH = 44


def wrap_label(text: str, width: int = LABEL_WIDTH) -> str:
    """``text`` broken into lines of at most ``width`` characters at spaces, never inside a
    ``$...$`` math span (a span cut in two is no valid mathtext); a word or span longer than
    ``width`` keeps a line of its own."""
    words, cur, inside = [], "", False
    for ch in text:
        if ch == "$":
            inside = not inside
        if ch == " " and not inside:
            if cur:
                words.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    lines: list[str] = []
    for w in words:
        if lines and len(lines[-1]) + 1 + len(w) <= width:
            lines[-1] += " " + w
        else:
            lines.append(w)
    return "\n".join(lines)


def rate_plot(series, *, predicted: float | None = None, predicted_label: str | None = None, xlabel: str = r"width $n$",
              ylabel: str = "", title: str = "", ax=None):
    """Log-log rate plot of one or several measured series.

    ``series``: an :class:`ExponentEstimate`, or a list of ``(estimate, label)``. Each series gets
    its points (standard-error bars where known), its fitted line, and the band of slopes inside its
    confidence interval (pivoting about the geometric centre of its data); the predicted slope is
    drawn dashed through the centre of the first series. The legend names every line; the verdict
    and its rule belong in the caption or the JSON, not in the figure.

    A value a log axis cannot show (a bias of exactly 0, or one that is not finite) is not drawn;
    the series' legend entry says how many were left out, and a :class:`UserWarning` names them."""
    from matplotlib.ticker import LogLocator

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
        ok = np.isfinite(y) & (y > 0)
        ax.errorbar(x[ok], y[ok], yerr=err[ok], fmt="o", color=color, ms=4.5, capsize=3)
        left_out = ""
        if not ok.all():
            bad = ", ".join(f"n = {n:g}: {v:.3g}" for n, v in zip(x[~ok], y[~ok]))
            warnings.warn(f"rate_plot: series {label!r} has {int((~ok).sum())} value(s) a log axis cannot show "
                          f"({bad}); they are not drawn, and its legend entry says so", stacklevel=2)
            left_out = f" ({int((~ok).sum())} of {y.size} points <= 0 or not finite, not drawn)"
        xx = np.geomspace(x.min(), x.max(), 50)
        lx0 = np.log(x).mean()
        ly0 = est.intercept + est.exponent * lx0
        if centre is None:
            centre = (lx0, ly0, xx)
        ax.plot(xx, np.exp(ly0 + est.exponent * (np.log(xx) - lx0)), color=color,
                label=f"{label}: slope {est.exponent:+.2f} [{est.ci[0]:+.2f}, {est.ci[1]:+.2f}]{left_out}")
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
        width_ticks(ax.xaxis)
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=6))
    if not pow2:  # another x (a time scale, say): within two decades 0.02, 0.05, 0.1, not 3 x 10^-2 run together
        plain_log_ticks(ax.xaxis)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(wrap_label(ylabel))
    if title:
        ax.set_title(title, fontsize=9)
    bars = any(np.any(np.isfinite(e.errors) & (e.errors > 0)) for e, _ in series)
    per = "per width" if "width" in xlabel else "one per measured value"  # the x of a delay row is a time scale
    ax.legend(fontsize=7, loc="best", title_fontsize=7,
              title=f"points: {per}" + (", bars: one standard error" if bars else "")
              + "; shaded: 95% interval of the slope")
    ax.grid(True, which="major", alpha=0.3)
    plain_log_ticks(ax.yaxis)  # a series within a decade or two: plain numbers, not 6 x 10^-2
    return fig


_ERROR_LABELS = {
    "strong": r"strong error $E\,\Vert X^{\Delta t}_T - X_T \Vert$",
    "weak": r"weak error $|E[\varphi(X^{\Delta t}_T) - \varphi(X_T)]|$",
}


def convergence_plot(study, *, expected: dict | None = None, z: float | None = None):
    r"""Strong and weak errors of a :class:`~sde_scales.sde.convergence.ConvergenceStudy` against
    the step size, one panel each, on log-log axes with :math:`\Delta t` in powers of two.

    Each panel: the mean error per step size with one Monte-Carlo standard error (hollow where the
    error is within ``z`` standard errors of zero: such levels are not judged), the least-squares
    line with its slope and 95% interval in the legend, the band of slopes inside that interval, and,
    where ``expected`` gives the claimed order for the panel (``{"strong": p, "weak": q}``), a
    dashed line of that slope through the finest resolved point. ``z`` defaults to the verdicts'
    own (:data:`~sde_scales.sde.convergence.ORDER_Z`), so that the hollow points are the levels
    :meth:`~sde_scales.sde.convergence.OrderEstimate.judge` does not judge. The verdicts belong in
    the caption or the JSON, not in the figure."""
    from matplotlib.ticker import NullFormatter

    from sde_scales.sde.convergence import ORDER_Z

    z = ORDER_Z if z is None else z

    fig, axes = plt.subplots(1, 2, figsize=(9.0, 5.0), constrained_layout=True)
    expected = expected or {}
    h = np.asarray(study.dts, float)
    for ax, kind in zip(axes, ("strong", "weak")):
        est = getattr(study, kind)
        e = np.asarray(getattr(study, f"{kind}_error"), float)
        se = np.asarray(getattr(study, f"{kind}_se"), float)
        ok = e > 0
        resolved = ok & (np.asarray(est.resolution) >= z) if len(est.resolution) == len(e) else ok
        lower = np.minimum(se, 0.999 * e)  # a bar below zero cannot be drawn on a log axis
        for mask, face, label in ((resolved, "C0", "error per step size"),
                                  (ok & ~resolved, "white", f"within {z:g} standard errors of zero (not judged)")):
            if mask.any():
                ax.errorbar(h[mask], e[mask], yerr=[lower[mask], se[mask]], fmt="o", color="C0", mfc=face, ms=5,
                            capsize=3, label=label)
        if ok.sum() >= 2:
            lh, le = np.log(h[ok]), np.log(e[ok])
            lx0, ly0 = lh.mean(), le.mean()
            xx = np.geomspace(h.min(), h.max(), 50)
            ci = (f" [{est.ci[0]:.2f}, {est.ci[1]:.2f}]" if np.all(np.isfinite(est.ci)) else " (no interval)")
            ax.plot(xx, np.exp(ly0 + est.order * (np.log(xx) - lx0)), color="C0", lw=1.2,
                    label=f"fitted slope {est.order:.2f}{ci}")
            if np.all(np.isfinite(est.ci)):
                band = np.exp(ly0 + np.outer(est.ci, np.log(xx) - lx0))
                ax.fill_between(xx, band.min(axis=0), band.max(axis=0), color="C0", alpha=0.15, lw=0)
            p = expected.get(kind)
            anchor = np.flatnonzero(resolved if resolved.any() else ok)
            if p is not None and anchor.size:
                k = anchor[-1]  # the finest resolved step size
                ax.plot(xx, e[k] * (xx / h[k]) ** p, "--", color="k", lw=1.1, label=f"claimed order {p:g}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
        # from the axis as drawn, bars included: a bar that reaches near zero stretched the axis over
        # five decades, each labelled at 1, 2 and 5 (judged from the points alone), and the labels ran
        # into each other; beyond two decades the powers of ten alone are labelled
        plain_log_ticks(ax.yaxis)
        ax.set_xlabel(r"step size $\Delta t$")
        ax.set_ylabel(_ERROR_LABELS[kind])
        ax.set_title(f"{kind} error", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), title_fontsize=7,
                  title=f"bars: one standard error ({study.n_paths} paths)\nshaded: 95% interval of the slope")
    fig.suptitle(f"{study.problem_name} / {study.solver!r}, reference: {study.reference}", fontsize=9)
    return fig


def width_ticks(axis) -> None:
    """A base-2 log ``axis`` of widths labelled as plain numbers (64, 128, ...), not 2^6, 2^7."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())


def plain_log_ticks(axis) -> None:
    """On a log ``axis`` (``ax.yaxis``, ``ax.xaxis``) whose limits span less than two decades,
    label ticks at 1, 2 and 5 times each power of ten (and 1.5, 3 and 7 within one decade) in
    plain numbers (0.5, 1, 2, 5): within a decade matplotlib labels its minor ticks in scientific
    notation (3 x 10^0), which a reader of a printed figure should not have to decode. Call it
    after the data are drawn."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.axes.autoscale_view()
    lo, hi = sorted(axis.get_view_interval())
    if not (lo > 0 and hi / lo < 100):
        return
    # within a decade 1, 2 and 5 leave two labels: add 1.5, 3 and 7
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if hi / lo >= 10 else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` atomically (temporary file, then rename) and close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=130)
    finally:
        plt.close(fig)
    return Path(path)


def law_comparison(rows: list[dict], *, title: str = ""):
    r"""Held-out final-loss errors of several laws on several protocols, with what resolves them.

    ``rows``: one dict per (protocol, law) with ``protocol``, ``law`` and ``splits``, each split a
    scored held-out curve with ``final_loss_err``, ``final_loss_pred_sd`` (the band of the fit's
    parameters) and ``final_loss_noise`` (the observed final loss's standard error). One panel per
    protocol; per law a bar of the mean |final-loss error| with an error bar of 1.96 times the
    mean band, and the share of held-out curves within the combined 95% band written beside it.
    The shaded strip is 1.96 times the mean standard error of the observed final losses: errors and
    differences inside it are not resolved by the curves."""
    protocols = list(dict.fromkeys(r["protocol"] for r in rows))
    laws = list(dict.fromkeys(r["law"] for r in rows))
    fig, axes = plt.subplots(1, len(protocols), figsize=(3.3 * len(protocols) + 1.6, 0.32 * len(laws) + 1.4),
                             sharey=True, constrained_layout=True, squeeze=False)
    for ax, prot in zip(axes[0], protocols):
        mine = {r["law"]: r for r in rows if r["protocol"] == prot}
        noise = [s["final_loss_noise"] for r in mine.values() for s in r["splits"]
                 if s.get("final_loss_noise") is not None]
        if noise:
            ax.axvspan(0, 1.96 * float(np.mean(noise)), color="0.85", lw=0,
                       label="1.96 x s.e. of the observed final loss")
        errs = {law: float(np.mean([abs(s["final_loss_err"]) for s in r["splits"]])) for law, r in mine.items()}
        # the axis shows the errors and the noise strip; a band wider than that is cut at the edge
        # (its end marked with an arrow) rather than squeezing every bar into a corner
        limit = 1.15 * max(2.5 * max(errs.values()), 1.96 * float(np.mean(noise)) if noise else 0.0) or 1.0
        for i, law in enumerate(laws):
            r = mine.get(law)
            if r is None:
                continue
            err = errs[law]
            sds = [s["final_loss_pred_sd"] for s in r["splits"] if s.get("final_loss_pred_sd") is not None]
            band = 1.96 * float(np.mean(sds)) if sds else 0.0
            ax.barh(i, err, color="C0", height=0.6)
            if sds:
                ax.errorbar(err, i, xerr=min(band, 0.97 * limit - err), fmt="none", ecolor="k", capsize=2, lw=0.8)
                if err + band > 0.97 * limit:
                    ax.annotate("", (limit, i), (0.97 * limit, i), arrowprops=dict(arrowstyle="->", lw=0.8))
            zs = [s["final_err_z"] for s in r["splits"] if s.get("final_err_z") is not None]
            if zs:
                ax.text(min(err + band, 0.8 * limit), i - 0.3, f" {np.mean(np.abs(zs) <= 1.96):.0%}", va="center",
                        fontsize=6)
        ax.set_xlim(0, limit)
        ax.set_title(prot, fontsize=9)
        ax.set_xlabel("mean |final-loss error|")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(laws)), laws, fontsize=7)
    axes[0][0].invert_yaxis()
    handles = [plt.Rectangle((0, 0), 1, 1, color="0.85"), plt.Rectangle((0, 0), 1, 1, color="C0"),
               plt.Line2D([], [], color="k", lw=0.8)]
    fig.legend(handles, ["1.96 x standard error of the observed final loss (unresolved below)",
                         "mean |final-loss error| over held-out curves (% : share within the 95% band)",
                         "1.96 x mean standard deviation of the prediction from the fit's parameters"],
               loc="outside lower center", fontsize=7, ncol=1)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
