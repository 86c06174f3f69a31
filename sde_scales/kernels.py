r"""Memory kernels :math:`q(\tau)` of the learning-rate-delay model: what a drop of the learning
rate does to the loss over the time since the drop.

Every kernel is normalised, :math:`\int_0^\infty q = 1`, and gives

* ``q(tau)``: the kernel; ``Q(tau)``: its integral :math:`\int_0^\tau q`, the response to a unit
  step; ``lag``: the half-response time, the root of :math:`Q = 1/2`;
* ``embedding()``: a non-negative sum of exponentials, which makes the model Markovian (one
  relaxation state per exponential) -- exact for sums of exponentials, fitted with a stated error
  for the power law.

=====================  ===========================================  =======================
kernel                 q(tau)                                       lag
=====================  ===========================================  =======================
``Instantaneous``      delta                                        0
``Exponential(tau)``   exp(-t/tau)/tau                              tau ln 2
``SumOfExponentials``  sum_j w_j exp(-t/tau_j)/tau_j                root of Q = 1/2
``PowerLaw(tau0, a)``  (a-1)/tau0 (1 + t/tau0)^-a                   tau0 (2^(1/(a-1)) - 1)
=====================  ===========================================  =======================

The delay model (:mod:`sde_scales.models.delay`) and the Theorem 5.1 check use these objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from sde_scales.errors import InvalidArgumentError

__all__ = ["Exponential", "Instantaneous", "PowerLaw", "SumOfExponentials", "half_response_time"]


@dataclass(frozen=True)
class SumOfExponentials:
    """:math:`q(\\tau) = \\sum_j w_j e^{-\\tau/\\tau_j}/\\tau_j` with :math:`w_j \\ge 0`, :math:`\\sum w_j = 1`."""

    taus: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        taus = np.atleast_1d(np.asarray(self.taus, dtype=float))
        w = np.atleast_1d(np.asarray(self.weights, dtype=float))
        if taus.shape != w.shape or taus.size == 0:
            raise InvalidArgumentError(f"{taus.size} time scales and {w.size} weights; give equally many (>= 1)")
        if np.any(~np.isfinite(taus)) or np.any(taus <= 0):
            raise InvalidArgumentError(f"time scales {taus.tolist()} must be finite and > 0 (use Instantaneous for 0)")
        if np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise InvalidArgumentError(f"weights {w.tolist()} must be finite, >= 0 and not all 0")
        object.__setattr__(self, "taus", taus)
        object.__setattr__(self, "weights", w / w.sum())

    def q(self, tau) -> np.ndarray:
        tau = np.asarray(tau, dtype=float)[..., None]
        return np.sum(self.weights / self.taus * np.exp(-tau / self.taus), axis=-1)

    def Q(self, tau) -> np.ndarray:
        tau = np.asarray(tau, dtype=float)[..., None]
        return np.sum(self.weights * -np.expm1(-tau / self.taus), axis=-1)

    def embedding(self) -> "SumOfExponentials":
        return self

    @property
    def lag(self) -> float:
        return half_response_time(self)


@dataclass(frozen=True)
class Exponential(SumOfExponentials):
    """:math:`q(\\tau) = e^{-\\tau/\\tau_c}/\\tau_c`; lag :math:`\\tau_c \\ln 2`."""

    def __init__(self, tau: float):
        super().__init__(np.array([float(tau)]), np.array([1.0]))

    @property
    def tau(self) -> float:
        return float(self.taus[0])

    @property
    def lag(self) -> float:
        return self.tau * np.log(2.0)


@dataclass(frozen=True)
class Instantaneous:
    """The zero-memory kernel :math:`q = \\delta`: the loss follows the learning rate at once."""

    def Q(self, tau) -> np.ndarray:
        return (np.asarray(tau, dtype=float) >= 0).astype(float)

    @property
    def lag(self) -> float:
        return 0.0


@dataclass(frozen=True)
class PowerLaw:
    """:math:`q(\\tau) = \\frac{a-1}{\\tau_0}(1 + \\tau/\\tau_0)^{-a}`, :math:`a > 1`."""

    tau0: float
    a: float

    def __post_init__(self) -> None:
        if not (self.tau0 > 0 and np.isfinite(self.tau0)) or not (self.a > 1 and np.isfinite(self.a)):
            raise InvalidArgumentError(f"PowerLaw(tau0={self.tau0}, a={self.a}); need tau0 > 0 and a > 1 (integrable)")

    def q(self, tau) -> np.ndarray:
        return (self.a - 1) / self.tau0 * (1 + np.asarray(tau, float) / self.tau0) ** (-self.a)

    def Q(self, tau) -> np.ndarray:
        return 1 - (1 + np.asarray(tau, float) / self.tau0) ** (1 - self.a)

    @property
    def lag(self) -> float:
        return self.tau0 * (2 ** (1 / (self.a - 1)) - 1)

    def embedding(self, t_max: float | None = None, n_terms: int = 12) -> tuple[SumOfExponentials, float]:
        """Non-negative sum of ``n_terms`` exponentials (time scales log-spaced from ``tau0/10`` to
        ``10 t_max``) fitted to :math:`Q` on ``[0, t_max]``; returns it and the largest error of its
        :math:`Q` there. Default ``t_max = 100 * lag``."""
        t_max = 100 * self.lag if t_max is None else float(t_max)
        taus = np.geomspace(self.tau0 / 10, 10 * t_max, n_terms)
        grid = np.concatenate([[0.0], np.geomspace(self.tau0 / 100, t_max, 400)])
        basis = -np.expm1(-grid[:, None] / taus[None, :])
        w, _ = optimize.nnls(basis, self.Q(grid))
        approx = SumOfExponentials(taus, np.maximum(w, 1e-300))
        err = float(np.max(np.abs(approx.Q(grid) - self.Q(grid))))
        return approx, err


def half_response_time(kernel) -> float:
    """The lag: the root of :math:`Q(\\tau) = 1/2`."""
    if isinstance(kernel, Instantaneous):
        return 0.0
    hi = 1.0
    while kernel.Q(hi) < 0.5:
        hi *= 2
        if hi > 1e12:
            raise InvalidArgumentError("the kernel never reaches half response")
    return float(optimize.brentq(lambda t: float(kernel.Q(t)) - 0.5, 0.0, hi, xtol=1e-14, rtol=1e-14))
