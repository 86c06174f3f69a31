r"""Exact finite-n moments of the linear width-n model, expanded in 1/n.

The linear case of ``sde_scales.models.width`` (coupling ``LINEAR``):

.. math::

    d\theta_i = \eta(-a\theta_i + k M + b)\,dt + \sqrt\eta\,\sigma n^{-\beta} dW_i,\quad
    \theta_i(0) = c + s n^{-\beta}\xi_i,\quad M = \tfrac1n\textstyle\sum_i\theta_i .

Write :math:`\theta_i = M + \delta_i`. Then (variation of constants; the Lyapunov equation of each
mode is scalar because the drift matrix :math:`-a I + \tfrac{k}{n} \mathbf{1}\mathbf{1}^\top` has
the eigenvector :math:`\mathbf 1` with eigenvalue :math:`-(a-k)` and the orthogonal complement with
:math:`-a`):

* :math:`dM = \eta(-(a-k)M + b)dt + \sqrt\eta\,\sigma n^{-\beta-1/2} d\bar W`,
  :math:`\operatorname{Var}M(0) = s^2 n^{-2\beta-1}`;
* :math:`d\delta_i = -\eta a\,\delta_i dt + \sqrt\eta\,\sigma n^{-\beta} d(W_i - \bar W)`,
  :math:`\operatorname{Var}\delta_i(0) = s^2 n^{-2\beta}(1 - 1/n)`,
  :math:`\operatorname{Cov}(\delta_i, \delta_j) = -\operatorname{Var}\delta_i/(n-1)`,
  :math:`\operatorname{Cov}(M, \delta_i) = 0`.

For an OU mode :math:`dX = -\lambda X dt + \dots + g\,dW`:
:math:`\operatorname{Var}X(t) = v_0 e^{-2\lambda t} + g^2 (1 - e^{-2\lambda t})/(2\lambda)`.

The mean :math:`E\theta_i(t) = E M(t)` solves the mean-field ODE exactly for every n, so the bias of
the linear macro-variable (and of a single coordinate) is identically zero; the first non-zero bias
is that of a *quadratic* macro-variable :math:`Q_n = \frac1n\sum_i\theta_i^2`, whose mean exceeds the
limit by :math:`\operatorname{Var}\theta_i = \Theta(n^{-2\beta})`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from theory.asymptotics import leading_exponent_symbolic, n

__all__ = ["LinearWidthMoments", "SYMBOLS", "moments", "predicted_exponents"]

a, k, b, c, s, sigma, eta, t, beta = sp.symbols("a k b c s sigma eta t beta", positive=True)
SYMBOLS = {"a": a, "k": k, "b": b, "c": c, "s": s, "sigma": sigma, "eta": eta, "t": t, "beta": beta, "n": n}


def _ou_var(v0, lam, g2):
    return v0 * sp.exp(-2 * lam * t) + g2 * (1 - sp.exp(-2 * lam * t)) / (2 * lam)


@dataclass(frozen=True)
class LinearWidthMoments:
    """Exact moments at time t (sympy expressions in the symbols of :data:`SYMBOLS`)."""

    mean: sp.Expr          # E theta_i = E M
    var_macro: sp.Expr     # Var M
    var_delta: sp.Expr     # Var (theta_i - M)
    var_micro: sp.Expr     # Var theta_i
    cov_micro: sp.Expr     # Cov(theta_i, theta_j), i != j
    cov_micro_macro: sp.Expr  # Cov(theta_i, M)
    bias_quadratic: sp.Expr   # E Q_n - Q_oo, Q_n = mean theta_i^2
    var_quadratic: sp.Expr    # Var Q_n (Gaussian fourth moments)

    def numeric(self, **values) -> dict:
        """All moments as floats for given parameter values (keys of :data:`SYMBOLS`)."""
        subs = {SYMBOLS[k_]: v for k_, v in values.items()}
        return {name: float(getattr(self, name).subs(subs)) for name in self.__dataclass_fields__}


def moments(a_k_distinct: bool = True) -> LinearWidthMoments:
    """Build the exact moments. Requires :math:`a \\ne k` (``a > k`` for a stable mean)."""
    lam_M = eta * (a - k)
    lam_d = eta * a
    mean = b / (a - k) + (c - b / (a - k)) * sp.exp(-lam_M * t)
    var_M = _ou_var(s**2 * n ** (-2 * beta - 1), lam_M, eta * sigma**2 * n ** (-2 * beta - 1))
    D = _ou_var(s**2 * n ** (-2 * beta), lam_d, eta * sigma**2 * n ** (-2 * beta))
    var_d = D * (1 - 1 / n)
    var_i = var_M + var_d
    cov_ij = var_M - D / n  # var_d / (n - 1) = D (1 - 1/n) / (n - 1) = D / n
    # Q_n = (1/n) sum theta_i^2 with theta ~ N(m 1, Sigma), Sigma = (v - c') I + c' 1 1^T and
    # v - c' = D: E Q_n = m^2 + v; Var(sum theta_i^2) = 2 tr(Sigma^2) + 4 m^2 1^T Sigma 1
    cp = cov_ij
    tr_sigma2 = n * D**2 + 2 * D * cp * n + cp**2 * n**2
    one_sigma_one = n * var_i + n * (n - 1) * cp
    var_Q = (2 * tr_sigma2 + 4 * mean**2 * one_sigma_one) / n**2
    return LinearWidthMoments(mean, var_M, var_d, var_i, cov_ij, var_M, var_i, var_Q)


def predicted_exponents(m: LinearWidthMoments | None = None) -> dict:
    r"""Exponents in n (as functions of :math:`\beta`, sympy ``Max`` where terms compete) of the
    fluctuation (standard deviation) of the macro-variable M, of a single coordinate, of the
    quadratic macro-variable, and of the bias of the quadratic macro-variable. The biases of M and
    of a coordinate are exactly zero in the linear model (no exponent)."""
    m = m or moments()
    half = sp.Rational(1, 2)
    return {
        "macro_fluctuation": sp.simplify(half * leading_exponent_symbolic(m.var_macro)),
        "micro_fluctuation": sp.simplify(half * leading_exponent_symbolic(m.var_micro)),
        "quadratic_macro_fluctuation": sp.simplify(half * leading_exponent_symbolic(sp.expand(m.var_quadratic))),
        "quadratic_macro_bias": sp.simplify(leading_exponent_symbolic(m.bias_quadratic)),
        "macro_bias": None,
        "micro_bias": None,
    }


def expand_in_inverse_n(expr, order: int = 3):
    """Series of ``expr`` in :math:`1/n` about :math:`n = \\infty` up to ``O(n^-order)``, with the
    limit point written by sympy (``O(1/n**order, (n, oo))``)."""
    return sp.series(expr, n, sp.oo, order)
