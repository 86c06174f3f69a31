"""Schedules that rise again: predicting a cyclic run (warm restarts) from runs that never rise.

The laws respond to every change of the learning rate after the warmup: a decay is a drop, and a
restart is a rise, which they treat as a negative drop (the mirror image of the drop response).
Two things are measured here on a model family whose noise-free loss is known (SGD on the noisy
quadratic of ``fit_nqm_family.py``, :class:`sde_scales.models.nqm.SpectralNQM`, 20,000 steps
logged every 50, noise 0.05):

* how well each law, fitted to a cosine and a constant run, predicts a cosine schedule with warm
  restarts every 5,000 steps (each cycle from the peak to a tenth of it), and a WSD run for
  comparison, in RMSE against the noise-free loss (``rmse*``) and final-loss error (``final*``);
* that each of those predictions of the cyclic run warns that its rises are not fitted.

The first cycle starts just below the restarts' peak (the warmup ends a step into the first
cosine), so the schedule's largest rate is first reached at the first restart. Until the warmup's
end was defined as the first fall of the rate, it was the first step at the largest rate, and the
whole first cycle was taken as warmup: no drop there, fitted or predicted (``--first-max`` shows
that reading's numbers, by building the features as it did).

    python experiments/restarts.py --out out/restarts     # about 30 seconds
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder

STEPS, EVERY, PEAK, NOISE = 20000, 50, 0.5, 0.05
LAWS = ("np-steps", "exp-steps", "np-area", "momentum", "mpl")


def cyclic(steps: int, peak: float, cycle: int, warmup: int) -> np.ndarray:
    """Cosine cycles from ``peak`` to a tenth of it, restarting every ``cycle`` steps, after a
    linear warmup over the first ``warmup`` steps (which ends just below the cycles' peak)."""
    k = np.arange(steps)
    lr = peak * (0.1 + 0.45 * (1 + np.cos(np.pi * (k % cycle) / cycle)))
    lr[:warmup] = np.linspace(0.0, lr[warmup], warmup + 1)[1:]
    return lr


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=output_folder, default="out/restarts", help="output directory (restarts.json)")
    ap.add_argument("--seeds", type=int, default=3, help="noise draws (default 3)")
    ap.add_argument("--first-max", action="store_true",
                    help="also measure the old reading: the warmup ends at the first step at the largest rate")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        print(f"error: --seeds {args.seeds}; give at least 1", file=sys.stderr)
        return 2

    from sde_scales import schedules
    from sde_scales.atomic import write_json_atomic
    from sde_scales.fitting import LossCurve, PeakLRWarning, fit, predict
    from sde_scales.fitting import curves as curves_module
    from sde_scales.fitting.protocols import PROTOCOL_LAWS
    from sde_scales.models.nqm import SpectralNQM

    started = time.perf_counter()
    model = SpectralNQM.power_law()
    warm, logged, skip = STEPS // 100, np.arange(0, STEPS, EVERY), 250
    sched = {"cos": schedules.cosine(STEPS, PEAK, final_fraction=0.1, warmup_steps=warm),
             "const": schedules.constant(STEPS, PEAK, warmup_steps=warm),
             "wsd": schedules.wsd(STEPS, PEAK, fraction=0.2, warmup_steps=warm),
             "cyclic": cyclic(STEPS, PEAK, 5000, warm)}
    truth = {k: model.expected_loss(v)[logged] for k, v in sched.items()}
    readings = {"first fall (now)": curves_module.warmup_end}
    if args.first_max:
        readings["first step at the largest rate (before)"] = lambda eta: int(
            np.argmax(np.asarray(eta) >= np.max(eta) * (1 - 1e-9))) + 1
    rows = []
    keep = logged >= skip
    print(f"fitted: cos + const; predicted: cyclic (restarts every 5,000 steps) and wsd; {args.seeds} seeds; "
          f"rmse*, final*: against the noise-free loss")
    for reading, end in readings.items():
        curves_module.warmup_end, original = end, curves_module.warmup_end
        try:
            for name in LAWS:
                law = PROTOCOL_LAWS[name]
                acc = {t: {"rmse": [], "final": []} for t in ("cyclic", "wsd")}
                warned = []
                for s, ss in enumerate(np.random.SeedSequence(0).spawn(args.seeds)):
                    rngs = [np.random.default_rng(c) for c in ss.spawn(len(sched))]
                    c = {k: LossCurve(logged, v[logged], truth[k] + NOISE * r.standard_normal(logged.size), name=k)
                         for (k, v), r in zip(sched.items(), rngs)}
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        res = fit(law, [c["cos"], c["const"]], skip_steps=skip)
                        preds = {t: predict(res, c[t]) for t in ("cyclic", "wsd")}
                    warned.append(any(issubclass(w.category, PeakLRWarning) and "rises again" in str(w.message)
                                      for w in caught))
                    for t, p in preds.items():
                        acc[t]["rmse"].append(float(np.sqrt(np.mean((p - truth[t])[keep] ** 2))))
                        acc[t]["final"].append(float(np.mean(p[-10:]) - np.mean(truth[t][-10:])))
                row = {"warmup_end": reading, "law": law.label, "rise_warned": float(np.mean(warned)),
                       **{f"{t}_{m}": float(np.mean(np.abs(v[m]) if m == "final" else v[m]))
                          for t, v in acc.items() for m in ("rmse", "final")}}
                rows.append(row)
                print(f"  {reading:40s} {law.label:30s} cyclic rmse* {row['cyclic_rmse']:.4f} |final*| "
                      f"{row['cyclic_final']:.4f}   wsd rmse* {row['wsd_rmse']:.4f} |final*| {row['wsd_final']:.4f}   "
                      f"rise warned {row['rise_warned']:.2f}", flush=True)
        finally:
            curves_module.warmup_end = original
    doc = {"rows": rows, "steps": STEPS, "log_every": EVERY, "noise": NOISE, "peak": PEAK, "seeds": args.seeds,
           "model": "SpectralNQM.power_law()", "seconds": time.perf_counter() - started}
    print(f"JSON: {write_json_atomic(Path(args.out) / 'restarts.json', doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
