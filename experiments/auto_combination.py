r"""How ``--law auto`` should predict where its folds do not separate the candidates: the pick, the
mean, or weights fitted to the folds (stacking).

``--law auto`` cross-validates every candidate law on the fitted curves
(:func:`sde_scales.fitting.report.choose_law`). Where the folds do not separate the least-error
candidate from others, it predicts with the equal-weight mean of those laws
(:mod:`sde_scales.fitting.average`). This script measures that rule against two others on the
held-out curves of each protocol, from one set of fits:

* ``pick``: the least mean held-out RMSE alone;
* ``mean``: what ``--law auto`` does (the pick and the candidates it is not separated from, equal weights);
* ``stack``: weights :math:`w` on the simplex (:math:`w_k \ge 0`, :math:`\sum_k w_k = 1`) over every
  candidate, minimising the folds' summed mean squared error of :math:`\sum_k w_k \hat y_{k,f}`
  against each fold's moving-average target (Breiman's stacking: the convex combination of
  held-out predictions that predicts held-out curves best), by ``scipy.optimize.minimize``
  (SLSQP) on the quadratic;
* ``stack-rel``: the same with each fold's squared error divided by its best candidate's, so that
  a fold with a deep drop does not outweigh the others.

Every candidate is fitted in every fold of every split and to every split's fitted curves once,
and the rules are read off those fits. Protocols: ``loso`` (leave one schedule out within a seed)
and ``single`` (fit the cosine run alone, predict each WSD run; its folds are rolling origin) on
the language-model families of ``fit_lm_family.py`` (their curves must be there: train them with
that script's ``--train-only``), and ``loso`` on the shared 210M and 124M (peak 1e-3) runs.
Scored as their protocols score them (skip and moving-average window).

    python experiments/auto_combination.py --family lm1e-3 --out out/auto_combination
    python experiments/auto_combination.py --family s210 --workers 2 --out out/auto_combination

Each family's fits are kept in ``OUT/<family>_<protocol>.pkl`` (written atomically) and read back
by a later run with the same settings.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder

#: The language-model families of ``fit_lm_family.py``: (default folder, steps, peak).
LM_FAMILIES = {"lm3e-3": ("out/fit_lm_family", 12000, 3e-3), "lm1e-3": ("out/fit_lm_family_lr1e-3", 8000, 1e-3)}
RULES = ("pick", "mean", "stack", "stack-rel")


def candidate_fits(task) -> dict:
    """One candidate in one split: its prediction of each fold's held-out rows with the fold's
    target there, and its prediction of the split's held-out curve fitted to all its fitted curves
    (None where a fit fails). A module-level function, for worker processes."""
    cand, fitted, held, skip, smooth = task
    from sde_scales.fitting.fit import fit, predict, scored_rows
    from sde_scales.fitting.report import make_law, validation_folds

    law = make_law(*cand)
    out = {"folds": [], "full": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fits' warnings are not what is measured here
        for _, curves, h, first in validation_folds(fitted)[1]:
            try:
                p = predict(fit(law, curves, skip_steps=skip), h)
                keep = scored_rows(h, skip if first is None else max(skip, first))
                out["folds"].append((p[keep], h.smoothed(smooth)[keep]))
            except (ValueError, FloatingPointError):
                out["folds"].append(None)
        try:
            out["full"] = predict(fit(law, fitted, skip_steps=skip), held)
        except (ValueError, FloatingPointError):
            pass
    return out


def simplex_weights(folds: list[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    r"""Weights on the simplex minimising :math:`\sum_f c_f \,\overline{(w^\top P_f - t_f)^2}` for
    ``folds`` of (P: candidates x rows, t: rows, c_f): a quadratic in :math:`w`, minimised by SLSQP
    from equal weights."""
    from scipy.optimize import minimize

    k = folds[0][0].shape[0]
    G, b = np.zeros((k, k)), np.zeros(k)
    for P, t, c in folds:
        G += c * P @ P.T / t.size
        b += c * P @ t / t.size
    res = minimize(lambda w: w @ G @ w - 2 * b @ w, np.full(k, 1.0 / k), jac=lambda w: 2 * G @ w - 2 * b,
                   bounds=[(0.0, 1.0)] * k, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
                   method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000})
    w = np.clip(res.x, 0.0, None)
    return w / w.sum()


def rule_predictions(fits: list[dict], candidates) -> tuple[dict, dict]:
    """Each rule's prediction of one split's held-out curve from its candidates' ``fits``, and the
    weights each rule gave (by candidate label)."""
    from sde_scales.fitting.report import _undecided, make_law

    ok = [k for k, r in enumerate(fits) if r["full"] is not None and all(f is not None for f in r["folds"])]
    if not ok:
        raise ValueError("no candidate could be fitted in every fold and to all the fitted curves of this split: no "
                         "rule has a law to predict with")
    labels = {k: make_law(*candidates[k]).label for k in ok}
    n_folds = len(fits[ok[0]]["folds"])
    rmse = {k: [float(np.sqrt(np.mean((fits[k]["folds"][f][0] - fits[k]["folds"][f][1]) ** 2)))
                for f in range(n_folds)] for k in ok}
    best = min(ok, key=lambda k: np.mean(rmse[k]))
    members = [best] + [k for k in ok if k != best and _undecided(rmse[best], rmse[k])]
    weights = {"pick": {best: 1.0}, "mean": {k: 1.0 / len(members) for k in members}}
    for rule, rel in (("stack", False), ("stack-rel", True)):
        folds = []
        for f in range(n_folds):
            P = np.array([fits[k]["folds"][f][0] for k in ok])
            t = fits[ok[0]]["folds"][f][1]
            folds.append((P, t, 1.0 / float(np.min(np.mean((P - t) ** 2, axis=1))) if rel else 1.0))
        weights[rule] = {k: float(w) for k, w in zip(ok, simplex_weights(folds)) if w > 1e-6}
    preds = {rule: sum(w * fits[k]["full"] for k, w in ws.items()) for rule, ws in weights.items()}
    preds.update({labels[k]: fits[k]["full"] for k in ok})
    return preds, {rule: {labels[k]: round(w, 3) for k, w in ws.items()} for rule, ws in weights.items()}


def family_splits(family: str, protocol: str, lm_folder: str | None, shared: Path):
    """(splits, skip, window) of a family's protocol."""
    from sde_scales.fitting import load_curve

    if family in LM_FAMILIES:
        sys.path.insert(0, str(Path(__file__).parent))
        from fit_lm_family import SCHEDULES, family_protocols, family_schedules, family_scoring, read_curves

        folder, steps, peak = LM_FAMILIES[family]
        folder = (Path(lm_folder) if lm_folder else Path(__file__).parents[1] / folder) / "curves"
        scheds = family_schedules(steps, peak)
        curves = {}
        for s in (0, 1):
            paths = {}
            for k in SCHEDULES:
                found = sorted(q for q in folder.glob(f"{k}_seed{s}_*_n{steps}_*.csv"))
                if not found:
                    raise FileNotFoundError(f"{folder}: no {k} curve of seed {s} with {steps} steps; train the family "
                                            f"with experiments/fit_lm_family.py --train-only")
                paths[k] = found[-1]
            curves.update({(s, k): c for k, c in read_curves(paths, scheds, f"seed{s}").items()})
        skip, window = family_scoring(steps)
        return family_protocols(curves, (0, 1))["single-cosine" if protocol == "single" else "loso"], skip, window
    if protocol != "loso":
        raise ValueError(f"--protocol {protocol}: the shared families here have loso only")
    pattern = {"s210": "210m_*.csv", "s124": "124m_*_lr1e-3.csv"}[family]
    curves = [load_curve(p) for p in sorted(shared.glob(pattern))]
    if not curves:
        raise FileNotFoundError(f"{shared}: no curves {pattern}")
    return [([c for c in curves if c is not h], h) for h in curves], 500, 1000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", required=True, choices=[*LM_FAMILIES, "s210", "s124"])
    ap.add_argument("--protocol", default="loso", choices=["loso", "single"])
    ap.add_argument("--lm-folder", default=None, help="the family's folder of fit_lm_family.py (default: its --out)")
    ap.add_argument("--shared", default=str(Path(__file__).parents[2] / "shared" / "data" / "loss_curves"),
                    help="folder of the shared loss curves")
    ap.add_argument("--workers", type=int, default=1, help="processes for the fits (the same numbers for any count)")
    ap.add_argument("--out", type=output_folder, default="out/auto_combination")
    args = ap.parse_args(argv)
    if args.workers < 1:
        print(f"error: --workers {args.workers}; give at least 1", file=sys.stderr)
        return 2
    from sde_scales.atomic import atomic_path, write_json_atomic
    from sde_scales.fitting.fit import score
    from sde_scales.fitting.report import AUTO_CANDIDATES
    from sde_scales.fitting.tasks import run_tasks

    try:
        splits, skip, window = family_splits(args.family, args.protocol, args.lm_folder, Path(args.shared))
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cands = list(AUTO_CANDIDATES)
    store = out / f"{args.family}_{args.protocol}.pkl"
    key = [(tuple(c.name for c in f), h.name, skip, window) for f, h in splits]
    fits = None
    if store.is_file():
        saved = pickle.loads(store.read_bytes())
        fits = saved["fits"] if saved.get("key") == key and saved.get("candidates") == cands else None
    started = time.perf_counter()
    if fits is None:
        tasks = [((i, c), (cand, fitted, held, skip, window)) for i, (fitted, held) in enumerate(splits)
                 for c, cand in enumerate(cands)]
        done = run_tasks(candidate_fits, tasks, args.workers, "fits")
        fits = [[done[(i, c)] for c in range(len(cands))] for i in range(len(splits))]
        with atomic_path(store) as tmp:
            Path(tmp).write_bytes(pickle.dumps({"key": key, "candidates": cands, "fits": fits}))
    scores, chosen, by_rule = {}, [], {r: [] for r in RULES}
    for (fitted, held), split_fits in zip(splits, fits):
        preds, weights = rule_predictions(split_fits, cands)
        chosen.append({"held_out": held.name, "weights": weights})
        for r in RULES:
            by_rule[r].append(preds[r])
        for label, p in preds.items():
            sc = score(held, p, skip_steps=skip, smooth_steps=window)
            scores.setdefault(label, []).append({"held_out": held.name, "rmse": sc["rmse"],
                                                 "final_loss_err": sc["final_loss_err"]})
    print(f"{args.family}, {args.protocol}: means over {len(splits)} held-out curves "
          f"({time.perf_counter() - started:.0f} s)")
    print(f"{'rule or law':45s} {'mean RMSE':>9s} {'mean |final|':>12s}")
    rows = []
    for label, per in scores.items():
        r = float(np.mean([p["rmse"] for p in per]))
        f = float(np.mean([abs(p["final_loss_err"]) for p in per]))
        rows.append({"label": label, "rule": label in RULES, "mean_rmse": r, "mean_abs_final_err": f, "splits": per})
        print(f"{label:45s} {r:9.4f} {f:12.4f}")
    from sde_scales.fitting.compare import compare_curves

    def iv(v):
        return "-" if v is None else f"[{v[0]:+.5f}, {v[1]:+.5f}]"

    held = [h for _, h in splits]
    comparisons = []
    for r in RULES:
        if r != "mean":  # each rule against what --law auto does, paired on the same held-out curves
            e = compare_curves(held, by_rule[r], by_rule["mean"], label_a=r, label_b="mean", skip_steps=skip,
                               smooth_steps=window)
            e.pop("per_curve")
            comparisons.append(e)
            print(f"  {r} - mean: RMSE {e['mean_rmse_diff']:+.5f} {iv(e['rmse_interval'])} {e['rmse_verdict']}; "
                  f"|final| {e['mean_abs_final_err_diff']:+.5f} {iv(e['final_interval'])} {e['final_verdict']}")
    for c in chosen:
        print(f"  {c['held_out']}: stack {c['weights']['stack']}")
    print(f"JSON: {write_json_atomic(out / f'{args.family}_{args.protocol}.json', {'family': args.family, 'protocol': args.protocol, 'skip_steps': skip, 'smooth_steps': window, 'rows': rows, 'comparisons': comparisons, 'weights': chosen})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
