r"""Loss curves (step, lr, loss[, val_loss]): loading, validation, smoothing, schedule features.

A :class:`LossCurve` is validated on construction: steps strictly increasing, losses finite,
learning rates finite and >= 0, all columns of equal length, at least ``MIN_POINTS`` points.
Every failure names the file, the column and the row.

The schedule. A curve may carry its learning rate at *every* step (``schedule``), whatever steps
its loss was logged at; then every law reads areas and drops from it, and metrics are computed
where a loss was logged. It comes from

* a per-step file: a row for every step with its ``lr``, and ``loss`` empty where it was not
  logged (:meth:`LossCurve.from_csv` recognises it by the empty cells); or
* a compact spec (:class:`ScheduleSpec`: warmup, peak, decay type and start, end value, total
  steps), expanded to every step and checked against the learning rates the log has
  (:meth:`LossCurve.with_spec`).

Without one, the learning rate is taken to be linear between logged steps and, before the first
logged step, constant at its first logged value; a log that starts after step 0 then gets a
:class:`LateStartWarning` that says so (a 2,000-step warmup read that way counts as 2,000 steps
at the first logged rate), where the area so assumed is more than :data:`LATE_START_RTOL` of the
area at more than that share of the fitted or scored points.

Timing convention. The loss logged at step ``t`` was computed *before* the update of step ``t``,
so it depends on the learning rates of steps ``0 .. t-1`` only. The learning rate logged at the
final step (often 0 for decay-to-zero schedules) therefore never counts as a drop for any logged
loss.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sde_scales.errors import DataFileError, InvalidArgumentError
from sde_scales.fitting.encodings import file_encoding
from sde_scales.validation import is_whole, non_real_kind

__all__ = ["COLUMN_ALIASES", "GAP_FACTOR", "MAX_STEP", "SPIKE_Z", "StepGapWarning", "InitialLossWarning",
           "LateStartWarning", "LossCurve",
           "LossRise", "LossRiseWarning", "LossSpikeWarning", "RISE_Z",
           "ScheduleFeatures", "ScheduleSpec", "TruncatedRowWarning", "MIN_POINTS", "SCHEDULE_RTOL", "curve_name",
           "load_curve", "parse_columns",
           "planted_curve", "resolve_columns", "warmup_end"]

#: A logged learning rate agrees with a stated schedule when they differ by at most this fraction
#: of the peak: logs round to 4-6 significant digits (1e-4 of the peak at most), another schedule
#: differs by far more.
SCHEDULE_RTOL = 1e-3
#: A log that starts after step 0 is warned (:class:`LateStartWarning`) when the learning-rate area
#: it assumes before its first logged step, :math:`\delta = s_0 \eta_{s_0}` (the most it is off by
#: when the rate there lay between 0 and its first logged value: a warmup, or a constant rate), is
#: more than ``LATE_START_RTOL`` of the area :math:`S(t)` at more than ``LATE_START_RTOL`` of the
#: fitted or scored points. A relative error :math:`\epsilon` in the area moves a power term
#: :math:`A S^{-\alpha}` by :math:`\alpha \epsilon` of itself and leaves the drops' response alone
#: (they come after the warmup); the error falls as :math:`\delta / S(t)` along the run, so it
#: matters where it is large at more than a few points. Per-step logs from step 1, or logs every 10
#: steps of a long warmup, assume more than 1% at their first few dozen points, under 1% of a run
#: (no warning); a log that starts after its warmup, at every point (warned). The shared 124M logs
#: (first step 50), scored from step 500: at 1.1% of their points (warned), and their cosine runs,
#: whose first logged rate is lower, at under 1% (not warned).
LATE_START_RTOL = 0.01
#: A learning rate or loss more than this many times the curve's median magnitude is refused: far
#: beyond any real curve (a regression loss may fall by six decades in one run, never twelve) and
#: far below the 1e300 of a corrupt cell.
OUTLIER_FACTOR = 1e12
#: Largest magnitude of a learning rate or loss accepted at all: a fit sums squares of losses and
#: products of rates with many steps, which beyond 1e100 come near float64's largest number
#: (1.8e308); no optimiser's learning rate or a loss in any units comes near it, a corrupt file can
#: (a column of 1e300 fitted into a traceback, or predicted a final loss of 3e302 with exit 0).
MAX_MAGNITUDE = 1e100
#: Smallest typical magnitude (median of the nonzero absolute values) of a learning-rate or loss
#: column accepted: the fit squares losses (and their differences), which below 1e-150 underflow to
#: 0 and end the fit in NaN (a loss column of 1e-300 did, in a traceback). No optimiser or loss in
#: any units comes near 1e-100; a column in the wrong units or a corrupt file can.
MIN_MAGNITUDE = 1e-100
#: Names other logging tools give the columns (Hugging Face's Trainer, PyTorch Lightning, a
#: Weights & Biases export, Megatron-LM's and torchtitan's TensorBoard tags, OLMo's and MosaicML
#: Composer's metric names, a hand-written loop). A file without the toolkit's own name for a column
#: is read with the one of these it has; with two or more, or none, it is refused with the names it
#: has and the fix (``columns=`` / ``--columns``). What was read is in :attr:`LossCurve.columns` and
#: in the JSON of ``fit-delay``. Matched exactly (``train/loss__MIN`` of an export is not a loss).
COLUMN_ALIASES = {
    "step": ("global_step", "trainer/global_step", "train/global_step", "_step", "Step", "iteration", "iter"),
    "lr": ("learning_rate", "train/learning_rate", "train/lr", "lr-AdamW", "lr-SGD", "lr-Adam", "learning-rate",
           "LR", "Learning Rate", "learning rate", "optim/learning_rate_group0", "lr-DecoupledAdamW/group0"),
    "loss": ("train_loss", "train/loss", "training_loss", "loss/train", "train/loss_step", "train_loss_step", "Loss",
             "lm loss", "loss_metrics/global_avg_loss", "train/CrossEntropyLoss", "loss/train/total"),
    "val_loss": ("eval_loss", "eval/loss", "val/loss", "validation_loss", "valid_loss"),
}
#: Largest step a curve may have. The laws read the learning rate at every step up to the last
#: (:meth:`LossCurve.per_step_lr`: about 60 bytes per step in a fit, measured on a 10-million-step
#: log: 840 MB; about 3 GB at this limit). Beyond the optimiser steps of any run; a step column
#: counted in tokens or samples (half a million per step for a language model) or a mistyped step
#: would ask for terabytes, and is refused instead.
MAX_STEP = 50_000_000
#: A jump between successive logged steps of more than this many times the intervals around it
#: (their median, up to three on either side) gets a :class:`StepGapWarning`: the learning rate is
#: interpolated across it and no loss is logged there (a mistyped step, or logs of two runs in one
#: file).
GAP_FACTOR = 100
#: Most drop bins a curve with a per-step schedule is cut into (cost: points x bins).
MAX_DROP_BINS = 4000
#: A logged loss further than this many noise levels from the median of the :data:`SPIKE_WINDOW`
#: points around it is a spike (:meth:`LossCurve.spikes`, :class:`LossSpikeWarning`). The noise
#: level is the larger of the window's own (1.4826 MAD about its median) and the curve's
#: (:func:`~sde_scales.fitting.fit.noise_level`), so a window that happens to be quiet, or a loss
#: rounded to a few digits, does not lower it. Why 8: Gaussian noise passes it with probability
#: 1.2e-15 per point, so no log of any length is warned for its noise; a Student-t noise with three
#: degrees of freedom (heavier tails than any of the shared curves, whose largest deviation is 3.8
#: levels) at 8e-4 per point. A loss spike of a real run (the loss jumping to several times its
#: level and back) is hundreds of levels.
SPIKE_Z = 8.0
#: Points (odd) in the centred window of the spike check: ten logged points on either side.
SPIKE_WINDOW = 21
#: A loss whose running median (:data:`SPIKE_WINDOW` points) climbs above its lowest earlier value
#: by more than this many times the median's own noise, while the learning rate does not rise, is
#: a rise no law of :mod:`sde_scales.fitting.laws` can follow (:meth:`LossCurve.loss_rise`). The
#: median's noise :math:`\sigma_m` is measured over every time scale from one window to an eighth
#: of the log (:func:`_slow_noise`; a trend or a slow noise only raises it). Why 16: on a curve
#: that does not rise, the rise of the median is a difference of two of its extremes, at most
#: about :math:`2\sigma_m\sqrt{2\ln N_w}` over :math:`N_w` independent windows, 10.8
#: :math:`\sigma_m` at the 50 million steps :data:`MAX_STEP` allows logged at every step; 16 leaves
#: a margin for tails heavier than Gaussian. Measured: 2.9-5.5 on the shared logs, at most 7.6 on
#: per-step logs of 34,000 and a million points with Gaussian, Student-t (3) or AR(1) noise, raw
#: or smoothed by an undeclared moving average (beta 0.99, 0.999). A diverged run rises by
#: thousands; a rise of 20 noise levels of a point over a hundred points of a 3,000-point log is 40.
RISE_Z = 16.0


class LateStartWarning(UserWarning):
    """A log without a per-step schedule starts after step 0: what came before is assumed."""


class InitialLossWarning(UserWarning):
    """Rows logged before any update with a positive learning rate (the initial loss), which no
    law describes: they are left out of fits, scores and moving averages
    (:meth:`LossCurve.untrained_rows`)."""


class TruncatedRowWarning(UserWarning):
    """A text table's last line is shorter than its header and ends without a line break: a row cut
    off while the file was written, left out of the curve."""


class LossSpikeWarning(UserWarning):
    """Logged losses far from their neighbours (:meth:`LossCurve.spikes`): loss spikes of the run or
    corrupt rows, which fits and scores take in as they are."""


class LossRiseWarning(UserWarning):
    """The loss rises well beyond its noise while the learning rate does not
    (:meth:`LossCurve.loss_rise`): no law here can follow that stretch."""


@dataclass(frozen=True)
class LossRise:
    r"""The largest rise of a curve's running median at a learning rate that did not rise
    (:meth:`LossCurve.loss_rise`). Rows index the curve; levels are medians of
    :data:`SPIKE_WINDOW` logged points.

    Attributes
    ----------
    low_row, low_level : int, float
        Where the median was lowest before the rise, and that level.
    row, level : int, float
        Where the rise is largest (where the curve diverged: its last row), and the median there.
    start_row, start_level : int, float
        The first judged row and its median: where the judged part of the log begins.
    sigma : float
        The median's noise :math:`\sigma_m` over time scales from one window to an eighth of the
        log (:func:`_slow_noise`).
    diverged : bool
        The log ends with its median above ``start_level`` by more than :data:`RISE_Z`
        :math:`\sigma_m`, after falling below it by as much: the run gave back all it had learned.
    """

    low_row: int
    low_level: float
    row: int
    level: float
    start_row: int
    start_level: float
    sigma: float
    diverged: bool


class StepGapWarning(UserWarning):
    """Logged steps jump by far more than the curve's logging interval, or rows of the file have a
    learning rate and no loss."""

#: Fewest points a curve may have: a law has up to 7 parameters and a fit needs several points
#: per parameter to leave residual degrees of freedom.
MIN_POINTS = 20


def _not_numbers(source: str, column: str, values) -> DataFileError:
    """The error for a column with a cell that is not a number, naming its first such row."""
    v = np.asarray(values, dtype=object)
    for i, x in enumerate(v):
        if x is None or (isinstance(x, float) and np.isnan(x)):
            continue
        try:
            float(x)
        except (TypeError, ValueError):
            text = str(x).strip()
            if text == column or text.lower() in ("step", "lr", "loss", "learning_rate"):
                why = ("the row repeats the header: two logs written into one file (a run resumed from a checkpoint "
                       "appends a new header); keep one header and, of the repeated steps, the rows logged after "
                       "the restart")
            elif text.lower() in ("true", "false"):
                why = (f"a boolean, not a number: the log's {column!r} is not this quantity; name the column that is "
                       f"with --columns")
            elif re.fullmatch(r"[-+]?[1-9]\d{0,2}(,\d{3})+(\.\d+)?", text):
                why = ("a thousands separator, or a decimal comma: the cell does not say which. Save the file with "
                       "plain numbers ('.' as the decimal mark, no separators)")
            elif re.fullmatch(r"[-+]?\d+,\d+([eE][-+]?\d+)?", text):
                why = ("a decimal comma: save the file with '.' as the decimal mark (a spreadsheet in a locale that "
                       "writes 2,5 for 2.5 does this)")
            else:
                why = "fix or drop the row (a file cut off while it was written ends in a partial row)"
            return _fail(source, column, i, f"{text[:40]!r} is not a number; {why}")
    return _fail(source, column, None, "values are not numbers")


def _refuse_nan_tail(source: str, column: str, steps, loss: np.ndarray, nan_values: np.ndarray | None) -> None:
    """Refuse a log whose loss ends in NaN values: the run diverged.

    A reader keeps a cell that holds NaN (``nan`` in a CSV, ``NaN`` in a JSON record, a NaN in a
    Parquet float column) apart from an empty one (``nan_values``). Empty cells are rows without a
    loss (a learning rate logged more often than the loss). NaN values after the last finite loss
    are the loss of a diverged run, unless the rows after that loss are no more than the log's own
    largest run of rows without a loss (a per-step table written by numpy, which spells every
    missing loss ``nan``, ends in a few of them). Fitting the rows before it silently would fit a
    run that blew up as if it had stopped; reading the NaN rows as unlogged would hide it.
    """
    if nan_values is None:
        return
    nan_values = np.asarray(nan_values, dtype=bool) & np.isnan(loss)
    finite = np.flatnonzero(~np.isnan(loss))
    if not nan_values.any() or finite.size == 0:
        return  # no NaN value, or nothing but NaN (the curve's own checks name the first row)
    last = int(finite[-1])
    after = nan_values[last + 1:]
    if not after.any():
        return  # every NaN value is followed by a finite loss: the file's spelling of a row without one
    gaps = np.diff(finite) - 1
    if loss.size - 1 - last <= (int(gaps.max()) if gaps.size else 0):
        return
    first = last + 1 + int(np.argmax(after))
    import pandas as pd

    st = pd.to_numeric(pd.Series(np.asarray(steps, dtype=object)), errors="coerce").to_numpy(dtype=float)
    at = lambda i: f"step {st[i]:.0f}" if np.isfinite(st[i]) else f"row {i}"  # noqa: E731
    raise _fail(source, column, first, f"the loss is NaN from {at(first)} to the end of the file "
                f"({int(after.sum())} NaN row(s) after the last finite loss, at {at(last)}): the run diverged. "
                f"Fit the rows before it: delete the rows from {at(first)} on (and the rise before it, which no "
                f"law describes), or save the log up to the step you want fitted")


def _fail(source: str, column: str, row: int | None, msg: str, step: int | None = None,
          line: int | None = None) -> DataFileError:
    """The error of a value that fails a check: ``source, column 'c', row i: msg`` (``row i (line
    n)`` where the file's line is known). The error keeps ``source``, ``column``, ``row``,
    ``detail`` (``msg``) and the row's ``step`` (None where not given), so that a reader whose rows
    are not the file's lines (a printed log) can name the line instead (:func:`_on_line`), and a
    CSV's reader can add it (:func:`_with_csv_line`)."""
    where = (f"{source}, column {column!r}" + (f", row {row}" if row is not None else "")
             + (f" (line {line})" if line is not None else ""))
    exc = DataFileError(f"{where}: {msg}")
    exc.source, exc.column, exc.row, exc.detail, exc.step = source, column, row, msg, step
    return exc


def _on_line(exc: DataFileError, df, step_col: str, column: str | None, place) -> DataFileError:
    """``exc`` (a :func:`_fail` error naming a row of the curve and its step) naming instead where in
    the file the value is (``place(k)``: record k's place, ``"line 17"`` or ``"record 15"``): the last of
    the records ``df`` (indexed by record) at that step that gives ``column`` (the last given value
    is the one a step's records merge to), or the last at that step. ``exc`` as it is where it names
    no step or no record is at it."""
    step = getattr(exc, "step", None)
    if step is None or getattr(exc, "row", None) is None:
        return exc
    at = df.index[_as_floats(df[step_col]) == step]
    if column is not None and column in df.columns:
        at = at[df.loc[at, column].notna().to_numpy()] if df.loc[at, column].notna().any() else at
    if at.size == 0:
        return exc
    name = column if column is not None else exc.column  # the key as the log prints it
    return DataFileError(f"{exc.source}, column {name!r}, {place(int(at[-1]))}: {exc.detail}")


def _with_csv_line(exc: DataFileError, path: Path, n_rows: int) -> DataFileError:
    """``exc`` (a :func:`_fail` error naming row i of a CSV table, counted from 0 after the header)
    with the file's line added, ``row i (line i + 2)``, where that is exact: one header line and
    one line per row, none blank and no quoted field that could span lines. ``exc`` as it is
    otherwise (the row stays named, counted as pandas counts it)."""
    row = getattr(exc, "row", None)
    if row is None or not hasattr(exc, "detail"):
        return exc
    try:
        data = path.read_bytes()
    except OSError:
        return exc
    lines = data.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if b'"' in data or len(lines) != n_rows + 1 or any(not ln.strip() for ln in lines):
        return exc
    return _fail(exc.source, exc.column, row, exc.detail, step=exc.step, line=row + 2)


@dataclass(frozen=True)
class LossCurve:
    r"""One training-loss curve.

    Attributes
    ----------
    step, lr, loss : ndarray
        Equal-length columns; ``step`` strictly increasing integers.
    val_loss : ndarray or None
        Optional validation loss, NaN where not logged.
    name : str
        Used in reports (the file stem when loaded from a file).
    source : str
        Where it came from (file path), used in error messages.
    schedule : ndarray or None
        The learning rate at every step ``schedule_start, schedule_start + 1, ...`` up to at least
        the last logged step; None: known at the logged steps only.
    schedule_start : int
        The first step of ``schedule`` (0 for a schedule known from the start).
    columns : tuple of (str, str)
        The file's columns read as step, lr, loss (and val_loss): ``(("loss", "train/loss"), ...)``;
        empty for a curve made in memory.
    rows_without_loss : int
        Rows of the file with a learning rate and no loss (empty, or NaN as a loop prints a step
        whose loss overflowed): their rates are in ``schedule``, the rows are not in the curve (a
        fit names them among its warnings).
    steps_without_loss : tuple of int
        The steps of the first five of them, for that warning.
    unsmoothing_rounding : float
        After :meth:`unsmooth_running_mean`: the largest standard deviation of the rounding error
        its inversion gives a recovered value (the logged means' lattice spacing
        :math:`q/\sqrt{12}` times the inversion's gain); 0 otherwise.
    """

    step: np.ndarray
    lr: np.ndarray
    loss: np.ndarray
    val_loss: np.ndarray | None = None
    name: str = "curve"
    source: str = "<memory>"
    schedule: np.ndarray | None = None
    schedule_start: int = 0
    columns: tuple = ()
    rows_without_loss: int = 0
    steps_without_loss: tuple = ()
    unsmoothing_rounding: float = 0.0
    #: :meth:`_spike_scan`'s findings by ``from_step`` (a fit builds a curve's features several times)
    _spike_scans: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    #: :meth:`_window_median` of the loss, once computed
    _medians: list = field(default_factory=list, init=False, repr=False, compare=False)
    #: :meth:`loss_rise`'s findings by ``from_step``
    _rises: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    #: :meth:`untrained_rows`, once computed
    _untrained: list = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        src = self.source
        cols = {"step": self.step, "lr": self.lr, "loss": self.loss}
        arrs = {}
        for k, v in cols.items():
            a = np.asarray(v)
            if a.ndim != 1:
                raise _fail(src, k, None, f"expected a 1-d column, got shape {a.shape}")
            kind = non_real_kind(v)  # True read as a rate of 1; an imaginary part dropped with a numpy warning
            if kind is not None:
                raise _fail(src, k, None, f"a column of {'booleans' if kind == 'boolean' else 'complex numbers'} "
                            f"({a.dtype}); give real numbers")
            arrs[k] = a
        n = {k: a.size for k, a in arrs.items()}
        if len(set(n.values())) != 1:
            raise _fail(src, "step/lr/loss", None, f"columns have different lengths {n}; every row needs step, lr and loss")
        if n["step"] < MIN_POINTS:
            raise _fail(src, "step", None, f"{n['step']} rows; a curve needs at least {MIN_POINTS} points")
        try:
            step_f = arrs["step"].astype(float)
        except (TypeError, ValueError):
            raise _not_numbers(src, "step", arrs["step"]) from None
        bad = ~np.isfinite(step_f) | (step_f != np.round(step_f)) | (step_f < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise _fail(src, "step", i, f"step {step_f[i]:g} is not a non-negative whole number")
        step = step_f.astype(np.int64)
        d = np.diff(step)
        if np.any(d <= 0):
            i = int(np.argmax(d <= 0)) + 1
            raise _fail(src, "step", i, f"step {int(step[i])} does not increase on step {int(step[i - 1])} "
                        f"(row {i - 1}); sort the rows by step and drop duplicates (a run resumed from a checkpoint logs "
                        f"the steps after it twice: keep the rows logged after the restart, the last of each step)")
        if step[-1] > MAX_STEP:
            i = int(np.argmax(step > MAX_STEP))
            after = f" (it follows step {int(step[i - 1])})" if i > 0 else ""
            raise _fail(src, "step", i, f"step {int(step[i])}{after} is beyond {MAX_STEP:,} optimiser steps: the laws read "
                        f"the learning rate at every step up to the last (about 60 bytes each in a fit: "
                        f"{60 * float(step[-1]) / 2**30:,.0f} GiB here). If the column counts tokens or samples, divide "
                        f"it by the tokens (samples) per step; if the step is mistyped, fix the row")
        for k in ("lr", "loss"):
            try:
                a = arrs[k].astype(float)
            except (TypeError, ValueError):
                raise _not_numbers(src, k, arrs[k]) from None
            bad = ~np.isfinite(a)
            if bad.any():
                i = int(np.argmax(bad))
                raise _fail(src, k, i, f"value {a[i]} at step {int(step[i])} is not finite; drop or fill the row",
                            step=int(step[i]))
            if k == "lr" and np.any(a < 0):
                i = int(np.argmax(a < 0))
                raise _fail(src, k, i, f"learning rate {a[i]} at step {int(step[i])} is negative; learning rates must be >= 0",
                            step=int(step[i]))
            # a value 1e12 times the curve's typical size is a corrupt row, not data: it would put
            # every fitted parameter on a bound (lr) or overflow the fit (loss)
            typical = float(np.median(np.abs(a[a != 0]))) if np.any(a != 0) else 0.0
            if 0 < typical < MIN_MAGNITUDE:
                i = int(np.argmax(a != 0))
                raise _fail(src, k, None, f"the {'learning rates' if k == 'lr' else 'losses'} are of size {typical:.3g} "
                            f"(median of the nonzero values; {a[i]:.4g} at step {int(step[i])}), below "
                            f"{MIN_MAGNITUDE:.0e}, where the fit's squares underflow: a column in the wrong units or a "
                            f"corrupt file; rescale the column (a fit is the same in any units) or fix the file")
            huge = np.abs(a) > OUTLIER_FACTOR * typical if typical > 0 else np.zeros(a.size, bool)
            if huge.any():
                i = int(np.argmax(huge))
                raise _fail(src, k, i, f"{'learning rate' if k == 'lr' else 'loss'} {a[i]:.4g} at step {int(step[i])} is "
                            f"over {OUTLIER_FACTOR:.0e} times the curve's median {typical:.4g}: a corrupt row; fix or "
                            f"drop it", step=int(step[i]))
            over = np.abs(a) > MAX_MAGNITUDE
            if over.any():
                i = int(np.argmax(over))
                raise _fail(src, k, i, f"{'learning rate' if k == 'lr' else 'loss'} {a[i]:.4g} at step {int(step[i])} is "
                            f"beyond {MAX_MAGNITUDE:.0e}, more than any real {'schedule' if k == 'lr' else 'loss'} in "
                            f"any units: a corrupt column; fix the file", step=int(step[i]))
            arrs[k] = a
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "lr", arrs["lr"])
        object.__setattr__(self, "loss", arrs["loss"])
        if self.val_loss is not None:
            v = np.asarray(self.val_loss, dtype=float)
            if v.shape != step.shape:
                raise _fail(src, "val_loss", None, f"{v.size} values for {step.size} rows")
            object.__setattr__(self, "val_loss", v)
        if self.schedule is not None:
            self._check_schedule()

    def _check_schedule(self) -> None:
        src, s0 = self.source, int(self.schedule_start)
        sch = np.asarray(self.schedule, dtype=float)
        if sch.ndim != 1 or s0 < 0:
            raise _fail(src, "schedule", None, f"give a 1-d per-step schedule and a start step >= 0 (got shape "
                        f"{sch.shape}, start {s0})")
        bad = ~np.isfinite(sch) | (sch < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise _fail(src, "schedule", None, f"learning rate {sch[i]} at step {s0 + i} is not finite and >= 0")
        last = s0 + sch.size - 1
        if last < int(self.step[-1]):
            raise _fail(src, "schedule", None, f"the schedule ends at step {last}, before the last logged step "
                        f"{int(self.step[-1])}; give the learning rate up to the end of the log")
        inside = (self.step >= s0) & (self.step <= last)
        ref = sch[self.step[inside] - s0]
        tol = SCHEDULE_RTOL * max(float(sch.max()), float(self.lr.max()), 1e-300)
        off = np.abs(self.lr[inside] - ref) > tol
        if off.any():
            j = int(np.flatnonzero(inside)[np.argmax(off)])
            raise _fail(src, "lr", j, f"the logged learning rate {self.lr[j]:.6g} at step {int(self.step[j])} differs "
                        f"from the stated schedule's {sch[self.step[j] - s0]:.6g} (by more than {SCHEDULE_RTOL:g} of "
                        f"the peak): the schedule (spec or per-step column) is not the one this run used; fix the "
                        f"spec or leave it out", step=int(self.step[j]))
        object.__setattr__(self, "schedule", sch)
        object.__setattr__(self, "schedule_start", s0)

    def with_schedule(self, lr_per_step, start: int = 0) -> "LossCurve":
        """This curve with its learning rate given at every step from ``start`` (checked against
        the logged learning rates)."""
        from dataclasses import replace

        return replace(self, schedule=np.asarray(lr_per_step, dtype=float), schedule_start=int(start))

    def unsmooth_ema(self, beta: float) -> "LossCurve":
        r"""This curve with a logged exponential moving average of the loss turned back into means
        of the loss over each logging interval.

        Many training loops print :math:`m_s = \beta m_{s-1} + (1 - \beta) L_s`, one update per
        step, instead of the loss :math:`L_s`. Its successive values share most of their noise,
        and the average's own delay (about :math:`1/(1-\beta)` steps) would be fitted as part of
        the memory kernel. Between two logged steps :math:`t_{i-1} < t_i`, :math:`\Delta =
        t_i - t_{i-1}`,

        .. math::

            \frac{m_{t_i} - \beta^{\Delta} m_{t_{i-1}}}{1 - \beta^{\Delta}} =
            \sum_{t_{i-1} < s \le t_i} w_s L_s,\qquad
            w_s = \frac{(1-\beta)\,\beta^{t_i - s}}{1 - \beta^{\Delta}},\quad \sum_s w_s = 1,

        exactly: a weighted mean of the loss over the interval alone, as an interval-averaged log
        is, and independent of the other intervals' noise. The first row keeps its logged value (an
        average over everything before it): leave it to ``--skip-steps``. A bias-corrected average
        (divided by :math:`1 - \beta^{s}`) differs from the plain one only in the first few
        :math:`1/(1-\beta)` steps, which the same skip covers.

        Parameters
        ----------
        beta : float
            The average's decay per step, in (0, 1) (e.g. 0.98 or 0.99).
        """
        from dataclasses import replace

        beta = float(beta)
        if not (np.isfinite(beta) and 0.0 < beta < 1.0):
            raise InvalidArgumentError(f"--log-ema {beta!r}; the moving average's decay per step is in (0, 1), e.g. "
                                       f"0.98 (1 - 1/50: about a 50-step average)")
        y = self.loss  # finite, at least MIN_POINTS of them (the constructor's checks)
        decay = beta ** np.diff(self.step).astype(float)
        out = y.copy()
        out[1:] = (y[1:] - decay * y[:-1]) / (1.0 - decay)
        return replace(self, loss=out)

    def unsmooth_running_mean(self, period: int = 0) -> "LossCurve":
        r"""This curve with a logged running mean of the loss (reset every ``period`` steps, or
        never) turned back into means of the loss over each logging interval.

        Keras's per-batch logs and the average meters of many training scripts (timm's, for one)
        print the mean of every minibatch loss since the meter was last reset, at the start of each
        epoch, or once at the start of the run:
        :math:`m_t = \frac{1}{t - b_t}\sum_{b_t < s \le t} L_s` with :math:`b_t` the last reset
        before step :math:`t` (:math:`b_t = \lfloor (t-1)/P \rfloor P` for a period :math:`P`; 0
        with no reset). Such a log lags the loss by half the time since the reset (half the run, for
        a meter never reset), which a fit would read as the memory kernel. Between two logged steps
        :math:`t' < t` after the same reset, with :math:`c = t - b_t`, :math:`c' = t' - b_t`,

        .. math::

            \frac{c\, m_t - c'\, m_{t'}}{c - c'} = \frac{1}{t - t'} \sum_{t' < s \le t} L_s,

        exactly: the plain mean over the interval. The first row after a reset is already the mean
        over the steps since the reset, and is kept. A row at step 0 (no loss averaged yet) is kept.

        Two things a user should know. A step count off by one (the meter counting the losses of
        steps :math:`b..t` instead of :math:`b+1..t`) changes each value by
        :math:`(m_t - m_{t'})/(t - t')`, the change of the mean per step: negligible. The logged
        means' rounding is multiplied by about :math:`c/(t - t')`: a mean printed with four
        decimals, 30,000 steps after its reset and logged every 50 steps, carries rounding noise of
        about 0.025 after the inversion (returned in :attr:`unsmoothing_rounding`).

        Parameters
        ----------
        period : int
            Steps between the meter's resets (steps per epoch); 0 for a meter never reset.
        """
        from dataclasses import replace

        from sde_scales.fitting.fit import loss_resolution

        if not is_whole(period, 0):
            raise InvalidArgumentError(f"--log-running-mean {period!r}; give the steps between the mean's resets (the "
                                       f"steps per epoch), or 0 for a mean over the whole run so far")
        t = self.step.astype(np.int64)
        b = ((t - 1) // period) * period if period > 0 else np.zeros_like(t)
        c = np.where(t > 0, t - b, 0).astype(float)
        y = self.loss
        out = y.copy()
        same = (b[1:] == b[:-1]) & (c[:-1] > 0)
        i = np.flatnonzero(same) + 1
        out[i] = (c[i] * y[i] - c[i - 1] * y[i - 1]) / (c[i] - c[i - 1])
        q = loss_resolution(y)
        gain = np.zeros_like(y)  # how much each recovered value's rounding is amplified
        gain[i] = np.sqrt(c[i] ** 2 + c[i - 1] ** 2) / (c[i] - c[i - 1])
        rounding = float(q / np.sqrt(12.0) * gain.max()) if q > 0 and i.size else 0.0
        return replace(self, loss=out, unsmoothing_rounding=rounding)

    def head(self, until_step: int) -> "LossCurve":
        """The rows logged before ``until_step`` (and the schedule up to the last of them): the
        curve as it stood at that step, for validating a fit on its own later rows."""
        from dataclasses import replace

        keep = self.step < int(until_step)
        if keep.sum() < MIN_POINTS:
            raise InvalidArgumentError(f"{self.name}: {int(keep.sum())} rows before step {int(until_step)}; a curve needs "
                                       f"at least {MIN_POINTS} points")
        n_sched = int(self.step[keep][-1]) - int(self.schedule_start) + 1
        sch = self.schedule[:n_sched] if self.schedule is not None and n_sched > 0 else None
        val = None if self.val_loss is None else self.val_loss[keep]
        return replace(self, step=self.step[keep], lr=self.lr[keep], loss=self.loss[keep], val_loss=val,
                       name=f"{self.name}[:{int(until_step)}]", schedule=sch)

    def with_spec(self, spec: "ScheduleSpec | str") -> "LossCurve":
        """This curve with the schedule of a :class:`ScheduleSpec` (or its text form), expanded to
        every step and checked against the logged learning rates."""
        return self.with_schedule(self._spec_rates(spec), 0)

    def _spec_rates(self, spec: "ScheduleSpec | str") -> np.ndarray:
        """The rate at every step 0..total of a :class:`ScheduleSpec` (or its text form), refused
        where it is not a spec or ends before this curve's last logged step."""
        spec = ScheduleSpec.parse(spec) if isinstance(spec, str) else spec
        if not isinstance(spec, ScheduleSpec):
            raise InvalidArgumentError(f"{self.source}: schedule={spec!r}; give a ScheduleSpec or its text form, e.g. "
                                       f"warmup=2160,peak=3e-4,decay=cosine,total=72000")
        if spec.total < int(self.step[-1]):
            raise _fail(self.source, "schedule", None, f"the spec's total={spec.total} steps ends before the last "
                        f"logged step {int(self.step[-1])}; give the run's total number of steps")
        return spec.expand()

    # ----------------------------------------------------------------------------- I/O
    @classmethod
    def from_csv(cls, path: str | Path, columns: dict | None = None, schedule=None) -> "LossCurve":
        """A curve from a CSV file; ``columns`` maps step, lr, loss (val_loss) to the file's names
        (:func:`resolve_columns`); ``schedule`` as in :func:`load_curve`."""
        df = _read_table(path, "csv")
        try:
            return cls._from_frame(df, Path(path), columns, schedule)
        except DataFileError as exc:
            raise _with_csv_line(exc, Path(path), len(df)) from None

    @classmethod
    def from_parquet(cls, path: str | Path, columns: dict | None = None, schedule=None) -> "LossCurve":
        """A curve from a Parquet file; ``columns`` and ``schedule`` as in :meth:`from_csv`."""
        return cls._from_frame(_read_table(path, "parquet"), Path(path), columns, schedule)

    @classmethod
    def from_json(cls, path: str | Path, columns: dict | None = None, schedule=None) -> "LossCurve":
        """A curve from a log of records: JSON Lines (``.jsonl``, ``.ndjson``: one object per line,
        as a training loop or a Weights & Biases history writes it), a JSON list of objects, or
        Hugging Face's ``trainer_state.json`` (its ``log_history``). Nested objects are flattened
        with ``/`` (``{"train": {"loss": 2.1}}`` is ``train/loss``). Records without a loss are
        other events (evaluations, timings, the run's summary): an evaluation loss among them is
        attached to the loss record of the same step as ``val_loss``, the rest are skipped.
        ``columns`` and ``schedule`` as in :meth:`from_csv`."""
        path = Path(path)
        df, place = _read_records(path)
        try:
            return cls._from_records(df, path, columns, schedule)
        except DataFileError as exc:  # name the record's line (JSON Lines) or place in the list, not the curve's row
            names = resolve_columns(list(df.columns), str(path), columns, need_lr=schedule is None)
            raise _on_line(exc, df, names["step"], names.get(getattr(exc, "column", None)), place) from None

    @classmethod
    def from_text_log(cls, path: str | Path, columns: dict | None = None, schedule=None) -> "LossCurve":
        """A curve from a training log as printed (nanoGPT's ``iter 100: loss 4.23, ...``,
        Megatron-LM's ``iteration 100/ 5000 | learning rate: 1.5E-04 | lm loss: 6.5E+00 |``,
        ``step=100 lr=3e-4 loss=4.2``): each line's ``key value`` pairs are a record
        (:mod:`sde_scales.fitting.text_logs`, which states the rules), read as a JSON log's
        (:meth:`from_json`). Step keys that never appear on a line with the loss are left out, so that
        another event's step (nanoGPT's evaluations print ``step``, its training lines ``iter``)
        is not taken for the training lines' (only candidates for the step are left out so: a rate
        printed on a line of its own stays). A run resumed from a checkpoint and printing into
        the same file logs its steps again: as for TensorBoard's event files, the records logged
        after the restart replace those before it from its step on, with a
        :class:`~sde_scales.fitting.event_files.LogRestartWarning` (:func:`_purge_restarts`).
        ``columns`` and ``schedule`` as in :meth:`from_csv`."""
        from sde_scales.fitting.text_logs import read_text_log_lines, refuse_commas

        path = Path(path)
        records, lines, commas = read_text_log_lines(path)
        df = _records_frame(records)
        want = (columns or {}).get("loss")
        losses = [want] if want in df.columns else list(dict.fromkeys(
            c for a in ("loss",) + COLUMN_ALIASES["loss"] for c in _named(list(df.columns), a)))
        if len(losses) == 1:
            on_loss = df[losses[0]].notna() | (df.attrs["nan_values"].get(losses[0], np.zeros(len(df), bool)))
            steps = {c for a in ("step",) + COLUMN_ALIASES["step"] for c in _named(list(df.columns), a)}
            written = {k for com in commas for k in com}  # a step written with a comma is judged below
            keep = [c for c in df.columns if c not in steps or df.loc[on_loss, c].notna().any()
                    or c in (columns or {}).values() or c in written]
            nan_values = {c: m for c, m in df.attrs["nan_values"].items() if c in keep}
            df = df[keep]
            df.attrs["nan_values"] = nan_values
        found = list(df.columns)
        if not (columns or {}).get("step") and not any(_named(found, a) for a in ("step",) + COLUMN_ALIASES["step"]) \
                and {"loss", "learning_rate", "epoch"} <= set(found):
            raise _fail(str(path), "step", None, "no line gives a step. Hugging Face's Trainer prints its records "
                        "({'loss': ..., 'learning_rate': ..., 'epoch': ...}) without the step; read its "
                        "trainer_state.json instead (in each checkpoint-N folder of the output directory), whose "
                        "log_history gives each record's step")
        names = resolve_columns(found, str(path), columns, need_lr=schedule is None)
        refuse_commas(names, lines, commas, str(path))
        df = _purge_restarts(df, names["step"], str(path), lines)
        try:
            return cls._from_records(df, path, columns, schedule, names=names)
        except DataFileError as exc:  # its row is the curve's, not the file's: name the line
            raise _on_line(exc, df, names["step"], names.get(getattr(exc, "column", None)),
                           lambda k: f"line {lines[k]}") from None

    @classmethod
    def _from_records(cls, df, path: Path, columns: dict | None = None, schedule=None,
                      names: dict | None = None) -> "LossCurve":
        """The curve of a log's records as a table (:func:`_records_frame`): records without the
        loss or the rate are other events; an evaluation loss among them is attached to the loss
        record of its step; a logger's separate records of one step are merged. ``names``: the
        columns as :func:`resolve_columns` resolved them for ``df`` (resolved here where not given)."""
        import pandas as pd

        if names is None:
            names = resolve_columns(list(df.columns), str(path), columns, need_lr=schedule is None)
        nan_loss = (df.attrs.get("nan_values") or {}).get(names["loss"])
        nan_loss = pd.Series(np.zeros(len(df), bool) if nan_loss is None else nan_loss, index=df.index)
        has = df[names["loss"]].notna() | nan_loss  # a NaN loss is a value (a diverged run), checked below
        if not has.any():
            raise _fail(str(path), names["loss"], None, f"no record has a value of {names['loss']!r}; is this the "
                        f"training log (or name the loss with --columns)?")
        st = names["step"]
        val_by_step = None
        if "val_loss" in names:
            ev = df[df[names["val_loss"]].notna()]
            val_by_step = ev.groupby(st)[names["val_loss"]].last()
        # records with a loss or a learning rate; a logger that writes them as separate records of one
        # step (in step order) has them merged, each the last value given at that step
        rows = df[has | df[names["lr"]].notna()] if "lr" in names else df[has]
        nan_rows = nan_loss[rows.index]
        steps = pd.to_numeric(rows[st], errors="coerce")
        if steps.notna().all() and bool((steps.diff().dropna() >= 0).all()):
            nan_by_step = nan_rows.groupby(rows[st].to_numpy()).max()  # a NaN loss at a step, in any of its records
            rows = rows.groupby(st, sort=False, as_index=False).last()
            nan_rows = rows[st].map(nan_by_step)
        else:
            rows = rows.copy()
        if val_by_step is not None:
            rows[names["val_loss"]] = rows[st].map(val_by_step)
        rows = rows.reset_index(drop=True)
        rows.attrs["nan_values"] = {names["loss"]: np.asarray(nan_rows, dtype=bool)}
        return cls._from_frame(rows, path, names, schedule)

    @classmethod
    def from_tensorboard(cls, path: str | Path, columns: dict | None = None, schedule=None) -> "LossCurve":
        """A curve from one run's TensorBoard event files (a folder of ``events.out.tfevents.*``
        files, or one of them; :func:`~sde_scales.fitting.event_files.read_event_scalars`): its
        scalar tags are the columns, resolved as a CSV's (``train/loss``, ``lm loss``,
        ``learning-rate``, ... or ``columns``); ``schedule`` as in :meth:`from_csv`. The curve is
        named after the run's folder. Needs the ``tensorboard`` package."""
        from sde_scales.fitting.event_files import read_event_scalars, run_folder

        df = read_event_scalars(path)
        run = run_folder(path)
        names = resolve_columns(list(df.columns), str(run), columns, need_lr=schedule is None)
        for key in ("step", "lr", "loss", "val_loss"):
            tag = names.get(key)
            if tag in df.attrs["nonfinite"]:
                at, x = df.attrs["nonfinite"][tag]
                raise _fail(str(run), tag, None, f"value {x} at step {at} is not finite (a diverged run?); fit the "
                            f"steps before it: export them to CSV")
        if "lr" in names:  # tags are logged at their own cadences: the rate between its events is linear
            df = _rates_at_loss_steps(df, names, str(run))
        return cls._from_frame(df, run, names, schedule)

    @classmethod
    def _from_frame(cls, df, path: Path, columns: dict | None = None, schedule=None) -> "LossCurve":
        names = resolve_columns(list(df.columns), str(path), columns, need_lr=schedule is None)
        twice = sorted(set(df.attrs.get("duplicates") or ()) & set(names.values()))
        if twice:
            role = next(k for k, v in names.items() if v == twice[0])
            what = repr(twice[0]) if len(twice) == 1 else f"columns {twice}"
            raise _fail(str(path), twice[0], None, f"the header names {what} twice, so the file does not say which "
                        f"column is the {role}; rename or drop one of them")
        nan_values = (df.attrs.get("nan_values") or {}).get(names["loss"])
        if _is_wandb_step(names["step"]) and not (columns or {}).get("step"):
            warnings.warn(f"{path}: the step is read from {names['step']!r}, Weights & Biases' count of wandb.log calls. "
                          f"It is the optimiser's step only where the run passed step= to wandb.log or logged once "
                          f"per update; otherwise every time scale is in log calls. Export the run's global step and "
                          f"name it with --columns step=..., or name {names['step']!r} to confirm it",
                          UserWarning, stacklevel=4)
        df = df[list(names.values())].rename(columns={v: k for k, v in names.items()})
        for role, col in names.items():  # a Parquet or pandas column of booleans converts to 0.0 and 1.0
            if str(df[role].dtype) in ("bool", "boolean"):
                raise _fail(str(path), col, None, f"a column of booleans, not numbers: the log's {col!r} is not the "
                            f"{role}; name the column that is with --columns")
        df, nan_values = _merge_rows_of_a_step(df, nan_values, str(path), names)
        read = tuple((k, v) for k, v in names.items())
        val = df["val_loss"].to_numpy(dtype=float, na_value=np.nan) if "val_loss" in df.columns else None
        try:
            loss = df["loss"].to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            raise _not_numbers(str(path), names["loss"], df["loss"].to_numpy(dtype=object)) from None
        empty = np.isnan(loss)
        _refuse_nan_tail(str(path), names["loss"], df["step"].to_numpy(), loss, nan_values)
        if "lr" not in names:
            return cls._loss_only(df, path, loss, val, read, schedule)
        if empty.any() and not empty.all():  # a per-step file, or any log with the rate on more rows than the loss
            return cls._sparse_loss(df, path, loss, val, read)
        return cls(df["step"].to_numpy(), df["lr"].to_numpy(), df["loss"].to_numpy(), val,
                   name=file_curve_name(path), source=str(path), columns=read)

    @classmethod
    def _loss_only(cls, df, path: Path, loss: np.ndarray, val, read: tuple, schedule) -> "LossCurve":
        """A file with the loss and no learning rate (a Weights & Biases panel export holds one
        metric per file), its learning rate at every step from ``schedule`` (a
        :class:`ScheduleSpec` or its text form). Rows whose loss is empty are not logged (an export
        of several runs has a row for every step any of them logged); the others are checked as any
        log's, and the spec must reach the last logged step."""
        from dataclasses import replace

        src = str(path)
        logged = ~np.isnan(loss)
        if not logged.any():
            raise _fail(src, read and dict(read).get("loss", "loss"), None, "every loss cell is empty")
        v = None if val is None else val[logged]
        steps = df["step"].to_numpy()[logged]
        probe = cls(steps, np.ones(int(logged.sum())), loss[logged], v, name=file_curve_name(path),
                    source=src)  # the log's checks
        eta = probe._spec_rates(schedule)
        return replace(probe, lr=eta[probe.step], schedule=eta, schedule_start=0, columns=read)

    @classmethod
    def _sparse_loss(cls, df, path: Path, loss: np.ndarray, val, read: tuple = ()) -> "LossCurve":
        """A log whose learning rate is on more rows than its loss: a per-step file (a row for every
        step), an evaluation loss fitted, or a logger that writes the rate more often. Every row's
        learning rate makes the schedule (linear between rows, as for any log: :meth:`per_step_lr`;
        on a per-step file, the file's rate at every step), the rows with a loss the curve. The rows
        are checked as any log's (steps increasing whole numbers, finite rates >= 0)."""
        src = str(path)
        # every row checked as a log, by the constructor (the loss stands in where it is empty: its
        # rows are not kept)
        rates = cls(df["step"].to_numpy(), df["lr"].to_numpy(), np.where(np.isnan(loss), np.nanmedian(loss), loss),
                    name=file_curve_name(path), source=src)
        logged = ~np.isnan(loss)
        per_step = bool(np.all(np.diff(rates.step) == 1))
        s0 = int(rates.step[0])
        v = None if val is None else val[logged]
        return cls(rates.step[logged], rates.lr[logged], loss[logged], v, name=file_curve_name(path), source=src,
                   schedule=rates.per_step_lr()[s0:], schedule_start=s0, columns=read,
                   # a per-step file leaves the loss empty by design: nothing to name
                   rows_without_loss=0 if per_step else int((~logged).sum()),
                   steps_without_loss=() if per_step else tuple(int(t) for t in rates.step[~logged][:5]))

    # ----------------------------------------------------------------------------- derived
    @property
    def log_every(self) -> int:
        """The most common logging interval."""
        d = np.diff(self.step)
        vals, counts = np.unique(d, return_counts=True)
        return int(vals[np.argmax(counts)])

    def drop_bin_steps(self, factor: int) -> int:
        """Width of the drop bins of :class:`ScheduleFeatures`: ``factor`` logging intervals; with a
        per-step schedule, at most ``T / MAX_DROP_BINS`` steps (at least 1), so that a sparse log
        does not blur a schedule that is known step by step (bins of 4 x 128 steps lump a cosine
        decay's drops at a few centres, which the multi-power law's response does not forgive)."""
        b = int(factor) * self.log_every
        if self.schedule is not None:
            b = min(b, max(1, -(-int(self.step[-1]) // MAX_DROP_BINS)))
        return max(1, b)

    @property
    def peak_lr(self) -> float:
        """The largest learning rate: of the schedule where there is one (a sparse log may miss it)."""
        return float(np.max(self.schedule)) if self.schedule is not None else float(np.max(self.lr))

    @property
    def known_from(self) -> int:
        """The first step whose learning rate is known (from the schedule, or the first logged step)."""
        return int(self.schedule_start) if self.schedule is not None else int(self.step[0])

    def assumption(self, at_steps=None, rates: np.ndarray | None = None) -> str | None:
        r"""What is assumed about the learning rate before :attr:`known_from`, or None: known from
        step 0, or assumed over an area too small to matter at the fitted or scored steps
        ``at_steps`` (:data:`LATE_START_RTOL`; None: always said). ``rates``: this curve's
        :meth:`per_step_lr`, where the caller has it already."""
        s0 = self.known_from
        if s0 == 0:
            return None
        first = float(self.schedule[0]) if self.schedule is not None else float(self.lr[0])
        assumed = s0 * first  # the area before s0 as assumed; off by at most this for a rate in [0, first] there
        share = ""
        if at_steps is not None and np.size(at_steps):
            at = np.maximum(np.asarray(at_steps, dtype=np.int64), s0)
            rates = self.per_step_lr() if rates is None else rates
            cum = np.concatenate([[0.0], np.cumsum(rates[: int(at.max())])])
            area = cum[at]  # sum_{k < t}
            off = assumed > LATE_START_RTOL * area
            if off.mean() <= LATE_START_RTOL:
                return None
            if area[0] > 0:
                share = (f" (up to {100 * assumed / area[0]:.3g}% of the learning-rate area at step {int(at[0])}, "
                         f"where the fitted or scored points begin; over {100 * LATE_START_RTOL:g}% at "
                         f"{int(off.sum())} of its {off.size} points)")
        return (f"{self.name}: the learning rate is not known before step {s0}; it is taken to be {first:.4g} (its "
                f"first known value) over steps 0..{s0 - 1}, so a warmup there counts as steps at that rate{share}. "
                f"Give the per-step schedule (a per-step file, or a schedule spec: --schedule "
                f"{self.name}:warmup=...,peak=...,decay=...,total=...) to use the true one, or score from a later "
                f"step (--skip-steps)")

    def gaps(self) -> str | None:
        """A note on jumps between logged steps of more than :data:`GAP_FACTOR` logging intervals,
        or None."""
        d = np.diff(self.step).astype(float)
        if d.size < 2 or d.max() <= GAP_FACTOR * d.min():  # (no interval can be that far above its neighbours)
            return None
        # each interval against the median of up to three on either side: logs whose interval grows
        # steadily (logged at log-spaced steps) have no jump, a mistyped last step has one
        pad = np.concatenate([np.full(3, np.nan), d, np.full(3, np.nan)])
        win = np.lib.stride_tricks.sliding_window_view(pad, 7).copy()
        win[:, 3] = np.nan
        local = np.nanmedian(win, axis=1)
        big = np.flatnonzero(d > GAP_FACTOR * local)
        if big.size == 0:
            return None
        i = int(big[0]) + 1
        more = f" (and {big.size - 1} more)" if big.size > 1 else ""
        return (f"{self.name}: the logged steps jump from {int(self.step[i - 1])} to {int(self.step[i])} at row {i}{more}, "
                f"{int(d[i - 1] / local[i - 1])} logging intervals: no loss is logged across the jump and the learning "
                f"rate is taken to be linear over it. If a step is mistyped, or the file holds logs of two runs, fix "
                f"the file")

    def spikes(self, from_step: int = 0) -> str | None:
        r"""A note on logged losses at or after ``from_step`` that stand far from their neighbours, or
        None.

        A Hampel identifier: point :math:`i` is a spike when

        .. math:: |y_i - m_i| > z\,\max(1.4826\,\mathrm{MAD}_i,\ \sigma),

        :math:`m_i` and :math:`\mathrm{MAD}_i` the median and the median absolute deviation (about
        :math:`m_j`) over the :data:`SPIKE_WINDOW` logged points centred on it, :math:`\sigma` the
        curve's noise level from successive differences, :math:`z` = :data:`SPIKE_Z` (its reason is
        there). Model-free, so a law's miss of the curve never counts: on a monotone stretch, however
        steep, the median of the window is the point itself; a step decay's fall, a warm restart's
        rise and a smooth extremum stay within the window's own spread. The fits' loss (Huber's)
        bounds a spike's pull on them, but a flat objective can still be tipped by it, and a score
        against the moving average takes it in whole: the note says so and names the worst."""
        found = self._spike_scan(from_step)
        if found is None:
            return None
        hit, z, med, size = found
        y = self.loss
        worst = hit[np.argsort(-z[hit], kind="stable")[:3]]
        named = "; ".join(f"row {int(i)}, step {int(self.step[i])}: loss {y[i]:.4g} against {med[i]:.4g} around it"
                          + (f" ({z[i]:.0f} noise levels)" if np.isfinite(z[i]) else "") for i in sorted(worst))
        more = f", the {'largest ' + str(worst.size) if hit.size > worst.size else 'worst'}" if hit.size > 1 else ""
        return (f"{self.name}: {hit.size} logged loss(es) lie more than {SPIKE_Z:g} noise levels from the median of the "
                f"{size} points around them{more}: {named}. Loss spikes of the run, or corrupt rows? The fits' robust "
                f"loss bounds each point's pull, but a fit whose objective is flat can still be tipped by them, and the "
                f"RMSE against the moving average takes them in whole: to see whether an answer depends on them, "
                f"run again without them (fit-delay --drop-spikes; Python: curve.without_spikes()), or fix "
                f"{self.source}")

    def spike_rows(self, from_step: int = 0) -> np.ndarray:
        """The rows :meth:`spikes` names (all of them, in order): empty where there are none."""
        found = self._spike_scan(from_step)
        return np.array([], dtype=np.int64) if found is None else found[0]

    def without_spikes(self, from_step: int = 0) -> "LossCurve":
        """This curve without the rows :meth:`spikes` names, its learning rate at every step unchanged.

        The learning rate is kept at every step as the curve read it before (its schedule, or the
        rates between its logged steps, from its first logged step on, so that what is assumed
        before that step, and said, stays the same): a dropped row takes its loss out of the fit and
        the scores, not its learning rate out of the schedule. This curve itself where there is no
        spike; refused where fewer than :data:`MIN_POINTS` rows would be left."""
        from dataclasses import replace

        rows = self.spike_rows(from_step)
        if rows.size == 0:
            return self
        keep = np.ones(self.step.size, dtype=bool)
        keep[rows] = False
        if keep.sum() < MIN_POINTS:
            raise InvalidArgumentError(f"{self.name}: dropping its {rows.size} spike rows would leave {int(keep.sum())} "
                                       f"points; a curve needs at least {MIN_POINTS}")
        base = self
        if self.schedule is None:  # the rates as read now, from the first logged step on
            s0 = int(self.step[0])
            base = self.with_schedule(self.per_step_lr()[s0:], s0)
        val = None if self.val_loss is None else self.val_loss[keep]
        return replace(base, step=self.step[keep], lr=self.lr[keep], loss=self.loss[keep], val_loss=val)

    def _spike_scan(self, from_step: int):
        """(rows, z, local medians, window) of the spikes at or after ``from_step``, or None; cached."""
        if from_step not in self._spike_scans:
            self._spike_scans[from_step] = self._find_spikes(from_step)
        return self._spike_scans[from_step]

    def _window_median(self) -> tuple[np.ndarray, int, np.ndarray]:
        """(median of the loss over the :data:`SPIKE_WINDOW` logged points centred on each row, the
        window's size, the loss padded at both ends as the windows read it); cached.

        Inside, scipy's filter (half the time of np.median over the windows at 1M points). The
        windows of the first and last half-window rows reach past the ends, where they are completed
        by point reflection through the value at the end of a robust line (Theil-Sen) through the
        half-window of points there: ``2 m - y[k]``. A trend, however steep, then continues through
        the end, so the steep start of a run is not read as a spike (mirroring, ``c b | a b c``,
        folded the start's fall back onto itself: a 50-step-logged warmup's second row stood 14
        noise levels above such a median). A spike in the first or last row is still judged
        against its real neighbours: the robust line passes by it, so the reflected points are the
        neighbours' level, not the spike's."""
        if not self._medians:
            from scipy.ndimage import median_filter
            from scipy.stats import theilslopes

            y = self.loss
            size = min(SPIKE_WINDOW, y.size - (1 - y.size % 2))
            half = size // 2
            med = median_filter(y, size=size, mode="mirror")
            if half == 0:
                padded = y.copy()
            else:
                x = np.arange(half + 1, dtype=float)
                head = theilslopes(y[:half + 1], x)
                tail = theilslopes(y[-half - 1:], x)
                m0 = float(head.intercept)
                m1 = float(tail.intercept + tail.slope * half)
                padded = np.concatenate([2 * m0 - y[half:0:-1], y, 2 * m1 - y[-2:-half - 2:-1]])
                ends = np.r_[0:half, y.size - half:y.size]  # disjoint: size <= y.size
                med[ends] = np.median(np.lib.stride_tricks.sliding_window_view(padded, size)[ends], axis=1)
            self._medians.append((med, size, padded))
        return self._medians[0]

    def loss_rise(self, from_step: int = 0) -> LossRise | None:
        r"""The largest rise of the loss at or after ``from_step`` that no law here can follow, or None.

        Every law of :mod:`sde_scales.fitting.laws` has a loss that falls, or stays, while the
        learning rate falls or stays; only a rate that rises again after its warmup (a warm
        restart) raises it, and with a delay. So with :math:`m_i` the median of the
        :data:`SPIKE_WINDOW` logged points centred on row :math:`i` (model-free: a spike shorter
        than half the window does not move it) and :math:`j(i)` the row of the lowest :math:`m` up
        to :math:`i`, the rise at :math:`i` is

        .. math:: r_i = m_i - m_{j(i)}, \qquad \text{judged only where } \max_{j(i) \le k \le i}
                  \tilde\eta_k \le \tilde\eta_{j(i)} + \epsilon\,\eta_{peak},

        :math:`\tilde\eta` the learning rate with its warmup (:func:`warmup_end`) held at the
        warmup's top: a loss that rises while the rate warms up is judged too (a run that diverges
        as its rate reaches the peak), a loss that rises after a warm restart is not;
        :math:`\epsilon` = :data:`SCHEDULE_RTOL`, a logged rate's rounding. A rise is returned when
        :math:`\max r_i > z\,\sigma_m`, :math:`z` = :data:`RISE_Z` (its reason is there),
        :math:`\sigma_m` the median's noise over time scales from one window to an eighth of the
        log (:func:`_slow_noise`). ``diverged`` when the log *ends* more than :math:`z\,\sigma_m` above its
        first judged median, after falling below it by as much, its last row judged: a run that
        gave back all it had learned, and kept it given back (a catapult or an unstable stretch that
        recovers is a rise, not a divergence). Then ``row`` is the last row and ``low_row`` the
        lowest before it."""
        if from_step not in self._rises:
            self._rises[from_step] = self._find_rise(int(from_step))
        return self._rises[from_step]

    def _find_rise(self, from_step: int) -> LossRise | None:
        import pandas as pd

        med, size, _ = self._window_median()
        k0 = int(np.searchsorted(self.step, from_step))
        m = med[k0:]
        if m.size <= size:
            return None
        sigma = _slow_noise(m, size)
        if not sigma > 0:
            return None
        rates = self.per_step_lr()
        we = warmup_end(rates)
        lr = np.asarray(self.lr[k0:], dtype=float)
        if we > 0:  # the warmup's rise held at its top
            lr = np.where(self.step[k0:] < we, float(rates[:we].max()), lr)
        idx = np.arange(m.size)
        low = np.minimum.accumulate(m)
        j = np.maximum.accumulate(np.where(m <= low, idx, 0))
        lr_max = pd.Series(lr).groupby(j).cummax().to_numpy()  # the highest rate since the low
        judged = lr_max <= lr[j] + SCHEDULE_RTOL * max(self.peak_lr, 0.0)
        r = np.where(judged, m - low, 0.0)
        margin = RISE_Z * sigma
        i = int(np.argmax(r))
        if not r[i] > margin:
            return None
        diverged = bool(judged[-1] and m[-1] > m[0] + margin and m[0] - low[-1] > margin)
        if diverged:
            i = m.size - 1
        lo = int(j[i])
        return LossRise(k0 + lo, float(m[lo]), k0 + i, float(m[i]), k0, float(m[0]), sigma, diverged)

    def rise_note(self, from_step: int = 0) -> str | None:
        """What :meth:`loss_rise` found, in words (None where nothing, or a divergence:
        :meth:`divergence` names that)."""
        r = self.loss_rise(from_step)
        if r is None or r.diverged:
            return None
        s = self.step
        low = int(s[r.low_row])
        return (f"{self.name}: the loss rises from {r.low_level:.4g} at step {low} to {r.level:.4g} at step "
                f"{int(s[r.row])} (medians of {SPIKE_WINDOW} logged points; {(r.level - r.low_level) / r.sigma:.0f} "
                f"times their noise) while the learning rate does not rise. No law here has a loss that rises at a "
                f"falling or constant rate, so the fit cannot follow that stretch and is pulled by it: an unstable "
                f"or diverging stretch of the run, an overfitting validation loss, a metric that rises (an "
                f"accuracy) read as the loss, or the log of another run appended? To fit what comes before, cut the "
                f"log after step {low}, where the loss was lowest (Python: curve.head({low + 1}))")

    def divergence(self, from_step: int = 0) -> str | None:
        """An error message where the loss diverged (:meth:`loss_rise`, ``diverged``), else None."""
        r = self.loss_rise(from_step)
        if r is None or not r.diverged:
            return None
        s = self.step
        low = int(s[r.low_row])
        return (f"{self.source}, column 'loss': the loss climbs from {r.low_level:.4g} at step {low} to {r.level:.4g} "
                f"at its last logged step, {int(s[r.row])}, above {r.start_level:.4g}, where the log begins (step "
                f"{int(s[r.start_row])}; medians of {SPIKE_WINDOW} logged points), while the learning rate does not "
                f"rise: the run diverged. No law here has a loss that rises at a falling or constant rate, so a fit "
                f"through it, or a score against it, would be meaningless. Use the rows up to step {low}, where the "
                f"loss was lowest (cut the log after it; Python: curve.head({low + 1}))")

    def _find_spikes(self, from_step: int):
        from sde_scales.fitting.fit import noise_level  # (fit imports this module)

        y = self.loss
        med, size, padded = self._window_median()
        # the windows, padded as the medians' are, for each one's MAD about its median
        windows = np.lib.stride_tricks.sliding_window_view(padded, size)
        spread = np.empty(y.size)
        for a in range(0, y.size, 65536):  # 65,536 windows at a time
            b = min(y.size, a + 65536)
            spread[a:b] = np.median(np.abs(windows[a:b] - med[a:b, None]), axis=1)
        sigma = np.maximum(1.4826 * spread, noise_level(y))
        dev = np.abs(y - med)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(dev > 0, dev / sigma, 0.0)
        z[self.step < from_step] = 0.0
        hit = np.flatnonzero(z > SPIKE_Z)
        return None if hit.size == 0 else (hit, z, med, size)

    def per_step_lr(self) -> np.ndarray:
        """Learning rate at every step ``0 .. step[-1]``.

        With a schedule: the schedule (held at its first value before ``schedule_start``).
        Without: linear between logged steps, held at the first logged value before it, and held
        at the second-to-last logged value after it. The last logged value is used for the last
        step only: it is the rate of an update that no logged loss has seen, and decay-to-zero runs
        log 0 there. Interpolating towards it would invent a drop over the last logging interval
        (for a constant schedule, a full drop).
        """
        k = np.arange(int(self.step[-1]) + 1)
        if self.schedule is not None:
            s0 = int(self.schedule_start)
            return self.schedule[np.clip(k - s0, 0, None)]
        lr = np.interp(k, self.step[:-1], self.lr[:-1])
        lr[-1] = self.lr[-1]
        return lr

    def untrained_rows(self) -> int:
        r"""How many of the first rows were logged before any update with a positive learning rate:
        rows whose learning-rate area :math:`S_1 = \sum_{k < t} \eta_k` is 0 (a log's step 0, or
        the steps of a warmup that starts at a rate of 0). Their loss is the initial loss, which no
        law describes: every law's power term :math:`A S_1^{-\alpha}` is infinite there, and a fit
        that took the initial loss in bent :math:`\alpha` towards 0 to reach it. The area never
        decreases, so these rows are a prefix. Fits, scores and the moving averages of
        :meth:`window_rows` leave them out; :func:`~sde_scales.fitting.fit.predict` gives NaN there."""
        if not self._untrained:
            cum = np.concatenate([[0.0], np.cumsum(self.per_step_lr())])
            self._untrained.append(int(np.searchsorted(cum[self.step], 0.0, side="right")))
        return self._untrained[0]

    def initial_loss_note(self, skip_steps: int = 0) -> str | None:
        """What :meth:`untrained_rows` leaves out beyond what ``skip_steps`` leaves out anyway, in
        words (None where that is nothing)."""
        u = self.untrained_rows()
        first = int(np.searchsorted(self.step[:u], skip_steps, side="left"))  # the first of them at or after skip
        if first >= u:
            return None
        rows = f"row {first} (step {int(self.step[first])})" if first == u - 1 else \
            f"rows {first}-{u - 1} (steps {int(self.step[first])}-{int(self.step[u - 1])})"
        return (f"{self.name}: {rows} of {self.source} log the loss before any update with a positive learning rate "
                f"(learning-rate area 0: the initial loss), where every law's power term A S1^-alpha is infinite: "
                f"left out of the fit, the scores and the moving averages, and not predicted")

    def smoothed(self, window_steps: int = 1000) -> np.ndarray:
        """Centred moving average of the loss over ``window_steps`` steps (the points whose step is
        within half a window), shrinking at the ends; rows before the first update
        (:meth:`untrained_rows`) are in no other row's window."""
        return self.averaged(self.loss, window_steps)

    def averaged(self, values: np.ndarray, window_steps: int = 1000) -> np.ndarray:
        """The same centred moving average as :meth:`smoothed`, of any values given at this curve's
        rows (a prediction, a noise-free loss, residuals). Values at rows before the first update
        enter no other row's average (a prediction is NaN there); those rows keep their own value."""
        values = np.asarray(values, dtype=float)
        if values.shape != self.step.shape:
            raise InvalidArgumentError(f"{values.size} values for the {self.step.size} rows of {self.name}; give one per row")
        u = self.untrained_rows()
        inside = values if u == 0 else np.concatenate([np.zeros(u), values[u:]])  # in no window from row u on
        c = np.concatenate([[0.0], np.cumsum(inside)])
        lo, hi = self.window_rows(window_steps)
        out = (c[hi] - c[lo]) / (hi - lo)
        out[:u] = values[:u]
        return out

    def window_rows(self, window_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ranges ``[lo, hi)`` of the centred windows of :meth:`smoothed`: the rows whose step
        is within half a window of each row's step, from the first row after the update-free start
        on (:meth:`untrained_rows`; each row of that start is a window of its own)."""
        half = window_steps / 2
        lo = np.searchsorted(self.step, self.step - half, side="left")
        hi = np.searchsorted(self.step, self.step + half, side="right")
        u = self.untrained_rows()
        if u:
            lo = np.maximum(lo, u)
            own = np.arange(u)
            lo[:u], hi[:u] = own, own + 1
        return lo, hi

    def cooldown_mask(self) -> np.ndarray:
        """Rows after the learning rate has left its final plateau at peak (the cooldown); all
        False for a constant schedule."""
        peak = self.peak_lr
        at_peak = np.flatnonzero(self.lr >= peak * (1 - 1e-6))
        last_peak = int(at_peak[-1]) if at_peak.size else 0
        mask = np.zeros(self.step.size, dtype=bool)
        mask[last_peak + 1:] = True
        return mask


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"{path}: no such file; check the path (the data of this toolkit lives in ../shared/data/loss_curves)")
    return path


def _read_table(path: str | Path, kind: str):
    path = _existing(path)
    try:
        if kind == "csv":
            if path.suffix.lower() == ".tsv":
                return _read_csv(path, "\t")
            df = _read_csv(path, ",")
            # one column whose name holds a tab, semicolon, bar or space: a table with another
            # separator (spaces: a text file as numpy.savetxt writes one)
            seps = [c for c in ("\t", ";", "|", " ") if df.shape[1] == 1 and c in str(df.columns[0]).strip()]
            return _read_csv(path, WHITESPACE if seps and seps[0] == " " else seps[0]) if seps else df
        return _read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a corrupt file for the user
        raise DataFileError(f"{path}: cannot be read as {kind} ({type(exc).__name__}: {exc}); "
                            f"is it a complete {kind} file with columns step, lr, loss?") from None


#: Cells a CSV leaves without a value (pandas' defaults less its NaN spellings): a row not logged.
#: A cell that spells NaN holds a value, the one a diverged run logs (``str(float("nan"))``), and
#: is kept apart (:func:`_mark_nan_values`).
MISSING_TOKENS = ("", "NA", "N/A", "n/a", "#N/A", "#N/A N/A", "NULL", "null", "None", "<NA>", "#NA")
NAN_TOKENS = ("nan", "NaN", "NAN", "-nan", "-NaN", "+nan", "1.#QNAN", "-1.#QNAN", "-1.#IND", "1.#IND")


#: The separator of a text table whose fields are separated by runs of spaces or tabs.
WHITESPACE = r"\s+"


def _fields(line: str, sep: str) -> list[str]:
    """The fields of one line of a text table (quotes removed), split at ``sep``."""
    import csv

    if sep == WHITESPACE:
        return line.split()
    return [f.strip() for f in next(csv.reader([line], delimiter=sep, skipinitialspace=True), [])]


def _csv_preamble(path: Path, sep: str, encoding: str) -> tuple[str, int, list[str] | None, list[str]]:
    """How a text table begins: (separator, leading lines to skip, the header's names where a
    comment line holds them, else None, names the header gives twice).

    Read as tools write them: a first line ``sep=;`` (a spreadsheet's hint) sets the separator;
    lines that start with ``#`` before the table are comments, except that where the first line
    after them holds numbers only, the last of them is the header (``numpy.savetxt(...,
    header="step,lr,loss")`` writes ``# step,lr,loss``)."""
    import itertools
    import re

    with open(path, encoding=encoding, errors="replace") as f:
        lines = [ln.rstrip("\r\n") for ln in itertools.islice(f, 256)]
    i = 0
    hint = re.fullmatch(r"\s*sep=(.)\s*", lines[0]) if lines else None
    if hint:
        sep, i = hint.group(1), 1
    j = i
    while j < len(lines) and lines[j].lstrip().startswith("#"):
        j += 1
    names = None
    if i < j < len(lines):
        def number(v: str) -> bool:
            try:
                float(v)
                return True
            except ValueError:
                return v == "" or v in MISSING_TOKENS or v in NAN_TOKENS
        if all(number(v) for v in _fields(lines[j], sep)):
            names = _fields(lines[j - 1].lstrip()[1:], sep)
    header = names if names is not None else (_fields(lines[j], sep) if j < len(lines) else [])
    seen, twice = set(), []
    for n in header:
        if n in seen and n not in twice:
            twice.append(n)
        seen.add(n)
    if names is not None:  # named apart as pandas does with a header it reads (a, a.1, ...)
        count: dict = {}
        for k, n in enumerate(names):
            if n in count:
                count[n] += 1
                names[k] = f"{n}.{count[n]}"
            else:
                count[n] = 0
    return sep, j, names, twice


def _read_csv(path: Path, sep: str):
    """A CSV (or TSV, or a text table) as a table with ``attrs["nan_values"]``: per column, the rows
    whose cell spells NaN rather than being empty (:func:`_mark_nan_values`); and
    ``attrs["duplicates"]``: the names the header gives twice (:func:`_csv_preamble`, which also
    reads a ``sep=`` line, comment lines and a header written as a comment)."""
    import pandas as pd

    encoding = file_encoding(path)
    sep, skip, names, twice = _csv_preamble(path, sep, encoding)
    # skipinitialspace: "step, lr, loss" (a header and rows printed with ", ") names the columns
    # step, lr and loss, not " lr" and " loss"
    df = pd.read_csv(path, sep=sep, keep_default_na=False, na_values=list(MISSING_TOKENS), skipinitialspace=True,
                     skiprows=skip, header=None if names is not None else "infer", names=names,
                     engine="python" if sep == WHITESPACE else "c", encoding=encoding)
    df.columns = [c.strip() if isinstance(c, str) else c for c in df.columns]
    cut = _cut_last_line(path, sep, encoding, len(df.columns)) if len(df) else None
    if cut is not None:
        line, k = cut
        warnings.warn(f"{path}: the last line, {line[:80]!r}, has {k} of the header's {len(df.columns)} fields and "
                      f"the file does not end in a line break: a row cut off while the file was written (a run "
                      f"still logging, or a copy that stopped). It is left out; if the row is whole, end the "
                      f"file with a line break and give every column a field (an empty one where there is no "
                      f"value)", TruncatedRowWarning, stacklevel=4)
        df = df.iloc[:-1]
    df = _mark_nan_values(df, lambda col: col.astype(str).str.strip().isin(NAN_TOKENS).to_numpy())
    df.attrs["duplicates"] = twice
    return df


def _cut_last_line(path: Path, sep: str, encoding: str, n_columns: int) -> tuple[str, int] | None:
    """``(line, fields)`` where the file's last line has fewer fields than the header's
    ``n_columns`` and no line break after it (a row cut off while the file was written: pandas
    would fill the missing fields with NaN and keep the cut number as a value), else None."""
    tail_bytes = 1 << 16
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if encoding == "utf-16":  # a multi-byte code: decode the whole file, not a tail cut mid-character
            text = fh.read().decode(encoding, errors="replace")
        else:
            fh.seek(max(0, size - tail_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    lines = text.splitlines()
    # a line break at the end, or blanks after the last one (pandas skips them): no cut row
    if not lines or text.endswith(("\n", "\r")) or not lines[-1].strip():
        return None
    line = lines[-1]
    k = len(_fields(line, sep))
    return (line, k) if 0 < k < n_columns else None


def _merge_rows_of_a_step(df, nan_values, source: str, names: dict):
    """Rows that one step's values were split over, merged into one row per step.

    Loggers that write each call as a row split a step's values over several rows: Lightning's
    ``CSVLogger`` writes the learning-rate monitor's row (``lr-AdamW``) apart from the training
    step's (``train_loss``), and an evaluation (``val_loss``) in a row of its own. ``df`` holds the
    columns step, lr, loss (val_loss) by role (``names``: role -> the file's column); ``nan_values``
    marks the loss cells that spell NaN (a value: a diverged run). Where the steps never decrease,
    the rows of each repeated step become one row with their values. An evaluation row (a val_loss
    and neither a loss nor a rate) at a step with no other row is an event of its own and is left
    out, as in a JSON log. Rows of one step that give one column two values are refused, naming
    both rows. Steps that go back (a run resumed from a checkpoint logs its steps twice) are left
    for the curve's checks to refuse, as is a cell that is no number.
    """
    import pandas as pd

    if len(df) < 2 or not {"step", "loss"} <= set(df.columns):
        return df, nan_values
    step = pd.to_numeric(df["step"], errors="coerce")
    d = step.diff().to_numpy()[1:]
    if step.isna().any() or not (d == 0).any() or (d < 0).any():
        return df, nan_values
    vals = df.drop(columns="step").reset_index(drop=True)
    if any(vals[c].dtype.kind not in "biufc" for c in vals.columns):
        return df, nan_values
    nan_loss = np.zeros(len(df), bool) if nan_values is None else np.asarray(nan_values, bool)
    key = step.to_numpy()
    counts = vals.groupby(key, sort=False).nunique()
    # a NaN the file spells is a value of the loss (a diverged step): beside a number at its step, two values
    nan_at = pd.Series(nan_loss).groupby(key, sort=False).any()
    counts["loss"] += nan_at.reindex(counts.index).to_numpy().astype(int)
    if int(counts.to_numpy().max()) > 1:
        at = counts.index[(counts > 1).any(axis=1).to_numpy()][0]
        col = counts.columns[(counts.loc[at] > 1).to_numpy()][0]
        given = vals[col].notna().to_numpy() | (nan_loss if col == "loss" else False)
        rows = np.flatnonzero((key == at) & given)
        v = [f"{x:.10g}" for x in vals[col].to_numpy()[rows[:2]]]
        raise _fail(source, names[col], int(rows[1]),
                    f"step {at:g} is given {col} {v[1]} here and {v[0]} in row {int(rows[0])}. Rows of one step that "
                    f"complement each other (a logger that writes the rate and the loss in rows of their own) are "
                    f"merged, but one step cannot have two values; if the run was resumed from a checkpoint and "
                    f"logged its steps again, keep the rows logged after the restart, the last of each step")
    event = vals["loss"].isna().to_numpy() & ~nan_loss
    if "lr" in vals:
        event &= vals["lr"].isna().to_numpy()
    event &= vals["val_loss"].notna().to_numpy() if "val_loss" in vals else False
    other = pd.Series(~event).groupby(key).transform("any").to_numpy()
    keep = ~event | other  # an evaluation row at a step with a row of its own is merged into it
    vals, key = vals[keep], key[keep]
    merged = vals.groupby(key, sort=False).first()
    merged.insert(0, "step", pd.Series(df["step"].to_numpy()[keep]).groupby(key, sort=False).first().to_numpy())
    nan_merged = nan_at.reindex(merged.index).to_numpy(dtype=bool)
    return merged.reset_index(drop=True), (nan_merged if nan_values is not None else None)


def _purge_restarts(df, step_col: str, source: str, lines=None):
    """A printed log's records with the ones a restart replaced left out (TensorBoard's "purge
    orphaned data"): a record whose step goes back, or repeats a key already logged at the last
    step, starts a restart, and every earlier record at or after its step is dropped. Records
    without a step are kept as they are (other events). Says how many were replaced, and where.

    A step that goes back where the log's epoch goes forward is no restart: the step column counts
    the updates within an epoch (``epoch 3 iter 100``), and is refused, naming the line (``lines``:
    each record's line in the file), since the updates per epoch are not in the log."""
    step = _as_floats(df[step_col])
    epochs = [c for c in df.columns if c != step_col and str(c).lower() in ("epoch", "ep")]
    # an epoch printed on a line of its own ("Epoch 2/10") holds for the lines after it
    epoch = _as_floats(df[epochs[0]].ffill()) if len(epochs) == 1 else None
    marks = df.attrs.get("nan_values") or {}
    has = df.drop(columns=step_col).notna().to_numpy()
    for j, c in enumerate(c for c in df.columns if c != step_col):
        if c in marks:
            has[:, j] |= np.asarray(marks[c], bool)
    keep = np.ones(len(df), bool)
    kept: list[int] = []
    restarts = []
    for i in np.flatnonzero(~np.isnan(step)):
        s = step[i]
        if kept and epoch is not None and s < step[kept[-1]] and epoch[i] > epoch[kept[-1]]:
            at = f"line {lines[i]}" if lines is not None else f"record {i}"
            raise _fail(source, step_col, None, f"{at}: {step_col} goes back from {step[kept[-1]]:g} to {s:g} where "
                        f"{epochs[0]} goes on from {epoch[kept[-1]]:g} to {epoch[i]:g}: {step_col!r} counts the updates "
                        f"within an epoch, and the log does not say how many an epoch has. Fit the optimiser's step "
                        f"since the start (print it, or write a table with step = epoch x updates per epoch + "
                        f"{step_col}), or name a column that counts it with --columns step=...")
        if kept and (s < step[kept[-1]] or (s == step[kept[-1]] and any(
                (has[j] & has[i]).any() for j in reversed(kept) if step[j] == s))):
            restarts.append((step[kept[-1]], s))
            while kept and step[kept[-1]] >= s:
                keep[kept.pop()] = False
        kept.append(int(i))
    if not restarts:
        return df
    from sde_scales.fitting.event_files import LogRestartWarning

    back = ", ".join(f"{a:g} -> {b:g}" for a, b in restarts[:3]) + (", ..." if len(restarts) > 3 else "")
    warnings.warn(f"{source}: the run was resumed {len(restarts)} time(s) and printed its steps again (the step goes "
                  f"back or repeats: {back}); {int((~keep).sum())} earlier record(s) from each restart's step on were replaced "
                  f"by those printed after it, as TensorBoard shows a resumed run", LogRestartWarning, stacklevel=4)
    out = df[keep]
    out.attrs["nan_values"] = {c: np.asarray(m, bool)[keep] for c, m in marks.items()}
    return out


def _as_floats(col) -> np.ndarray:
    """A column as floats, NaN where a cell is no number."""
    import pandas as pd

    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)


def _mark_nan_values(df, is_nan):
    """``df`` with each non-numeric column whose cells ``is_nan(column)`` marks (a boolean array)
    turned into numbers with NaN there, and those marks in ``attrs["nan_values"]`` by column; a
    column with a cell that is no number is left as it is, for the column's reader to name it."""
    import pandas as pd

    marks = {}
    for col in df.columns:
        if df[col].dtype.kind in "biufc":
            continue
        nan = np.asarray(is_nan(df[col]), dtype=bool)
        if nan.any():
            marks[col] = nan
            conv = df[col].where(~nan, np.nan)
            try:
                df[col] = pd.to_numeric(conv)
            except (TypeError, ValueError):
                df[col] = conv
    df.attrs["nan_values"] = marks
    return df


def _read_parquet(path: Path):
    """A Parquet file as a table with ``attrs["nan_values"]``: per floating column, the rows that
    hold NaN rather than null (Arrow keeps the two apart; pandas reads both as NaN)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    marks = {}
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_floating(col.type):
            nan = pc.fill_null(pc.is_nan(col), False).to_numpy(zero_copy_only=False)
            if nan.any():
                marks[name] = np.asarray(nan, dtype=bool)
    df = table.to_pandas()
    df.attrs["nan_values"] = marks
    return df


def _read_records(path: Path):
    """The records of a JSON / JSON Lines log as a table (:meth:`LossCurve.from_json`), and a function
    of a record's index that says where it is in the file, for errors: its line (``"line 17"``), or
    its place in the list (``"record 15"``, counted from 0 as JSON indexes). Kept apart from the
    table's ``attrs``, which pandas copies at every operation."""
    import json

    text = _existing(path).read_text(encoding=file_encoding(path), errors="replace")
    lines = None  # each record's line in the file (JSON Lines)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        records, lines = [], []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
                lines.append(i)
            except json.JSONDecodeError as exc:
                raise DataFileError(f"{path}, line {i}: not a JSON object ({exc.msg}); a log cut off while it was "
                                    f"written ends in a partial line: delete that line") from None
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{path}: cannot be read as JSON ({exc.msg}, line {exc.lineno}); is it a complete "
                                f"file?") from None
        records = doc.get("log_history") if isinstance(doc, dict) else doc
        if not isinstance(records, list):
            raise DataFileError(f"{path}: a JSON log needs a list of records (objects with step, lr, loss) or "
                                f"Hugging Face's trainer_state.json with its log_history; found "
                                f"{type(doc).__name__} with keys {sorted(doc)[:8] if isinstance(doc, dict) else []}")
    bad = [i for i, r in enumerate(records) if not isinstance(r, dict)]
    if bad:
        raise DataFileError(f"{path}: record {bad[0]} is {type(records[bad[0]]).__name__}, not an object; every record "
                            f"needs keys such as step, lr, loss")
    if not records:
        raise DataFileError(f"{path}: no records; is it the training log?")
    within = " of log_history" if lines is None and isinstance(doc, dict) else ""
    return _records_frame(records), ((lambda k: f"line {lines[k]}") if lines is not None else
                                     (lambda k: f"record {k}{within}"))


def _records_frame(records: list[dict]):
    """Records (dicts, nested ones flattened with ``/``) as a table with ``attrs["nan_values"]``.

    A list of numbers is one value per element, ``lr/0``, ``lr/1``, ... (a learning rate logged per
    parameter group; ``--columns lr=lr/0`` picks one), and a list of one number is that number. A
    boolean (``true``) is kept as its JSON text, so that a column the curve reads refuses it as no
    number (pandas would read it as 1.0)."""
    import pandas as pd

    # a key whose value is NaN (Python's json writes it as NaN) holds a value, the one a diverged run
    # logs; an absent key is a record without it. The frame reads both as NaN, so NaN values go in as
    # a marker first and are kept apart in attrs["nan_values"], as a CSV's are
    marker = "\x00nan"

    def number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    def mark(x):
        if isinstance(x, dict):
            return {k: mark(v) for k, v in x.items()}
        if isinstance(x, bool):
            return "true" if x else "false"
        if isinstance(x, list) and x and all(number(v) for v in x):
            return mark(x[0]) if len(x) == 1 else {str(i): mark(v) for i, v in enumerate(x)}
        return marker if isinstance(x, float) and math.isnan(x) else x

    df = pd.json_normalize([mark(r) for r in records], sep="/")
    return _mark_nan_values(df, lambda col: (col == marker).to_numpy(dtype=bool))


def _is_wandb_step(column) -> bool:
    """True for Weights & Biases' ``_step`` (or ``<run> - _step`` in a panel export): its count of
    ``wandb.log`` calls, the optimiser's step only where the run passed ``step=`` or logged once per
    step."""
    return bool(_named([column], "_step"))


def _named(found: list[str], name: str) -> list[str]:
    """The columns called ``name``, or ``<run> - name`` as a Weights & Biases export calls them."""
    return [c for c in found if c == name or (" - " in str(c) and str(c).split(" - ", 1)[1] == name)]


def _rates_at_loss_steps(df, names: dict, source: str):
    """A table of scalar tags (each logged at its own steps) with the learning rate given at every
    step that has a loss: linear between the rate's own events, as between any log's rows. Loss
    events before the first or after the last rate event have no rate to read and are left out, with
    a warning that says how many and where."""
    lr, loss, st = names["lr"], names["loss"], names["step"]
    known = df[lr].notna().to_numpy()
    if not known.any():
        raise _fail(source, lr, None, f"the tag {lr!r} has no value; name the learning-rate tag with --columns")
    steps = df[st].to_numpy(dtype=float)
    lo, hi = steps[known][0], steps[known][-1]
    has_loss = df[loss].notna().to_numpy()
    outside = has_loss & ((steps < lo) | (steps > hi))
    if outside.any():
        warnings.warn(f"{source}: {int(outside.sum())} {loss!r} event(s) at steps {int(steps[outside][0])}.."
                      f"{int(steps[outside][-1])} lie outside the steps of the learning-rate tag {lr!r} ({int(lo)}.."
                      f"{int(hi)}) and are not read (their rate is not known)", UserWarning, stacklevel=4)
    df = df[~outside].copy()
    keep = df[lr].notna().to_numpy()
    s = df[st].to_numpy(dtype=float)
    df[lr] = np.interp(s, s[keep], df[lr].to_numpy(dtype=float)[keep])
    return df.reset_index(drop=True)


#: Words by which a column's name suggests its role, for the refusal of a file none of whose
#: columns is that role's name or alias (the choice stays the user's: these are only named).
_ROLE_WORDS = {"step": ("step", "iter", "batch"), "lr": ("lr", "learning"), "loss": ("loss",)}


def _look_alike(found: list[str], key: str, columns: dict) -> str:
    """`` (columns that look like one: [...]; name one with --columns key=NAME)`` where the file
    has columns whose names hold a word of the role (:data:`_ROLE_WORDS`), else an empty string."""
    words = _ROLE_WORDS.get(key, ())
    like = [c for c in found if c not in columns.values()
            and any(w in t for t in re.split(r"[^a-z]+", c.lower()) for w in words)]
    if not like:
        return ""
    return f" (columns that look like one: {like}; name one with --columns {key}={like[0]})"


def resolve_columns(found: list[str], source: str, columns: dict | None = None, need_lr: bool = True,
                    roles: tuple[str, ...] = tuple(COLUMN_ALIASES), python: str = "load_curve") -> dict[str, str]:
    """Which of a file's columns are step, lr, loss and (optionally) val_loss.

    ``columns`` names them explicitly (``{"loss": "train/loss"}``; the rest as below). Otherwise
    each is the column of its own name, or else the one of its :data:`COLUMN_ALIASES` the file
    has (either also as ``<run> - name``, the columns of a Weights & Biases export, whose
    ``__MIN`` and ``__MAX`` columns match nothing), leaving out the columns ``columns`` gives
    another role (``loss=eval_loss`` fits the evaluation loss; ``eval_loss`` is then not also read
    as ``val_loss``). Refused, naming the file's columns and the fix: a named column the file
    lacks, a required one with no match, or one with two or more matching columns (which one is
    the training loss is the user's to say). ``need_lr=False``: a file without a learning rate is
    accepted (its schedule is given another way: :func:`load_curve`'s ``schedule``). ``roles``: the
    roles read (a schedule table, ``("step", "lr")``, has no loss; a role of ``columns`` outside
    them is not looked for); ``python``: the function the refusal names for ``columns=``."""
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(COLUMN_ALIASES))
    if unknown:
        raise InvalidArgumentError(f"columns: {unknown} are not among step, lr, loss, val_loss; map those, e.g. "
                                   f"loss=train/loss")
    columns = {k: v for k, v in columns.items() if k in roles}
    out, problems = {}, []
    for key in roles:
        aliases = COLUMN_ALIASES[key]
        if key in columns:
            if columns[key] not in found:
                problems.append(f"{key}={columns[key]!r} is not a column of the file")
            else:
                out[key] = columns[key]
            continue
        own = [c for c in _named(found, key) if c not in columns.values()]
        if len(own) == 1:
            out[key] = own[0]
            continue
        # not one the user named for another role
        hits = own or list(dict.fromkeys(c for a in aliases for c in _named(found, a) if c not in columns.values()))
        if len(hits) == 1:
            out[key] = hits[0]
        elif len(hits) > 1:
            wandb = [h for h in hits if _is_wandb_step(h)]
            problems.append(f"{key} could be any of {hits}" + (
                f" ({wandb[0]!r} is Weights & Biases' count of wandb.log calls; the optimiser's step is most likely "
                f"the other)" if key == "step" and wandb else ""))
        elif (key in ("step", "loss") or (key == "lr" and need_lr)) and (
                taken := [c for c in _named(found, key) if c in columns.values()]):
            # its own column named for another role: "no lr column" of a file that has one
            role = next(k for k, v in columns.items() if v == taken[0])
            problems.append(f"{key}'s column {taken[0]!r} is named for {role} ({role}={taken[0]}); each of step, lr "
                            f"and loss needs a column of its own")
        elif key == "lr" and need_lr:
            problems.append(f"no lr column{_look_alike(found, key, columns)}" + (
                " (for a file of the loss alone, such as a Weights & Biases panel export, give the run's schedule: "
                "--schedule NAME:SPEC, Python: load_curve(path, schedule=...))" if "loss" in roles else ""))
        elif key not in ("val_loss", "lr"):
            problems.append(f"no {key} column{_look_alike(found, key, columns)}")
    twice = sorted({v for v in out.values() if list(out.values()).count(v) > 1})
    if twice:
        problems.append(f"column(s) {twice} named for two of step, lr, loss, val_loss")
    if problems:
        example = "step=global_step,lr=learning_rate,loss=train/loss"
        if {"Step", "Value"} <= set(found) and "loss" not in out:
            # TensorBoard's "download CSV" of one scalar tag: Wall time, Step, Value
            problems.append("this looks like TensorBoard's CSV download of one scalar tag, whose Value is whatever "
                            "tag was downloaded: if it is the training loss, say so with --columns loss=Value and give "
                            "the schedule with --schedule NAME:SPEC (or fit the run's event files, which hold the "
                            "learning rate too)")
            example = "loss=Value"
        if "loss" not in roles:
            example = ",".join(e for e in example.split(",") if e.split("=")[0] in roles)
        raise _fail(source, ",".join(k for k in ("step", "lr", "loss") if k in roles and k not in out) or "columns",
                    None, f"{'; '.join(problems)}; the file has columns {found}. Name them with --columns (Python: "
                    f"{python}(path, columns=...)), e.g. --columns {example}")
    return out


def _run_selector(path: str | Path) -> tuple[Path, str | None]:
    """``FILE#RUN`` (one run of a Weights & Biases panel export) as (FILE, RUN); a path that exists,
    or has no ``#`` in its name, as (path, None)."""
    p = Path(path)
    if p.exists() or "#" not in p.name:
        return p, None
    base, run = str(path).rsplit("#", 1)
    return Path(base), run


def _select_run(df, run: str, source: str):
    """The columns of one run of a Weights & Biases export (``<run> - <metric>``), renamed to their
    metric, and the columns of no run (``Step``); refused, naming the export's runs, if it has none
    of that name."""
    runs = sorted({str(c).split(" - ", 1)[0] for c in df.columns if " - " in str(c)})
    if run not in runs:
        raise DataFileError(f"{source}: no run {run!r} in this export; its runs are {runs}" if runs else
                            f"{source}: #{run} selects a run of a Weights & Biases export (columns '<run> - <metric>'); "
                            f"this file has columns {list(df.columns)}")
    keep = {c: (str(c).split(" - ", 1)[1] if " - " in str(c) else c) for c in df.columns
            if " - " not in str(c) or str(c).split(" - ", 1)[0] == run}
    out = df[list(keep)].rename(columns=keep)
    out.attrs["nan_values"] = {keep[c]: v for c, v in (df.attrs.get("nan_values") or {}).items() if c in keep}
    return out


#: File names that every run of a tool writes under the same name, so that the curve is named after
#: the run's folder instead: Hugging Face's Trainer writes ``trainer_state.json`` into its output
#: folder and into each ``checkpoint-N`` folder below it; PyTorch Lightning's CSVLogger writes
#: ``metrics.csv`` into ``<name>/version_N``.
RUN_FOLDER_FILES = ("trainer_state.json", "metrics.csv")


def curve_name(path: str | Path) -> str:
    """The name :func:`load_curve` gives the curve of ``path`` (what ``--schedule NAME:SPEC`` and the
    outputs call it): a file's name without its extension; a TensorBoard run's folder name; RUN for
    ``FILE#RUN``; for a file every run names alike (:data:`RUN_FOLDER_FILES`), its run's folder (the
    folder above a ``checkpoint-N`` folder; ``NAME-version_N`` for Lightning's ``NAME/version_N``)."""
    from sde_scales.fitting.event_files import is_event_log, run_folder

    p, run = _run_selector(path)
    if run is not None:
        return run
    if is_event_log(p):
        return run_folder(p).name
    return file_curve_name(p)


def file_curve_name(path: str | Path) -> str:
    """The name of the curve a log file holds: the file's name without its extension, or, for a file
    every run names alike (:data:`RUN_FOLDER_FILES`), its run's folder (the folder above a
    ``checkpoint-N`` folder; ``NAME-version_N`` for Lightning's ``NAME/version_N``)."""
    p = Path(path)
    if p.name not in RUN_FOLDER_FILES:
        return p.stem
    folder = p.resolve().parent
    if re.fullmatch(r"checkpoint-\d+", folder.name) and folder.parent.name:
        folder = folder.parent
    if re.fullmatch(r"version_\d+", folder.name) and folder.parent.name:
        return f"{folder.parent.name}-{folder.name}"
    return folder.name or p.stem


def load_curve(path: str | Path, columns: dict | None = None, schedule=None) -> LossCurve:
    """A curve from ``.csv``, ``.parquet``, or a JSON log (``.json``, ``.jsonl``, ``.ndjson``:
    :meth:`LossCurve.from_json`), chosen by the suffix; ``columns`` maps step, lr, loss (val_loss)
    to the file's column names where they differ (:func:`resolve_columns`). ``schedule``: the run's
    :class:`ScheduleSpec` (or its text form) for a file that logs the loss without the learning
    rate; a file that has both is read as usual (attach a spec to it with
    :meth:`LossCurve.with_spec`, which checks it against the logged rates). A TensorBoard run (a
    folder of ``events.out.tfevents.*`` files, or one such file) is read with
    :meth:`LossCurve.from_tensorboard`. ``FILE#RUN`` reads one run of a Weights & Biases panel
    export of several (its columns ``RUN - <metric>``), as the curve RUN. A log as printed (``.log``,
    ``.out``, ``.err``, or another file whose lines are ``key value`` pairs rather than a table's
    rows) is read with :meth:`LossCurve.from_text_log`."""
    from dataclasses import replace

    from sde_scales.fitting.event_files import is_event_log

    p, run = _run_selector(path)
    if run is not None:
        if p.suffix.lower() not in (".csv", ".tsv", ".parquet", ".pq", ".txt", ""):
            raise DataFileError(f"{path}: #{run} selects a run of a Weights & Biases export, a CSV or Parquet table")
        kind = "parquet" if p.suffix.lower() in (".parquet", ".pq") else "csv"
        df = _select_run(_read_table(p, kind), run, str(p))  # every row of the file: its columns are selected
        try:
            return replace(LossCurve._from_frame(df, p, columns, schedule), name=run)
        except DataFileError as exc:
            raise (_with_csv_line(exc, p, len(df)) if kind == "csv" else exc) from None
    if is_event_log(p):
        return LossCurve.from_tensorboard(p, columns, schedule)
    if p.is_dir():  # no event files of its own: refused, naming the runs below it if it has some
        from sde_scales.fitting.event_files import event_files

        event_files(p)
        raise DataFileError(f"{p}: a folder; give a curve file (CSV, Parquet, JSON) or a TensorBoard run folder")
    if p.suffix.lower() in (".parquet", ".pq"):
        return LossCurve.from_parquet(p, columns, schedule)
    if p.suffix.lower() in (".json", ".jsonl", ".ndjson"):
        return LossCurve.from_json(p, columns, schedule)
    if p.suffix.lower() not in (".csv", ".tsv") and p.is_file():
        from sde_scales.fitting.text_logs import looks_like_text_log

        if looks_like_text_log(p):
            return LossCurve.from_text_log(p, columns, schedule)
    return LossCurve.from_csv(p, columns, schedule)


def parse_columns(text: str | None) -> dict[str, str]:
    """``"step=global_step,loss=train/loss"`` as a dict (the ``--columns`` option)."""
    out = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, name = part.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise InvalidArgumentError(f"--columns {text!r}: {part!r} is not KEY=NAME; give e.g. "
                                       f"step=global_step,lr=learning_rate,loss=train/loss")
        if key.strip() in out:
            raise InvalidArgumentError(f"--columns {text!r}: {key.strip()}= is given twice; name each of step, lr, "
                                       f"loss, val_loss once")
        out[key.strip()] = name.strip()
    return out


def _slow_noise(m: np.ndarray, lag: int) -> float:
    r"""Noise of a running median :math:`m` over every time scale from one window to an eighth of
    the log: the largest robust standard deviation of its second differences
    :math:`(m_{i+2L} - 2 m_{i+L} + m_i)/\sqrt 6` over the lags :math:`L = w, 2w, 4w, \ldots`
    (:math:`\sqrt 6`: their standard deviation over that of independent values). A second
    difference cancels a straight trend and barely sees a smooth one, and the median absolute
    deviation leaves out the few where the curve bends hard (its steep start) or rises. A noise
    that is slow (a moving average logged as the loss, batch noise correlated over many steps)
    wanders further than differences one window apart say; the long lags see it."""
    best, L = 0.0, max(1, int(lag))
    while 2 * L < m.size:
        d = m[2 * L:] - 2.0 * m[L:-L] + m[:-2 * L]
        sd = float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(6.0))
        if not sd > 0:  # a median constant over most windows (a loss logged to few digits)
            sd = float(np.std(d) / np.sqrt(6.0))
        best = max(best, sd)
        L *= 2
        if L > m.size // 8:
            break
    return best


def warmup_end(eta: np.ndarray) -> int:
    """One past the last step of a schedule's warmup: its initial rise, up to the largest rate it
    reaches before the rate first falls from it by more than :data:`SCHEDULE_RTOL` of the
    schedule's largest rate (the schedule's length where it never does). The drops that the laws
    respond to start there; every later change of the rate, down or up, is a drop.

    Not the first step at the schedule's largest rate: a cyclic schedule whose restarts reach
    higher than its warmup did, or a warmup that stops short of a later peak, then had every drop
    before that step taken as warmup and left out of the fit, without a word. The tolerance lets
    a logged rate's rounding (4-6 significant digits) wobble during the warmup without ending it;
    the fall is measured from the running maximum, so a slow decay, whose step-to-step falls are
    far below any tolerance, still ends it."""
    eta = np.asarray(eta, dtype=float)
    if eta.size == 0:
        return 0
    top = np.maximum.accumulate(eta)
    falls = np.flatnonzero(eta < top - SCHEDULE_RTOL * float(eta.max()))
    if not falls.size:
        return int(eta.size)
    k = int(falls[0])
    return int(np.argmax(eta[:k] >= top[k])) + 1


@dataclass(frozen=True)
class ScheduleFeatures:
    r"""What every law needs from a schedule, at the evaluation steps ``t``.

    ``S1[i]`` is the learning-rate area :math:`\sum_{k < t_i} \eta_k` (in units of ``lr_scale``).
    Drops :math:`d_k = \eta_{k-1} - \eta_k` after the warmup (the initial rise, up to where the rate
    first falls, :func:`warmup_end`; a later rise is a negative drop) are summed in bins of
    ``bin_steps``; ``peak`` is the rate the warmup reached (in units of ``lr_scale``);
    bin ``b`` has total ``drop[b]``, centre of mass ``center[b]`` (a step), area ``area[b]`` at its
    centre, and learning rate ``eta_after[b]`` there. ``elapsed_steps[i, b]`` and
    ``elapsed_area[i, b]`` (dense, built on first use: only laws without a recursive form need
    them; :meth:`exp_response` serves exponential kernels in linear time) are the step and area
    distances from each bin to each evaluation step,
    zero where the bin lies at or after it (every response kernel has :math:`Q(0) = 0`).
    """

    t: np.ndarray
    S1: np.ndarray
    drop: np.ndarray
    center: np.ndarray
    area: np.ndarray
    eta_after: np.ndarray
    lr_scale: float
    peak: float
    extras: dict = field(default_factory=dict)

    @classmethod
    def build(cls, curve: LossCurve, t: np.ndarray, lr_scale: float, bin_steps: int | None = None,
              from_step: int | None = None) -> "ScheduleFeatures":
        """``from_step``: where the points that are fitted or scored begin (the fit's skip), which
        decides whether an assumed start of the schedule can matter (:meth:`LossCurve.assumption`);
        default: the first of ``t``."""
        t_arr = np.asarray(t)
        rates = curve.per_step_lr()  # O(steps): built once, for the late-start check and the features
        note = curve.assumption(t_arr[t_arr >= (from_step or 0)], rates)
        if note is not None:
            warnings.warn(note, LateStartWarning, stacklevel=3)
        gap = curve.gaps()
        if gap is not None:
            warnings.warn(gap, StepGapWarning, stacklevel=3)
        first = from_step if from_step is not None else (int(t_arr.min()) if t_arr.size else 0)
        spike = curve.spikes(first)  # from the first fitted or scored point: the skipped start is not judged
        if spike is not None:
            warnings.warn(spike, LossSpikeWarning, stacklevel=3)
        diverged = curve.divergence(first)
        if diverged is not None:
            raise DataFileError(diverged)
        rise = curve.rise_note(first)
        if rise is not None:
            warnings.warn(rise, LossRiseWarning, stacklevel=3)
        if curve.rows_without_loss:
            at = ", ".join(f"{t:,}" for t in curve.steps_without_loss)
            more = ", ..." if curve.rows_without_loss > len(curve.steps_without_loss) else ""
            warnings.warn(f"{curve.name}: {curve.rows_without_loss} row(s) of {curve.source} have a learning rate and no "
                          f"loss, empty or NaN (step{'s' if curve.rows_without_loss > 1 else ''} {at}{more}): their "
                          f"rates are in the schedule, the rows are not fitted or scored (an evaluation loss logged "
                          f"less often than the rate, or a step whose loss overflowed and was skipped; if a loss is "
                          f"missing by mistake, fill it)", StepGapWarning, stacklevel=3)
        eta = rates / lr_scale
        t = np.asarray(t, dtype=np.int64)
        cum = np.concatenate([[0.0], np.cumsum(eta)])  # cum[k] = sum_{j<k} eta_j
        S1 = cum[t]
        bin_steps = int(bin_steps or 4 * curve.log_every)
        warm_end = warmup_end(eta)
        d = np.zeros_like(eta)
        d[1:] = eta[:-1] - eta[1:]
        d[:warm_end] = 0.0  # warmup increases are not drops; rises after it are (negative ones)
        peak = float(eta[warm_end - 1])  # the rate the warmup reached, where the drop response starts
        k = np.arange(eta.size)
        nb = -(-eta.size // bin_steps)
        which = k // bin_steps
        drop = np.bincount(which, weights=d, minlength=nb)
        mass = np.bincount(which, weights=np.abs(d), minlength=nb)
        pos = np.bincount(which, weights=np.abs(d) * k, minlength=nb)
        keep = mass > 0
        center = np.where(keep, pos / np.where(keep, mass, 1.0), np.inf)
        # a drop at step k moves the losses of steps after k only: bins at or after the last
        # evaluation step move nothing and are left out
        keep &= center < t.max()
        center = center[keep]
        drop = drop[keep]
        area = np.interp(center, np.arange(cum.size), cum)
        eta_after = np.interp(center, k, eta)
        return cls(t, S1, drop, center, area, eta_after, float(lr_scale), peak)

    @property
    def elapsed_steps(self) -> np.ndarray:
        """Dense (points x bins) step distances, zero where the bin lies at or after the point."""
        if "elapsed_steps" not in self.extras:
            self.extras["elapsed_steps"] = np.maximum(self.t[:, None] - self.center[None, :], 0.0)
        return self.extras["elapsed_steps"]

    @property
    def elapsed_area(self) -> np.ndarray:
        """Dense (points x bins) area distances, zero where the bin lies at or after the point."""
        if "elapsed_area" not in self.extras:
            self.extras["elapsed_area"] = np.maximum(self.S1[:, None] - self.area[None, :], 0.0)
        return self.extras["elapsed_area"]

    def decay_factors(self, time: str = "area"):
        """The recursive filter's decay factors of this schedule in ``time``, kept across a fit's
        evaluations (:class:`~sde_scales.fitting._filters.DecayFactors`)."""
        key = ("decay_factors", time)
        if key not in self.extras:
            from sde_scales.fitting._filters import DecayFactors

            u_eval, u_bin = self._clock(time)
            self.extras[key] = DecayFactors(self.t.astype(float), np.ascontiguousarray(u_eval, dtype=float),
                                            np.ascontiguousarray(self.center, dtype=float),
                                            np.ascontiguousarray(u_bin, dtype=float))
        return self.extras[key]

    def _clock(self, time: str) -> tuple[np.ndarray, np.ndarray]:
        """(u at the evaluation steps, u at the drop bins) in ``time``: the step or the learning-rate area."""
        if time not in ("steps", "area"):
            raise InvalidArgumentError(f"time={time!r}; use 'steps' or 'area'")
        return (self.t.astype(float), self.center) if time == "steps" else (self.S1, self.area)

    def exp_response(self, taus, time: str = "steps", cache: bool = True) -> np.ndarray:
        r"""``R[i, j] = sum_b drop_b (1 - exp(-(u(t_i) - u(c_b)) / tau_j))`` over the bins before
        ``t_i``, with u the step (``time="steps"``) or the learning-rate area: the drops convolved
        with the step response of exponential kernels, by a recursive filter in O(points + bins)
        per time scale (no points x bins matrix). Cached per (taus, time) unless ``cache=False``
        (a time scale that a fit moves on every evaluation)."""
        taus = np.atleast_1d(np.asarray(taus, dtype=float))
        key = ("exp_response", time, taus.tobytes())
        if not cache or key not in self.extras:
            u_eval, u_bin = self._clock(time)
            from sde_scales.fitting._filters import exp_response

            r = exp_response(self.t.astype(float), u_eval, self.center, u_bin, self.drop, taus)
            if not cache:
                return r
            self.extras[key] = r
        return self.extras[key]


_DECAYS = ("constant", "cosine", "linear", "sqrt", "exp", "step")


@dataclass(frozen=True)
class ScheduleSpec:
    r"""A learning-rate schedule in a few numbers, expanded to every step by :meth:`expand`.

    For steps :math:`k = 0, \dots, T` (``total`` = T; the value at T is the rate after the last
    update, which no logged loss sees):

    * warmup, :math:`k < W`: :math:`\eta_k = \eta_{init} + (\eta_{peak} - \eta_{init})\, w(k / W)` with
      :math:`w(u) = u` (``warmup_shape=linear``) or :math:`(1 - \cos\pi u)/2` (``cosine``);
    * then :math:`\eta_{peak}` until ``decay_start`` (default: W);
    * decay over :math:`s = (k - k_d) / (k_e - k_d) \in [0, 1]` (``decay_end`` :math:`k_e`, default T):
      ``cosine`` :math:`\eta_{end} + (\eta_{peak} - \eta_{end})(1 + \cos\pi s)/2`, ``linear``
      :math:`\eta_{peak} + (\eta_{end} - \eta_{peak}) s`, ``sqrt`` :math:`\eta_{peak} - (\eta_{peak} -
      \eta_{end})\sqrt s`, ``exp`` :math:`\eta_{peak} (\eta_{end}/\eta_{peak})^s`, ``step``
      :math:`\eta_{end}` from :math:`k_d` on (a single drop), ``constant`` no decay;
    * :math:`\eta_{end}` after :math:`k_e`.

    Text form (``--schedule``): ``key=value`` pairs separated by commas, e.g.
    ``warmup=2160,peak=3e-4,decay=cosine,end=3e-5,total=72000`` or
    ``peak=1e-3,decay=linear,decay_start=24000,total=30000`` (WSD). Keys: ``total``, ``peak``
    (required), ``warmup``, ``warmup_init``, ``warmup_shape``, ``decay``, ``decay_start``,
    ``decay_end``, ``end``.
    """

    total: int
    peak: float
    warmup: int = 0
    warmup_init: float = 0.0
    warmup_shape: str = "linear"
    decay: str = "constant"
    decay_start: int | None = None
    decay_end: int | None = None
    end: float = 0.0

    def __post_init__(self) -> None:
        def whole(name, v, lo):
            if isinstance(v, bool) or v is None or int(v) != v or v < lo:
                raise InvalidArgumentError(f"schedule spec: {name}={v!r}; give a whole number >= {lo}")
        whole("total", self.total, 1)
        whole("warmup", self.warmup, 0)
        for name in ("peak", "warmup_init", "end"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise InvalidArgumentError(f"schedule spec: {name}={v!r}; give a finite learning rate >= 0")
            if v > MAX_MAGNITUDE:
                raise InvalidArgumentError(f"schedule spec: {name}={v!r} is beyond {MAX_MAGNITUDE:.0e}, more than any "
                                           f"real learning rate in any units; give the rate")
        if self.peak <= 0:
            raise InvalidArgumentError(f"schedule spec: peak={self.peak}; the peak learning rate must be positive")
        if self.warmup_shape not in ("linear", "cosine"):
            raise InvalidArgumentError(f"schedule spec: warmup_shape={self.warmup_shape!r}; use linear or cosine")
        if self.decay not in _DECAYS:
            raise InvalidArgumentError(f"schedule spec: decay={self.decay!r}; use one of {', '.join(_DECAYS)}")
        if self.decay == "exp" and self.end <= 0:
            raise InvalidArgumentError("schedule spec: decay=exp needs end > 0 (an exponential never reaches 0)")
        for name in ("end", "warmup_init"):  # learning rates, not fractions of the peak: end=0.1 meant 10%?
            v = getattr(self, name)
            if v > self.peak and (name != "end" or self.decay != "constant"):
                raise InvalidArgumentError(f"schedule spec: {name}={v:g} is above peak={self.peak:g}; {name} is a "
                                           f"learning rate, not a fraction of the peak (for 10% of the peak write "
                                           f"{name}={0.1 * self.peak:g})")
        if self.warmup > self.total:
            raise InvalidArgumentError(f"schedule spec: warmup={self.warmup} exceeds total={self.total}")
        if self.decay == "step" and self.decay_start is None:
            raise InvalidArgumentError(f"schedule spec: decay=step needs decay_start=STEP, the step of its drop "
                                       f"(by default the decay starts where the warmup ends, step {self.warmup}, so "
                                       f"the rate would drop to end={self.end:g} there and never stay at its peak)")
        ks, ke = self.starts_and_end()
        if not (self.warmup <= ks <= ke <= self.total):
            raise InvalidArgumentError(f"schedule spec: need warmup <= decay_start <= decay_end <= total, got "
                                       f"{self.warmup}, {ks}, {ke}, {self.total}")

    def starts_and_end(self) -> tuple[int, int]:
        ks = self.warmup if self.decay_start is None else int(self.decay_start)
        ke = self.total if self.decay_end is None else int(self.decay_end)
        return ks, ke

    @classmethod
    def parse(cls, text: str) -> "ScheduleSpec":
        """From ``key=value,key=value``; a clear error names a bad key or value."""
        kw = {}
        ints, floats = {"total", "warmup", "decay_start", "decay_end"}, {"peak", "warmup_init", "end"}
        for part in str(text).split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise InvalidArgumentError(f"schedule spec {text!r}: {part!r} is not key=value (e.g. "
                                           f"warmup=2160,peak=3e-4,decay=cosine,total=72000)")
            k, v = (x.strip() for x in part.split("=", 1))
            if k not in ints | floats | {"decay", "warmup_shape"}:
                raise InvalidArgumentError(f"schedule spec {text!r}: unknown key {k!r}; keys: "
                                           f"{', '.join(sorted(ints | floats | {'decay', 'warmup_shape'}))}")
            if k in kw:
                raise InvalidArgumentError(f"schedule spec {text!r}: {k}= is given twice; give each key once")
            try:
                if k in ints:
                    f = float(v)
                    if f != int(f):
                        raise ValueError
                    kw[k] = int(f)
                elif k in floats:
                    kw[k] = float(v)
                else:
                    kw[k] = v
            except ValueError:
                raise InvalidArgumentError(f"schedule spec {text!r}: {k}={v!r} is not a "
                                           f"{'whole number' if k in ints else 'number'}") from None
        for req in ("total", "peak"):
            if req not in kw:
                raise InvalidArgumentError(f"schedule spec {text!r}: {req}= is required")
        return cls(**kw)

    def expand(self) -> np.ndarray:
        """The learning rate at steps ``0 .. total`` (``total + 1`` values)."""
        k = np.arange(self.total + 1, dtype=float)
        lr = np.full(k.size, float(self.peak))
        W = self.warmup
        if W > 0:
            u = k[:W] / W
            w = u if self.warmup_shape == "linear" else 0.5 * (1 - np.cos(np.pi * u))
            lr[:W] = self.warmup_init + (self.peak - self.warmup_init) * w
        ks, ke = self.starts_and_end()
        s = np.clip((k - ks) / max(ke - ks, 1), 0.0, 1.0)
        after = k >= ks
        p, e = float(self.peak), float(self.end)
        if self.decay == "cosine":
            d = e + (p - e) * 0.5 * (1 + np.cos(np.pi * s))
        elif self.decay == "linear":
            d = p + (e - p) * s
        elif self.decay == "sqrt":
            d = p - (p - e) * np.sqrt(s)
        elif self.decay == "exp":
            d = p * (e / p) ** s
        elif self.decay == "step":
            d = np.full(k.size, e)
        else:
            d = np.full(k.size, p)
        lr[after] = d[after]
        if self.decay != "constant":
            lr[k > ke] = e
        return lr


def planted_curve(law, theta, lr, name: str, *, noise: float = 0.0, seed: int = 0, log_every: int = 10,
                  lr_scale: float = 1e-3) -> tuple[LossCurve, np.ndarray]:
    r"""A curve of known truth: ``law``'s loss with parameters ``theta`` on the per-step schedule
    ``lr`` (one rate per step), logged every ``log_every`` steps (from step ``log_every`` on), plus
    Gaussian noise of standard deviation ``noise`` drawn from ``numpy.random.default_rng(seed)``.
    Drops are binned over ``4 log_every`` steps, as a fit bins them by default. Returns (curve,
    noise-free loss at its rows): what the tests and benchmarks fit to check a law against a
    planted answer. ``lr_scale``: the rate unit the law's parameters are in.

    The truth is the law on the schedule as the returned curve carries it, the logged rates read
    as a fit reads them (:meth:`LossCurve.per_step_lr`: linear between logged steps, the first
    logged rate before step ``log_every``), so that a fit of the right law can recover ``theta``;
    where ``lr`` bends within a logging interval the two differ by that interpolation. The late
    start is not warned here (it is, where the curve is fitted)."""
    lr = np.asarray(lr, dtype=float)
    if lr.ndim != 1 or not np.all(np.isfinite(lr)) or np.any(lr < 0):
        raise InvalidArgumentError(f"planted_curve: the schedule must be one finite rate >= 0 per step (got shape "
                                   f"{lr.shape}); give a 1-d array such as sde_scales.schedules.cosine(...)")
    if not (np.isfinite(noise) and noise >= 0):
        raise InvalidArgumentError(f"planted_curve: noise={noise}; give a finite standard deviation >= 0")
    if not (int(log_every) == log_every and log_every >= 1 and lr.size > 2 * log_every):
        raise InvalidArgumentError(f"planted_curve: log_every={log_every} for a schedule of {lr.size} steps; give a "
                                   f"whole number >= 1 below half the schedule's length")
    steps = np.arange(log_every, lr.size, log_every)
    base = LossCurve(steps, lr[steps], np.zeros(steps.size), name=name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LateStartWarning)
        f = ScheduleFeatures.build(base, steps, lr_scale=lr_scale, bin_steps=4 * log_every)
    clean = law.predict(np.asarray(theta, float), f)
    rng = np.random.default_rng(seed)
    return LossCurve(steps, lr[steps], clean + noise * rng.standard_normal(steps.size), name=name), clean
