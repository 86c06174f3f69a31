"""Cost of `sde-scales fit-delay` against curve length: wall time and peak memory.

For each length T, two per-step curves (a loss logged at every step; cosine and WSD schedules)
are written as CSV, and the whole command

    sde-scales fit-delay --fit cos.csv --predict wsd.csv --law LAW --kernel KERNEL

(with ``--skip-steps`` at the warmup's end, 1% of T) runs in a fresh process; its wall time and
peak resident memory (``ru_maxrss`` of the child) are recorded. Linear cost shows as time and
memory growing in proportion to T (ratios to the smallest T are printed next to T's own ratio).

``--family``: where the losses come from. ``law`` (default): the kernel law itself with noise
0.05, a curve the law fits exactly, so its fit converges in few steps (fitted from step 0, its
first loss, about 9e4 at the first step's tiny learning-rate area, would dominate the objective:
hence the skip). ``nqm``: the expected loss
of SGD on the many-mode noisy quadratic of ``experiments/fit_nqm_family.py`` (peak rate 0.5,
noise 0.1), which no law fits exactly: one cosine leaves the power term's level, amplitude and
exponent nearly interchangeable, and the optimiser walks a long flat valley, as on real runs.

    python benchmarks/bench_fit_length.py                      # T = 2k .. 1M, kernel nonparametric
    python benchmarks/bench_fit_length.py --lengths 2000,34000 --kernel exp
    python benchmarks/bench_fit_length.py --lengths 2000,34000 --law mpl
    python benchmarks/bench_fit_length.py --lengths 2000,34000,131000 --family nqm
    python benchmarks/bench_fit_length.py --lengths 2000,34000,131000 --kernel exp --average-time-scale --workers 2
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_curve(path: Path, lr: np.ndarray, seed: int) -> None:
    import pandas as pd

    from sde_scales.fitting.curves import LossCurve, ScheduleFeatures
    from sde_scales.fitting.laws import KernelLaw

    T = lr.size - 1
    c = LossCurve(np.arange(1, T + 1), lr[1:], np.ones(T), name="x").with_schedule(lr)
    f = ScheduleFeatures.build(c, c.step, float(lr.max()))
    y = KernelLaw(kernel="exp", time="steps").predict(np.array([2.5, 1.5, 0.4, 0.5, np.log10(0.05 * T)]), f)
    y = y + 0.05 * np.random.default_rng(seed).standard_normal(T)
    pd.DataFrame({"step": c.step, "lr": lr[1:], "loss": y}).to_csv(path, index=False)


def write_nqm_curve(path: Path, lr: np.ndarray, seed: int) -> None:
    """The noisy quadratic's expected loss after each step of ``lr`` plus noise 0.1, logged at every
    step (as ``experiments/fit_nqm_family.py`` writes its curves, there every 50 steps)."""
    import pandas as pd

    from sde_scales.models.nqm import SpectralNQM

    y = SpectralNQM.power_law().expected_loss(lr)[: lr.size] + 0.1 * np.random.default_rng(seed).standard_normal(lr.size)
    pd.DataFrame({"step": np.arange(lr.size), "lr": lr, "loss": y}).to_csv(path, index=False)


def run_one(T: int, law: str, kernel: str, tmp: Path, family: str = "law", extra: tuple = ()) -> tuple[float, float]:
    from sde_scales import schedules
    from sde_scales.fitting.curves import ScheduleSpec

    w = max(1, T // 100)
    if family == "nqm":
        write_nqm_curve(tmp / "cos.csv", schedules.cosine(T, 0.5, final_fraction=0.1, warmup_steps=w), 1)
        write_nqm_curve(tmp / "wsd.csv", schedules.wsd(T, 0.5, fraction=0.2, warmup_steps=w), 2)
    else:
        write_curve(tmp / "cos.csv", ScheduleSpec(total=T, peak=1e-3, warmup=w, decay="cosine", end=1e-4).expand(), 1)
        write_curve(tmp / "wsd.csv", ScheduleSpec(total=T, peak=1e-3, warmup=w, decay="linear",
                                                  decay_start=int(0.8 * T)).expand(), 2)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(tmp / "cos.csv"),
                        "--predict", str(tmp / "wsd.csv"), "--law", law, "--kernel", kernel, "--skip-steps", str(w), *extra],
                       capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"T={T}: fit-delay failed: {r.stderr[-1500:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux; the largest child so far
    return secs, max(peak, before) / 1024.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", default="2000,8000,34000,131000,1000000",
                    help="curve lengths in steps (default 2000,8000,34000,131000,1000000)")
    ap.add_argument("--law", default="kernel", choices=["kernel", "mpl", "momentum"],
                    help="law to fit (default kernel)")
    ap.add_argument("--kernel", default="nonparametric", choices=["nonparametric", "exp", "power"],
                    help="kernel of the kernel law (default nonparametric)")
    ap.add_argument("--family", default="law", choices=["law", "nqm"],
                    help="where the losses come from: the kernel law with noise (default) or the noisy quadratic")
    ap.add_argument("--average-time-scale", action="store_true",
                    help="time fit-delay --average-time-scale (one fit per half decade of the time scale); the "
                         "baseline, the same command without it, runs beside each length")
    ap.add_argument("--workers", type=int, default=None,
                    help="with --average-time-scale: also time it with its held fits in this many processes")
    args = ap.parse_args(argv)
    if args.workers is not None and (not args.average_time_scale or args.workers < 1):
        ap.error(f"--workers {args.workers}: give a count >= 1, with --average-time-scale")
    if args.average_time_scale and not (args.law == "momentum" or args.kernel == "exp"):
        ap.error("--average-time-scale needs a law with one time scale: --kernel exp or --law momentum")
    lengths = [int(v) for v in args.lengths.split(",")]
    print(f"{'T':>9s} {'seconds':>8s} {'peak MB':>8s} {'T ratio':>8s} {'time ratio':>10s}"
          + (f" {'averaged s':>10s} {'/ one fit':>9s}" if args.average_time_scale else "")
          + (f" {f'{args.workers} workers s':>12s} {'/ one fit':>9s}" if args.workers else ""))
    base = None
    with tempfile.TemporaryDirectory() as d:
        for T in lengths:
            secs, mb = run_one(T, args.law, args.kernel, Path(d), args.family)
            base = base or (T, secs)
            line = f"{T:9d} {secs:8.2f} {mb:8.0f} {T / base[0]:8.1f} {secs / base[1]:10.1f}"
            if args.average_time_scale:
                avg, _ = run_one(T, args.law, args.kernel, Path(d), args.family, ("--average-time-scale",))
                line += f" {avg:10.2f} {avg / secs:9.1f}"
            if args.workers:
                par, _ = run_one(T, args.law, args.kernel, Path(d), args.family,
                                 ("--average-time-scale", "--workers", str(args.workers)))
                line += f" {par:12.2f} {par / secs:9.1f}"
            print(line, flush=True)
    print("peak MB is the largest child process so far (ru_maxrss): it can only grow down the table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
