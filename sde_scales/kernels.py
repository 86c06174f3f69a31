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

The delay model (:mod:`sde_scales.models.delay`), the Theorem 5.1 check and the fits use these
objects. A fit sees a kernel through its *family* (:class:`KernelFamily`): parameter names,
bounds and starts, ``build(params)`` (the kernel object above) and ``response_terms``, the
kernel's step response as a sum of exponentials on a fixed grid of time scales with weights that
are smooth functions of the parameters, which the fits convolve with the learning-rate drops by
a recursive filter in linear time:

=======================  ==================  =============================================
family                   parameters          response terms
=======================  ==================  =============================================
``ExponentialFamily``    log10_tau           one exponential (exact)
``PowerLawFamily``       log10_tau0, a       sinc quadrature of the Laplace form (error stated)
``MonotoneFamily(taus)`` one weight per tau  the grid itself (exact): a completely monotone q
``InstantaneousFamily``  none                one instantaneous term (exact)
=======================  ==================  =============================================
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from sde_scales.errors import InvalidArgumentError
from sde_scales.validation import is_whole

__all__ = ["Exponential", "ExponentialFamily", "Instantaneous", "InstantaneousFamily", "KernelFamily", "MonotoneFamily",
           "PowerLaw", "PowerLawFamily", "ResponseTerms", "SumOfExponentials", "family", "half_response_time",
           "laplace_weights", "log_rate_lattice"]


@dataclass(frozen=True)
class SumOfExponentials:
    """:math:`q(\\tau) = \\sum_j w_j e^{-\\tau/\\tau_j}/\\tau_j` with :math:`w_j \\ge 0`, :math:`\\sum w_j = 1`.

    Weights that do not sum to 1 are divided by their sum (so that :math:`\\int_0^\\infty q = 1`);
    ``weights`` holds the normalised values."""

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
        """The kernel at lags ``tau``; 0 at negative lags (a response follows its cause)."""
        tau = np.asarray(tau, dtype=float)
        v = np.sum(self.weights / self.taus * np.exp(-np.maximum(tau, 0.0)[..., None] / self.taus), axis=-1)
        return np.where(tau < 0, 0.0, v)  # NaN stays NaN

    def Q(self, tau) -> np.ndarray:
        """:math:`\\int_0^\\tau q`; 0 at negative lags."""
        tau = np.asarray(tau, dtype=float)
        return np.sum(self.weights * -np.expm1(-np.maximum(tau, 0.0)[..., None] / self.taus), axis=-1)

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
        """The kernel at lags ``tau``; 0 at negative lags (a response follows its cause)."""
        tau = np.asarray(tau, float)
        v = (self.a - 1) / self.tau0 * (1 + np.maximum(tau, 0.0) / self.tau0) ** (-self.a)
        return np.where(tau < 0, 0.0, v)  # NaN stays NaN

    def Q(self, tau) -> np.ndarray:
        """:math:`\\int_0^\\tau q`; 0 at negative lags."""
        return 1 - (1 + np.maximum(np.asarray(tau, float), 0.0) / self.tau0) ** (1 - self.a)

    @property
    def lag(self) -> float:
        return self.tau0 * (2 ** (1 / (self.a - 1)) - 1)

    def embedding(self, t_max: float | None = None, n_terms: int = 12) -> tuple[SumOfExponentials, float]:
        """Non-negative sum of ``n_terms`` exponentials (time scales log-spaced from ``tau0/10`` to
        ``10 t_max``) fitted to :math:`Q` on ``[0, t_max]``; returns it and the largest error of its
        :math:`Q` there. Default ``t_max = 100 * lag``."""
        t_max = 100 * self.lag if t_max is None else float(t_max)
        if not (np.isfinite(t_max) and t_max > 0) or not is_whole(n_terms, 1):
            raise InvalidArgumentError(f"t_max={t_max!r}, n_terms={n_terms!r}; give a finite range t_max > 0 and a whole "
                                       f"number of exponentials >= 1")
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


# --------------------------------------------------------------------------- families (what a fit sees)
#: Time scale standing for "instantaneous" in a response term: far below one step or one area unit,
#: so that 1 - exp(-du / tau) is 1 to double precision for any du >= 1e-6.
INSTANT_TAU = 1e-9


@dataclass(frozen=True)
class ResponseTerms:
    r"""A step response as :math:`Q(\tau) \approx \sum_j w_j (1 - e^{-\tau/\tau_j})`.

    ``taus`` depend only on the family and the data range (never on the parameters), so the
    convolutions with the drops can be computed once per fit; ``weights`` and their derivatives
    ``dweights`` (shape ``(n_params, n_taus)``) carry the parameters. ``error``: a bound on
    :math:`|Q_{approx} - Q|` over ``[0, t_max]`` (0 where the form is exact)."""

    taus: np.ndarray
    weights: np.ndarray
    dweights: np.ndarray
    error: float


@dataclass(frozen=True)
class KernelFamily:
    """Base class: a parametrised kernel as a fit sees it."""

    #: short name used on the command line and in JSON
    name = ""
    #: True when the law multiplies the response by its own amplitude B; False when the weights
    #: themselves carry it (the monotone family)
    has_amplitude = True

    @property
    def names(self) -> tuple[str, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def bounds(self) -> tuple[list[float], list[float]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def starts(self) -> list[list[float]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def build(self, params):  # pragma: no cover - abstract
        """The kernel object (``q``, ``Q``, ``lag``) of these parameters."""
        raise NotImplementedError

    def response_terms(self, params, t_max: float) -> ResponseTerms:  # pragma: no cover - abstract
        raise NotImplementedError

    def time_scale(self, params) -> float:  # pragma: no cover - abstract
        """The family's characteristic time (tau, tau0 or the weighted geometric mean)."""
        raise NotImplementedError


@dataclass(frozen=True)
class InstantaneousFamily(KernelFamily):
    """No memory: the loss follows every drop at once (a baseline against which a delay is judged)."""

    name = "instant"

    @property
    def names(self):
        return ()

    def bounds(self):
        return [], []

    def starts(self):
        return [[]]

    def build(self, params):
        return Instantaneous()

    def response_terms(self, params, t_max):
        return ResponseTerms(np.array([INSTANT_TAU]), np.array([1.0]), np.zeros((0, 1)), 0.0)

    def time_scale(self, params):
        return 0.0


@dataclass(frozen=True)
class ExponentialFamily(KernelFamily):
    """:math:`q = e^{-\tau/\tau_c}/\tau_c` with ``log10_tau`` in [0, 5] (1 to 100,000 steps or area units)."""

    name = "exp"

    @property
    def names(self):
        return ("log10_tau",)

    def bounds(self):
        return [0.0], [5.0]

    def starts(self):
        return [[2.5], [3.5]]

    def build(self, params):
        return Exponential(10.0 ** float(params[0]))

    def response_terms(self, params, t_max):
        # exact, but its one time scale moves with the parameter: the fit filters it afresh
        return ResponseTerms(np.array([10.0 ** float(params[0])]), np.array([1.0]), np.zeros((1, 1)), 0.0)

    def time_scale(self, params):
        return float(10.0 ** params[0])


#: Sinc-quadrature step in log-rate (see PowerLawFamily): the trapezoid error of an integrand
#: analytic in the strip |Im v| < pi/2 is about exp(-pi^2 / h) = 2.7e-9 at h = 0.5.
POWER_QUAD_STEP = 0.5
#: How far below the slowest rate the data can resolve the grid starts (in e-folds): the mass of
#: slower rates is kept as a non-responding lump, whose response within the data is below
#: e^-10 = 4.5e-5 of it.
POWER_QUAD_MARGIN = 10.0


def log_rate_lattice(t_max: float, v_hi: float) -> np.ndarray:
    r"""The log rates :math:`v_j = jh` (``h`` = :data:`POWER_QUAD_STEP`) from
    :data:`POWER_QUAD_MARGIN` e-folds below the slowest rate data of length ``t_max`` resolve,
    :math:`-\ln t_{max}`, up to ``v_hi``: the lattice of the sinc quadrature below."""
    h = POWER_QUAD_STEP
    v_lo = -np.log(max(float(t_max), 1.0)) - POWER_QUAD_MARGIN
    return h * np.arange(np.floor(v_lo / h), np.ceil(v_hi / h) + 1)


def laplace_weights(z, beta: float) -> np.ndarray:
    r"""Trapezoid weights of :math:`(1 + x)^{-\beta} = \Gamma(\beta)^{-1}\int e^{\beta u - e^u(1+x)}\,du`
    at the nodes :math:`u = z`: :math:`w = h\,e^{\beta z - e^z}/\Gamma(\beta)`, so that
    :math:`(1 + x)^{-\beta} \approx \sum w\,e^{-e^z x}`. Their log-derivatives are
    :math:`\beta - e^z` in :math:`z` and :math:`z - \psi(\beta)` in :math:`\beta`."""
    z = np.asarray(z, dtype=float)
    return np.exp(np.log(POWER_QUAD_STEP) - special.gammaln(beta) + beta * z - np.exp(np.minimum(z, 700.0)))


@functools.lru_cache(maxsize=64)
def _power_lattice(t_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What :meth:`PowerLawFamily.response_terms` needs that depends on ``t_max`` alone, built once
    per ``t_max`` (a fit calls it at every evaluation): the log-rate lattice ``v`` (tau0 >= 1, so
    it covers every tau0 in bounds), its time scales, the 400 points where the embedding's error
    is measured and the unit step responses of the lattice's exponentials there. Read-only."""
    v = log_rate_lattice(t_max, np.log(40.0))
    taus = np.exp(-v)
    grid = np.concatenate([[0.0], np.geomspace(1e-3, t_max, 399)])
    steps = -np.expm1(-grid[:, None] / taus)
    for a in (v, taus, grid, steps):
        a.flags.writeable = False
    return v, taus, grid, steps


@dataclass(frozen=True)
class PowerLawFamily(KernelFamily):
    r""":math:`Q(\tau) = 1 - (1 + \tau/\tau_0)^{1-a}` with ``log10_tau0`` in [0, 5] and ``a`` in [1.01, 6].

    Response terms from the Laplace form :math:`(1+x)^{-\beta} = \Gamma(\beta)^{-1}\int
    e^{\beta u - e^u(1+x)}\,du` (:math:`\beta = a - 1`), by the trapezoid rule in the log rate
    :math:`v = u - \ln\tau_0` on the fixed grid :math:`v_j = jh`: rate :math:`e^{v_j}`, weight
    :math:`w_j = h\,e^{\beta(v_j + \ln\tau_0) - \tau_0 e^{v_j}}/\Gamma(\beta)`. The grid spans
    :math:`[-\ln t_{max} - 10, \ln 40 - \ln\tau_0]`; the mass of slower rates,
    :math:`P(\beta, e^{v_{min}}\tau_0)` (regularised incomplete gamma), does not respond within
    the data (under :math:`e^{-10}` of it) and is left out. The error bound reported is the
    largest :math:`|Q_{approx} - Q|` on 400 log-spaced points of :math:`[0, t_{max}]`.
    """

    name = "power"

    @property
    def names(self):
        return ("log10_tau0", "a")

    def bounds(self):
        return [0.0, 1.01], [5.0, 6.0]

    def starts(self):
        return [[2.0, 2.0], [3.0, 2.0]]

    def build(self, params):
        return PowerLaw(10.0 ** float(params[0]), float(params[1]))

    def response_terms(self, params, t_max):
        t0, beta = 10.0 ** float(params[0]), float(params[1]) - 1.0
        v, taus, grid, steps = _power_lattice(max(float(t_max), 1.0))
        z = v + np.log(t0)  # the lattice is fixed; only the weights move with the parameters
        w = laplace_weights(z, beta)
        # d w / d log10_tau0 = w (beta - e^z) ln 10;  d w / d a = w (z - digamma(beta))
        dw = np.stack([w * (beta - np.exp(z)) * np.log(10.0), w * (z - special.digamma(beta))])
        approx = steps @ w
        exact = 1.0 - np.power(1.0 + grid / t0, -beta)
        return ResponseTerms(taus, w, dw, float(np.max(np.abs(approx - exact))))

    def time_scale(self, params):
        return float(10.0 ** params[0])


@dataclass(frozen=True)
class MonotoneFamily(KernelFamily):
    """A non-negative combination of exponentials on a fixed log grid of time scales ``taus``:
    :math:`q` is completely monotone, hence monotone. Its weights carry the amplitude (their sum
    is B), so the law has no separate B."""

    taus: np.ndarray = None

    name = "nonparametric"
    has_amplitude = False

    def __post_init__(self) -> None:
        taus = np.asarray(self.taus if self.taus is not None else NONPARAMETRIC_TAUS, dtype=float)
        if taus.ndim != 1 or taus.size < 1 or np.any(~np.isfinite(taus)) or np.any(taus <= 0):
            raise InvalidArgumentError(f"taus={taus}; give positive finite time scales")
        if np.any(np.diff(taus) <= 0):
            raise InvalidArgumentError(f"taus={taus.tolist()}; give distinct time scales in increasing order (a "
                                       f"scale given twice has no weight of its own)")
        object.__setattr__(self, "taus", taus)

    @property
    def names(self):
        """``b_<tau>``, the time scale rounded to a whole number where that tells every scale of the
        grid apart, else to the fewest significant digits that do (a short curve's grid has
        several scales under 2: 1 and 1.45 are both ``b_1`` rounded, and a weight named twice was
        lost from the fit's parameters and its bands)."""
        names = tuple(f"b_{t:.0f}" for t in self.taus)
        digits = 2
        while len(set(names)) < len(names) and digits <= 17:
            names = tuple(f"b_{t:.{digits}g}" for t in self.taus)
            digits += 1
        return names

    def bounds(self):
        return [0.0] * self.taus.size, [20.0] * self.taus.size

    def starts(self):
        return [[0.4 / self.taus.size] * self.taus.size]

    def build(self, params):
        w = np.asarray(params, dtype=float)
        if w.sum() <= 0:
            return _Zero()
        return SumOfExponentials(self.taus, w)

    def response_terms(self, params, t_max):
        k = self.taus.size
        return ResponseTerms(self.taus, np.asarray(params, dtype=float), np.eye(k), 0.0)

    def time_scale(self, params):
        w = np.asarray(params, dtype=float)
        return float(np.exp(np.sum(w * np.log(self.taus)) / max(w.sum(), 1e-300)))


#: Time scales of the non-parametric kernel when none are given: log grid from 30 to 30,000 (steps
#: or area units, one area unit being one step at peak learning rate). A fit replaces it by a grid
#: that follows the fitted curves (:meth:`sde_scales.fitting.KernelLaw.for_curves`).
NONPARAMETRIC_TAUS = np.geomspace(30.0, 30000.0, 10)


@dataclass(frozen=True)
class _Zero:
    """The response of a monotone kernel whose weights are all zero: nothing ever responds."""

    def q(self, tau):
        return np.zeros_like(np.asarray(tau, dtype=float))

    def Q(self, tau):
        return np.zeros_like(np.asarray(tau, dtype=float))

    @property
    def lag(self) -> float:
        return float("inf")


_FAMILIES = {"exp": ExponentialFamily, "power": PowerLawFamily, "nonparametric": MonotoneFamily,
             "instant": InstantaneousFamily}


def family(kind, taus=None) -> KernelFamily:
    """A family from its name (``"exp"``, ``"power"``, ``"nonparametric"``, ``"instant"``) or passed
    through; ``taus`` is the grid of the non-parametric family."""
    if isinstance(kind, KernelFamily):
        return kind
    if kind not in _FAMILIES:
        raise InvalidArgumentError(f"kernel={kind!r}; use one of {', '.join(map(repr, _FAMILIES))}")
    return MonotoneFamily(taus) if kind == "nonparametric" else _FAMILIES[kind]()
