"""Cost of a forecast against the schedule's length, and against predicting a logged run.

Fits the default kernel law to the shared 124M constant and cosine runs once, then for schedules
of 1e4 to 1e7 steps (a cosine to 10% of the peak) times ``forecast`` (1,000 rows by default) and,
as the baseline in the same process, ``predict`` and ``predict_sd`` of a curve with the same
per-step schedule logged at the same rows; and the peak memory that ``tracemalloc`` sees during the
forecast. Prints a table (median of ``--repeat`` runs).

    python benchmarks/bench_forecast.py
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).parents[2] / "shared" / "data" / "loss_curves"))
    ap.add_argument("--lengths", default="10000,100000,1000000,10000000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    from sde_scales.fitting import KernelLaw, LossCurve, fit, load_curve, predict, predict_sd
    from sde_scales.fitting.curves import ScheduleSpec
    from sde_scales.fitting.forecast import forecast

    warnings.simplefilter("ignore")
    data = Path(args.data)
    res = fit(KernelLaw(kernel="nonparametric", time="steps"),
              [load_curve(data / "124m_const_lr1e-3.csv"), load_curve(data / "124m_cos10_lr1e-3.csv")], skip_steps=500)
    print(f"{'steps':>10s} {'rows':>5s} {'forecast s':>10s} {'predict s':>9s} {'ratio':>6s} {'peak MiB':>8s}")
    for T in (int(v) for v in args.lengths.split(",")):
        spec = ScheduleSpec(total=T, peak=1e-3, warmup=500, decay="cosine", end=1e-4)
        f = forecast(res, spec, name="w")  # warm: the law's filters and grid
        rates = spec.expand()
        run = LossCurve(f.step, rates[f.step], np.ones(f.step.size), name="run", schedule=rates)
        tf, tp = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            forecast(res, spec, name="w")
            tf.append(time.perf_counter() - t)
            t = time.perf_counter()
            predict(res, run)
            predict_sd(res, run)
            tp.append(time.perf_counter() - t)
        tracemalloc.start()
        forecast(res, spec, name="w")
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        mf, mp = statistics.median(tf), statistics.median(tp)
        print(f"{T:10,d} {f.step.size:5d} {mf:10.3f} {mp:9.3f} {mf / mp:6.2f} {peak:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
