"""Numba step loops. Pure: arrays and scalars in, preallocated arrays filled, status codes out.

Nothing here validates, seeds, allocates results or raises: that is the job of
:func:`sde_scales.sde.solve.solve`.

Layout of the work
------------------
Paths are cut into *stream blocks* of ``bs`` consecutive global indices; block ``b`` owns one
random stream (its own ``numpy.random.Generator``) and is run by one thread (``prange`` over
blocks). A block is cut into *groups* of ``gs`` paths (``bs`` is a multiple of ``gs``); groups run
one after the other, each over all steps, and at every step a group first draws its ``gs * m``
normals and then moves its paths one step. So the order in which a stream's numbers are used is
fixed by ``(bs, gs, m)`` alone: a path's numbers depend only on the seed and its global index,
never on the thread count or the block schedule. A group that lies wholly past the last path
never draws (its numbers would come after all others of its stream); a partly filled one draws
for all ``gs`` paths.

Why groups: independent paths in the inner loop let the CPU overlap their work (a loop over one
path's steps is bound by that path's dependency chain and runs about half as fast), and drawing
a short run of normals before stepping keeps the ziggurat's branches predictable.

The step function is captured by a closure (see :func:`runners`), not passed as an argument, so
that Numba inlines it and the user's drift and diffusion calls cost little; passed as an
argument it costs about three times the whole step.

Status codes: ``status[p] = 0`` while path ``p`` is finite, otherwise the 1-based step after which
it was first NaN or infinite. A dead path keeps drawing (and discarding) its normals so that the
other paths of its group see the same numbers whether or not it blew up.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# --------------------------------------------------------------------------- step functions
# Signature: step(drift, diffusion, gdg, t, dt, sqdt, x, dw, p, f, g, w1, w2) -> None
#   x  (d,)        state, updated in place
#   dw (m,)        Brownian increments over [t, t + dt]
#   f  (d,)        work: drift
#   g  (d,)|(d,m)  work: diffusion
#   w1, w2 (d,)    work: Milstein support values


@njit(inline="always")
def em_vector_diagonal(drift, diffusion, gdg, t, dt, sqdt, x, dw, p, f, g, w1, w2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * dw[i]


@njit(inline="always")
def em_vector_scalar(drift, diffusion, gdg, t, dt, sqdt, x, dw, p, f, g, w1, w2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    w = dw[0]
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * w


@njit(inline="always")
def em_matrix(drift, diffusion, gdg, t, dt, sqdt, x, dw, p, f, g, w1, w2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    for i in range(x.shape[0]):
        acc = f[i] * dt
        for j in range(dw.shape[0]):
            acc += g[i, j] * dw[j]
        x[i] += acc


@njit(inline="always")
def milstein_df_diagonal(drift, diffusion, gdg, t, dt, sqdt, x, dw, p, f, g, w1, w2):
    # Derivative-free Milstein (Kloeden & Platen 1992, eq. 11.1.5), componentwise.
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    for i in range(x.shape[0]):
        w1[i] = x[i] + f[i] * dt + g[i] * sqdt
    diffusion(t, w1, p, w2)
    c = 0.5 / sqdt
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * dw[i] + (w2[i] - g[i]) * (dw[i] * dw[i] - dt) * c


@njit(inline="always")
def milstein_df_scalar(drift, diffusion, gdg, t, dt, sqdt, x, dw, p, f, g, w1, w2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    for i in range(x.shape[0]):
        w1[i] = x[i] + f[i] * dt + g[i] * sqdt
    diffusion(t, w1, p, w2)
    w = dw[0]
    c = 0.5 * (w * w - dt) / sqdt
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * w + (w2[i] - g[i]) * c


@njit(inline="always")
def milstein_gdg_diagonal(drift, diffusion, gdg, t, dt, sqdt, x, dw, p, f, g, w1, w2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    gdg(t, x, p, w2)
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * dw[i] + 0.5 * w2[i] * (dw[i] * dw[i] - dt)


@njit(inline="always")
def milstein_gdg_scalar(drift, diffusion, gdg, t, dt, sqdt, x, dw, p, f, g, w1, w2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    gdg(t, x, p, w2)
    w = dw[0]
    c = 0.5 * (w * w - dt)
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * w + w2[i] * c


# --------------------------------------------------------------------------- noise sources
# draw(src, k, path, sqdt, dw) fills dw[i*m:(i+1)*m] for the paths of one group at step k.
@njit(inline="always")
def draw_generated(gen, k, lo, n, m, sqdt, dw):
    for q in range(dw.shape[0]):  # the whole group, also paths past the end
        dw[q] = sqdt * gen.standard_normal()


@njit(inline="always")
def draw_supplied(dW, k, lo, n, m, sqdt, dw):
    for i in range(n):
        for j in range(m):
            dw[i * m + j] = dW[k, lo + i, j]


@njit
def no_gdg(t, x, p, out):  # placeholder passed where a solver needs no gdg
    pass


_RUNNERS: dict = {}


def _advance_group(step, draw, D, M):
    """The loop that moves one group of paths over all steps, with ``step`` and ``draw`` inlined.

    ``D`` and ``M`` are the state and noise dimensions frozen as compile-time constants (so that
    LLVM unrolls the short per-path loops: 1.7x faster for d = m = 1), or -1 to read them from the
    arrays at run time (large systems, where unrolling gains nothing and one kernel then serves
    every width).
    """

    @njit
    def advance_group(drift, diffusion, gdg, src, x0, lo, n, gs, m_run, params, t0, dt,
                      n_steps, save_steps, out, status, gshape):
        d = D if D > 0 else x0.shape[1]
        m = M if M > 0 else m_run
        x = np.empty((n, d))
        for i in range(n):
            row = lo + i if x0.shape[0] > 1 else 0
            for c in range(d):
                x[i, c] = x0[row, c]
        dws = np.empty(gs * m)
        f = np.empty(d)
        g = np.empty(gshape)  # (d,) or (d, m): the tuple's length fixes the type at compile time
        w1 = np.empty(d)
        w2 = np.empty(d)
        alive = np.ones(n, dtype=np.bool_)
        sqdt = np.sqrt(dt)
        n_save = save_steps.shape[0]
        s = 0
        while s < n_save and save_steps[s] == 0:
            for i in range(n):
                for c in range(d):
                    out[s, lo + i, c] = x[i, c]
            s += 1
        n_dead = 0
        for k in range(n_steps):
            t = t0 + k * dt
            draw(src, k, lo, n, m, sqdt, dws)
            # acc * 0 is NaN iff some new state entry is NaN or inf (or the finite sum overflowed,
            # which the exact scan below then clears): one add per entry and one branch per group.
            acc = 0.0
            for i in range(n):
                if n_dead > 0 and not alive[i]:
                    continue
                xi = x[i]  # a view: with the step inlined, Numba prunes its reference counting
                step(drift, diffusion, gdg, t, dt, sqdt, xi, dws[i * m:(i + 1) * m], params, f, g, w1, w2)
                for c in range(d):
                    acc += xi[c]
            if acc * 0.0 != 0.0:
                for i in range(n):
                    if not alive[i]:
                        continue
                    for c in range(d):
                        if not np.isfinite(x[i, c]):
                            alive[i] = False
                    if not alive[i]:
                        n_dead += 1
                        status[lo + i] = k + 1
                        for c in range(d):
                            x[i, c] = np.nan
            while s < n_save and save_steps[s] == k + 1:
                for i in range(n):
                    for c in range(d):
                        out[s, lo + i, c] = x[i, c]
                s += 1

    return advance_group


#: Dimensions up to this are frozen into the compiled kernel (see ``_advance_group``).
MAX_FROZEN_DIM = 8


def runners(step, d, m):
    """``(run_generated, run_supplied)`` specialised for one step function and, when small, the
    dimensions ``d`` (state) and ``m`` (Brownian motions); built once per key and cached."""
    frozen = d <= MAX_FROZEN_DIM and m <= MAX_FROZEN_DIM
    d, m = (int(d), int(m)) if frozen else (-1, -1)
    key = (step, d, m)
    if key in _RUNNERS:
        return _RUNNERS[key]
    advance_generated = _advance_group(step, draw_generated, d, m)
    advance_supplied = _advance_group(step, draw_supplied, d, m)

    @njit(parallel=True)
    def run_generated(drift, diffusion, gdg, gens, x0, n_paths, bs, gs, m_run, params, t0, dt,
                      n_steps, save_steps, out, status, gshape):
        """Paths ``0 .. n_paths`` in stream blocks of ``bs``; block ``b`` draws from ``gens[b]``."""
        n_blocks = len(gens)
        for b in prange(n_blocks):
            bi = np.int64(b)
            gen = gens[bi]
            for lo in range(bi * bs, min((bi + 1) * bs, n_paths), gs):
                advance_generated(drift, diffusion, gdg, gen, x0, lo,
                              min(gs, n_paths - lo), gs, m_run, params, t0, dt, n_steps, save_steps,
                              out, status, gshape)

    @njit(parallel=True)
    def run_supplied(drift, diffusion, gdg, dW, x0, n_paths, bs, gs, m_run, params, t0, dt,
                     n_steps, save_steps, out, status, gshape):
        """Like ``run_generated``, with increments taken from ``dW[k, path, :]``."""
        n_blocks = (n_paths + bs - 1) // bs
        for b in prange(n_blocks):
            bi = np.int64(b)
            for lo in range(bi * bs, min((bi + 1) * bs, n_paths), gs):
                advance_supplied(drift, diffusion, gdg, dW, x0, lo,
                              min(gs, n_paths - lo), gs, m_run, params, t0, dt, n_steps, save_steps,
                              out, status, gshape)

    _RUNNERS[key] = (run_generated, run_supplied)
    return _RUNNERS[key]
