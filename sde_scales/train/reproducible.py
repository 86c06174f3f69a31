r"""Numbers that do not depend on the CPU thread count.

A GEMM whose library splits its reduction (the inner dimension) across threads sums in another
order for another thread count, and float32 sums differ in the last bits; a training run amplifies
that. Which shapes a library splits depends on the library and the CPU: the trainer's GEMM layouts
were chosen so that none was split on an AVX2 machine, and on an AVX-512 machine with torch's
MKL 2024.2 the input layer's forward GEMM, :math:`(Kn \times d_{in})(d_{in} \times B)`, was split
(the README's sweep differed by up to 1e-4 relative between one and two threads).

MKL's strict conditional numerical reproducibility (``MKL_CBWR=AUTO,STRICT``, MKL 2019 update 3
and later) makes its GEMMs independent of the thread count. MKL reads the variable at its first
call, so :mod:`sde_scales.train` sets it, unless the environment already does, when it is
imported, before it imports torch. Measured on the README's sweep (2 threads): 4.33 s with it
against 4.44 s without, the same numbers with one thread and two.

That cannot be guaranteed from here: torch may have run a GEMM before :mod:`sde_scales.train` was
imported, torch may use another BLAS (OpenBLAS, Accelerate), or the variable may be set to
something else. :func:`ensure_thread_invariance` therefore checks in those cases (a few GEMMs of
the trainer's shapes at one thread and at the current count, about 30 ms, once per process and
thread count) and, where they differ, trains on one thread and warns. Where the mode was set before
torch was imported and torch's BLAS is MKL, it relies on MKL's guarantee and probes nothing.
"""

from __future__ import annotations

import os
import warnings

#: What :mod:`sde_scales.train` sets ``MKL_CBWR`` to when the environment has no value for it.
MKL_CBWR = "AUTO,STRICT"

#: (m, k, n) of the probe's GEMMs: the input layer's forward product at the README's sizes
#: (K n = 384 rows, d_in = 3072, batch 128), a longer reduction with fewer outputs (the shapes a
#: library is likeliest to split along k), and a square one.
PROBE_SHAPES = ((384, 3072, 128), (64, 8192, 64), (256, 1024, 256))

_checked: dict[int, bool] = {}


class ThreadCountWarning(UserWarning):
    """The CPU's GEMMs give other numbers on other thread counts; training runs on one thread."""


#: Whether MKL's strict mode was in the environment before torch could have run a product: set by
#: :func:`set_reproducible_blas` while torch was not yet imported, or a strict value the process
#: started with. Then the probe is not needed where torch's BLAS is MKL.
_strict_from_start = False


def set_reproducible_blas() -> None:
    """Set ``MKL_CBWR`` to :data:`MKL_CBWR` unless the environment has a value (called on import of
    :mod:`sde_scales.train`, before torch is imported by it), and note whether the strict mode was
    in place before torch was imported."""
    global _strict_from_start
    import sys

    had = os.environ.get("MKL_CBWR")
    os.environ.setdefault("MKL_CBWR", MKL_CBWR)
    _strict_from_start = (had is not None and "STRICT" in had.upper()) or (had is None and "torch" not in sys.modules)


def gemms_thread_invariant() -> bool:
    """Whether ``torch.mm`` and ``torch.bmm`` of :data:`PROBE_SHAPES` give bit-identical results on
    one thread and on torch's current thread count (True with one thread). Cached per count."""
    import torch

    n = torch.get_num_threads()
    if n <= 1:
        return True
    if n not in _checked:
        g = torch.Generator().manual_seed(0)
        same = True
        try:
            for m, k, b in PROBE_SHAPES:
                a, x = torch.randn(m, k, generator=g), torch.randn(k, b, generator=g)
                stacked = (a.view(4, m // 4, k), x.expand(4, k, b))
                torch.set_num_threads(1)
                one = (torch.mm(a, x), torch.bmm(*stacked))
                torch.set_num_threads(n)
                many = (torch.mm(a, x), torch.bmm(*stacked))
                same = same and all(torch.equal(u, v) for u, v in zip(one, many))
        finally:
            torch.set_num_threads(n)
        _checked[n] = same
    return _checked[n]


#: torch's elementwise functions that it computes with MKL's vector math library (VML) and that the
#: trainer uses (its losses' softmax exponentials, RMS square roots) or a task may (tanh, log).
VML_FUNCTIONS = ("exp", "log", "sqrt", "tanh", "log1p", "expm1")

_vml_ready = False


def warm_up_vml() -> None:
    """Call each of :data:`VML_FUNCTIONS` once, on this thread, on a tensor too small for torch to
    split across threads (float32 and float64), once per process.

    Why: the first call of a VML function in a process, made from two of torch's threads at once,
    sometimes computed one thread's share differently. Measured with a `/tmp` script on the
    step-0 softmax of a two-member stack (2 threads, fresh processes): ``exp_`` of the
    log-probabilities gave other values in the second member's rows (up to 1.2e-4 relative) in 7
    of 48 processes, and the same values in 48 of 48 after one call of ``exp`` on 16 numbers here.
    It showed as a step-0 ``eval_grad_norm`` of a sweep that differed from another sweep's of the
    same seed. Every later call agreed: only the first, parallel one raced with what VML sets up on
    first use."""
    global _vml_ready
    if _vml_ready:
        return
    import torch

    for dtype in (torch.float32, torch.float64):
        x = torch.linspace(0.5, 1.5, 16, dtype=dtype)
        for name in VML_FUNCTIONS:
            getattr(torch, name)(x)
    _vml_ready = True


def ensure_thread_invariance() -> None:
    """Train on one thread, with a :class:`ThreadCountWarning`, where the CPU's GEMMs depend on the
    thread count (:func:`gemms_thread_invariant`): the toolkit's promise is the same numbers for the
    same seed whatever the thread count, and one thread keeps it at a cost in speed.

    Where MKL is torch's BLAS and its strict mode was set before torch was imported, the products
    are invariant by MKL's guarantee and nothing is probed: the probe sets torch's thread count, and
    any call of ``torch.set_num_threads``, even to the count it had, slowed ``sde-scales verify
    --quick`` from 106 s to 122-131 s on a 2-core machine (torch's and Numba's OpenMP threads)."""
    import torch

    warm_up_vml()
    if _strict_from_start and torch.backends.mkl.is_available():
        return
    if gemms_thread_invariant():
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    warnings.warn(f"torch's CPU matrix products give other numbers on {n} threads than on one (MKL_CBWR="
                  f"{os.environ.get('MKL_CBWR')!r}; torch's BLAS may have been used before sde_scales.train was "
                  f"imported, or is not MKL), so a run's numbers would depend on the thread count: training runs "
                  f"on one thread. To use {n}: import sde_scales.train before torch computes anything, or set "
                  f"MKL_CBWR={MKL_CBWR} in the environment", ThreadCountWarning, stacklevel=3)
