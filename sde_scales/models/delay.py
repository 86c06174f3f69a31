r"""The memory-kernel learning-rate-delay model.

.. math::

    L(t) = L_\infty + A\,(S_1(t) + S_W)^{-\alpha} - C\,y(t) + \sigma_L\,\eta(t)\,\xi(t),
    \qquad S_1(t) = \int_0^t \eta(s)\,ds,
    \qquad y(t) = \int_0^t q(t - s)\,D(s)\,ds,

where :math:`D(s) = \eta_{ref} - \eta(s)` is how far the learning rate has dropped below its
reference (peak) value, :math:`q \ge 0` with :math:`\int_0^\infty q = 1` is the response kernel, and
:math:`\xi` is a unit Ornstein-Uhlenbeck noise with correlation time :math:`\tau_\xi`. A drop of
size :math:`\Delta` at :math:`s_0` lowers the loss by :math:`C\Delta\,Q(t - s_0)` with
:math:`Q(\tau) = \int_0^\tau q`: the loss answers with a delay, and the *lag* (time to half
response) solves :math:`Q(\text{lag}) = 1/2`.

Kernels and how they are integrated:

=====================  ===========================================  =======================
kernel                 q(tau)                                       lag
=====================  ===========================================  =======================
``Instantaneous``      delta                                        0
``Exponential(tau)``   exp(-t/tau)/tau                              tau ln 2
``SumOfExponentials``  sum_j w_j exp(-t/tau_j)/tau_j                root of Q = 1/2
``PowerLaw(tau0, a)``  (a-1)/tau0 (1 + t/tau0)^-a                   tau0 (2^(1/(a-1)) - 1)
=====================  ===========================================  =======================

A sum of J exponentials is *exactly* Markovian: :math:`y = \sum_j w_j z_j` with
:math:`\dot z_j = (D - z_j)/\tau_j`, one auxiliary state per exponential, and the SDE engine
integrates the state :math:`(S_1, z_1..z_J, \xi)`. Any other kernel (the power law) is replaced by a
non-negative sum of exponentials on a log grid of time scales, fitted by ``scipy.optimize.nnls``;
:meth:`PowerLaw.embedding` returns it with the largest error of its response :math:`Q` on the
fitted range, which is the stated error of the approximation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np
from scipy import integrate, optimize

from sde_scales.errors import InvalidArgumentError
from sde_scales.schedules import PiecewiseLinear
from sde_scales.sde import EulerMaruyama, SaveAt, SDEProblem, solve

__all__ = [
    "DelayModel",
    "Exponential",
    "Instantaneous",
    "PowerLaw",
    "SumOfExponentials",
    "direct_convolution",
    "half_response_time",
]


# ----------------------------------------------------------------------------- kernels
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


def direct_convolution(kernel, schedule: PiecewiseLinear, times, eta_ref: float | None = None) -> np.ndarray:
    """:math:`y(t) = \\int_0^t q(t-s) D(s) ds` by adaptive quadrature, written as
    :math:`\\int_0^t Q(t-s)\\,(-\\eta'(s))\\,ds` over the linear pieces of the schedule plus the jumps
    (for checking the Markovian embedding, which never sees this formula)."""
    eta_ref = float(np.max(schedule.eta)) if eta_ref is None else float(eta_ref)
    out = []
    for t in np.atleast_1d(times):
        total = (eta_ref - float(schedule(0.0))) * float(kernel.Q(t))  # drop present from the start
        for i in range(schedule.t.size - 1):
            a, b = schedule.t[i], schedule.t[i + 1]
            if a >= t:
                break
            de = schedule.eta[i + 1] - schedule.eta[i]
            if b == a:  # a jump of the learning rate at a
                total += -de * float(kernel.Q(t - a))
                continue
            slope = de / (b - a)
            hi = min(b, t)
            val, _ = integrate.quad(lambda s: float(kernel.Q(t - s)), a, hi, epsabs=1e-13, epsrel=1e-12, limit=200)
            total += -slope * val
        out.append(total)
    return np.array(out)


# ----------------------------------------------------------------------------- jitted pieces
@numba.njit(inline="always")
def _eta_at(t, p, off):
    K = int(p[off])
    ts = p[off + 1: off + 1 + K]
    es = p[off + 1 + K: off + 1 + 2 * K]
    if t < ts[0]:
        return es[0]
    i = K - 1
    while ts[i] > t:
        i -= 1
    if i == K - 1:
        return es[K - 1]
    return es[i] + (es[i + 1] - es[i]) * (t - ts[i]) / (ts[i + 1] - ts[i])


# params: [eta_ref, tau_xi, J, tau_1..tau_J, <packed schedule>]
@numba.njit
def _delay_drift(t, x, p, out):
    J = int(p[2])
    eta = _eta_at(t, p, 3 + J)
    D = p[0] - eta
    out[0] = eta
    for j in range(J):
        out[1 + j] = (D - x[1 + j]) / p[3 + j]
    out[1 + J] = -x[1 + J] / p[1]


@numba.njit
def _delay_diffusion(t, x, p, out):
    for i in range(out.shape[0] - 1):
        out[i] = 0.0
    out[out.shape[0] - 1] = np.sqrt(2.0 / p[1])


# ----------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class DelayResult:
    """Loss paths of :meth:`DelayModel.simulate`: ``t`` (n_save,), ``loss`` (n_save, n_paths),
    the noise-free kernel term ``y`` (n_save,) and the learning rate ``eta`` (n_save,)."""

    t: np.ndarray
    loss: np.ndarray
    y: np.ndarray
    eta: np.ndarray
    kernel_error: float = 0.0


@dataclass(frozen=True)
class DelayModel:
    """See the module docstring. ``kernel`` is one of the kernel classes above."""

    schedule: PiecewiseLinear
    kernel: object = field(default_factory=lambda: Exponential(0.1))
    L_inf: float = 2.0
    A: float = 0.0
    alpha: float = 0.5
    S_W: float = 1.0
    C: float = 1.0
    sigma_L: float = 0.05
    tau_xi: float = 0.01
    eta_ref: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, PiecewiseLinear):
            raise InvalidArgumentError("schedule must be a sde_scales.schedules.PiecewiseLinear")
        for name in ("L_inf", "A", "alpha", "S_W", "C", "sigma_L", "tau_xi"):
            v = getattr(self, name)
            if not np.isfinite(v):
                raise InvalidArgumentError(f"{name}={v!r} is not finite")
        if self.tau_xi <= 0 or self.S_W <= 0 or self.sigma_L < 0:
            raise InvalidArgumentError(f"tau_xi={self.tau_xi}, S_W={self.S_W}, sigma_L={self.sigma_L}; need tau_xi > 0, S_W > 0, sigma_L >= 0")
        if self.eta_ref is None:
            object.__setattr__(self, "eta_ref", float(np.max(self.schedule.eta)))

    def _sum_of_exponentials(self, T: float) -> tuple[SumOfExponentials | None, float]:
        k = self.kernel
        if isinstance(k, Instantaneous):
            return None, 0.0
        if isinstance(k, SumOfExponentials):
            return k, 0.0
        if isinstance(k, PowerLaw):
            return k.embedding(t_max=T)
        raise InvalidArgumentError(f"kernel {k!r}; use Instantaneous, Exponential, SumOfExponentials or PowerLaw")

    def problem(self, T: float, soe: SumOfExponentials | None) -> SDEProblem:
        taus = np.array([]) if soe is None else soe.taus
        params = np.concatenate([[self.eta_ref, self.tau_xi, float(taus.size)], taus, self.schedule.pack()])
        x0 = np.zeros(taus.size + 2)
        return SDEProblem(_delay_drift, _delay_diffusion, x0=x0, tspan=(0.0, float(T)), noise="diagonal",
                          params=params, name="lr-delay")

    def simulate(self, T: float, dt: float, n_paths: int, seed: int, save_every: int = 1) -> DelayResult:
        """Integrate the embedded state with Euler-Maruyama and assemble the loss paths."""
        soe, err = self._sum_of_exponentials(T)
        prob = self.problem(T, soe)
        # xi starts in its stationary law N(0, 1), from its own stream
        x0 = np.zeros((n_paths, prob.d))
        x0[:, -1] = np.random.Generator(np.random.SFC64(np.random.SeedSequence([int(seed), 0xDE1A]))).standard_normal(n_paths)
        sol = solve(prob.with_x0(x0), EulerMaruyama(), dt, seed=seed, save_at=SaveAt(every=save_every))
        x = sol.x  # (n_save, n_paths, d)
        eta = self.schedule(sol.t)
        if soe is None:
            y = self.eta_ref - eta
        else:
            y = x[:, 0, 1:1 + soe.taus.size] @ soe.weights  # deterministic: identical on every path
        s1 = x[:, :, 0]
        loss = (self.L_inf + self.A * (s1 + self.S_W) ** (-self.alpha) - self.C * y[:, None]
                + self.sigma_L * eta[:, None] * x[:, :, -1])
        return DelayResult(sol.t, loss, y, eta, err)


def lag_from_curves(t: np.ndarray, loss: np.ndarray, t_drop: float, expected_gain: float, axis: int = -1) -> np.ndarray:
    """Lag after a drop at ``t_drop`` read off loss curves: the first time after the drop at which
    the mean loss has fallen by half of ``expected_gain`` (:math:`C\\Delta`) below its level at the
    drop, linearly interpolated between saved points.

    ``loss`` has the time axis first and replicas along ``axis`` (averaged); extra leading axes
    (bootstrap batches) are kept.
    """
    mean = np.mean(loss, axis=axis)  # (..., n_save) after moving? keep time as the first axis
    mean = np.moveaxis(mean, 0, -1)  # (..., n_save)
    k0 = int(np.searchsorted(t, t_drop, side="left"))
    level0 = mean[..., k0 - 1] if k0 > 0 else mean[..., 0]
    resp = (level0[..., None] - mean[..., k0:]) / expected_gain
    tt = t[k0:]
    above = resp >= 0.5
    first = np.argmax(above, axis=-1)
    found = np.any(above, axis=-1)
    i1 = np.clip(first, 1, tt.size - 1)
    r0 = np.take_along_axis(resp, (i1 - 1)[..., None], -1)[..., 0]
    r1 = np.take_along_axis(resp, i1[..., None], -1)[..., 0]
    frac = np.where(r1 != r0, (0.5 - r0) / (r1 - r0), 0.0)
    tc = tt[i1 - 1] + np.clip(frac, 0, 1) * (tt[i1] - tt[i1 - 1])
    tc = np.where(first == 0, tt[0], tc)
    return np.where(found, tc - t_drop, np.nan)
