r"""A law's predictions averaged over the time scales its fitted curves allow.

Where the fitted curves do not pin a law's time scale :math:`\tau` down (one smooth cosine: its
interval spans decades, and the fit lands on one edge of what the curve allows), a prediction at
the fitted :math:`\tau` carries a band that is conditional on it. This module averages instead of
choosing. The law is fitted with :math:`\log_{10}\tau` held at each point of a half-decade grid
:math:`v_1, \dots, v_m` (the other parameters fitted), and the fits are mixed with weights from
their profile likelihood on the fitted curves:

.. math:: w_i \propto \exp\Bigl(-\frac{\mathrm{SSR}_i - \min_j \mathrm{SSR}_j}{2 \kappa \hat\sigma^2}\Bigr),
          \qquad \hat\sigma^2 = \min_j \mathrm{SSR}_j / n,

where :math:`\mathrm{SSR}_i` is the sum of squared residuals of fit :math:`i` over the :math:`n`
fitted points and :math:`\kappa` the residuals' autocorrelation inflation (the fit's own rule,
:func:`~sde_scales.fitting.fit.autocorrelation_inflation`). This is the posterior over the grid
under a prior uniform in :math:`\log_{10}\tau` and Gaussian errors of the best fit's variance. The
prediction is the weighted mean, its band the mixture's (:mod:`sde_scales.fitting.average`: the
fits' own bands plus their spread between time scales).

The plain fit, with :math:`\tau` free, is one more node where its optimum :math:`v^*` lies inside
the grid and off its points. Each node then stands for the values of :math:`\log_{10}\tau` nearer
to it than to any other node (its cell, of width :math:`\Delta_i`; on the grid alone every cell is
half a decade wide), and its weight is :math:`w_i \Delta_i`, normalised: a Riemann sum of the same
posterior. Where the curves do not decide, the likelihood is flat over a cell and the node changes
little (a plain fit on a bound of its range is no node: there the grid's end stands for it). Where
they do, the likelihood peaks within a half decade, so a grid point alone would stand
up to a quarter decade off the optimum; the optimum's node then takes the weight, and the average
is the plain fit.

The grid is the range the fit itself searches (:func:`time_scale_grid`): the law's bounds of
:math:`\log_{10}\tau`, from 1 step to :math:`10^5`, the upper one raised to twice the longest
fitted curve in the law's clock (steps, or learning-rate area in steps at the peak rate), as
:func:`~sde_scales.fitting.fit.fit` raises it, at every half decade. So the prior is over the time
scales the fit could have returned, with no range of its own.

Measured (``benchmarks/RESULTS.md``, "Bands that average over the time scale"): fitted to one
cosine and predicting WSD runs of five real families (``experiments/single_curve_diagnosis.py``),
the exponential kernel in learning-rate area held 17 of 23 WSD final losses within its 95% band,
against 12 of 23 for its plain fit (from 10% of each run, 23 against 14). In steps it held 13
against 12, since there the miss is the law's form, which no time scale repairs. On planted
curves (``benchmarks/one_curve_bands.py --time-scale-average``) its final-loss errors were
smaller than the fit's for three of four truths.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting.average import AveragedFit, normalised_weights
from sde_scales.fitting.bands import on_lower_bound, on_upper_bound
from sde_scales.fitting.curves import LossCurve
from sde_scales.fitting.fit import (FitResult, IdentifiabilityWarning, autocorrelation_inflation, fit, fit_bounds,
                                    predict, scored_rows)
from sde_scales.fitting.laws import Law
from sde_scales.fitting.tasks import run_tasks
from sde_scales.validation import is_whole

__all__ = ["TIME_PARAMETER", "cell_widths", "edge_note", "effective_number", "has_time_scale", "profile_weights",
           "time_scale_average", "time_scale_grid"]

#: The parameter a law must have to be averaged over its time scale (log10 of it).
TIME_PARAMETER = "log10_tau"
#: Fits whose weight falls below this share of the total are left out of the mixture (and of the
#: range of its members' forecasts); the others' weights are renormalised. Their part of any
#: prediction was below this share of the spread between time scales.
NEGLIGIBLE_WEIGHT = 1e-3


def has_time_scale(law: Law) -> bool:
    """Whether ``law`` has the one time scale (:data:`TIME_PARAMETER`) this module averages over:
    the exponential kernel, in steps or area, and the momentum law do; the non-parametric and
    power-law kernels and the multi-power law do not."""
    return TIME_PARAMETER in law.names


def _require_time_scale(law: Law) -> int:
    """The index of ``law``'s :data:`TIME_PARAMETER`, or the refusal that names the laws that have one."""
    if not has_time_scale(law):
        raise InvalidArgumentError(f"{law.label} has no single time scale ({TIME_PARAMETER}) to average over; use the "
                                   f"exponential kernel (--kernel exp, in steps or area) or the momentum law")
    return list(law.names).index(TIME_PARAMETER)


def profile_weights(ssr, best_residuals: np.ndarray, log_every, sizes=None) -> tuple[np.ndarray, float]:
    """The weights of the module's formula from the fits' sums of squared residuals ``ssr`` (a
    non-finite one gets weight 0), the residuals of the best fit, and the curves' logging intervals
    and rows in it (``log_every``, ``sizes``: one of each per curve, as
    :func:`~sde_scales.fitting.fit.autocorrelation_inflation` takes them, for the inflation
    :math:`\\kappa`); returns (weights summing to 1, :math:`\\kappa`). A best fit with no residual at
    all leaves no variance to weigh the others by: its weight is 1."""
    ssr = np.asarray(ssr, dtype=float)
    ssr = np.where(np.isfinite(ssr), ssr, np.inf)
    b = int(np.argmin(ssr))
    kappa = autocorrelation_inflation(best_residuals, log_every, sizes)
    if ssr[b] > 0:
        logw = -(ssr - ssr[b]) / (2.0 * kappa * ssr[b] / best_residuals.size)
        w = np.exp(logw - logw.max())
    else:
        w = np.eye(ssr.size)[b]
    return w / w.sum(), float(kappa)


def time_scale_grid(law: Law, curves: list[LossCurve], *, skip_steps: int = 0) -> np.ndarray:
    """Half-decade grid of :math:`\\log_{10}\\tau` over the range :func:`~sde_scales.fitting.fit.fit`
    searches for ``law`` on ``curves`` from ``skip_steps`` (:func:`~sde_scales.fitting.fit.fit_bounds`:
    from the law's lower bound to the larger of its upper bound and twice the longest curve in the
    law's clock, its last step or its learning-rate area in steps at the peak rate), both ends
    rounded outwards to the half decade."""
    if not curves:
        raise InvalidArgumentError("no curves; pass at least one LossCurve")
    i = _require_time_scale(law)
    lo, hi = (float(b[i]) for b in fit_bounds(law, curves, skip_steps=skip_steps))
    return np.round(np.arange(math.floor(2 * lo) / 2, math.ceil(2 * hi) / 2 + 0.25, 0.5), 10)


def effective_number(weights) -> float:
    """:math:`\\exp` of the weights' entropy: 1 where one fit takes all the weight, :math:`m` where
    :math:`m` fits share it equally."""
    w = normalised_weights(weights)
    w = w[w > 0]
    return float(np.exp(-(w * np.log(w)).sum()))


def edge_note(law: Law, values: np.ndarray, top: float, weight: float, *, default_grid: bool = True) -> str | None:
    """The warning of an average whose most likely time scale ``top`` (log10; the node of the
    highest likelihood, of weight ``weight`` in the average) is nearer to the shortest or the
    longest of the grid ``values`` than to any other grid point: the likelihood rises to the
    grid's edge, so time scales past it would be weighed as much or more, and the average and its
    band leave them out (as a fitted time scale on its bound does). None otherwise, and for a grid
    of one value."""
    values = np.sort(np.asarray(values, dtype=float))
    if values.size < 2:
        return None
    nearest = values[int(np.argmin(np.abs(values - top)))]
    if nearest not in (values[0], values[-1]):
        return None
    side = "shortest" if nearest == values[0] else "longest"
    grid = ("the range the fit searches (the law's bounds, raised to twice the longest curve)" if default_grid
            else "the grid given")
    return (f"{law.label}: the held time scale of most likelihood (weight {weight:.2f}), {10 ** top:.3g} "
            f"{'steps at the peak rate' if law.clock == 'area' else 'steps'}, is at the {side} end of {grid}: the "
            f"fitted curves favour time scales at or past that edge, which the average and its band leave out; its "
            f"band is conditional on the range")


def cell_widths(nodes: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """Width of each node's cell: the values of ``span`` (lowest, highest) nearer to the node than
    to any other of the sorted ``nodes`` (boundaries at the midpoints between neighbours). A lone
    node's cell is the whole span (width 1 where the span is a point)."""
    nodes = np.asarray(nodes, dtype=float)
    if (nodes.ndim != 1 or nodes.size == 0 or not np.all(np.isfinite(nodes)) or np.any(np.diff(nodes) <= 0)
            or not span[0] <= nodes[0] <= nodes[-1] <= span[1]):
        raise InvalidArgumentError(f"nodes {np.ravel(nodes).tolist()} in span {tuple(span)}; give finite nodes in "
                                   f"increasing order within the span (a cell of negative width is no weight)")
    if nodes.size == 1:
        return np.array([max(span[1] - span[0], 0.0) or 1.0])
    edges = np.concatenate([[span[0]], (nodes[1:] + nodes[:-1]) / 2.0, [span[1]]])
    return np.diff(edges)


def _span(values: np.ndarray) -> tuple[float, float]:
    """The range of log10 tau the sorted grid ``values`` stands for: half a spacing past each end."""
    if values.size < 2:
        return float(values[0]), float(values[0])
    return (float(values[0] - (values[1] - values[0]) / 2.0), float(values[-1] + (values[-1] - values[-2]) / 2.0))


def _member_fit(task: tuple) -> FitResult:
    """One fit of the average: the law with log10 tau held at ``v``, or free where ``v`` is None."""
    law, curves, skip_steps, v, max_evaluations = task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each member's warnings are reported with it (fit_warnings)
        return fit(law, curves, skip_steps=skip_steps, fixed=None if v is None else {TIME_PARAMETER: v},
                   max_evaluations=max_evaluations)


def time_scale_average(law: Law, curves: list[LossCurve], *, skip_steps: int = 0, grid=None,
                       max_evaluations: int | None = None, with_optimum: bool = True, workers: int = 1,
                       progress: bool = False) -> AveragedFit:
    """``law`` fitted to ``curves`` at every held time scale of ``grid`` (:func:`time_scale_grid`
    by default; values of :math:`\\log_{10}\\tau`), mixed by profile likelihood (module docstring).

    Returns an :class:`~sde_scales.fitting.average.AveragedFit` whose labels name each held time
    scale and whose ``weights`` are the posterior's (fits below :data:`NEGLIGIBLE_WEIGHT` of the
    total left out); ``predict_any``, ``predict_sd_any``, ``forecast`` and ``fit-delay``'s report
    read it as they read ``--law auto``'s mean. With ``with_optimum`` (the default) the plain fit
    is a node as well, labelled ``(fitted)``, where its time scale lies inside the grid and off its
    points, and then every node is weighted by its cell's width as well (module docstring); without
    it the grid's points weigh by their likelihood alone. ``workers``: processes for the fits (the same
    numbers for any count, :func:`~sde_scales.fitting.tasks.run_tasks`); ``progress``: a progress
    bar of them on standard error (on a terminal). Where the node of most likelihood is nearer to
    the shortest or the longest of the grid than to any other grid point, the curves favour time
    scales at or past its edge, which the average cannot count: an
    :class:`~sde_scales.fitting.fit.IdentifiabilityWarning` says so (:func:`edge_note`).

    Raises
    ------
    InvalidArgumentError
        A law without a single time scale (:data:`TIME_PARAMETER`: the exponential kernel, in steps
        or area, and the momentum law have one; the non-parametric and power-law kernels and the
        multi-power law do not), or a grid that is not finite numbers.
    """
    i = _require_time_scale(law)
    if grid is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the curves' own warnings are each member fit's to report
            values = time_scale_grid(law, curves, skip_steps=skip_steps)
    else:
        values = np.asarray(grid, dtype=float).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise InvalidArgumentError(f"grid {list(values)}; give finite values of log10 of the time scale")
    values = np.unique(values)
    fits: list[FitResult] = []
    ssr, best_res, best_ssr = [], None, np.inf
    fitted = None  # the plain fit's log10 tau, where it is a node

    def member(r: FitResult) -> None:
        nonlocal best_res, best_ssr
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fit's own warnings on its curves are reported with it
            res = np.concatenate([(predict(r, c) - c.loss)[k] for c, k in zip(curves, rows)])
        fits.append(r)
        ssr.append(float(res @ res))
        if ssr[-1] < best_ssr:  # False for NaN
            best_res, best_ssr = res, ssr[-1]

    if not is_whole(workers, 1):
        raise InvalidArgumentError(f"workers={workers!r}; give a whole number of processes >= 1")
    plain = with_optimum and values.size > 1
    tasks = [((float(v),), (law, curves, skip_steps, float(v), max_evaluations)) for v in values]
    tasks += [(("plain",), (law, curves, skip_steps, None, max_evaluations))] if plain else []
    done = run_tasks(_member_fit, tasks, int(workers), f"{law.label}: fits over the time scale" if progress else None)
    rows = [scored_rows(c, skip_steps) for c in curves]  # the fitted rows, as every fit above took them
    for v in values:
        member(done[(float(v),)])
    if plain:
        r = done[("plain",)]
        v = float(r.theta[i])
        lo, hi = (float(b[i]) for b in r.extra["bounds"])
        # an optimum inside the fit's range (one on its bound is the grid's to cover), inside the
        # grid, and off its points by more than 1e-3 decade (else it is the point's fit)
        if (np.isfinite(v) and not on_lower_bound(v, lo) and not on_upper_bound(v, hi)
                and values[0] < v < values[-1] and np.min(np.abs(values - v)) > 1e-3):
            member(r)
            fitted = v
    nodes = np.append(values, fitted) if fitted is not None else values
    order = np.argsort(nodes, kind="stable")
    nodes, fits, ssr = nodes[order], [fits[k] for k in order], np.array(ssr)[order]
    finite = np.isfinite(ssr)  # a held value whose law overflows on these curves carries no likelihood
    if not finite.any():
        raise InvalidArgumentError(f"{law.label}: no held time scale of {list(values)} gives finite residuals on "
                                   f"these curves; check the curves (load_curve refuses non-finite values) or give a "
                                   f"grid within the curves' span")
    likelihood, _ = profile_weights(ssr, best_res, [c.log_every for c in curves], [int(k.sum()) for k in rows])
    w = likelihood
    if fitted is not None:  # a Riemann sum over unequal cells (module docstring)
        w = w * cell_widths(nodes, _span(values))
        w = w / w.sum()
    top = int(np.argmax(likelihood))
    note = edge_note(law, values, float(nodes[top]), float(w[top]), default_grid=grid is None)
    if note is not None:
        warnings.warn(note, IdentifiabilityWarning, stacklevel=2)
    keep = w >= NEGLIGIBLE_WEIGHT
    labels = tuple(f"{law.label} at tau {10 ** v:.3g}{' (fitted)' if v == fitted else ''}" for v in nodes[keep])
    name = (f"{law.label} averaged over {int(keep.sum())} time scales ({10 ** nodes[keep][0]:.3g} to "
            f"{10 ** nodes[keep][-1]:.3g})")
    return AveragedFit(labels, tuple(f for f, k in zip(fits, keep) if k), tuple(float(x) for x in w[keep]), name)
