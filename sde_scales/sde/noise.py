r"""The noise a solve is driven by: one object passed as ``solve(..., noise=...)``.

Three sources, all subclasses of :class:`Noise` (as diffrax and torchsde pass one Brownian object):

:class:`BlockStreams` (also what a plain integer seed means)
    Generated in the compiled loop: block ``b`` of ``block_size`` consecutive global path indices
    gets its own ``Generator(SFC64)`` seeded by the child ``SeedSequence(entropy, spawn_key=(b,))``.
    A path's numbers therefore depend only on the seed, the block size and its global index: not
    on the thread count, the order in which blocks are run, or how a large ensemble is split into
    several calls (``path_offset``).

:class:`Increments`
    Brownian increments supplied by the user, shape ``(n_steps, n_paths, m)``.

:class:`BrownianPath`
    Increments on a fine grid of ``2**levels`` steps, summed to any coarser dyadic grid, so that
    one Brownian path can be integrated at every ``dt = T / 2**k`` (convergence studies) and
    compared with an exact solution driven by the same :math:`W(T)`. Generated in chunks of
    paths so that memory stays bounded.

:func:`as_noise` turns what a user passes (an int, a ``SeedSequence``, an array or one of these)
into one of them, with the error that names the fix otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numba
import numpy as np
from numba.typed import List

from sde_scales import seeds
from sde_scales.errors import InvalidArgumentError
from sde_scales.validation import is_whole, real_array

__all__ = ["BlockStreams", "BrownianPath", "Increments", "Noise", "as_noise", "as_seed_sequence", "auto_block_size",
           "auto_group_size"]

#: Normals per group and step (see ``sde_scales.sde._loop``): a short run of draws followed by
#: the steps of a few independent paths was fastest when measured (8 to 16; 64 is 10% slower).
_NORMALS_PER_GROUP = 8
#: Normals per stream block and step: large enough that creating one Generator per block
#: (about 20 us) is negligible next to the work, small enough to give threads many blocks.
_NORMALS_PER_BLOCK = 256


#: An int or ``SeedSequence`` as a ``SeedSequence`` (None refused); see :mod:`sde_scales.seeds`.
as_seed_sequence = seeds.root


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


class Noise:
    """Base class of the noise sources :func:`~sde_scales.sde.solve.solve` accepts."""

    def implied_paths(self) -> int | None:
        """Paths this source fixes by itself (None: as many as the solve asks for)."""
        return None


@dataclass(frozen=True)
class BlockStreams(Noise):
    """One ``Generator(SFC64)`` per block of ``block_size`` paths, from one seed.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
    block_size : int, optional
        Paths per stream; default :func:`auto_block_size` of the problem's ``m`` (a function of the
        problem only, never of the thread count). Results depend on it (it fixes which numbers
        each path receives), so it is part of what must be kept equal to reproduce a run.
    path_offset : int
        Global index of the first path, so that an ensemble split over several calls (or
        workers) gives the same numbers as one call. Must be a multiple of ``block_size``.
    """

    seed: int | np.random.SeedSequence
    block_size: int | None = None
    path_offset: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", as_seed_sequence(self.seed))
        if self.block_size is not None and (isinstance(self.block_size, bool) or int(self.block_size) < 1):
            raise InvalidArgumentError(f"block_size={self.block_size}; use a positive integer")
        if isinstance(self.path_offset, bool) or int(self.path_offset) < 0:
            raise InvalidArgumentError(f"path_offset={self.path_offset}; use a non-negative integer")
        if self.block_size is not None:
            self._check_offset(int(self.block_size))

    def _check_offset(self, bs: int) -> None:
        if self.path_offset % bs:
            raise InvalidArgumentError(
                f"path_offset={self.path_offset} is not a multiple of block_size={bs}; "
                f"split ensembles at multiples of the block size so each path keeps its numbers")

    def for_problem(self, m: int) -> "BlockStreams":
        """This source with its block size fixed for ``m`` Brownian motions, checked against the
        group size the loop uses."""
        gs = auto_group_size(m)
        bs = auto_block_size(m) if self.block_size is None else int(self.block_size)
        if bs % gs:
            raise InvalidArgumentError(
                f"block_size={self.block_size}; use a positive multiple of the group size {gs} "
                f"(8 // m for m={m}), e.g. {auto_block_size(m)}")
        self._check_offset(bs)
        return BlockStreams(self.seed, bs, self.path_offset)

    def block_seed(self, b: int) -> np.random.SeedSequence:
        """The child ``SeedSequence`` of global block ``b`` (same as ``seed.spawn(b + 1)[b]``)."""
        ss = self.seed
        return np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (int(b),),
                                      pool_size=ss.pool_size)

    def generator(self, b: int) -> np.random.Generator:
        return np.random.Generator(np.random.SFC64(self.block_seed(b)))

    def generators(self, n_paths: int) -> List:
        """A Numba typed list with the generators of the blocks covering paths ``path_offset ..
        path_offset + n_paths``."""
        if self.block_size is None:
            raise InvalidArgumentError("block_size is not fixed yet; call for_problem(m) first")
        path_offset = self.path_offset
        first = path_offset // self.block_size
        n_blocks = -(-int(n_paths) // self.block_size)
        out = _new_list(self.generator(first))
        for b in range(first + 1, first + n_blocks):
            _append(out, self.generator(b))
        return out


# Building the typed list through these cached functions (rather than List.empty_list and
# List.append, which Numba compiles afresh in every process) keeps a solve whose loop is in the
# disk cache free of compiling: about 0.4 s less for the first solve of a process.
@numba.njit(cache=True)
def _new_list(first):
    out = List()
    out.append(first)
    return out


@numba.njit(cache=True)
def _append(out, gen):
    out.append(gen)


@dataclass(frozen=True)
class Increments(Noise):
    """Brownian increments supplied by the user.

    Parameters
    ----------
    dW : array_like, shape (n_steps, n_paths, m)
        The increment of each Brownian motion over each step; ``(n_steps, n_paths)`` is accepted
        for m = 1. Checked against the problem and dt by the solve; must be finite.
    """

    dW: np.ndarray

    def __post_init__(self) -> None:
        dW = np.asarray(self.dW, dtype=np.float64)
        if dW.ndim not in (2, 3):
            raise InvalidArgumentError(f"dW has shape {dW.shape}; expected (n_steps, n_paths, m)")
        if not np.all(np.isfinite(dW)):
            at = tuple(int(i) for i in np.argwhere(~np.isfinite(dW))[0])
            raise InvalidArgumentError(f"dW[{', '.join(map(str, at))}] = {dW[at]} is not finite; supply finite "
                                       f"increments")
        object.__setattr__(self, "dW", dW)

    def implied_paths(self) -> int:
        return int(self.dW.shape[1])

    def for_problem(self, n_steps: int, m: int) -> np.ndarray:
        """The increments as a contiguous ``(n_steps, n_paths, m)`` array, checked."""
        dW = self.dW[:, :, None] if self.dW.ndim == 2 and m == 1 else self.dW
        if dW.ndim != 3 or dW.shape[0] != n_steps or dW.shape[2] != m:
            raise InvalidArgumentError(
                f"dW has shape {self.dW.shape}; expected (n_steps, n_paths, m) = ({n_steps}, n_paths, {m}) "
                f"for this dt and problem")
        return np.ascontiguousarray(dW)


def as_noise(noise) -> Noise:
    """What ``solve(..., noise=...)`` accepts, as a :class:`Noise`: an int or ``SeedSequence``
    (generated streams, :class:`BlockStreams`), an array of increments (:class:`Increments`), or a
    :class:`Noise` object."""
    if isinstance(noise, Noise):
        return noise
    if noise is None:
        raise InvalidArgumentError("noise is missing; pass noise=<int seed> (or a BlockStreams, Increments or "
                                   "BrownianPath) so the run can be reproduced")
    if isinstance(noise, (int, np.integer, np.random.SeedSequence)) and not isinstance(noise, (bool, np.bool_)):
        return BlockStreams(noise)
    if isinstance(noise, (np.ndarray, list, tuple)):
        return Increments(noise)
    raise InvalidArgumentError(
        f"noise={noise!r}; pass a non-negative int seed, a numpy SeedSequence, an array of increments "
        f"(n_steps, n_paths, m), or a BlockStreams, Increments or BrownianPath")


@dataclass(frozen=True)
class BrownianPath(Noise):
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
        Paths per random stream: which numbers each path receives, so part of what must be kept
        equal to reproduce a study (like :class:`BlockStreams`' block size). Memory is bounded
        separately by the ``batch`` of :meth:`chunks`.
    """

    seed: int | np.random.SeedSequence
    t0: float
    t1: float
    levels: int
    m: int = 1
    chunk: int = 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", as_seed_sequence(self.seed))
        if not (is_whole(self.levels, 0) and self.levels <= 24):
            raise InvalidArgumentError(f"levels={self.levels!r}; use a whole number 0..24 (the fine grid has 2**levels "
                                       f"steps)")
        ends = {name: real_array(getattr(self, name), name) for name in ("t0", "t1")}
        if any(v.ndim != 0 for v in ends.values()):
            raise InvalidArgumentError(f"t0={self.t0!r}, t1={self.t1!r}; give each as one number (BrownianPath(seed, "
                                       f"t0, t1, levels))")
        for name, v in ends.items():
            object.__setattr__(self, name, float(v))
        if not (np.isfinite(self.t0) and np.isfinite(self.t1) and self.t1 > self.t0):
            raise InvalidArgumentError(f"[t0, t1] = [{self.t0}, {self.t1}] is empty or not finite; need finite t1 > t0")
        if not (is_whole(self.m, 1) and is_whole(self.chunk, 1)):
            raise InvalidArgumentError(f"m={self.m!r}, chunk={self.chunk!r}; both must be whole numbers >= 1")

    @property
    def n_fine(self) -> int:
        return 2 ** int(self.levels)

    def dt(self, level: int) -> float:
        return (self.t1 - self.t0) / 2**level

    def _stream(self, c: int) -> np.random.Generator:
        """The random stream of chunk ``c``."""
        ss = np.random.SeedSequence(self.seed.entropy, spawn_key=tuple(self.seed.spawn_key) + (int(c),))
        return np.random.Generator(np.random.SFC64(ss))

    def fine_chunk(self, c: int, n: int) -> np.ndarray:
        """Fine increments ``(n_fine, n, m)`` of chunk ``c`` (its first ``n`` paths)."""
        z = self._stream(c).standard_normal((self.n_fine, self.chunk, self.m))[:, :n, :]
        return np.ascontiguousarray(z) * np.sqrt(self.dt(self.levels))

    @staticmethod
    def coarsen(fine: np.ndarray, factor: int) -> np.ndarray:
        """Sum consecutive groups of ``factor`` increments along axis 0."""
        n = fine.shape[0] // factor
        return fine.reshape(n, factor, *fine.shape[1:]).sum(axis=1)

    def increments(self, tspan: tuple[float, float], dt: float, n_paths: int) -> np.ndarray:
        """The increments of paths ``0 .. n_paths`` on the grid of step ``dt`` over ``tspan``,
        which must be this path's interval and a dyadic refinement ``(t1 - t0) / 2**k``,
        ``k <= levels``."""
        tol = 1e-9 * (self.t1 - self.t0)  # relative to the span: np.isclose's absolute 1e-8 matched any two short spans
        if not (abs(tspan[0] - self.t0) <= tol and abs(tspan[1] - self.t1) <= tol):
            raise InvalidArgumentError(f"the Brownian path covers [{self.t0}, {self.t1}] but the problem's tspan is "
                                       f"{tuple(tspan)}; build BrownianPath over the problem's time span")
        k = float(np.log2((self.t1 - self.t0) / dt))
        level = int(round(k))
        if abs(k - level) > 1e-9 or not 0 <= level <= self.levels:
            raise InvalidArgumentError(
                f"dt={dt!r} is not (t1 - t0) / 2**k for 0 <= k <= {self.levels}; the Brownian path has increments "
                f"on those grids only (e.g. dt={self.dt(self.levels)!r})")
        parts = [self.coarsen(fine, 2 ** (self.levels - level)) for _, fine in self.chunks(n_paths)]
        return np.concatenate(parts, axis=1)

    def fine_paths(self, lo: int, hi: int) -> np.ndarray:
        """Fine increments ``(n_fine, hi - lo, m)`` of paths ``lo .. hi - 1``: the same numbers
        for a path whichever range it is asked in. A range inside one chunk's stream is drawn
        step by step (the stream's normals in the same order as :meth:`fine_chunk`), keeping
        only its own paths: memory ``n_fine * (hi - lo) * m`` doubles, at the cost of drawing
        the whole chunk's numbers."""
        lo, hi = int(lo), int(hi)
        if not 0 <= lo < hi:
            raise InvalidArgumentError(f"paths {lo}..{hi}; give 0 <= lo < hi")
        parts = []
        for c in range(lo // self.chunk, -(-hi // self.chunk)):
            a, b = max(lo - c * self.chunk, 0), min(hi - c * self.chunk, self.chunk)
            if a == 0 and b == self.chunk:
                parts.append(self.fine_chunk(c, b))
                continue
            gen = self._stream(c)
            z = np.empty((self.n_fine, b - a, self.m))
            for k in range(self.n_fine):  # normals drawn row by row are the ones one call draws
                z[k] = gen.standard_normal((self.chunk, self.m))[a:b]
            parts.append(z * np.sqrt(self.dt(self.levels)))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def chunks(self, n_paths: int, batch: int | None = None) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(path_slice, fine_increments)`` in batches of ``batch`` paths (default: one
        chunk). The increments of each path do not depend on ``batch``: it only bounds memory."""
        if batch is not None and (isinstance(batch, bool) or not float(batch).is_integer() or batch < 1):
            raise InvalidArgumentError(f"batch={batch!r}; give a positive whole number of paths")
        batch = self.chunk if batch is None else int(batch)
        if not is_whole(n_paths, 1):
            raise InvalidArgumentError(f"n_paths={n_paths!r}; give a whole number of paths >= 1")
        n_paths = int(n_paths)
        for lo in range(0, n_paths, batch):
            hi = min(lo + batch, n_paths)
            if batch == self.chunk:
                yield slice(lo, hi), self.fine_chunk(lo // self.chunk, hi - lo)
            else:
                yield slice(lo, hi), self.fine_paths(lo, hi)
