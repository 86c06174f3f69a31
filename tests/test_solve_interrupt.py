"""A long solve can be interrupted and followed: its loop checks a control array every 64 steps of
every path group (stop flag, progress in path-steps), and ``solve`` runs large loops in a worker
thread so that the calling thread takes Ctrl-C and draws the progress bar."""

import _thread
import importlib
import signal
import threading
import time

import numba
import numpy as np
import pytest

from sde_scales import EulerMaruyama, InvalidArgumentError, solve
from sde_scales.sde import _loop as K
from sde_scales.sde import testproblems as tp

S = importlib.import_module("sde_scales.sde.solve")  # the module (the package exports the function under its name)

main_thread_only = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                      reason="interrupts reach the main thread only")


def _captured_loop(monkeypatch, problem, dt, n_paths, seed):
    """Solve once, keeping the compiled loop and its arguments (without the control array)."""
    seen = {}
    real = S._run_loop

    def keep(loop, args, *rest):
        seen.update(loop=loop, args=args)
        real(loop, args, *rest)

    monkeypatch.setattr(S, "_run_loop", keep)
    solve(problem, EulerMaruyama(), dt, n_paths=n_paths, noise=seed)
    return seen["loop"], seen["args"]


def test_the_loop_counts_every_path_step_and_stops_at_its_first_check_when_asked(monkeypatch):
    problem = tp.ornstein_uhlenbeck(T=1.0).problem
    n_paths, dt = 1000, 1e-3  # 1,000 steps: 15 checks of 64 steps and the last step
    loop, args = _captured_loop(monkeypatch, problem, dt, n_paths, 5)
    gens, x0, _, bs, gs, *rest = args
    n_steps = rest[4]
    assert n_steps == 1000
    blocks = -(-n_paths // bs)

    ctl = np.zeros(1 + blocks, dtype=np.int64)
    loop(*args, ctl)  # a whole run: every block's count is its paths times the steps
    per_block = [min(bs, n_paths - b * bs) * n_steps for b in range(blocks)]
    assert ctl[1:].tolist() == per_block and ctl[0] == 0

    out, status = np.full_like(args[11], -7.0), np.zeros_like(args[12])
    stopped = (*args[:11], out, status, *args[13:])
    ctl = np.zeros(1 + blocks, dtype=np.int64)
    ctl[0] = 1  # asked to stop before it starts: every group returns at its first check, step 64
    loop(*stopped, ctl)
    assert ctl[1:].tolist() == [min(bs, n_paths - b * bs) * (K.CHECK_MASK + 1) for b in range(blocks)]
    assert (out == -7.0).all()  # the final state was never reached, so never written


def test_a_threaded_solve_gives_the_numbers_of_one_in_the_calling_thread(monkeypatch):
    problem = tp.commuting_linear_general().problem
    ref = solve(problem, EulerMaruyama(), 0.01, n_paths=3000, noise=11)
    monkeypatch.setattr(S, "THREADED_PATH_STEPS", 0)  # every solve in a worker thread
    seen = []
    real = S._run_loop
    monkeypatch.setattr(S, "_run_loop", lambda *a: (seen.append(a[3]), real(*a)))
    threaded = solve(problem, EulerMaruyama(), 0.01, n_paths=3000, noise=11)
    assert seen == [3000 * 100]  # path-steps: the solve went through the worker thread
    np.testing.assert_array_equal(ref.x, threaded.x)


def test_the_worker_thread_keeps_the_callers_thread_count_and_raises_the_loops_errors(monkeypatch):
    monkeypatch.setattr(S, "THREADED_PATH_STEPS", 0)
    where = {}

    def loop(gens, ctl):
        where.update(thread=threading.current_thread(), threads=numba.get_num_threads(), ctl=ctl.size)
        ctl[1] = 10

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        S._run_loop(loop, ([object(), object()],), 2, 10, "probe", False)
    finally:
        numba.set_num_threads(before)
    assert where["thread"] is not threading.current_thread() or threading.current_thread() is not threading.main_thread()
    assert where["threads"] == 1 and where["ctl"] == 3  # the stop flag and one count per block

    def failing(gens, ctl):
        raise ValueError("index 3 out of range")

    with pytest.raises(ValueError, match="index 3 out of range"):
        S._run_loop(failing, ([object()],), 1, 10, "probe", False)


@main_thread_only
def test_an_interrupt_stops_a_long_solve_at_once_and_is_raised(monkeypatch):
    problem = tp.ornstein_uhlenbeck(T=1.0).problem
    solve(problem, EulerMaruyama(), 1e-3, n_paths=1000, noise=1)  # compiled before the clock starts
    # 4e5 paths x 1e5 steps = 4e10 path-steps: at the fastest rate measured here (about 2 ns per
    # path-step on 2 threads, benchmarks/RESULTS.md) the solve alone takes over a minute; stopped,
    # it returns within 64 steps of each group once the interrupt lands, 0.3 s into the loop. The
    # clock starts with the loop, not before the set-up (the 400,000 paths' generators), which on a
    # loaded machine took longer than 0.3 s, so that the interrupt landed before the loop it tests.
    timer = threading.Timer(0.3, _thread.interrupt_main)
    real = S._run_loop

    def clock_with_the_loop(*args, **kwargs):
        timer.start()
        return real(*args, **kwargs)

    monkeypatch.setattr(S, "_run_loop", clock_with_the_loop)
    # Python's own handler, so that the simulated Ctrl-C raises: a process started in the background
    # of a non-interactive shell (as CI may run the tests) inherits SIGINT ignored, and then
    # interrupt_main does nothing
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            solve(problem, EulerMaruyama(), 1e-5, n_paths=400_000, noise=1, progress=False)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, handler)
    assert time.perf_counter() - started < 10.0  # a sixth of the uninterrupted solve at its fastest


def test_progress_bar_on_request_and_bad_values_refused(monkeypatch, capsys):
    problem = tp.ornstein_uhlenbeck(T=1.0).problem
    monkeypatch.setattr(S, "THREADED_PATH_STEPS", 0)
    solve(problem, EulerMaruyama(), 1e-2, n_paths=500, noise=1, progress=True)
    err = capsys.readouterr().err
    assert "solve ou" in err and "50.0k/50.0k" in err  # 500 paths x 100 steps, all done
    solve(problem, EulerMaruyama(), 1e-2, n_paths=500, noise=1, progress=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(InvalidArgumentError, match="progress='yes'"):
        solve(problem, EulerMaruyama(), 1e-2, n_paths=500, noise=1, progress="yes")
