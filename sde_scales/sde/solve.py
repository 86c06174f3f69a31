"""``solve()``: one entry point assembled from a problem, a solver, a noise source and what to save.

See :func:`solve` for the parameters and ``README.md`` for a tour.
"""

from __future__ import annotations

import re
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numba
import numpy as np

from sde_scales.errors import BlowUpError, InvalidArgumentError, InvalidProblemError, SDEScalesError, UnstableStepError
from sde_scales.sde import _cache
from sde_scales.sde import _loop as K
from sde_scales.sde import probes
from sde_scales.sde.noise import BlockStreams, BrownianPath, Increments, Noise, as_noise, auto_block_size, auto_group_size
from sde_scales.sde.problem import SDEProblem
from sde_scales.sde.solvers import Solver
from sde_scales.validation import check_memory, is_whole, real_array

__all__ = ["BLOWUP_THRESHOLD", "SaveAt", "Solution", "solve", "n_steps_for"]

#: Default blow-up threshold of :func:`solve`: a state entry with |x| at or above it counts as blown
#: up. Past it, a product of two such entries overflows float64 (about 1.8e308), so no quantity a
#: drift or diffusion computes from it means anything; a path at 1e109 is a divergence, not data.
BLOWUP_THRESHOLD = 1e100

#: Path-steps (paths x steps) from which :func:`solve` runs its loop in a worker thread, so that
#: the calling thread stays free to take an interrupt (Ctrl-C) and to draw a progress bar. Below
#: it a solve takes milliseconds (about 2e6 path-steps at 2-4 ns each), where starting a thread
#: (about 0.1 ms) would be a cost with nothing to gain.
THREADED_PATH_STEPS = 2_000_000


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
        if self.every is not None and not is_whole(self.every, 1):
            raise InvalidArgumentError(f"SaveAt(every={self.every!r}); use a positive whole number of steps")
        if self.t is not None:
            t = np.atleast_1d(real_array(self.t, "SaveAt(t)"))
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
                f"SaveAt time t={float(self.t[i])!r} is not on the step grid t0 + k*dt of tspan={tspan}, dt={dt}; "
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
    info : dict
        ``loop``: the file of the compiled loop (:mod:`sde_scales.sde._cache`), or why it lives in
        memory only; ``loop_compile``: ``"compiled"``, ``"loaded from the disk cache"`` or
        ``"reused in this process"``. ``wall_seconds`` includes any compile.
    """

    t: np.ndarray
    x: np.ndarray
    blowup_step: np.ndarray
    dt: float
    n_steps: int
    solver: Solver
    noise: Noise
    block_size: int
    wall_seconds: float
    info: dict = field(default_factory=dict)

    @property
    def seed(self) -> np.random.SeedSequence | None:
        """The seed of generated streams (None for supplied increments)."""
        return self.noise.seed if isinstance(self.noise, BlockStreams) else None

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


def _run_loop(loop, args: tuple, n_blocks: int, path_steps: int, name: str, progress: bool | None) -> None:
    """Run a compiled solve loop on ``args`` with a fresh control array for its ``n_blocks`` stream
    blocks (``_loop``'s module docstring): in this thread for small solves, else in a worker thread
    while this one follows its progress and takes interrupts. An interrupt sets the loop's stop
    flag, waits for the loop to return (within 64 steps of every group) and is raised again; an
    exception of the loop is raised here as it would be without the thread."""
    ctl = np.zeros(1 + n_blocks, dtype=np.int64)
    here = threading.current_thread() is threading.main_thread()
    if path_steps < THREADED_PATH_STEPS or not (here or progress):
        loop(*args, ctl)
        return
    from tqdm.auto import tqdm

    failed: list[BaseException] = []
    threads = numba.get_num_threads()  # Numba's thread count is per thread: the caller's, not the default

    def work():
        try:
            numba.set_num_threads(threads)
            loop(*args, ctl)
        except BaseException as exc:  # raised again in the calling thread
            failed.append(exc)

    worker = threading.Thread(target=work, name=f"sde-scales solve {name}", daemon=True)
    with tqdm(total=int(path_steps), desc=f"solve {name}", unit="path-step", unit_scale=True,
              disable=None if progress is None else not progress, delay=2.0 if progress is None else 0.0,
              leave=bool(progress)) as bar:
        worker.start()
        try:
            done = False
            while not done:  # the last count after the loop has returned (it may return before a first look)
                worker.join(0.25)
                done = not worker.is_alive()
                bar.update(int(ctl[1:].sum()) - bar.n)
        except KeyboardInterrupt:
            ctl[0] = 1  # every group returns at its next check
            worker.join()
            raise
    if failed:
        raise failed[0]


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


def _check_memory(nbytes: int, what: str, fix: str) -> None:
    split = "split the ensemble over calls with noise=BlockStreams(seed, path_offset=...), which gives the same numbers"
    check_memory(nbytes, what, f"{fix}, or {split}" if fix else split)


def solve(
    problem: SDEProblem,
    solver: Solver,
    dt: float,
    n_paths: int | None = None,
    noise: Noise | int | np.random.SeedSequence | np.ndarray | None = None,
    save_at: SaveAt | None = None,
    *,
    on_blowup: Literal["raise", "mask"] = "raise",
    blowup_threshold: float = BLOWUP_THRESHOLD,
    debug: bool = False,
    progress: bool | None = None,
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
        Number of paths. Implied by a per-path ``x0`` or by supplied increments.
    noise : int, SeedSequence, ndarray or Noise
        What drives the paths (:mod:`sde_scales.sde.noise`):

        * an int or ``SeedSequence``: streams generated in the loop,
          ``BlockStreams(seed)``; path ``p`` draws from the stream of block
          ``(path_offset + p) // block_size``. ``BlockStreams(seed, block_size=..., path_offset=...)``
          splits an ensemble over calls or workers with the same numbers as one call;
        * an array of increments ``(n_steps, n_paths, m)``, or ``Increments(dW)``;
        * a :class:`~sde_scales.sde.noise.BrownianPath` over the problem's time span, whose
          increments are summed to this dt (the same path at every dyadic dt: convergence studies).
    save_at : SaveAt, optional
        Default: the final state only.
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
    progress : bool or None
        A progress bar (tqdm, on standard error, in path-steps). None (default): one for a solve
        that lasts over 2 seconds, where standard error is a terminal; True: always; False: never.

    Interrupts: a solve of at least :data:`THREADED_PATH_STEPS` path-steps runs its loop in a
    worker thread, and an interrupt (Ctrl-C) of the calling thread stops the loop within 64 steps
    of every path group and is raised from ``solve`` (no result). The numbers are those of a solve
    in the calling thread: only who waits for the loop changes.

    Returns
    -------
    Solution

    Raises
    ------
    InvalidArgumentError, InvalidProblemError, BlowUpError
        :class:`UnstableStepError` (an ``InvalidArgumentError``) where ``dt`` lies outside the
        explicit step's stability region for a decaying mode of the drift: at the initial state at
        any of 17 times over the span, before the solve
        (:func:`sde_scales.sde.probes.step_instability`), or, after it, in the final state of a
        typical path among the ensemble's first paths
        (:func:`sde_scales.sde.probes.state_instability`). Such a solve stays finite over a short
        span and would return numbers that have nothing to do with the SDE.
    """
    if not isinstance(problem, SDEProblem):
        raise InvalidArgumentError(f"problem={problem!r}; pass an sde_scales.SDEProblem")
    if not isinstance(solver, Solver):
        raise InvalidArgumentError(f"solver={solver!r}; pass EulerMaruyama() or Milstein()")
    if progress not in (None, True, False):
        raise InvalidArgumentError(f"progress={progress!r}; use True, False or None (a bar on a terminal for long solves)")
    if on_blowup not in ("raise", "mask"):
        raise InvalidArgumentError(f"on_blowup={on_blowup!r}; use 'raise' or 'mask'")
    if not (isinstance(blowup_threshold, (int, float)) and blowup_threshold > 0) or np.isnan(blowup_threshold):
        raise InvalidArgumentError(f"blowup_threshold={blowup_threshold!r}; give a positive number (inf: only NaN/inf)")
    noise = as_noise(noise)
    if debug:
        problem = _with_bounds_checks(problem)
    n_steps = n_steps_for(problem.tspan, dt)
    if solver.explicit_drift:  # before the loop is compiled: a refused dt costs no compilation
        unstable = probes.step_instability(problem, float(dt))
        if unstable is not None:
            raise UnstableStepError(f"{problem.name}: {unstable}")
    gdg = problem.gdg if solver.uses_gdg(problem) else K.no_gdg
    loop_spec = (solver.step_function(problem), problem.d, problem.m, problem.params.shape[0],
                 problem.noise.matrix_diffusion, problem.drift, problem.diffusion, gdg)
    run_generated, run_supplied, loop_file = K.runners(*loop_spec)
    save_at = SaveAt() if save_at is None else save_at
    if not isinstance(save_at, SaveAt):
        raise InvalidArgumentError(f"save_at={save_at!r}; pass a SaveAt(...)")
    save_steps = save_at.steps(problem.tspan, dt, n_steps)

    implied = []
    if problem.per_path_x0:
        implied.append(("x0", problem.x0.shape[0]))
    if noise.implied_paths() is not None:
        implied.append(("noise", noise.implied_paths()))
    if n_paths is None:
        if not implied:
            raise InvalidArgumentError("n_paths is missing; pass n_paths=... (or a per-path x0 or increments)")
        n_paths = implied[0][1]
    if not is_whole(n_paths, 1):
        raise InvalidArgumentError(f"n_paths={n_paths!r}; use a positive integer")
    n_paths = int(n_paths)
    for what, n in implied:
        if n != n_paths:
            raise InvalidArgumentError(f"n_paths={n_paths} but {what} holds {n} paths; make them agree")
    _check_memory(save_steps.size * n_paths * problem.d * 8, f"the saved states ({save_steps.size} times x {n_paths} "
                  f"paths x {problem.d} dimensions)",
                  "save fewer times (SaveAt(every=k), or the final state only)" if save_steps.size > 1 else "")
    if isinstance(noise, BrownianPath):  # its increments are summed into an array; the others hold or draw them
        _check_memory(n_steps * n_paths * problem.m * 8, f"the Brownian increments ({n_steps} steps x {n_paths} paths "
                      f"x {problem.m} motions)", "use noise=seed (increments generated in the loop, no array)")
    gs = auto_group_size(problem.m)
    dW = None
    if isinstance(noise, BlockStreams):
        noise = noise.for_problem(problem.m)
        bs, path_offset = noise.block_size, noise.path_offset
    else:
        if isinstance(noise, BrownianPath) and noise.m != problem.m:
            raise InvalidArgumentError(f"the Brownian path has m={noise.m} motions but problem {problem.name!r} "
                                       f"needs m={problem.m}; build BrownianPath(..., m={problem.m})")
        dW = (noise.for_problem(n_steps, problem.m) if isinstance(noise, Increments)
              else noise.increments(problem.tspan, dt, n_paths))
        bs, path_offset = auto_block_size(problem.m), 0

    x0 = problem.x0 if problem.per_path_x0 else problem.x0[None, :]
    out = np.empty((save_steps.size, n_paths, problem.d))
    status = np.zeros(n_paths, dtype=np.int64)
    gshape = problem.diffusion_shape
    t0 = problem.tspan[0]
    run = run_generated if dW is None else run_supplied
    n_sigs, n_hits = len(run.signatures), sum(run.stats.cache_hits.values())
    started = time.perf_counter()
    args = (x0, n_paths, bs, gs, problem.m, problem.params, t0, dt, n_steps, save_steps, out, status, gshape,
            float(blowup_threshold))

    def call(run_generated, run_supplied):
        work = (-(-n_paths // bs), n_paths * n_steps, problem.name, progress)
        if dW is None:
            _run_loop(run_generated, (noise.generators(n_paths), *args), *work)
        else:
            _run_loop(run_supplied, (dW, *args), *work)

    try:
        try:
            call(run_generated, run_supplied)
        except numba.core.errors.TypingError:
            raise
        except Exception as exc:
            # a loop that neither compiled nor loaded, from a file of the disk cache: Numba's files
            # for it are damaged (a process killed while writing them, a full disk). They made every
            # later solve of the problem fail, blaming the drift; delete them and compile once more
            if (len(run.signatures) > n_sigs or not _cache.has_compiled(loop_file, (run,))
                    or not _cache.purge(loop_file, (run,))):
                raise
            warnings.warn(f"the compiled loop cached in {loop_file} could not be loaded ({type(exc).__name__}: "
                          f"{exc}); its files were deleted and the loop compiled again", _cache.LoopCacheWarning,
                          stacklevel=2)
            run_generated, run_supplied, loop_file = K.runners(*loop_spec, fresh=True)
            run = run_generated if dW is None else run_supplied
            n_sigs, n_hits = len(run.signatures), sum(run.stats.cache_hits.values())
            status[:] = 0
            call(run_generated, run_supplied)
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
    if sum(run.stats.cache_hits.values()) > n_hits:
        compiled = "loaded from the disk cache"
    elif len(run.signatures) > n_sigs:
        compiled = "compiled"
    else:
        compiled = "reused in this process"
    info = {"loop": loop_file, "loop_compile": compiled}

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
    if solver.explicit_drift and save_steps[-1] > 0:
        # where the paths went: a stiffness that grows with the state is not seen before the solve
        late = probes.state_instability(problem, float(dt), float(t0 + save_steps[-1] * dt), out[-1], path_offset)
        if late is not None:
            raise UnstableStepError(f"{problem.name}: {late}")
    return Solution(
        t=t0 + save_steps * dt, x=out, blowup_step=status, dt=float(dt), n_steps=n_steps, solver=solver,
        noise=noise, block_size=bs, wall_seconds=wall, info=info,
    )
