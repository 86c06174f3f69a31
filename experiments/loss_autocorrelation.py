"""Does one loss curve carry the time scale of the loss's response to the learning rate?

By fluctuation-dissipation, in a linear (Ornstein-Uhlenbeck) picture of the loss about its
trend, the fluctuations decay with the same time scale as the mean's response to a learning-rate
drop. If so, one curve of any schedule would pin down the delay time scale that one cosine run
leaves free (issue 12's single-cosine protocol; ``benchmarks/RESULTS.md``). This script measures
whether the logged loss holds such a correlated part at all.

For each curve (evenly logged; a constant-rate run is the clean case): the residuals about a
centred moving average of ``--window`` steps, from ``--start`` (a fraction of the run) to one
window before the end, and their autocorrelation at the lags ``--lags`` (steps). Under white noise
each autocorrelation has a standard error of about :math:`1/\\sqrt{n}` (Bartlett), n the residuals
used; a correlated part of variance share s and time scale tau shows as about
:math:`s\\, e^{-\\mathrm{lag}/\\tau}` at lags well inside the window. Writes
``OUT/loss_autocorrelation.json`` (strict JSON) and prints a table with the lags whose
autocorrelation lies beyond :data:`Z` standard errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder

ROOT = Path(__file__).resolve().parents[1]
#: Standard errors beyond which an autocorrelation is taken as resolved from white noise: 2.58 is
#: two-sided 1% per lag (seven lags per curve: a family-wise rate near 7%).
Z = 2.58


def residual_autocorrelation(curve, *, window: int, start: float, lags: tuple[int, ...]) -> dict:
    """The residuals' autocorrelation at ``lags`` (steps) of one evenly logged curve (a
    :class:`~sde_scales.fitting.curves.LossCurve`), about its centred moving average over
    ``window`` steps (:meth:`~sde_scales.fitting.curves.LossCurve.smoothed`, the metrics' target),
    at the rows from ``start`` of the run whose whole window lies inside the curve. Refused
    (``ValueError``) where the logging is uneven or a lag is not a whole number of logging
    intervals, or too few residuals remain."""
    step = curve.step.astype(float)
    d = np.diff(step)
    if d.size == 0 or not np.allclose(d, d[0]):
        raise ValueError("the curve is not evenly logged; this measurement needs one logging interval")
    dt = float(d[0])
    bad = [lag for lag in lags if abs(lag / dt - round(lag / dt)) > 1e-9 or lag < dt]
    if bad:
        raise ValueError(f"lags {bad} are not whole multiples of the logging interval {dt:g}")
    keep = (step >= start * step[-1]) & (step - window / 2 >= step[0]) & (step + window / 2 <= step[-1])
    r = (curve.loss - curve.smoothed(window))[keep]
    r = r - r.mean()
    n = r.size
    if n < 10 * max(int(round(lag / dt)) for lag in lags):
        raise ValueError(f"{n} residuals: too few for lags up to {max(lags)} steps (need ten per lag)")
    v = float(np.mean(r * r))
    acf = [float(np.mean(r[:-k] * r[k:]) / v) for k in (int(round(lag / dt)) for lag in lags)]
    return {"log_every": dt, "window_steps": window, "n_residuals": int(n), "lags": list(lags), "acf": acf,
            "se": 1.0 / float(np.sqrt(n)),
            "resolved": [lag for lag, a in zip(lags, acf) if abs(a) > Z / np.sqrt(n)]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--curve", action="append", metavar="FILE",
                    help="an evenly logged curve file (repeat); default: the shared constant-rate 124M curves")
    ap.add_argument("--window", type=int, default=2000, help="the trend's centred moving average, in steps")
    ap.add_argument("--start", type=float, default=0.25, help="first step used, as a fraction of the run")
    ap.add_argument("--lags", default=None,
                    help="lags in steps, comma-separated (default: 1, 2, 5, 10, 20 and 40 logging intervals of each curve)")
    ap.add_argument("--out", type=output_folder, default="out/loss_autocorrelation", help="output folder")
    args = ap.parse_args(argv)

    from sde_scales.atomic import write_json_atomic
    from sde_scales.errors import SDEScalesError
    from sde_scales.fitting.curves import load_curve

    try:
        lags = None if args.lags is None else tuple(int(x) for x in args.lags.split(","))
    except ValueError:
        print(f"error: --lags {args.lags!r}; give whole numbers of steps, e.g. 10,100,1000", file=sys.stderr)
        return 2
    if not (0 <= args.start < 1) or args.window < 1 or (lags is not None and min(lags) < 1):
        print("error: give 0 <= --start < 1, --window >= 1 and lags >= 1", file=sys.stderr)
        return 2
    files = args.curve or sorted(str(p) for p in (ROOT.parent / "shared" / "data" / "loss_curves").glob("*const*.csv"))
    if not files:
        print("error: no curves: give --curve FILE", file=sys.stderr)
        return 2
    rows = []
    print(f"{'curve':44s} {'n':>6s} {'se':>6s}  autocorrelation at lag (steps)")
    for f in files:
        try:
            c = load_curve(f)
            every = int(np.median(np.diff(c.step)))
            m = residual_autocorrelation(c, window=args.window, start=args.start,
                                         lags=lags or tuple(every * k for k in (1, 2, 5, 10, 20, 40)))
        except (SDEScalesError, ValueError) as exc:
            print(f"error: {f}: {exc}", file=sys.stderr)
            return 2
        rows.append({"curve": c.name, "file": str(f), **m})
        print(f"{c.name[:44]:44s} {m['n_residuals']:6d} {m['se']:6.3f}  "
              + " ".join(f"{lag}: {a:+.3f}" for lag, a in zip(m["lags"], m["acf"])) + f"; beyond {Z} se: "
              + (", ".join(map(str, m["resolved"])) or "none"))
    out = Path(args.out)
    doc = {"window": args.window, "start": args.start, "z": Z, "rows": rows}
    print(f"JSON: {write_json_atomic(out / 'loss_autocorrelation.json', doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
