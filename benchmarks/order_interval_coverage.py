"""How often the bootstrap interval of a convergence order holds the order, against the number of paths.

Euler-Maruyama's strong order on geometric Brownian motion (levels 4-8, exact reference): the
slope of a 20,000-path study is the reference; for each path count, ``--studies`` independent
studies (seeds 0, 1, ...) each give a 95% percentile-bootstrap interval, and the script prints the
fraction that hold the reference. This is the measurement behind
:data:`sde_scales.sde.convergence.MIN_PATHS` (no interval below it); the counts run below it
through :func:`~sde_scales.sde.convergence.fit_order` with the path limit lifted.

    python benchmarks/order_interval_coverage.py                 # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paths", default="10,30,100", help="comma-separated path counts (default 10,30,100)")
    ap.add_argument("--studies", type=int, default=60, help="studies per path count (default 60)")
    args = ap.parse_args(argv)
    counts = [int(v) for v in args.paths.split(",")]
    if args.studies < 1 or min(counts) < 2:
        ap.error("give --studies >= 1 and path counts >= 2")
    from sde_scales.sde import EulerMaruyama, convergence, convergence_study
    from sde_scales.sde import testproblems as tp

    ex = tp.geometric_brownian_motion()
    ref = convergence_study(ex.problem, EulerMaruyama(), range(4, 9), 20000, seed=999, exact=ex.exact).strong.order
    print(f"reference strong order (20,000 paths): {ref:.4f}")
    limit = convergence.MIN_PATHS
    convergence.MIN_PATHS = 2  # measure below the limit too
    try:
        for n in counts:
            hits = 0
            for s in range(args.studies):
                lo, hi = convergence_study(ex.problem, EulerMaruyama(), range(4, 9), n, seed=s, exact=ex.exact).strong.ci
                hits += bool(lo <= ref <= hi)
            p = hits / args.studies
            print(f"{n:6d} paths: interval holds the reference in {hits}/{args.studies} studies ({p:.2f}, "
                  f"standard error {np.sqrt(p * (1 - p) / args.studies):.2f})")
    finally:
        convergence.MIN_PATHS = limit
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
