"""Numba step loops. Pure: arrays and scalars in, preallocated arrays filled, status codes out.

The loop driver shared by every solver; each solver's step functions live in its own file
(:mod:`sde_scales.sde.solvers`). Nothing here validates, seeds, allocates results or raises: that is the job of
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
argument it costs about three times the whole step. The loops over blocks that call it live in a
generated module (:mod:`sde_scales.sde._cache`) with the user's functions as its globals, so that
Numba can cache them on disk.

Control: ``ctl`` is an int64 array the caller may read and write while the loop runs (the loops
release the GIL): ``ctl[0] != 0`` asks every group to return at its next check, leaving ``out``
unfinished; ``ctl[1 + b]`` counts the path-steps block ``b`` has done. A group checks every
``CHECK_MASK + 1`` steps, so an interrupt stops a solve within microseconds per group and a
progress bar can follow it, without changing any number the loop computes.

Status codes: ``status[p] = 0`` while path ``p`` is finite and below the blow-up threshold in
absolute value, otherwise the 1-based step after which it was first NaN, infinite or beyond it. A dead path keeps drawing its normals, so that the other paths of
its group see the same numbers whether or not it blew up, and keeps being stepped (the user's
drift and diffusion then see NaN, which float arithmetic carries without raising); every value
saved after its death is NaN, whatever its state became.
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from sde_scales.sde import _cache
from sde_scales.sde.noise import auto_group_size

# --------------------------------------------------------------------------- step functions
# Each solver's step functions live in its own file under sde_scales/sde/solvers/ and follow
# this signature (inline="always", so that the loop below inlines them with the user's functions):
#
#   step(drift, diffusion, gdg, t, dt, sqdt, x, dw, o, p, f, g, w1, w2, g2) -> None
#   x  (d,)        state, updated in place
#   dw, o          Brownian increments over [t, t + dt]: dw[o], ..., dw[o + m - 1] (an offset into
#                  the group's buffer rather than a slice, so the hot loop builds no views)
#   p              parameters
#   f  (d,)        work: drift
#   g  (d,)|(d,m)  work: diffusion
#   w1, w2 (d,)    work: support values, gdg
#   g2 (d,)|(d,m)  work: a second diffusion evaluation


#: A group looks at the control array every CHECK_MASK + 1 steps (see ``_advance_group``): it adds
#: its progress and stops when asked to. A power of two less one, so the test is a mask; 64 steps
#: of one group take microseconds, and the check costs a predictable branch per step.
CHECK_MASK = 63

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


def _advance_group(step, draw, D, M, GS, P, matrix, drift, diffusion, gdg):
    """The loop that moves one group of paths over all steps, with ``step`` and ``draw`` inlined.

    ``D`` and ``M`` are the state and noise dimensions frozen as compile-time constants (so that
    LLVM unrolls the short per-path loops: 1.7x faster for d = m = 1), or -1 to read them from the
    arrays at run time (large systems, where unrolling gains nothing and one kernel then serves
    every width). ``GS`` is the group size, also a constant: every group steps ``GS`` paths, a
    partly filled last group carrying copies of its last path that are never saved or checked.
    With frozen dimensions the work arrays live on the stack, and so does a copy of the
    parameters when their number ``P`` is small (``P = -1``: read them in place). The user's
    ``drift``, ``diffusion`` and ``gdg`` are captured by the closure and called directly (a jitted
    function passed as a value into a parallel loop would be a run-time address that Numba cannot
    cache on disk).
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
    def advance_group(src, x0, lo, n, m_run, params, t0, dt,
                      n_steps, save_steps, out, status, gshape, blowup, ctl, slot):
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
        done = 0  # steps of this group already counted in ctl[slot]
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
            if (k & CHECK_MASK) == CHECK_MASK or k == n_steps - 1:
                ctl[slot] += n * (k + 1 - done)  # progress, in path-steps, read by the caller
                done = k + 1
                if ctl[0] != 0:  # the caller asks the loop to stop (an interrupt): out is left unfinished
                    return

    return advance_group


#: Dimensions up to this are frozen into the compiled kernel (see ``_advance_group``).
MAX_FROZEN_DIM = 8


def runners(step, d, m, n_params, matrix, drift, diffusion, gdg, fresh: bool = False):
    """``(run_generated, run_supplied, where)``: the loops for one step function and one set of
    user functions, specialised when small to the dimensions ``d`` (state) and ``m`` (Brownian
    motions) and the number of parameters. ``matrix``: the diffusion writes a ``(d, m)`` matrix
    (additive and general noise) rather than a ``(d,)`` vector.

    The user's functions are globals of a generated module (see :mod:`sde_scales.sde._cache`), kept
    on disk under a fingerprint of their code so that a later process reuses the compiled loop, and
    in memory under the same fingerprint so that re-created functions with the same code (a model
    that builds its closures on every call) reuse it too. ``where`` says which file (or memory)
    holds the loop. ``fresh``: build the module again rather than reuse this process's (after its
    files on disk were found damaged and deleted)."""
    gs = auto_group_size(m)
    frozen = d <= MAX_FROZEN_DIM and m <= MAX_FROZEN_DIM
    d, m = (int(d), int(m)) if frozen else (-1, -1)
    P = int(n_params) if 0 < n_params <= MAX_STACK_PARAMS else -1
    key = (step.py_func.__name__, d, m, gs, P, bool(matrix))
    functions = {"drift": drift, "diffusion": diffusion, "gdg": gdg, "step": step}
    try:
        memo = _cache.fingerprint(key, functions)
        disk = memo
    except _cache.Uncacheable as why:
        memo, disk = (key, id(drift), id(diffusion), id(gdg)), None
        why_text = str(why)
    if memo in _RUNNERS and not fresh:
        return _RUNNERS[memo]
    bindings = {"advance_generated": _advance_group(step, draw_generated, d, m, gs, P, matrix, drift, diffusion, gdg),
                "advance_supplied": _advance_group(step, draw_supplied, d, m, gs, P, matrix, drift, diffusion, gdg)}
    mod, where = _cache.loop_module(disk, bindings)
    if disk is None:
        # the ids in the key stay unique: the advance closures hold the functions alive
        where = f"{where}; not cached on disk: {why_text}"
    _RUNNERS[memo] = (mod.run_generated, mod.run_supplied, where)
    return _RUNNERS[memo]
