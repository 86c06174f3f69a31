"""Close the loop: fit the SDE models to the trainer's own trajectories.

Trains a muP width ladder (MLPs on the synthetic power-law regression task, SGD) for every seed
under a constant learning rate, four step drops of different sizes at mid-run and a WSD cooldown,
then, from the run store:

1. **Theorem 5.1 on networks**: per width and drop, the delay of the loss after the drop, fitted
   (kernel law, exponential kernel) and read off the seed means without a model, each with a
   95% interval (``sde_scales.analysis.delay_width``);
2. **a calibrated macro SDE** for the evaluation loss (``sde_scales.analysis.macro_sde``): drift
   and diffusion from the seeds' increments, simulated with the engine and held against
   (a) seeds left out of the calibration and (b) a width left out of it;
3. **the stochastic delay model against the seeds**: its noise calibrated before the drop, its
   bands after the drop held against the observed seeds.

Prints each table, writes ``close_the_loop.json`` (strict JSON) and four figures under ``--out``.
The store under ``--out/store`` resumes: a second run trains nothing.

    python experiments/close_the_loop.py --quick            # about 4 minutes on 2 CPU cores
    python experiments/close_the_loop.py --out out/loop     # the full ladder
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder

QUICK = dict(widths=(16, 32, 64, 128, 256), seeds=12, steps=3000, held_out_width=64)
FULL = dict(widths=(16, 32, 64, 128, 256, 512), seeds=24, steps=8000, held_out_width=128)


def _fmt_ci(v, ci, nd=0):
    if v is None:
        return "undetermined"
    lo, hi = ci
    inside = f"[{lo:.{nd}f}, {hi:.{nd}f}]" if lo is not None and hi is not None else "[no interval]"
    return f"{v:.{nd}f} {inside}"


def _spans_text(spans, show=4):
    """A few of the step ranges where a prediction fails, and how many there are (all in the JSON)."""
    if not spans:
        return "no logged step"
    head = ", ".join(f"{a:g}" if a == b else f"{a:g}-{b:g}" for a, b in spans[:show])
    return f"{len(spans)} ranges ({head}{', ...' if len(spans) > show else ''})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 widths x 12 seeds x 3,000 steps (default: 6 x 24 x 8,000)")
    ap.add_argument("--out", type=output_folder, default="out/close_the_loop", help="output folder (store, JSON, figures); default %(default)s")
    ap.add_argument("--seed", type=int, default=0, help="seed of the analyses' resamples and simulations (default 0)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.seed < 0:
        print(f"error: --seed {args.seed}; give a non-negative integer", file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")

    from sde_scales.analysis import delay_width as dw
    from sde_scales.analysis import macro_sde as ms
    from sde_scales.analysis.grid import loss_table
    from sde_scales.atomic import write_json_atomic
    from sde_scales.errors import InvalidArgumentError
    from sde_scales.train.store import RunStore
    from sde_scales.train.sweep import run_sweep

    spec = QUICK if args.quick else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    steps = spec["steps"]
    base = dw.study_base()  # lr 0.3, batch 64, logged every 2 steps: see its docstring
    groups = dw.delay_configs(base, spec["widths"], spec["seeds"], steps, drop_at=0.5, factors=(0.5, 0.25, 0.1, 0.05),
                              wsd_fraction=0.3)
    all_cfgs = [c for g in groups.values() for c in g]
    print(f"training {len(all_cfgs)} runs ({len(spec['widths'])} widths x {spec['seeds']} seeds x {len(groups)} "
          f"schedules, {steps} steps) into {out / 'store'}", flush=True)
    run_sweep(all_cfgs, str(out / "store"), device="cpu", progress=not args.no_progress)
    st = RunStore(out / "store")
    table = loss_table(*st.read(), "eval_loss")
    t_d = int(round(0.5 * steps))
    t_wsd = steps - int(round(0.3 * steps))

    def ens(label, w):
        return dw.ensemble(table, [c for c in groups[label] if c.width == w])

    # ------------------------------------------------------------------ 1. delays per width
    delays = []
    print("\n1. Delay after a learning-rate drop (steps; 95% intervals)")
    print(f"{'width':>6s} {'drop':>9s} {'fitted half-response':>22s} {'fitted mean (tau)':>20s} {'law rmse':>9s} "
          f"{'model-free mean response':>26s} {'gain [95%]':>22s}")
    exps = {}
    for w in spec["widths"]:
        const = ens("constant", w)
        for label, start in [(k, t_d) for k in groups if k.startswith("drop")] + [("wsd", t_wsd)]:
            drop = ens(label, w)
            fd = dw.fitted_delay(const, drop, label)
            mf = dw.model_free_delay(const, drop, start, seed=args.seed)
            row = {"width": w, "drop": label, "drop_step": start, **{f"fitted_{k}": v for k, v in fd.items()},
                   **{f"model_free_{k}": v for k, v in mf.items()}}
            delays.append(row)
            gain = f"{mf['gain']:.4f} [{mf['gain_ci'][0]:.4f}, {mf['gain_ci'][1]:.4f}]"
            print(f"{w:6d} {label:>9s} {_fmt_ci(fd['delay'], fd['delay_ci'], 1):>22s} "
                  f"{_fmt_ci(fd['time_scale'], fd['time_scale_ci'], 1):>20s} {fd['rmse_drop_run']:9.4f} "
                  f"{_fmt_ci(mf['delay_after_drop'], mf['delay_after_drop_ci'], 1):>26s} {gain:>22s}")
        drops = {base.lr * float(k[4:]): ens(k, w) for k in groups if k.startswith("drop")}
        try:
            est = dw.delay_exponent(const, drops, t_d, seed=args.seed)
            exps[w] = {"exponent": est.exponent, "ci": list(est.ci), "x": est.x.tolist(), "values": est.values.tolist()}
        except InvalidArgumentError as exc:  # an unresolved delay at one drop: no exponent, say why
            exps[w] = {"exponent": None, "ci": [None, None], "why": str(exc)}
    resolved = [r for r in delays if r["model_free_resolved"] and r["drop"] != "wsd"]
    lower_pos = [r for r in resolved if r["model_free_delay_after_drop_ci"][0] > 0]
    print(f"   step drops: the delay is resolved above zero in {len(lower_pos)} of "
          f"{sum(r['drop'] != 'wsd' for r in delays)} (width, drop) cases (model-free interval's lower end > 0)")
    print("   Theorem 5.1 read on the network: mean response time against 1/eta_after (the kernel's time scale in "
          "steps when it is fixed in learning-rate area); exponent 1 if so, 0 if the kernel is fixed in steps:")
    for w, e in exps.items():
        if e["exponent"] is None:
            txt = f"none ({e['why']})"
        elif not np.all(np.isfinite(np.asarray(e["ci"], float))):  # resamples with no finite statistic
            txt = (f"{e['exponent']:.2f}, no interval (some seed resamples have no positive delay at a drop: "
                   f"the seeds do not resolve it)")
        else:
            txt = f"{e['exponent']:.2f} [{e['ci'][0]:.2f}, {e['ci'][1]:.2f}]"
        print(f"     width {w:4d}: exponent {txt}")

    # ------------------------------------------------------------------ 2. the macro SDE
    print("\n2. Macro SDE of the evaluation loss, constant learning rate (calibrated on increments, every 2 steps)")
    fits, paths = {}, {}
    thin = 1  # every logged point (2 steps): at lr 0.3 the seeds' deviations decorrelate within ~20 steps
    for w in spec["widths"]:
        s, X, _ = ens("constant", w)
        paths[w] = (s[::thin], X[:, ::thin])
    half = spec["seeds"] // 2
    w_ref = spec["held_out_width"]
    s, X = paths[w_ref]
    cal = ms.calibrate(s, X[:half], n_bins=6)
    sim = ms.simulate(cal, X[half:, 0], 1000, seed=args.seed)
    held_seeds = ms.compare(s, sim, X[half:], seed=args.seed)
    print(f"   (a) width {w_ref}, calibrated on seeds 0..{half - 1}, predicted for seeds {half}..{X.shape[0] - 1} "
          f"from their starting values: sd inside the held-out 95% interval at {held_seeds['sd_inside_fraction']:.0%} "
          f"of logged steps, mean at {held_seeds['mean_inside_fraction']:.0%}; late sd ratio predicted/observed "
          f"{held_seeds['late_sd_ratio_median']:.2f}")
    print(f"       sd outside the interval on {_spans_text(held_seeds['sd_fails_on'])}")
    for note in cal.warnings:
        print(f"       warning: {note}")
    cal_widths = [w for w in spec["widths"] if w != w_ref]
    for w in cal_widths:
        fits[w] = ms.calibrate(*paths[w], n_bins=6)
    pred_fit = ms.predict_width(fits, w_ref)
    sim_w = ms.simulate(pred_fit, pred_fit.sd0, 1000, seed=args.seed)
    held_width = ms.compare(s, sim_w, X, seed=args.seed)
    print(f"   (b) width {w_ref} left out, coefficients interpolated from widths {cal_widths}: mean inside the "
          f"observed 95% interval at {held_width['mean_inside_fraction']:.0%} of logged steps (RMS error "
          f"{held_width['rms_mean_error']:.2e}), sd at {held_width['sd_inside_fraction']:.0%}; late sd ratio "
          f"{held_width['late_sd_ratio_median']:.2f}")
    print(f"       mean outside on {_spans_text(held_width['mean_fails_on'])}; sd outside on "
          f"{_spans_text(held_width['sd_fails_on'])}")
    mis = {w: f.misspecified for w, f in fits.items()}
    print(f"       specification checks flag the model at widths {[w for w, v in mis.items() if v] or 'none'}")

    # ------------------------------------------------------------------ 3. stochastic delay model
    print("\n3. Stochastic delay model against the seeds, after the larger step drop")
    bands = []
    big = [k for k in groups if k.startswith("drop")][-1]
    for w in spec["widths"]:
        const, drop = ens("constant", w), ens(big, w)
        row = next(r for r in delays if r["width"] == w and r["drop"] == big)
        b = dw.delay_bands(const, drop, row["fitted_prediction"], t_d, seed=args.seed)
        bands.append({"width": w, **b})
        c = b["comparison_after_drop"]
        print(f"   width {w:4d}: sigma_L {b['sigma_L']:.3g}, tau_xi {b['tau_xi']:.0f} steps"
              f"{' (lower bound)' if b['tau_xi_is_lower_bound'] else ''}; sd after the drop predicted "
              f"{b['predicted_sd_after']:.2e}, observed {b['observed_sd_after']:.2e}; mean inside "
              f"{c['mean_inside_fraction']:.0%}, sd inside {c['sd_inside_fraction']:.0%}")

    # ------------------------------------------------------------------ figures and JSON
    figs = _figures(out, spec, groups, ens, delays, held_seeds, held_width, bands, t_d, big, w_ref)
    doc = {"spec": spec, "steps": steps, "drop_step": t_d, "wsd_start": t_wsd, "metric": "eval_loss",
           "delays": [{k: v for k, v in r.items() if k != "fitted_prediction"} for r in delays],
           "delay_exponent_vs_inverse_lr": {str(w): e for w, e in exps.items()},
           "macro_sde": {"held_out_seeds": {"width": w_ref, "calibration": cal.to_json(), "comparison": held_seeds},
                         "held_out_width": {"width": w_ref, "calibration_widths": cal_widths,
                                            "fits": {str(w): f.to_json() for w, f in fits.items()},
                                            "predicted": pred_fit.to_json(), "comparison": held_width}},
           "delay_model_bands": bands, "figures": figs, "seconds": time.perf_counter() - started}
    path = write_json_atomic(out / "close_the_loop.json", doc)
    print(f"\nwrote {path} and {len(figs)} figures in {time.perf_counter() - started:.0f} s")
    return 0


def _label_first(axes):
    axes[0].set_ylabel("evaluation loss (MSE)")
    axes[0].legend(fontsize=7)


def _save(fig, path) -> str:
    from sde_scales.plots import save_figure

    fig.tight_layout()
    return str(save_figure(fig, path))


def _figures(out, spec, groups, ens, delays, held_seeds, held_width, bands, t_d, big, w_ref) -> list[str]:
    import matplotlib.pyplot as plt

    files = []
    # delay against width
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    undetermined = False
    for label, marker in zip([k for k in groups if k != "constant"], "osd^v*"):
        rows = [r for r in delays if r["drop"] == label]
        w = np.array([r["width"] for r in rows], float)
        for kind, fill, dx in (("model_free", "full", 0.97), ("fitted", "none", 1.03)):
            key = "model_free_delay_after_drop" if kind == "model_free" else "fitted_time_scale"
            ci_key = key + "_ci"
            v = np.array([np.nan if r[key] is None else r[key] for r in rows], float)
            lo = np.array([np.nan if r[ci_key][0] is None else r[ci_key][0] for r in rows], float)
            hi = np.array([np.nan if r[ci_key][1] is None else r[ci_key][1] for r in rows], float)
            # a fitted time scale with no interval is on a bound of its range (or not determined at
            # all): its value is the bound's, not a measurement, and is drawn apart (a cross)
            has_ci = np.isfinite(lo) & np.isfinite(hi) if kind == "fitted" else np.ones(v.size, bool)
            eb = ax.errorbar(w[has_ci] * dx, v[has_ci], yerr=[np.abs(v - lo)[has_ci], np.abs(hi - v)[has_ci]],
                             marker=marker, fillstyle=fill, ls="none", capsize=2,
                             label=f"{label}, {'read off the seeds' if kind == 'model_free' else 'kernel-law fit (tau)'}")
            if not has_ci.all():
                ax.plot(w[~has_ci] * dx, v[~has_ci], "x", ms=7, color=eb[0].get_color())
                undetermined = True
    if undetermined:
        ax.plot([], [], "x", ms=7, color="0.3", label="kernel-law tau with no interval: on a bound of\nits range "
                                                      "(the bound's value, not a fit)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("width $n$")
    ax.set_ylabel("mean response time after the drop (steps)")
    ax.set_yscale("log")
    ax.set_title("Delay of the loss after a learning-rate drop\n(95% intervals)", fontsize=10)
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the points fill the axes
    files.append(_save(fig, out / "delay_vs_width.png"))

    # macro SDE predictions
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, cmp, title in ((axes[0], held_seeds, f"width {w_ref}: held-out seeds"),
                           (axes[1], held_width, f"width {w_ref} left out of the calibration")):
        t = np.array(cmp["t"])
        om, osd = np.array(cmp["observed_mean"]), np.array(cmp["observed_sd"])
        pm, psd = np.array(cmp["predicted_mean"]), np.array(cmp["predicted_sd"])
        ax.fill_between(t, om - osd, om + osd, color="C0", alpha=0.25, label="observed seeds: mean $\\pm$ sd")
        ax.plot(t, om, color="C0", lw=1)
        ax.plot(t, pm, color="C3", lw=1, label="calibrated SDE: mean")
        ax.plot(t, pm - psd, color="C3", lw=0.8, ls="--", label="calibrated SDE: mean $\\pm$ sd")
        ax.plot(t, pm + psd, color="C3", lw=0.8, ls="--")
        ax.set_xlabel("step")
        ax.set_title(title, fontsize=10)
        ax.set_yscale("log")
    _label_first(axes)
    files.append(_save(fig, out / "macro_sde_predictions.png"))

    # delay-model bands through the drop
    show = [spec["widths"][0], spec["widths"][-1]]
    fig, axes = plt.subplots(1, len(show), figsize=(10, 4))
    for ax, w in zip(axes, show):
        s, X, _ = ens(big, w)
        b = next(r for r in bands if r["width"] == w)
        c = b["comparison_after_drop"]
        t = np.array(c["t"])
        for i in range(X.shape[0]):
            ax.plot(s, X[i], color="0.6", lw=0.4, label="observed seeds" if i == 0 else None)
        pm, psd = np.array(c["predicted_mean"]), np.array(c["predicted_sd"])
        ax.fill_between(t, pm - 1.645 * psd, pm + 1.645 * psd, color="C3", alpha=0.3,
                        label="delay model: 90% band")
        ax.axvline(t_d, color="k", ls=":", lw=0.8, label="drop")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"width {w}, {big}", fontsize=10)
    _label_first(axes)
    files.append(_save(fig, out / "delay_model_bands.png"))

    # observed against fitted law, one width
    fig, ax = plt.subplots(figsize=(5.5, 4))
    w = w_ref
    for i, label in enumerate([k for k in groups if k != "constant"]):
        s, X, _ = ens(label, w)
        row = next(r for r in delays if r["width"] == w and r["drop"] == label)
        ax.plot(s, X.mean(0), color=f"C{i}", lw=1, label=f"{label}: seed mean")
        ax.plot(s, row["fitted_prediction"], color=f"C{i}", lw=1, ls="--", label=f"{label}: kernel law")
    s, X, _ = ens("constant", w)
    ax.plot(s, X.mean(0), color="k", lw=1, label="constant: seed mean")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("evaluation loss (MSE)")
    ax.set_title(f"width {w}: seed means and the fitted kernel law", fontsize=10)
    ax.legend(fontsize=7)
    files.append(_save(fig, out / "fitted_curves.png"))
    return files


if __name__ == "__main__":
    sys.exit(main())
