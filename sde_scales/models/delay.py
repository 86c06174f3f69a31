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

Kernels (:mod:`sde_scales.kernels`): instantaneous, exponential, sums of exponentials, power law.
A sum of J exponentials is *exactly* Markovian: :math:`y = \sum_j w_j z_j` with
:math:`\dot z_j = (D - z_j)/\tau_j`, one relaxation state per exponential; any other kernel (the
power law) is replaced by a non-negative sum of exponentials (``embedding``) whose largest error of
the response :math:`Q` on the simulated range is reported as ``kernel_error``.

How :meth:`DelayModel.simulate` integrates, exactly where the model is linear:

* the schedule is linear between its knots, so :math:`S_1` (its integral) and every relaxation
  state :math:`z_j` are advanced by their exact solution over each piece (an exponential step with
  linear forcing); they are deterministic, computed once for all paths, and stable at any ``dt``;
* :math:`\xi` is advanced by the exact Ornstein-Uhlenbeck transition between saved times,
  :math:`\xi' = e^{-\Delta/\tau_\xi}\xi + \sqrt{1 - e^{-2\Delta/\tau_\xi}}\,N(0, 1)`, so its
  variance is 1 at every ``dt``; one normal per path and saved time is drawn, nothing else.

So ``dt`` only sets where the loss is reported (every ``save_every * dt``); the numbers at those
times do not depend on it. :meth:`DelayModel.problem` still builds the embedded SDE for the engine
(an explicit scheme on it needs ``dt`` below about twice the smallest time scale).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np
from scipy import integrate

from sde_scales import seeds
from sde_scales.errors import InvalidArgumentError
from sde_scales.kernels import Exponential, Instantaneous, PowerLaw, SumOfExponentials, half_response_time
from sde_scales.schedules import PiecewiseLinear
from sde_scales.validation import check_memory, is_whole
from sde_scales.sde import SDEProblem

__all__ = [
    "DelayModel",
    "exact_states",
    "lag_from_curves",
    "ou_paths",
    "Exponential",
    "Instantaneous",
    "PowerLaw",
    "SumOfExponentials",
    "direct_convolution",
    "half_response_time",
]


def direct_convolution(kernel, schedule: PiecewiseLinear, times, eta_ref: float | None = None) -> np.ndarray:
    """:math:`y(t) = \\int_0^t q(t-s) D(s) ds` by adaptive quadrature, written as
    :math:`\\int_0^t Q(t-s)\\,(-\\eta'(s))\\,ds` over the linear pieces of the schedule plus the jumps
    (for checking the Markovian embedding, which never sees this formula)."""
    eta_ref = float(np.max(schedule.eta)) if eta_ref is None else float(eta_ref)
    times = np.atleast_1d(np.asarray(times, dtype=float))
    if times.ndim != 1 or not np.all(np.isfinite(times)) or np.any(times < 0):
        raise InvalidArgumentError(f"times {times.ravel()[:5].tolist()}...; give finite times >= 0 (y starts at t = 0)")
    out = []
    for t in times:
        # the rate at t = 0 (right limit) holds every change at or before 0: D(0) = eta_ref - eta(0)
        total = (eta_ref - float(schedule(0.0))) * float(kernel.Q(t))
        for i in range(schedule.t.size - 1):
            a, b = schedule.t[i], schedule.t[i + 1]
            if a >= t:
                break
            de = schedule.eta[i + 1] - schedule.eta[i]
            if b == a:  # a jump of the learning rate at a
                if a > 0:  # one at or before 0 is in eta(0) already
                    total += -de * float(kernel.Q(t - a))
                continue
            if b <= 0:  # a piece before t = 0: in eta(0) already
                continue
            slope = de / (b - a)
            lo, hi = max(a, 0.0), min(b, t)
            val, _ = integrate.quad(lambda s: float(kernel.Q(t - s)), lo, hi, epsabs=1e-13, epsrel=1e-12, limit=200)
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
    the noise-free kernel term ``y`` (n_save,) and the learning rate ``eta`` (n_save,).

    ``kernel_error``: the largest error of the embedded kernel's response Q (0 for sums of
    exponentials); ``y_error_bound``: the resulting bound on ``y``, ``kernel_error`` times the total
    variation of the learning rate (y is a Stieltjes integral of Q against the schedule)."""

    t: np.ndarray
    loss: np.ndarray
    y: np.ndarray
    eta: np.ndarray
    kernel_error: float = 0.0
    y_error_bound: float = 0.0


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
        if self.A < 0 or self.alpha <= 0:
            raise InvalidArgumentError(f"A={self.A}, alpha={self.alpha}; the power-law term A (S_1 + S_W)^-alpha falls "
                                       f"with training only for A >= 0 and alpha > 0 (A = 0 turns it off)")
        if self.eta_ref is None:
            object.__setattr__(self, "eta_ref", float(np.max(self.schedule.eta)))
        elif not (np.isfinite(self.eta_ref) and self.eta_ref > 0):
            raise InvalidArgumentError(f"eta_ref={self.eta_ref!r}; the reference (peak) learning rate must be finite and "
                                       f"> 0 (leave it None for the schedule's largest rate)")

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
        """Loss paths at the times ``0, h, 2h, ..`` (``h = save_every * dt``, and ``T``), integrated
        exactly where the model is linear (see the module docstring): any ``dt`` is stable and gives
        the same numbers at the times it reports.

        Path i's noise depends only on ``seed`` and i (not on ``n_paths``)."""
        for name, v in (("T", T), ("dt", dt)):
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise InvalidArgumentError(f"{name}={v!r}; give a finite positive number")
        if int(n_paths) != n_paths or n_paths < 1 or int(save_every) != save_every or save_every < 1:
            raise InvalidArgumentError(f"n_paths={n_paths}, save_every={save_every}; both must be whole numbers >= 1")
        h = float(dt) * int(save_every)
        if h > T:
            raise InvalidArgumentError(f"save_every * dt = {h:g} exceeds T = {T:g}; use dt <= {T / int(save_every):g}")
        n_grid = int(np.floor(T / h + 1e-9)) + 1
        ends_short = T - (n_grid - 1) * h > 1e-12 * T  # then T itself is reported as well
        n_times = n_grid + int(ends_short)
        # counted before any array is made: the time grid itself can be what does not fit
        check_memory(3.0 * 8 * n_times * int(n_paths), f"the loss paths, their noise and its normals ({n_times} times x "
                     f"{int(n_paths)} paths, three arrays)", "report fewer times (a larger save_every or dt: the numbers "
                     "at the reported times do not depend on them) or simulate fewer paths per call (path i's noise "
                     "does not depend on n_paths)")
        times = np.arange(n_grid) * h
        if ends_short:
            times = np.append(times, float(T))
        soe, err = self._sum_of_exponentials(float(T))
        eta = self.schedule(times)
        taus = np.zeros(0) if soe is None else soe.taus
        s1, z = exact_states(self.schedule, self.eta_ref, taus, times)
        y = self.eta_ref - eta if soe is None else z @ soe.weights
        xi = ou_paths(times, self.tau_xi, int(n_paths), seed)
        loss = (self.L_inf + self.A * (s1 + self.S_W)[:, None] ** (-self.alpha) - self.C * y[:, None]
                + self.sigma_L * eta[:, None] * xi)
        tv = abs(self.eta_ref - float(self.schedule(0.0))) + float(np.sum(np.abs(np.diff(self.schedule.eta))))
        return DelayResult(times, loss, y, eta, err, err * tv)


@numba.njit(cache=True)
def _advance(edges, eta_plus, eta_minus, eta_ref, taus, s1, z):
    """Exact solution over pieces [edges[k], edges[k+1]] on which eta is linear from eta_plus[k] to
    eta_minus[k]: S1 gains the trapezoid, z_j' = (D - z_j)/tau_j with D = eta_ref - eta linear."""
    for k in range(edges.size - 1):
        h = edges[k + 1] - edges[k]
        s1[k + 1] = s1[k] + 0.5 * h * (eta_plus[k] + eta_minus[k])
        d0 = eta_ref - eta_plus[k]
        m = -(eta_minus[k] - eta_plus[k]) / h if h > 0 else 0.0
        for j in range(taus.size):
            tau = taus[j]
            em1 = np.expm1(-h / tau)  # e^{-h/tau} - 1, accurate for small h/tau
            z[k + 1, j] = (1.0 + em1) * z[k, j] - d0 * em1 + m * (h + tau * em1)
    return s1, z


def exact_states(schedule: PiecewiseLinear, eta_ref: float, taus, times) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`S_1(t) = \int_0^t \eta` and the relaxation states :math:`z_j(t)` (with :math:`z_j(0) = 0`)
    at ``times`` (non-decreasing, >= 0), exact for a piecewise-linear schedule: the time grid is
    refined by the schedule's knots, and over each piece

    .. math:: z(b) = e^{-h/\tau} z(a) + D_a (1 - e^{-h/\tau}) + m\,(h - \tau(1 - e^{-h/\tau})),

    for :math:`D(s) = D_a + m (s - a)` on :math:`[a, b]`, :math:`h = b - a`."""
    times = _check_times(times, "times")
    if times[0] < 0:
        raise InvalidArgumentError(f"times start at {times[0]:g}; the states are defined from t = 0 on")
    taus = np.atleast_1d(np.asarray(taus, dtype=float))
    if taus.ndim != 1 or not np.all(np.isfinite(taus)) or np.any(taus <= 0):
        raise InvalidArgumentError(f"time scales {taus.tolist()}; give finite time scales > 0")
    if not np.isfinite(eta_ref):
        raise InvalidArgumentError(f"eta_ref={eta_ref!r}; give a finite reference learning rate")
    knots = schedule.t[(schedule.t > 0) & (schedule.t < times[-1])]
    edges = np.union1d(np.concatenate([[0.0], times]), knots)  # from t = 0, where S_1 and z start at 0
    a, b = edges[:-1], edges[1:]
    mid = 0.5 * (a + b)
    e_a = schedule(a)  # right limit at a (the schedule is right-continuous)
    e_m = schedule(mid)
    e_b = 2.0 * e_m - e_a  # left limit at b: eta is linear on (a, b)
    s1 = np.zeros(edges.size)
    z = np.zeros((edges.size, taus.size))
    s1, z = _advance(edges, e_a, e_b, float(eta_ref), taus, s1, z)
    idx = np.searchsorted(edges, times)
    return s1[idx], z[idx]


def _check_times(times, name: str) -> np.ndarray:
    """``times`` as a 1-D float array, refused unless finite, non-empty and non-decreasing."""
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size == 0 or not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0):
        raise InvalidArgumentError(f"{name} must be a non-empty 1-D array of finite, non-decreasing values (got shape "
                                   f"{times.shape}, first values {times.ravel()[:5].tolist()}); sort them")
    return times


def ou_paths(times, tau: float, n_paths: int, seed: int) -> np.ndarray:
    r"""A unit Ornstein-Uhlenbeck process with correlation time ``tau`` at ``times``, started in its
    stationary law: ``(n_times, n_paths)``, by the exact transition between the given times (so its
    variance is 1 whatever the spacing). Path i's numbers come from the first draws of one
    ``SeedSequence`` stream taken path by path, so they do not depend on ``n_paths``."""
    times = _check_times(times, "times")
    if not (np.isfinite(tau) and tau > 0):
        raise InvalidArgumentError(f"tau={tau!r}; the noise's correlation time must be finite and > 0")
    if not is_whole(n_paths, 1):
        raise InvalidArgumentError(f"n_paths={n_paths!r}; give a whole number of paths >= 1")
    rng = np.random.Generator(np.random.SFC64(seeds.child(seed, "delay.noise")))
    normals = rng.standard_normal((n_paths, times.size)).T  # path-major draws: a prefix per path
    a = np.exp(-np.diff(times) / tau)
    c = np.sqrt(-np.expm1(-2.0 * np.diff(times) / tau))
    out = np.empty_like(normals)
    out[0] = normals[0]
    for k in range(1, times.size):
        out[k] = a[k - 1] * out[k - 1] + c[k - 1] * normals[k]
    return out


def lag_from_curves(t: np.ndarray, loss: np.ndarray, t_drop: float, expected_gain: float, axis: int = -1) -> np.ndarray:
    """Lag after a drop at ``t_drop`` read off loss curves: the first time after the drop at which
    the mean loss has fallen by half of ``expected_gain`` (:math:`C\\Delta`) below its level at the
    drop, linearly interpolated between saved points.

    ``loss`` has the time axis first and replicas along ``axis`` (averaged); other axes (bootstrap
    batches) are kept. NaN where the mean never falls that far after the drop.
    """
    t = _check_times(t, "t")
    loss = np.asarray(loss, dtype=float)
    if loss.ndim < 2 or loss.shape[0] != t.size:
        raise InvalidArgumentError(f"loss of shape {loss.shape} for {t.size} times; give the times along the first axis "
                                   f"and replicas along another")
    if not (np.isfinite(expected_gain) and expected_gain > 0):
        raise InvalidArgumentError(f"expected_gain={expected_gain!r}; the lag is where the loss has fallen by half of a "
                                   f"positive, finite gain")
    if not (np.isfinite(t_drop) and t[0] <= t_drop < t[-1]):
        raise InvalidArgumentError(f"t_drop={t_drop!r} outside the saved times [{t[0]:g}, {t[-1]:g}); give a drop with "
                                   f"saved times after it")
    mean = np.mean(loss, axis=axis)  # time stays the first axis
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
