r"""Learning-rate schedules as arrays over steps, and piecewise-linear schedules in continuous time.

Step schedules return ``lr[k]`` for steps ``k = 0 .. n_steps - 1`` (the learning rate *used* at
step k). All take the peak learning rate and an optional linear warmup of ``warmup`` steps.

=============  ==============================================================================
constant       ``peak``
step           ``peak * factor**j`` after the j-th milestone
cosine         ``final + (peak - final) (1 + cos(pi s)) / 2`` over the steps after warmup
wsd            constant, then a cooldown over the last ``fraction`` of steps, linear
               (``peak (1 - s)``) or ``"sqrt"`` (``peak (1 - sqrt(s))``), to ``final``
eight_one_one  80% at peak, 10% at ``peak / sqrt(10)``, 10% at ``peak / 10`` (the 8-1-1 rule)
=============  ==============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sde_scales.errors import InvalidArgumentError
from sde_scales.validation import is_integral

__all__ = ["PiecewiseLinear", "constant", "cosine", "eight_one_one", "step", "warmup", "wsd"]


def _check(n_steps: int, peak: float, warmup_steps: int = 0) -> None:
    if not is_integral(n_steps, 1):
        raise InvalidArgumentError(f"n_steps={n_steps!r}; give a positive whole number of steps")
    if isinstance(peak, (bool, np.bool_)) or not isinstance(peak, (int, float, np.integer, np.floating)) \
            or not np.isfinite(peak) or peak < 0:
        raise InvalidArgumentError(f"peak learning rate {peak!r}; it must be a finite number >= 0")
    _check_warmup(warmup_steps, n_steps)


def _check_warmup(warmup_steps, n_steps) -> None:
    if not is_integral(warmup_steps, 0) or warmup_steps >= n_steps:
        raise InvalidArgumentError(f"warmup={warmup_steps!r} for {n_steps} steps; use a whole number 0 <= warmup < "
                                   f"n_steps")


def _check_final(final_fraction: float) -> None:
    if not (np.isfinite(final_fraction) and 0 <= final_fraction <= 1):
        raise InvalidArgumentError(f"final_fraction={final_fraction!r}; the final rate is a fraction of the peak in "
                                   f"[0, 1] (a negative one gives negative learning rates, one above 1 a schedule "
                                   f"that rises past its peak)")


def warmup(lr: np.ndarray, warmup_steps: int) -> np.ndarray:
    """Linear warmup from ``lr[w] / (w + 1)`` towards ``lr[w]`` over the first ``w`` steps
    (``0 <= w < len(lr)``)."""
    lr = np.asarray(lr, dtype=float).reshape(-1).copy()
    _check_warmup(warmup_steps, lr.size)
    w = int(warmup_steps)
    if w > 0:
        lr[:w] = lr[w] * (np.arange(1, w + 1) / (w + 1))
    return lr


def constant(n_steps: int, peak: float, warmup_steps: int = 0) -> np.ndarray:
    r"""A constant rate :math:`\eta_k = \eta_{peak}` after an optional linear warmup (:func:`warmup`).

    Parameters
    ----------
    n_steps : int
        Steps; the array has one rate per step ``k = 0 .. n_steps - 1``.
    peak : float
        The rate, finite and >= 0.
    warmup_steps : int
        Whole number of warmup steps, ``0 <= warmup_steps < n_steps``.
    """
    _check(n_steps, peak, warmup_steps)
    return warmup(np.full(int(n_steps), float(peak)), warmup_steps)


def step(n_steps: int, peak: float, milestones, factor: float = 0.1, warmup_steps: int = 0) -> np.ndarray:
    r"""Step decay: :math:`\eta_k = \eta_{peak} f^{j(k)}`, :math:`j(k)` the number of milestones
    :math:`\le k`.

    ``milestones``: increasing whole steps inside ``(0, n_steps)``; ``factor`` :math:`f` in (0, 1].
    Other parameters as :func:`constant`."""
    _check(n_steps, peak, warmup_steps)
    raw = np.asarray(milestones, dtype=float).ravel()
    ms = raw.astype(int)
    if not np.all(np.isfinite(raw)) or np.any(ms != raw) or np.any(np.diff(ms) <= 0) or np.any(ms <= 0) \
            or np.any(ms >= n_steps):
        raise InvalidArgumentError(f"milestones={raw.tolist()}; give increasing whole steps inside (0, {n_steps})")
    if not (0 < factor <= 1):
        raise InvalidArgumentError(f"factor={factor}; use 0 < factor <= 1")
    k = np.arange(int(n_steps))
    return warmup(peak * factor ** np.searchsorted(ms, k, side="right"), warmup_steps)


def cosine(n_steps: int, peak: float, final_fraction: float = 0.0, warmup_steps: int = 0) -> np.ndarray:
    r"""Cosine decay after the warmup :math:`w`:
    :math:`\eta_k = \eta_f + (\eta_{peak} - \eta_f)\,(1 + \cos \pi s_k)/2`,
    :math:`s_k = (k - w)/(n - w - 1)` clipped to [0, 1], :math:`\eta_f` = ``final_fraction`` x peak
    (in [0, 1]). Other parameters as :func:`constant`."""
    _check(n_steps, peak, warmup_steps)
    _check_final(final_fraction)
    w = int(warmup_steps)
    s = np.clip((np.arange(int(n_steps)) - w) / max(1, n_steps - w - 1), 0, 1)
    final = peak * final_fraction
    return warmup(final + (peak - final) * 0.5 * (1 + np.cos(np.pi * s)), w)


def wsd(n_steps: int, peak: float, fraction: float = 0.2, decay: str = "linear", final_fraction: float = 0.0,
        warmup_steps: int = 0) -> np.ndarray:
    r"""Warmup-stable-decay: the peak, then a cooldown over the last ``fraction`` (in (0, 1]) of the
    steps to :math:`\eta_f` = ``final_fraction`` x peak (in [0, 1]),
    :math:`\eta_k = \eta_{peak} - (\eta_{peak} - \eta_f)\,g(s_k)` with :math:`g(s) = s`
    (``"linear"``) or :math:`\sqrt{s}` (``"sqrt"``), :math:`s_k` the fraction of the cooldown
    done. Other parameters as :func:`constant`."""
    _check(n_steps, peak, warmup_steps)
    _check_final(final_fraction)
    if not (0 < fraction <= 1):
        raise InvalidArgumentError(f"fraction={fraction}; the cooldown fraction must be in (0, 1]")
    if decay not in ("linear", "sqrt"):
        raise InvalidArgumentError(f"decay={decay!r}; use 'linear' or 'sqrt' (1 - sqrt)")
    n = int(n_steps)
    start = n - int(round(fraction * n))
    if start >= n:  # the cooldown rounds to no step: the "WSD" run would train at the peak throughout
        raise InvalidArgumentError(f"fraction={fraction} of {n} steps is a cooldown of {fraction * n:.3g} steps, which "
                                   f"rounds to none; give fraction >= {1 / n:.3g} (at least one cooldown step) or "
                                   f"more steps")
    k = np.arange(n)
    s = np.clip((k - start + 1) / max(1, n - start), 0, 1)
    shape = s if decay == "linear" else np.sqrt(s)
    final = peak * final_fraction
    return warmup(np.where(k < start, peak, peak - (peak - final) * shape), warmup_steps)


def eight_one_one(n_steps: int, peak: float, warmup_steps: int = 0) -> np.ndarray:
    r"""The 8-1-1 rule: :func:`step` with milestones at 80% and 90% of the steps and factor
    :math:`1/\sqrt{10}` (80% at the peak, 10% at peak / sqrt(10), 10% at peak / 10); at least 10
    steps, so that each tenth holds one."""
    if is_integral(n_steps, 1) and n_steps < 10:
        raise InvalidArgumentError(f"n_steps={n_steps}: the 8-1-1 rule needs at least 10 steps (one per tenth)")
    return step(n_steps, peak, [int(0.8 * n_steps), int(0.9 * n_steps)], factor=1 / np.sqrt(10),
                warmup_steps=warmup_steps)


@dataclass(frozen=True)
class PiecewiseLinear:
    """A learning rate :math:`\\eta(t)` in continuous time, linear between knots, constant outside.

    Packed for jitted code as ``[K, t_1..t_K, eta_1..eta_K]`` (:meth:`pack`).
    """

    t: np.ndarray
    eta: np.ndarray

    def __post_init__(self) -> None:
        t = np.asarray(self.t, dtype=float).reshape(-1)
        e = np.asarray(self.eta, dtype=float).reshape(-1)
        if t.size != e.size or t.size < 1:
            raise InvalidArgumentError(f"{t.size} knot times and {e.size} learning rates; give equally many (>= 1)")
        if np.any(np.diff(t) < 0) or not np.all(np.isfinite(t)):
            raise InvalidArgumentError(f"knot times {t.tolist()} must be finite and non-decreasing; sort them")
        if np.any(~np.isfinite(e)) or np.any(e < 0):
            i = int(np.argmax(~np.isfinite(e) | (e < 0)))
            raise InvalidArgumentError(f"learning rate {float(e[i])} at knot {i} (t={float(t[i])}); learning rates must be finite and >= 0")
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "eta", e)

    @classmethod
    def step_drop(cls, eta0: float, eta1: float, t_drop: float) -> "PiecewiseLinear":
        """:math:`\\eta_0` until ``t_drop``, then :math:`\\eta_1` (a jump: two knots at ``t_drop``)."""
        return cls([t_drop, t_drop], [eta0, eta1])

    def __call__(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        # right-continuous at a jump (two knots at the same time)
        idx = np.searchsorted(self.t, t, side="right")
        out = np.interp(t, self.t, self.eta)
        jump_end = (idx > 0) & (idx <= self.t.size)
        out = np.where(jump_end & (t == self.t[np.clip(idx - 1, 0, self.t.size - 1)]), self.eta[np.clip(idx - 1, 0, None)], out)
        return out

    def pack(self) -> np.ndarray:
        return np.concatenate([[float(self.t.size)], self.t, self.eta])
