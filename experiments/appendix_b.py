"""The paper's Appendix B: learning-rate grid at large width, eta*(t), loss ratios, transfer.

Full configuration (for a GPU): CIFAR-10, one hidden layer of width 10,000, 300 epochs, batch 128,
SGD, learning rates 0.01..0.30 (30 values), muP. ``--quick``: synthetic 3072-d data, widths
128..2048, a few epochs, minutes on 2 CPU cores. Both write the same tables and figures:

    OUT/store/              the run store (resumable: run the command again to continue)
    OUT/eta_star.csv        best learning rate per width and step, and the step it settles at
    OUT/loss_ratio.csv      worst / best loss across learning rates over time
    OUT/transfer.csv        final loss against learning rate per width
    OUT/appendix_b.png      the figures

    python experiments/appendix_b.py --quick --out out/appendix_b
    python experiments/appendix_b.py --out out/appendix_b_full --device cuda
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="out/appendix_b")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--executor", default="local", choices=["local", "process", "dask"])
    ap.add_argument("--scheduler", default=None)
    args = ap.parse_args(argv)
    from sde_scales.analysis import eta_star, loss_ratio, settle_step, transfer_curves
    from sde_scales.train.store import RunStore
    from sde_scales.train.sweep import run_sweep
    from sde_scales.train.trainer import config_grid

    if args.quick:
        # wider than the paper's 0.01..0.30 so that the optimum of the synthetic task is inside the grid
        widths, lrs, seeds = [128, 512, 2048], list(np.round(np.geomspace(0.03, 3.0, 8), 4)), [0]
        common = dict(dataset="synthetic", epochs=3, batch_size=128, n_train=4096, log_every=16)
    else:
        widths, lrs, seeds = [10_000], list(np.round(np.linspace(0.01, 0.30, 30), 4)), [0]
        common = dict(dataset="cifar10", epochs=300, batch_size=128, n_train=50_000, log_every=391, eval_every=1)
    out = Path(args.out)
    configs = config_grid(["mup"], widths, lrs, seeds, **common)
    res = run_sweep(configs, str(out / "store"), executor=args.executor, scheduler=args.scheduler, device=args.device,
                    data_root=str(out / "data"))
    print(res)
    st = RunStore(out / "store")
    runs, traj = st.runs(), st.trajectories()
    best = eta_star(runs, traj)
    ratio = loss_ratio(runs, traj)
    tr = transfer_curves(runs, traj)
    settle = settle_step(best)
    best.to_csv(out / "eta_star.csv", index=False)
    ratio.to_csv(out / "loss_ratio.csv", index=False)
    tr.to_csv(out / "transfer.csv", index=False)
    print(settle.to_string(index=False))
    steps_per_epoch = common["n_train"] / common["batch_size"]
    for w, g in ratio.groupby("width"):
        g = g.sort_values("step")
        print(f"width {w}: worst/best loss ratio {g.ratio.iloc[0]:.2f} at epoch {g.step.iloc[0] / steps_per_epoch:.1f}, "
              f"{g.ratio.iloc[-1]:.2f} at epoch {g.step.iloc[-1] / steps_per_epoch:.1f}")

    import matplotlib.pyplot as plt

    from sde_scales.plots import save_figure

    fig, ax = plt.subplots(1, 3, figsize=(12, 3.4), constrained_layout=True)
    for w, g in best.groupby("width"):
        ax[0].plot(g.step / steps_per_epoch, g.eta_star, "o-", ms=3, label=f"n={w}")
    for w, g in ratio.groupby("width"):
        ax[1].plot(g.step / steps_per_epoch, g.ratio, label=f"n={w}")
    for w, g in tr.groupby("width"):
        ax[2].plot(g.lr, g.value, "o-", ms=3, label=f"n={w}")
    ax[0].set(xlabel="epoch", ylabel="eta*(t)", yscale="log", title="best learning rate over time")
    ax[1].set(xlabel="epoch", ylabel="worst / best loss", yscale="log", title="loss ratio across learning rates")
    ax[2].set(xlabel="learning rate", ylabel="final train loss", xscale="log", title="transfer (muP)")
    for a in ax:
        a.legend(fontsize=7)
    save_figure(fig, out / "appendix_b.png")
    print(f"figures: {out / 'appendix_b.png'}")


if __name__ == "__main__":
    main()
