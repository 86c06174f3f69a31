"""Scaling collapse (Qiu et al., ICML 2025) on a muP width ladder, with mis-scaled controls.

Trains (or resumes, in ``--out/store``) MLPs on the power-law regression task
(``sde_scales.train.data.powerlaw_features``):

1. a constant-learning-rate ladder: the loss-compute Pareto frontier, its fit
   ``L = a (c/c0)^-b + L0`` and the compute-optimal horizons ``t*(p) = k p^gamma``;
2. every width trained to its horizon under each schedule (constant, cosine, linear decay);
3. the controls, with linear decay: learning rates frozen at the narrowest width's muP values,
   and SP at the same base learning rate.

and prints the fitted gamma and L0 with their intervals, Delta(x) against sigma(x), the
supercollapse verdict per schedule and per control, and the early-warning departures. Writes
``collapse.json`` (strict JSON) and three figures: ``collapse_frontier.png``,
``collapse_curves.png`` (normalised curves with seed bands) and ``collapse_delta_sigma.png``.

    python experiments/collapse.py --quick --out out/collapse      # about 2 minutes on 2 cores
    python experiments/collapse.py --out out/collapse_full         # 32 seeds, widths 8..128

Exit status: 0, or with ``--strict`` 1 when the muP ladder with learning-rate decay does not PASS
or a control does not FAIL; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder

QUANTS = (0.2, 0.4, 0.6, 0.8, 1.0)


def _ci(v) -> str:
    return "[" + ", ".join("null" if x is None else f"{x:.3g}" for x in v) + "]"


def report(out: dict) -> str:
    fit, hz, spec = out["frontier"], out["horizons"], out["spec"]
    lines = [f"ladder: {spec.param} MLPs, widths {list(spec.widths)}, {spec.seeds} seeds, SGD lr {spec.lr}, batch "
             f"{spec.batch_size}, task {spec.dataset} (d_in {spec.d_in}), metric {spec.metric}",
             f"frontier: L = a (c/c0)^-b + L0 on {fit.loss.size} Pareto points: b = {fit.b:.3f} {_ci(fit.ci['b'])}, "
             f"L0 = {fit.L0:.4f} {_ci(fit.ci['L0'])} (95% seed bootstrap)",
             f"horizons: t* = k p^gamma, gamma = {hz.gamma:.3f} {_ci(hz.ci['gamma'])}; crossing steps "
             + ", ".join(f"n={w}: {'-' if not np.isfinite(t) else f'{t:.0f}'}" for w, t in zip(hz.widths, hz.steps))
             + "; trained to " + ", ".join(f"n={w}: {t}" for w, t in out["steps"].items())]
    for w in (*fit.warnings, *hz.warnings):
        lines.append(f"  warning: {w}")
    x = out["x"]
    idx = [int(np.argmin(np.abs(x - q))) for q in QUANTS]
    lines.append("")
    lines.append("ladder            verdict        max Delta/sigma [95% CI]   Delta/sigma at x = "
                 + " ".join(f"{q:<5g}" for q in QUANTS) + "  departs (x)")
    for label, e in out["ladders"].items():
        r = e["result"]
        if r is None:
            lines.append(f"{label:<17} -              {e.get('error')}")
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            rr = r.delta / r.sigma
        dep = ", ".join(f"{w}: {'-' if v is None else f'{v:.2f}'}" for w, v in r.departures.items())
        div = sum(e["diverged"].values())
        lines.append(f"{label:<17} {r.verdict.value:<14} {r.ratio:6.3f} [{r.ratio_ci[0]:.3f}, {r.ratio_ci[1]:.3f}]"
                     f"      " + " ".join(f"{rr[i]:<5.2f}" for i in idx) + f"  {dep}"
                     + (f"  ({div} diverged runs left out)" if div else ""))
    lines.append("")
    lines.append("ladder            Delta(x) [95% CI] | sigma(x) at x = " + ", ".join(f"{q:g}" for q in QUANTS[:-1]))
    for label, e in out["ladders"].items():
        r = e["result"]
        if r is None:
            continue
        cells = [f"{r.delta[i]:.3f} [{r.delta_ci[0][i]:.3f}, {r.delta_ci[1][i]:.3f}] | {r.sigma[i]:.3f}"
                 for i in idx[:-1]]
        lines.append(f"{label:<17} " + "; ".join(cells))
    lines.append("")
    lines.append("Delta: spread across widths of the seed-mean normalised curves, less the part their own seed noise "
                 "explains; sigma: seed-to-seed spread of one "
                 "width's curve (pooled); supercollapse: Delta <= sigma for x >= "
                 f"{next(iter(out['ladders'].values()))['result'].x0 if out['ladders'] else 0.2:g}")
    return "\n".join(lines)


def to_json(out: dict, seconds: float) -> dict:
    return {"spec": out["spec"].to_dict(), "frontier": out["frontier"].to_dict(), "horizons": out["horizons"].to_dict(),
            "trained_steps": {str(k): v for k, v in out["steps"].items()}, "seconds": seconds,
            "ladders": {k: {"diverged": {str(w): n for w, n in e["diverged"].items()},
                            "result": None if e["result"] is None else e["result"].to_dict(),
                            "error": e.get("error")} for k, e in out["ladders"].items()}}


def plot_frontier(out: dict, path):
    from sde_scales.plots import plt, save_figure

    fit = out["frontier"]
    fig, ax = plt.subplots(figsize=(5.6, 4.0), constrained_layout=True)
    for i, cv in enumerate(out["frontier_curves"]):
        ax.plot(cv.compute, cv.loss.mean(axis=0), color=f"C{i}", lw=1.2, label=f"width {cv.width} (seed mean)")
    cc = np.geomspace(fit.compute.min(), fit.compute.max(), 200)
    ax.plot(fit.compute, fit.loss, "k.", ms=3, label="Pareto frontier points")
    ax.plot(cc, fit(cc), "k--", lw=1.2, label=fr"fit $a (c/c_0)^{{-b}} + L_0$, $b$ = {fit.b:.2f}")
    ax.axhline(fit.L0, color="0.5", ls=":", label=fr"$L_0$ = {fit.L0:.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"compute $c = 6\,t\,p$ (FLOPs)")
    ax.set_ylabel("loss (constant learning rate)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return save_figure(fig, path)


def plot_curves(out: dict, path):
    from sde_scales.plots import plt, save_figure

    labels = [k for k, e in out["ladders"].items() if e["result"] is not None]
    fig, axes = plt.subplots(1, len(labels), figsize=(3.0 * len(labels), 3.3), sharey=True, constrained_layout=True,
                             squeeze=False)
    x = out["x"]
    for ax, label in zip(axes[0], labels):
        e = out["ladders"][label]
        for i, (cv, ell) in enumerate(zip(e["curves"], e["ells"])):
            m, sd = ell.mean(axis=0), ell.std(axis=0, ddof=1)
            ax.plot(x, m, color=f"C{i}", lw=1.2, label=f"width {cv.width}")
            ax.fill_between(x, m - sd, m + sd, color=f"C{i}", alpha=0.2, lw=0)
        ax.set_yscale("log")
        ax.set_title(f"{label}: {e['result'].verdict.value}", fontsize=9)
        ax.set_xlabel(r"compute fraction $x = c/c(T)$")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel(r"normalised loss $\ell(x)$ (seed mean $\pm$ sd)")
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, path)


def plot_delta_sigma(out: dict, path):
    from sde_scales.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(6.0, 4.0), constrained_layout=True)
    x = out["x"]
    for i, (label, e) in enumerate(out["ladders"].items()):
        r = e["result"]
        if r is None:
            continue
        # 0 where the seed noise explains the whole spread: a gap on the log axis
        ax.plot(x, np.where(r.delta > 0, r.delta, np.nan), color=f"C{i}", lw=1.4, label=fr"{label}: $\Delta(x)$")
        ax.fill_between(x, r.delta_ci[0], r.delta_ci[1], color=f"C{i}", alpha=0.15, lw=0)
        ax.plot(x, r.sigma, color=f"C{i}", lw=1.0, ls="--", label=fr"{label}: $\sigma(x)$")
    x0 = next((e["result"].x0 for e in out["ladders"].values() if e["result"] is not None), None)
    if x0 is not None:
        ax.axvspan(x0, 1.0, color="0.9", zorder=0, label=f"judged window $x \\geq {x0:g}$")
    ax.set_yscale("log")
    # Delta(1) is exactly 0 (every seed-mean curve ends at one): the axis stops two decades below sigma
    sig = [e["result"].sigma for e in out["ladders"].values() if e["result"] is not None]
    if sig:
        ax.set_ylim(bottom=0.01 * float(np.min(sig)))
    ax.set_xlabel(r"compute fraction $x = c/c(T)$")
    ax.set_ylabel(r"$\Delta(x)$ across widths (solid, 95% band); $\sigma(x)$ across seeds (dashed)", fontsize=8)
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3, which="both")
    return save_figure(fig, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="widths 8..64, 10 seeds, 12,000-step frontier runs (about 2 minutes on 2 cores); default: "
                         "widths 8..128, 32 seeds")
    ap.add_argument("--out", type=output_folder, default="out/collapse", help="output directory; the run store is OUT/store and is "
                                                          "resumed on the next call (default out/collapse)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling (default 0)")
    ap.add_argument("--x0", type=float, default=0.2,
                    help="start of the window [x0, 1] on which supercollapse is judged (default 0.2)")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 unless the muP ladder with linear decay PASSes and every control FAILs")
    args = ap.parse_args(argv)
    if not 0 < args.x0 < 1:
        print(f"error: --x0 {args.x0}; give a fraction in (0, 1)", file=sys.stderr)
        return 2

    import time

    from sde_scales.atomic import write_json_atomic
    from sde_scales.errors import InvalidArgumentError
    from sde_scales.rates import Verdict
    from sde_scales.train.ladder import LADDER_FULL, LADDER_QUICK, run_ladder

    spec = LADDER_QUICK if args.quick else LADDER_FULL
    out_dir = Path(args.out)
    t0 = time.perf_counter()
    try:
        out = run_ladder(spec, str(out_dir / "store"), seed=args.seed, x0=args.x0)
    except InvalidArgumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    secs = time.perf_counter() - t0
    print(report(out))
    print(f"JSON: {write_json_atomic(out_dir / 'collapse.json', to_json(out, secs))}")
    for fn, name in ((plot_frontier, "collapse_frontier.png"), (plot_curves, "collapse_curves.png"),
                     (plot_delta_sigma, "collapse_delta_sigma.png")):
        print(f"figure: {fn(out, out_dir / name)}")
    print(f"{secs:.0f} s")
    if args.strict:
        lad = out["ladders"]
        prim = lad.get(f"{spec.param}/linear", {}).get("result")
        ok = prim is not None and prim.verdict is Verdict.PASS
        ok &= all(e["result"] is not None and e["result"].verdict is Verdict.FAIL
                  for k, e in lad.items() if k.split("/")[0] in spec.controls)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
