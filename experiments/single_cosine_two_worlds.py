r"""Can any rule meet the single-cosine criterion? Two worlds that one cosine cannot tell apart.

The single-cosine protocol fits a law to one cosine run and predicts each WSD run of the same model
and peak. Issue 12 asks the kernel law (or ``--law auto``) to be no worse there than the best of
the momentum law (lambda 0.99, 0.999 or fitted) and the multi-power law. This script measures how
far *any* rule that sees one cosine can meet that, by Le Cam's two-point method.

1. **World F** (fast): the momentum law with lambda held at ``--fast`` (0.99), fitted to a real
   family's cosine and WSD runs together. The family's data decide its parameters, not this script.
2. **World S** (slow): the momentum law with lambda held at ``--slow`` (0.999), fitted to world F's
   noise-free cosine, i.e. the slow law's closest cosine to F's. ``--truth slow`` swaps the roles:
   S is fitted to the data, F to S's cosine.
3. Before the protocol's start (its skipped steps) both worlds get world F's cosine, so only the
   rows a fit uses can tell them apart. Noise is modelled as Gaussian and white, with the real
   cosine's own level :math:`\sigma` (:func:`~sde_scales.fitting.fit.noise_level` of its scored
   rows; the logged losses' residuals show no correlation their noise resolves, ``RESULTS.md``,
   stop 52). The two worlds' cosines then lie
   :math:`\Delta = \lVert c_F - c_S \rVert / \sigma` apart (Mahalanobis distance over the scored
   rows), and the total-variation distance of their data is :math:`2\Phi(\Delta/2) - 1`.
4. Take any rule that maps the cosine's data to a prediction :math:`\hat p` of a WSD run, and a
   metric that is a norm (the RMSE over the scored rows, or the final loss's difference). Let
   :math:`d` be the distance between the two worlds' runs. If :math:`\hat p` is within
   :math:`d/2` of one world's run, it is at least :math:`d/2` from the other's (triangle
   inequality). Le Cam's lemma then gives

   .. math:: \tfrac12\left[P_F(\mathrm{err}_F \ge d/2) + P_S(\mathrm{err}_S \ge d/2)\right]
             \ge \tfrac12 (1 - \mathrm{TV}) = \Phi(-\Delta/2).

   For the expected errors (risks) the same argument gives, for any rule,
   :math:`R_F + R_S \ge d\,(1 - \mathrm{TV})`. The sum over both worlds' densities is at least
   their minimum times :math:`\mathrm{err}_F + \mathrm{err}_S \ge d`, and
   :math:`\int \min(p_F, p_S) = 1 - \mathrm{TV}`. So where the best baseline's risk in F plus
   the best baseline's risk in S is below :math:`d\,(1 - \mathrm{TV})`, no rule is no worse than
   the best baseline in both worlds. The script checks this per WSD run and metric (``runs`` in the
   JSON: ``impossible`` where the sum is below the floor by more than twice its Monte Carlo
   standard error). Where the sum is above the floor, the argument does not bind: the baselines'
   own estimation error, not the worlds' difference, then sets what a rule must reach.

5. In each world, the momentum law with that world's lambda is the true law. Fitted to a noisy
   cosine it misses by its estimation error only. The Monte Carlo (``--draws``) fits every law of
   ``--laws`` to each world's noisy cosine, with the same noise in both worlds (common random
   numbers, one SeedSequence child per draw). It scores each fit's RMSE and final-loss error on
   each WSD run against that world's noise-free run. The final loss is the mean of the last 5% of
   rows, as the protocols take it.

Where :math:`\Delta` is small and :math:`d` is large against the true laws' errors, no rule can be
no worse than the best baseline in both worlds. That holds whatever the rule's prior, law or
cross-validation (``--law auto`` included): the criterion asks a rule to know which world its cosine
came from. Where :math:`\Delta` is large (the cosine tells the worlds apart), or the baselines'
estimation error exceeds :math:`d`, the argument does not bind; the script says which.

Families: the shared 124M curves at 1e-3 (``--data``), and each folder of curves that
``experiments/fit_lm_family.py`` wrote (``--lm``, one family per seed), as
``single_curve_diagnosis.py`` reads them. Writes ``OUT/single_cosine_two_worlds.json`` (strict
JSON) and prints, per family, the worlds' separation and the Monte Carlo's means.

    python experiments/single_cosine_two_worlds.py --out out/two_worlds
    python experiments/single_cosine_two_worlds.py --lm out/fit_lm_family --no-shared --out out/two_worlds_lm
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import stats

from sde_scales.cli import output_folder

ROOT = Path(__file__).resolve().parents[1]
#: The laws fitted in the Monte Carlo, by their short names in ``PROTOCOL_LAWS``: the kernel law's
#: non-parametric kernel in learning-rate area (``fit-delay``'s default) and in steps, and the
#: baselines issue 12 names.
DEFAULT_LAWS = "np-area,np-steps,momentum0.99,momentum0.999,momentum,mpl"


def lecam_bound(delta: float) -> float:
    r"""Le Cam's two-point lower bound :math:`\Phi(-\Delta/2)` on the mean, over two worlds, of the
    probability that a rule's prediction is at least half their distance from the world's truth,
    where the two worlds' data are Gaussian with one covariance and Mahalanobis distance
    :math:`\Delta` (total variation :math:`2\Phi(\Delta/2) - 1`): 1/2 where the data are the same,
    0 where they separate."""
    if not (np.isfinite(delta) and delta >= 0):
        raise ValueError(f"delta={delta}; a Mahalanobis distance is finite and >= 0")
    return float(stats.norm.sf(delta / 2.0))


def _final(y: np.ndarray) -> float:
    from sde_scales.fitting.fit import final_rows

    return float(np.mean(y[-final_rows(y.size):]))


def make_worlds(cosine, wsd: list, *, skip: int, fast: float = 0.99, slow: float = 0.999,
                truth: str = "fast") -> dict:
    r"""The two worlds of the module docstring on one family: world ``truth``'s momentum law fitted
    to ``cosine`` and ``wsd`` together, the other's to that world's noise-free cosine.

    Returns a dict with each world's noise-free cosine (``cos``: the same before ``skip``), WSD runs
    (``wsd``) and parameters; the scored rows (``keep``); the cosine's noise level ``sigma``; the
    separation ``delta`` and ``tv``; ``bound`` (:func:`lecam_bound`); and per WSD run the distances
    ``d_rmse`` (RMS over its scored rows) and ``d_final`` (its final loss) between the worlds."""
    from sde_scales.fitting.fit import fit, fit_warnings, noise_level, predict, scored_rows
    from sde_scales.fitting.laws import MomentumLaw

    if truth not in ("fast", "slow"):
        raise ValueError(f"truth={truth!r}; give 'fast' or 'slow'")
    if not (0 < fast < slow < 1):
        raise ValueError(f"fast={fast}, slow={slow}; give 0 < fast < slow < 1, e.g. 0.99 and 0.999")
    lam = {"fast": fast, "slow": slow}
    other = "slow" if truth == "fast" else "fast"
    keep = scored_rows(cosine, skip)
    sigma = noise_level(cosine.loss[keep])
    if not sigma > 0:
        raise ValueError(f"{cosine.name}: its scored rows have no noise (level {sigma}); the worlds' separation "
                         f"needs a noisy cosine")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # said in fit_warnings below
        r_t = fit(MomentumLaw(lam[truth]), [cosine, *wsd], skip_steps=skip)
        c_t = predict(r_t, cosine)
        r_o = fit(MomentumLaw(lam[other]), [replace(cosine, loss=c_t)], skip_steps=skip)
        fits = {truth: r_t, other: r_o}
        cos = {truth: c_t, other: np.where(keep, predict(r_o, cosine), c_t)}  # the same before the start
        runs = {w: [predict(r, h) for h in wsd] for w, r in fits.items()}
    delta = float(np.linalg.norm((cos["fast"] - cos["slow"])[keep]) / sigma)
    dist = []
    for j, h in enumerate(wsd):
        kh = scored_rows(h, skip)
        diff = (runs["fast"][j] - runs["slow"][j])[kh]
        dist.append({"name": h.name, "d_rmse": float(np.sqrt(np.mean(diff ** 2))),
                     "d_final": abs(_final(runs["fast"][j][kh]) - _final(runs["slow"][j][kh]))})
    return {"truth": truth, "lambda": lam, "theta": {w: [float(x) for x in fits[w].theta] for w in fits},
            "fit_warnings": {w: fit_warnings(fits[w]) for w in fits},
            "cos": cos, "wsd": runs, "keep": keep, "sigma": float(sigma), "rows": int(keep.sum()), "delta": delta,
            "tv": float(2 * stats.norm.cdf(delta / 2) - 1), "bound": lecam_bound(delta), "distances": dist}


def _one_draw(args) -> list[dict]:
    """The fits of one Monte Carlo draw: every law on each world's noisy cosine (one noise for both),
    scored on each world's noise-free WSD runs."""
    from sde_scales.errors import InvalidArgumentError
    from sde_scales.fitting.fit import fit, predict, scored_rows

    cosine, wsd, worlds, laws, skip, seed = args
    noise = worlds["sigma"] * np.random.default_rng(seed).standard_normal(cosine.step.size)
    keeps = [scored_rows(h, skip) for h in wsd]
    out = []
    for w in ("fast", "slow"):
        noisy = replace(cosine, loss=worlds["cos"][w] + noise)
        for law in laws:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the fits' own warnings are fit-delay's business; here the numbers
                try:
                    r = fit(law, [noisy], skip_steps=skip)
                    preds = [predict(r, h) for h in wsd]
                except (InvalidArgumentError, FloatingPointError):
                    preds = None
            for j, (h, kh) in enumerate(zip(wsd, keeps)):
                if preds is None:
                    out.append({"world": w, "law": law.label, "run": h.name, "rmse": None, "final_err": None})
                    continue
                p, t = preds[j][kh], worlds["wsd"][w][j][kh]
                out.append({"world": w, "law": law.label, "run": h.name,
                            "rmse": float(np.sqrt(np.mean((p - t) ** 2))), "final_err": _final(p) - _final(t)})
    return out


def monte_carlo(cosine, wsd: list, worlds: dict, laws: list, *, skip: int, draws: int, seed: int = 0,
                workers: int = 1, progress: bool = False) -> list[dict]:
    """``draws`` draws of :func:`_one_draw`, each from its own SeedSequence child of ``seed``, in
    this process or ``workers`` worker processes (:func:`sde_scales.fitting.tasks.run_tasks`): the
    same numbers in any order of draws and with any number of workers. One row per draw, world, law
    and WSD run."""
    from sde_scales.fitting.tasks import run_tasks

    children = np.random.SeedSequence(seed).spawn(draws)
    done = run_tasks(_one_draw, [(i, (cosine, wsd, worlds, laws, skip, ss)) for i, ss in enumerate(children)],
                     workers, progress="draws" if progress else None)
    return [{"draw": i, **r} for i in range(draws) for r in done[i]]


KEYS = (("rmse", "rmse"), ("abs_final", "final_err"))  # (metric, the Monte Carlo rows' field)


def _error_matrices(rows: list[dict]) -> dict:
    """The Monte Carlo's |errors| as arrays of draws x WSD runs, keyed (law, world, metric), NaN
    where a fit failed; with the draws and runs in order under ``"draws"`` and ``"runs"``."""
    draws = sorted({r["draw"] for r in rows})
    runs = list(dict.fromkeys(r["run"] for r in rows))
    out = {"draws": draws, "runs": runs}
    for r in rows:
        for metric, key in KEYS:
            m = out.setdefault((r["law"], r["world"], metric), np.full((len(draws), len(runs)), np.nan))
            if r[key] is not None:
                m[draws.index(r["draw"]), runs.index(r["run"])] = abs(r[key])
    return out


def _mean_se(a: np.ndarray) -> tuple[float | None, float | None]:
    """Mean of ``a`` and its standard error (None for an empty ``a``; the error None for one value)."""
    if a.size == 0:
        return None, None
    return float(a.mean()), (float(a.std(ddof=1) / np.sqrt(a.size)) if a.size > 1 else None)


def _best(values: dict, baselines: set) -> str | None:
    """The baseline of least value among ``values`` (law -> value or None); None where none has one."""
    cand = [(v, law) for law, v in values.items() if law in baselines and v is not None]
    return min(cand)[1] if cand else None


def summarise(rows: list[dict], worlds: dict, baselines: set) -> dict:
    r"""Per world and law: the mean RMSE and mean |final error| over draws and WSD runs, with their
    Monte Carlo standard errors (over draws); the best baseline of each world and metric; and per law
    and WSD run the Le Cam check: the mean over the two worlds of the share of draws whose error is at
    least half the worlds' distance, beside :func:`lecam_bound`, which no rule can fall below (up to
    the Monte Carlo's binomial error). A failed fit counts as missing in the means and as an error of
    at least d/2 in the shares (a rule that gives no prediction does not meet any bound)."""
    err = _error_matrices(rows)
    laws = sorted({r["law"] for r in rows})
    out = {"laws": {}, "best_baseline": {}, "lecam": {}}
    for law in laws:
        out["laws"][law] = {}
        for w in ("fast", "slow"):
            whole = np.all(np.isfinite(err[law, w, "rmse"]), axis=1)  # the draws whose every fit succeeded
            rm, rm_se = _mean_se(err[law, w, "rmse"][whole].mean(axis=1))
            fe, fe_se = _mean_se(err[law, w, "abs_final"][whole].mean(axis=1))
            out["laws"][law][w] = {"rmse": rm, "rmse_se": rm_se, "abs_final": fe, "abs_final_se": fe_se,
                                   "failed_draws": int((~whole).sum())}
    for w in ("fast", "slow"):
        out["best_baseline"][w] = {}
        for m in ("rmse", "abs_final"):
            b = _best({law: out["laws"][law][w][m] for law in laws}, baselines)
            out["best_baseline"][w][m] = None if b is None else {"law": b, "value": out["laws"][b][w][m]}
    out["runs"] = _risk_certificates(err, worlds, baselines)
    n = 2 * len(err["draws"])
    for law in laws:
        out["lecam"][law] = []
        for d in worlds["distances"]:
            share = {}
            for m, dist in (("rmse", d["d_rmse"]), ("abs_final", d["d_final"])):
                v = [err[law, w, m][:, err["runs"].index(d["name"])] for w in ("fast", "slow")]
                share[m] = float(np.mean([np.mean(np.isnan(x) | (x >= dist / 2)) for x in v]))
            out["lecam"][law].append({"run": d["name"], "share_rmse": share["rmse"], "share_final": share["abs_final"],
                                      "bound": worlds["bound"],
                                      "binomial_se": float(np.sqrt(worlds["bound"] * (1 - worlds["bound"]) / n))})
    return out


def _risk_certificates(err: dict, worlds: dict, baselines: set) -> list[dict]:
    r"""Per WSD run and metric (RMSE; |final error|), and for the mean over the runs (``run``
    ``"mean over runs"``, the protocols' metric): the worlds' distance :math:`d` (for the mean, the
    mean of the runs' distances: the bound holds run by run, so it holds for the mean), the floor
    :math:`d(1 - \mathrm{TV})` that no rule's risk sum :math:`R_F + R_S` can fall below, each law's
    risks (means over draws; None where a fit failed), the best baseline of each world and their
    sum with its Monte Carlo standard error, and ``impossible``: whether that sum lies below the
    floor by more than two standard errors (then no rule matches the best baseline in both
    worlds). ``err``: :func:`_error_matrices` of the Monte Carlo's rows."""
    laws = sorted({k[0] for k in err if isinstance(k, tuple)})
    names = [d["name"] for d in worlds["distances"]]
    out = []
    for metric, _ in KEYS:
        dist = [d["d_" + ("rmse" if metric == "rmse" else "final")] for d in worlds["distances"]]
        columns = [(n, err["runs"].index(n), dist[j]) for j, n in enumerate(names)]
        for name, j, d in [*columns, ("mean over runs", None, float(np.mean(dist)))]:
            risks = {}
            for law in laws:
                risks[law] = {}
                for w in ("fast", "slow"):
                    m = err[law, w, metric]
                    a = None if not np.all(np.isfinite(m)) else (m.mean(axis=1) if j is None else m[:, j])
                    risk, se = (None, None) if a is None else _mean_se(a)
                    risks[law][w] = {"risk": risk, "se": se}
            best = {w: _best({law: risks[law][w]["risk"] for law in laws}, baselines) for w in ("fast", "slow")}
            total = se = None
            if None not in best.values():
                total = risks[best["fast"]]["fast"]["risk"] + risks[best["slow"]]["slow"]["risk"]
                ses = [risks[best[w]][w]["se"] for w in ("fast", "slow")]
                se = None if None in ses else float(np.hypot(*ses))
            floor = d * (1 - worlds["tv"])
            out.append({"run": name, "metric": metric, "d": d, "floor": floor, "risks": risks,
                        "best_baseline": best, "best_sum": total, "best_sum_se": se,
                        "impossible": None if total is None or se is None else bool(total + 2 * se < floor)})
    return out


def _family_line(name: str, w: dict) -> str:
    dists = ", ".join(f"{d['name']}: {d['d_rmse']:.4f} / {d['d_final']:.4f}" for d in w["distances"])
    return (f"{name}: truth {w['truth']} (lambda {w['lambda'][w['truth']]}), sigma {w['sigma']:.4f} over "
            f"{w['rows']} rows; the cosines lie Delta = {w['delta']:.2f} noise units apart (TV {w['tv']:.3f}); "
            f"Le Cam: any rule errs by >= d/2 with mean probability >= {w['bound']:.3f}\n  d (RMSE / final) per WSD "
            f"run: {dists}")


def _family_key(fam: dict, truth: str) -> str:
    """A digest of a family's curves (steps, rates and losses of its cosine and WSD runs), its
    skipped steps and the world fitted to its data: what a finished row is read back by."""
    import hashlib

    h = hashlib.sha256(f"{truth}:{fam['skip']}".encode())
    for c in (fam["cosine"], *fam["wsd"]):
        h.update(c.name.encode())
        for a in (c.step, c.lr, c.loss):
            h.update(np.ascontiguousarray(a, dtype=float).tobytes())
    return h.hexdigest()[:16]


def _finished(path: Path, settings: dict) -> dict:
    """The rows of ``path`` (an earlier run's JSON) by their family key; empty where there is no such
    file. A file that does not read, or one of a run with other settings (``settings``' fast, slow,
    laws, draws and seed), is refused: it is not overwritten."""
    import json

    from sde_scales.errors import DataFileError

    if not path.exists():
        return {}
    try:
        old = json.loads(path.read_text())
        other = {k: old.get(k) for k in ("fast", "slow", "laws", "draws", "seed") if old.get(k) != settings[k]}
        rows = {r["key"]: r for r in old["families"] if "key" in r}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataFileError(f"{path}: not a file this script wrote ({type(exc).__name__}: {exc}); move it away, or "
                            f"give --fresh to compute every family again and replace it") from None
    if other:
        raise DataFileError(f"{path} holds a run with other settings ({other}); give another --out to keep it, or "
                            f"--fresh to replace it")
    return rows


def _sum(risk: dict) -> float | None:
    v = [risk[w]["risk"] for w in ("fast", "slow")]
    return None if None in v else float(sum(v))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "loss_curves"),
                    help="folder of the shared loss curves (the 124M runs at 1e-3 are used; left out when absent)")
    ap.add_argument("--no-shared", action="store_true", help="leave the shared curves out")
    ap.add_argument("--lm", action="append", default=[], metavar="DIR",
                    help="an output folder of experiments/fit_lm_family.py (its curves/ are read); repeatable")
    ap.add_argument("--fast", type=float, default=0.99, help="world F's momentum decay lambda")
    ap.add_argument("--slow", type=float, default=0.999, help="world S's momentum decay lambda")
    ap.add_argument("--truth", choices=("fast", "slow", "both"), default="both",
                    help="which world is fitted to the family's data (the other to its cosine)")
    ap.add_argument("--laws", default=DEFAULT_LAWS,
                    help="comma-separated laws fitted in the Monte Carlo, by their short names in "
                         "sde_scales.fitting.protocols.PROTOCOL_LAWS")
    ap.add_argument("--draws", type=int, default=20, help="Monte Carlo draws of the noise (0: the worlds only)")
    ap.add_argument("--seed", type=int, default=0, help="root seed of the draws (numpy SeedSequence)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes for the draws (the same numbers)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--fresh", action="store_true",
                    help="compute every family again (by default a family already in OUT's JSON with the same curves "
                         "and settings is read back: a stopped run resumes)")
    ap.add_argument("--out", type=output_folder, default="out/single_cosine_two_worlds", help="output folder")
    args = ap.parse_args(argv)

    from sde_scales.atomic import write_json_atomic
    from sde_scales.errors import DataFileError, InvalidArgumentError
    from sde_scales.fitting.protocols import baseline_labels, protocol_laws

    if not (0 < args.fast < args.slow < 1):
        print(f"error: --fast {args.fast} --slow {args.slow}; give 0 < fast < slow < 1, e.g. 0.99 and 0.999",
              file=sys.stderr)
        return 2
    if args.draws < 0 or args.seed < 0 or args.workers < 1:
        print(f"error: --draws {args.draws} --seed {args.seed} --workers {args.workers}; give whole numbers >= 0 "
              f"(workers >= 1)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from single_curve_diagnosis import real_families

    try:  # the laws, then the families' curves: each refusal names its value and the fix
        laws = protocol_laws(args.laws)
        fams = real_families(None if args.no_shared else Path(args.data), args.lm)
    except (DataFileError, InvalidArgumentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not fams:
        print("error: no family: give --data with the shared curves or --lm DIR", file=sys.stderr)
        return 2
    started = time.perf_counter()
    doc = {"fast": args.fast, "slow": args.slow, "laws": [law.label for law in laws], "draws": args.draws,
           "seed": args.seed, "families": []}
    path = Path(args.out) / "single_cosine_two_worlds.json"
    try:
        done = {} if args.fresh else _finished(path, doc)
    except DataFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    baselines = baseline_labels(laws)
    truths = ("fast", "slow") if args.truth == "both" else (args.truth,)
    for name, fam in fams.items():
        for truth in truths:
            key = _family_key(fam, truth)
            if key in done:
                print(f"{name}: truth {truth}: read back from {path}", flush=True)
                doc["families"].append(done[key])
                continue
            try:
                w = make_worlds(fam["cosine"], fam["wsd"], skip=fam["skip"], fast=args.fast, slow=args.slow,
                                truth=truth)
            except (InvalidArgumentError, ValueError) as exc:
                print(f"error: family {name}: {exc}", file=sys.stderr)
                return 2
            print(_family_line(name, w), flush=True)
            for world, notes in w["fit_warnings"].items():  # the worlds' own fits: a bound, a miss of the curves
                fitted = "the data" if world == truth else "the other world's noise-free cosine"
                for note in notes:
                    print(f"  warning: world {world[0].upper()} (fitted to {fitted}): {note}", flush=True)
            row = {"family": name, **{key: w[key] for key in ("truth", "lambda", "theta", "fit_warnings", "sigma",
                                                               "rows", "delta", "tv", "bound", "distances")},
                   "skip_steps": fam["skip"], "key": key,
                   # the draws' root seed by the world fitted to the data, whichever others this run has
                   "draw_seed": args.seed + (0 if truth == "fast" else 1000), "monte_carlo": None}
            if args.draws:
                rows = monte_carlo(fam["cosine"], fam["wsd"], w, laws, skip=fam["skip"], draws=args.draws,
                                   seed=row["draw_seed"], workers=args.workers, progress=not args.no_progress)
                summ = summarise(rows, w, baselines)
                row["monte_carlo"] = {"rows": rows, **summ}
                g = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
                print(f"  {'law':28s} {'world F: rmse':>14s} {'|final|':>8s} {'world S: rmse':>14s} {'|final|':>8s}")
                for law in laws:
                    s = summ["laws"][law.label]
                    print(f"  {law.label:28s} {g(s['fast']['rmse']):>14s} {g(s['fast']['abs_final']):>8s} "
                          f"{g(s['slow']['rmse']):>14s} {g(s['slow']['abs_final']):>8s}")
                for c in summ["runs"]:
                    kern = "; ".join(f"{law}: {g(_sum(c['risks'][law]))}" for law in c["risks"]
                                     if law.startswith("kernel"))
                    print(f"  {c['run']:26s} {c['metric']:9s} d {c['d']:.4f}, floor d(1-TV) {c['floor']:.4f}; best "
                          f"baselines' risk sum {g(c['best_sum'])} +- {g(c['best_sum_se'])} -> "
                          f"{'no rule matches both' if c['impossible'] else 'does not bind'}; {kern}")
                lows = [(e["share_rmse"], e["share_final"]) for v in summ["lecam"].values() for e in v]
                print(f"  Le Cam check over laws and runs: smallest share with error >= d/2: RMSE "
                      f"{min(a for a, _ in lows):.3f}, final {min(b for _, b in lows):.3f} (bound {w['bound']:.3f})",
                      flush=True)
            doc["families"].append(row)
            write_json_atomic(path, doc)  # after each family: a stopped run keeps what it finished
    doc["seconds"] = time.perf_counter() - started
    print(f"JSON: {write_json_atomic(path, doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
