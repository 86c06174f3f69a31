r"""Paired comparison of two predictions of the same held-out curves: which is better, or do the
curves not decide?

Two laws' predictions of one curve are scored against the same noisy target, so most of the
target's noise is common to both and cancels in their difference; what is left is computed here
exactly, under a stated noise model, instead of comparing two error figures whose difference may be
smaller than the noise.

Noise model (the one :func:`~sde_scales.fitting.fit.score` states): the logged loss is a smooth
curve plus per-point noise of standard deviation :math:`\sigma` (the robust level
:func:`~sde_scales.fitting.fit.noise_level` of the successive differences), independent between
points up to a variance inflation :math:`\kappa \ge 1` estimated from the curve (below).

RMSE against the centred moving average :math:`T_i = n_i^{-1}\sum_{j \in W_i} y_j`
    With :math:`\delta_i = a_i - b_i` on the :math:`N` scored rows, the difference of mean squared
    errors :math:`D = N^{-1}\sum_i \delta_i (a_i + b_i - 2T_i)` is linear in the loss, and its
    difference from its value against the noise-free average is
    :math:`-2N^{-1}\sum_j c_j \epsilon_j` with :math:`c_j = \sum_{i: j \in W_i} \delta_i / n_i`,
    so :math:`\mathrm{sd}(D) = 2\sigma\sqrt{\kappa}\,\lVert c \rVert_2 / N` (exact for
    independent noise). The RMSE difference is :math:`D / (\mathrm{RMSE}_a + \mathrm{RMSE}_b)`,
    its interval that of :math:`D` over the same sum (denominators as observed). The sign of
    :math:`D` is the sign of the RMSE difference, so the verdict (which prediction is closer to the
    noise-free moving average) has the interval's level exactly; the interval's ends are in RMSE
    units to first order only (the observed RMSEs hold the target's noise floor, the noise-free ones
    do not). A loss logged on a lattice of spacing :math:`q`
    (:func:`~sde_scales.fitting.fit.loss_resolution`) has rounding errors of at most :math:`q/2` per
    point that follow the curve instead of averaging out; they move :math:`D` by at most
    :math:`q\lVert c \rVert_1 / N`, which widens the interval as a bound (``rmse_diff_rounding``).
Final-loss error against the mean :math:`\bar y` of the last 5% of points
    The quantity compared is :math:`g(\mu) = |A - \mu| - |B - \mu|`, with :math:`A, B` the two
    predicted final losses and :math:`\mu` the final loss without noise. :math:`g` is monotone in
    :math:`\mu`, so its range over :math:`\mu \in \bar y \pm z\,s` (:math:`s` the standard error of
    :math:`\bar y`) is an interval with the coverage of that of :math:`\mu`. Where both
    predictions lie on one side of every plausible :math:`\mu` the difference is exact,
    :math:`\pm(A - B)`; where :math:`\mu` may lie between them, the curve cannot say which is
    closer.
Over several curves (:func:`compare_over_curves`)
    The held-out runs of one protocol often share a data order and hence much of their noise, so
    no independence between curves is assumed. The mean RMSE difference's half-width is
    :math:`z\sum_k \mathrm{sd}_k / K` (the standard deviation of a sum is at most the sum of the
    standard deviations, whatever the correlation), plus the mean of the curves' rounding bounds;
    the mean final-error difference's interval is its range over the box
    :math:`\mu_k \in \bar y_k \pm z_K s_k` with the Bonferroni
    :math:`z_K = \Phi^{-1}(1 - (1 - \text{level}) / 2K)`, simultaneous for any dependence. Both
    are conservative: "not separated" may be said where a finer model would separate.

The inflation :math:`\kappa`: the long-run variance of the noise (the variance of means of
blocks of half a window, times the block length) over :math:`\sigma^2`, the one from second
differences of the block means (:math:`E[(\Delta^2 \bar y)^2] = 6\,\mathrm{Var}` for independent
means), the other from successive differences of the points, so that a smooth trend barely enters
either; at least 1. It corrects :math:`\sigma` both for correlation between nearby points and for the way
successive differences understate correlated noise. Correlation over more than half a window is
seen only in part.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting.curves import LossCurve
from sde_scales.fitting.fit import final_loss_noise, final_rows, loss_resolution, noise_level, scored_rows

__all__ = ["compare_curves", "compare_over_curves", "compare_predictions", "compare_with_best", "format_difference",
           "noise_inflation"]

#: Verdicts of a comparison.
BETTER_A, BETTER_B, NOT_SEPARATED = "a better", "b better", "not separated"


def noise_inflation(curve: LossCurve, smooth_steps: int = 1000, keep: np.ndarray | None = None) -> float:
    r"""Variance inflation :math:`\kappa` of the loss noise from correlation between nearby points:
    the long-run variance over the variance :func:`~sde_scales.fitting.fit.noise_level` measures
    (1 for independent noise); see the module docstring."""
    lo, hi = curve.window_rows(smooth_steps)
    keep = np.ones(curve.step.size, dtype=bool) if keep is None else keep
    y = curve.loss[keep]
    n_bar = float(np.mean((hi - lo)[keep])) if keep.any() else 1.0
    b = min(int(round(n_bar / 2)), y.size // MIN_BLOCKS)
    if b < 2:
        return 1.0
    nb = y.size // b
    bm = y[: nb * b].reshape(nb, b).mean(axis=1)
    d2 = np.diff(bm, 2)  # second differences: a linear trend cancels, a curved one barely enters
    s2 = noise_level(y) ** 2
    v = (1.4826 * np.median(np.abs(d2 - np.median(d2)))) ** 2 / 6.0  # robust: a steep start is a few outliers
    return max(1.0, float(b * v / s2)) if s2 > 0 else 1.0


#: Fewest blocks :func:`noise_inflation` averages over (fewer: shorter blocks).
MIN_BLOCKS = 20


def _check(curve: LossCurve, pred: np.ndarray, what: str) -> np.ndarray:
    pred = np.asarray(pred, dtype=float)
    if pred.shape != curve.loss.shape:
        raise InvalidArgumentError(f"{what}: {pred.size} predictions for the {curve.loss.size} rows of {curve.name}; "
                                   f"predict every row of the curve")
    u = curve.untrained_rows()  # the initial loss is not scored: predict gives NaN there
    bad = np.flatnonzero(~np.isfinite(pred[u:])) + u
    if bad.size:
        raise InvalidArgumentError(f"{what}: prediction {float(pred[bad[0]])!r} at row {int(bad[0])} (step "
                                   f"{int(curve.step[bad[0]])}) of {curve.name}; a comparison needs finite predictions")
    return pred


def _interval(lo: float, hi: float) -> str:
    return BETTER_A if hi < 0 else BETTER_B if lo > 0 else NOT_SEPARATED


def compare_predictions(curve: LossCurve, pred_a: np.ndarray, pred_b: np.ndarray, *, skip_steps: int = 0,
                        smooth_steps: int = 1000, level: float = 0.95) -> dict:
    r"""Compare two predictions of ``curve`` (one value per row) in RMSE and in |final-loss error|.

    Parameters
    ----------
    curve : LossCurve
        The held-out curve both predictions are of.
    pred_a, pred_b : ndarray
        The two predictions, finite, one per row.
    skip_steps, smooth_steps : int
        As in :func:`~sde_scales.fitting.fit.score` (rows scored; the moving average's window).
    level : float
        Two-sided level of the intervals, in (0, 1).

    Returns
    -------
    dict
        ``rmse_a``, ``rmse_b``, ``rmse_diff`` (a minus b) and ``rmse_diff_sd`` (its standard
        deviation from the target's noise), ``rmse_diff_rounding`` (the bound on what the loss's
        rounding to ``loss_resolution`` moves it by, 0 for an unrounded loss),
        ``rmse_diff_interval`` and ``rmse_verdict``;
        ``final_err_a``, ``final_err_b`` (signed, against the observed final loss),
        ``abs_final_err_diff`` (:math:`|e_a| - |e_b|`), ``final_diff_interval`` (its range over the
        plausible noise-free final losses) and ``final_verdict``; ``sigma``, ``inflation``,
        ``final_loss_se`` and ``noise_model``. A verdict is ``"a better"``, ``"b better"`` or
        ``"not separated"``. Negative differences favour a.

    Raises
    ------
    InvalidArgumentError
        On predictions of the wrong length or not finite, no scored rows, or a level outside (0, 1).
    """
    if not 0.0 < level < 1.0:
        raise InvalidArgumentError(f"level={level!r}; give a two-sided level in (0, 1), e.g. 0.95")
    a = _check(curve, pred_a, "pred_a")
    b = _check(curve, pred_b, "pred_b")
    keep = scored_rows(curve, skip_steps)
    n_keep = int(keep.sum())
    target = curve.smoothed(smooth_steps)
    lo, hi = curve.window_rows(smooth_steps)
    ea, eb = (a - target)[keep], (b - target)[keep]
    ra, rb = float(np.sqrt(np.mean(ea**2))), float(np.sqrt(np.mean(eb**2)))
    kappa = noise_inflation(curve, smooth_steps, keep)
    sigma = noise_level(curve.loss)
    # c_j = sum over scored rows i whose window holds j of delta_i / n_i: a difference array, O(rows)
    w = np.where(keep, (a - b) / (hi - lo), 0.0)
    acc = np.zeros(curve.step.size + 1)
    np.add.at(acc, lo, w)
    np.add.at(acc, hi, -w)
    c = np.cumsum(acc)[:-1]
    d_sd = 2.0 * sigma * np.sqrt(kappa) * float(np.linalg.norm(c)) / n_keep
    # a loss logged on a lattice of spacing q carries rounding errors of at most q/2 per point,
    # correlated along a slow curve (not noise that averages out): they move D by at most
    # q ||c||_1 / N, added to the interval's half-width as a bound, not a standard deviation
    q = loss_resolution(curve.loss)
    d_round = q * float(np.sum(np.abs(c))) / n_keep
    z = float(stats.norm.ppf(0.5 + level / 2))
    denom = ra + rb
    r_diff = ra - rb
    r_sd = d_sd / denom if denom > 0 else 0.0
    r_round = d_round / denom if denom > 0 else 0.0
    r_int = [r_diff - z * r_sd - r_round, r_diff + z * r_sd + r_round]

    n_last = final_rows(curve.step.size)
    y_bar = float(np.mean(curve.loss[-n_last:]))
    se = final_loss_noise(curve.loss)
    se = None if se is None else se * np.sqrt(kappa)
    fa, fb = float(np.mean(a[-n_last:])), float(np.mean(b[-n_last:]))
    out = {
        "file": curve.name,
        "rmse_a": ra, "rmse_b": rb, "rmse_diff": r_diff, "rmse_diff_sd": float(r_sd),
        "rmse_diff_rounding": float(r_round), "loss_resolution": q,
        "rmse_diff_interval": [float(v) for v in r_int], "rmse_verdict": _interval(*r_int),
        "final_err_a": fa - y_bar, "final_err_b": fb - y_bar,
        "abs_final_err_diff": abs(fa - y_bar) - abs(fb - y_bar),
        "final_a": fa, "final_b": fb, "final_observed": y_bar, "final_loss_se": None if se is None else float(se),
        "sigma": float(sigma), "inflation": kappa, "level": level,
        "noise_model": "independent per-point noise of the successive differences' robust level, variance inflated "
                       "by the correlation of nearby points (sde_scales.fitting.compare)",
    }
    if se is None:
        out["final_diff_interval"], out["final_verdict"] = None, NOT_SEPARATED
    else:
        iv = _final_range(fa, fb, y_bar, z * float(se))
        out["final_diff_interval"], out["final_verdict"] = iv, _interval(*iv)
    return out


def _final_range(fa: float, fb: float, y_bar: float, half: float) -> list[float]:
    """Range of :math:`|f_a - \\mu| - |f_b - \\mu|` over :math:`\\mu \\in \\bar y \\pm` half (monotone in mu)."""
    g = [abs(fa - m) - abs(fb - m) for m in (y_bar - half, y_bar + half)]
    return [float(min(g)), float(max(g))]


def compare_over_curves(rows: list[dict], *, label_a: str = "a", label_b: str = "b", level: float = 0.95) -> dict:
    r"""Combine per-curve comparisons (:func:`compare_predictions`, at any level) into the mean
    differences over the curves with intervals valid whatever the correlation between the curves'
    noises (module docstring), and one verdict per metric.

    Returns
    -------
    dict
        ``curves``; ``mean_rmse_diff``, ``rmse_interval``, ``rmse_verdict``; ``mean_abs_final_err_diff``,
        ``final_interval``, ``final_verdict`` (null interval and "not separated" where a curve's
        final-loss standard error is unknown); the verdicts name ``label_a`` or ``label_b``.
    """
    if not rows:
        raise InvalidArgumentError("compare_over_curves needs at least one compared curve")
    if not 0.0 < level < 1.0:
        raise InvalidArgumentError(f"level={level!r}; give a two-sided level in (0, 1), e.g. 0.95")
    k = len(rows)
    z = float(stats.norm.ppf(0.5 + level / 2))
    r_mean = float(np.mean([r["rmse_diff"] for r in rows]))
    r_half = (z * float(np.sum([r["rmse_diff_sd"] for r in rows]))
              + float(np.sum([r["rmse_diff_rounding"] for r in rows]))) / k
    r_int = [r_mean - r_half, r_mean + r_half]
    f_mean = float(np.mean([r["abs_final_err_diff"] for r in rows]))
    if any(r["final_loss_se"] is None for r in rows):
        f_int = None
    else:
        zk = float(stats.norm.ppf(1.0 - (1.0 - level) / (2 * k)))
        ranges = [_final_range(r["final_a"], r["final_b"], r["final_observed"], zk * r["final_loss_se"]) for r in rows]
        f_int = [float(np.sum([g[0] for g in ranges]) / k), float(np.sum([g[1] for g in ranges]) / k)]
    name = {BETTER_A: f"{label_a} better", BETTER_B: f"{label_b} better", NOT_SEPARATED: NOT_SEPARATED}
    return {
        "a": label_a, "b": label_b, "curves": k, "level": level,
        "mean_rmse_diff": r_mean, "rmse_interval": [float(v) for v in r_int], "rmse_verdict": name[_interval(*r_int)],
        "mean_abs_final_err_diff": f_mean, "final_interval": f_int,
        "final_verdict": name[NOT_SEPARATED] if f_int is None else name[_interval(*f_int)],
        "method": "mean differences (a minus b) over the curves; RMSE half-width z times the sum of the curves' "
                  "standard deviations over their number, final-error range over Bonferroni boxes of the noise-free "
                  "final losses: valid for any correlation between the curves' noises",
    }


def compare_curves(curves: list[LossCurve], preds_a: list, preds_b: list, *, label_a: str = "a", label_b: str = "b",
                   skip_steps: int = 0, smooth_steps: int = 1000, level: float = 0.95) -> dict:
    """Two laws' predictions of the same curves (one array per curve, in order), compared curve by
    curve (:func:`compare_predictions`, kept under ``per_curve``) and combined
    (:func:`compare_over_curves`)."""
    if not (len(curves) == len(preds_a) == len(preds_b)):
        raise InvalidArgumentError(f"{len(preds_a)} predictions of {label_a} and {len(preds_b)} of {label_b} for "
                                   f"{len(curves)} curves; give one prediction per curve for each")
    per = [compare_predictions(c, a, b, skip_steps=skip_steps, smooth_steps=smooth_steps, level=level)
           for c, a, b in zip(curves, preds_a, preds_b)]
    return dict(compare_over_curves(per, label_a=label_a, label_b=label_b, level=level), per_curve=per)


def compare_with_best(rows: list[dict], held: list[LossCurve], preds: dict, baselines, *, skip_steps: int = 0,
                      smooth_steps: int = 1000, level: float = 0.95) -> list[dict]:
    """Each law of a protocol table against the best of ``baselines`` in mean RMSE and the best in
    mean |final-loss error|: is it worse, better, or not separated from it by the held-out curves?

    Parameters
    ----------
    rows : list of dict
        One per law: ``law`` (label), ``mean_rmse``, ``mean_abs_final_err``.
    held : list of LossCurve
        The held-out curves, in the order of each law's predictions.
    preds : dict
        Label -> list of predictions of ``held``; rows without predictions are skipped.
    baselines : collection of str
        The labels of the laws to compare against (not themselves compared).

    Returns
    -------
    list of dict
        Per compared law: ``law``, and under ``rmse`` and ``final``: ``against`` (the best
        baseline), ``mean_diff`` (law minus baseline), ``interval``, ``verdict`` and ``worse``
        (True only where the baseline is better beyond the noise).
    """
    base = [r for r in rows if r["law"] in baselines]
    if not base:
        return []
    best = {"rmse": min(base, key=lambda r: r["mean_rmse"])["law"],
            "final": min(base, key=lambda r: r["mean_abs_final_err"])["law"]}
    out = []
    for r in rows:
        if r["law"] in baselines or r["law"] not in preds:
            continue
        entry = {"law": r["law"]}
        done = {}  # one comparison per distinct baseline (often the best in both metrics)
        for metric, other in best.items():
            if other not in done:
                done[other] = compare_curves(held, preds[r["law"]], preds[other], label_a=r["law"], label_b=other,
                                             skip_steps=skip_steps, smooth_steps=smooth_steps, level=level)
            c = done[other]
            entry[metric] = {"against": other,
                             "mean_diff": c["mean_rmse_diff" if metric == "rmse" else "mean_abs_final_err_diff"],
                             "interval": c[f"{metric}_interval"], "verdict": c[f"{metric}_verdict"],
                             "worse": c[f"{metric}_verdict"] == f"{other} better"}
        out.append(entry)
    return out


def format_difference(e: dict, digits: int = 3) -> str:
    """One line for an entry of :func:`compare_with_best`: difference, interval (``digits``
    significant digits, so that a decided difference far below the errors themselves still shows),
    against, verdict."""
    f = lambda v: f"{v:+.{digits}g}"  # noqa: E731
    iv = "-" if e["interval"] is None else f"[{f(e['interval'][0])}, {f(e['interval'][1])}]"
    return f"{f(e['mean_diff'])} {iv} vs {e['against']}: {e['verdict']}"
