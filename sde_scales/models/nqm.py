r"""A noisy quadratic model (NQM) with width, where the best learning rate moves with time.

``n`` coordinates in two halves with curvatures :math:`h_1 < h_2`, trained by SGD with step
:math:`\eta` on :math:`L(\theta) = \frac1n \sum_i \tfrac12 h_i \theta_i^2`:

.. math::

    \theta_i(t+1) = \theta_i(t) - \eta\,(h_i \theta_i(t) + \xi_i(t)),\qquad
    \operatorname{Var} \xi_i = \sigma^2 h_i\, n^{-2\beta},

so the gradient noise of every coordinate shrinks like :math:`n^{-2\beta}` (``beta = 1/2``: the
O(1/n) macro noise of muP; ``beta = 0``: noise that does not shrink with width). Coordinates start
at :math:`\theta_i(0) = 1/h_i`. The expected loss has the closed form, per half ``g``,

.. math::

    E L(t) = \sum_g \tfrac14 h_g \Big[ h_g^{-2} r_g^{2t} +
        \eta^2 \sigma^2 h_g n^{-2\beta}\,\frac{1 - r_g^{2t}}{1 - r_g^2} \Big],
    \qquad r_g = 1 - \eta h_g,

and :math:`\eta^*(t) = \arg\min_\eta E L(t)` over the stable range :math:`0 < \eta < 2/h_2`.

Why the optimum moves, and why the movement shrinks with width: the noise-free part equals
:math:`\tfrac14 \sum_g r_g^{2t}/h_g`, whose minimiser solves :math:`|r_1| = |r_2|`, i.e.
:math:`\eta = 2/(h_1 + h_2)` at *every* t (the starting point :math:`1/h_g` makes the two halves
weigh alike). The noise term grows with :math:`\eta` and with t (variance accumulates) and pulls
:math:`\eta^*(t)` down by an amount proportional to :math:`n^{-2\beta}` that differs between early
and late t. Hence :math:`|\log\eta^*(t_0) - \log\eta^*(T)| = O(n^{-2\beta})`: the NQM is the test
bed of the claim that early learning-rate optima approximate final ones, with a width-independent
counter-example at ``beta = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from sde_scales.errors import InvalidArgumentError

__all__ = ["NoisyQuadraticModel"]


@dataclass(frozen=True)
class NoisyQuadraticModel:
    """See the module docstring.

    Parameters
    ----------
    n : int
        Width.
    h : tuple of float
        Curvatures :math:`(h_1, h_2)`, :math:`0 < h_1 < h_2`.
    sigma : float
        Gradient-noise level.
    beta : float
        Noise variance scales as :math:`n^{-2\\beta}`.
    """

    n: int
    h: tuple[float, float] = (1.0, 20.0)
    sigma: float = 0.1
    beta: float = 0.5

    def __post_init__(self) -> None:
        if self.n < 1:
            raise InvalidArgumentError(f"n={self.n}; the width must be positive")
        h1, h2 = (float(v) for v in self.h)
        if not (0 < h1 < h2) or not np.isfinite(h2):
            raise InvalidArgumentError(f"h={self.h}; need 0 < h1 < h2")
        if not (self.sigma >= 0 and np.isfinite(self.sigma)):
            raise InvalidArgumentError(f"sigma={self.sigma}; need a finite sigma >= 0")

    @property
    def eta_max(self) -> float:
        """Edge of stability :math:`2/h_2`."""
        return 2.0 / self.h[1]

    @property
    def eta_deterministic(self) -> float:
        """The noise-free optimum :math:`2/(h_1 + h_2)`, the same at every t."""
        return 2.0 / (self.h[0] + self.h[1])

    def expected_loss(self, eta, t: int) -> np.ndarray:
        """:math:`E L(t)` for one or several learning rates (closed form)."""
        eta = np.asarray(eta, dtype=float)
        if np.any(~np.isfinite(eta)) or np.any(eta < 0):
            raise InvalidArgumentError(f"eta={eta}; learning rates must be finite and >= 0")
        if t < 0 or int(t) != t:
            raise InvalidArgumentError(f"t={t}; give a whole number of steps >= 0")
        noise = self.sigma**2 * float(self.n) ** (-2 * self.beta)
        total = np.zeros_like(eta)
        for hg in self.h:
            r2 = (1.0 - eta * hg) ** 2
            r2t = r2**t
            # (1 - r^{2t}) / (1 - r^2) = sum_{s<t} r^{2s}; its limit t at r^2 = 1
            with np.errstate(divide="ignore", invalid="ignore"):
                geo = np.where(np.abs(1 - r2) > 1e-12, (1 - r2t) / (1 - r2), float(t))
            total += 0.25 * hg * (r2t / hg**2 + eta**2 * noise * hg * geo)
        return total

    def optimal_lr(self, t: int, grid: int = 400) -> float:
        """:math:`\\eta^*(t)`: a log-spaced grid over the stable range, then Brent's method on
        :math:`\\log\\eta` inside the bracket around the best grid point (relative accuracy 1e-12)."""
        lo, hi = np.log(self.eta_max * 1e-3), np.log(self.eta_max * (1 - 1e-9))
        xs = np.linspace(lo, hi, grid)
        ys = self.expected_loss(np.exp(xs), t)
        k = int(np.argmin(ys))
        a, b = xs[max(k - 1, 0)], xs[min(k + 1, grid - 1)]
        res = optimize.minimize_scalar(lambda z: float(self.expected_loss(np.exp(z), t)), bounds=(a, b),
                                       method="bounded", options={"xatol": 1e-13})
        return float(np.exp(res.x))

    def early_late_gap(self, t0: int, T: int) -> float:
        """:math:`|\\log\\eta^*(t_0) - \\log\\eta^*(T)|`."""
        return abs(np.log(self.optimal_lr(t0)) - np.log(self.optimal_lr(T)))
