"""Theorem 4.1 on trained networks: the training rows of `sde-scales verify`, with their figures.

Reads the claims from ``theory`` (never re-typed here), trains the built-in experiment (muP with SP
and NTK as controls; ``--quick``: widths 64..1024, 32 seeds) or reads ``--store``, and writes

* ``width_rates.json``: every training row (strict JSON, the schema of ``verify --json``);
* ``<claim>--training.png``: seed spread (or bias) against width, muP and the controls, with the
  claimed slope;
* ``exponent_over_training.png``: each primary row's exponent at a quarter, half and all of
  training, with its interval.

    python experiments/width_rates.py --quick --out out/width_rates
    python experiments/width_rates.py --store runs/gpu-sweep --out out/width_rates_gpu
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sde_scales.cli import output_folder

THEOREM_4_1 = ("thm4.1-macro-fluct", "thm4.1-micro-fluct", "thm4.1-separation", "thm4.1-macro-bias",
               "thm4.1-micro-bias")


def exponent_over_training(results, path):
    from sde_scales.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(6.0, 3.8), constrained_layout=True)
    prim = [r for r in results if r.role == "primary" and r.measurement and r.measurement.estimate is not None]
    for i, r in enumerate(prim):
        times = r.measurement.extra.get("exponent_over_training", {})
        pts = [(float(f), t["exponent"], t["ci"]) for f, t in sorted(times.items()) if t.get("exponent") is not None]
        if not pts:
            continue
        f, e, ci = zip(*pts)
        lo = [e_ - c[0] for e_, c in zip(e, ci)]
        hi = [c[1] - e_ for e_, c in zip(e, ci)]
        ax.errorbar([x + 0.01 * i for x in f], e, yerr=[lo, hi], fmt="o-", capsize=3, color=f"C{i}",
                    label=f"{r.claim.id}: {r.variable} (claimed {r.claim.exponent:g})")
    ax.set_xlabel(r"fraction of training $t/T$")
    ax.set_ylabel(r"exponent $p$ in $n^{p}$ (95% interval)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="widths 64..1024, 32 seeds (about 1 minute on 2 cores)")
    ap.add_argument("--store", help="judge a run store from `sde-scales sweep` instead of training")
    ap.add_argument("--train-dir", help="keep the built-in training's store here (resumable)")
    ap.add_argument("--out", type=output_folder, default="out/width_rates", help="output directory (default out/width_rates)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from sde_scales.atomic import write_json_atomic
    from theory.checks import Settings
    from theory.paper import claims_by_id
    from theory.verify import draw_plots, format_table, run_claims, to_json

    out = Path(args.out)
    claims = [claims_by_id()[c] for c in THEOREM_4_1]
    settings = Settings(quick=args.quick, seed=args.seed, store=args.store, train_dir=args.train_dir, progress=True)
    results = run_claims(claims, settings, kinds=("training",))
    results = draw_plots(results, out)
    print(format_table(results))
    print(f"JSON: {write_json_atomic(out / 'width_rates.json', to_json(results, claims, 0.0, settings))}")
    print(f"figure: {exponent_over_training(results, out / 'exponent_over_training.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
