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

__all__ = ["DecayFactors", "exp_response", "weighted_response"]


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
def _decay_factors(t, u_eval, c, u_bin, taus, fb, fe):  # pragma: no cover - compiled
    # the recursion's factors per time scale: fb[j, b] as bin b arrives (u advancing from the last
    # bin's), fe[j, i] at evaluation point i (from the last bin before it)
    n_eval, n_bin, n_tau = t.size, c.size, taus.size
    for j in range(n_tau):
        tau = taus[j]
        u_now = 0.0
        b = 0
        for i in range(n_eval):
            while b < n_bin and c[b] < t[i]:
                fb[j, b] = np.exp(-(u_bin[b] - u_now) / tau)
                u_now = u_bin[b]
                b += 1
            du = u_eval[i] - u_now
            fe[j, i] = np.exp(-du / tau) if du > 0.0 else 1.0


@numba.njit(cache=True, nogil=True)
def _add_one_rate(t, c, W, j, fb, fe, A, D, out):  # pragma: no cover - compiled
    # the recursion of time scale j, its factors given (fb, fe: its rows): A <- A f + W as each
    # bin arrives; out += D - A f at each evaluation point
    n_in, n_bin = W.shape[0], W.shape[2]
    A[:] = 0.0
    D[:] = 0.0
    b = 0
    for i in range(t.size):
        while b < n_bin and c[b] < t[i]:
            f = fb[b]
            for r in range(n_in):
                A[r] = A[r] * f + W[r, j, b]
                D[r] += W[r, j, b]
            b += 1
        f = fe[i]
        for r in range(n_in):
            out[r, i] += D[r] - A[r] * f


@numba.njit(cache=True, nogil=True)
def _weighted_response(t, u_eval, c, u_bin, W, taus, out):  # pragma: no cover - compiled
    # one time scale at a time: its factors, then its recursion (memory: one row of factors)
    n_in = W.shape[0]
    A, D = np.zeros(n_in), np.zeros(n_in)
    fb, fe = np.zeros((1, c.size)), np.zeros((1, t.size))
    for j in range(taus.size):
        _decay_factors(t, u_eval, c, u_bin, taus[j:j + 1], fb, fe)
        _add_one_rate(t, c, W, j, fb[0], fe[0], A, D, out)
    return out


@numba.njit(cache=True, nogil=True)
def _weighted_response_factors(t, c, W, rows, fb, fe, out):  # pragma: no cover - compiled
    # the same with the factors of time scale j read from row rows[j] of kept ones
    n_in = W.shape[0]
    A, D = np.zeros(n_in), np.zeros(n_in)
    for j in range(rows.size):
        _add_one_rate(t, c, W, j, fb[rows[j]], fe[rows[j]], A, D, out)
    return out


#: Most bytes of decay factors :class:`DecayFactors` keeps for one schedule (past it, each call
#: computes its factors afresh, as without a cache): 128 MiB, about 400 time scales of a
#: 34,000-point per-step curve (a multi-power fit meets about 60), 12 of a million-point one;
#: adding rows copies the kept ones, so the peak is twice this.
FACTOR_BYTES = 2**27


class DecayFactors:
    """The recursion's decay factors of one schedule (evaluation points and drop bins in one time
    coordinate), per time scale, computed on first use and kept: a law whose time scales come from
    a fixed lattice (the multi-power law's) meets the same ones at every evaluation of a fit, and
    the factors (one exponential per event and time scale) cost more than the rest of a pass."""

    def __init__(self, t, u_eval, c, u_bin):
        self.t, self.u_eval, self.c, self.u_bin = t, u_eval, c, u_bin
        self.index: dict[float, int] = {}
        self.fb = np.zeros((0, c.size))
        self.fe = np.zeros((0, t.size))

    def rows(self, taus: np.ndarray) -> np.ndarray | None:
        """Row of each time scale in ``fb``/``fe``, computing the missing ones; None where keeping
        them would pass :data:`FACTOR_BYTES`."""
        new = [float(x) for x in dict.fromkeys(taus.tolist()) if float(x) not in self.index]
        if new:
            n = len(self.index) + len(new)
            if n * (self.c.size + self.t.size) * 8 > FACTOR_BYTES:
                return None
            fb = np.zeros((len(new), self.c.size))
            fe = np.zeros((len(new), self.t.size))
            _decay_factors(self.t, self.u_eval, self.c, self.u_bin, np.array(new), fb, fe)
            self.fb = np.concatenate([self.fb, fb])
            self.fe = np.concatenate([self.fe, fe])
            for x in new:
                self.index[x] = len(self.index)
        return np.array([self.index[float(x)] for x in taus.tolist()], dtype=np.int64)


def weighted_response(t, u_eval, c, u_bin, W, taus, factors: DecayFactors | None = None) -> np.ndarray:
    r"""``(n_in, len(t))`` array :math:`\sum_j \sum_{b:\,c_b < t_i} W_{r,j,b}\,(1 - e^{-(u_i - u_b)/\tau_j})`:
    the same recursion as :func:`exp_response`, with drop sizes that differ per time scale (and
    per input ``r``: a law and its derivatives in one pass), summed over the time scales. O(n_in x
    n_taus x (points + bins)). ``factors``: the schedule's :class:`DecayFactors` (built on the same
    ``t, u_eval, c, u_bin``), to read the decay factors of time scales met before instead of
    computing them; the result is the same to the last bit."""
    W = np.ascontiguousarray(W, dtype=np.float64)
    t = np.ascontiguousarray(t, dtype=np.float64)
    out = np.zeros((W.shape[0], t.size))
    if np.size(c) == 0 or W.shape[1] == 0:
        return out
    taus = np.ascontiguousarray(taus, dtype=np.float64)
    if factors is not None and (factors.t.size != t.size or factors.c.size != np.size(c)):
        # the compiled pass reads the factors by index, unchecked: factors of another schedule
        # would be read past their ends
        raise ValueError(f"decay factors of {factors.t.size} points and {factors.c.size} bins for a schedule of "
                         f"{t.size} points and {np.size(c)} bins; build them on the same schedule")
    rows = factors.rows(taus) if factors is not None else None
    if rows is not None:
        return _weighted_response_factors(factors.t, factors.c, W, rows, factors.fb, factors.fe, out)
    return _weighted_response(t, np.ascontiguousarray(u_eval, dtype=np.float64),
                              np.ascontiguousarray(c, dtype=np.float64),
                              np.ascontiguousarray(u_bin, dtype=np.float64), W, taus, out)
