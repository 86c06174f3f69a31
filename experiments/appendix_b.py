"""The paper's Appendix B: learning-rate grid at large width, eta*(t), loss ratios, transfer.

Full configuration (for a GPU): CIFAR-10, one hidden layer of width 10,000, 300 epochs, batch 128,
SGD, learning rates 0.01..0.30 (30 values), muP. ``--quick``: synthetic 3072-d data, widths
128..2048, a few epochs, minutes on 2 CPU cores. Both write the same tables and figures:

    OUT/store/              the run store (resumable: run the command again to continue)
    OUT/eta_star.csv        best learning rate per width and step, and the step it settles at
    OUT/loss_ratio.csv      worst / best loss across learning rates over time
    OUT/transfer.csv        final loss against learning rate per width
    OUT/appendix_b.json     the loss ratio and eta* at the reported epochs (strict JSON)
    OUT/appendix_b.png      eta*(t); the loss ratio over time; loss against learning rate at the
                            reported epochs with the optimum marked; loss curves

    python experiments/appendix_b.py --quick --out out/appendix_b
    python experiments/appendix_b.py --out out/appendix_b_full --device cuda
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder


def _nearest_step(steps: np.ndarray, target: float) -> int:
    return int(steps[np.argmin(np.abs(steps - target))])


def report_table(ratio, best, report_epochs, quick_scale, steps_per_epoch) -> list[dict]:
    """Rows (width, epoch): worst/best loss ratio over the learning rates that did not diverge, the
    best learning rate (and whether it is the grid's end, where the optimum may lie outside the
    grid), and how many runs of that width diverged (left out)."""
    rows = []
    for w, g in ratio.groupby("width"):
        steps = np.sort(g.step.unique())
        for e in report_epochs:
            e_run = e * quick_scale
            st = _nearest_step(steps, e_run * steps_per_epoch)
            r = g[g.step == st].iloc[0]
            b = best[(best.width == w) & (best.step == st)]
            rows.append({"width": int(w), "paper_epoch": e, "epoch": round(st / steps_per_epoch, 3), "step": st,
                         "ratio": float(r.ratio), "eta_star": float(b.eta_star.iloc[0]) if len(b) else None,
                         "eta_star_at_grid_edge": bool(b.at_grid_edge.iloc[0]) if len(b) else None,
                         "n_diverged": int(r.n_diverged)})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="synthetic 3072-d data, widths 128..2048, 8 learning rates, 3 epochs (minutes on 2 CPU cores)")
    ap.add_argument("--out", type=output_folder, default="out/appendix_b", help="output directory (default out/appendix_b)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda (default auto)")
    ap.add_argument("--executor", default="local", choices=["local", "process", "dask"],
                    help="where stacks run (default local)")
    ap.add_argument("--scheduler", default=None, help="dask scheduler address, or local (with --executor dask)")
    ap.add_argument("--report-epochs", default="10,120",
                    help="epochs of the paper's 300 at which to report the loss ratio (default 10,120, the epochs "
                         "the paper reports: 1.10 and 238.33); --quick reports at the same fractions of its run")
    args = ap.parse_args(argv)
    try:
        report_epochs = [float(v) for v in args.report_epochs.split(",")]
        if any(not 0 < e <= 300 for e in report_epochs):
            raise ValueError
    except ValueError:
        ap.error(f"--report-epochs {args.report_epochs!r}: give comma-separated epochs in (0, 300]")
    from sde_scales.analysis import eta_star, loss_ratio, settle_step, transfer_curves
    from sde_scales.atomic import write_json_atomic, write_text_atomic
    from sde_scales.train.store import RunStore
    from sde_scales.train.sweep import run_sweep
    from sde_scales.train.trainer import config_grid

    if args.quick:
        # wider than the paper's 0.01..0.30 so that the optimum of the synthetic task is inside the grid
        widths, lrs, seeds = [128, 512, 2048], list(np.round(np.geomspace(0.03, 3.0, 8), 4)), [0]
        common = dict(dataset="synthetic", epochs=3, batch_size=128, n_train=4096, log_every=4)
    else:
        widths, lrs, seeds = [10_000], list(np.round(np.linspace(0.01, 0.30, 30), 4)), [0]
        common = dict(dataset="cifar10", epochs=300, batch_size=128, n_train=50_000, log_every=391, eval_every=1)
    quick_scale = common["epochs"] / 300.0
    out = Path(args.out)
    configs = config_grid(["mup"], widths, lrs, seeds, **common)
    res = run_sweep(configs, str(out / "store"), executor=args.executor, scheduler=args.scheduler, device=args.device,
                    data_root=str(out / "data"))
    print(f"sweep: {res['ran']} runs trained in {res['stacks']} stacks, {res['skipped']} already in the store, "
          f"{res['diverged']} diverged")
    st = RunStore(out / "store")
    runs, traj = st.read()
    best = eta_star(runs, traj)
    ratio = loss_ratio(runs, traj)
    tr = transfer_curves(runs, traj)
    settle = settle_step(best)
    for name, table_ in (("eta_star", best), ("loss_ratio", ratio), ("transfer", tr)):
        write_text_atomic(out / f"{name}.csv", table_.to_csv(index=False))
    steps_per_epoch = common["n_train"] / common["batch_size"]
    table = report_table(ratio, best, report_epochs, quick_scale, steps_per_epoch)
    print(f"\nworst/best train loss across the learning rates that did not diverge (paper, width 10,000: 1.10 at "
          f"epoch 10, 238.33 at epoch 120){'; --quick: the same fractions of a ' + str(common['epochs']) + '-epoch run' if args.quick else ''}")
    print(f"{'width':>6s} {'paper epoch':>11s} {'epoch':>7s} {'ratio':>9s} {'eta*':>7s} {'diverged':>8s}")
    for r in table:
        eta = "-" if r["eta_star"] is None else f"{r['eta_star']:.4g}" + ("*" if r["eta_star_at_grid_edge"] else "")
        print(f"{r['width']:6d} {r['paper_epoch']:11g} {r['epoch']:7.3g} {r['ratio']:9.3f} {eta:>7s} "
              f"{r['n_diverged']:8d}")
    if any(r["eta_star_at_grid_edge"] for r in table):
        print("* the grid's end: the optimum may lie outside the learning rates trained; widen the grid")
    print("\neta*(t), the learning rate with the least seed-mean train loss, and the step it settles at:")
    print(settle.to_string(index=False))
    write_json_atomic(out / "appendix_b.json", {"report": table, "learning_rates": lrs, "widths": widths,
                                                 "epochs": common["epochs"], "dataset": common["dataset"],
                                                 "sweep": res})

    import matplotlib.pyplot as plt

    from sde_scales.analysis import loss_table
    from sde_scales.plots import save_figure

    lt = loss_table(runs, traj)
    fig, ax = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    for i, (w, g) in enumerate(best.groupby("width")):
        ax[0, 0].plot(g.step / steps_per_epoch, g.eta_star, "o-", ms=3, color=f"C{i}", label=f"width {w}")
        edge = g[g.at_grid_edge]
        ax[0, 0].plot(edge.step / steps_per_epoch, edge.eta_star, "o", ms=6, mfc="w", color=f"C{i}")
    if best.at_grid_edge.any():
        ax[0, 0].plot([], [], "o", ms=6, mfc="w", color="0.3", label="at the grid's end (optimum may be outside)")
    for w, g in ratio.groupby("width"):
        ax[0, 1].plot(g.step / steps_per_epoch, g.ratio, label=f"width {w}")
    for r in table:
        ax[0, 1].plot(r["epoch"], r["ratio"], "k*", ms=8)
    wmax = max(widths)
    gw = lt[lt.width == wmax]
    steps = np.sort(gw.step.unique())
    for i, r in enumerate([r for r in table if r["width"] == wmax]):
        g = gw[gw.step == r["step"]].groupby("lr", as_index=False)["value"].mean()
        ax[1, 0].plot(g.lr, g.value, "o-", ms=3, color=f"C{i}", label=f"epoch {r['epoch']:g} (paper {r['paper_epoch']:g})")
        k = int(np.argmin(g.value))
        ax[1, 0].plot(g.lr.iloc[k], g.value.iloc[k], "*", ms=12, color=f"C{i}", mec="k")
    g = gw[gw.step == steps[-1]].groupby("lr", as_index=False)["value"].mean()
    ax[1, 0].plot(g.lr, g.value, "s--", ms=3, color="0.4", label=f"final (epoch {steps[-1] / steps_per_epoch:g})")
    cmap = plt.get_cmap("viridis")
    for i, (lr, g) in enumerate(gw.groupby("lr")):
        m = g.groupby("step")["value"].mean()
        ax[1, 1].plot(m.index / steps_per_epoch, m.values, color=cmap(i / max(1, len(lrs) - 1)), lw=1,
                      label=f"lr {lr:g}")
    ax[0, 0].set(xlabel="epoch", ylabel=r"$\eta^*(t)$ (best learning rate)", yscale="log",
                 title="best learning rate over time")
    ax[0, 1].set(xlabel="epoch", ylabel="worst / best train loss", yscale="log",
                 title="loss ratio over stable rates (stars: reported)")
    ax[1, 0].set(xlabel="learning rate", ylabel="train loss (seed mean)", xscale="log", yscale="log",
                 title=f"width {wmax}: loss against learning rate (stars: optimum)")
    ax[1, 1].set(xlabel="epoch", ylabel="train loss", yscale="log", title=f"width {wmax}: loss curves")
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter, NullLocator

    for a in ax.flat:
        a.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap on a short log axis
        a.yaxis.set_minor_formatter(NullFormatter())
    # a learning-rate axis spans less than two decades: a log axis would label one tick or none, so
    # its ticks are learning rates of the grid (at most eight, evenly chosen): on the eta*(t) panel
    # the rates eta* takes, on the loss-against-rate panel the grid's
    def rate_ticks(axis, values):
        v = np.unique(np.asarray(values, float))
        v = v[np.unique(np.linspace(0, v.size - 1, min(8, v.size)).round().astype(int))]
        axis.set_major_locator(FixedLocator(v))
        axis.set_major_formatter(FixedFormatter([f"{x:.3g}" for x in v]))
        axis.set_minor_locator(NullLocator())

    rate_ticks(ax[0, 0].yaxis, best.eta_star)
    rate_ticks(ax[1, 0].xaxis, lrs)
    lo, hi = best.eta_star.min(), best.eta_star.max()
    ax[0, 0].set_ylim(lo / 1.3, hi * 1.3)
    for a in ax.flat:
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=6, ncol=2 if a is ax[1, 1] else 1)
    save_figure(fig, out / "appendix_b.png")
    print(f"figures: {out / 'appendix_b.png'}; table: {out / 'appendix_b.json'}")


if __name__ == "__main__":
    main()
