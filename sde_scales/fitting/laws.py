r"""Loss-curve laws: the loss as a function of the learning-rate schedule.

All laws share the power-law term of the learning-rate area :math:`S_1(t) = \sum_{k<t}\eta_k`
(warmup included) and differ in how learning-rate drops :math:`d_k = \eta_{k-1} - \eta_k` lower
the loss. Learning rates are measured in units of ``lr_scale`` (the largest peak of the fitted
curves) so that every parameter is of order one.

Momentum law (Tissue et al. 2024)
    :math:`L = L_0 + A S_1^{-\alpha} - C S_2`, :math:`S_2(t) = \sum_{i<t} m_i`,
    :math:`m_i = \lambda m_{i-1} + d_i`, so :math:`S_2 = \sum_k d_k (1-\lambda^{t-k})/(1-\lambda)`.
    Fitted as :math:`C_{eff} = C/(1-\lambda)` and :math:`\tau = -1/\ln\lambda` (steps); ``lam``
    fixes :math:`\lambda`.
Multi-power law (Luo et al. 2025)
    :math:`L = L_0 + A (S_1 + S_W)^{-\alpha} - B\sum_k d_k\,G(\eta_k^{-\gamma} S_k(t))`,
    :math:`G(x) = 1 - (Cx + 1)^{-\beta}`, :math:`S_k(t) = \sum_{k \le \tau < t} \eta_\tau`
    (:math:`S_W`, the warmup area, is part of :math:`S_1` here).
Kernel law (Theorem 5.1 of Hong & Wang, this toolkit's)
    :math:`L = L_0 + A S_1^{-\alpha} - B\sum_k d_k\,Q(u(t) - u(k))`, the drops convolved with the
    step response :math:`Q(\tau) = \int_0^\tau q` of a memory kernel :math:`q \ge 0`, with time
    :math:`u` in steps or in learning-rate area. Kernels: ``"exp"`` (:math:`Q = 1 - e^{-\tau/\tau_c}`),
    ``"power"`` (:math:`Q = 1 - (1 + \tau/\tau_0)^{1-a}`) and ``"nonparametric"``: a non-negative
    combination of exponentials on a fixed log grid of time scales (:math:`q` is then a completely
    monotone, hence monotone, function), fitted with the other parameters.

Drops are binned (:class:`~sde_scales.fitting.curves.ScheduleFeatures`). Laws with exponential
responses (the momentum law, the exponential and non-parametric kernels) sum them with a recursive
filter in O(points + bins) (:mod:`sde_scales.fitting._filters`); the power-law kernel and the
multi-power law still use an (evaluation point x drop bin) array.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting.curves import ScheduleFeatures

__all__ = ["KernelLaw", "Law", "MomentumLaw", "MultiPowerLaw"]


@dataclass(frozen=True)
class Law:
    """Base class. ``names``, ``lower``, ``upper``: parameter names and bounds."""

    @property
    def names(self) -> tuple[str, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def label(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def starts(self) -> list[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, theta: np.ndarray, f: ScheduleFeatures) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def jacobian(self, theta: np.ndarray, f: ScheduleFeatures) -> np.ndarray | None:
        """d predict / d theta, shape (n_points, n_params), where the law has it in closed form;
        None lets the fit use finite differences."""
        return None

    def time_scale(self, theta: np.ndarray) -> float | None:
        """The response time scale (steps or area units) where the law has one, else None."""
        return None

    def half_response(self, theta: np.ndarray) -> float | None:
        """Time to half response of the drop term (the delay), where defined."""
        return None


def _power_term(theta, f):
    return theta[0] + theta[1] * np.power(np.maximum(f.S1, 1e-12), -theta[2])


def _power_jac(theta, f):
    """Columns d/dL0, d/dA, d/dalpha of L0 + A S1^-alpha."""
    s = np.maximum(f.S1, 1e-12)
    sp = np.power(s, -theta[2])
    return np.stack([np.ones_like(s), sp, -theta[1] * sp * np.log(s)], axis=1)


_BASE_NAMES = ("L0", "A", "alpha")
_BASE_LO = [0.0, 0.0, 0.01]
_BASE_HI = [20.0, 100.0, 3.0]


@dataclass(frozen=True)
class MomentumLaw(Law):
    """Tissue et al. (2024). ``lam``: fixed momentum decay, or None to fit it."""

    lam: float | None = None

    def __post_init__(self) -> None:
        if self.lam is not None and not (0 < self.lam < 1):
            raise InvalidArgumentError(f"lam={self.lam}; the momentum decay must be in (0, 1), e.g. 0.999")

    @property
    def label(self) -> str:
        return "momentum" if self.lam is None else f"momentum(lambda={self.lam})"

    @property
    def names(self):
        return _BASE_NAMES + (("C_eff",) if self.lam is not None else ("C_eff", "log10_tau"))

    def bounds(self):
        lo = _BASE_LO + [0.0] + ([] if self.lam is not None else [0.0])
        hi = _BASE_HI + [20.0] + ([] if self.lam is not None else [5.0])
        return np.array(lo), np.array(hi)

    def starts(self):
        base = [3.0, 2.0, 0.5, 0.3]
        if self.lam is not None:
            return [np.array(base)]
        return [np.array(base + [lt]) for lt in (2.5, 3.5)]

    def _tau(self, theta):
        return -1.0 / np.log(self.lam) if self.lam is not None else 10.0 ** theta[4]

    def predict(self, theta, f):
        # (1 - lam^el) / (1 - lam) * (1 - lam) = 1 - lam^el = 1 - exp(-el / tau): C_eff absorbs
        # 1/(1 - lam), and the sum over drops is an exponential filter in steps (linear time)
        resp = f.exp_response([self._tau(theta)], "steps", cache=self.lam is not None)[:, 0]
        return _power_term(theta, f) - theta[3] * resp

    def time_scale(self, theta):
        return float(self._tau(theta))

    def half_response(self, theta):
        return float(self._tau(theta) * np.log(2))

    def reported(self, theta) -> dict:
        tau = self._tau(theta)
        lam = float(np.exp(-1 / tau))
        return {"lambda": lam, "C": float(theta[3] * (1 - lam))}


@dataclass(frozen=True)
class MultiPowerLaw(Law):
    """Luo et al. (2025)."""

    @property
    def label(self) -> str:
        return "mpl"

    @property
    def names(self):
        return _BASE_NAMES + ("B", "C", "beta", "gamma")

    def bounds(self):
        return np.array(_BASE_LO + [0.0, 1e-4, 0.01, 0.0]), np.array(_BASE_HI + [20.0, 1e3, 5.0, 2.0])

    def starts(self):
        return [np.array([3.0, 2.0, 0.5, 0.4, c, 0.6, 0.5]) for c in (0.5, 5.0)]

    def _parts(self, theta, f):
        C, beta, gamma = theta[4:7]
        log_eta = np.log(np.maximum(f.eta_after, 1e-6))
        x = np.exp(-gamma * log_eta)[None, :] * f.elapsed_area
        l1p = np.log1p(C * x)
        pw = np.exp(-beta * l1p)  # (C x + 1)^-beta
        return x, l1p, pw, log_eta

    def predict(self, theta, f):
        _, _, pw, _ = self._parts(theta, f)
        return _power_term(theta, f) - theta[3] * ((1.0 - pw) @ f.drop)

    def jacobian(self, theta, f):
        B, C, beta, gamma = theta[3:7]
        x, l1p, pw, log_eta = self._parts(theta, f)
        dG_dx = beta * C * pw / (1.0 + C * x)  # d/dx [1 - (Cx+1)^-beta]
        cols = [
            -((1.0 - pw) @ f.drop),                                   # B
            -B * ((beta * x * pw / (1.0 + C * x)) @ f.drop),          # C
            -B * ((pw * l1p) @ f.drop),                               # beta
            -B * ((dG_dx * x * (-log_eta)[None, :]) @ f.drop),        # gamma: dx/dgamma = -x log eta
        ]
        return np.concatenate([_power_jac(theta, f), np.stack(cols, axis=1)], axis=1)


#: Time scales of the non-parametric kernel: log grid from 30 to 30,000 (steps or area units,
#: one area unit being one step at peak learning rate).
NONPARAMETRIC_TAUS = np.geomspace(30.0, 30000.0, 10)


@dataclass(frozen=True)
class KernelLaw(Law):
    """Drops convolved with a memory kernel. ``kernel``: ``"exp"``, ``"power"`` or
    ``"nonparametric"``; ``time``: ``"steps"`` or ``"area"`` (learning-rate area)."""

    kernel: str = "nonparametric"
    time: str = "area"
    taus: np.ndarray = field(default_factory=lambda: NONPARAMETRIC_TAUS.copy())

    def __post_init__(self) -> None:
        if self.kernel not in ("exp", "power", "nonparametric"):
            raise InvalidArgumentError(f"kernel={self.kernel!r}; use 'exp', 'power' or 'nonparametric'")
        if self.time not in ("steps", "area"):
            raise InvalidArgumentError(f"time={self.time!r}; use 'steps' or 'area' (learning-rate area)")
        taus = np.asarray(self.taus, dtype=float)
        if taus.ndim != 1 or taus.size < 1 or np.any(taus <= 0):
            raise InvalidArgumentError(f"taus={taus}; give positive time scales")
        object.__setattr__(self, "taus", taus)

    @property
    def label(self) -> str:
        return f"kernel({self.kernel}, {self.time})"

    @property
    def names(self):
        if self.kernel == "exp":
            return _BASE_NAMES + ("B", "log10_tau")
        if self.kernel == "power":
            return _BASE_NAMES + ("B", "log10_tau0", "a")
        return _BASE_NAMES + tuple(f"b_{t:.0f}" for t in self.taus)

    def bounds(self):
        if self.kernel == "exp":
            return np.array(_BASE_LO + [0.0, 0.0]), np.array(_BASE_HI + [20.0, 5.0])
        if self.kernel == "power":
            return np.array(_BASE_LO + [0.0, 0.0, 1.01]), np.array(_BASE_HI + [20.0, 5.0, 6.0])
        k = self.taus.size
        return np.array(_BASE_LO + [0.0] * k), np.array(_BASE_HI + [20.0] * k)

    def starts(self):
        if self.kernel == "exp":
            return [np.array([3.0, 2.0, 0.5, 0.4, lt]) for lt in (2.5, 3.5)]
        if self.kernel == "power":
            return [np.array([3.0, 2.0, 0.5, 0.4, lt, 2.0]) for lt in (2.0, 3.0)]
        return [np.array([3.0, 2.0, 0.5] + [0.4 / self.taus.size] * self.taus.size)]

    def elapsed(self, f: ScheduleFeatures) -> np.ndarray:
        return f.elapsed_steps if self.time == "steps" else f.elapsed_area

    def basis(self, f: ScheduleFeatures) -> np.ndarray:
        """For the non-parametric kernel: ``Y[:, j] = sum_b drop_b (1 - exp(-el / tau_j))``, by the
        recursive filter of :meth:`ScheduleFeatures.exp_response` (linear time, cached)."""
        return f.exp_response(self.taus, self.time)

    def Q(self, theta, tau) -> np.ndarray:
        """Step response of the fitted kernel, normalised to Q(oo) = 1."""
        tau = np.asarray(tau, dtype=float)
        if self.kernel == "exp":
            return -np.expm1(-tau / 10.0 ** theta[4])
        if self.kernel == "power":
            return 1.0 - np.power(1.0 + tau / 10.0 ** theta[4], 1.0 - theta[5])
        w = np.asarray(theta[3:], dtype=float)
        if w.sum() <= 0:
            return np.zeros_like(tau)
        return (-np.expm1(-tau[..., None] / self.taus) * (w / w.sum())).sum(axis=-1)

    def q(self, theta, tau) -> np.ndarray:
        """The fitted kernel (impulse response), normalised to integrate to 1."""
        tau = np.asarray(tau, dtype=float)
        if self.kernel == "exp":
            tc = 10.0 ** theta[4]
            return np.exp(-tau / tc) / tc
        if self.kernel == "power":
            t0, a = 10.0 ** theta[4], theta[5]
            return (a - 1) / t0 * np.power(1 + tau / t0, -a)
        w = np.asarray(theta[3:], dtype=float)
        w = w / max(w.sum(), 1e-300)
        return (np.exp(-tau[..., None] / self.taus) / self.taus * w).sum(axis=-1)

    def amplitude(self, theta) -> float:
        """B: the loss gained per unit drop once the response is complete."""
        return float(theta[3]) if self.kernel != "nonparametric" else float(np.sum(theta[3:]))

    def predict(self, theta, f):
        if self.kernel == "nonparametric":
            return _power_term(theta, f) - self.basis(f) @ np.asarray(theta[3:])
        if self.kernel == "exp":  # linear time: an exponential filter
            return _power_term(theta, f) - theta[3] * f.exp_response([10.0 ** theta[4]], self.time, cache=False)[:, 0]
        return _power_term(theta, f) - theta[3] * (self.Q(theta, self.elapsed(f)) @ f.drop)

    def jacobian(self, theta, f):
        if self.kernel != "nonparametric":
            return None
        return np.concatenate([_power_jac(theta, f), -self.basis(f)], axis=1)

    def time_scale(self, theta):
        if self.kernel == "nonparametric":
            w = np.asarray(theta[3:])
            return float(np.exp(np.sum(w * np.log(self.taus)) / max(w.sum(), 1e-300)))
        return float(10.0 ** theta[4])

    def half_response(self, theta):
        from scipy import optimize

        hi = 1.0
        while float(self.Q(theta, hi)) < 0.5:
            hi *= 2
            if hi > 1e9:
                return float("inf")
        return float(optimize.brentq(lambda t: float(self.Q(theta, t)) - 0.5, 0.0, hi, xtol=1e-9))
