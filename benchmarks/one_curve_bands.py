"""Bands of predictions from one fitted curve, when the law's form is not the curve's.

A loss curve is planted from a known law (the multi-power law, the exponential kernel in
learning-rate area, the power-law kernel in steps) on a 20,000-step cosine schedule, with white
noise of standard deviation ``--noise`` logged every 10 steps; a WSD run (20% linear cooldown)
is planted the same way with fresh noise. For each of ``--seeds`` draws, the cosine alone is
fitted by the default law (the non-parametric kernel in steps) and by ``--law auto``, the WSD run
predicted, and the predicted final loss (mean of the last 5% of rows) compared with the planted
noise-free one. Printed per planted law: the RMS final error and the RMS z-score, the error over
the predicted final loss's standard deviation (``predict_sd``): about 1 where the band is
calibrated, far above it where it is too narrow; the mean standard deviation; and in how many draws
``--law auto``'s folds decided its choice (where they do not, it predicts with the mean of the
laws they do not separate). Two more rows fit the cosine together with a second planted run of
another schedule (a constant rate; a step decay), the remedy the note advises.

This is the measurement behind the note ``fit-delay`` prints on a fit to one curve (the band is
given the law's form, which one curve does not test).

    python benchmarks/one_curve_bands.py              # about 10 minutes on 2 cores (20 with --seeds 12)
    python benchmarks/one_curve_bands.py --no-auto    # about 2 minutes
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=6, help="draws per planted law (default 6)")
    ap.add_argument("--noise", type=float, default=0.01, help="standard deviation of the planted noise (default 0.01)")
    ap.add_argument("--workers", type=int, default=2, help="processes for --law auto's fits (default 2)")
    ap.add_argument("--no-auto", action="store_true", help="leave out --law auto (its fits are most of the time)")
    args = ap.parse_args(argv)
    if args.seeds < 1 or not args.noise > 0 or args.workers < 1:
        ap.error("give --seeds >= 1, --noise > 0 and --workers >= 1")
    from sde_scales import schedules
    from sde_scales.fitting import KernelLaw, MultiPowerLaw, fit
    from sde_scales.fitting.average import predict_any, predict_sd_any
    from sde_scales.fitting.curves import planted_curve
    from sde_scales.fitting.fit import final_rows
    from sde_scales.fitting.report import fit_auto

    truths = {  # (L0, A, alpha, B, drop parameters): loss 3 + 2 S^-0.5, drops of amplitude 0.4
        "multi-power law": (MultiPowerLaw(), [3.0, 2.0, 0.5, 0.4, 2.0, 0.6, 0.5]),
        "exp kernel in area": (KernelLaw("exp", "area"), [3.0, 2.0, 0.5, 0.4, np.log10(0.3)]),
        "power kernel in steps": (KernelLaw("power", "steps"), [3.0, 2.0, 0.5, 0.4, np.log10(300.0), 1.5]),
    }
    n, peak = 20001, 1e-3
    cos = schedules.cosine(n, peak, final_fraction=0.1, warmup_steps=200)
    wsd = schedules.wsd(n, peak, fraction=0.2, warmup_steps=200)
    # the remedy the note names, a second fitted curve of another schedule: a constant run, or a
    # step decay (x0.3 at 60% and at 80% of the run), each planted with noise of its own
    second = {"+ constant": schedules.constant(n, peak, warmup_steps=200),
              "+ step decay": schedules.step(n, peak, [12000, 16000], factor=0.3, warmup_steps=200)}
    print(f"a 20,000-step cosine fitted (alone, or with a second run), a 20% WSD run predicted; noise {args.noise}, "
          f"{args.seeds} draws each")
    print(f"{'planted law':22s} {'fitted':28s} {'RMS final err':>13s} {'RMS z':>7s} {'max |z|':>8s} {'mean sd':>8s}  "
          f"auto's folds")
    default = KernelLaw("nonparametric", "steps")
    for label, (law, theta) in truths.items():
        out = {"default kernel": []} | ({} if args.no_auto else {"--law auto": []})
        out |= {f"default kernel, {k}": [] for k in second}
        decided = 0
        for s in range(args.seeds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # each fit's warnings are not what is measured here
                fitted, _ = planted_curve(law, theta, cos, "cosine", noise=args.noise, seed=2 * s)
                held, clean = planted_curve(law, theta, wsd, "wsd", noise=args.noise, seed=2 * s + 1)
                fits = {"default kernel": fit(default, [fitted], skip_steps=500)}
                for i, (k, sched) in enumerate(second.items()):
                    other, _ = planted_curve(law, theta, sched, k, noise=args.noise, seed=1000 + 2 * s + i)
                    fits[f"default kernel, {k}"] = fit(default, [fitted, other], skip_steps=500)
                if not args.no_auto:
                    choice, fits["--law auto"] = fit_auto([fitted], skip_steps=500, smooth_steps=1000,
                                                          workers=args.workers)
                    decided += bool(choice["decided"])
                m = final_rows(held.step.size)
                for key, r in fits.items():
                    p, sd = predict_any(r, held), predict_sd_any(r, held)[1]
                    err = float(p[-m:].mean() - clean[-m:].mean())
                    out[key].append((err, err / sd, sd))
        for key, v in out.items():
            e, z, sd = np.array(v).T
            folds = f"decided in {decided} of {args.seeds}" if key == "--law auto" else ""
            print(f"{label:22s} {key:28s} {np.sqrt(np.mean(e**2)):13.4f} {np.sqrt(np.mean(z**2)):7.2f} "
                  f"{np.max(np.abs(z)):8.1f} {np.mean(sd):8.4f}  {folds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
