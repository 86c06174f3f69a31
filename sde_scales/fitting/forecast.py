r"""Forecasts: a fitted law's loss curve for a schedule that has not been run.

Every law here predicts the loss from the learning rate alone: the progress term reads the
learning-rate area :math:`S_1(t) = \sum_{k < t} \eta_k` and the drop response the drops
:math:`\eta_{k-1} - \eta_k` (:class:`~sde_scales.fitting.curves.ScheduleFeatures`). So a schedule
with no logged loss can be predicted as well as a held-out run can: :func:`forecast` takes a
:class:`~sde_scales.fitting.curves.ScheduleSpec` (or its text form, as ``--schedule`` writes it) or
the learning rate of every step, and returns the predicted loss at every ``every``-th step with
its band (:func:`~sde_scales.fitting.fit.predict_sd`, or the mixture band of an
:class:`~sde_scales.fitting.average.AveragedFit`) and the predicted final loss, the mean of the
last 5% of its rows, the quantity the held-out protocols score.

What a forecast cannot have is a score: there is no observed loss. What it keeps is every warning
a prediction gets where the schedule goes beyond the fitted curves (another peak rate, a deeper or
faster decay, a rise, a longer run: :func:`~sde_scales.fitting.fit.extrapolations`), and a null
band where the fitted curves do not determine the prediction (a schedule with drops forecast from
curves without any). ``sde-scales fit-delay --forecast NAME:SPEC`` prints, plots and writes them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting.average import AveragedFit, mixture_band, mixture_sd, weighted_mean
from sde_scales.fitting.curves import MAX_STEP, MIN_POINTS, LossCurve, ScheduleSpec
from sde_scales.fitting.fit import (FitResult, PeakLRWarning, final_rows, model_error, predict, predict_sd,
                                    prediction_gradient)

__all__ = ["FORECAST_POINTS", "Forecast", "ForecastDifference", "forecast", "forecast_difference", "schedule_rates"]

#: Rows of a forecast when ``every`` is not given: one every ``ceil(T / FORECAST_POINTS)`` steps.
#: The law's values between rows are not needed for its values at them (every law reads the
#: per-step schedule), so this sets the output's resolution, not its accuracy.
FORECAST_POINTS = 1000


@dataclass(frozen=True)
class Forecast:
    """A law's predicted loss curve for a schedule with no logged loss.

    ``step``, ``lr``: the forecast's rows and the learning rate there; ``loss``: the predicted
    loss (NaN at a row before any update with a positive rate, where no law has a value, and
    before :attr:`from_step`, the fit's first fitted step, where the law was not fitted); ``sd``:
    its standard deviation (NaN where the fitted curves do not determine it); ``final_loss`` and
    ``final_sd``: the mean of the last 5% of rows and its standard deviation (None where not
    determined); ``warnings``: how the schedule goes beyond the fitted curves; ``law``: the law's
    label."""

    name: str
    law: str
    step: np.ndarray
    lr: np.ndarray
    loss: np.ndarray
    sd: np.ndarray
    final_loss: float
    final_sd: float | None
    warnings: tuple[str, ...] = ()
    #: for an average of laws: each law's predicted final loss, by label (the part of the forecast
    #: that the fitted curves leave to the choice of law)
    member_final_losses: dict = field(default_factory=dict)
    #: the schedule as the laws read it (for :func:`forecast_difference`)
    curve: LossCurve | None = field(default=None, repr=False, compare=False)
    #: the fit's first fitted step: rows before it have no value (NaN), the law was not fitted there
    from_step: int = 0

    @property
    def final_rows(self) -> int:
        """How many of the last rows :attr:`final_loss` averages."""
        return final_rows(self.step.size)

    def to_dict(self) -> dict:
        """For a JSON document (``NaN`` left for the strict writer to turn into ``null``)."""
        return {"name": self.name, "law": self.law, "last_step": int(self.step[-1]), "rows": int(self.step.size),
                "every": int(self.step[1] - self.step[0]) if self.step.size > 1 else None,
                "from_step": self.from_step,
                "final_loss_pred": self.final_loss, "final_loss_pred_sd": self.final_sd,
                "final_rows": self.final_rows, "warnings": list(self.warnings),
                "member_final_losses": dict(self.member_final_losses) or None,
                "step": self.step.tolist(), "lr": self.lr.tolist(), "predicted": self.loss.tolist(),
                "predicted_sd": self.sd.tolist()}

    def to_frame(self):
        """The rows as a pandas DataFrame: step, lr, predicted, predicted_sd."""
        import pandas as pd

        return pd.DataFrame({"step": self.step, "lr": self.lr, "predicted": self.loss, "predicted_sd": self.sd})


def schedule_rates(schedule) -> np.ndarray:
    r"""The learning rate at every step from 0 of ``schedule``: a :class:`ScheduleSpec`, its text
    form (``peak=1e-3,decay=cosine,end=1e-4,total=10000``: :meth:`ScheduleSpec.expand`, ``total +
    1`` rates) or a 1-d array of rates, one per step (``sde_scales.schedules`` makes them).
    Refused, naming the value: rates that are not finite, negative or all zero, fewer than
    :data:`~sde_scales.fitting.curves.MIN_POINTS` steps, or more than
    :data:`~sde_scales.fitting.curves.MAX_STEP`."""
    if isinstance(schedule, str):
        schedule = ScheduleSpec.parse(schedule)
    if isinstance(schedule, ScheduleSpec):
        if schedule.total > MAX_STEP:  # before expanding it: 8 bytes a step
            raise InvalidArgumentError(f"forecast: total={schedule.total:,} is beyond {MAX_STEP:,} optimiser steps; if "
                                       f"it counts tokens or samples, give the number of optimiser steps")
        if schedule.total < MIN_POINTS:
            raise InvalidArgumentError(f"forecast: total={schedule.total}; a forecast needs at least {MIN_POINTS} steps")
        return schedule.expand()
    try:
        lr = np.asarray(schedule, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"forecast: schedule of type {type(schedule).__name__}; give a schedule spec "
                                   f"(peak=...,decay=...,total=...) or one learning rate per step") from None
    if lr.ndim != 1:
        raise InvalidArgumentError(f"forecast: rates of shape {lr.shape}; give one learning rate per step (1-d)")
    bad = ~np.isfinite(lr) | (lr < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidArgumentError(f"forecast: learning rate {lr[i]} at step {i} is not a finite rate >= 0; fix the "
                                   f"schedule")
    if lr.size <= MIN_POINTS:
        raise InvalidArgumentError(f"forecast: a schedule of {lr.size} steps; give at least {MIN_POINTS + 1} (one "
                                   f"learning rate per step from step 0)")
    if lr.size - 1 > MAX_STEP:
        raise InvalidArgumentError(f"forecast: a schedule of {lr.size:,} steps is beyond {MAX_STEP:,}; if it counts "
                                   f"tokens or samples, give one rate per optimiser step")
    if not np.any(lr > 0):
        raise InvalidArgumentError("forecast: the learning rate is 0 at every step; a schedule of zeros has no loss "
                                   "curve to forecast")
    return lr


def schedule_from_file(path, columns: dict | None = None) -> np.ndarray:
    r"""One learning rate per step from 0, from a table of the schedule (CSV, TSV or Parquet) with a
    step column and a learning-rate column, found as a curve file's are
    (:func:`~sde_scales.fitting.curves.resolve_columns`: their names, one of the common
    alternatives, or ``columns``; a loss column, if any, is not read): linear between logged steps,
    as a fitted curve's rates are read, and the first logged rate before the first logged step.
    Refused, naming the row: steps that are not whole, not increasing or negative, and rates that
    are not finite or negative."""
    from pathlib import Path

    import pandas as pd

    from sde_scales.errors import DataFileError
    from sde_scales.fitting.curves import resolve_columns
    from sde_scales.tables import read_table

    p = Path(path)
    df = read_table(p)
    cols = resolve_columns(list(df.columns), str(p), columns, roles=("step", "lr"), python="schedule_from_file")
    step = pd.to_numeric(df[cols["step"]], errors="coerce").to_numpy(float)
    lr = pd.to_numeric(df[cols["lr"]], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(step) | (step < 0) | (step != np.round(step))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataFileError(f"{p}, row {i}: step {df[cols['step']].astype(str).iloc[i]} is not a whole number >= 0")
    if np.any(np.diff(step) <= 0):
        i = int(np.argmax(np.diff(step) <= 0)) + 1
        raise DataFileError(f"{p}, row {i}: step {step[i]:g} does not increase on {step[i - 1]:g}; sort the rows by "
                            f"step and drop duplicates")
    bad = ~np.isfinite(lr) | (lr < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataFileError(f"{p}, row {i}: learning rate {df[cols['lr']].astype(str).iloc[i]} is not a finite rate "
                            f">= 0")
    if step.size < 2:
        raise DataFileError(f"{p}: {step.size} row(s); a schedule needs at least two")
    if step[-1] > MAX_STEP:
        raise DataFileError(f"{p}: its last step {step[-1]:,.0f} is beyond {MAX_STEP:,} optimiser steps; if the "
                            f"step counts tokens or samples, give optimiser steps")
    return np.interp(np.arange(int(step[-1]) + 1), step, lr)


def _check_every(every, last: int) -> int:
    if every is None:
        return max(1, math.ceil(last / FORECAST_POINTS))
    if isinstance(every, bool) or not isinstance(every, (int, np.integer, float)) or every != int(every) or every < 1:
        raise InvalidArgumentError(f"forecast: every={every!r}; give a whole number of steps >= 1")
    every = int(every)
    if last // every < MIN_POINTS:
        raise InvalidArgumentError(f"forecast: every={every} leaves {last // every} rows over a schedule of {last} "
                                   f"steps; give at most {last // MIN_POINTS} (at least {MIN_POINTS} rows)")
    return every


def _curve(name: str, rates: np.ndarray, every: int) -> LossCurve:
    """The schedule as a curve of the rows to forecast, for the laws' prediction code, which reads
    its steps and rates and never its loss: the loss column holds zeros, and the curve stays inside
    this module (nothing scores it)."""
    last = rates.size - 1
    steps = np.arange(every, last + 1, every)
    if steps[-1] != last:
        steps = np.append(steps, last)  # the schedule's end is always a row: the final loss is there
    return LossCurve(steps, rates[steps], np.zeros(steps.size), name=name, source=f"forecast {name}",
                     schedule=rates, schedule_start=0)


def forecast(result: FitResult | AveragedFit, schedule, *, every: int | None = None,
             name: str = "forecast") -> Forecast:
    r"""The loss curve ``result`` predicts for ``schedule``, which was not run.

    Parameters
    ----------
    result
        A fit (:func:`~sde_scales.fitting.fit.fit`) or an average of fits (``--law auto``'s).
    schedule
        A :class:`ScheduleSpec`, its text form, or one learning rate per step from step 0
        (:func:`schedule_rates`). The forecast runs to the last step whose rate is given: the loss
        after ``total`` updates for a spec.
    every
        Steps between rows (default: ``ceil(T / FORECAST_POINTS)``); the last step is always a row.
    name
        The forecast's name in warnings and outputs.

    Returns
    -------
    Forecast
        The predicted loss and its band at each row (NaN before the fit's first fitted step,
        ``skip_steps``, where the law was not fitted), the predicted final loss (the mean of the
        last 5% of rows) with its standard deviation, and the extrapolation warnings, each also
        issued as a :class:`~sde_scales.fitting.fit.PeakLRWarning`. A schedule whose last 5% of
        rows lie before ``skip_steps`` is refused.
    """
    if not isinstance(result, (FitResult, AveragedFit)):
        raise InvalidArgumentError(f"forecast: result is a {type(result).__name__}; give a FitResult (fit(...)) or "
                                   f"an AveragedFit")
    rates = schedule_rates(schedule)
    curve = _curve(str(name), rates, _check_every(every, rates.size - 1))
    fits = result.results if isinstance(result, AveragedFit) else (result,)
    start = max(int(r.skip_steps) for r in fits)
    n = final_rows(curve.step.size)
    if curve.step[-n] < start:
        raise InvalidArgumentError(f"forecast {name}: its final rows (from step {int(curve.step[-n])}) lie before step "
                                   f"{start}, where the fit's rows begin (its skip_steps): the law was not fitted "
                                   f"there; forecast a schedule longer than that, or fit from an earlier step")
    # each law's prediction once: predict() warns every extrapolation of its law
    # (fit.extrapolations), which are kept, said once each, not once per law
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PeakLRWarning)
        each = np.array([predict(r, curve) for r in fits])
    notes = tuple(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, PeakLRWarning)))
    for w in caught:
        if not issubclass(w.category, PeakLRWarning):
            warnings.warn(w.message, w.category, stacklevel=2)
    for msg in notes:
        warnings.warn(msg, PeakLRWarning, stacklevel=2)
    if isinstance(result, AveragedFit):
        loss = weighted_mean(each, result.weights)
        sd, final_sd = mixture_band(each, [predict_sd(r, curve) for r in fits], result.weights)
        members = {lab: float(np.mean(p[-n:])) for lab, p in zip(result.labels, each)}
        label = result.label
    else:
        loss, (sd, final_sd), members, label = each[0], predict_sd(result, curve), {}, result.law.label
    # before the fit's first fitted step the power term is read back to areas the fit never saw
    # (a 1,000-step forecast from a fit from step 500 gave a loss of 124 at step 1): no value there
    before = curve.step < start
    loss, sd = np.where(before, np.nan, loss), np.where(before, np.nan, sd)
    return Forecast(str(name), label, curve.step, curve.lr, loss, sd, float(np.mean(loss[-n:])),
                    float(final_sd) if np.isfinite(final_sd) else None, notes, members, curve, start)


@dataclass(frozen=True)
class ForecastDifference:
    r"""The difference of two forecasts' final losses from one fit, :math:`\Delta = \bar L_a -
    \bar L_b`, with its standard deviation and what a 95% interval says: ``"a lower"``, ``"b
    lower"``, ``"not separated"`` or ``"undetermined"`` (no band). ``model_sd``: the part of ``sd``
    that is the law's miss of its fitted curves (0 where the lack-of-fit test does not reject it;
    for an average of laws, the root mean square of the laws' parts)."""

    a: str
    b: str
    difference: float
    sd: float | None
    verdict: str
    model_sd: float = 0.0

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.sd is None else (self.difference - 1.96 * self.sd, self.difference + 1.96 * self.sd)

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "difference": self.difference, "sd": self.sd, "model_sd": self.model_sd,
                "interval_95": None if self.interval is None else list(self.interval), "verdict": self.verdict}


def _difference_sd(result: FitResult, a: Forecast, b: Forecast) -> tuple[float, float]:
    r"""The standard deviation of the difference of two forecasts' final losses under one fitted
    law, and its model part: the delta method on the difference of their final-loss gradients
    (the parameters), and the law's miss of its fitted curves :math:`\delta`
    (:func:`~sde_scales.fitting.fit.model_error`) for each forecast as if independent,
    :math:`\sqrt2\,\delta`, in quadrature."""
    grads = []
    for f in (a, b):
        G, cov = prediction_gradient(result, f.curve)
        grads.append(G[-f.final_rows:].mean(axis=0))
    params = float(cov.sd((grads[0] - grads[1])[None, :])[0])
    model = float(np.sqrt(2.0) * model_error(result))
    return float(np.hypot(params, model)), model


def forecast_difference(result: FitResult | AveragedFit, a: Forecast, b: Forecast) -> ForecastDifference:
    r"""Which of two forecast schedules ends lower, by how much, and whether the fit decides it.

    Both forecasts come from the same parameters, so their errors move together: the standard
    deviation of the difference is that of :math:`(\nabla \bar L_a - \nabla \bar L_b)^\top \delta\theta`
    under the fit's covariance (the delta method of :mod:`sde_scales.fitting.bands`), often far
    below either forecast's own band (a shared error of the level :math:`L_0` cancels). For an
    average of laws it is the mixture's: the mean of the laws' differences, with the mean of their
    variances plus the variance of their differences (their disagreement about which schedule wins).

    Where the lack-of-fit test rejects the law, its miss of its fitted curves :math:`\delta` (the
    model error that :func:`~sde_scales.fitting.fit.predict_sd` adds to each forecast) is added for
    each of the two as if their misses were independent, :math:`2\delta^2` in the variance
    (``model_sd``). Two similar schedules share part of their miss, so this is the wide side; the
    other side, the misses cancelling, is not safe: on the language-model families of
    ``experiments/fit_lm_family.py`` (fitted to the constant and cosine runs, every pair of WSD
    runs), the parameters' band alone held 79% of the observed differences for the default kernel,
    and of the 35 pairs it decided (72 pairs of three laws) 4 had the wrong sign; with the misses
    added, none (``benchmarks/RESULTS.md``)."""
    for f in (a, b):
        if not isinstance(f, Forecast) or f.curve is None:
            raise InvalidArgumentError(f"forecast_difference: give two Forecasts made by forecast() (got "
                                       f"{type(f).__name__})")
    if a.law != (result.label if isinstance(result, AveragedFit) else result.law.label) or b.law != a.law:
        raise InvalidArgumentError(f"forecast_difference: the forecasts were made by {a.law} and {b.law}; compare "
                                   f"forecasts of the result given")
    # each law's final losses are the forecasts' own (a law's, or by label an average's members')
    if isinstance(result, AveragedFit):
        diffs = np.array([a.member_final_losses[lab] - b.member_final_losses[lab] for lab in result.labels])
        parts = np.array([_difference_sd(r, a, b) for r in result.results])
    else:
        diffs, parts = np.array([a.final_loss - b.final_loss]), np.array([_difference_sd(result, a, b)])
    w = result.weights if isinstance(result, AveragedFit) else None
    model = float(np.sqrt(weighted_mean(parts[:, 1] ** 2, w)))
    d = float(weighted_mean(diffs, w))
    sd = float(mixture_sd(diffs, parts[:, 0], w))  # the laws' bands and their disagreement about d
    sd = sd if np.isfinite(sd) else None
    if sd is None:
        verdict = "undetermined"
    elif d + 1.96 * sd < 0:
        verdict = "a lower"
    elif d - 1.96 * sd > 0:
        verdict = "b lower"
    else:
        verdict = "not separated"
    return ForecastDifference(a.name, b.name, d, sd, verdict, model)
