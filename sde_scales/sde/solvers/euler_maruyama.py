r"""Euler-Maruyama: the class and its step functions (one per noise structure).

The step functions follow the signature documented in :mod:`sde_scales.sde._loop`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from numba import njit

from sde_scales.sde.problem import NoiseKind, SDEProblem
from sde_scales.sde.solvers.base import Solver

__all__ = ["EulerMaruyama", "em_matrix", "em_vector_diagonal", "em_vector_scalar"]


@njit(inline="always")
def em_vector_diagonal(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * dw[o + i]


@njit(inline="always")
def em_vector_scalar(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    w = dw[o]
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * w


@njit(inline="always")
def em_matrix(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    for i in range(x.shape[0]):
        acc = f[i] * dt
        for j in range(g.shape[1]):
            acc += g[i, j] * dw[o + j]
        x[i] += acc


@dataclass(frozen=True)
class EulerMaruyama(Solver):
    r"""Euler-Maruyama: :math:`X_{k+1} = X_k + f(t_k, X_k)\,h + g(t_k, X_k)\,\Delta W_k`.

    Orders
        strong 1/2 (strong 1 for additive noise), weak 1.
    Noise
        scalar, diagonal, additive, general.
    Calculus
        Ito.
    Reference
        Kloeden & Platen (1992), *Numerical Solution of SDEs*, sec. 10.2 and 14.1.
    """

    strong_order: ClassVar[float] = 0.5
    weak_order: ClassVar[float] = 1.0
    supported_noise: ClassVar[tuple[NoiseKind, ...]] = tuple(NoiseKind)

    def strong_order_for(self, noise: NoiseKind | str) -> float:
        return 1.0 if NoiseKind.coerce(noise) is NoiseKind.ADDITIVE else self.strong_order

    def step_function(self, problem: SDEProblem) -> Any:
        self.check(problem)
        if problem.noise.matrix_diffusion:
            return em_matrix
        if problem.noise is NoiseKind.SCALAR:
            return em_vector_scalar
        return em_vector_diagonal
