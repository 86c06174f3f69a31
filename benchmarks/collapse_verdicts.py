"""How often the supercollapse verdict is right on planted ladders (``sde-scales collapse``'s rule).

Planted ladders (``tests/test_collapse_table.py``'s ``ladder``: four sizes on one master curve
above L0 = 1, a per-run scale of ``--run-scale`` (1%) and ``--point-noise`` (0.002) noise on each
logged point, independent from one step to the next), ``--draws`` noise draws per number of
seeds; each judged as ``sde-scales collapse`` judges it (101 grid points, x0 = 0.2, a seed
bootstrap of ``--resamples``). A true collapse (bump 0) should never FAIL beyond the interval's
level; the largest size bent by ``--bump`` x (1 - x) should FAIL. Prints the verdict counts, how
often the point estimate of max Delta/sigma exceeds 1, and how often some size is said to leave
the others (``departures``; none does in a true collapse), how often the bent size does, and
how often a size that was not bent is said to leave (``others``).

    python benchmarks/collapse_verdicts.py --seeds 10,20,40 --draws 200
    python benchmarks/collapse_verdicts.py --seeds 10,20,40 --draws 200 --run-scale 0   # per-point noise alone
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="10,20,40")
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--bump", type=float, default=0.3)
    ap.add_argument("--resamples", type=int, default=400)
    ap.add_argument("--run-scale", type=float, default=0.01,
                    help="sd of each run's factor on its curve above L0 (default 0.01)")
    ap.add_argument("--point-noise", type=float, default=0.002,
                    help="sd of the noise of each logged point, independent from one step to the next (default 0.002)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from test_collapse_table import ladder

    from sde_scales.analysis.collapse import collapse_stats, normalise
    from sde_scales.analysis.collapse_table import curves_from_table

    print(f"{'seeds':>5s} {'ladder':>8s} {'PASS':>5s} {'INCONCL':>7s} {'FAIL':>5s} {'point > 1':>9s} {'departs':>7s} "
          f"{'bent leaves':>11s} {'others':>6s}   ({args.draws} draws)")
    for S in (int(v) for v in args.seeds.split(",")):
        for bump in (0.0, args.bump):
            c, above, departs, bent_leaves, others = Counter(), 0, 0, 0, 0
            for d in range(args.draws):
                curves = curves_from_table(ladder(S, seed=1000 + d, bump=bump, run=args.run_scale,
                                                  point=args.point_noise))
                start = max(cv.steps[0] / cv.steps[-1] for cv in curves)
                grid = np.linspace(start, 1.0, 101)
                r = collapse_stats(normalise(curves, 1.0, grid), grid, n_boot=args.resamples, seed=d)
                c[r.verdict.value] += 1
                above += r.ratio > 1
                departs += any(v is not None for v in r.departures.values())
                bent = max(r.departures)  # the ladder bends its largest size
                bent_leaves += r.departures[bent] is not None
                others += any(v is not None for w, v in r.departures.items() if w != bent)
            print(f"{S:5d} {'bent' if bump else 'true':>8s} {c['PASS']:5d} {c['INCONCLUSIVE']:7d} {c['FAIL']:5d} "
                  f"{above:9d} {departs:7d} {bent_leaves:11d} {others:6d}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
