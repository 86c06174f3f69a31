r"""Loss curves (step, lr, loss[, val_loss]): loading, validation, smoothing, schedule features.

A :class:`LossCurve` is validated on construction: steps strictly increasing, losses finite,
learning rates finite and >= 0, all columns of equal length, at least ``MIN_POINTS`` points.
Every failure names the file, the column and the row.

Timing convention. The loss logged at step ``t`` was computed *before* the update of step ``t``,
so it depends on the learning rates of steps ``0 .. t-1`` only. The learning rate logged at the
final step (often 0 for decay-to-zero schedules) therefore never counts as a drop for any logged
loss. Between logged steps the learning rate is taken to be linear (:meth:`LossCurve.per_step_lr`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sde_scales.errors import DataFileError

__all__ = ["LossCurve", "ScheduleFeatures", "MIN_POINTS", "load_curve"]

#: Fewest points a curve may have: a law has up to 7 parameters and a fit needs several points
#: per parameter to leave residual degrees of freedom.
MIN_POINTS = 20


def _fail(source: str, column: str, row: int | None, msg: str) -> DataFileError:
    where = f"{source}, column {column!r}" + (f", row {row}" if row is not None else "")
    return DataFileError(f"{where}: {msg}")


@dataclass(frozen=True)
class LossCurve:
    """One training-loss curve.

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
    """

    step: np.ndarray
    lr: np.ndarray
    loss: np.ndarray
    val_loss: np.ndarray | None = None
    name: str = "curve"
    source: str = "<memory>"

    def __post_init__(self) -> None:
        src = self.source
        cols = {"step": self.step, "lr": self.lr, "loss": self.loss}
        arrs = {}
        for k, v in cols.items():
            a = np.asarray(v)
            if a.ndim != 1:
                raise _fail(src, k, None, f"expected a 1-d column, got shape {a.shape}")
            arrs[k] = a
        n = {k: a.size for k, a in arrs.items()}
        if len(set(n.values())) != 1:
            raise _fail(src, "step/lr/loss", None, f"columns have different lengths {n}; every row needs step, lr and loss")
        if n["step"] < MIN_POINTS:
            raise _fail(src, "step", None, f"{n['step']} rows; a curve needs at least {MIN_POINTS} points")
        try:
            step_f = arrs["step"].astype(float)
        except (TypeError, ValueError):
            raise _fail(src, "step", None, "steps are not numbers") from None
        bad = ~np.isfinite(step_f) | (step_f != np.round(step_f)) | (step_f < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise _fail(src, "step", i, f"step {step_f[i]:g} is not a non-negative whole number")
        step = step_f.astype(np.int64)
        d = np.diff(step)
        if np.any(d <= 0):
            i = int(np.argmax(d <= 0)) + 1
            raise _fail(src, "step", i, f"step {int(step[i])} does not increase on step {int(step[i - 1])} "
                        f"(row {i - 1}); sort the rows by step and drop duplicates")
        for k in ("lr", "loss"):
            try:
                a = arrs[k].astype(float)
            except (TypeError, ValueError):
                raise _fail(src, k, None, "values are not numbers") from None
            bad = ~np.isfinite(a)
            if bad.any():
                i = int(np.argmax(bad))
                raise _fail(src, k, i, f"value {a[i]} at step {int(step[i])} is not finite; drop or fill the row")
            if k == "lr" and np.any(a < 0):
                i = int(np.argmax(a < 0))
                raise _fail(src, k, i, f"learning rate {a[i]} at step {int(step[i])} is negative; learning rates must be >= 0")
            arrs[k] = a
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "lr", arrs["lr"])
        object.__setattr__(self, "loss", arrs["loss"])
        if self.val_loss is not None:
            v = np.asarray(self.val_loss, dtype=float)
            if v.shape != step.shape:
                raise _fail(src, "val_loss", None, f"{v.size} values for {step.size} rows")
            object.__setattr__(self, "val_loss", v)

    # ----------------------------------------------------------------------------- I/O
    @classmethod
    def from_csv(cls, path: str | Path) -> "LossCurve":
        return cls._from_frame(_read_table(path, "csv"), Path(path))

    @classmethod
    def from_parquet(cls, path: str | Path) -> "LossCurve":
        return cls._from_frame(_read_table(path, "parquet"), Path(path))

    @classmethod
    def _from_frame(cls, df, path: Path) -> "LossCurve":
        missing = [c for c in ("step", "lr", "loss") if c not in df.columns]
        if missing:
            raise _fail(str(path), ",".join(missing), None,
                        f"missing column(s) {missing}; the file needs columns step, lr, loss (val_loss optional), "
                        f"found {list(df.columns)}")
        val = df["val_loss"].to_numpy(dtype=float, na_value=np.nan) if "val_loss" in df.columns else None
        return cls(df["step"].to_numpy(), df["lr"].to_numpy(), df["loss"].to_numpy(), val, name=path.stem,
                   source=str(path))

    # ----------------------------------------------------------------------------- derived
    @property
    def log_every(self) -> int:
        """The most common logging interval."""
        d = np.diff(self.step)
        vals, counts = np.unique(d, return_counts=True)
        return int(vals[np.argmax(counts)])

    @property
    def peak_lr(self) -> float:
        return float(np.max(self.lr))

    def per_step_lr(self) -> np.ndarray:
        """Learning rate at every step ``0 .. step[-1]``: linear between logged steps, held at the
        first logged value before it, and held at the second-to-last logged value after it.

        The last logged value is used for the last step only: it is the rate of an update that
        no logged loss has seen, and decay-to-zero runs log 0 there. Interpolating towards it would
        invent a drop over the last logging interval (for a constant schedule, a full drop).
        """
        k = np.arange(int(self.step[-1]) + 1)
        lr = np.interp(k, self.step[:-1], self.lr[:-1])
        lr[-1] = self.lr[-1]
        return lr

    def smoothed(self, window_steps: int = 1000) -> np.ndarray:
        """Centred moving average of the loss over ``window_steps`` steps (the points whose step is
        within half a window), shrinking at the ends."""
        half = window_steps / 2
        c = np.concatenate([[0.0], np.cumsum(self.loss)])
        lo = np.searchsorted(self.step, self.step - half, side="left")
        hi = np.searchsorted(self.step, self.step + half, side="right")
        return (c[hi] - c[lo]) / (hi - lo)

    def cooldown_mask(self) -> np.ndarray:
        """Rows after the learning rate has left its final plateau at peak (the cooldown); all
        False for a constant schedule."""
        peak = self.peak_lr
        at_peak = np.flatnonzero(self.lr >= peak * (1 - 1e-6))
        last_peak = int(at_peak[-1]) if at_peak.size else 0
        mask = np.zeros(self.step.size, dtype=bool)
        mask[last_peak + 1:] = True
        return mask


def _read_table(path: str | Path, kind: str):
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataFileError(f"{path}: no such file; check the path (the data of this toolkit lives in ../shared/data/loss_curves)")
    try:
        if kind == "csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a corrupt file for the user
        raise DataFileError(f"{path}: cannot be read as {kind} ({type(exc).__name__}: {exc}); "
                            f"is it a complete {kind} file with columns step, lr, loss?") from None


def load_curve(path: str | Path) -> LossCurve:
    """A curve from ``.csv`` or ``.parquet`` (chosen by the suffix)."""
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        return LossCurve.from_parquet(p)
    return LossCurve.from_csv(p)


@dataclass(frozen=True)
class ScheduleFeatures:
    r"""What every law needs from a schedule, at the evaluation steps ``t``.

    ``S1[i]`` is the learning-rate area :math:`\sum_{k < t_i} \eta_k` (in units of ``lr_scale``).
    Drops :math:`d_k = \eta_{k-1} - \eta_k` after the warmup are summed in bins of ``bin_steps``;
    bin ``b`` has total ``drop[b]``, centre of mass ``center[b]`` (a step), area ``area[b]`` at its
    centre, and learning rate ``eta_after[b]`` there. ``elapsed_steps[i, b]`` and
    ``elapsed_area[i, b]`` are the step and area distances from each bin to each evaluation step,
    zero where the bin lies at or after it (every response kernel has :math:`Q(0) = 0`).
    """

    t: np.ndarray
    S1: np.ndarray
    drop: np.ndarray
    center: np.ndarray
    area: np.ndarray
    eta_after: np.ndarray
    elapsed_steps: np.ndarray
    elapsed_area: np.ndarray
    lr_scale: float
    peak: float
    extras: dict = field(default_factory=dict)

    @classmethod
    def build(cls, curve: LossCurve, t: np.ndarray, lr_scale: float, bin_steps: int | None = None) -> "ScheduleFeatures":
        eta = curve.per_step_lr() / lr_scale
        t = np.asarray(t, dtype=np.int64)
        cum = np.concatenate([[0.0], np.cumsum(eta)])  # cum[k] = sum_{j<k} eta_j
        S1 = cum[t]
        bin_steps = int(bin_steps or 4 * curve.log_every)
        peak_step = int(np.argmax(eta >= eta.max() * (1 - 1e-9)))  # end of warmup
        d = np.zeros_like(eta)
        d[1:] = eta[:-1] - eta[1:]
        d[: peak_step + 1] = 0.0  # warmup increases are not drops
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
        el_steps = np.maximum(t[:, None] - center[None, :], 0.0)
        el_area = np.maximum(S1[:, None] - area[None, :], 0.0)
        return cls(t, S1, drop, center, area, eta_after, el_steps, el_area, float(lr_scale), float(eta.max()))
