"""Which cooldown is best? Forecasts of the final loss against the WSD cooldown fraction.

Fits each law to runs that hold no WSD cooldown (by default the shared 124M constant and cosine
runs at peak 1e-3), forecasts the final loss of WSD schedules whose linear cooldown to 0 takes the
last 5%, 10%, ..., 95% of the run (the template run's warmup and length: by default the constant
run's per-step rates, the cooldown replacing their end), and sets the observed WSD runs beside
them (``124m_wsd-lin*_lr1e-3``: cooldowns of 10% to 90%, never fitted), each also forecast from
its own logged schedule. Prints per law:

* each observed run's forecast final loss with its band, the observed final loss (the mean of its
  last 5% of rows) with its standard error, and z, the error over both combined;
* the forecast's best fraction on the grid, and the fractions whose forecast the fit does not
  separate from it (:func:`sde_scales.fitting.forecast.forecast_difference`: the difference of
  final losses from one fit, 95%);
* the observed best run, and the runs not separated from it (the difference of two observed final
  losses against their standard errors combined, as if independent).

Writes ``cooldown_forecast.json`` (strict), ``cooldown_forecast.csv`` (the grid) and
``cooldown_forecast.png``.

    python experiments/cooldown_forecast.py --out out/cooldown_forecast
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder

FITTED = ("124m_const_lr1e-3", "124m_cos10_lr1e-3")
OBSERVED = "124m_wsd-lin*_lr1e-3.csv"
LAWS = ("kernel", "momentum", "mpl")


def cooldown(base: np.ndarray, fraction: float) -> np.ndarray:
    r"""``base`` (one rate per step, steps 0..T) with a linear cooldown to 0 over its last
    ``fraction`` of steps: :math:`\eta_k = \eta^{base}_{k_0} (T - k)/(T - k_0)` for
    :math:`k \ge k_0 = T - \mathrm{round}(f T)`."""
    T = base.size - 1
    k0 = T - int(round(fraction * T))
    out = base.copy()
    k = np.arange(k0, T + 1)
    out[k0:] = base[k0] * (T - k) / max(T - k0, 1)
    return out


def observed_final(curve) -> tuple[float, float | None]:
    from sde_scales.fitting.fit import final_loss_noise, final_rows

    n = final_rows(curve.loss.size)
    return float(curve.loss[-n:].mean()), final_loss_noise(curve.loss)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).parents[2] / "shared" / "data" / "loss_curves"),
                    help="folder of the loss curves (default ../shared/data/loss_curves)")
    ap.add_argument("--fit", nargs="+", default=list(FITTED), metavar="NAME",
                    help=f"curves to fit, file names without .csv (default {' '.join(FITTED)})")
    ap.add_argument("--template", default=None, metavar="NAME",
                    help="the run whose per-step rates (warmup, peak, length) the grid's schedules take, the "
                         "cooldown replacing their end (default: the first --fit curve)")
    ap.add_argument("--observed", default=OBSERVED, metavar="GLOB",
                    help=f"WSD runs to set beside the forecasts, never fitted (default {OBSERVED})")
    ap.add_argument("--laws", default=",".join(LAWS), help=f"comma-separated, of {', '.join(LAWS)} (default all)")
    ap.add_argument("--skip-steps", type=int, default=500, help="rows before this step are not fitted (default 500)")
    ap.add_argument("--quick", action="store_true", help="the momentum law alone, on a grid of tenths")
    ap.add_argument("--out", type=output_folder, default="out/cooldown_forecast", help="output directory")
    args = ap.parse_args(argv)

    from sde_scales.atomic import write_json_atomic, write_text_atomic
    from sde_scales.errors import DataFileError, InvalidArgumentError
    from sde_scales.fitting.curves import load_curve
    from sde_scales.fitting.fit import fit
    from sde_scales.fitting.forecast import forecast, forecast_difference
    from sde_scales.fitting.report import make_law

    laws = ["momentum"] if args.quick else [v.strip() for v in args.laws.split(",") if v.strip()]
    if not laws or any(v not in LAWS for v in laws):
        print(f"error: --laws {args.laws!r}: give some of {', '.join(LAWS)}", file=sys.stderr)
        return 2
    data = Path(args.data)
    try:
        fitted = [load_curve(data / f"{n}.csv") for n in args.fit]
        template = fitted[0] if args.template is None else load_curve(data / f"{args.template}.csv")
        observed = [load_curve(p) for p in sorted(data.glob(args.observed))]
    except (DataFileError, InvalidArgumentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not observed:
        print(f"error: no file in {data} matches --observed {args.observed!r}", file=sys.stderr)
        return 2
    base = template.per_step_lr()
    fractions = np.round(np.arange(0.1, 0.91, 0.1) if args.quick else np.arange(0.05, 0.951, 0.05), 2)
    obs = {c.name: observed_final(c) for c in observed}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"fitted": [c.name for c in fitted], "template": template.name, "skip_steps": args.skip_steps,
           "fractions": fractions.tolist(), "observed": {k: {"final": v[0], "se": v[1]} for k, v in obs.items()},
           "laws": {}}
    # observed: best run, and the runs whose final loss is not separated from it (independent errors)
    best_obs = min(obs, key=lambda k: obs[k][0])
    tie_obs = [k for k, (m, se) in obs.items()
               if abs(m - obs[best_obs][0]) <= 1.96 * float(np.hypot(se or 0.0, obs[best_obs][1] or 0.0))]
    doc["observed_best"] = {"run": best_obs, "not_separated": tie_obs}
    grid_rows = {"fraction": fractions}
    curves_for_plot = {}
    for name in laws:
        law = make_law(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a fit's warnings are fit-delay's business; the bands carry them
            res = fit(law, fitted, skip_steps=args.skip_steps)
            grid = [forecast(res, cooldown(base, f), name=f"cooldown {f:.2f}") for f in fractions]
            runs = [forecast(res, c.per_step_lr(), every=c.log_every, name=c.name) for c in observed]
            i_best = int(np.argmin([g.final_loss for g in grid]))
            ties = [float(fractions[i]) for i, g in enumerate(grid)
                    if i == i_best or forecast_difference(res, g, grid[i_best]).verdict == "not separated"]
        rows = []
        print(f"\n{law.label}: fitted on {', '.join(c.name for c in fitted)} (from step {args.skip_steps})")
        print(f"  {'run':28s} {'forecast':>9s} {'+- sd':>7s} {'observed':>9s} {'+- se':>7s} {'z':>6s}")
        for c, f in zip(observed, runs):
            m, se = obs[c.name]
            sd = f.final_sd
            z = None if sd is None or se is None else (f.final_loss - m) / float(np.hypot(sd, se))
            rows.append({"run": c.name, "forecast": f.final_loss, "forecast_sd": sd, "observed": m, "observed_se": se,
                         "z": z, "warnings": list(f.warnings)})
            fmt = lambda v, k=4: "-" if v is None else f"{v:.{k}f}"  # noqa: E731
            print(f"  {c.name:28s} {f.final_loss:9.4f} {fmt(sd):>7s} {m:9.4f} {fmt(se):>7s} {fmt(z, 2):>6s}")
        zs = [r["z"] for r in rows if r["z"] is not None]
        within = float(np.mean(np.abs(zs) <= 1.96)) if zs else None
        print(f"  forecast best cooldown on the grid: {fractions[i_best]:.2f} (final {grid[i_best].final_loss:.4f}); "
              f"not separated from it by the fit: {', '.join(f'{v:.2f}' for v in ties)}")
        print(f"  observed best: {best_obs}; not separated from it: {', '.join(tie_obs)}")
        warned = [f"{fr:.2f}" for fr, g in zip(fractions, grid) if g.warnings]
        if warned:
            print(f"  forecasts beyond the fitted curves (warned; the warnings are in the JSON): cooldowns "
                  f"{', '.join(warned)}")
        if within is not None:
            print(f"  observed finals within the 95% band of forecast and observation: {within:.0%} of {len(zs)}")
        doc["laws"][law.label] = {"runs": rows, "within_95": within, "best_fraction": float(fractions[i_best]),
                                  "not_separated_from_best": ties,
                                  "grid": [{"fraction": float(fr), "final": g.final_loss, "sd": g.final_sd,
                                            "warnings": list(g.warnings)} for fr, g in zip(fractions, grid)]}
        grid_rows[f"{law.label} final"] = [g.final_loss for g in grid]
        grid_rows[f"{law.label} sd"] = [np.nan if g.final_sd is None else g.final_sd for g in grid]
        curves_for_plot[law.label] = (np.array([g.final_loss for g in grid]),
                                      np.array([np.nan if g.final_sd is None else g.final_sd for g in grid]))
    import pandas as pd

    write_text_atomic(out_dir / "cooldown_forecast.csv", pd.DataFrame(grid_rows).to_csv(index=False))
    print(f"\nJSON: {write_json_atomic(out_dir / 'cooldown_forecast.json', doc)}")
    print(f"plot: {plot(out_dir / 'cooldown_forecast.png', fractions, curves_for_plot, observed, obs, fitted)}")
    return 0


def _fraction_of(curve) -> float:
    """The cooldown fraction of a WSD run from its rates: the share of its steps after the last
    step at the peak."""
    lr = curve.per_step_lr()
    T = lr.size - 1
    at_peak = np.flatnonzero(lr >= lr.max() * (1 - 1e-9))
    return (T - int(at_peak[-1])) / T


def plot(path, fractions, laws: dict, observed, obs: dict, fitted):
    import matplotlib.pyplot as plt

    from sde_scales.plots import save_figure

    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    for i, (label, (m, sd)) in enumerate(laws.items()):
        col = f"C{i}"
        ax.plot(fractions, m, color=col, lw=1.4, label=f"{label}: forecast")
        ok = np.isfinite(sd)
        ax.fill_between(fractions[ok], (m - 1.96 * sd)[ok], (m + 1.96 * sd)[ok], color=col, alpha=0.15, lw=0)
    x = [_fraction_of(c) for c in observed]
    y = [obs[c.name][0] for c in observed]
    e = [1.96 * (obs[c.name][1] or 0.0) for c in observed]
    ax.errorbar(x, y, yerr=e, fmt="o", color="k", ms=4, capsize=3,
                label="observed runs (not fitted): final loss, 1.96 standard errors")
    ax.set_xlabel("cooldown fraction of the run (linear to 0)")
    ax.set_ylabel("final training loss (mean of the last 5% of rows)")
    ax.set_title(f"forecast from {', '.join(c.name for c in fitted)}; shaded: 95% band of each forecast", fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    return save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
