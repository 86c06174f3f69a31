"""The learning-rate-delay model: path-steps per second of ``DelayModel.simulate`` (exact updates
where the model is linear, one normal per path and reported time) against the previous method, the
embedded SDE (S_1, z_1..z_J, xi) integrated by Euler-Maruyama with the engine, in one process,
interleaved after a warm-up, at a dt where Euler-Maruyama is stable (dt well below the smallest
time scale), with every step reported by both. Also the error of each against the direct
convolution.

    python benchmarks/bench_delay.py [--paths 2000] [--T 4] [--dt 1e-3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from sde_scales.kernels import SumOfExponentials
from sde_scales.models.delay import DelayModel, direct_convolution
from sde_scales.schedules import PiecewiseLinear
from sde_scales.sde import EulerMaruyama, SaveAt, solve


def embedded_em(model: DelayModel, T: float, dt: float, n_paths: int, seed: int):
    """The previous method: the embedded SDE through the engine (Euler-Maruyama on every state,
    J + 2 normals per path-step of which one is used)."""
    soe, _ = model._sum_of_exponentials(T)
    prob = model.problem(T, soe)
    x0 = np.zeros((n_paths, prob.d))
    x0[:, -1] = np.random.default_rng(seed).standard_normal(n_paths)
    sol = solve(prob.with_x0(x0), EulerMaruyama(), dt, noise=seed, save_at=SaveAt(every=1))
    y = sol.x[:, 0, 1:1 + soe.taus.size] @ soe.weights
    return sol.t, y


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paths", type=int, default=2000)
    ap.add_argument("--T", type=float, default=4.0)
    ap.add_argument("--dt", type=float, default=1e-3)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    sched = PiecewiseLinear([0, 1.0, 1.0, 3.0], [1.0, 1.0, 0.5, 0.1])
    kernel = SumOfExponentials([0.02, 0.1, 0.5], [0.2, 0.5, 0.3])
    m = DelayModel(sched, kernel)
    steps = int(round(args.T / args.dt))
    work = args.paths * steps
    embedded_em(m, args.T, args.dt, 4, 0)  # warm-up (compile)
    m.simulate(args.T, args.dt, 4, 0)
    old, new = [], []
    for r in range(args.rounds):
        t = time.perf_counter()
        t_old, y_old = embedded_em(m, args.T, args.dt, args.paths, r)
        old.append(time.perf_counter() - t)
        t = time.perf_counter()
        res = m.simulate(args.T, args.dt, args.paths, r)
        new.append(time.perf_counter() - t)
    ratio = np.array(old) / np.array(new)
    ref_old = direct_convolution(kernel, sched, t_old[::100], eta_ref=m.eta_ref)
    ref_new = direct_convolution(kernel, sched, res.t[::100], eta_ref=m.eta_ref)
    print(f"{args.paths} paths x {steps} steps (dt {args.dt}), kernel scales {kernel.taus.tolist()}, "
          f"{args.rounds} interleaved rounds\n")
    print("| method | median s | path-steps / s | max error of y vs direct convolution |")
    print("|---|---|---|---|")
    print(f"| embedded SDE, Euler-Maruyama (before) | {np.median(old):.3f} | {work / np.median(old):.3g} | "
          f"{np.max(np.abs(y_old[::100] - ref_old)):.2e} |")
    print(f"| exact linear updates (now) | {np.median(new):.3f} | {work / np.median(new):.3g} | "
          f"{np.max(np.abs(res.y[::100] - ref_new)):.2e} |")
    q1, q3 = np.percentile(ratio, [25, 75])
    print(f"\nspeed-up, paired within a round: {np.median(ratio):.1f}x (IQR {q1:.1f}-{q3:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
