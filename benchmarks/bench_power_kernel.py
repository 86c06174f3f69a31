"""Fitting the power-law kernel: its lattice built once per curve length against at every
evaluation, in the same process, on the same curves, with the same result.

The curves: the eight schedules of ``experiments/fit_nqm_family.py`` at 34,000 steps (one noise
draw, logged every 50 steps), the first seven fitted jointly, as in a leave-one-out split. The
baseline rebuilds :func:`sde_scales.kernels._power_lattice` at every call (its uncached function),
as the code did before the cache.

    python benchmarks/bench_power_kernel.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def _curves(steps: int = 34000, every: int = 50):
    from sde_scales import schedules
    from sde_scales.fitting import LossCurve
    from sde_scales.models.nqm import SpectralNQM

    model = SpectralNQM.power_law()
    rng = np.random.default_rng(np.random.SeedSequence(0))
    logged = np.arange(0, steps, every)
    out = []
    specs = [("constant", {}), ("cosine", {"final_fraction": 0.1})] + [
        ("wsd", {"fraction": f}) for f in (0.1, 0.2, 0.4, 0.6, 0.8)]
    for i, (kind, kw) in enumerate(specs):
        lr = getattr(schedules, kind)(steps, 0.5, warmup_steps=steps // 100, **kw)
        loss = model.expected_loss(lr)[logged] + 0.1 * rng.standard_normal(logged.size)
        out.append(LossCurve(logged, lr[logged], loss, name=f"{kind}{i}"))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="fits per variant; the minimum and median are reported")
    args = ap.parse_args(argv)
    from sde_scales import kernels
    from sde_scales.fitting import KernelLaw, fit

    curves = _curves()
    law = KernelLaw(kernel="power", time="steps")
    cached = kernels._power_lattice
    results = {}
    for variant in ("rebuilt every call (baseline)", "built once per length"):
        kernels._power_lattice = cached.__wrapped__ if variant.startswith("rebuilt") else cached
        times, theta = [], None
        try:
            for _ in range(args.repeats):
                cached.cache_clear()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    r = fit(law, curves, skip_steps=500)
                    times.append(time.perf_counter() - t0)
                theta = r.theta
        finally:
            kernels._power_lattice = cached
        results[variant] = (min(times), float(np.median(times)), theta)
    base = results["rebuilt every call (baseline)"]
    print(f"{'variant':32s} {'min s':>7s} {'median s':>9s} {'speed-up':>9s}  same parameters")
    for k, (mn, md, th) in results.items():
        same = "(baseline)" if k.startswith("rebuilt") else str(bool(np.array_equal(th, base[2])))
        print(f"{k:32s} {mn:7.2f} {md:9.2f} {base[0] / mn:9.2f}  {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
