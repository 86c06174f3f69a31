"""Learning-rate transfer, muP against SP: final loss against learning rate per width.

Under muP the best learning rate stays put as the width grows; under SP (width-independent
learning rate) it drifts. Writes OUT/transfer.csv, OUT/eta_star_final.csv and OUT/lr_transfer.png.

    python experiments/lr_transfer.py --quick --out out/lr_transfer
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder


def optimum_table(tr) -> list[dict]:
    """Per (param, width): the best grid learning rate and the vertex of the parabola in log lr
    through it and its neighbours (sub-grid resolution; None when the best is at a grid end)."""
    from sde_scales.analysis.width import eta_star_log

    rows = []
    for (p, w), g in tr.groupby(["param", "width"]):
        g = g.sort_values("lr")
        v = g.value.to_numpy(float)
        k = int(np.nanargmin(np.where(np.isfinite(v), v, np.nan)))
        vert = float(eta_star_log(g.lr.to_numpy(float), v[:, None])[0])
        rows.append({"param": p, "width": int(w), "best_grid_lr": float(g.lr.iloc[k]), "best_loss": float(v[k]),
                     "eta_star": None if not np.isfinite(vert) else float(np.exp(vert)),
                     "n_diverged": int(g.n_diverged.iloc[0]) if "n_diverged" in g else 0})
    return rows


def eta_star_slope(table: list[dict], param: str) -> float | None:
    r"""The drift of the optimum with width: the least-squares slope of :math:`\log_2 \eta^*`
    against :math:`\log_2 n` over the widths of ``table`` (:func:`optimum_table`) for ``param``;
    None when an optimum lies at an end of the grid at some width (its drift is then not measured)."""
    rs = [r for r in table if r["param"] == param]
    e = [r["eta_star"] for r in rs]
    if len(rs) < 2 or any(v is None for v in e):
        return None
    return float(np.polyfit(np.log2([r["width"] for r in rs]), np.log2(e), 1)[0])


def per_seed_slopes(runs, traj) -> dict:
    """``{param: {seed: slope}}``: :func:`eta_star_slope` on each seed's runs alone. With few
    seeds their spread is the only measure of the slope's uncertainty there is (no interval)."""
    from sde_scales.analysis import transfer_curves

    out: dict = {}
    for seed in sorted(runs.seed.unique()):
        table = optimum_table(transfer_curves(runs[runs.seed == seed], traj))
        for p in sorted({r["param"] for r in table}):
            out.setdefault(p, {})[int(seed)] = eta_star_slope(table, p)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="widths 64, 256, 1024, 2 epochs of a synthetic task, 27 learning rates 2^(1/3) apart "
                         "(a few minutes on 2 cores)")
    ap.add_argument("--out", type=output_folder, default="out/lr_transfer", help="output directory (default out/lr_transfer)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda (default auto)")
    args = ap.parse_args(argv)
    from sde_scales.analysis import transfer_curves
    from sde_scales.atomic import write_json_atomic, write_text_atomic
    from sde_scales.train.store import RunStore
    from sde_scales.train.sweep import run_sweep
    from sde_scales.train.trainer import config_grid

    widths = [64, 256, 1024] if args.quick else [128, 512, 2048, 8192]
    # steps of 2^(1/3): fine enough that a drift of SP's optimum by a factor 2 per 4x width shows
    # as several grid steps, and the parabola vertex resolves it further
    step = 2 ** (1 / 3)
    lrs = list(np.round(0.008 * step ** np.arange(27 if args.quick else 30), 6))  # 0.008 .. 3.3 (quick)
    common = dict(dataset="synthetic", epochs=2 if args.quick else 20, batch_size=128,
                  n_train=4096 if args.quick else 50_000, log_every=16, d_in=3072 if not args.quick else 256)
    out = Path(args.out)
    configs = config_grid(["mup", "sp"], widths, lrs, [0, 1], **common)
    res = run_sweep(configs, str(out / "store"), device=args.device)
    print(f"sweep: {res['ran']} runs trained in {res['stacks']} stacks, {res['skipped']} already in the store, "
          f"{res['diverged']} diverged")
    st = RunStore(out / "store")
    runs, traj = st.read()  # read once: the table and the per-seed slopes
    tr = transfer_curves(runs, traj)
    write_text_atomic(out / "transfer.csv", tr.to_csv(index=False))
    table = optimum_table(tr)
    print(f"\n{'param':6s} {'width':>6s} {'best grid lr':>12s} {'eta* (parabola)':>16s} {'final loss':>10s} "
          f"{'diverged':>8s}")
    for r in table:
        eta = "at grid end" if r["eta_star"] is None else f"{r['eta_star']:.4g}"
        print(f"{r['param']:6s} {r['width']:6d} {r['best_grid_lr']:12.4g} {eta:>16s} {r['best_loss']:10.4g} "
              f"{r['n_diverged']:8d}")
    summary = {}
    seeds = per_seed_slopes(runs, traj)
    for p in sorted({r["param"] for r in table}):
        summary[p] = eta_star_slope(table, p)
        if summary[p] is None:
            print(f"{p}: an optimum lies at the end of the grid at some width: its drift is not measured (widen "
                  f"the grid)")
            continue
        each = ", ".join(f"seed {k}: {'at grid end' if v is None else f'{v:+.2f}'}" for k, v in seeds[p].items())
        print(f"{p}: eta* ~ width^{summary[p]:+.2f} (log2 eta* per doubling of width; grid step 2^{1 / 3:.2f}, the "
              f"parabola resolves a fraction of it); muP predicts 0, SP with a width-independent learning rate "
              f"a negative slope. Each seed alone: {each} ({len(seeds[p])} seeds: their spread is the only measure "
              f"of this slope's uncertainty; no interval)")
    write_json_atomic(out / "lr_transfer.json", {"table": table, "eta_star_slope": summary,
                                                 "eta_star_slope_per_seed": {p: {str(k): v for k, v in d.items()}
                                                                             for p, d in seeds.items()},
                                                 "learning_rates": lrs})

    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from sde_scales.plots import save_figure

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True, sharey=True)
    for a, (p, g) in zip(ax, tr.groupby("param")):
        for i, (w, gw) in enumerate(g.groupby("width")):
            v = gw.value.where(np.isfinite(gw.value))
            a.plot(gw.lr, v, "o-", ms=3, color=f"C{i}", label=f"width {w}")
            r = next(r for r in table if r["param"] == p and r["width"] == w)
            if r["eta_star"] is not None:
                a.axvline(r["eta_star"], color=f"C{i}", ls=":", lw=1)
        a.set(xscale="log", yscale="log", xlabel="learning rate (base, before width scaling)",
              title=f"{p}: final loss (dotted: fitted optimum)")
        # losses of unstable runs reach 1e15: show the range where the optimum lives, from below the
        # least loss to a few times the loss at the smallest rate (near the loss before training)
        finite = tr[np.isfinite(tr.value)]
        at_smallest = finite[finite.lr == finite.lr.min()].value.max()
        a.set_ylim(0.8 * float(finite.value.min()), min(3.0 * float(at_smallest), float(finite.value.max()) * 1.25))
        # a range of one or two decades: label the 2s and 5s between the powers of ten as well
        a.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        a.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        a.yaxis.set_minor_formatter(NullFormatter())
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=7)
    ax[0].set_ylabel("final train loss (seed mean)")
    print(f"figure: {save_figure(fig, out / 'lr_transfer.png')}")


if __name__ == "__main__":
    main()
