"""How often the spike check names a row at the ends of a log: false alarms at the steep start of
a run, and planted spikes found in the first and last rows.

Planted curves (truth known): a loss falling steeply through a 700-step warmup,
``2 + 3 (1 + s/50)^-0.5 + 9 exp(-s/60)`` plus Gaussian noise 0.05, logged every 20, 50, 100 and
200 steps from step 0 (the initial loss, row 0, is left out as the fits leave it out); and a gently
falling curve ``2 + (1 + s/5000)^-0.5`` with noise 0.01, logged every 10 steps, with a spike of 0.5
(50 noise levels) planted in one of its first or last three rows.

    python benchmarks/spike_edges.py [--draws 20]
"""

from __future__ import annotations

import argparse

import numpy as np

from sde_scales.fitting.curves import LossCurve


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=20, help="noise draws per case (default 20)")
    args = ap.parse_args(argv)
    print("steep start: logs (of --draws) with a row named a spike after the initial loss")
    for every in (20, 50, 100, 200):
        named = 0
        for seed in range(args.draws):
            s = np.arange(0, 20_000, every)
            lr = np.minimum(1.0, (s + 1) / 700) * 6e-4
            rng = np.random.default_rng([every, seed])
            y = 2 + 3 * (1 + s / 50) ** -0.5 + 9 * np.exp(-s / 60) + 0.05 * rng.standard_normal(s.size)
            c = LossCurve(s, lr, y, name="steep")
            named += c.spike_rows(int(s[c.untrained_rows()])).size > 0
        print(f"  every {every:3d} steps: {named} of {args.draws}")
    print("planted spike of 50 noise levels: found (alone) in how many of --draws")
    t = np.arange(10, 5010, 10)
    for row in (0, 1, 2, -3, -2, -1):
        found = 0
        for seed in range(args.draws):
            rng = np.random.default_rng([7, seed])
            y = 2 + (1 + t / 5000) ** -0.5 + 0.01 * rng.standard_normal(t.size)
            y[row] += 0.5
            found += LossCurve(t, np.full(t.size, 1e-3), y, name="s").spike_rows().tolist() == [row % t.size]
        print(f"  row {row:2d}: {found} of {args.draws}")


if __name__ == "__main__":
    main()
