r"""Probes of a problem's functions in pure Python, before anything is compiled.

:func:`probe_states` gives states at which to evaluate them: the initial state, states reached by
a short Euler-Maruyama trial run (a few paths, 16 steps over the time span) and random
perturbations of the initial state, each with its time. The checks below evaluate the diffusion
there by central finite differences (step :math:`\delta = 10^{-5}(1 + |x_l|)`, error
:math:`O(\delta^2)`), so a precondition that holds at x0 but fails elsewhere is caught too.

* :func:`diagonal_violation`: diagonal noise needs :math:`g_i` to depend on :math:`x_i` only
  (Milstein's componentwise correction relies on it; Kloeden & Platen 1992, sec. 10.3).
* :func:`commutativity_violation`: general noise is *commutative* when
  :math:`L^j g_{\cdot k} = L^k g_{\cdot j}` for all j, k, with :math:`L^j = \sum_l g_{lj}\partial_{x_l}`;
  then Milstein needs no Levy areas (Kloeden & Platen 1992, sec. 10.3, eq. 3.13).

Each returns None, or a sentence naming the entry, the state and the size of the violation.
"""

from __future__ import annotations

import numpy as np
from sde_scales import seeds

__all__ = ["commutativity_violation", "diagonal_violation", "probe_states"]

_REL = 1e-6  # a violation is reported above 1e-6 of the diffusion's own scale (finite differences: ~1e-10)


def _py(fn):
    return getattr(fn, "py_func", fn)


def _g(problem, t, x):
    out = np.full(problem.diffusion_shape, np.nan)
    _py(problem.diffusion)(t, x.copy(), problem.params, out)
    return out


def probe_states(problem, n_paths: int = 4, n_steps: int = 16, n_random: int = 4, seed: int = 0):
    """``[(t, x), ...]``: x0 at t0, a short EM trial run's states, random perturbations of x0."""
    rng = seeds.rng(seed, "sde.probe_states")
    t0, t1 = problem.tspan
    x0 = problem.x0[0] if problem.per_path_x0 else problem.x0
    states = [(t0, x0.astype(float).copy())]
    dt = (t1 - t0) / n_steps
    drift, m = _py(problem.drift), problem.m
    for _ in range(n_paths):
        x = x0.astype(float).copy()
        for k in range(n_steps):
            t = t0 + k * dt
            f = np.full(problem.d, np.nan)
            drift(t, x.copy(), problem.params, f)
            g = _g(problem, t, x)
            dw = rng.standard_normal(m) * np.sqrt(dt)
            x = x + f * dt + (g @ dw if g.ndim == 2 else g * (dw if m == problem.d else dw[0]))
            if not np.all(np.isfinite(x)):
                break
            if k % 4 == 3:
                states.append((t + dt, x.copy()))
    for _ in range(n_random):
        states.append((float(rng.uniform(t0, t1)), x0 + 0.5 * (1 + np.abs(x0)) * rng.standard_normal(problem.d)))
    return states


def _jacobian(problem, t, x):
    """:math:`\\partial g / \\partial x_l` by central differences: shape ``diffusion_shape + (d,)``."""
    cols = []
    for l in range(problem.d):
        h = 1e-5 * (1.0 + abs(x[l]))
        xp, xm = x.copy(), x.copy()
        xp[l] += h
        xm[l] -= h
        cols.append((_g(problem, t, xp) - _g(problem, t, xm)) / (2 * h))
    return np.stack(cols, axis=-1)


def diagonal_violation(problem, states) -> str | None:
    for t, x in states:
        J = _jacobian(problem, t, x)  # (d, d): dg_i / dx_l
        g = _g(problem, t, x)
        scale = 1.0 + np.max(np.abs(g))
        off = J - np.diag(np.diag(J))
        if np.max(np.abs(off)) > _REL * scale:
            i, l = (int(v) for v in np.unravel_index(np.argmax(np.abs(off)), off.shape))
            return (f"g_{i} depends on x_{l} (dg_{i}/dx_{l} = {off[i, l]:.3g} at t = {t:.3g}, x = "
                    f"{np.array2string(x, precision=3)}), but diagonal noise needs each g_i to depend on x_i only")
    return None


def commutativity_violation(problem, states) -> str | None:
    for t, x in states:
        g = _g(problem, t, x)  # (d, m)
        J = _jacobian(problem, t, x)  # (d, m, d): dg_ik / dx_l
        L = np.einsum("lj,ikl->jki", g, J)  # L[j, k] = L^j g_{.k}, a d-vector
        scale = 1.0 + np.max(np.abs(L))
        gap = np.abs(L - L.transpose(1, 0, 2)).max(axis=-1)  # (m, m)
        if gap.max() > _REL * scale:
            j, k = (int(v) for v in np.unravel_index(np.argmax(gap), gap.shape))
            return (f"the noise does not commute: L^{j} g_{k} != L^{k} g_{j} (difference {gap[j, k]:.3g} at t = "
                    f"{t:.3g}, x = {np.array2string(x, precision=3)})")
    return None
