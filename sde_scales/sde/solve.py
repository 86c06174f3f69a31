"""``solve()``: one entry point assembled from a problem, a solver, a noise source and what to save.

See :func:`solve` for the parameters and ``README.md`` for a tour.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Literal

import numba
import numpy as np

from sde_scales.errors import BlowUpError, InvalidArgumentError, InvalidProblemError, SDEScalesError
from sde_scales.sde import _kernels as K
from sde_scales.sde.noise import BlockStreams, auto_block_size, auto_group_size
from sde_scales.sde.problem import SDEProblem
from sde_scales.sde.solvers import Solver

__all__ = ["BLOWUP_THRESHOLD", "SaveAt", "Solution", "solve", "n_steps_for"]

#: Default blow-up threshold of :func:`solve`: a state entry with |x| at or above it counts as blown
#: up. Past it, a product of two such entries overflows float64 (about 1.8e308), so no quantity a
#: drift or diffusion computes from it means anything; a path at 1e109 is a divergence, not data.
BLOWUP_THRESHOLD = 1e100


def n_steps_for(tspan: tuple[float, float], dt: float) -> int:
    """Number of steps of size ``dt`` covering ``tspan``; refuses a dt that does not divide it."""
    if not (np.isfinite(dt) and dt > 0):
        raise InvalidArgumentError(f"dt={dt!r}; the step size must be a positive finite number")
    span = tspan[1] - tspan[0]
    n = span / dt
    n_int = int(round(n))
    if n < 1 - 1e-9:
        raise InvalidArgumentError(f"dt={dt!r} is longer than the time span {tspan}; use dt <= {span!r} "
                                   f"(dt={span!r} is one step)")
    if n_int < 1 or abs(n - n_int) > 1e-9 * max(1.0, n):
        lo, hi = max(1, int(np.floor(n))), int(np.ceil(n))
        raise InvalidArgumentError(
            f"dt={dt!r} does not divide the time span {tspan} ({n:.6g} steps); use "
            f"dt={span / hi!r} ({hi} steps) or dt={span / lo!r} ({lo} steps)"
        )
    return n_int


@dataclass(frozen=True)
class SaveAt:
    """Which times to keep. Default: only the final state, so memory does not grow with steps.

    Parameters
    ----------
    t : array_like, optional
        Times to keep; each must lie on the step grid ``t0 + k * dt`` (within 1e-9 steps).
    every : int, optional
        Keep every ``every``-th step (and ``t0``).
    t0 : bool
        Also keep the initial state (when ``t`` is not given).
    """

    t: np.ndarray | None = None
    every: int | None = None
    t0: bool = False

    def __post_init__(self) -> None:
        if self.t is not None and self.every is not None:
            raise InvalidArgumentError("SaveAt got both t and every; give one of them")
        if self.every is not None and int(self.every) < 1:
            raise InvalidArgumentError(f"SaveAt(every={self.every}); use a positive number of steps")
        if self.t is not None:
            t = np.atleast_1d(np.asarray(self.t, dtype=np.float64))
            if t.size == 0 or not np.all(np.isfinite(t)):
                raise InvalidArgumentError(f"SaveAt(t={self.t!r}); give finite times")
            if np.any(np.diff(t) <= 0):
                i = int(np.argmax(np.diff(t) <= 0))
                raise InvalidArgumentError(
                    f"SaveAt times must increase strictly; t[{i}]={t[i]} is followed by t[{i + 1}]={t[i + 1]}. "
                    f"Sort them and drop duplicates (np.unique)"
                )
            object.__setattr__(self, "t", t)

    def steps(self, tspan: tuple[float, float], dt: float, n_steps: int) -> np.ndarray:
        """Step indices (0 = initial state) to keep, sorted."""
        if self.every is not None:
            steps = np.arange(0, n_steps + 1, int(self.every))
            if steps[-1] != n_steps:
                steps = np.append(steps, n_steps)
            return steps.astype(np.int64)
        if self.t is None:
            return np.array([0, n_steps] if self.t0 else [n_steps], dtype=np.int64)
        k = (self.t - tspan[0]) / dt
        ki = np.rint(k).astype(np.int64)
        bad = np.abs(k - ki) > 1e-9 * np.maximum(1.0, np.abs(k))
        bad |= (ki < 0) | (ki > n_steps)
        if bad.any():
            i = int(np.argmax(bad))
            raise InvalidArgumentError(
                f"SaveAt time t={self.t[i]!r} is not on the step grid t0 + k*dt of tspan={tspan}, dt={dt}; "
                f"use times t0 + k*dt with 0 <= k <= {n_steps}"
            )
        return ki


@dataclass(frozen=True)
class Solution:
    """What :func:`solve` returns.

    Attributes
    ----------
    t : ndarray, shape (n_save,)
    x : ndarray, shape (n_save, n_paths, d)
        Saved states; NaN for paths that blew up (``on_blowup="mask"``) from their blow-up on.
    diverged : ndarray of bool, shape (n_paths,)
    blowup_step : ndarray of int, shape (n_paths,)
        0 where finite, else the 1-based step after which the path was first non-finite.
    """

    t: np.ndarray
    x: np.ndarray
    blowup_step: np.ndarray
    dt: float
    n_steps: int
    solver: Solver
    seed: int | None
    block_size: int
    wall_seconds: float
    info: dict = field(default_factory=dict)

    @property
    def diverged(self) -> np.ndarray:
        return self.blowup_step > 0

    @property
    def n_diverged(self) -> int:
        return int(np.count_nonzero(self.blowup_step))

    @property
    def valid(self) -> np.ndarray:
        """Boolean mask of paths that stayed finite."""
        return self.blowup_step == 0

    @property
    def final(self) -> np.ndarray:
        """Final states of the paths that stayed finite, shape (n_valid, d)."""
        return self.x[-1][self.valid]


_SIGNATURES = {1: "void(float64, float64[::1], float64[::1], float64[::1])",
               2: "void(float64, float64[::1], float64[::1], float64[:, ::1])"}


def _typing_error(problem: SDEProblem, gdg, exc) -> InvalidProblemError:
    """Find which user function numba could not type (each compiled alone, only on this error path),
    and say so with numba's own report of the line."""
    fns = [("drift", problem.drift, 1), ("diffusion", problem.diffusion, len(problem.diffusion_shape))]
    if gdg is not K.no_gdg:
        fns.append(("gdg", gdg, 1))
    for name, fn, nd in fns:
        try:
            numba.njit(_SIGNATURES[nd])(getattr(fn, "py_func", fn))
        except numba.core.errors.TypingError as inner:
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(inner))  # numba colours its report for terminals
            detail = "\n".join(line for line in text.strip().splitlines() if line.strip())[:1500]
            return InvalidProblemError(
                f"numba cannot compile the {name} of problem {problem.name!r}; use numpy and math on floats and "
                f"arrays, and call only @numba.njit functions from it. Numba says:\n{detail}")
    return InvalidProblemError(f"numba cannot compile problem {problem.name!r} with this solver: "
                               f"{str(exc).strip()[:1500]}")


def _with_bounds_checks(problem: SDEProblem) -> SDEProblem:
    from dataclasses import replace

    def bc(fn):
        return None if fn is None else numba.njit(boundscheck=True)(getattr(fn, "py_func", fn))

    return replace(problem, drift=bc(problem.drift), diffusion=bc(problem.diffusion), gdg=bc(problem.gdg),
                   m=problem.m if problem.noise.matrix_diffusion else None)


def _check_dW(dW: np.ndarray, n_steps: int, n_paths: int | None, m: int) -> np.ndarray:
    dW = np.asarray(dW, dtype=np.float64)
    if dW.ndim == 2 and m == 1:
        dW = dW[:, :, None]
    if dW.ndim != 3 or dW.shape[0] != n_steps or dW.shape[2] != m or (n_paths is not None and dW.shape[1] != n_paths):
        want = f"({n_steps}, {n_paths if n_paths is not None else 'n_paths'}, {m})"
        raise InvalidArgumentError(
            f"dW has shape {dW.shape}; expected (n_steps, n_paths, m) = {want} for this dt and problem"
        )
    if not np.all(np.isfinite(dW)):
        k, p, j = (int(i) for i in np.argwhere(~np.isfinite(dW))[0])
        raise InvalidArgumentError(f"dW[{k}, {p}, {j}] = {dW[k, p, j]} is not finite; supply finite increments")
    return np.ascontiguousarray(dW)


def solve(
    problem: SDEProblem,
    solver: Solver,
    dt: float,
    n_paths: int | None = None,
    seed: int | np.random.SeedSequence | None = None,
    save_at: SaveAt | None = None,
    *,
    dW: np.ndarray | None = None,
    block_size: int | None = None,
    path_offset: int = 0,
    on_blowup: Literal["raise", "mask"] = "raise",
    blowup_threshold: float = BLOWUP_THRESHOLD,
    debug: bool = False,
) -> Solution:
    r"""Integrate ``problem`` with ``solver`` at fixed step ``dt`` for ``n_paths`` paths.

    Parameters
    ----------
    problem : SDEProblem
    solver : Solver
        ``EulerMaruyama()`` or ``Milstein()``.
    dt : float
        Step size; must divide ``tspan`` into a whole number of steps.
    n_paths : int
        Number of paths. Implied by a per-path ``x0`` or by ``dW``.
    seed : int or SeedSequence
        Required unless ``dW`` is given. Path ``p`` draws from the stream of block
        ``(path_offset + p) // block_size``; see :class:`~sde_scales.sde.noise.BlockStreams`.
    save_at : SaveAt, optional
        Default: the final state only.
    dW : ndarray, optional
        User-supplied Brownian increments of shape ``(n_steps, n_paths, m)`` (e.g. from
        :class:`~sde_scales.sde.noise.BrownianPath`, to compare with an exact solution driven by
        the same path). Replaces ``seed``.
    block_size : int, optional
        Paths per random stream; default :func:`~sde_scales.sde.noise.auto_block_size`.
    path_offset : int
        Global index of the first path, so that an ensemble split over several calls (or
        workers) gives the same numbers as one call. Must be a multiple of ``block_size``.
    on_blowup : {"raise", "mask"}
        ``"raise"``: a path that becomes NaN, infinite or larger than ``blowup_threshold`` in
        absolute value raises :class:`BlowUpError` naming the path, the step and the time.
        ``"mask"``: such paths are set to NaN from then on and counted in ``Solution.n_diverged``;
        use ``Solution.valid`` to exclude them.
    blowup_threshold : float
        ``|x|`` at or above this counts as a blow-up in both modes (default
        :data:`BLOWUP_THRESHOLD` = 1e100); ``inf`` flags only NaN and infinite values.
    debug : bool
        Compile the problem's functions with Numba's bounds checks on (slower): an index out of
        range inside them then raises :class:`InvalidProblemError` instead of reading or writing
        another path's memory.

    Returns
    -------
    Solution

    Raises
    ------
    InvalidArgumentError, InvalidProblemError, BlowUpError
    """
    if not isinstance(problem, SDEProblem):
        raise InvalidArgumentError(f"problem={problem!r}; pass an sde_scales.SDEProblem")
    if not isinstance(solver, Solver):
        raise InvalidArgumentError(f"solver={solver!r}; pass EulerMaruyama() or Milstein()")
    if on_blowup not in ("raise", "mask"):
        raise InvalidArgumentError(f"on_blowup={on_blowup!r}; use 'raise' or 'mask'")
    if not (isinstance(blowup_threshold, (int, float)) and blowup_threshold > 0) or np.isnan(blowup_threshold):
        raise InvalidArgumentError(f"blowup_threshold={blowup_threshold!r}; give a positive number (inf: only NaN/inf)")
    if dW is not None and seed is not None:
        raise InvalidArgumentError("both seed and dW were given; dW supplies the noise, so a seed would be ignored "
                                   "(and recorded wrongly): pass one of them")
    if debug:
        problem = _with_bounds_checks(problem)
    run_generated, run_supplied = K.runners(solver.step_function(problem), problem.d, problem.m,
                                            problem.params.shape[0], problem.noise.matrix_diffusion)
    gdg = problem.gdg if getattr(solver, "uses_gdg", lambda p: False)(problem) else K.no_gdg
    n_steps = n_steps_for(problem.tspan, dt)
    save_at = SaveAt() if save_at is None else save_at
    if not isinstance(save_at, SaveAt):
        raise InvalidArgumentError(f"save_at={save_at!r}; pass a SaveAt(...)")
    save_steps = save_at.steps(problem.tspan, dt, n_steps)

    implied = []
    if problem.per_path_x0:
        implied.append(("x0", problem.x0.shape[0]))
    if dW is not None:
        dW = _check_dW(dW, n_steps, None, problem.m)
        implied.append(("dW", dW.shape[1]))
    if n_paths is None:
        if not implied:
            raise InvalidArgumentError("n_paths is missing; pass n_paths=... (or a per-path x0 or dW)")
        n_paths = implied[0][1]
    if isinstance(n_paths, bool) or not isinstance(n_paths, (int, np.integer)) or n_paths < 1:
        raise InvalidArgumentError(f"n_paths={n_paths!r}; use a positive integer")
    n_paths = int(n_paths)
    for what, n in implied:
        if n != n_paths:
            raise InvalidArgumentError(f"n_paths={n_paths} but {what} holds {n} paths; make them agree")
    gs = auto_group_size(problem.m)
    bs = auto_block_size(problem.m) if block_size is None else int(block_size)
    if bs < 1 or bs % gs:
        raise InvalidArgumentError(
            f"block_size={block_size}; use a positive multiple of the group size {gs} "
            f"(8 // m for m={problem.m}), e.g. {auto_block_size(problem.m)}"
        )

    x0 = problem.x0 if problem.per_path_x0 else problem.x0[None, :]
    out = np.empty((save_steps.size, n_paths, problem.d))
    status = np.zeros(n_paths, dtype=np.int64)
    gshape = problem.diffusion_shape
    t0 = problem.tspan[0]
    if dW is None and seed is None:
        raise InvalidArgumentError("seed is missing; pass seed=<int> (or dW=...) so the run can be reproduced")
    if dW is not None and path_offset:
        raise InvalidArgumentError("path_offset applies to generated noise; with dW, slice dW instead")
    started = time.perf_counter()
    args = (x0, n_paths, bs, gs, problem.m, problem.params, t0, dt, n_steps, save_steps, out, status, gshape,
            float(blowup_threshold))
    try:
        if dW is None:
            gens = BlockStreams(seed, bs).generators(n_paths, path_offset)
            run_generated(problem.drift, problem.diffusion, gdg, gens, *args)
        else:
            run_supplied(problem.drift, problem.diffusion, gdg, dW, *args)
    except numba.core.errors.TypingError as exc:
        raise _typing_error(problem, gdg, exc) from exc
    except (IndexError, SystemError, ValueError, ArithmeticError, RuntimeError) as exc:
        if isinstance(exc, SDEScalesError):
            raise
        # an exception raised inside the parallel loop surfaces as SystemError with the original chained
        orig = exc
        while isinstance(orig, SystemError) and (orig.__cause__ or orig.__context__) is not None:
            orig = orig.__cause__ or orig.__context__
        raise InvalidProblemError(
            f"the drift, diffusion or gdg of problem {problem.name!r} raised {type(orig).__name__} during the solve "
            f"with {solver!r}, dt={dt}: {orig}"
            + (" (an index out of range, caught by debug=True)" if isinstance(orig, IndexError) else "")
        ) from orig
    wall = time.perf_counter() - started

    if status.any() and on_blowup == "raise":
        dead = np.flatnonzero(status)
        first = dead[np.lexsort((dead, status[dead]))[0]]
        k = int(status[first])
        raise BlowUpError(
            f"path {first + path_offset} of problem {problem.name!r} became NaN/inf or passed |x| >= "
            f"{blowup_threshold:g} at step {k} "
            f"(t = {t0 + k * dt:.6g}) with {solver!r}, dt={dt}; {dead.size} of {n_paths} paths blew up. "
            f"Reduce dt, check the drift/diffusion for growth, or pass on_blowup='mask' to keep the "
            f"finite paths",
            path=int(first + path_offset), step=k, time=t0 + k * dt, n_diverged=int(dead.size),
        )
    seed_int = None if seed is None or isinstance(seed, np.random.SeedSequence) else int(seed)
    return Solution(
        t=t0 + save_steps * dt, x=out, blowup_step=status, dt=float(dt), n_steps=n_steps, solver=solver,
        seed=seed_int, block_size=bs, wall_seconds=wall,
    )
