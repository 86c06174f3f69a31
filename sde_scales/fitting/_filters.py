r"""Recursive filters for the laws: drops convolved with exponential step responses in linear time.

For evaluation steps :math:`t_i` (increasing) and drop bins at steps :math:`c_b` (increasing) with
sizes :math:`d_b`, and a time coordinate u that never decreases with the step (steps, or the
learning-rate area),

.. math::

    R_i(\tau) = \sum_{b:\, c_b < t_i} d_b \big(1 - e^{-(u_i - u_b)/\tau}\big)
             = D_i - A_i, \qquad
    A_i = \sum_{b:\, c_b < t_i} d_b\, e^{-(u_i - u_b)/\tau},

and :math:`A` obeys :math:`A \leftarrow A\, e^{-\Delta u/\tau} + d_b` as u advances: one pass over
the merged events, O(points + bins) per time scale, with no (points x bins) matrix. Every factor
:math:`e^{-\Delta u/\tau}` is at most one, so the recursion is stable.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["exp_response", "weighted_response"]


@numba.njit(cache=True, nogil=True)
def _exp_response(t, u_eval, c, u_bin, d, taus, out):  # pragma: no cover - compiled
    n_eval, n_bin, n_tau = t.size, c.size, taus.size
    for j in range(n_tau):
        tau = taus[j]
        A = 0.0
        D = 0.0
        u_now = 0.0
        b = 0
        for i in range(n_eval):
            while b < n_bin and c[b] < t[i]:
                A *= np.exp(-(u_bin[b] - u_now) / tau)  # u never decreases: a factor <= 1
                u_now = u_bin[b]
                A += d[b]
                D += d[b]
                b += 1
            du = u_eval[i] - u_now
            if du > 0.0:
                out[i, j] = D - A * np.exp(-du / tau)
            else:
                out[i, j] = D - A
    return out


def exp_response(t, u_eval, c, u_bin, d, taus) -> np.ndarray:
    """``(len(t), len(taus))`` array of :math:`R_i(\\tau_j)` (see the module docstring)."""
    t = np.ascontiguousarray(t, dtype=np.float64)
    c = np.ascontiguousarray(c, dtype=np.float64)
    out = np.empty((t.size, np.size(taus)))
    if c.size == 0:
        out[:] = 0.0
        return out
    return _exp_response(t, np.ascontiguousarray(u_eval, dtype=np.float64), c,
                         np.ascontiguousarray(u_bin, dtype=np.float64), np.ascontiguousarray(d, dtype=np.float64),
                         np.ascontiguousarray(taus, dtype=np.float64), out)


@numba.njit(cache=True, nogil=True)
def _weighted_response(t, u_eval, c, u_bin, W, taus, out):  # pragma: no cover - compiled
    n_in, n_tau, n_bin = W.shape
    n_eval = t.size
    A = np.zeros(n_in)
    D = np.zeros(n_in)
    for j in range(n_tau):
        tau = taus[j]
        A[:] = 0.0
        D[:] = 0.0
        u_now = 0.0
        b = 0
        for i in range(n_eval):
            while b < n_bin and c[b] < t[i]:
                f = np.exp(-(u_bin[b] - u_now) / tau)
                u_now = u_bin[b]
                for r in range(n_in):
                    A[r] = A[r] * f + W[r, j, b]
                    D[r] += W[r, j, b]
                b += 1
            du = u_eval[i] - u_now
            f = np.exp(-du / tau) if du > 0.0 else 1.0
            for r in range(n_in):
                out[r, i] += D[r] - A[r] * f
    return out


def weighted_response(t, u_eval, c, u_bin, W, taus) -> np.ndarray:
    r"""``(n_in, len(t))`` array :math:`\sum_j \sum_{b:\,c_b < t_i} W_{r,j,b}\,(1 - e^{-(u_i - u_b)/\tau_j})`:
    the same recursion as :func:`exp_response`, with drop sizes that differ per time scale (and
    per input ``r``: a law and its derivatives in one pass), summed over the time scales. O(n_in x
    n_taus x (points + bins))."""
    W = np.ascontiguousarray(W, dtype=np.float64)
    t = np.ascontiguousarray(t, dtype=np.float64)
    out = np.zeros((W.shape[0], t.size))
    if np.size(c) == 0 or W.shape[1] == 0:
        return out
    return _weighted_response(t, np.ascontiguousarray(u_eval, dtype=np.float64),
                              np.ascontiguousarray(c, dtype=np.float64),
                              np.ascontiguousarray(u_bin, dtype=np.float64), W,
                              np.ascontiguousarray(taus, dtype=np.float64), out)
