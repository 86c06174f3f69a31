"""Held-out prediction on a model family whose noise-free loss is known and is none of the laws.

The laws are measured on language-model curves (``fit_generalisation.py``) and on networks
trained here (``fit_trained_family.py``); on both, the truth is unknown and the held-out targets
are noisy, so a law's error and the target's noise are mixed. This script takes a family where the
truth is known: SGD on a many-mode noisy quadratic with a power-law spectrum
(:class:`sde_scales.models.nqm.SpectralNQM`: curvatures :math:`i^{-1.5}` over a million
coordinates, loss falling as the learning-rate area to the power -0.3), whose response to a drop is
a sum of exponentials in the learning-rate area with a spread of time scales. It is the
expected-loss recursion of SGD, not any fitted law's form.

Its settings were set once, before any fit and not by any fit's outcome: peak rate 0.5 (the edge
of stability is 0.73), 34,000 steps as the issue's held-out family, a 1% warmup. Its shape is not
that of the shared 124M curves: its noise-free constant run falls by 0.081 from step 1,000 to the
end (the 124M run at 1e-3: about 0.73) and a WSD cooldown over the last 20% gains 0.210 (124M:
about 0.16), so the drop response carries more of its curves and the power term less; the script
prints both figures and writes them to its JSON (``family.constant_fall``,
``family.cooldown_gain``). The logged loss is
the expected loss plus independent Gaussian noise (``--noise``, 0.1 by default, near the shared
curves' 0.125) every 50 steps, written as CSV files (step, lr, loss) and read back with
:func:`~sde_scales.fitting.load_curve`, as a user's logs would be. Each seed is a fresh draw of
the noise for every run.

Protocols, per seed, as on the other families: ``single-cosine`` (fit the cosine run to 10% alone,
predict each WSD run) and ``loso`` (leave one of the eight schedules out). Every law of the other
two scripts; with ``--auto``, on single-cosine also ``--law auto`` as it predicts and its
least-error pick alone. Scored as there (RMSE against the 1,000-step moving average, final-loss error against
the mean of the last 5% of points) and against the noise-free loss (``rmse_truth``,
``final_err_truth``), and each kernel law against the best baseline by the paired comparison of
:mod:`sde_scales.fitting.compare`: the verdicts it draws from the noisy curves can be held against
the truth here. Writes ``nqm_family.json`` and the curves under ``--out/curves``.

A second family of the same model, shaped like the shared 124M curves instead (its constant run
falls 0.73 from step 1,000 to the end, a 20% cooldown gains 0.16: the amplitude and noise level
solved for those two figures of the noise-free loss, before any fit): ``--amplitude 8.3 --sigma 0.63``.

    python experiments/fit_nqm_family.py --out out/fit_nqm_family            # about 5 minutes
    python experiments/fit_nqm_family.py --quick --out /tmp/nqm_quick        # about 2 minutes
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder

FULL = dict(steps=34000, seeds=3, log_every=50)
QUICK = dict(steps=6000, seeds=1, log_every=20)
PEAK = 0.5
#: The laws measured by default (``--laws``; any name of
#: :data:`sde_scales.fitting.protocols.PROTOCOL_LAWS`): the kernel law's kernels in steps and in
#: learning-rate area, the momentum law at lambda 0.99, 0.999 and fitted, and the multi-power law.
LAWS = ("np-steps", "exp-steps", "power-steps", "np-area", "exp-area", "momentum0.99", "momentum0.999", "momentum",
        "mpl")
SCHEDULES = {
    "constant": ("constant", {}),
    "cos10": ("cosine", {"final_fraction": 0.1}),
    **{f"wsd-lin{f:g}": ("wsd", {"decay": "linear", "fraction": f}) for f in (0.1, 0.2, 0.4, 0.6, 0.8)},
    "wsd-sqrt0.2": ("wsd", {"decay": "sqrt", "fraction": 0.2}),
}


def _model_default(name: str) -> float:
    """The default of ``SpectralNQM.power_law``'s argument ``name``: the family's model is that one
    unless a flag says otherwise, so its defaults are read, not repeated."""
    import inspect

    from sde_scales.models.nqm import SpectralNQM

    return inspect.signature(SpectralNQM.power_law).parameters[name].default


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=output_folder, default="out/fit_nqm_family", help="output directory")
    ap.add_argument("--quick", action="store_true", help="one seed of 6,000 steps (a smoke run, not a result)")
    ap.add_argument("--noise", type=float, default=0.1, help="standard deviation of the logged loss's noise (0.1)")
    ap.add_argument("--seed", type=int, default=0, help="root of the noise seeds (numpy SeedSequence)")
    ap.add_argument("--steps", type=int, default=None, help="steps per run (default 34,000; --quick 6,000)")
    ap.add_argument("--seeds", type=int, default=None, help="noise draws of the family (default 3; --quick 1)")
    ap.add_argument("--no-cache", action="store_true",
                    help="compute every (protocol, law) result afresh and keep none; by default each finished one is "
                         "kept in OUT/cache and read back by a later run on the same curves with the same code, so a "
                         "stopped run resumes")
    ap.add_argument("--auto", action="store_true",
                    help="on single-cosine, add the rows of --law auto (rolling origin on each seed's cosine run): "
                         "as it predicts (the chosen law, or the mean of the laws the folds do not separate) and the "
                         "least-error pick alone, for comparison (about 2.5 minutes more)")
    ap.add_argument("--amplitude", type=float, default=_model_default("amplitude"),
                    help="the power term's amplitude A of SpectralNQM.power_law (default %(default)g, the family of "
                         "benchmarks/RESULTS.md; 8.3 with --sigma 0.63 gives the 124M curves' shape: a constant run "
                         "falling 0.73 from step 1,000 and a 20%% cooldown gaining 0.16)")
    ap.add_argument("--sigma", type=float, default=_model_default("sigma"),
                    help="gradient-noise level of SpectralNQM.power_law (default %(default)g); the cooldown's gain "
                         "grows with it")
    ap.add_argument("--laws", default=",".join(LAWS),
                    help=f"comma-separated laws to measure (default: {', '.join(LAWS)}; also np-steps-drops)")
    args = ap.parse_args(argv)
    from sde_scales.errors import InvalidArgumentError
    from sde_scales.fitting.protocols import protocol_laws

    try:
        laws = protocol_laws(args.laws)
    except InvalidArgumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    spec = dict(QUICK if args.quick else FULL)
    for key in ("steps", "seeds"):
        v = getattr(args, key)
        if v is not None:
            if v < (1000 if key == "steps" else 1):
                print(f"error: --{key} {v}; give at least {1000 if key == 'steps' else 1}", file=sys.stderr)
                return 2
            spec[key] = v
    if not (np.isfinite(args.noise) and args.noise >= 0):
        print(f"error: --noise {args.noise}; give a finite standard deviation >= 0", file=sys.stderr)
        return 2
    for flag, v in (("--amplitude", args.amplitude), ("--sigma", args.sigma)):
        if not (np.isfinite(v) and v > 0):
            print(f"error: {flag} {v}; give a finite value > 0", file=sys.stderr)
            return 2
    if args.seed < 0:
        print(f"error: --seed {args.seed}; give a seed >= 0", file=sys.stderr)
        return 2

    import pandas as pd

    from sde_scales import schedules
    from sde_scales.atomic import write_json_atomic, write_text_atomic
    from sde_scales.fitting import load_curve, score
    from sde_scales.fitting.compare import compare_with_best
    from sde_scales.fitting.protocol_cache import ProtocolCache, cached_auto_protocol, cached_protocol
    from sde_scales.fitting.protocols import baseline_labels, comparison_line
    from sde_scales.fitting.report import describe_choice
    from sde_scales.models.nqm import SpectralNQM

    steps, every = spec["steps"], spec["log_every"]
    skip, smooth = int(round(500 * steps / 34000)), int(round(1000 * steps / 34000))
    warm = steps // 100
    model = SpectralNQM.power_law(amplitude=args.amplitude, sigma=args.sigma)
    model_name = f"SpectralNQM.power_law(amplitude={args.amplitude:g}, sigma={args.sigma:g})"
    out = Path(args.out)
    started = time.perf_counter()
    curves, truth = {}, {}
    seeds = np.random.SeedSequence(args.seed).spawn(spec["seeds"])
    logged = np.arange(0, steps, every)  # from step 0, so the schedule is known from its start
    for s, ss in enumerate(seeds):
        rngs = [np.random.default_rng(c) for c in ss.spawn(len(SCHEDULES))]
        for (label, (kind, kw)), rng in zip(SCHEDULES.items(), rngs):
            lr = getattr(schedules, kind)(steps, PEAK, warmup_steps=warm, **kw)
            mean = model.expected_loss(lr)[logged]  # the loss after `step` updates
            name = f"{label}_seed{s}"
            loss = mean + args.noise * rng.standard_normal(logged.size)
            # the toolkit's convention: the loss at step k has seen the rates of steps 0..k-1, and the rate
            # logged with it is step k's own (sde_scales.fitting.curves.LossCurve.per_step_lr)
            df = pd.DataFrame({"step": logged, "lr": lr[logged], "loss": loss})
            path = write_text_atomic(out / "curves" / f"{name}.csv", df.to_csv(index=False))
            curves[(s, label)] = load_curve(path)
            truth[name] = mean
    # the family's shape, from its noise-free loss (any seed: the truth is the same): how far the constant
    # run falls from step 1,000 (in a 34,000-step run; scaled with --steps) to its end, and how much a
    # 20% linear WSD cooldown gains over it at the end
    k_from = int(np.argmin(np.abs(logged - round(1000 * steps / 34000))))
    shape = {"constant_fall": float(truth["constant_seed0"][k_from] - truth["constant_seed0"][-1]),
             "constant_fall_from_step": int(logged[k_from]),
             "cooldown_gain": float(truth["constant_seed0"][-1] - truth["wsd-lin0.2_seed0"][-1])}
    wsd = [k for k in SCHEDULES if k.startswith("wsd")]
    protocols = {
        "single-cosine": [([curves[(s, "cos10")]], curves[(s, k)]) for s in range(spec["seeds"]) for k in wsd],
        "loso": [([curves[(s, o)] for o in SCHEDULES if o != k], curves[(s, k)])
                 for s in range(spec["seeds"]) for k in SCHEDULES],
    }
    baselines = baseline_labels(laws)
    floor = float(np.mean([score(c, c.loss, skip_steps=skip, smooth_steps=smooth)["target_noise_rmse"]
                           for c in curves.values()]))
    print(f"{len(curves)} curves ({spec['seeds']} seeds x {len(SCHEDULES)} schedules, {steps} steps logged every "
          f"{every}, noise {args.noise:g}) in {out / 'curves'}; skip {skip} steps; the {smooth}-step moving "
          f"average's noise puts a floor of {floor:.4f} under every RMSE against it")
    print(f"noise-free shape: the constant run falls by {shape['constant_fall']:.3f} from step "
          f"{shape['constant_fall_from_step']} to the end; a 20% WSD cooldown gains {shape['cooldown_gain']:.3f} on it")
    print(f"{'protocol':14s} {'law':34s} {'splits':>6s} {'rmse':>7s} {'|final|':>8s} {'rmse*':>7s} {'stable*':>7s} "
          f"{'cool*':>7s} {'|final*|':>8s} {'pred sd':>8s} {'in 95%':>7s} {'seconds':>8s}   (* against the noise-free "
          f"loss; stable: before the cooldown, cool: in it)")
    rows, comparisons = [], []
    cache = ProtocolCache(out / "cache", enabled=not args.no_cache)
    f = lambda v, d=4: "-" if v is None else f"{v:.{d}f}"  # noqa: E731

    def report(pname, label, row):
        rows.append(row)
        print(f"{pname:14s} {label:34s} {len(row['splits']):6d} {row['mean_rmse']:7.4f} {row['mean_abs_final_err']:8.4f} "
              f"{row['mean_rmse_truth']:7.4f} {f(row['mean_stable_rmse_truth']):>7s} "
              f"{f(row['mean_cooldown_rmse_truth']):>7s} {row['mean_abs_final_err_truth']:8.4f} "
              f"{f(row['mean_final_pred_sd']):>8s} {f(row['within_95'], 2):>7s} {row['seconds']:8.1f}"
              f"{'  (read back)' if row['read_back'] else ''}", flush=True)

    for pname, splits in protocols.items():
        preds = {}
        for law in laws:
            row, preds[law.label] = cached_protocol(cache, pname, law, splits, skip_steps=skip, smooth_steps=smooth,
                                                    truth=truth)
            report(pname, law.label, row)
        if args.auto and pname == "single-cosine":
            choices = None  # the pick row reuses the mean row's cross-validation
            for average, label in ((True, "auto"), (False, "auto (pick)")):
                row, preds[label], choices = cached_auto_protocol(cache, pname, splits, skip_steps=skip,
                                                                  smooth_steps=smooth, truth=truth, label=label,
                                                                  average=average, choices=choices)
                report(pname, label, row)
            for key, (a, _) in choices.items():
                print(f"{'':14s}   auto on {key[0]}: {describe_choice(a, average=False)}", flush=True)
        held = [h for _, h in splits]
        for e in compare_with_best([r for r in rows if r["protocol"] == pname], held, preds, baselines,
                                   skip_steps=skip, smooth_steps=smooth):
            e = {"protocol": pname, **e, "truth": _truth_verdicts(e, held, preds, truth, skip, smooth)}
            comparisons.append(e)
            print(comparison_line(e, e["truth"]), flush=True)
    print(cache.summary())
    doc = {"family": {**spec, "peak_lr": PEAK, "warmup_steps": warm, "noise": args.noise, "seed": args.seed,
                      "model": model_name, "schedules": list(SCHEDULES), **shape},
           "skip_steps": skip, "smooth_steps": smooth, "target_noise_floor": floor, "rows": rows,
           "comparisons": comparisons, "seconds": time.perf_counter() - started}
    print(f"JSON: {write_json_atomic(out / 'nqm_family.json', doc)}")
    return 0


def _truth_verdicts(entry, held, preds, truth, skip, smooth) -> dict:
    """Which of the two laws of a comparison is closer to the noise-free loss, in mean RMSE (against
    the noise-free loss's moving average, the target the paired RMSE verdict is about) and mean
    |final error| over the held-out curves: the answer the paired verdicts estimate from noisy data."""
    from sde_scales.fitting.fit import final_rows

    out = {}
    for metric in ("rmse", "final"):
        law, other = entry["law"], entry[metric]["against"]
        diffs = []
        for i, c in enumerate(held):
            t, keep, n = truth[c.name], c.step >= skip, final_rows(c.step.size)
            a, b = preds[law][i], preds[other][i]
            if metric == "rmse":
                ts = c.averaged(t, smooth)
                diffs.append(np.sqrt(np.mean((a - ts)[keep] ** 2)) - np.sqrt(np.mean((b - ts)[keep] ** 2)))
            else:
                diffs.append(abs(np.mean(a[-n:]) - np.mean(t[-n:])) - abs(np.mean(b[-n:]) - np.mean(t[-n:])))
        d = float(np.mean(diffs))
        out[metric] = f"{law if d < 0 else other} closer by {abs(d):.2g}"
    return out


if __name__ == "__main__":
    sys.exit(main())
