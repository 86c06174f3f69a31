r"""The width-n macro/micro system.

.. math::

    d\theta_i = \eta\,F(\theta_i, M_n)\,dt + \sqrt{\eta}\,\sigma\,n^{-\beta}\,dW_i,\qquad
    \theta_i(0) = c + s\,n^{-\beta}\,\xi_i,\qquad
    M_n = \frac1n \sum_{i=1}^n \varphi(\theta_i),

for :math:`i = 1..n`, with independent Brownian motions :math:`W_i` and standard normal
:math:`\xi_i`. ``beta = 1/2`` is the muP coordinate scale (hidden weights start at
:math:`N(0, 1/n)`). One *path* of the engine is one replica of the whole width-n system
(state dimension ``n``, diagonal noise), so an ensemble of ``R`` paths gives ``R`` independent
replicas at width ``n``.

Macro-variables are averages over coordinates (``M_n``); micro-variables are single coordinates
(:math:`\theta_1`). As :math:`n \to \infty` every coordinate follows the mean-field ODE
:math:`\dot{\bar\theta} = \eta F(\bar\theta, \varphi(\bar\theta))`, which
:meth:`WidthModel.mean_field_limit` integrates with the *same* scheme and step (so that a bias
against it measures the finite-width effect alone, not the time-discretisation error).

Built-in couplings (:class:`Coupling`):

``LINEAR``
    :math:`F(\theta, M) = -a\theta + kM + b`, :math:`\varphi(\theta) = \theta`; Gaussian, with exact
    finite-n moments (``theory.meanfield``).
``TANH_TEACHER``
    :math:`F(\theta, M) = (y - M)(1 - \tanh^2\theta)`, :math:`\varphi = \tanh`: gradient flow of the
    mean-field two-layer network :math:`f = \frac1n\sum_i \tanh(\theta_i)` fitting the teacher
    value ``y`` under the loss :math:`\frac12 (y - f)^2` (per-coordinate gradient times ``n``, the
    muP learning-rate scale).

Your own coupling: two jitted functions ``F(theta, M, q) -> float`` and ``phi(theta, q) -> float``,
with ``q`` the model's parameter array.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from sde_scales import seeds
from sde_scales.errors import InvalidArgumentError
from sde_scales.sde import EulerMaruyama, SDEProblem, Solver, solve
from sde_scales.validation import check_memory, is_whole

__all__ = ["Coupling", "WidthModel", "WidthSample", "simulate_widths"]


@numba.njit
def _phi_identity(theta, q):
    return theta


@numba.njit
def _F_linear(theta, M, q):
    return -q[0] * theta + q[1] * M + q[2]


@numba.njit
def _phi_tanh(theta, q):
    return np.tanh(theta)


@numba.njit
def _F_tanh_teacher(theta, M, q):
    th = np.tanh(theta)
    return (q[0] - M) * (1.0 - th * th)


class Coupling(enum.Enum):
    """Built-in couplings; ``value`` is ``(F, phi, parameter names)``."""

    LINEAR = (_F_linear, _phi_identity, ("a", "k", "b"))
    TANH_TEACHER = (_F_tanh_teacher, _phi_tanh, ("y",))


_DRIFTS: dict = {}


def _drift_for(F: Any, phi: Any):
    """A jitted drift ``out_i = eta * F(x_i, mean phi(x), q)`` for this (F, phi); p = [eta, g, *q]."""
    key = (F, phi)
    if key not in _DRIFTS:

        @numba.njit
        def drift(t, x, p, out):
            q = p[2:]
            n = x.shape[0]
            acc = 0.0
            for i in range(n):
                acc += phi(x[i], q)
            M = acc / n
            eta = p[0]
            for i in range(n):
                out[i] = eta * F(x[i], M, q)

        _DRIFTS[key] = drift
    return _DRIFTS[key]


@numba.njit
def _width_diffusion(t, x, p, out):
    g = np.sqrt(p[0]) * p[1]
    for i in range(out.shape[0]):
        out[i] = g


@dataclass(frozen=True)
class WidthModel:
    """The width-n system at one width; see the module docstring for the equations.

    Parameters
    ----------
    n : int
        Width (number of coordinates), at least 1.
    coupling : Coupling, optional
        A built-in coupling; or give ``F`` and ``phi`` instead.
    q : array_like
        Parameters of the coupling (e.g. ``(a, k, b)`` for LINEAR, ``(y,)`` for TANH_TEACHER).
    beta : float
        Scale exponent of the noise and of the initial spread (1/2 for muP coordinates).
    sigma, c, s, eta, T : float
        Noise level, initial centre, initial spread, learning rate, time horizon.
    F, phi : jitted callables, optional
        Your own coupling ``F(theta, M, q)`` and feature map ``phi(theta, q)``.
    """

    n: int
    coupling: Coupling | None = Coupling.TANH_TEACHER
    q: np.ndarray = field(default_factory=lambda: np.array([0.8]))
    beta: float = 0.5
    sigma: float = 1.0
    c: float = 0.2
    s: float = 1.0
    eta: float = 1.0
    T: float = 1.0
    F: Any = None
    phi: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise InvalidArgumentError(f"n={self.n!r}; the width must be a positive integer")
        for name in ("beta", "sigma", "c", "s", "eta", "T"):
            v = getattr(self, name)
            if not np.isfinite(v):
                raise InvalidArgumentError(f"{name}={v!r} is not finite; give a finite number")
        if self.eta < 0 or np.isnan(self.eta):
            raise InvalidArgumentError(f"eta={self.eta!r}; the learning rate must be >= 0")
        if self.sigma < 0 or self.s < 0 or self.T <= 0:
            raise InvalidArgumentError(f"sigma={self.sigma}, s={self.s}, T={self.T}; need sigma >= 0, s >= 0, T > 0")
        if (self.F is None) != (self.phi is None):
            raise InvalidArgumentError("give both F and phi for your own coupling, or neither")
        if self.F is None and self.coupling is None:
            raise InvalidArgumentError("no coupling: pass coupling=Coupling.LINEAR/TANH_TEACHER or F and phi")
        object.__setattr__(self, "q", np.asarray(self.q, dtype=np.float64).reshape(-1))
        if self.F is None:
            names = self.coupling.value[2]
            if self.q.size != len(names):
                raise InvalidArgumentError(
                    f"q={self.q.tolist()} for {self.coupling.name}; it takes {len(names)} values {names}"
                )
        else:
            for nm in ("F", "phi"):
                fn = getattr(self, nm)
                if not isinstance(fn, numba.core.registry.CPUDispatcher):
                    object.__setattr__(self, nm, numba.njit(fn))

    @property
    def functions(self) -> tuple[Any, Any]:
        if self.F is not None:
            return self.F, self.phi
        F, phi, _ = self.coupling.value
        return F, phi

    @property
    def scale(self) -> float:
        """:math:`n^{-\\beta}`."""
        return float(self.n) ** (-self.beta)

    def initial_state(self, n_replicas: int, seed: int) -> np.ndarray:
        """``(n_replicas, n)`` initial coordinates :math:`c + s n^{-\\beta} \\xi`, from their own stream."""
        if not is_whole(n_replicas, 1):
            raise InvalidArgumentError(f"n_replicas={n_replicas!r}; give a whole number of replicas >= 1")
        check_memory(2.0 * 8 * n_replicas * self.n, f"the initial and final states ({n_replicas} replicas x width "
                     f"{self.n}, two arrays)", "simulate fewer replicas per call")
        ss = seeds.child(seed, "width.initial_spread", int(self.n))
        xi = np.random.Generator(np.random.SFC64(ss)).standard_normal((n_replicas, self.n))
        return self.c + self.s * self.scale * xi

    def problem(self, x0: np.ndarray | None = None) -> SDEProblem:
        F, phi = self.functions
        x0 = np.full(self.n, self.c) if x0 is None else x0
        params = np.concatenate([[self.eta, self.sigma * self.scale], self.q])
        return SDEProblem(_drift_for(F, phi), _width_diffusion, x0=x0, tspan=(0.0, self.T),
                          noise="diagonal", params=params, name=f"width-{self.n}")

    def macro(self, x: np.ndarray) -> np.ndarray:
        """:math:`M_n` for states of shape ``(..., n)``."""
        if self.F is None:
            feat = np.tanh(x) if self.coupling is Coupling.TANH_TEACHER else x
        else:
            phi = self.phi.py_func
            feat = np.vectorize(lambda v: phi(v, self.q))(x)
        return np.mean(feat, axis=-1)

    def simulate(self, n_replicas: int, dt: float, seed: int, solver: Solver | None = None) -> np.ndarray:
        """Final states ``(n_replicas, n)`` of ``n_replicas`` independent replicas."""
        x0 = self.initial_state(n_replicas, seed)
        noise_seed = seeds.child(seed, "width.noise", int(self.n))
        return solve(self.problem(x0), solver or EulerMaruyama(), dt, noise=noise_seed).x[-1]

    def mean_field_limit(self, dt: float, solver: Solver | None = None) -> float:
        r"""The :math:`n \to \infty` coordinate :math:`\bar\theta(T)` of the same scheme at the same dt.

        With no noise and no initial spread all coordinates stay equal, so the system is the
        one-dimensional map of the mean-field ODE; it is run through ``solve`` with zero
        increments so the arithmetic is that of the finite-width runs.
        """
        lim = WidthModel(n=1, coupling=self.coupling, q=self.q, beta=self.beta, sigma=0.0, c=self.c,
                         s=0.0, eta=self.eta, T=self.T, F=self.F, phi=self.phi)
        prob = lim.problem()
        from sde_scales.sde.solve import n_steps_for

        dW = np.zeros((n_steps_for(prob.tspan, dt), 1, 1))
        return float(solve(prob, solver or EulerMaruyama(), dt, noise=dW).x[-1, 0, 0])


@dataclass(frozen=True)
class WidthSample:
    """Replicas of the width-n system at several widths.

    Attributes
    ----------
    widths : ndarray
    macro : list of ndarray
        Per width, :math:`M_n(T)` of each replica.
    micro : list of ndarray
        Per width, :math:`\\theta_1(T)` of each replica.
    coord_mean : list of ndarray
        Per width, :math:`\\frac1n\\sum_i \\theta_i(T)` of each replica: by exchangeability it has
        the same expectation as :math:`\\theta_1(T)` with far less noise (used for the micro bias).
    macro_limit, micro_limit : float
        :math:`\\varphi(\\bar\\theta(T))` and :math:`\\bar\\theta(T)` of the mean-field limit.
    """

    widths: np.ndarray
    macro: list
    micro: list
    coord_mean: list
    macro_limit: float
    micro_limit: float


def simulate_widths(base: WidthModel, widths, n_replicas: int, dt: float, seed: int,
                    progress=None) -> WidthSample:
    """Run ``n_replicas`` replicas of ``base`` at each width (same parameters otherwise)."""
    from dataclasses import replace

    given = np.asarray(widths, dtype=float)
    if given.ndim != 1 or not np.all(np.isfinite(given)) or np.any(given != np.round(given)):
        raise InvalidArgumentError(f"widths={np.asarray(widths).tolist()}; widths are whole numbers of "
                                   f"coordinates (64.5 was taken as 64)")
    widths = given.astype(int)
    if widths.ndim != 1 or widths.size < 2 or np.any(np.diff(widths) <= 0) or widths[0] < 1:
        raise InvalidArgumentError(f"widths={widths.tolist()}; give at least two increasing positive widths")
    if n_replicas < 3:
        raise InvalidArgumentError(f"n_replicas={n_replicas}; need at least 3 replicas for a spread")
    macro, micro, cmean = [], [], []
    for n in widths:
        model = replace(base, n=int(n))
        x = model.simulate(n_replicas, dt, seed)
        macro.append(model.macro(x))
        micro.append(x[:, 0].copy())
        cmean.append(x.mean(axis=1))
        if progress is not None:
            progress.update(1)
    theta_bar = base.mean_field_limit(dt)
    macro_limit = float(replace(base, n=1).macro(np.array([[theta_bar]]))[0])
    return WidthSample(widths, macro, micro, cmean, macro_limit, theta_bar)
