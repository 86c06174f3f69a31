"""Cost of a separation estimate (:func:`sde_scales.rates.exponent_difference`: the exponent of
the ratio of two spreads and each spread's own exponent, with bootstrap intervals) against one
fluctuation estimate of the first quantity on the same replicas, the baseline, in the same
process; best of 5 after one untimed call.

    python benchmarks/bench_separation.py [--replicas 256] [--resamples 2000]

A separation needs three exponents; one bootstrap drawing the resamples once and each replica's
two spreads computed once per resample makes it cost about what two spreads cost, where three
separate bootstraps computed four.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _best(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, default=256, help="replicas per width (default 256)")
    ap.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    args = ap.parse_args(argv)
    from sde_scales.rates import exponent_difference, fluctuation_exponent

    rng = np.random.default_rng(0)
    widths = np.array([64, 128, 256, 512, 1024, 2048], float)
    a = [rng.standard_normal(args.replicas) / n for n in widths]
    b = [rng.standard_normal(args.replicas) / np.sqrt(n) for n in widths]
    one = _best(lambda: fluctuation_exponent(widths, a, n_resamples=args.resamples))
    sep = _best(lambda: exponent_difference(widths, a, b, n_resamples=args.resamples))
    print(f"{args.replicas} replicas x {widths.size} widths, {args.resamples} resamples: one estimate {one:.3f} s; "
          f"separation {sep:.3f} s ({sep / one:.2f} x one estimate)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
