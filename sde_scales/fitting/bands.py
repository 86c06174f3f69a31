r"""Prediction bands: how far a fitted law's prediction moves with the noise of the fitted curves.

Model (stated)
    The fitted curves are the law plus noise. Near the optimum, the parameters :math:`x` that the
    fit moved freely (neither pinned by the caller or held for want of a drop, nor on a bound of
    their box) are approximately normal with the Gauss-Newton covariance

    .. math:: \Sigma = \kappa\,s^2\,(J^\top J)^{-1}, \qquad s^2 = r^\top r / (n - p),

    :math:`J` the Jacobian of the residuals :math:`r` in those parameters, :math:`p` the number of
    directions it determines (its rank, below), and :math:`\kappa \ge 1`
    the inflation for the residuals' autocorrelation (their long-run variance, from overlapping
    means of 1,000-step batches within each curve, against that of single residuals:
    :func:`~sde_scales.fitting.fit.autocorrelation_inflation`; as for the time-scale intervals of
    :func:`~sde_scales.fitting.fit.fit`). A prediction :math:`\hat y(t)` with gradient
    :math:`g(t) = \partial\hat y/\partial x` has standard deviation :math:`(g^\top\Sigma g)^{1/2}`
    (the delta method); the predicted final loss (the mean over the last 5% of rows, the window
    :func:`~sde_scales.fitting.fit.score` compares) likewise, with the mean gradient.

What the band is not
    It is the parameter uncertainty *given the law*. Whether the law is the right one is a
    different question, answered by held-out scores and ``--law auto``; on real curves the error of
    a prediction is usually dominated by that, so a band much narrower than the held-out errors is
    the expected sign of a law that is wrong in ways the noise does not explain, not of a good fit.
    :func:`~sde_scales.fitting.fit.predict_sd` adds one part of that model error: where the law
    misses its own fitted curves by more than their noise (the lack-of-fit test), that miss, in
    quadrature (:func:`~sde_scales.fitting.fit.model_error`). A law that follows its fitted curves
    and still mispredicts another schedule is beyond what any band from those curves can show; fitted
    curves that hold one learning-rate drop, which test the law's form against no other schedule's,
    say so when another schedule is predicted (:func:`~sde_scales.fitting.report.one_drop_note`).

Where there is no band
    * The band is conditional on the parameters on a bound (their uncertainty is not in it; the
      fit's warnings name them) and on those the caller pinned.
    * Directions of :math:`J` with a singular value below :data:`SINGULAR_RTOL` of the largest
      (after scaling each column to unit norm) are combinations the curves do not determine. A
      prediction whose gradient has a component along one of them larger than
      :data:`ESTIMABLE_RTOL` of its norm is not determined by the data: its standard deviation is
      NaN (``null`` in JSON), never a pseudo-inverse's zero.
    * Likewise a prediction that depends on a parameter held at its default because the fitted
      curves have no learning-rate drop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sde_scales.fitting.laws import Law

__all__ = ["ESTIMABLE_RTOL", "SINGULAR_RTOL", "ParameterCovariance", "law_gradient", "on_lower_bound", "on_upper_bound",
           "parameter_covariance"]

#: Singular values of the column-scaled residual Jacobian below this fraction of the largest are
#: directions the curves do not determine: a condition number of 1e7 for J, 1e14 for J^T J, the
#: limit the time-scale intervals use.
SINGULAR_RTOL = 1e-7

#: A prediction's (scaled) gradient with a component along an undetermined direction above this
#: fraction of its norm depends on what the curves do not determine. Gradients orthogonal to those
#: directions have components of rounding size (about 1e-15 of the norm); 1e-6 keeps well clear of
#: it while any real dependence (a thousandth of the norm or more, in the cases tested) is caught.
ESTIMABLE_RTOL = 1e-6


@dataclass(frozen=True)
class ParameterCovariance:
    r"""The Gauss-Newton covariance of a fit's free interior parameters, in factored form.

    With :math:`J D^{-1} = U S V^\top` (``scale`` = :math:`D`, the column norms), the covariance is
    :math:`\kappa s^2 D^{-1} V S^{-2} V^\top D^{-1}` on the directions with non-negligible singular
    values. ``used`` marks, among all of the law's parameters, those with a covariance;
    ``unknown`` names those held at a default because the curves have no drop (a prediction that
    depends on them has no band); ``on_bound`` and ``pinned`` name those the band is conditional on.
    """

    names: tuple[str, ...]
    used: np.ndarray
    unknown: tuple[str, ...]
    on_bound: tuple[str, ...]
    pinned: tuple[str, ...]
    scale: np.ndarray
    vt: np.ndarray
    sv: np.ndarray
    s2: float
    inflation: float
    lo: np.ndarray
    hi: np.ndarray

    @property
    def conditional_on(self) -> list[str]:
        """What the band holds fixed: the parameters on a bound and those pinned, by name."""
        weights = [n for n in self.on_bound if n.startswith("b_")]
        out = [n for n in self.on_bound if not n.startswith("b_")]
        if weights:
            out.append(f"{len(weights)} kernel weight(s) at 0")
        return out + [f"{n} (fixed)" for n in self.pinned]

    def sd(self, grad: np.ndarray) -> np.ndarray:
        """Standard deviation of each row of ``grad`` (shape (m, n_params), in all of the law's
        parameters) as a linear function of the parameters; NaN where the fit does not determine it."""
        G = np.atleast_2d(np.asarray(grad, dtype=float))
        out = np.full(G.shape[0], np.nan)
        undetermined = np.zeros(G.shape[0], bool)
        size = np.abs(G).max(axis=1)
        for n in self.unknown:
            undetermined |= np.abs(G[:, self.names.index(n)]) > 1e-12 * size
        if self.sv.size == 0:
            out[:] = np.where(undetermined, np.nan, 0.0)
            return out
        Gs = G[:, self.used] / self.scale
        proj = Gs @ self.vt.T
        small = self.sv < SINGULAR_RTOL * self.sv.max()
        norm = np.linalg.norm(Gs, axis=1)
        if small.any():
            undetermined |= np.abs(proj[:, small]).max(axis=1) > ESTIMABLE_RTOL * np.maximum(norm, 1e-300)
        var = self.inflation * self.s2 * np.sum((proj[:, ~small] / self.sv[~small]) ** 2, axis=1)
        out[~undetermined] = np.sqrt(var[~undetermined])
        return out


def on_lower_bound(v: float, lo: float, unit: float = 1.0) -> bool:
    """The fits' rule for a parameter on its lower bound: within 1e-6 of it, relative to the bound
    where it is larger than ``unit`` (1, or the loss scale for a parameter in loss units)."""
    return v <= lo + 1e-6 * max(unit, abs(lo))


def on_upper_bound(v: float, hi: float, unit: float = 1.0) -> bool:
    """As :func:`on_lower_bound`, for the upper bound."""
    return v >= hi - 1e-6 * max(unit, abs(hi))


def parameter_covariance(law: Law, theta: np.ndarray, resid, jac, free: np.ndarray, lo: np.ndarray,
                         hi: np.ndarray, held: dict, inflation: float, units: np.ndarray | None = None
                         ) -> ParameterCovariance:
    """The covariance of a fit at its optimum ``theta``.

    ``resid(x)`` and ``jac(x)`` (or None: central differences) are the fit's residuals and their
    Jacobian in the free parameters ``x = theta[free]``; ``held`` names the parameters held at
    their defaults for want of a drop; ``inflation`` is the autocorrelation factor; ``units``: each
    parameter's unit for the on-a-bound rule (default 1).
    """
    names = tuple(law.names)
    units = np.ones(len(names)) if units is None else np.asarray(units, dtype=float)
    on_bound = tuple(n for i, n in enumerate(names)
                     if free[i] and (on_lower_bound(theta[i], lo[i], units[i]) or on_upper_bound(theta[i], hi[i], units[i])))
    used = np.array([bool(free[i]) and n not in on_bound for i, n in enumerate(names)])
    pinned = tuple(n for i, n in enumerate(names) if not free[i] and n not in held)
    xf = theta[free]
    r = resid(xf)
    cols = np.flatnonzero(used[free])  # the used parameters among the free ones
    if jac is not None:
        J = np.asarray(jac(xf))[:, cols]
    else:
        J = _central_differences(resid, xf, lo[free], hi[free], cols, r.size)
    scale = np.linalg.norm(J, axis=0)
    scale = np.where(scale > 0, scale, 1.0)  # a column of zeros is a zero singular value, found below
    if cols.size:
        _, sv, vt = np.linalg.svd(J / scale, full_matrices=False)
    else:
        sv, vt = np.zeros(0), np.zeros((0, 0))
    rank = int(np.sum(sv >= SINGULAR_RTOL * sv.max())) if sv.size else 0
    s2 = float(r @ r) / max(1, r.size - rank)  # degrees of freedom: the determined directions
    return ParameterCovariance(names, used, tuple(held), on_bound, pinned, scale, vt, sv, s2, float(inflation),
                               np.asarray(lo, float), np.asarray(hi, float))


def law_gradient(law: Law, theta: np.ndarray, f, lo: np.ndarray | None = None,
                 hi: np.ndarray | None = None) -> np.ndarray:
    """d prediction / d theta on the features ``f``, shape (points, n_params): the law's own
    Jacobian, or central differences (steps of 1e-4 of each parameter's size, kept inside
    ``lo``/``hi`` where given)."""
    J = law.jacobian(theta, f)
    if J is not None:
        return np.asarray(J)
    theta = np.asarray(theta, dtype=float)
    lo = np.full(theta.size, -np.inf) if lo is None else lo
    hi = np.full(theta.size, np.inf) if hi is None else hi
    return _central_differences(lambda x: law.predict(x, f), theta, lo, hi, range(theta.size), f.S1.size)


def _central_differences(func, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, cols, n_out: int) -> np.ndarray:
    """Columns ``cols`` of d func / d x by central differences, steps of 1e-4 of each parameter's
    size (at least 1e-6), each end kept inside ``lo``/``hi``; shape (n_out, len(cols))."""
    h = 1e-4 * np.maximum(np.abs(x), 1e-2)
    out = np.empty((n_out, len(cols)))
    for c, i in enumerate(cols):
        a, b = x.copy(), x.copy()
        a[i] = min(x[i] + h[i], hi[i])
        b[i] = max(x[i] - h[i], lo[i])
        out[:, c] = (func(a) - func(b)) / (a[i] - b[i])
    return out
