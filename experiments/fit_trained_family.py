"""Held-out prediction on a family of loss curves that none of the laws was written for: networks
this toolkit trains itself.

The shared curves are language models; a law (or a bound, a grid, a default) that only works there
is not a result. This script trains another family with :mod:`sde_scales.train`: muP MLPs (one
hidden layer) on the synthetic power-law regression task, SGD, every schedule of the shared
protocols (constant; cosine to 10% of the peak; WSD with linear cooldowns over the last 10, 20,
40, 60 and 80% of the steps, and a square-root cooldown over 20%), for several seeds (each seed its
own minibatch order, shared by its schedules, as the runs of one data order share their batch
noise). The loss is the mean-squared error (0.0055 to 0.0083 over the last 1,000 steps of the 24
runs of the full family, from 0.067 to 0.074 at step 500: hundreds of times below a language
model's loss), logged as the trainer logs it: the mean minibatch loss since the previous log.

Protocols, per seed, as in ``fit_generalisation.py``:

* ``single-cosine``: fit the cosine run alone, predict each WSD run;
* ``loso``: leave one schedule out over the eight runs, every run in turn.

Every law of ``fit_generalisation.py``, and on ``single-cosine`` also ``--law auto`` (rolling
origin on the one fitted curve). RMSE against the centred moving average over ``--smooth-steps``
(default: 5% of the run), final-loss error against the mean of the last 5% of logged points; both
averaged over held-out curves and seeds. The table also gives the floor that the moving average's
own noise puts under every RMSE (the per-point noise over the square root of the points in a
window, white noise assumed). Writes ``trained_family.json``; the run store under ``--out/store``
resumes (a second run trains nothing).

    python experiments/fit_trained_family.py --out out/fit_trained_family     # about 30 minutes
    python experiments/fit_trained_family.py --quick --out out/ftf_quick      # 5-10 minutes
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder

FULL = dict(steps=20000, seeds=3, width=256, log_every=10)
QUICK = dict(steps=4000, seeds=2, width=64, log_every=10)
SCHEDULES = {
    "constant": ("constant", ()),
    "cos10": ("cosine", (("final_fraction", 0.1),)),
    **{f"wsd-lin{f:g}": ("wsd", (("decay", "linear"), ("fraction", f))) for f in (0.1, 0.2, 0.4, 0.6, 0.8)},
    "wsd-sqrt0.2": ("wsd", (("decay", "sqrt"), ("fraction", 0.2))),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=output_folder, default="out/fit_trained_family", help="output folder (store and JSON)")
    ap.add_argument("--quick", action="store_true", help="2 seeds x 4,000 steps at width 64 (default 3 x 20,000 at 256)")
    ap.add_argument("--lr", type=float, default=0.1, help="peak learning rate (default 0.1: the loss still falls at "
                    "the end of a constant run, and a cooldown lowers it further)")
    ap.add_argument("--skip-steps", type=int, default=None, help="rows before this step are ignored (default 2.5%% of "
                    "the run, as 500 of the shared 20k-50k-step runs)")
    ap.add_argument("--smooth-steps", type=int, default=None, help="moving-average window of the RMSE target "
                    "(default 5%% of the run)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar while training")
    ap.add_argument("--auto-pick", action="store_true",
                    help="on single-cosine, also the row of --law auto's least-error pick alone (what it predicted "
                         "with before it averaged the laws its folds do not separate)")
    ap.add_argument("--no-cache", action="store_true",
                    help="compute every (protocol, law) result afresh and keep none; by default each finished one is "
                         "kept in OUT/cache and read back by a later run on the same curves with the same code")
    args = ap.parse_args(argv)
    if not (np.isfinite(args.lr) and args.lr > 0):
        print(f"error: --lr {args.lr}; give a positive finite learning rate", file=sys.stderr)
        return 2

    from sde_scales.analysis.delay_width import study_base
    from sde_scales.atomic import write_json_atomic
    from sde_scales.fitting.stores import curves_from_store
    from sde_scales.train.sweep import run_sweep

    spec = QUICK if args.quick else FULL
    steps = spec["steps"]
    skip = int(0.025 * steps) if args.skip_steps is None else args.skip_steps
    smooth = int(0.05 * steps) if args.smooth_steps is None else args.smooth_steps
    if skip < 0 or smooth < 1:
        print(f"error: --skip-steps {skip} / --smooth-steps {smooth}; give skip >= 0 and a window >= 1", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = study_base()
    epochs = steps * base.batch_size / base.n_train
    cfgs = [replace(base, width=spec["width"], seed=s, lr=args.lr, schedule=name, schedule_kw=kw, epochs=epochs,
                    log_every=spec["log_every"])
            for s in range(spec["seeds"]) for name, kw in SCHEDULES.values()]
    started = time.perf_counter()
    print(f"training {len(cfgs)} runs ({spec['seeds']} seeds x {len(SCHEDULES)} schedules, {steps} steps, width "
          f"{spec['width']}, lr {args.lr:g}) into {out / 'store'}", flush=True)
    run_sweep(cfgs, str(out / "store"), device="cpu", progress=not args.no_progress)
    curves = {}
    for c in curves_from_store(out / "store", {"width": spec["width"], "lr": args.lr}, per_seed=True):
        seed = int(c.name.rsplit("_seed", 1)[1])
        sched = next(lbl for lbl in SCHEDULES if c.name.startswith(_name_prefix(lbl, spec["width"], args.lr)))
        curves[(seed, sched)] = replace(c, name=f"{sched}_seed{seed}")
    missing = [(s, k) for s in range(spec["seeds"]) for k in SCHEDULES if (s, k) not in curves]
    if missing:
        print(f"error: runs {missing} did not finish (diverged?); see {out / 'store'}", file=sys.stderr)
        return 1
    wsd = [k for k in SCHEDULES if k.startswith("wsd")]
    protocols = {
        "single-cosine": [([curves[(s, "cos10")]], curves[(s, k)]) for s in range(spec["seeds"]) for k in wsd],
        "loso": [([curves[(s, o)] for o in SCHEDULES if o != k], curves[(s, k)])
                 for s in range(spec["seeds"]) for k in SCHEDULES],
    }
    rows, comparisons, floor = measure_protocols(protocols, out, skip=skip, smooth=smooth, auto_pick=args.auto_pick,
                                                 cache=not args.no_cache)
    doc = {"family": {**spec, "lr": args.lr, "schedules": list(SCHEDULES), "task": "muP MLP, power-law regression, SGD"},
           "skip_steps": skip, "smooth_steps": smooth, "target_noise_floor": floor, "rows": rows,
           "comparisons": comparisons,
           "seconds": time.perf_counter() - started}
    print(f"JSON: {write_json_atomic(out / 'trained_family.json', doc)}")
    return 0


def measure_protocols(protocols: dict, out, *, skip: int, smooth: int, auto_pick: bool = False,
                      cache: bool = True, laws=None, auto_everywhere: bool = False,
                      workers: int = 1) -> tuple[list, list, float]:
    """Every law of the held-out experiments (or the short names ``laws`` of
    :data:`~sde_scales.fitting.protocols.PROTOCOL_LAWS`) on each protocol (name -> splits ``(fitted
    curves, held-out curve)``), ``--law auto`` on ``single-cosine`` (rolling origin on the one fitted
    curve; with ``auto_everywhere`` on every protocol, leave one curve out where several are fitted,
    its fits in ``workers`` processes), and the paired comparisons against the best baseline; prints
    the table. Finished (protocol, law) results are kept in ``out/cache``
    unless ``cache`` is False. Returns the rows, the comparisons and the moving average's noise
    floor (mean over the curves of the protocols)."""
    from sde_scales.fitting import score
    from sde_scales.fitting.compare import compare_with_best
    from sde_scales.fitting.protocol_cache import ProtocolCache, cached_auto_protocol, cached_protocol
    from sde_scales.fitting.protocols import PROTOCOL_LAWS, baseline_labels, comparison_line, protocol_laws
    from sde_scales.fitting.report import describe_choice

    curves = {id(c): c for splits in protocols.values() for fitted, held in splits for c in (*fitted, held)}
    floor = float(np.mean([score(c, c.loss, skip_steps=skip, smooth_steps=smooth)["target_noise_rmse"]
                           for c in curves.values()]))
    laws = protocol_laws([n for n in PROTOCOL_LAWS if n != "np-steps-drops"] if laws is None else laws)
    rows, comparisons = [], []
    baselines = baseline_labels(laws)
    print(f"\nskip {skip} steps; RMSE against the {smooth}-step moving average, whose own noise puts a floor of "
          f"{floor:.5f} under every RMSE")
    print(f"{'protocol':14s} {'law':34s} {'splits':>6s} {'mean rmse':>10s} {'mean |final|':>12s} {'pred sd':>8s} "
          f"{'in 95%':>7s} {'seconds':>8s}")

    store = ProtocolCache(Path(out) / "cache", enabled=cache)

    def report(row):
        rows.append(row)
        f = lambda v, d: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
        print(f"{row['protocol']:14s} {row['law']:34s} {len(row['splits']):6d} {row['mean_rmse']:10.5f} "
              f"{row['mean_abs_final_err']:12.5f} {f(row['mean_final_pred_sd'], 5):>8s} {f(row['within_95'], 2):>7s} "
              f"{row['seconds']:8.1f}{'  (read back)' if row['read_back'] else ''}", flush=True)

    for pname, splits in protocols.items():
        preds = {}  # law label -> predictions of the held-out curves, for the paired comparisons
        for law in laws:  # single-cosine: one fit per seed serves its six WSD runs
            row, preds[law.label] = cached_protocol(store, pname, law, splits, skip_steps=skip, smooth_steps=smooth)
            report(row)
        if pname == "single-cosine" or auto_everywhere:  # --law auto: one choice per fitted set
            label = "auto (rolling origin)" if pname == "single-cosine" else "auto (leave one out)"
            row, preds[label], choices = cached_auto_protocol(
                store, pname, splits, skip_steps=skip, smooth_steps=smooth, label=label, workers=workers)
            report(row)
            if auto_pick:
                row, preds["auto (pick)"], _ = cached_auto_protocol(
                    store, pname, splits, skip_steps=skip, smooth_steps=smooth, label="auto (pick)", average=False,
                    choices=choices, workers=workers)  # the choices of the row above: not cross-validated again
                report(row)
            held_of = {tuple(c.name for c in fitted): held.name for fitted, held in splits}
            for key, (a, _) in choices.items():
                on = key[0] if len(key) == 1 else f"all but {held_of[key]}"
                print(f"{'':14s}   auto on {on}: {describe_choice(a)}", flush=True)
        mine = [r for r in rows if r["protocol"] == pname]
        for e in compare_with_best(mine, [h for _, h in splits], preds, baselines, skip_steps=skip,
                                   smooth_steps=smooth):
            comparisons.append({"protocol": pname, **e})
            print(comparison_line(e), flush=True)
    print(store.summary())
    return rows, comparisons, floor


def _name_prefix(label: str, width: int, lr: float) -> str:
    """The start of :func:`~sde_scales.fitting.stores.curves_from_store`'s name for a schedule."""
    name, kw = SCHEDULES[label]
    kws = "".join(f"_{k}{v}" for k, v in sorted(kw))
    text = f"mup_n{width}_lr{lr:g}_{name}{kws}_seed"
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in text)


if __name__ == "__main__":
    sys.exit(main())
