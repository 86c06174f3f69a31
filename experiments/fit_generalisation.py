"""Held-out prediction on all the shared curves, not one split: every law on every protocol.

Protocols (skip 500 steps; RMSE against the 1,000-step moving average, final-loss error against
the raw mean of the last 5% of points):

* ``loso-124m``: leave one schedule out over the 124M runs at peak 1e-3 (fit on the others,
  predict it), every run in turn;
* ``single-cosine``: fit the 124M cosine run (to 10%) alone, predict each 124M WSD run at 1e-3;
* ``loso-210m``: leave one run out over the 210M runs (peaks 5e-4 and 1e-3);
* ``lopeak-124m``: beyond the issue's protocols, every 124M run at a peak other than 1e-3 (1e-4,
  5e-4, 2e-3) predicted from all the other 124M runs (peaks 1e-4 to 2e-3): how far a law carries
  across a 20x range of peak learning rates.

Laws: the kernel law (non-parametric kernel in steps, with its level term and, as an ablation,
without it; exponential kernel in steps, which is the fitted momentum law plus the level term;
power-law kernel in steps; non-parametric and exponential kernels in learning-rate area), the
momentum law with lambda 0.99, 0.999 and fitted, and the multi-power law; with ``--auto``, also
what ``--law auto`` predicts with in each split, from the fitted curves alone (the law the
cross-validation chooses, or the mean of those it does not separate). Prints one table (mean over
held-out curves) and writes ``generalisation.json``. Beside the errors: ``pred sd``, the mean
standard deviation of the predicted final loss from the fit's parameters (the delta method,
:func:`sde_scales.fitting.predict_sd`; plus the law's miss of its fitted curves where it fails
the lack-of-fit test), and ``in 95%``, the share of held-out curves whose final
error lies within the 95% band of that and the observed final loss's standard error: near 0.95
where the law's misses are the noise, far below where they are the law's. Under each protocol, every
kernel law (and auto) against the best baseline (momentum or multi-power law) in mean RMSE and the
best in mean |final error|: the mean paired difference, its 95% interval from the held-out curves'
own noise (valid whatever the correlation between the curves;
:mod:`sde_scales.fitting.compare`), and the verdict, so that "no worse than the best baseline"
is decided by the data or said to be undecided (``comparisons`` in the JSON).

Each finished (protocol, law) result is kept in ``OUT/cache`` and read back by a later run on the
same curves with the same code (``read_back`` in its JSON row; its ``seconds`` are those of the run
that computed it), so a stopped run resumes where it stopped; ``--no-cache`` computes everything.

    python experiments/fit_generalisation.py --out out/fit_generalisation
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sde_scales.cli import output_folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).parents[2] / "shared" / "data" / "loss_curves"),
                    help="folder of the shared loss curves (default ../shared/data/loss_curves)")
    ap.add_argument("--out", type=output_folder, default="out/fit_generalisation", help="output directory")
    ap.add_argument("--skip-steps", type=int, default=500, help="rows before this step are ignored (default 500)")
    ap.add_argument("--auto", action="store_true",
                    help="add the row of --law auto: in every split, the law chosen by cross-validation on the fitted "
                         "curves alone (leave one out; rolling origin for one curve), or the mean of the laws it does "
                         "not separate, then fitted and scored (slow: "
                         "every candidate in every fold; about 25 minutes more)")
    ap.add_argument("--auto-pick", action="store_true",
                    help="with --auto, also the row of the least-error pick in every split (what --law auto predicted "
                         "with before it averaged the laws the folds do not separate; as slow again)")
    ap.add_argument("--workers", type=int, default=1,
                    help="processes for the --auto row's cross-validation fits (default 1; same numbers for any count)")
    ap.add_argument("--protocols", default="loso-124m,single-cosine,loso-210m,lopeak-124m",
                    help="comma-separated protocols to run (default: all four)")
    ap.add_argument("--no-cache", action="store_true",
                    help="compute every (protocol, law) result afresh and keep none; by default each finished one is "
                         "kept in OUT/cache and read back by a later run on the same curves with the same code, so a "
                         "stopped run resumes (sde_scales.fitting.protocol_cache)")
    args = ap.parse_args(argv)
    if args.workers < 1:
        print(f"error: --workers {args.workers}; give at least 1 process", file=sys.stderr)
        return 2

    from sde_scales.atomic import write_json_atomic
    from sde_scales.fitting import load_curve
    from sde_scales.fitting.protocol_cache import ProtocolCache, cached_protocol
    from sde_scales.fitting.protocols import PROTOCOL_LAWS, baseline_labels

    d = Path(args.data)
    if not d.is_dir():
        print(f"error: {d}: no such folder of loss curves", file=sys.stderr)
        return 2
    c124 = [load_curve(p) for p in sorted(d.glob("124m_*_lr1e-3.csv"))]
    c210 = [load_curve(p) for p in sorted(d.glob("210m_*.csv"))]
    c124_all = [load_curve(p) for p in sorted(d.glob("124m_*.csv"))]
    cos = next(c for c in c124 if c.name == "124m_cos10_lr1e-3")
    wsd = [c for c in c124 if "wsd" in c.name]
    protocols = {
        "loso-124m": [([c for c in c124 if c is not h], h) for h in c124],
        "single-cosine": [([cos], h) for h in wsd],
        "loso-210m": [([c for c in c210 if c is not h], h) for h in c210],
        "lopeak-124m": [([c for c in c124_all if c is not h], h) for h in c124_all if not h.name.endswith("_lr1e-3")],
    }
    chosen = [p.strip() for p in args.protocols.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in protocols]
    if unknown:
        print(f"error: --protocols {unknown}: choose from {sorted(protocols)}", file=sys.stderr)
        return 2
    protocols = {k: protocols[k] for k in chosen}
    laws = list(PROTOCOL_LAWS.values())
    rows, comparisons = [], []
    baselines = baseline_labels(laws)  # the yardsticks
    cache = ProtocolCache(Path(args.out) / "cache", enabled=not args.no_cache)
    print(f"{'protocol':14s} {'law':42s} {'splits':>6s} {'mean rmse':>9s} {'mean |final|':>12s} {'pred sd':>8s} "
          f"{'in 95%':>7s} {'seconds':>8s}")
    for pname, splits in protocols.items():
        preds = {}  # law label -> one prediction per split, for the paired comparisons
        for law in laws:
            row, preds[law.label] = cached_protocol(cache, pname, law, splits, skip_steps=args.skip_steps)
            rows.append(row)
            print(f"{pname:14s} {law.label:42s} {len(row['splits']):6d} {row['mean_rmse']:9.4f} "
                  f"{row['mean_abs_final_err']:12.4f} {_f(row['mean_final_pred_sd']):>8s} {_f(row['within_95'], 2):>7s} "
                  f"{row['seconds']:8.1f}{'  (read back)' if row['read_back'] else ''}", flush=True)
        if args.auto:
            row, preds["auto"], choices = _auto_row(pname, splits, args.skip_steps, cache, workers=args.workers)
            rows.append(row)
            if args.auto_pick:
                row, preds["auto (pick)"], _ = _auto_row(pname, splits, args.skip_steps, cache, workers=args.workers,
                                                         average=False, choices=choices)
                rows.append(row)
        comparisons += _compare_with_baselines(pname, splits, [r for r in rows if r["protocol"] == pname], preds,
                                               baselines, args.skip_steps)
    print(cache.summary())
    doc = {"rows": rows, "comparisons": comparisons}
    print(f"JSON: {write_json_atomic(Path(args.out) / 'generalisation.json', doc)}")
    from sde_scales.plots import law_comparison, save_figure

    fig = law_comparison(rows, title="held-out final-loss errors of every law (shared curves; skip "
                                     f"{args.skip_steps} steps)")
    print(f"figure: {save_figure(fig, Path(args.out) / 'generalisation.png')}")
    return 0


def _compare_with_baselines(pname, splits, rows, preds, baselines, skip_steps, smooth_steps=1000) -> list[dict]:
    """Every kernel-law row (and auto) against the best baseline in mean RMSE and the best in mean
    |final-loss error| (:func:`sde_scales.fitting.compare.compare_with_best`): "no worse" as a
    verdict with intervals valid for any correlation between the held-out curves' noises, not two
    figures side by side."""
    from sde_scales.fitting.compare import compare_with_best
    from sde_scales.fitting.protocols import comparison_line

    out = compare_with_best(rows, [h for _, h in splits], preds, baselines, skip_steps=skip_steps,
                            smooth_steps=smooth_steps)
    for e in out:
        print(comparison_line(e), flush=True)
    return [{"protocol": pname, **e} for e in out]


def _auto_row(pname, splits, skip_steps, cache, smooth_steps=1000, workers: int = 1,
              average: bool = True, choices: dict | None = None) -> tuple[dict, list, dict]:
    """The ``--law auto`` row (:func:`sde_scales.fitting.protocols.run_auto_protocol`, through the
    cache): in each split, the law chosen on the fitted curves alone (or the mean of those the folds
    do not separate; ``average=False``: the least-error pick), fitted, and the held-out curve
    scored. ``choices``: those of the same row computed with the other ``average`` (the third value
    returned), reused rather than cross-validated again. Returns the row, the predictions of the
    held-out curves and the choices."""
    from sde_scales.fitting.protocol_cache import cached_auto_protocol
    from sde_scales.fitting.report import describe_choice

    label = "auto" if average else "auto (pick)"
    row, preds, choices = cached_auto_protocol(cache, pname, splits, skip_steps=skip_steps, smooth_steps=smooth_steps,
                                               workers=workers, label=label, average=average, choices=choices)
    what = "auto (chosen or mean, per split)" if average else "auto (least-error pick, per split)"
    print(f"{pname:14s} {what:42s} {len(row['splits']):6d} {row['mean_rmse']:9.4f} "
          f"{row['mean_abs_final_err']:12.4f} {_f(row['mean_final_pred_sd']):>8s} {_f(row['within_95'], 2):>7s} "
          f"{row['seconds']:8.1f}{'  (read back)' if row['read_back'] else ''}", flush=True)
    for key, (a, _) in choices.items():
        what = key[0] if len(key) == 1 else f"the {len(key)} curves without {_left_out(key, splits)}"
        print(f"{'':14s}   on {what}: {describe_choice(a, average)}", flush=True)
    return row, preds, choices


def _f(v, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _left_out(key, splits) -> str:
    return next(h.name for f, h in splits if tuple(c.name for c in f) == key)


if __name__ == "__main__":
    sys.exit(main())
