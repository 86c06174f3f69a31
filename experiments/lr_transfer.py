"""Learning-rate transfer, muP against SP: final loss against learning rate per width.

Under muP the best learning rate stays put as the width grows; under SP (width-independent
learning rate) it drifts. Writes OUT/transfer.csv, OUT/eta_star_final.csv and OUT/lr_transfer.png.

    python experiments/lr_transfer.py --quick --out out/lr_transfer
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="out/lr_transfer")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    from sde_scales.analysis import transfer_curves
    from sde_scales.train.store import RunStore
    from sde_scales.train.sweep import run_sweep
    from sde_scales.train.trainer import config_grid

    widths = [64, 256, 1024] if args.quick else [128, 512, 2048, 8192]
    lrs = list(np.round(np.geomspace(0.003, 3.0, 10 if args.quick else 16), 5))
    common = dict(dataset="synthetic", epochs=2 if args.quick else 20, batch_size=128, n_train=4096 if args.quick else 50_000,
                  log_every=16, d_in=3072)
    out = Path(args.out)
    configs = config_grid(["mup", "sp"], widths, lrs, [0, 1], **common)
    print(run_sweep(configs, str(out / "store"), device=args.device))
    st = RunStore(out / "store")
    tr = transfer_curves(st.runs(), st.trajectories())
    tr.to_csv(out / "transfer.csv", index=False)
    best = tr.loc[tr.groupby(["param", "width"])["value"].idxmin()][["param", "width", "lr", "value"]]
    best.to_csv(out / "eta_star_final.csv", index=False)
    print(best.to_string(index=False))
    for p, g in best.groupby("param"):
        drift = np.log2(g.lr.max() / g.lr.min())
        print(f"{p}: best learning rate moves by a factor 2^{drift:.2f} across widths {list(g.width)}")

    import matplotlib.pyplot as plt

    from sde_scales.plots import save_figure

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True, sharey=True)
    for a, (p, g) in zip(ax, tr.groupby("param")):
        for w, gw in g.groupby("width"):
            v = gw.value.where(np.isfinite(gw.value))
            a.plot(gw.lr, v, "o-", ms=3, label=f"n={w}")
        a.set(xscale="log", yscale="log", xlabel="learning rate", title=p)
        # losses of unstable runs reach 1e15: show the range where the optimum lives
        a.set_ylim(0.8 * float(tr.value[np.isfinite(tr.value)].min()), 10.0)
        a.legend(fontsize=7)
    ax[0].set_ylabel("final train loss")
    save_figure(fig, out / "lr_transfer.png")


if __name__ == "__main__":
    main()
