r"""Milstein: the class and its step functions (with gdg or derivative-free; scalar, diagonal
and commutative general noise).

The step functions follow the signature documented in :mod:`sde_scales.sde._loop`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from numba import njit

from sde_scales.errors import InvalidProblemError
from sde_scales.sde import probes
from sde_scales.sde.problem import NoiseKind, SDEProblem
from sde_scales.sde.solvers.base import Solver
from sde_scales.sde.solvers.euler_maruyama import em_matrix

__all__ = ["Milstein"]


@njit(inline="always")
def milstein_df_diagonal(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2):
    # Derivative-free Milstein (Kloeden & Platen 1992, eq. 11.1.5), componentwise.
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    for i in range(x.shape[0]):
        w1[i] = x[i] + f[i] * dt + g[i] * sqdt
    diffusion(t, w1, p, w2)
    c = 0.5 / sqdt
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * dw[o + i] + (w2[i] - g[i]) * (dw[o + i] * dw[o + i] - dt) * c


@njit(inline="always")
def milstein_df_scalar(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    for i in range(x.shape[0]):
        w1[i] = x[i] + f[i] * dt + g[i] * sqdt
    diffusion(t, w1, p, w2)
    w = dw[o]
    c = 0.5 * (w * w - dt) / sqdt
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * w + (w2[i] - g[i]) * c


@njit(inline="always")
def milstein_gdg_diagonal(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    gdg(t, x, p, w2)
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * dw[o + i] + 0.5 * w2[i] * (dw[o + i] * dw[o + i] - dt)


@njit(inline="always")
def milstein_gdg_scalar(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    gdg(t, x, p, w2)
    w = dw[o]
    c = 0.5 * (w * w - dt)
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * w + w2[i] * c


@njit(inline="always")
def milstein_df_general(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2):
    # Derivative-free Milstein for commutative general noise:
    #   x += f h + g dW + 1/2 sum_{j,k} D_jk (dW_j dW_k - delta_jk h),
    #   D_jk = (g_.k(x + sqrt(h) g_.j) - g_.k(x)) / sqrt(h) = L^j g_.k + O(sqrt(h)),
    # whose O(sqrt(h)) error multiplies a zero-mean factor, so strong order 1 is kept.
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    d = x.shape[0]
    m = g.shape[1]
    for i in range(d):
        acc = f[i] * dt
        for j in range(m):
            acc += g[i, j] * dw[o + j]
        w2[i] = acc
    c = 0.5 / sqdt
    for j in range(m):
        for i in range(d):
            w1[i] = x[i] + g[i, j] * sqdt
        diffusion(t, w1, p, g2)
        dwj = dw[o + j]
        for i in range(d):
            s = 0.0
            for k in range(m):
                ck = dwj * dw[o + k]
                if k == j:
                    ck -= dt
                s += (g2[i, k] - g[i, k]) * ck
            w2[i] += c * s
    for i in range(d):
        x[i] += w2[i]


@dataclass(frozen=True)
class Milstein(Solver):
    r"""Milstein for scalar, diagonal and commutative general noise.

    .. math::

        X_{k+1} = X_k + f\,h + g\,\Delta W_k
            + \tfrac12 \sum_{j,k} (L^j g_{\cdot k})\,(\Delta W_{k,j} \Delta W_{k,k} - \delta_{jk} h),
        \qquad L^j = \sum_l g_{lj}\,\partial_{x_l}.

    Scalar and diagonal noise: with ``problem.gdg`` given, :math:`(g\cdot\nabla)g` is that function;
    otherwise the derivative-free form replaces it by :math:`(g(\hat X) - g(X_k))/\sqrt h` at the
    support value :math:`\hat X = X_k + f h + g \sqrt h` (Kloeden & Platen 1992, eq. 11.1.5). Set
    ``derivative_free=True`` to force that form even when ``gdg`` exists. General noise: always
    derivative-free, :math:`L^j g_{\cdot k} \approx (g_{\cdot k}(X_k + \sqrt h\, g_{\cdot j}) -
    g_{\cdot k}(X_k))/\sqrt h` (m extra diffusion evaluations per step).

    Preconditions, probed before the solve (:mod:`sde_scales.sde.probes`, finite differences at
    x0 and along a short trial run) and refused with a clear error when violated: diagonal noise
    must have each :math:`g_i` depend on :math:`x_i` only; general noise must commute
    (:math:`L^j g_{\cdot k} = L^k g_{\cdot j}`). Non-commuting noise needs Levy areas, which this
    solver does not approximate: use ``EulerMaruyama()`` (strong order 1/2) there.

    Orders
        strong 1, weak 1.
    Noise
        scalar; diagonal (``g_i`` depending on ``x_i`` only); general when commutative; additive,
        where the correction vanishes and the scheme is Euler-Maruyama.
    Calculus
        Ito.
    Reference
        Kloeden & Platen (1992), sec. 10.3 and 11.1.
    """

    derivative_free: bool = False
    strong_order: ClassVar[float] = 1.0
    weak_order: ClassVar[float] = 1.0
    supported_noise: ClassVar[tuple[NoiseKind, ...]] = (NoiseKind.SCALAR, NoiseKind.DIAGONAL, NoiseKind.ADDITIVE,
                                                        NoiseKind.GENERAL)

    def uses_gdg(self, problem: SDEProblem) -> bool:
        return problem.gdg is not None and not self.derivative_free

    def check(self, problem: SDEProblem) -> None:
        super().check(problem)
        if problem.noise not in (NoiseKind.DIAGONAL, NoiseKind.GENERAL):
            return
        cache = problem.__dict__.setdefault("_milstein_probe", {})
        key = problem.noise
        if key not in cache:
            states = probes.probe_states(problem)
            if problem.noise is NoiseKind.DIAGONAL:
                cache[key] = probes.diagonal_violation(problem, states)
            else:
                cache[key] = probes.commutativity_violation(problem, states)
        why = cache[key]
        if why is None:
            return
        if problem.noise is NoiseKind.DIAGONAL:
            raise InvalidProblemError(
                f"Milstein on problem {problem.name!r}: {why}. Its componentwise correction would then be "
                f"wrong (strong order 1/2, not 1). Write the noise as noise='general' with m={problem.d} and a "
                f"({problem.d}, {problem.d}) diagonal matrix (Milstein handles it if the noise commutes), or use "
                f"EulerMaruyama()")
        raise InvalidProblemError(
            f"Milstein on problem {problem.name!r}: {why}. Non-commuting noise needs Levy areas, which this "
            f"solver does not approximate; use EulerMaruyama() (strong order 1/2)")

    def step_function(self, problem: SDEProblem) -> Any:
        self.check(problem)
        if problem.noise is NoiseKind.ADDITIVE:
            return em_matrix
        if problem.noise is NoiseKind.GENERAL:
            return milstein_df_general
        scalar = problem.noise is NoiseKind.SCALAR
        if self.uses_gdg(problem):
            return milstein_gdg_scalar if scalar else milstein_gdg_diagonal
        return milstein_df_scalar if scalar else milstein_df_diagonal
