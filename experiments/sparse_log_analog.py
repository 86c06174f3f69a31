"""Sparse, late-starting logs on the shared curves: does stating the schedule recover the full fit?

Fits each law on three shared 124M runs at lr 1e-3 (constant, cosine, WSD 20%) three ways and
predicts a fourth (WSD 80%):

* ``full``: the logs as they are (every 50 steps);
* ``analog+schedule``: every third point (150 steps) from step 2,160 on, with each run's per-step
  schedule stated (the per-step learning rate of its full log);
* ``analog``: the same points without the schedule (the learning rate before the first logged
  step is then assumed constant, with a warning).

Prints, per law and way: the held-out RMSE against the 1,000-step moving average and the final
loss error (rows from step 2,160), and the RMS difference from the full fit's prediction, next to
the least-squares tolerance 3 sigma sqrt(p (1/n_sparse - 1/n_full)) that
``tests/test_sparse_logs.py`` asserts for the kernel law. Writes ``sparse_log_analog.json``.

    python experiments/sparse_log_analog.py --out out/sparse_log_analog
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder

FITTED = ("124m_const_lr1e-3", "124m_cos0_lr1e-3", "124m_wsd-lin0.2_lr1e-3")
HELD = "124m_wsd-lin0.8_lr1e-3"
START = 2160


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).parents[2] / "shared" / "data" / "loss_curves"),
                    help="folder of the shared loss curves (default ../shared/data/loss_curves)")
    ap.add_argument("--out", type=output_folder, default="out/sparse_log_analog", help="output directory")
    args = ap.parse_args(argv)

    from sde_scales.atomic import write_json_atomic
    from sde_scales.errors import DataFileError
    from sde_scales.fitting.curves import LateStartWarning, LossCurve, load_curve
    from sde_scales.fitting.fit import fit, predict, score
    from sde_scales.fitting.laws import KernelLaw, MomentumLaw, MultiPowerLaw

    try:
        full = [load_curve(Path(args.data) / f"{n}.csv") for n in FITTED]
        held = load_curve(Path(args.data) / f"{HELD}.csv")
    except DataFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def analog(c, schedule):
        keep = (c.step >= START) & (np.arange(c.step.size) % 3 == 0)
        late = LossCurve(c.step[keep], c.lr[keep], c.loss[keep], name=c.name + "_late")
        return late.with_schedule(c.per_step_lr()) if schedule else late

    sigma = float(np.mean([np.std((c.loss - c.smoothed())[c.step >= START]) for c in full]))
    rows = {}
    m = held.step >= START
    print(f"{'law':26s} {'way':18s} {'rmse':>7s} {'final':>8s} {'d_full':>7s} {'tol':>7s}  warnings")
    for law in (KernelLaw(kernel="exp", time="steps"), MomentumLaw(lam=0.999), MultiPowerLaw()):
        preds, out = {}, {}
        for way, curves in (("full", full), ("analog+schedule", [analog(c, True) for c in full]),
                            ("analog", [analog(c, False) for c in full])):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                r = fit(law, curves, skip_steps=START)
                p = predict(r, held)
            late = sorted({str(w.message).split(":")[0] for w in caught if issubclass(w.category, LateStartWarning)})
            sc = score(held, p, skip_steps=START)
            preds[way] = p
            d = None if way == "full" else float(np.sqrt(np.mean((p - preds["full"])[m] ** 2)))
            tol = None
            if way != "full":
                n_full = out["full"]["n_points"]
                tol = 3 * sigma * math.sqrt(len(law.names) * (1 / r.n_points - 1 / n_full))
            out[way] = {"rmse": sc["rmse"], "final_loss_err": sc["final_loss_err"], "n_points": r.n_points,
                        "rms_difference_from_full": d, "tolerance": tol, "late_start_warnings": late}
            fmt = (lambda v: "-" if v is None else f"{v:.4f}")  # noqa: E731
            print(f"{law.label:26s} {way:18s} {sc['rmse']:7.4f} {sc['final_loss_err']:+8.4f} {fmt(d):>7s} "
                  f"{fmt(tol):>7s}  {len(late)} curve(s) warned")
        rows[law.label] = out
    print(f"point noise sigma = {sigma:.4f} (std around the 1,000-step moving average, steps >= {START})")
    path = write_json_atomic(Path(args.out) / "sparse_log_analog.json",
                             {"fitted": FITTED, "held_out": HELD, "start": START, "every": 150, "sigma": sigma,
                              "laws": rows})
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
