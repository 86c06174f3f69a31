"""Bands of predictions from one fitted curve, when the law's form is not the curve's.

A loss curve is planted from a known law (the multi-power law, the exponential kernel in
learning-rate area, the power-law kernel in steps, and one that is none of the toolkit's laws: the
last-iterate bound of SGD on a convex Lipschitz problem, see :func:`convex_bound`) on a 20,000-step
cosine schedule, with white
noise of standard deviation ``--noise`` logged every 10 steps; a WSD run (20% linear cooldown)
is planted the same way with fresh noise. For each of ``--seeds`` draws, the cosine alone is
fitted by the default law (the non-parametric kernel in steps) and by ``--law auto``, the WSD run
predicted, and the predicted final loss (mean of the last 5% of rows) compared with the planted
noise-free one. Printed per planted law: the RMS final error and the RMS z-score, the error over
the predicted final loss's standard deviation (``predict_sd``): about 1 where the band is
calibrated, far above it where it is too narrow; the mean standard deviation; and in how many draws
``--law auto``'s folds decided its choice (where they do not, it predicts with the mean of the
laws they do not separate). Two more rows fit the cosine together with a second planted run of
another schedule (a constant rate; a step decay), the remedy the note advises. ``--spread`` adds
one more: the default kernel's mean with its band widened by the RMS distance of ``--law auto``'s
nine candidate laws' predicted final losses (each law fitted to the cosine alone) from its own.

This is the measurement behind the note ``fit-delay`` prints on a fit to one curve (the band is
given the law's form, which one curve does not test).

    python benchmarks/one_curve_bands.py              # about 14 minutes on 2 cores (27 with --seeds 12)
    python benchmarks/one_curve_bands.py --no-auto    # under a minute
    python benchmarks/one_curve_bands.py --laws convex # the law outside the toolkit's only
    python benchmarks/one_curve_bands.py --no-auto --spread  # about 4 minutes with --seeds 12
    python benchmarks/one_curve_bands.py --no-auto --time-scale-average  # the average over time scales
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

LAWS = ("mpl", "exp-area", "power-steps", "convex")


def convex_bound(lr, steps, r):
    r"""The last-iterate bound of SGD with step sizes :math:`\eta_1..\eta_t` on a convex
    G-Lipschitz problem whose start is a distance D from a minimiser (the form of Defazio et al.
    2023 that Schaipp et al. 2025 compare with language-model loss curves), in units
    :math:`G^2 \eta_{peak} = 1`:

    .. math::
        \Omega_t = \frac{r + \sum_{s \le t} s_s^2}{2 \sum_{s \le t} s_s}
        + \frac12 \sum_{k=1}^{t-1} \frac{s_k}{\sum_{j=k+1}^{t} s_j}
          \frac{\sum_{j=k}^{t} s_j^2}{\sum_{j=k}^{t} s_j},

    with :math:`s = \eta / \eta_{peak}` and :math:`r = D^2 / (G^2 \eta_{peak}^2)`. The loss
    logged at step t is after t updates, with rates ``lr[0..t-1]``; updates with rate 0 leave the
    iterate where it was, so they are left out. Not a law the toolkit fits: a planted truth of
    another form. O(t) per logged step.

    Refused (ValueError): rates that are not finite and >= 0, ``r`` not finite and >= 0, and a
    step that is not in 1..len(lr) or has no positive rate before it (no iterate has moved)."""
    s = np.asarray(lr, float)
    steps = np.asarray(steps)
    if s.ndim != 1 or not np.all(np.isfinite(s)) or np.any(s < 0) or not np.any(s > 0):
        raise ValueError("convex_bound: give one finite rate >= 0 per step, some of them > 0")
    if not (np.isfinite(r) and r >= 0):
        raise ValueError(f"convex_bound: r={r}; give a finite r >= 0")
    first = int(np.flatnonzero(s > 0)[0]) + 1  # the first step after which an iterate has moved
    if steps.size and (steps.min() < first or steps.max() > s.size):
        raise ValueError(f"convex_bound: steps from {steps.min()} to {steps.max()}; give steps in {first}..{s.size} "
                         f"(after the first update at a rate > 0, within the schedule)")
    s = s / s.max()
    out = np.empty(len(steps))
    for i, t in enumerate(steps):
        u = s[:t][s[:t] > 0]
        c, q = np.cumsum(u[::-1])[::-1], np.cumsum((u * u)[::-1])[::-1]  # sums from k to t
        out[i] = (r + q[0]) / (2 * c[0]) + 0.5 * np.sum(u[:-1] / c[1:] * q[:-1] / c[:-1])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=6, help="draws per planted law (default 6)")
    ap.add_argument("--noise", type=float, default=0.01, help="standard deviation of the planted noise (default 0.01)")
    ap.add_argument("--workers", type=int, default=2, help="processes for --law auto's fits (default 2)")
    ap.add_argument("--no-auto", action="store_true", help="leave out --law auto (its fits are most of the time)")
    ap.add_argument("--spread", action="store_true",
                    help="add a row: the default kernel's mean with a band widened by the spread of --law auto's "
                         "candidate laws (each fitted to the cosine alone) about it")
    ap.add_argument("--time-scale-average", action="store_true",
                    help="add two rows: the exponential kernel in learning-rate area fitted to the cosine, and the "
                         "same averaged over its time scales (fit-delay --average-time-scale)")
    ap.add_argument("--laws", default=",".join(LAWS),
                    help=f"planted laws, comma-separated, from {','.join(LAWS)} (default: all)")
    args = ap.parse_args(argv)
    if args.seeds < 1 or not args.noise > 0 or args.workers < 1:
        ap.error("give --seeds >= 1, --noise > 0 and --workers >= 1")
    chosen = [x.strip() for x in args.laws.split(",") if x.strip()]
    if not chosen or any(x not in LAWS for x in chosen):
        ap.error(f"--laws {args.laws!r}: give names from {','.join(LAWS)}")
    from sde_scales import schedules
    from sde_scales.fitting import KernelLaw, MultiPowerLaw, fit
    from sde_scales.fitting.average import predict_any, predict_sd_any
    from sde_scales.fitting.curves import LossCurve, planted_curve
    from sde_scales.fitting.fit import final_rows
    from sde_scales.fitting.report import AUTO_CANDIDATES, fit_auto, make_law
    from sde_scales.fitting.time_scale_average import time_scale_average

    n, peak = 20001, 1e-3
    cos = schedules.cosine(n, peak, final_fraction=0.1, warmup_steps=200)

    def law_truth(law, theta):
        return lambda lr, name, seed: planted_curve(law, theta, lr, name, noise=args.noise, seed=seed)

    # r = D^2 / (G^2 eta_peak^2) = 1e5, and a scale that makes a constant run fall by 0.6 from
    # step 1,000 to its end: the bound's shape, not fitted to any data
    const = convex_bound(schedules.constant(n, peak, warmup_steps=200), [1000, n - 1], 1e5)
    convex_scale = 0.6 / (const[0] - const[1])

    def convex_truth(lr, name, seed):
        steps = np.arange(10, n, 10)
        clean = 3.0 + convex_scale * convex_bound(lr, steps, 1e5)
        loss = clean + args.noise * np.random.default_rng(seed).standard_normal(steps.size)
        return LossCurve(steps, lr[steps], loss, name=name), clean

    truths = {  # (L0, A, alpha, B, drop parameters): loss 3 + 2 S^-0.5, drops of amplitude 0.4
        "mpl": ("multi-power law", law_truth(MultiPowerLaw(), [3.0, 2.0, 0.5, 0.4, 2.0, 0.6, 0.5])),
        "exp-area": ("exp kernel in area", law_truth(KernelLaw("exp", "area"), [3.0, 2.0, 0.5, 0.4, np.log10(0.3)])),
        "power-steps": ("power kernel in steps",
                        law_truth(KernelLaw("power", "steps"), [3.0, 2.0, 0.5, 0.4, np.log10(300.0), 1.5])),
        "convex": ("convex bound (no law's form)", convex_truth),
    }
    wsd = schedules.wsd(n, peak, fraction=0.2, warmup_steps=200)
    # the remedy the note names, a second fitted curve of another schedule: a constant run, or a
    # step decay (x0.3 at 60% and at 80% of the run), each planted with noise of its own
    second = {"+ constant": schedules.constant(n, peak, warmup_steps=200),
              "+ step decay": schedules.step(n, peak, [12000, 16000], factor=0.3, warmup_steps=200)}
    print(f"a 20,000-step cosine fitted (alone, or with a second run), a 20% WSD run predicted; noise {args.noise}, "
          f"{args.seeds} draws each")
    print(f"{'planted law':28s} {'fitted':30s} {'RMS final err':>13s} {'RMS z':>7s} {'max |z|':>8s} {'mean sd':>8s}  "
          f"auto's folds")
    default = KernelLaw("nonparametric", "steps")
    candidates = [make_law(*c) for c in AUTO_CANDIDATES]
    for planted in chosen:
        label, plant = truths[planted]
        out = {"default kernel": []} | ({} if args.no_auto else {"--law auto": []})
        out |= {f"default kernel, {k}": [] for k in second}
        spread_key = "default kernel, + laws' spread"
        if args.spread:
            out[spread_key] = []
        exp_area = KernelLaw("exp", "area")
        if args.time_scale_average:
            out |= {"exp kernel (area), fitted": [], "exp kernel (area), tau averaged": []}
        decided = 0
        for s in range(args.seeds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # each fit's warnings are not what is measured here
                fitted, _ = plant(cos, "cosine", 2 * s)
                held, clean = plant(wsd, "wsd", 2 * s + 1)
                fits = {"default kernel": fit(default, [fitted], skip_steps=500)}
                for i, (k, sched) in enumerate(second.items()):
                    other, _ = plant(sched, k, 1000 + 2 * s + i)
                    fits[f"default kernel, {k}"] = fit(default, [fitted, other], skip_steps=500)
                if args.time_scale_average:
                    fits["exp kernel (area), fitted"] = fit(exp_area, [fitted], skip_steps=500)
                    fits["exp kernel (area), tau averaged"] = time_scale_average(exp_area, [fitted], skip_steps=500)
                if not args.no_auto:
                    choice, fits["--law auto"] = fit_auto([fitted], skip_steps=500, smooth_steps=1000,
                                                          workers=args.workers)
                    decided += bool(choice["decided"])
                m = final_rows(held.step.size)
                for key, r in fits.items():
                    p, sd = predict_any(r, held), predict_sd_any(r, held)[1]
                    err = float(p[-m:].mean() - clean[-m:].mean())
                    out[key].append((err, err / sd, sd))
                if args.spread:  # RMS distance of the candidates' final losses from the default's
                    base = float(predict_any(fits["default kernel"], held)[-m:].mean())
                    finals = [base if law == default else
                              predict_any(fit(law, [fitted], skip_steps=500), held)[-m:].mean() for law in candidates]
                    sd = float(np.hypot(predict_sd_any(fits["default kernel"], held)[1],
                                        np.sqrt(np.mean((np.array(finals) - base) ** 2))))
                    err = base - float(clean[-m:].mean())
                    out[spread_key].append((err, err / sd, sd))
        for key, v in out.items():
            e, z, sd = np.array(v).T
            folds = f"decided in {decided} of {args.seeds}" if key == "--law auto" else ""
            print(f"{label:28s} {key:30s} {np.sqrt(np.mean(e**2)):13.4f} {np.sqrt(np.mean(z**2)):7.2f} "
                  f"{np.max(np.abs(z)):8.1f} {np.mean(sd):8.4f}  {folds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
