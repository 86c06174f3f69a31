"""Wall time of ``--law auto``'s cross-validation (:func:`sde_scales.fitting.report.choose_law`)
in one process against the same in a pool of worker processes, on planted curves, in one run.

Five per-step-logged curves (every 10 steps, 20,000 steps: constant, cosine, two WSDs, a step
decay), drawn from the exponential kernel law with noise 0.02, leave-one-curve-out over all nine
candidates: 45 fits. The baseline is ``workers=1`` in this process; each pool size is timed after
it, and the choice and every fold's RMSE are checked to agree with the baseline's (same numbers for
any worker count).

    python benchmarks/bench_auto_workers.py [--workers 2,4]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def planted_curves():
    from sde_scales.fitting import KernelLaw, LossCurve, ScheduleFeatures
    from sde_scales.fitting.curves import ScheduleSpec

    law, theta = KernelLaw(kernel="exp", time="steps"), np.array([2.0, 3.0, 0.5, 0.5, 3.0])
    base = dict(total=20000, peak=1e-3, warmup=200)
    specs = {"const": ScheduleSpec(**base, decay="constant"),
             "cos": ScheduleSpec(**base, decay="cosine", end=1e-4),
             "wsd20": ScheduleSpec(**base, decay="linear", decay_start=16000),
             "wsd50": ScheduleSpec(**base, decay="linear", decay_start=10000),
             "step": ScheduleSpec(**base, decay="step", decay_start=12000, end=3e-4)}
    out = []
    for i, (name, spec) in enumerate(specs.items()):
        lr = spec.expand()
        steps = np.arange(10, lr.size, 10)
        c = LossCurve(steps, lr[steps], np.ones(steps.size), name=name).with_schedule(lr)
        f = ScheduleFeatures.build(c, steps, 1e-3)
        y = law.predict(theta, f) + 0.02 * np.random.default_rng(i).standard_normal(steps.size)
        out.append(LossCurve(steps, lr[steps], y, name=name).with_schedule(lr))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="2", help="comma-separated pool sizes to time against one process (default 2)")
    args = ap.parse_args(argv)
    from sde_scales.fitting.report import choose_law

    curves = planted_curves()
    pools = [int(w) for w in args.workers.split(",")]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for w in [1] + pools:
            t0 = time.perf_counter()
            auto = choose_law(curves, skip_steps=500, smooth_steps=1000, workers=w)
            rows.append((w, time.perf_counter() - t0, auto))
    base_secs, base = rows[0][1], rows[0][2]
    print(f"{'workers':>7s} {'seconds':>8s} {'speed-up':>8s}  same result")
    for w, secs, auto in rows:
        same = auto["chosen"] == base["chosen"] and all(
            np.isclose(fa["rmse"], fb["rmse"], rtol=1e-9)
            for a, b in zip(auto["candidates"], base["candidates"]) for fa, fb in zip(a["folds"], b["folds"]))
        print(f"{w:7d} {secs:8.1f} {base_secs / secs:8.2f}  {same}")
    print(f"chosen: {base['chosen']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
