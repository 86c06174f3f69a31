"""The lack-of-fit test on curves whose answer is known: how often it speaks, and when.

Every fit tests its law against the fitted curves' own noise
(:func:`sde_scales.fitting.lack_of_fit`: block means of the residuals, an F test). A warning is
only worth its word if it is rare where the law is right and common where it is wrong. Three
tables:

1. **Pure noise.** Residuals that are exactly independent Gaussian noise, at several curve lengths:
   the share of p < 0.01 must be about 0.01 (the test's level) or less.
2. **Known truths.** A noisy quadratic (:class:`sde_scales.models.nqm.SpectralNQM`) under a cosine
   schedule, 20,000 steps logged every 50, fitted by the default kernel law: its power-law spectrum
   at the settings of ``fit_nqm_family.py`` (where the laws predict well) and two variants whose
   loss the laws' forms do not follow (a steeper spectrum, ``a = 2``, and five times the gradient
   noise), each at two noise levels of the log; and the same base curve logged as an exponential
   moving average of a per-step loss (0.98 per step: neighbouring logged values share 0.98^50 =
   36% of their average), as many training loops print it. Each row gives the share of fits
   warned over seeds, the mean p, the lag-1 correlation of the residuals, and how far the fit's
   prediction of a WSD run of the same truth misses it (RMSE against the noise-free loss): the
   warning is meant to come where that miss is large.
3. **The shared language-model runs** (``../shared/data/loss_curves``), each fitted alone from step
   500, when present.

    python experiments/lack_of_fit.py --out out/lack_of_fit            # about 20 seconds
    python experiments/lack_of_fit.py --quick --out /tmp/lof_quick     # about 10 seconds
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "loss_curves"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=output_folder, default="out/lack_of_fit", help="output directory (lack_of_fit.json)")
    ap.add_argument("--quick", action="store_true", help="fewer draws and seeds (a smoke run, not a result)")
    ap.add_argument("--seed", type=int, default=0, help="root of the seeds (numpy SeedSequence)")
    args = ap.parse_args(argv)
    if args.seed < 0:
        print(f"error: --seed {args.seed}; give a seed >= 0", file=sys.stderr)
        return 2

    from sde_scales import schedules
    from sde_scales.atomic import write_json_atomic
    from sde_scales.fitting import KernelLaw, LossCurve, fit, lack_of_fit, load_curve, predict
    from sde_scales.fitting.fit import LACK_OF_FIT_P
    from sde_scales.models.nqm import SpectralNQM

    started = time.perf_counter()
    draws, seeds = (300, 2) if args.quick else (3000, 6)
    root = np.random.SeedSequence(args.seed)
    s_noise, s_fam = root.spawn(2)

    print(f"1. pure noise: share of p < {LACK_OF_FIT_P:g} (the test's level) over {draws} draws per length")
    null = []
    for n, ss in zip((20, 40, 100, 400, 1500), s_noise.spawn(5)):
        rng = np.random.default_rng(ss)
        p = np.array([lack_of_fit(e, 3.0 + e, np.arange(n) * 50)["p"]
                      for e in (0.1 * rng.standard_normal((draws, n)))])
        null.append({"points": n, "draws": draws, "share_p_below_0.01": float(np.mean(p < 0.01)),
                     "share_p_below_0.05": float(np.mean(p < 0.05)),
                     "mc_se_at_0.01": float(np.sqrt(0.01 * 0.99 / draws))})
        print(f"   {n:5d} points: {null[-1]['share_p_below_0.01']:.4f} below 0.01, "
              f"{null[-1]['share_p_below_0.05']:.4f} below 0.05 (Monte-Carlo se {null[-1]['mc_se_at_0.01']:.4f})")

    steps, every = 20000, 50
    warm, logged, skip = steps // 100, np.arange(0, 20000, 50), 250
    cos = schedules.cosine(steps, 0.5, final_fraction=0.1, warmup_steps=warm)
    wsd = schedules.wsd(steps, 0.5, fraction=0.2, warmup_steps=warm)
    family = {"spectrum a=1.5 (fit_nqm_family's)": SpectralNQM.power_law(),
              "steeper spectrum a=2": SpectralNQM.power_law(a=2.0),
              "gradient noise x5 (sigma 1.5)": SpectralNQM.power_law(sigma=1.5)}
    cases = [(name, m, noise, None) for name, m in family.items() for noise in (0.05, 0.02)]
    cases.append(("spectrum a=1.5, log = EMA 0.98 of a per-step loss (noise 0.3)", family[next(iter(family))], 0.3, 0.98))
    law = KernelLaw("nonparametric", "steps")
    print(f"2. known truths: {law.label} fitted to one cosine run ({steps} steps, logged every {every}), "
          f"{seeds} seeds each; miss*: RMSE of its prediction of a WSD run against the noise-free loss")
    rows = []
    for (name, model, noise, ema), ss in zip(cases, s_fam.spawn(len(cases))):
        mean_cos, mean_wsd = model.expected_loss(cos), model.expected_loss(wsd)
        fired, ps, lags, miss = [], [], [], []
        for rng in (np.random.default_rng(c) for c in ss.spawn(seeds)):
            if ema is None:
                y = mean_cos[logged] + noise * rng.standard_normal(logged.size)
            else:
                raw = mean_cos[:steps] + noise * rng.standard_normal(steps)
                out, acc = np.empty(steps), raw[0]
                for i, v in enumerate(raw):
                    acc = ema * acc + (1 - ema) * v
                    out[i] = acc
                y = out[logged]
            curve = LossCurve(logged, cos[logged], y, name="cos")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = fit(law, [curve], skip_steps=skip)
                target = LossCurve(logged, wsd[logged], mean_wsd[logged], name="wsd")
                pred = predict(res, target)
            check = res.extra["lack_of_fit"]["cos"]
            fired.append(any("more than their noise" in w for w in res.extra["warnings"]))
            ps.append(check["p"])
            lags.append(check["lag1"])
            keep = logged >= skip
            miss.append(float(np.sqrt(np.mean((pred - mean_wsd[logged])[keep] ** 2))))
        rows.append({"case": name, "log_noise": noise, "ema": ema, "seeds": seeds, "warned": float(np.mean(fired)),
                     "median_p": float(np.median(ps)), "mean_lag1": float(np.mean(lags)),
                     "wsd_miss_truth": float(np.mean(miss))})
        r = rows[-1]
        print(f"   {name:64s} noise {noise:<5g} warned {r['warned']:.2f}  median p {r['median_p']:.2g}  "
              f"lag1 {r['mean_lag1']:+.2f}  miss* {r['wsd_miss_truth']:.4f}", flush=True)

    shared = []
    files = sorted(f for f in DATA.glob("*.csv") if f.name != "manifest.csv") if DATA.exists() else []
    if args.quick:
        files = files[:3]
    if files:
        print(f"3. the shared runs ({len(files)}), {law.label} fitted to each alone from step 500")
    for f in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit(law, [load_curve(f)], skip_steps=500)
        check = next(iter(res.extra["lack_of_fit"].values()))
        shared.append({"file": f.name, "p": check["p"], "chi2_per_block": check["chi2_per_block"],
                       "lag1": check["lag1"],
                       "warned": any("more than their noise" in w for w in res.extra["warnings"])})
    if shared:
        ps = [s["p"] for s in shared]
        print(f"   warned on {sum(s['warned'] for s in shared)} of {len(shared)}; p from {min(ps):.2g} to {max(ps):.2g}")
    doc = {"null": null, "known_truths": rows, "shared": shared, "law": law.label, "level": LACK_OF_FIT_P,
           "quick": args.quick, "seed": args.seed, "seconds": time.perf_counter() - started}
    print(f"JSON: {write_json_atomic(Path(args.out) / 'lack_of_fit.json', doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
