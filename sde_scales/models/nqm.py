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
from sde_scales.validation import is_integral, is_whole

__all__ = ["NoisyQuadraticModel", "SpectralNQM"]


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
        if not is_integral(self.n, 1):
            raise InvalidArgumentError(f"n={self.n!r}; the width must be a whole number >= 1")
        if not np.isfinite(self.beta):
            raise InvalidArgumentError(f"beta={self.beta!r}; the noise exponent must be finite")
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
        if not is_whole(grid, 3):
            raise InvalidArgumentError(f"grid={grid!r}; bracketing the optimum needs a whole number of points >= 3")
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


@dataclass(frozen=True, eq=False)
class SpectralNQM:
    r"""Expected loss of SGD on a many-mode noisy quadratic, under any learning-rate schedule.

    Modes with curvatures :math:`h_k`, each standing for :math:`w_k` coordinates, start at second
    moments :math:`m_k(0)` and follow, for the rate :math:`\eta_t` of step :math:`t`,

    .. math::

        m_k(t+1) = (1 - \eta_t h_k)^2\, m_k(t) + \eta_t^2 \sigma^2 h_k,\qquad
        E L(t) = L_\infty + \tfrac12 \sum_k w_k h_k m_k(t),

    the exact second-moment recursion of SGD with additive gradient noise of variance
    :math:`\sigma^2 h_k` (the two-mode :class:`NoisyQuadraticModel` at one width is the case
    :math:`w = (1/2, 1/2)`, :math:`m_k(0) = h_k^{-2}`). After a drop of the rate, mode k relaxes to
    its new level by :math:`(1 - \eta h_k)^2` per step: the response is a sum of exponentials in the
    learning-rate area with a spread of time scales, none of the fitted laws' forms, which makes it a
    family of loss curves on which no law is at home (``experiments/fit_nqm_family.py``).

    Parameters
    ----------
    h, weights, m0 : array_like
        Curvatures (> 0), coordinates per mode (>= 0) and initial second moments (>= 0), one each
        per mode.
    sigma : float
        Gradient-noise level (>= 0).
    floor : float
        :math:`L_\infty`, the loss no step removes.
    """

    h: np.ndarray
    weights: np.ndarray
    m0: np.ndarray
    sigma: float
    floor: float = 0.0

    def __post_init__(self) -> None:
        arrs = {k: np.asarray(getattr(self, k), dtype=float) for k in ("h", "weights", "m0")}
        if len({a.shape for a in arrs.values()}) != 1 or arrs["h"].ndim != 1 or arrs["h"].size == 0:
            raise InvalidArgumentError(f"h, weights, m0 have shapes {[a.shape for a in arrs.values()]}; give one value "
                                       f"per mode in each (1-d, equal lengths)")
        if not np.all(np.isfinite(arrs["h"])) or np.any(arrs["h"] <= 0):
            raise InvalidArgumentError(f"curvatures h from {arrs['h'].min()!r}; every mode needs a finite h > 0")
        for k in ("weights", "m0"):
            if not np.all(np.isfinite(arrs[k])) or np.any(arrs[k] < 0):
                raise InvalidArgumentError(f"{k} from {arrs[k].min()!r}; give finite values >= 0")
        if not (np.isfinite(self.sigma) and self.sigma >= 0) or not np.isfinite(self.floor):
            raise InvalidArgumentError(f"sigma={self.sigma!r}, floor={self.floor!r}; need a finite sigma >= 0 and a "
                                       f"finite floor")
        for k, a in arrs.items():
            object.__setattr__(self, k, a)

    @classmethod
    def power_law(cls, alpha: float = 0.3, a: float = 1.5, amplitude: float = 1.0, sigma: float = 0.7,
                  floor: float = 2.0, modes: float = 1e6, bins: int = 400) -> "SpectralNQM":
        r"""A power-law spectrum :math:`h_i = i^{-a}` over coordinates :math:`i = 1 \dots` ``modes``,
        started so that :math:`h_i m_i(0) = A\, i^{-(1 + \alpha a)}`: at a constant rate the noise-free
        loss then falls as :math:`(\eta t)^{-\alpha}` (the usual power law in the learning-rate area)
        until the slowest modes. The coordinates are grouped into ``bins`` geometric bins of :math:`i`
        from 1/2 to ``modes`` + 1/2 (the sum over whole i as a midpoint-rule integral), each evaluated
        at its geometric centre and weighted by its number of coordinates; the stiffest bin's
        curvature is then about 2.75 at the default a = 1.5, so the edge of stability is
        :math:`2 / \max h \approx 0.73`."""
        if not (alpha > 0 and a > 1 and amplitude > 0 and modes >= 2 and bins >= 2):
            raise InvalidArgumentError(f"alpha={alpha}, a={a}, amplitude={amplitude}, modes={modes}, bins={bins}; need "
                                       f"alpha > 0, a > 1 (a summable spectrum), amplitude > 0, modes >= 2, bins >= 2")
        edges = np.geomspace(0.5, modes + 0.5, bins + 1)
        i = np.sqrt(edges[:-1] * edges[1:])
        h = i ** (-a)
        return cls(h=h, weights=np.diff(edges), m0=amplitude * i ** (-(1 + alpha * a)) / h, sigma=sigma, floor=floor)

    def expected_loss(self, lr) -> np.ndarray:
        r""":math:`E L(t)` for :math:`t = 0, \dots, T` under the rates ``lr[0..T-1]`` (``lr[t]``
        moves step t to t + 1): T + 1 values.

        Raises
        ------
        InvalidArgumentError
            A rate that is not finite, is negative, or is at or beyond the edge of stability
            :math:`2 / \max_k h_k`, named with its step and the fix.
        """
        lr = np.asarray(lr, dtype=float)
        if lr.ndim != 1:
            raise InvalidArgumentError(f"lr has shape {lr.shape}; give one rate per step (1-d)")
        bad = np.flatnonzero(~np.isfinite(lr) | (lr < 0))
        if bad.size:
            raise InvalidArgumentError(f"lr[{int(bad[0])}] = {float(lr[bad[0]])!r}; rates must be finite and >= 0")
        edge = 2.0 / float(self.h.max())
        over = np.flatnonzero(lr >= edge)
        if over.size:
            raise InvalidArgumentError(f"lr[{int(over[0])}] = {float(lr[over[0]])!r} is at or beyond the edge of stability "
                                       f"2 / max h = {edge:g}, where the loss diverges; lower the rate")
        m = self.m0.copy()
        wh = 0.5 * self.weights * self.h
        out = np.empty(lr.size + 1)
        out[0] = wh @ m
        noise = self.sigma**2 * self.h
        for t, eta in enumerate(lr):
            m *= (1.0 - eta * self.h) ** 2
            m += eta * eta * noise
            out[t + 1] = wh @ m
        return out + self.floor
