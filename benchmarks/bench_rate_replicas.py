"""Cost of ``sde-scales rate``'s replica grouping: a table of one row per run at 7 widths, judged
with the run column (``replica="seed"``) and, as the baseline in the same process, as plain rows
(``replica=None``); best of 3 after one untimed call.

    python benchmarks/bench_rate_replicas.py [--runs 5000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5000, help="runs per width (default 5000)")
    args = ap.parse_args(argv)
    from sde_scales.rate_table import check_rate

    rng = np.random.default_rng(0)
    t = pd.concat([pd.DataFrame({"width": n, "seed": np.arange(args.runs),
                                 "w": rng.standard_normal(args.runs) / np.sqrt(n)})
                   for n in (64, 128, 256, 512, 1024, 2048, 4096)], ignore_index=True)
    seconds = {}
    for replica in (None, "seed"):
        check_rate(t, "Theta:-1/2", value="w", replica=replica, n_resamples=200)
        best = []
        for _ in range(3):
            start = time.perf_counter()
            check_rate(t, "Theta:-1/2", value="w", replica=replica, n_resamples=200)
            best.append(time.perf_counter() - start)
        seconds[replica] = min(best)
    print(f"{args.runs} runs x 7 widths: plain rows {seconds[None]:.3f} s; grouped by run {seconds['seed']:.3f} s "
          f"({seconds['seed'] / seconds[None]:.1f} x the plain rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
