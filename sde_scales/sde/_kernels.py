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

Work arrays: with frozen (small) dimensions, the state of a group, the drift and diffusion
outputs and a copy of a short parameter array are stack arrays of compile-time size, so LLVM can
keep them in registers across the inlined user functions (see ``_work``).

The step function is captured by a closure (see :func:`runners`), not passed as an argument, so
that Numba inlines it and the user's drift and diffusion calls cost little; passed as an
argument it costs about three times the whole step.

Status codes: ``status[p] = 0`` while path ``p`` is finite and below the blow-up threshold in
absolute value, otherwise the 1-based step after which it was first NaN, infinite or beyond it. A dead path keeps drawing its normals, so that the other paths of
its group see the same numbers whether or not it blew up, and keeps being stepped (the user's
drift and diffusion then see NaN, which float arithmetic carries without raising); every value
saved after its death is NaN, whatever its state became.
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from sde_scales.sde.noise import auto_group_size

# --------------------------------------------------------------------------- step functions
# Signature: step(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2) -> None
#   x  (d,)        state, updated in place
#   dw, o          Brownian increments over [t, t + dt]: dw[o], ..., dw[o + m - 1] (an offset into
#                  the group's buffer rather than a slice, so the hot loop builds no views)
#   f  (d,)        work: drift
#   g  (d,)|(d,m)  work: diffusion
#   w1, w2 (d,)    work: Milstein support values
#   g2 (d,)|(d,m)  work: the diffusion at a support value (Milstein for general noise)


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


@njit(inline="always")
def milstein_df_diagonal(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2):
    # Derivative-free Milstein (Kloeden & Platen 1992, eq. 11.1.5), componentwise.
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    for i in range(x.shape[0]):
        w1[i] = x[i] + f[i] * dt + g[i] * sqdt
    diffusion(t, w1, p, w2)
    c = 0.5 / sqdt
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * dw[o + i] + (w2[i] - g[i]) * (dw[o + i] * dw[o + i] - dt) * c


@njit(inline="always")
def milstein_df_scalar(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    for i in range(x.shape[0]):
        w1[i] = x[i] + f[i] * dt + g[i] * sqdt
    diffusion(t, w1, p, w2)
    w = dw[o]
    c = 0.5 * (w * w - dt) / sqdt
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * w + (w2[i] - g[i]) * c


@njit(inline="always")
def milstein_gdg_diagonal(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    gdg(t, x, p, w2)
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * dw[o + i] + 0.5 * w2[i] * (dw[o + i] * dw[o + i] - dt)


@njit(inline="always")
def milstein_gdg_scalar(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2):
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    gdg(t, x, p, w2)
    w = dw[o]
    c = 0.5 * (w * w - dt)
    for i in range(x.shape[0]):
        x[i] += f[i] * dt + g[i] * w + w2[i] * c


@njit(inline="always")
def milstein_df_general(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2):
    # Derivative-free Milstein for commutative general noise:
    #   x += f h + g dW + 1/2 sum_{j,k} D_jk (dW_j dW_k - delta_jk h),
    #   D_jk = (g_.k(x + sqrt(h) g_.j) - g_.k(x)) / sqrt(h) = L^j g_.k + O(sqrt(h)),
    # whose O(sqrt(h)) error multiplies a zero-mean factor, so strong order 1 is kept.
    drift(t, x, p, f)
    diffusion(t, x, p, g)
    d = x.shape[0]
    m = g.shape[1]
    for i in range(d):
        acc = f[i] * dt
        for j in range(m):
            acc += g[i, j] * dw[o + j]
        w2[i] = acc
    c = 0.5 / sqdt
    for j in range(m):
        for i in range(d):
            w1[i] = x[i] + g[i, j] * sqdt
        diffusion(t, w1, p, g2)
        dwj = dw[o + j]
        for i in range(d):
            s = 0.0
            for k in range(m):
                ck = dwj * dw[o + k]
                if k == j:
                    ck -= dt
                s += (g2[i, k] - g[i, k]) * ck
            w2[i] += c * s
    for i in range(d):
        x[i] += w2[i]


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


# --------------------------------------------------------------------------- work arrays
@intrinsic
def _stack_ptr(typingctx, size, dtype):
    """A pointer to ``size`` (a compile-time constant) elements of ``dtype`` on the stack of the
    calling function (an ``alloca`` in its entry block)."""
    if not isinstance(size, types.IntegerLiteral):
        return None
    n = size.literal_value

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(dtype.dtype), size=n)

    return types.CPointer(dtype.dtype)(size, dtype), codegen


def _work(shape):
    """``alloc(runtime_shape)`` for a float64 work array: on the stack when ``shape`` (a tuple of
    compile-time sizes) is given, else ``np.empty``.

    Why the stack: LLVM then knows that the state, the drift and diffusion outputs and the copied
    parameters alias nothing else, keeps them in registers across the inlined user functions and
    drops their stores and reloads (about 10% of a scalar OU step).
    """
    if shape is None:
        @njit(inline="always")
        def alloc(runtime_shape):
            return np.empty(runtime_shape)
    else:
        size = int(np.prod(shape))

        @njit(inline="always")
        def alloc(runtime_shape):
            return carray(_stack_ptr(size, np.float64), shape)
    return alloc


#: Parameter arrays up to this length are copied into a stack array (see ``_work``).
MAX_STACK_PARAMS = 16

_RUNNERS: dict = {}


def _advance_group(step, draw, D, M, GS, P, matrix):
    """The loop that moves one group of paths over all steps, with ``step`` and ``draw`` inlined.

    ``D`` and ``M`` are the state and noise dimensions frozen as compile-time constants (so that
    LLVM unrolls the short per-path loops: 1.7x faster for d = m = 1), or -1 to read them from the
    arrays at run time (large systems, where unrolling gains nothing and one kernel then serves
    every width). ``GS`` is the group size, also a constant: every group steps ``GS`` paths, a
    partly filled last group carrying copies of its last path that are never saved or checked.
    With frozen dimensions the work arrays live on the stack, and so does a copy of the
    parameters when their number ``P`` is small (``P = -1``: read them in place).
    """
    frozen = D > 0
    alloc_x = _work((GS, D) if frozen else None)
    alloc_d = _work((D,) if frozen else None)
    alloc_g = _work(((D, M) if matrix else (D,)) if frozen else None)
    if P > 0:
        @njit(inline="always")
        def local_params(params):  # a stack copy of the parameters
            p = carray(_stack_ptr(P, np.float64), (P,))
            for q in range(P):
                p[q] = params[q]
            return p
    else:
        @njit(inline="always")
        def local_params(params):
            return params

    @njit
    def advance_group(drift, diffusion, gdg, src, x0, lo, n, m_run, params, t0, dt,
                      n_steps, save_steps, out, status, gshape, blowup):
        d = D if D > 0 else x0.shape[1]
        m = M if M > 0 else m_run
        x = alloc_x((GS, d))
        for i in range(GS):
            row = min(lo + i, lo + n - 1) if x0.shape[0] > 1 else 0
            for c in range(d):
                x[i, c] = x0[row, c]
        dws = np.zeros(GS * m)
        f = alloc_d(d)
        g = alloc_g(gshape)  # (d,) or (d, m): the tuple's length fixes the type at compile time
        g2 = alloc_g(gshape)  # a second diffusion (Milstein for general noise)
        w1 = alloc_d(d)
        w2 = alloc_d(d)
        p = local_params(params)
        alive = np.ones(GS, dtype=np.bool_)
        sqdt = np.sqrt(dt)
        n_save = save_steps.shape[0]
        s = 0
        while s < n_save and save_steps[s] == 0:
            for i in range(n):
                for c in range(d):
                    out[s, lo + i, c] = x[i, c]
            s += 1
        for k in range(n_steps):
            t = t0 + k * dt
            draw(src, k, lo, n, m, sqdt, dws)
            # acc (the sum of |x| over the group) fails `acc < blowup` iff some new state entry is
            # NaN, infinite or beyond the threshold (or the sum of finite entries passed it, which
            # the exact scan below then clears): one abs and add per entry, one branch per group.
            # Dead paths are stepped too (NaN in, NaN out; cheaper than a branch per path), so a
            # group holding one rescans at every step.
            acc = 0.0
            for i in range(GS):
                xi = x[i]  # a view: with the step inlined, Numba prunes its reference counting
                step(drift, diffusion, gdg, t, dt, sqdt, xi, dws, i * m, p, f, g, w1, w2, g2)
                for c in range(d):
                    acc += abs(xi[c])
            if not acc < blowup:
                for i in range(n):
                    if not alive[i]:
                        continue
                    for c in range(d):
                        if not abs(x[i, c]) < blowup:
                            alive[i] = False
                    if not alive[i]:
                        status[lo + i] = k + 1
            while s < n_save and save_steps[s] == k + 1:
                for i in range(n):
                    for c in range(d):
                        out[s, lo + i, c] = x[i, c] if alive[i] else np.nan
                s += 1

    return advance_group


#: Dimensions up to this are frozen into the compiled kernel (see ``_advance_group``).
MAX_FROZEN_DIM = 8


def runners(step, d, m, n_params=0, matrix=False):
    """``(run_generated, run_supplied)`` specialised for one step function and, when small, the
    dimensions ``d`` (state) and ``m`` (Brownian motions) and the number of parameters; built once
    per key and cached. ``matrix``: the diffusion writes a ``(d, m)`` matrix (additive and general
    noise) rather than a ``(d,)`` vector."""
    gs = auto_group_size(m)
    frozen = d <= MAX_FROZEN_DIM and m <= MAX_FROZEN_DIM
    d, m = (int(d), int(m)) if frozen else (-1, -1)
    P = int(n_params) if 0 < n_params <= MAX_STACK_PARAMS else -1
    key = (step, d, m, gs, P, bool(matrix))
    if key in _RUNNERS:
        return _RUNNERS[key]
    advance_generated = _advance_group(step, draw_generated, d, m, gs, P, matrix)
    advance_supplied = _advance_group(step, draw_supplied, d, m, gs, P, matrix)

    @njit(parallel=True)
    def run_generated(drift, diffusion, gdg, gens, x0, n_paths, bs, gs, m_run, params, t0, dt,
                      n_steps, save_steps, out, status, gshape, blowup):
        """Paths ``0 .. n_paths`` in stream blocks of ``bs``; block ``b`` draws from ``gens[b]``."""
        n_blocks = len(gens)
        for b in prange(n_blocks):
            bi = np.int64(b)
            gen = gens[bi]
            for lo in range(bi * bs, min((bi + 1) * bs, n_paths), gs):
                advance_generated(drift, diffusion, gdg, gen, x0, lo,
                              min(gs, n_paths - lo), m_run, params, t0, dt, n_steps, save_steps,
                              out, status, gshape, blowup)

    @njit(parallel=True)
    def run_supplied(drift, diffusion, gdg, dW, x0, n_paths, bs, gs, m_run, params, t0, dt,
                     n_steps, save_steps, out, status, gshape, blowup):
        """Like ``run_generated``, with increments taken from ``dW[k, path, :]``."""
        n_blocks = (n_paths + bs - 1) // bs
        for b in prange(n_blocks):
            bi = np.int64(b)
            for lo in range(bi * bs, min((bi + 1) * bs, n_paths), gs):
                advance_supplied(drift, diffusion, gdg, dW, x0, lo,
                              min(gs, n_paths - lo), m_run, params, t0, dt, n_steps, save_steps,
                              out, status, gshape, blowup)

    _RUNNERS[key] = (run_generated, run_supplied)
    return _RUNNERS[key]
