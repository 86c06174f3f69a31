"""Engine speed in nanoseconds per path-step, as ratios measured in one process.

Problems
    A: 100,000 independent scalar OU paths x 1,000 steps.
    B: 64 replicas of a width-1,024 mean-field system dX_i = -(X_i - a mean(X)) dt + sigma dW_i,
       x 1,000 steps (a "path-step" is one coordinate moved one step: 64 x 1,024 per step).

Contenders, run interleaved (round-robin, ``--repeats`` rounds) after a warm-up:
    floor        one normal from a numpy Generator(SFC64) drawn in a jitted loop plus the OU
                 update: the cost of the random numbers themselves (one thread).
    solve/1t     sde_scales.solve with numba.set_num_threads(1).
    solve/2t     the same with 2 threads (or --threads).
    numpy        a numpy loop vectorised over paths (Generator.standard_normal(out=...)).
Compile time (first call of solve on a new problem) is reported separately.

    python benchmarks/bench_engine.py [--repeats 11] [--quick] [--markdown]
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import tempfile
import time

import numba
import numpy as np

from sde_scales import EulerMaruyama, SDEProblem, solve

THETA, MU, SIGMA = 2.0, 0.5, 0.8


@numba.njit
def ou_drift(t, x, p, out):
    out[0] = p[0] * (p[1] - x[0])


@numba.njit
def ou_diffusion(t, x, p, out):
    out[0] = p[2]


@numba.njit
def mf_drift(t, x, p, out):
    n = x.shape[0]
    s = 0.0
    for i in range(n):
        s += x[i]
    am = p[0] * s / n
    for i in range(n):
        out[i] = -(x[i] - am)


@numba.njit
def mf_diffusion(t, x, p, out):
    for i in range(out.shape[0]):
        out[i] = p[1]


@numba.njit
def floor_kernel(gen, x, n_steps, dt, theta, mu, sig):
    sq = np.sqrt(dt)
    for _ in range(n_steps):
        for p in range(x.shape[0]):
            x[p] += theta * (mu - x[p]) * dt + sig * sq * gen.standard_normal()


def numpy_ou(n_paths, n_steps, dt, seed):
    gen = np.random.Generator(np.random.SFC64(seed))
    x = np.full(n_paths, 1.0)
    z = np.empty(n_paths)
    sq = np.sqrt(dt)
    for _ in range(n_steps):
        gen.standard_normal(out=z)
        x += THETA * (MU - x) * dt + SIGMA * sq * z
    return x


def numpy_mf(n_rep, width, n_steps, dt, a, sigma, seed):
    gen = np.random.Generator(np.random.SFC64(seed))
    x = np.zeros((n_rep, width))
    z = np.empty((n_rep, width))
    sq = np.sqrt(dt)
    for _ in range(n_steps):
        gen.standard_normal(out=z)
        x += -(x - a * x.mean(axis=1, keepdims=True)) * dt + sigma * sq * z
    return x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=11, help="interleaved rounds (default 11)")
    ap.add_argument("--threads", type=int, default=2, help="thread count of the parallel run (default 2)")
    ap.add_argument("--quick", action="store_true", help="10x fewer paths (smoke run)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args(argv)

    n_a = 10_000 if args.quick else 100_000
    n_steps, dt = 1000, 1e-3
    ou = SDEProblem(ou_drift, ou_diffusion, x0=[1.0], tspan=(0.0, n_steps * dt), noise="diagonal",
                    params=[THETA, MU, SIGMA], name="ou")
    width, n_rep = 1024, 64
    mf = SDEProblem(mf_drift, mf_diffusion, x0=np.zeros(width), tspan=(0.0, n_steps * dt),
                    noise="diagonal", params=[0.5, 0.3], name="mean-field")

    # compile time: first call on a tiny ensemble, measured before anything else of its kind runs,
    # against an empty loop cache (a cached loop would be loaded, not compiled; see
    # bench_first_solve.py for that case)
    os.environ["SDE_SCALES_CACHE_DIR"] = loops = tempfile.mkdtemp(prefix="bench_engine_loops_")
    atexit.register(shutil.rmtree, loops, True)
    compile_s = {}
    for name, prob in (("A", ou), ("B", mf)):
        t = time.perf_counter()
        solve(prob, EulerMaruyama(), dt, n_paths=2, noise=0)
        compile_s[name] = time.perf_counter() - t
    gen = np.random.Generator(np.random.SFC64(1))
    xa = np.ones(n_a)
    t = time.perf_counter()
    floor_kernel(gen, xa[:8], 2, dt, THETA, MU, SIGMA)
    compile_s["floor"] = time.perf_counter() - t

    def run_solve(prob, n, threads):
        numba.set_num_threads(threads)
        solve(prob, EulerMaruyama(), dt, n_paths=n, noise=0)

    contenders = {
        ("A", "floor"): (lambda: floor_kernel(gen, xa, n_steps, dt, THETA, MU, SIGMA), n_a),
        ("A", "solve/1t"): (lambda: run_solve(ou, n_a, 1), n_a),
        ("A", f"solve/{args.threads}t"): (lambda: run_solve(ou, n_a, args.threads), n_a),
        ("A", "numpy"): (lambda: numpy_ou(n_a, n_steps, dt, 2), n_a),
        ("B", "solve/1t"): (lambda: run_solve(mf, n_rep, 1), n_rep * width),
        ("B", f"solve/{args.threads}t"): (lambda: run_solve(mf, n_rep, args.threads), n_rep * width),
        ("B", "numpy"): (lambda: numpy_mf(n_rep, width, n_steps, dt, 0.5, 0.3, 3), n_rep * width),
    }
    times = {k: [] for k in contenders}
    for fn, _ in contenders.values():  # warm-up round
        fn()
    for _ in range(args.repeats):
        for key, (fn, n) in contenders.items():
            t = time.perf_counter()
            fn()
            times[key].append((time.perf_counter() - t) / (n * n_steps) * 1e9)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

    med = {k: float(np.median(v)) for k, v in times.items()}
    mn = {k: float(np.min(v)) for k, v in times.items()}
    par = f"solve/{args.threads}t"

    def paired(num, den):
        """Ratio of two contenders within each round (both ran back to back, so a slow spell
        of the machine cancels): median and interquartile range over the rounds."""
        r = np.asarray(times[num]) / np.asarray(times[den])
        return float(np.median(r)), float(np.percentile(r, 25)), float(np.percentile(r, 75))

    ratios = {
        "A: solve/1t / floor (target <= 1.3)": paired(("A", "solve/1t"), ("A", "floor")),
        f"A: solve/1t / {par} (target >= 1.8)": paired(("A", "solve/1t"), ("A", par)),
        f"A: numpy / {par} (target >= 2)": paired(("A", "numpy"), ("A", par)),
        "A: numpy / solve/1t": paired(("A", "numpy"), ("A", "solve/1t")),
        f"B: solve/1t / {par}": paired(("B", "solve/1t"), ("B", par)),
        f"B: numpy / {par}": paired(("B", "numpy"), ("B", par)),
    }
    if args.markdown:
        print("| problem | contender | median ns/path-step | min ns/path-step |")
        print("|---|---|---|---|")
        for k in contenders:
            print(f"| {k[0]} | {k[1]} | {med[k]:.2f} | {mn[k]:.2f} |")
        print()
        print("| ratio (paired within a round) | median | interquartile range |")
        print("|---|---|---|")
        for k, (m, lo, hi) in ratios.items():
            print(f"| {k} | {m:.2f} | {lo:.2f}-{hi:.2f} |")
        print()
        print("| compile (first call) | seconds |")
        print("|---|---|")
        for k, v in compile_s.items():
            print(f"| {k} | {v:.2f} |")
    else:
        for k in contenders:
            print(f"{k[0]} {k[1]:>10}: median {med[k]:7.2f} ns/path-step (min {mn[k]:.2f})")
        for k, (m, lo, hi) in ratios.items():
            print(f"{k}: {m:.2f} (IQR {lo:.2f}-{hi:.2f})")
        for k, v in compile_s.items():
            print(f"compile {k}: {v:.2f} s")


if __name__ == "__main__":
    main()
