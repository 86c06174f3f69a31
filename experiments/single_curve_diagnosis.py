"""Why a law fitted to one cosine run predicts the WSD runs badly: the data, or the law's form?

The single-cosine protocol (fit one cosine run alone, predict each WSD run of the same model and
peak) fails on some families (``benchmarks/RESULTS.md``). Two explanations predict different
things, and this script measures both, per family and law (``--laws``; by default the kernel law
with the exponential kernel in steps):

1. **Form.** The law is fitted to the cosine alone and to all the family's runs together. If one
   parameter set can follow the cosine and the WSD runs at once, the joint fit misses the cosine
   about as closely as the cosine's own fit does, and one cosine fails only because it does not
   pin the time scale down (a held default could then help). If the joint fit misses the cosine
   by much more (``form_gap``, with its lack-of-fit p on the cosine), no parameter set follows
   them together: the law's form limits every prediction from one schedule to another, and no
   choice made on the cosine can repair it.
2. **What the cosine itself can choose** (laws with one time scale). The law with its time scale
   held at each value of a grid
   (``fit(..., fixed={"log10_tau": v})``), scored two ways: by rolling origin on the cosine (fit
   before 50, 65 and 80% of its steps, score the rest: what ``--law auto`` sees of one curve) and
   on the held-out WSD runs (what the user wants). Whether the time scale the cosine prefers is the
   one that predicts the WSD runs best says whether any choice made on one cosine can help.
3. **Averaging instead of choosing** (the same laws). The held fits' predictions of the WSD runs,
   averaged with weights from their profile likelihood on the cosine (``profile_average``: the
   posterior mean under a prior uniform in log time scale over the held grid, Gaussian errors
   with the residuals' autocorrelation counted). Where the cosine pins the time scale down this is
   the fit at that time scale; where it does not, the prediction averages over the time scales
   it allows instead of taking one edge of them. Its band is the mixture's (the held fits' bands
   plus their spread between time scales); ``wsd_in_band`` (the own fit's and the average's) is
   the share of WSD runs whose final loss lies within the 95% band (:func:`band_coverage`). The
   library's version of it (``time_scale_average``: ``fit-delay --average-time-scale``, whose grid
   is the range the fit searches, 1 step to 10^5 or twice the curve, not this fixed one) is scored
   beside it (``tsa`` columns).

Families: the shared 124M curves at 1e-3 (``--data``), each folder of curves that
``experiments/fit_lm_family.py`` wrote (``--lm``, one family per seed), and two planted families of
known truth (``--planted``): one whose truth is the law itself (its form holds, so the gap is the
noise's and rolling origin should find the truth's time scale) and one whose progress runs on the
square root of the rate (a form the law does not have). Writes ``OUT/single_curve_diagnosis.json``
(strict JSON, one row per family and law, with the warnings of the cosine's own fit and of the joint
fit) and prints a table. Its ``fitted wsd`` column is what the single-cosine protocol measures (the
cosine's own fit's mean RMSE on the WSD runs); ``avg wsd`` and ``eff n`` are the profile average's
mean RMSE and its effective number of held time scales; ``in band`` the share of WSD final losses
within the 95% band of the own fit / of the average; the ``half`` columns are each fit's half
response (in steps; for a law in learning-rate area, as its held time scales, in steps at the peak
rate).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder

ROOT = Path(__file__).resolve().parents[1]
#: Held time scales, log10 steps: a half-decade grid from 10 to 10,000 steps.
LOG10_TAUS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)


def planted_families(seed: int = 0, noise: float = 0.003) -> dict:
    """Two planted families (a cosine run to 10% and WSD runs over 10, 20 and 40%; 5,001 steps at
    peak 1e-3, warmup 100 steps, logged every 10 with Gaussian noise ``noise``): ``planted-law``,
    the exponential kernel law itself (L0 2.5, A 3, alpha 0.5, B 0.4, time scale 300 steps), and
    ``planted-sqrt-clock``, the same law run on the rate's square root (:math:`\\eta' =
    \\eta_{peak}\\sqrt{\\eta/\\eta_{peak}}`) and logged with the real rate: its progress and its
    drops are not the law's functions of the logged rate."""
    from fit_lm_family import family_scoring

    from sde_scales import schedules
    from sde_scales.fitting.curves import planted_curve
    from sde_scales.fitting.laws import KernelLaw

    n, peak = 5001, 1e-3
    sch = {"cos10": schedules.cosine(n, peak, final_fraction=0.1, warmup_steps=100),
           **{f"wsd{f:g}": schedules.wsd(n, peak, fraction=f, warmup_steps=100) for f in (0.1, 0.2, 0.4)}}
    law, theta = KernelLaw("exp", "steps"), [2.5, 3.0, 0.5, 0.4, np.log10(300.0)]
    skip, smooth = family_scoring(n)  # scored as the language-model families are
    out = {}
    for fam, clock in (("planted-law", lambda lr: lr), ("planted-sqrt-clock", lambda lr: peak * np.sqrt(lr / peak))):
        curves = {}
        for i, (k, lr) in enumerate(sch.items()):
            c, _ = planted_curve(law, theta, clock(lr), f"{fam}-{k}", noise=noise, seed=seed + i)
            logged = np.r_[lr, lr[-1]][c.step]
            curves[k] = replace(c, lr=logged, schedule=None)
        out[fam] = {"cosine": curves["cos10"], "wsd": [v for k, v in curves.items() if k != "cos10"],
                    "skip": skip, "smooth": smooth, "truth_log10_tau": float(theta[-1]) if fam == "planted-law" else None}
    return out


def shared_family(data: Path) -> dict:
    """The shared 124M cosine run and WSD runs at 1e-3, scored as ``fit_generalisation.py`` scores
    them (skip 500 steps, 1,000-step moving average)."""
    from sde_scales.fitting import load_curve

    c124 = [load_curve(p) for p in sorted(data.glob("124m_*_lr1e-3.csv"))]
    cos = [c for c in c124 if c.name == "124m_cos10_lr1e-3"]
    wsd = [c for c in c124 if "wsd" in c.name]
    if not cos or not wsd:
        return {}
    return {"shared-124m": {"cosine": cos[0], "wsd": wsd, "skip": 500, "smooth": 1000, "truth_log10_tau": None}}


def lm_families(folder: Path) -> dict:
    """One family per seed of the curves ``fit_lm_family.py`` wrote in ``folder/curves``, read
    with their per-step schedules rebuilt from the manifest beside them, scored as that script
    scores them (skip 2.5% of steps, 1,000 steps of moving average per 34,000)."""
    from fit_lm_family import family_schedules, family_scoring, read_curves

    from sde_scales.errors import DataFileError

    out = {}
    for man in sorted((folder / "curves").glob("manifest_seed*.json")):
        try:
            m = json.loads(man.read_text())
            n, peak = int(m["steps"]), float(m["peak_lr"])
            seed, tag = man.stem.split("_", 2)[1:]  # manifest_seed<k>_<tag>: its curves end _seed<k>_<tag>.csv
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataFileError(f"{man}: not a manifest fit_lm_family.py writes ({type(exc).__name__}: {exc}); delete "
                                f"it and its curves and rerun fit_lm_family.py") from None
        scheds = family_schedules(n, peak)
        curves = read_curves({k: folder / "curves" / f"{k}_{seed}_{tag}.csv" for k in scheds}, scheds, seed)
        skip, smooth = family_scoring(n)
        key = f"{folder.name}/{seed}"
        key = key if key not in out else f"{key}/{tag}"  # another setting of the same seed beside it
        out[key] = {"cosine": curves["cos10"], "wsd": [v for k, v in curves.items() if k.startswith("wsd")],
                    "skip": skip, "smooth": smooth, "truth_log10_tau": None}
    return out


def real_families(data: Path | None, lm: list) -> dict:
    """The shared 124M family from ``data`` (left out where it is None or not a folder) and one
    family per seed of each folder of ``lm`` (:func:`lm_families`). A folder of ``lm`` without the
    ``curves/`` that ``fit_lm_family.py`` writes is refused (:class:`InvalidArgumentError`), as is a
    file there that does not read (:class:`~sde_scales.errors.DataFileError`)."""
    from sde_scales.errors import InvalidArgumentError

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # fit_lm_family's schedules and scoring
    fams = shared_family(data) if data is not None and data.is_dir() else {}
    for d in lm:
        if not (Path(d) / "curves").is_dir():
            raise InvalidArgumentError(f"--lm {d}: no curves/ folder there; run experiments/fit_lm_family.py --out {d} "
                                       f"first")
        fams.update(lm_families(Path(d)))
    return fams


def diagnose(cosine, wsd: list, *, skip: int, smooth: int, law=None, log10_taus=LOG10_TAUS) -> dict:
    """The three measurements of the module docstring on one family (see there), with ``law`` (by
    default the kernel law with the exponential kernel in steps). The second and third, the held
    time scale and the average over it, need a law with one (a ``log10_tau`` parameter); for the
    others their fields are None."""
    from sde_scales.fitting.fit import final_loss_noise, final_rows, fit, fit_warnings, predict, predict_sd, score
    from sde_scales.fitting.laws import KernelLaw
    from sde_scales.fitting.report import validation_folds

    law = KernelLaw("exp", "steps") if law is None else law
    rmse = lambda r, c, first=skip: score(c, predict(r, c), skip_steps=first, smooth_steps=smooth)["rmse"]  # noqa: E731
    half = lambda r: (lambda v: float(v) if v is not None and np.isfinite(v) else None)(r.law.half_response(r.theta))  # noqa: E731
    scan = []
    profile = []  # per held time scale: the cosine's residuals and the predictions of the WSD runs
    finals = []  # per held time scale: each WSD run's predicted final loss and its band's sd
    observed = [(float(h.loss[-final_rows(h.step.size):].mean()), final_loss_noise(h.loss) or 0.0) for h in wsd]

    def final_band(r):
        return [(float(predict(r, h)[-final_rows(h.step.size):].mean()), float(predict_sd(r, h)[1])) for h in wsd]
    keep = cosine.step >= skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fits' warnings are the point of other tools; here the numbers are
        own = fit(law, [cosine], skip_steps=skip)
        joint = fit(law, [cosine, *wsd], skip_steps=skip)
        floor = score(cosine, cosine.loss, skip_steps=skip, smooth_steps=smooth)["target_noise_rmse"]
        if "log10_tau" in law.names:
            _, folds = validation_folds([cosine])
            for v in [*log10_taus, None]:
                fixed = None if v is None else {"log10_tau": float(v)}
                cv = [rmse(fit(law, fitted, skip_steps=skip, fixed=fixed), held, max(skip, first))
                      for _, fitted, held, first in folds]
                r = own if v is None else fit(law, [cosine], skip_steps=skip, fixed=fixed)  # None: the own fit
                preds = [predict(r, h) for h in wsd]  # scored here, averaged by the profile below
                sc = [score(h, ph, skip_steps=skip, smooth_steps=smooth) for h, ph in zip(wsd, preds)]
                if v is not None:
                    profile.append(((predict(r, cosine) - cosine.loss)[keep], preds))
                    finals.append(final_band(r))
                scan.append({"log10_tau": None if v is None else float(v), "fitted": v is None,
                             "fitted_log10_tau": float(r.theta[law.names.index("log10_tau")]),
                             "rolling_origin_rmse": float(np.mean(cv)),
                             "wsd_rmse": float(np.mean([s["rmse"] for s in sc])),
                             "wsd_abs_final_err": float(np.mean([abs(s["final_loss_err"]) for s in sc]))})
        own_rmse, joint_rmse = rmse(own, cosine), rmse(joint, cosine)
        fitted_row = [s["wsd_rmse"] for s in scan if s["fitted"]]  # the scan's last row is the own fit, scored
        own_wsd = fitted_row[0] if fitted_row else float(np.mean([rmse(own, h) for h in wsd]))
        joint_wsd = float(np.mean([rmse(joint, h) for h in wsd]))
        average = _profile_average(profile, cosine.log_every, wsd, skip, smooth, score)
        own_cover = band_coverage([1.0], [final_band(own)], observed)
        library = None
        if "log10_tau" in law.names:  # the library's average (fit-delay --average-time-scale): the fit's range
            from sde_scales.fitting.average import predict_any, predict_sd_any
            from sde_scales.fitting.time_scale_average import effective_number, time_scale_average

            tsa = time_scale_average(law, [cosine], skip_steps=skip)
            sc = [score(h, predict_any(tsa, h), skip_steps=skip, smooth_steps=smooth,
                        final_pred_sd=predict_sd_any(tsa, h)[1]) for h in wsd]
            library = {"labels": list(tsa.labels), "weights": list(tsa.weights),
                       "effective_n": effective_number(tsa.weights),
                       "wsd_rmse": float(np.mean([x["rmse"] for x in sc])),
                       "wsd_abs_final_err": float(np.mean([abs(x["final_loss_err"]) for x in sc])),
                       # None where a band is undetermined (z null), as band_coverage says
                       "wsd_in_band": (None if any(x["final_err_z"] is None for x in sc) else
                                       float(np.mean([abs(x["final_err_z"]) <= 1.96 for x in sc])))}
        if average is not None:
            average["wsd_in_band"] = band_coverage(average["weights"], finals, observed)
    held = [s for s in scan if not s["fitted"]]
    by_cv = min(held, key=lambda s: s["rolling_origin_rmse"]) if held else {}
    by_wsd = min(held, key=lambda s: s["wsd_rmse"]) if held else {}
    lof = joint.extra["lack_of_fit"].get(cosine.name, {})
    return {"law": law.label, "cosine": cosine.name, "wsd": [h.name for h in wsd], "skip_steps": skip,
            "smooth_steps": smooth, "target_noise_rmse": float(floor),
            "own_fit": {"cosine_rmse": own_rmse, "wsd_rmse": own_wsd, "half_response": half(own),
                        "wsd_in_band": own_cover, "warnings": fit_warnings(own)},
            "joint_fit": {"cosine_rmse": joint_rmse, "wsd_rmse": joint_wsd, "half_response": half(joint),
                          "cosine_lack_of_fit_p": lof.get("p"), "warnings": fit_warnings(joint)},
            "form_gap": joint_rmse - own_rmse,
            "held_time_scale": scan,
            "cv_choice_log10_tau": by_cv.get("log10_tau"), "wsd_best_log10_tau": by_wsd.get("log10_tau"),
            "cv_choice_wsd_rmse": by_cv.get("wsd_rmse"), "wsd_best_rmse": by_wsd.get("wsd_rmse"),
            "profile_average": average, "time_scale_average": library}


def band_coverage(weights, finals: list, observed: list) -> float | None:
    r"""Share of the WSD runs whose observed final loss lies within the 95% band of a weighted
    mixture of predictions; None where a band is undetermined.

    ``finals[i][j]``: the :math:`i`-th fit's predicted final loss of run :math:`j` and its band's
    standard deviation, :math:`(\mu_{ij}, \sigma_{ij})`; ``weights`` :math:`w_i` (summing to 1;
    ``[1.0]`` for one fit); ``observed[j]``: the run's final loss and its standard error
    :math:`(y_j, s_j)`. The mixture (the profile average's, the law of total variance) has mean
    :math:`\bar\mu_j = \sum_i w_i \mu_{ij}` and variance
    :math:`\sum_i w_i \sigma_{ij}^2 + \sum_i w_i (\mu_{ij} - \bar\mu_j)^2`; a run is within the
    band where :math:`|\bar\mu_j - y_j| \le 1.96 (\mathrm{var}_j + s_j^2)^{1/2}`, the rule
    ``fit-delay``'s z uses."""
    from sde_scales.fitting.average import mixture_sd, weighted_mean

    w = np.asarray(weights, dtype=float)
    mu = np.array([[m for m, _ in row] for row in finals])  # fits x runs
    band = mixture_sd(mu, np.array([[s for _, s in row] for row in finals]), w)
    if not np.all(np.isfinite(band)):
        return None
    y = np.array([o for o, _ in observed])
    se = np.array([s for _, s in observed])
    return float(np.mean(np.abs(weighted_mean(mu, w) - y) <= 1.96 * np.sqrt(band ** 2 + se ** 2)))


def _profile_average(profile: list, log_every: int, wsd: list, skip: int, smooth: int, score) -> dict | None:
    r"""The WSD runs predicted by averaging the held time scales' fits to the cosine over their
    profile likelihood on it: the posterior mean of the prediction under a prior uniform in
    :math:`\log_{10}\tau` over the held grid, with Gaussian errors of the variance of the best held
    fit's residuals, :math:`\hat\sigma^2 = \min_i \mathrm{SSR}_i / n`, inflated by their
    autocorrelation :math:`\kappa` (the fit's own rule, ``autocorrelation_inflation``):
    :math:`w_i \propto \exp(-(\mathrm{SSR}_i - \min_j \mathrm{SSR}_j) / (2\kappa\hat\sigma^2))`.
    Where the cosine pins the time scale down, one held value takes the weight; where it does not,
    the weights spread, and the prediction is what the law predicts on average over the time scales
    the cosine allows, instead of at one edge of them. ``effective_n``: :math:`\exp` of the weights'
    entropy (1: one held value; the grid's size: all equal). A best held fit with no residual at
    all (a noise-free curve that law and time scale reproduce exactly) leaves no variance to weigh
    the others by: its weight is 1. ``score`` is :func:`sde_scales.fitting.fit.score` (a stand-in in
    the tests). None for a law without a held scan."""
    from sde_scales.fitting.time_scale_average import effective_number, profile_weights

    if not profile:
        return None
    ssr = np.array([float(r @ r) for r, _ in profile])
    w, kappa = profile_weights(ssr, profile[int(np.argmin(ssr))][0], log_every)  # the library's formula
    sc = [score(h, sum(wi * p[1][j] for wi, p in zip(w, profile)), skip_steps=skip, smooth_steps=smooth)
          for j, h in enumerate(wsd)]
    return {"weights": [float(x) for x in w], "effective_n": effective_number(w),
            "residual_inflation": float(kappa),
            "wsd_rmse": float(np.mean([s["rmse"] for s in sc])),
            "wsd_abs_final_err": float(np.mean([abs(s["final_loss_err"]) for s in sc]))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "loss_curves"),
                    help="folder of the shared loss curves (left out when absent)")
    ap.add_argument("--lm", action="append", default=[], metavar="DIR",
                    help="an output folder of experiments/fit_lm_family.py (its curves/ are read); repeatable")
    ap.add_argument("--planted", action="store_true", help="also the two planted families of known truth")
    ap.add_argument("--planted-only", action="store_true", help="the planted families alone (a quick check)")
    ap.add_argument("--laws", default="exp-steps",
                    help="comma-separated laws by their short names in sde_scales.fitting.protocols.PROTOCOL_LAWS "
                         "(the held time scale is scanned for those with one: exp-steps, exp-area, momentum)")
    ap.add_argument("--skip-fraction", type=float, default=None,
                    help="fit and score every family from this fraction of its last step on (default: as each "
                         "family's protocol does: 500 steps on the shared curves, 2.5%% on the others)")
    ap.add_argument("--out", type=output_folder, default="out/single_curve_diagnosis", help="output folder")
    args = ap.parse_args(argv)

    from sde_scales.atomic import write_json_atomic
    from sde_scales.errors import DataFileError, InvalidArgumentError
    from sde_scales.fitting.protocols import protocol_laws

    if args.skip_fraction is not None and not (0.0 <= args.skip_fraction < 0.5):
        print(f"error: --skip-fraction {args.skip_fraction}; give a fraction in [0, 0.5), e.g. 0.1: the fits need "
              f"the rest of the curve", file=sys.stderr)
        return 2
    try:
        laws = protocol_laws(args.laws)
    except InvalidArgumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        fams = {} if args.planted_only else real_families(Path(args.data), args.lm)
    except (DataFileError, InvalidArgumentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.planted or args.planted_only:
        fams.update(planted_families())
    if not fams:
        print("error: no family to diagnose: give --data with the shared curves, --lm DIR or --planted",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    started = time.perf_counter()
    rows = []
    f = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    print(f"{'family':30s} {'law':26s} {'own cos':>8s} {'joint cos':>9s} {'gap':>7s} {'lof p':>8s} {'floor':>7s} "
          f"{'half own':>8s} {'half jnt':>8s} | {'cv picks':>8s} {'its wsd':>8s} {'best':>8s} {'its wsd':>8s} "
          f"{'fitted wsd':>10s} {'avg wsd':>8s} {'eff n':>5s} {'in band':>9s} | {'tsa wsd':>8s} {'in band':>7s}")
    for name, fam in fams.items():
        skip = fam["skip"] if args.skip_fraction is None else int(args.skip_fraction * fam["cosine"].step[-1])
        for law in laws:
            try:
                d = {"family": name, **diagnose(fam["cosine"], fam["wsd"], skip=skip, smooth=fam["smooth"], law=law),
                     "truth_log10_tau": fam["truth_log10_tau"]}
            except (InvalidArgumentError, FloatingPointError) as exc:  # e.g. too few rows left to fit; nothing written
                print(f"error: family {name}, {law.label}, skip {skip} steps: {exc} (a smaller --skip-fraction leaves "
                      f"the fits and the rolling origin's heads more rows)", file=sys.stderr)
                return 2
            rows.append(d)
            avg, tsa = d["profile_average"], d["time_scale_average"]
            tau = lambda k: None if d[k] is None else 10 ** d[k]  # noqa: E731
            print(f"{name:30s} {d['law']:26s} {d['own_fit']['cosine_rmse']:8.5f} {d['joint_fit']['cosine_rmse']:9.5f} "
                  f"{d['form_gap']:7.4f} {f(d['joint_fit']['cosine_lack_of_fit_p'], '.1e'):>8s} "
                  f"{d['target_noise_rmse']:7.4f} {f(d['own_fit']['half_response'], '.3g'):>8s} "
                  f"{f(d['joint_fit']['half_response'], '.3g'):>8s} | {f(tau('cv_choice_log10_tau'), '.0f'):>8s} "
                  f"{f(d['cv_choice_wsd_rmse'], '.5f'):>8s} {f(tau('wsd_best_log10_tau'), '.0f'):>8s} "
                  f"{f(d['wsd_best_rmse'], '.5f'):>8s} {d['own_fit']['wsd_rmse']:10.5f} "
                  f"{f(avg and avg['wsd_rmse'], '.5f'):>8s} {f(avg and avg['effective_n'], '.1f'):>5s} "
                  f"{f(d['own_fit']['wsd_in_band'], '.2f'):>4s}/{f(avg and avg['wsd_in_band'], '.2f'):>4s} | "
                  f"{f(tsa and tsa['wsd_rmse'], '.5f'):>8s} {f(tsa and tsa['wsd_in_band'], '.2f'):>7s}", flush=True)
    doc = {"laws": [law.label for law in laws], "log10_taus": list(LOG10_TAUS), "rows": rows,
           "seconds": time.perf_counter() - started}
    print(f"JSON: {write_json_atomic(out / 'single_curve_diagnosis.json', doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
