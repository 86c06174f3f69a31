r"""SDEs with known solutions, for convergence studies, tests and benchmarks.

Each builder returns an :class:`ExactProblem`: the :class:`SDEProblem` plus

* ``exact(x0, W_T, T)``: the exact solution at ``T`` driven by the Brownian value ``W_T``
  (shape ``(n_paths, m)``), where the solution depends on the path only through ``W_T``;
  ``None`` when it does not (Ornstein-Uhlenbeck), in which case studies use a fine-grid reference;
* ``mean(T)`` and ``second_moment(T)``: closed-form :math:`E[X_T]` and :math:`E[X_T X_T^\top]`
  (diagonal entries), for weak errors and moment tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np
from scipy.linalg import expm

from sde_scales.sde.problem import SDEProblem

__all__ = [
    "ExactProblem",
    "geometric_brownian_motion",
    "ornstein_uhlenbeck",
    "diagonal_gbm_2d",
    "commuting_linear_general",
]


@dataclass(frozen=True)
class ExactProblem:
    problem: SDEProblem
    exact: Callable[[np.ndarray, np.ndarray, float], np.ndarray] | None
    mean: Callable[[float], np.ndarray]
    second_moment: Callable[[float], np.ndarray]


# ----------------------------------------------------------------------------- GBM
@numba.njit
def _gbm_drift(t, x, p, out):
    for i in range(x.shape[0]):
        out[i] = p[0] * x[i]


@numba.njit
def _gbm_diffusion(t, x, p, out):
    for i in range(x.shape[0]):
        out[i] = p[1] * x[i]


@numba.njit
def _gbm_gdg(t, x, p, out):
    for i in range(x.shape[0]):
        out[i] = p[1] * p[1] * x[i]


def geometric_brownian_motion(mu: float = 0.5, sigma: float = 1.0, x0: float = 1.0, T: float = 1.0,
                              with_gdg: bool = False) -> ExactProblem:
    r""":math:`dX = \mu X dt + \sigma X dW` (scalar noise);
    :math:`X_T = x_0 \exp((\mu - \sigma^2/2) T + \sigma W_T)`, :math:`E X_T = x_0 e^{\mu T}`,
    :math:`E X_T^2 = x_0^2 e^{(2\mu + \sigma^2) T}`.

    The defaults put the noise first (:math:`\sigma^2 > \mu`), so that Euler-Maruyama's strong
    error is led by its :math:`h^{1/2}` term over the usual range of dt; with a strong drift
    (say :math:`\mu = 1.5, \sigma = 0.5`) the :math:`O(h)` drift term dominates down to
    :math:`h \approx 2^{-8}` and the measured slope is pre-asymptotic (about 0.75)."""
    prob = SDEProblem(_gbm_drift, _gbm_diffusion, x0=[x0], tspan=(0.0, T), noise="scalar",
                      params=[mu, sigma], gdg=_gbm_gdg if with_gdg else None, name="gbm")
    return ExactProblem(
        prob,
        exact=lambda x0_, W, T_: x0_ * np.exp((mu - 0.5 * sigma**2) * T_ + sigma * W),
        mean=lambda T_: np.array([x0 * np.exp(mu * T_)]),
        second_moment=lambda T_: np.array([x0**2 * np.exp((2 * mu + sigma**2) * T_)]),
    )


# ----------------------------------------------------------------------------- OU
@numba.njit
def _ou_drift(t, x, p, out):
    for i in range(x.shape[0]):
        out[i] = p[0] * (p[1] - x[i])


@numba.njit
def _ou_diffusion_additive(t, x, p, out):
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = p[2] if i == j else 0.0


def ornstein_uhlenbeck(theta: float = 2.0, mu: float = 0.5, sigma: float = 0.8, x0: float = 1.5,
                       T: float = 1.0) -> ExactProblem:
    r""":math:`dX = \theta(\mu - X) dt + \sigma dW` (additive noise).
    :math:`E X_T = \mu + (x_0 - \mu) e^{-\theta T}`,
    :math:`\operatorname{Var} X_T = \frac{\sigma^2}{2\theta}(1 - e^{-2\theta T})`.
    The strong solution needs the whole path, so ``exact`` is None."""
    prob = SDEProblem(_ou_drift, _ou_diffusion_additive, x0=[x0], tspan=(0.0, T), noise="additive",
                      m=1, params=[theta, mu, sigma], name="ou")

    def mean(T_):
        return np.array([mu + (x0 - mu) * np.exp(-theta * T_)])

    def var(T_):
        return sigma**2 / (2 * theta) * (1 - np.exp(-2 * theta * T_))

    return ExactProblem(prob, exact=None, mean=mean, second_moment=lambda T_: mean(T_) ** 2 + var(T_))


# ----------------------------------------------------------------------------- 2-d diagonal
@numba.njit
def _diag_drift(t, x, p, out):
    out[0] = p[0] * x[0]
    out[1] = p[1] * x[1]


@numba.njit
def _diag_diffusion(t, x, p, out):
    out[0] = p[2] * x[0]
    out[1] = p[3] * x[1]


@numba.njit
def _diag_gdg(t, x, p, out):
    out[0] = p[2] * p[2] * x[0]
    out[1] = p[3] * p[3] * x[1]


def diagonal_gbm_2d(mu=(1.0, -0.5), sigma=(0.6, 0.9), x0=(1.0, 2.0), T: float = 1.0,
                    with_gdg: bool = False) -> ExactProblem:
    """Two independent geometric Brownian motions, diagonal noise (m = 2)."""
    mu_, s_, x0_ = (np.asarray(v, float) for v in (mu, sigma, x0))
    prob = SDEProblem(_diag_drift, _diag_diffusion, x0=x0_, tspan=(0.0, T), noise="diagonal",
                      params=[*mu_, *s_], gdg=_diag_gdg if with_gdg else None, name="diagonal-gbm-2d")
    return ExactProblem(
        prob,
        exact=lambda x0v, W, T_: x0v * np.exp((mu_ - 0.5 * s_**2) * T_ + s_ * W),
        mean=lambda T_: x0_ * np.exp(mu_ * T_),
        second_moment=lambda T_: x0_**2 * np.exp((2 * mu_ + s_**2) * T_),
    )


# ----------------------------------------------------------------------------- general noise
@numba.njit
def _lin_drift(t, x, p, out):
    # A = [[p0, p1], [p1, p0]]
    out[0] = p[0] * x[0] + p[1] * x[1]
    out[1] = p[1] * x[0] + p[0] * x[1]


@numba.njit
def _lin_diffusion(t, x, p, out):
    # column j = B_j x with B_1 = [[p2, p3], [p3, p2]], B_2 = [[p4, p5], [p5, p4]]
    out[0, 0] = p[2] * x[0] + p[3] * x[1]
    out[1, 0] = p[3] * x[0] + p[2] * x[1]
    out[0, 1] = p[4] * x[0] + p[5] * x[1]
    out[1, 1] = p[5] * x[0] + p[4] * x[1]


def commuting_linear_general(a=(-1.0, -0.8), b1=(0.8, 0.5), b2=(-0.6, 0.7), x0=(1.0, 0.5),
                             T: float = 1.0) -> ExactProblem:
    r"""General (non-diagonal) noise: :math:`dX = A X dt + B_1 X dW_1 + B_2 X dW_2` in
    :math:`\mathbb{R}^2` with :math:`A, B_1, B_2` symmetric circulant, hence commuting, so
    :math:`X_T = \exp((A - \tfrac12 (B_1^2 + B_2^2)) T + B_1 W_1 + B_2 W_2)\,x_0` and
    :math:`E X_T = e^{A T} x_0`. Every entry of ``g`` depends on both coordinates. The default
    coefficients are large enough that Euler-Maruyama's weak bias in :math:`E\lVert X_T\rVert^2`
    stands well above the Monte-Carlo error of a few thousand coupled paths."""
    J = np.array([[0.0, 1.0], [1.0, 0.0]])
    I = np.eye(2)
    A = a[0] * I + a[1] * J
    B1 = b1[0] * I + b1[1] * J
    B2 = b2[0] * I + b2[1] * J
    x0_ = np.asarray(x0, float)
    prob = SDEProblem(_lin_drift, _lin_diffusion, x0=x0_, tspan=(0.0, T), noise="general", m=2,
                      params=[a[0], a[1], b1[0], b1[1], b2[0], b2[1]], name="commuting-linear-general")
    C = A - 0.5 * (B1 @ B1 + B2 @ B2)

    def exact(x0v, W, T_):
        # The matrices are a*I + b*J with eigenvectors (1, 1)/sqrt2 and (1, -1)/sqrt2:
        # exp(c I + d J) acts as exp(c + d) on u = x1 + x2 and exp(c - d) on v = x1 - x2.
        c = C[0, 0] * T_ + B1[0, 0] * W[:, 0] + B2[0, 0] * W[:, 1]
        d = C[0, 1] * T_ + B1[0, 1] * W[:, 0] + B2[0, 1] * W[:, 1]
        x0m = np.broadcast_to(x0v, (W.shape[0], 2))
        u = (x0m[:, 0] + x0m[:, 1]) * np.exp(c + d)
        v = (x0m[:, 0] - x0m[:, 1]) * np.exp(c - d)
        return np.stack([(u + v) / 2, (u - v) / 2], axis=1)

    def second(T_):
        # E[X X^T] solves dP/dt = A P + P A^T + sum_j B_j P B_j^T; vectorised with Kronecker products.
        L = np.kron(A, I) + np.kron(I, A) + np.kron(B1, B1) + np.kron(B2, B2)
        P = (expm(L * T_) @ np.outer(x0_, x0_).reshape(-1)).reshape(2, 2)
        return np.diag(P).copy()

    return ExactProblem(prob, exact=exact, mean=lambda T_: expm(A * T_) @ x0_, second_moment=second)
