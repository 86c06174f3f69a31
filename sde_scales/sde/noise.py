r"""Brownian increments from ``numpy.random.SeedSequence`` streams.

Two sources:

:class:`BlockStreams`
    The default for :func:`~sde_scales.sde.solve.solve`: block ``b`` of ``block_size``
    consecutive global path indices gets its own ``Generator(SFC64)`` seeded by the child
    ``SeedSequence(entropy, spawn_key=(b,))``. A path's numbers therefore depend only on the seed,
    the block size and its global index: not on the thread count, the order in which blocks are
    run, or how a large ensemble is split into several calls (``path_offset``).

:class:`BrownianPath`
    Increments on a fine grid of ``2**levels`` steps, summed to any coarser dyadic grid, so that
    one Brownian path can be integrated at every ``dt = T / 2**k`` (convergence studies) and
    compared with an exact solution driven by the same :math:`W(T)`. Generated in chunks of
    paths so that memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numba
import numpy as np
from numba.typed import List

from sde_scales.errors import InvalidArgumentError

__all__ = ["BlockStreams", "BrownianPath", "as_seed_sequence", "auto_block_size", "auto_group_size"]

#: Normals per group and step (see ``sde_scales.sde._kernels``): a short run of draws followed by
#: the steps of a few independent paths was fastest when measured (8 to 16; 64 is 10% slower).
_NORMALS_PER_GROUP = 8
#: Normals per stream block and step: large enough that creating one Generator per block
#: (about 20 us) is negligible next to the work, small enough to give threads many blocks.
_NORMALS_PER_BLOCK = 256


def as_seed_sequence(seed: int | np.random.SeedSequence | None) -> np.random.SeedSequence:
    """A ``SeedSequence`` from an int (or one passed through). ``None`` is refused: the
    toolkit never draws unseeded numbers, so every result can be reproduced."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        raise InvalidArgumentError("seed=None; pass an integer seed (e.g. seed=0) so results can be reproduced")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgumentError(f"seed={seed!r}; pass a non-negative integer or a numpy SeedSequence")
    return np.random.SeedSequence(int(seed))


def auto_group_size(m: int) -> int:
    """Paths per group for ``m`` Brownian motions: ``max(1, 8 // m)``."""
    return max(1, _NORMALS_PER_GROUP // max(1, int(m)))


def auto_block_size(m: int) -> int:
    """Paths per random stream for ``m`` Brownian motions: a multiple of the group size with
    about 256 normals per step (256 paths for m = 1, one path for m >= 256).

    A function of the problem only (never of the thread count), so that results are reproducible.
    """
    gs = auto_group_size(m)
    return gs * max(1, _NORMALS_PER_BLOCK // (gs * max(1, int(m))))


_GEN_TYPE = None


def _generator_type():  # numba type of a Generator, computed once
    global _GEN_TYPE
    if _GEN_TYPE is None:
        _GEN_TYPE = numba.typeof(np.random.Generator(np.random.SFC64(0)))
    return _GEN_TYPE


@dataclass(frozen=True)
class BlockStreams:
    """One ``Generator(SFC64)`` per block of ``block_size`` paths, from one seed.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
    block_size : int
        Paths per stream. Results depend on it (it fixes which numbers each path receives), so
        it is part of what must be kept equal to reproduce a run.
    """

    seed: int | np.random.SeedSequence
    block_size: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", as_seed_sequence(self.seed))
        if int(self.block_size) < 1:
            raise InvalidArgumentError(f"block_size={self.block_size}; use a positive integer")

    def block_seed(self, b: int) -> np.random.SeedSequence:
        """The child ``SeedSequence`` of global block ``b`` (same as ``seed.spawn(b + 1)[b]``)."""
        ss = self.seed
        return np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (int(b),),
                                      pool_size=ss.pool_size)

    def generator(self, b: int) -> np.random.Generator:
        return np.random.Generator(np.random.SFC64(self.block_seed(b)))

    def generators(self, n_paths: int, path_offset: int = 0) -> List:
        """A Numba typed list with the generators of the blocks covering the requested paths."""
        if path_offset % self.block_size:
            raise InvalidArgumentError(
                f"path_offset={path_offset} is not a multiple of block_size={self.block_size}; "
                f"split ensembles at multiples of the block size so each path keeps its numbers"
            )
        first = path_offset // self.block_size
        n_blocks = -(-int(n_paths) // self.block_size)
        out = List.empty_list(_generator_type())
        for b in range(first, first + n_blocks):
            out.append(self.generator(b))
        return out


@dataclass(frozen=True)
class BrownianPath:
    """Brownian increments on ``2**levels`` fine steps over ``[t0, t1]``, reusable at coarser dt.

    ``increments(level, paths)`` returns the increments on the grid of ``2**level`` steps for the
    given slice of paths: sums of ``2**(levels - level)`` consecutive fine increments, so every
    grid sees the same path. The fine increments of path chunk ``c`` (``chunk`` paths) come from
    their own child stream, so any chunk can be regenerated alone.

    Parameters
    ----------
    seed : int or SeedSequence
    t0, t1 : float
    levels : int
        The fine grid has ``2**levels`` steps.
    m : int
        Number of Brownian motions.
    chunk : int
        Paths per chunk (memory is ``2**levels * chunk * m`` doubles per chunk).
    """

    seed: int | np.random.SeedSequence
    t0: float
    t1: float
    levels: int
    m: int = 1
    chunk: int = 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", as_seed_sequence(self.seed))
        if not (0 <= int(self.levels) <= 24):
            raise InvalidArgumentError(f"levels={self.levels}; use 0..24 (the fine grid has 2**levels steps)")
        if not self.t1 > self.t0:
            raise InvalidArgumentError(f"[t0, t1] = [{self.t0}, {self.t1}] is empty; need t1 > t0")
        if self.m < 1 or self.chunk < 1:
            raise InvalidArgumentError(f"m={self.m}, chunk={self.chunk}; both must be positive")

    @property
    def n_fine(self) -> int:
        return 2 ** int(self.levels)

    def dt(self, level: int) -> float:
        return (self.t1 - self.t0) / 2**level

    def fine_chunk(self, c: int, n: int) -> np.ndarray:
        """Fine increments ``(n_fine, n, m)`` of chunk ``c`` (its first ``n`` paths)."""
        ss = np.random.SeedSequence(self.seed.entropy, spawn_key=tuple(self.seed.spawn_key) + (int(c),))
        gen = np.random.Generator(np.random.SFC64(ss))
        z = gen.standard_normal((self.n_fine, self.chunk, self.m))[:, :n, :]
        return np.ascontiguousarray(z) * np.sqrt(self.dt(self.levels))

    @staticmethod
    def coarsen(fine: np.ndarray, factor: int) -> np.ndarray:
        """Sum consecutive groups of ``factor`` increments along axis 0."""
        n = fine.shape[0] // factor
        return fine.reshape(n, factor, *fine.shape[1:]).sum(axis=1)

    def chunks(self, n_paths: int) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(path_slice, fine_increments)`` chunk by chunk."""
        for c in range(-(-int(n_paths) // self.chunk)):
            lo = c * self.chunk
            n = min(self.chunk, n_paths - lo)
            yield slice(lo, lo + n), self.fine_chunk(c, n)
