"""``sde-scales fit-delay``: fit laws on some curves, predict others, print, write JSON, CSVs, plots.

All inputs are loaded and validated before anything is written, and every file is written
atomically (temporary file, then rename), so a bad input never leaves half-written results.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from sde_scales.atomic import write_json_atomic, write_text_atomic
from sde_scales.errors import DataFileError, InvalidArgumentError
from sde_scales.fitting.average import AveragedFit, mixture_band, weighted_mean
from sde_scales.fitting.curves import (InitialLossWarning, LossCurve, ScheduleSpec, curve_name, load_curve,
                                      parse_columns)
from sde_scales.fitting.fit import (DEPTH_MARGIN, SMOOTH_FRACTION, SMOOTH_STEPS, FitResult, IdentifiabilityWarning,
                                   PeakLRWarning, WindowWarning, default_smooth_steps, evaluation_limit, extrapolations,
                                   final_rows, fit, first_trained_step, fit_warnings, lack_of_fit_fired,
                                   long_window_curves, long_window_note, model_error, predict, predict_sd,
                                   schedule_reach, score, shared_noise_offset, time_scale_profile)
from sde_scales.fitting.laws import KernelLaw, Law, MomentumLaw, MultiPowerLaw
from sde_scales.fitting.tasks import run_tasks

__all__ = ["AUTO_DROP_HINT", "AutoChoiceWarning", "ONE_DROP_HINT", "SECOND_DROP", "band_summary", "choose_law",
           "chosen_law", "fit_auto", "fit_members", "make_law", "one_drop_note", "paired_comparisons", "run_average",
           "run_law", "run_fit_delay", "undecided_predictions", "validation_folds"]


class AutoChoiceWarning(UserWarning):
    """``--law auto``: the held-out errors do not separate the chosen law from another candidate."""

LAW_CHOICES = ("kernel", "momentum", "mpl")
#: Share of a predicted curve's RMSE above which the moving average's flattening of the prediction
#: (``target_bias_rmse``) gets a warning: beyond half, most of the RMSE is the window's.
BIAS_SHARE = 0.5
#: Candidates of ``--law auto``, as (law, kernel, time): every law, and the kernel law with each
#: kernel in steps and in learning-rate area (Theorem 5.1's clock for SGD, where a lower rate
#: relaxes more slowly; which one a family of curves follows is for the data to say:
#: ``benchmarks/RESULTS.md`` has families that favour each); the instantaneous kernel, the same in
#: either time, is the no-delay baseline, so a delay is chosen only where it predicts better.
AUTO_CANDIDATES = (("kernel", "nonparametric", "steps"), ("kernel", "exp", "steps"), ("kernel", "power", "steps"),
                   ("kernel", "nonparametric", "area"), ("kernel", "exp", "area"), ("kernel", "power", "area"),
                   ("kernel", "instant", "steps"), ("momentum", None, None), ("mpl", None, None))


#: Where a single fitted curve is cut for ``--law auto``: each candidate is fitted to the rows before
#: these fractions of the curve's steps and scored on the rows after (rolling-origin validation).
ROLLING_FRACTIONS = (0.5, 0.65, 0.8)

#: Two-sided level of the paired interval that decides whether the fold errors separate the chosen
#: law from another candidate.
DECIDE_LEVEL = 0.95

#: Fold errors whose log ratios average at most this are a tie, whatever the t interval says. Two
#: laws that the curves reduce to the same fit (on a run without a drop every kernel does) reach it
#: to the optimiser's precision (fits stop at a relative cost change of 1e-12, so a held-out RMSE
#: moves in about the sixth digit), and their ratios then agree from fold to fold so closely that
#: the t interval calls a difference of 7e-8 decided (measured on the shared constant-rate run).
#: A millionth of an RMSE is far below any held-out error's noise (about a percent on the shared curves).
TIE_RTOL = 1e-6


#: The remedy the note of a fit to one drop names (:func:`one_drop_note`), measured in ``benchmarks/RESULTS.md``.
SECOND_DROP = ("fit as well a curve whose rate drops in another way (a step decay, a WSD cooldown; a constant run "
               "tests no drop)")
#: What that note advises for one law asked for by name.
ONE_DROP_HINT = (f"{SECOND_DROP}; --law auto's band also holds the candidate laws' disagreement (wider, though its mean "
                 f"of the laws may miss by more than one law); with the exponential kernel in learning-rate area "
                 f"(--kernel exp --time area), --average-time-scale's band also holds the time scales the curve "
                 f"allows (measured in benchmarks/RESULTS.md, \"Bands that average over the time scale\")")
#: What it advises for the law a ``--law auto`` decided on.
AUTO_DROP_HINT = f"{SECOND_DROP}: --law auto's folds chose this law over the others, but they hold no other drop"


def validation_folds(fit_curves: list[LossCurve]) -> tuple[str, list]:
    """How ``--law auto`` scores candidates on ``fit_curves``: (method, folds), each fold being
    (label, curves to fit, curve to score, first scored step or None). Two or more curves: leave
    one curve out. One curve: rolling origin, fitted to the rows before
    :data:`ROLLING_FRACTIONS` of its steps and scored on the rows after."""
    if len(fit_curves) >= 2:
        return ("leave-one-curve-out over the fitted curves",
                [(held.name, [c for j, c in enumerate(fit_curves) if j != i], held, None)
                 for i, held in enumerate(fit_curves)])
    (c,) = fit_curves
    folds = []
    for frac in ROLLING_FRACTIONS:
        cut = int(c.step[0] + frac * (c.step[-1] - c.step[0]))
        try:
            head = c.head(cut)
        except ValueError as exc:
            raise type(exc)(f"--law auto with one fitted curve fits it to the first {frac:.0%} of its steps and scores "
                            f"the rest: {exc}; give a longer curve or a second --fit curve") from None
        folds.append((f"{c.name}: fit before step {cut}, score after", [head], c, cut))
    return (f"rolling origin on the one fitted curve (fit to the rows before {', '.join(f'{f:.0%}' for f in ROLLING_FRACTIONS)} "
            f"of its steps, score the rows after)", folds)


def _undecided(best: list[float], other: list[float], level: float = DECIDE_LEVEL) -> bool:
    r"""Whether the folds fail to separate two candidates: the paired log-ratios
    :math:`d_i = \ln(e_i^{other} / e_i^{best})` of their held-out RMSEs have a mean within the
    ``level`` Student-t interval of zero (:math:`\bar d \le t_{n-1}\, s_d/\sqrt n`), or is at most
    :data:`TIE_RTOL` (a tie to the optimiser's precision). Ratios, not
    differences: an RMSE is a scale, and the folds of one comparison differ in scale (a curve with a
    deep drop has errors ten times a smooth one's), which would swamp a difference test. Always
    undecided with fewer than two folds."""
    from scipy import stats

    tiny = np.finfo(float).tiny  # a perfect fold (RMSE 0) compares as the smallest positive number
    d = np.log(np.maximum(np.asarray(other, dtype=float), tiny) / np.maximum(np.asarray(best, dtype=float), tiny))
    if d.size < 2 or np.mean(d) <= TIE_RTOL:
        return True
    sd = float(np.std(d, ddof=1))
    if sd == 0.0:
        return bool(np.mean(d) <= 0.0)
    return bool(np.mean(d) <= stats.t.ppf(0.5 + level / 2, d.size - 1) * sd / np.sqrt(d.size))


def choose_law(fit_curves: list[LossCurve], *, skip_steps: int, smooth_steps: int, level: bool = True,
               offset: bool | str = "test", candidates=AUTO_CANDIDATES, workers: int = 1, progress: bool = False,
               max_evaluations: int | None = None) -> dict:
    """Cross-validation of every candidate law (:data:`AUTO_CANDIDATES`) on the fitted curves.

    With two or more curves, leave one curve out: fit on the others, predict it, score it (RMSE
    against the moving average, final-loss error). With one curve, rolling origin: fit to the rows
    before each of :data:`ROLLING_FRACTIONS` of its steps and score the rows after, which is where
    the schedule's later drops reach the loss. The candidate with the least mean held-out RMSE is
    chosen; ``undecided`` lists the candidates the folds do not separate from it (a paired
    Student-t interval at :data:`DECIDE_LEVEL` on the fold-by-fold log RMSE ratios), and when it
    is not empty the result says the data do not decide the choice (``decided: false`` and a
    warning) instead of presenting a coin toss as a choice. ``candidates``: (law name, kernel,
    time) triples (kernel and time None for the other laws), by default every law and kernel in
    both times. Returns every candidate's scores and folds, the choice (``chosen_name``,
    ``chosen_kernel``, ``chosen_time``: :func:`make_law`'s arguments) and ``members``: the chosen
    law followed by the undecided ones, whose average :func:`fit_auto` predicts with
    (:mod:`sde_scales.fitting.average`; the chosen law alone where the folds decide). ``workers`` > 1 runs the
    (candidate, fold) fits in that many spawned processes, with the same result (a script that
    calls it so needs the usual ``if __name__ == "__main__":`` guard of multiprocessing).
    ``progress``: a progress bar of the fits on standard error (on a terminal).
    ``max_evaluations``: each fit's evaluation limit (:func:`~sde_scales.fitting.fit.fit`).
    ``level`` and ``offset`` shape the kernel-law candidates (:func:`make_law`)."""
    if not fit_curves:
        raise InvalidArgumentError("--law auto: no fitted curves; give at least one --fit curve")
    if workers < 1:
        raise InvalidArgumentError(f"--workers {workers}; give at least 1")
    limit = evaluation_limit(max_evaluations)  # refused here, not once per fold fit
    method, folds = validation_folds(fit_curves)
    tasks = [((c, k), (*cand, level, offset, fitted, held, skip_steps if first is None else max(skip_steps, first),
                       skip_steps, smooth_steps, label, limit))
             for c, cand in enumerate(candidates) for k, (label, fitted, held, first) in enumerate(folds)]
    scored = run_tasks(_score_fold, tasks, workers, "--law auto: fits of the folds" if progress else None)
    rows = []
    for c, (name, kernel, time) in enumerate(candidates):
        law = make_law(name, kernel, time, level, offset)
        scored_folds = [scored[(c, k)] for k in range(len(folds))]
        ok = [f["rmse"] for f in scored_folds if f["rmse"] is not None and np.isfinite(f["rmse"])]
        complete = len(ok) == len(scored_folds)
        rows.append({"law": law.label, "name": name, "kernel": kernel, "time": time,
                     "cv_rmse": float(np.mean(ok)) if complete else None,
                     "cv_abs_final_err": (float(np.mean([abs(f["final_loss_err"]) for f in scored_folds]))
                                          if complete else None),
                     "unconverged_folds": [f["held_out"] for f in scored_folds if f.get("converged") is False],
                     "folds": scored_folds})
    scored = [r for r in rows if r["cv_rmse"] is not None]
    if not scored:
        why = next((f["error"] for r in rows for f in r["folds"] if f.get("error")), "non-finite held-out errors")
        raise InvalidArgumentError(f"--law auto: no candidate law could be fitted in every fold (first failure: {why})")
    best = min(scored, key=lambda r: r["cv_rmse"])
    fold_rmse = lambda r: [f["rmse"] for f in r["folds"]]  # noqa: E731
    undecided = [r["law"] for r in scored if r is not best and _undecided(fold_rmse(best), fold_rmse(r))]
    out = {"method": f"{method}; mean held-out RMSE against the {smooth_steps}-step moving average",
           "candidates": rows, "chosen": best["law"], "chosen_name": best["name"], "chosen_kernel": best["kernel"],
           "chosen_time": best["time"],
           "decided": not undecided, "undecided": undecided, "members": [best["law"]] + undecided, "warning": None,
           "convergence_warning": _unconverged_note(rows, limit)}
    if undecided:
        out["warning"] = (f"--law auto: the held-out errors do not separate {best['law']} (chosen, least mean RMSE) from "
                          f"{', '.join(undecided)} ({DECIDE_LEVEL:.0%} paired t interval of the log RMSE ratios over {len(folds)} folds): the "
                          f"data do not decide between them; their predictions of other schedules may differ more "
                          f"than their held-out errors do, so --law auto predicts with their average, with their "
                          f"disagreement in its band (sde_scales.fitting.average)")
        warnings.warn(out["warning"], AutoChoiceWarning, stacklevel=2)
    if out["convergence_warning"]:
        warnings.warn(out["convergence_warning"], AutoChoiceWarning, stacklevel=2)
    return out


def describe_choice(auto: dict, average: bool = True) -> str:
    """One line on a :func:`choose_law` result, for a table's reader: the chosen law, whether the
    folds decide it (and, if not, from which laws and what is predicted with), and the candidates
    whose fits stopped at the optimiser's evaluation limit in some fold."""
    out = auto["chosen"] + ("; decided" if auto["decided"] else
                            f"; not separated from {', '.join(auto['undecided'])}"
                            + ("; predicted with their mean" if average else ""))
    stuck = _unconverged(auto["candidates"])
    return out + (f"; fits not converged: {', '.join(stuck)}" if stuck else "")


def _unconverged(rows: list[dict]) -> list[str]:
    """'law in k of n folds' for each candidate row whose fit stopped at the evaluation limit in k of its n folds."""
    return [f"{r['law']} in {len(r['unconverged_folds'])} of {len(r['folds'])} folds"
            for r in rows if r["unconverged_folds"]]


def _unconverged_note(rows: list[dict], limit: int) -> str | None:
    """The candidates whose fit stopped at the optimiser's evaluation limit in some fold, said in
    one line (None when every fold's fit converged): their held-out errors are those of the
    parameters where the optimiser stopped, so their place in the ranking is not a converged fit's."""
    stuck = _unconverged(rows)
    if not stuck:
        return None
    return (f"--law auto: the fits of {', '.join(stuck)} stopped at the optimiser's limit of {limit} evaluations "
            f"before meeting its tolerances (a flat objective: the curves do not pin those laws' parameters down); "
            f"their held-out errors are those of where it stopped. Along a flat valley the errors often stop changing "
            f"long before the tolerances are met, but that is not checked here, so a choice that hinges on these "
            f"candidates is less sure than their folds say (--max-evaluations raises the limit). Each fold is in the "
            f"JSON (auto.candidates[].folds[].converged)")


def _score_fold(task) -> dict:
    """One candidate in one fold of :func:`choose_law`: fit, predict the held-out part, score it
    (a module-level function, so that worker processes can run it)."""
    name, kernel, time, level, offset, fitted, held, skip, fit_skip, smooth_steps, label, max_evaluations = task
    law = make_law(name, kernel, time, level, offset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each fold's warnings belong to the final fit, reported there
        try:
            res = fit(law, fitted, skip_steps=fit_skip, max_evaluations=max_evaluations)
            sc = score(held, predict(res, held), skip_steps=skip, smooth_steps=smooth_steps)
            return {"held_out": label, "rmse": sc["rmse"], "final_loss_err": sc["final_loss_err"],
                    "converged": res.extra["converged"]}
        except (ValueError, FloatingPointError) as exc:
            return {"held_out": label, "rmse": None, "final_loss_err": None, "error": str(exc)}


def fit_auto(fit_curves: list[LossCurve], *, skip_steps: int, smooth_steps: int, level: bool = True,
             offset: bool | str = "test", candidates=AUTO_CANDIDATES, workers: int = 1, average: bool = True,
             choice: dict | None = None, max_evaluations: int | None = None) -> tuple[dict, FitResult | AveragedFit]:
    """:func:`choose_law` on ``fit_curves``, then what ``--law auto`` predicts with, fitted to all of
    them: (choice, fit). Where the folds decide, the chosen law's :class:`FitResult`; where they do
    not, the :class:`~sde_scales.fitting.average.AveragedFit` of the laws they do not separate
    (``members``; one whose fit to all the curves fails is left out and named in the choice's
    ``member_failures``). ``average=False``: the chosen law alone in either case (the choice by least
    held-out error, for comparison). The choice's :class:`AutoChoiceWarning` is the caller's to see.
    ``choice``: a :func:`choose_law` result for these curves and settings made already (the
    cross-validation is not run again; a copy is returned). One whose folds are not those of
    ``fit_curves`` is refused."""
    if choice is not None:
        folds = [label for label, *_ in validation_folds(fit_curves)[1]]
        made = [f["held_out"] for f in choice["candidates"][0]["folds"]]
        if made != folds:
            raise InvalidArgumentError(f"--law auto: the choice given was made on the folds {made}, not on these "
                                       f"curves' {folds}; pass the choice made on these curves, or none to make it")
        auto = dict(choice)
    else:
        auto = choose_law(fit_curves, skip_steps=skip_steps, smooth_steps=smooth_steps, level=level, offset=offset,
                          candidates=candidates, workers=workers, max_evaluations=max_evaluations)
    if not average or auto["decided"]:
        return auto, fit(chosen_law(auto, level, offset), fit_curves, skip_steps=skip_steps,
                         max_evaluations=max_evaluations)
    avg, auto["member_failures"] = fit_members(auto, fit_curves, skip_steps=skip_steps, level=level, offset=offset,
                                               workers=workers, max_evaluations=max_evaluations)
    return auto, avg


def _fit_member(task):
    """One law of an average fitted to all the curves: its :class:`FitResult`, or the error's message
    (a module-level function, so that worker processes can run it; the fit's warnings are kept in
    its ``extra["warnings"]``)."""
    name, kernel, time, level, offset, fit_curves, skip_steps, max_evaluations = task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fit(make_law(name, kernel, time, level, offset), fit_curves,
                       skip_steps=skip_steps, max_evaluations=max_evaluations)
        except (ValueError, FloatingPointError) as exc:
            return str(exc)


def fit_members(auto: dict, fit_curves: list[LossCurve], *, skip_steps: int, level: bool = True,
                offset: bool | str = "test", workers: int = 1, progress: bool = False,
                max_evaluations: int | None = None) -> tuple[AveragedFit, dict]:
    """The laws of :func:`choose_law`'s ``members`` fitted to all of ``fit_curves`` (in ``workers``
    processes, with the same result): their :class:`~sde_scales.fitting.average.AveragedFit` and
    ``{law: error}`` for those whose fit failed, which are left out of it. Refused where every fit
    fails."""
    rows = {r["law"]: r for r in auto["candidates"]}
    labels = list(auto["members"])
    done = run_tasks(_fit_member, [(lab, (rows[lab]["name"], rows[lab]["kernel"], rows[lab]["time"], level,
                                           offset, fit_curves, skip_steps, max_evaluations)) for lab in labels], workers,
                      "--law auto: the laws to average" if progress else None)
    failed = {lab: done[lab] for lab in labels if isinstance(done[lab], str)}
    ok = [lab for lab in labels if lab not in failed]
    if not ok:
        raise InvalidArgumentError(f"--law auto: no law of the average could be fitted to all the fitted curves "
                                   f"(first failure: {next(iter(failed.values()))})")
    return AveragedFit(tuple(ok), tuple(done[lab] for lab in ok)), failed


def undecided_predictions(labels, member_preds: list[dict], predict_curves: list[LossCurve], failed: dict) -> dict:
    """What the data's indecision costs: each law of an average (``labels``: the chosen law and every
    candidate :func:`choose_law` could not separate from it, each fitted to all the fitted curves;
    ``member_preds``: each law's predictions by curve name, as :func:`run_average` returns them) and
    its predicted final loss (the mean over the last 5% of rows) of each of ``predict_curves``, with
    the range they span. Where the range is wider than one law's band, the choice among these laws,
    which the fitted curves do not make, decides the prediction; the mean's band holds it. Returns
    ``{"curves": [one entry per predicted curve], "failed": failed}`` (``failed``: the laws whose fit
    failed, as :func:`fit_members` names them)."""
    curves = []
    for c in predict_curves:
        n_last = final_rows(c.step.size)
        finals = {lab: float(np.mean(p[c.name][-n_last:])) for lab, p in zip(labels, member_preds)}
        v = list(finals.values())
        curves.append({"file": c.name, "final_loss": finals, "range": [min(v), max(v)], "spread": max(v) - min(v)})
    return {"curves": curves, "failed": failed}


def chosen_law(auto: dict, level: bool = True, offset: bool | str = "test") -> Law:
    """The law :func:`choose_law` chose (its kernel and time matter to the kernel law only)."""
    return make_law(auto["chosen_name"], auto["chosen_kernel"], auto["chosen_time"], level, offset)


#: ``fit-delay --offset``'s values as :attr:`~sde_scales.fitting.laws.KernelLaw.offset`'s.
OFFSET_CHOICES = {"test": "test", "on": True, "off": False}


def make_law(name: str, kernel: str | None = "nonparametric", time: str | None = "steps", level: bool = True,
             offset: bool | str = "test") -> Law:
    """The law called ``name``; ``kernel``, ``time``, ``level`` (with the level term B * peak, or
    the drops alone) and ``offset`` (the progress term's area offset,
    :attr:`~sde_scales.fitting.laws.KernelLaw.offset`: by default ``"test"``, fit with and without
    it and keep the offset where the curves reject the plain term) shape the kernel law. ``None`` for
    ``kernel`` or ``time`` is its default, as
    the candidates of :data:`AUTO_CANDIDATES` and the choices in JSON write the laws without them:
    ``make_law(*candidate)`` builds each."""
    if name == "kernel":
        return KernelLaw(kernel=kernel or "nonparametric", time=time or "steps", level=level, offset=offset)
    if name == "momentum":
        return MomentumLaw()
    if name == "mpl":
        return MultiPowerLaw()
    raise InvalidArgumentError(f"law {name!r}; use one of {LAW_CHOICES}")


def run_law(law: Law, fit_curves: list[LossCurve], predict_curves: list[LossCurve], *, skip_steps: int,
            smooth_steps: int, shared_noise: bool, profile: bool,
            result: FitResult | None = None, max_evaluations: int | None = None,
            one_drop_hint: str | None = ONE_DROP_HINT) -> tuple[dict, FitResult, dict]:
    """Fit one law and score it; returns (JSON document, fit result, predictions by curve name).
    ``result``: the law's fit to ``fit_curves`` made already (by :func:`fit_members`), scored as it
    is, its warnings those it kept. ``one_drop_hint``: what the note of a fit whose curves hold
    one learning-rate drop (:func:`one_drop_note`) advises; None: no such note (a member of an average, whose band
    holds the laws' disagreement)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if result is None:
            res = fit(law, fit_curves, skip_steps=skip_steps, max_evaluations=max_evaluations)
        else:
            res = result
            for msg in fit_warnings(res):
                warnings.warn(msg, UserWarning, stacklevel=2)
        preds = {c.name: predict(res, c) for c in fit_curves + predict_curves}
        sds = {c.name: predict_sd(res, c) for c in fit_curves + predict_curves}
        ident = None
        if profile and isinstance(law, KernelLaw):
            ident = time_scale_profile(fit_curves, time=law.time, skip_steps=skip_steps,
                                       max_evaluations=max_evaluations)
    doc = {
        "law": law.label,
        "params": res.params,
        "fit_seconds": res.seconds,
        "converged": res.extra["converged"],  # False: the optimiser stopped at its evaluation limit (warned)
        "skip_steps": skip_steps,
        "metrics_target": f"centred moving average over {smooth_steps} steps; final_loss_err against the raw mean "
                          f"of the last 5% of points",
        **_scored(fit_curves, predict_curves, preds, sds, skip_steps, smooth_steps),
        "band": {"method": "delta method on the fit's Gauss-Newton covariance, inflated by residual autocorrelation "
                           "(sde_scales.fitting.bands): parameter uncertainty given the law; plus, in quadrature, "
                           "model_error_sd, the law's miss of its fitted curves beyond their noise where the "
                           "lack-of-fit test rejects it (0 where it does not; fit.model_error); null where the "
                           "fitted curves do not determine the prediction",
                 "model_error_sd": model_error(res),
                 "conditional_on": res.extra["covariance"].conditional_on,
                 "inflation": res.extra["covariance"].inflation},
        # the initial loss is one of the reading notes (fit_delay_command), not each law's
        "warnings": sorted({str(w.message) for w in caught if not issubclass(w.category, InitialLossWarning)}),
    }
    notes = []  # what the bands and the metrics cannot say, beside the fit's own warnings
    held_at_bound = [n for n in res.extra["covariance"].on_bound if not n.startswith("b_")]
    if held_at_bound and predict_curves:
        what = (f"{held_at_bound[0]} at its bound" if len(held_at_bound) == 1
                else f"{', '.join(held_at_bound)} at their bounds")
        notes.append(f"{law.label}: the prediction bands hold {what}: that uncertainty is not in the bands, which may "
                     f"be too narrow")
    undetermined = [c.name for c in predict_curves if np.isnan(sds[c.name][1])]
    if undetermined:
        notes.append(f"{law.label}: the fitted curves do not determine the predicted final loss of "
                     f"{', '.join(undetermined)} (it depends on a combination of parameters the fit leaves free or holds "
                     f"at a default): no band; fit curves whose schedules resemble the predicted one")
    overflowed = [c.name for c in predict_curves if np.isinf(sds[c.name][1])]
    if overflowed:
        notes.append(f"{law.label}: the band of the predicted final loss of {', '.join(overflowed)} overflows (the "
                     f"fit's curvature along the parameters it depends on is too small to invert in float64): no band; "
                     f"the prediction is not determined by the fitted curves")
    bent = [r for r in doc["predict"] if r["rmse"] > 0 and r["target_bias_rmse"] > BIAS_SHARE * r["rmse"]]
    if bent:
        notes.append(f"{law.label}: the {smooth_steps}-step moving average, the RMSE's target, flattens the predicted "
                     f"curve of {', '.join(r['file'] for r in bent)} by {max(r['target_bias_rmse'] for r in bent):.3g} "
                     f"(RMSE of the prediction against its own average), more than {BIAS_SHARE:.0%} of the RMSE: the "
                     f"RMSE there measures the window as much as the law (most often the first half window after "
                     f"--skip-steps, whose average reaches into the steep start); give a shorter --smooth-steps or a "
                     f"--skip-steps half a window later, or judge by rmse_raw")
    if one_drop_hint is not None and (note := one_drop_note(law.label, fit_curves, predict_curves, one_drop_hint)):
        notes.append(note)
    wide = long_window_curves(fit_curves + predict_curves, smooth_steps)
    if wide:
        notes.append(long_window_note(wide, smooth_steps))
    doc["warnings"] = sorted(set(doc["warnings"]) | set(notes))
    doc["checks"] = _checks(doc, lack_of_fit_fired(res.extra["lack_of_fit"]),
                            [c.name for c in predict_curves if extrapolations(res, c)],
                            rising(fit_curves + predict_curves, skip_steps))
    law = res.law  # the law as fitted (the non-parametric grid follows the curves)
    if isinstance(law, KernelLaw):
        doc["kernel"] = {"kind": law.kernel, "time": law.time,
                         "level_term": bool(law.level),
                         "grid": None if law.taus is None else [float(t) for t in law.taus],
                         "time_scale": law.time_scale(res.theta),
                         "delay_half_response": law.half_response(res.theta), "amplitude_B": law.amplitude(res.theta)}
    if res.extra.get("time_scale_interval"):
        doc["time_scale_interval"] = res.extra["time_scale_interval"]
    if res.extra.get("offset_test"):  # offset "test": whether the curves rejected the plain progress term
        doc["offset_test"] = res.extra["offset_test"]
    # the block-mean test of the law against each fitted curve's noise (fit.lack_of_fit)
    doc["lack_of_fit"] = res.extra["lack_of_fit"]
    # points of each coarse stage the fit started from (fit.COARSE_POINTS; empty: fitted directly)
    doc["coarse_stages"] = res.extra.get("coarse_stages", [])
    if ident is not None:
        doc["identifiability"] = ident
    offsets = {}
    if shared_noise:
        offsets = {c.name: shared_noise_offset(res, fit_curves, c, smooth_steps) for c in predict_curves}
        doc["shared_noise_correction"] = {
            "model": "residuals of the fitted runs around the law, smoothed over the same window, interpolated "
                     "linearly in learning rate at each step (sde_scales.fitting.shared_noise_offset)",
            "predict": _scored([], predict_curves, preds, None, skip_steps, smooth_steps, offsets)["predict"],
        }
    doc["summary"] = summarize(doc)
    return doc, res, {"pred": preds, "sd": {k: v[0] for k, v in sds.items()},
                      "sd_final": {k: v[1] for k, v in sds.items()}, "offset": offsets}


def one_drop_note(label: str, fit_curves: list[LossCurve], predict_curves: list[LossCurve],
                   hint: str = ONE_DROP_HINT) -> str | None:
    """The note on a law whose fitted curves hold one learning-rate drop, predicting curves of
    another schedule; None where two or more fitted curves drop, where none does (the fit's own
    warnings then say that the drop response is not determined), or where every predicted curve
    has the dropping curve's schedule (the same rate at every step, to 1e-6 of the peak).

    A curve drops where its rate decays after its peak by more than
    :data:`~sde_scales.fitting.fit.DEPTH_MARGIN` of it (:func:`~sde_scales.fitting.fit.schedule_reach`):
    a constant run, or one that barely decays, shows no drop response. The band of
    :func:`~sde_scales.fitting.fit.predict_sd` is the parameters' uncertainty given the law's form
    (plus its miss of the fitted curves where it misses them). One drop cannot test that form
    against another schedule's: a law of another form may follow it as closely and predict the other
    schedule differently, by more than the band. Measured by ``benchmarks/one_curve_bands.py``
    (``benchmarks/RESULTS.md``, "Bands from one fitted curve" and the section after it): curves
    planted from three laws and from a form that is none of them, a cosine fitted by the default
    kernel, alone or with a constant run or a step decay, a WSD run predicted.
    """
    dropping = [c for c in fit_curves if schedule_reach(c)[0] > DEPTH_MARGIN]
    if len(dropping) != 1 or not predict_curves:
        return None
    (c,) = dropping
    lr = c.per_step_lr()
    tol = 1e-6 * float(np.max(np.abs(lr)))
    other = [p.name for p in predict_curves
             if p.step[-1] != c.step[-1] or not np.allclose(p.per_step_lr(), lr, rtol=0.0, atol=tol)]
    if not other:
        return None
    which = (f"fitted to one curve, {c.name}" if len(fit_curves) == 1 else
             f"of the fitted curves only {c.name} has a learning-rate drop (a decay deeper than {DEPTH_MARGIN:.0%} "
             f"of its peak)")
    return (f"{label}: {which}: the bands of {', '.join(other)} are the parameters' uncertainty given this law's form, "
            f"which one drop does not test against another schedule's; a law of another form may follow "
            f"{c.name} as closely and predict these differently, by more than the band (measured on curves "
            f"planted from other laws: benchmarks/one_curve_bands.py). To test the form: {hint}")


def _scored(fit_curves, predict_curves, preds, sds, skip_steps: int, smooth_steps: int, offsets=None) -> dict:
    """The ``fit`` and ``predict`` entries of a document: :func:`score` of each curve's prediction
    with its final-loss band (``sds``; None: none), plus its shared-noise offset (``offsets``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WindowWarning)  # one note for every curve: run_law's
        return {part: [score(c, preds[c.name], skip_steps=skip_steps, smooth_steps=smooth_steps,
                             offset=None if offsets is None else offsets[c.name],
                             final_pred_sd=None if sds is None else sds[c.name][1]) for c in curves]
                for part, curves in (("fit", fit_curves), ("predict", predict_curves))}


def run_average(avg: AveragedFit, fit_curves: list[LossCurve], predict_curves: list[LossCurve], *, skip_steps: int,
                smooth_steps: int) -> tuple[dict, AveragedFit, dict]:
    """Score the average of ``avg``'s laws (:mod:`sde_scales.fitting.average`) on the fitted and
    predicted curves; returns (JSON document, ``avg``, predictions by curve name), as
    :func:`run_law` does for one law. The document holds each law's own document under
    ``members`` and the warnings of them all; the third value adds each law's own (``members``). The
    mean and its band are formed from the laws' predictions and bands as :func:`run_law` computed
    them (:func:`~sde_scales.fitting.average.mixture_band`), not predicted again."""
    done = [run_law(r.law, fit_curves, predict_curves, skip_steps=skip_steps, smooth_steps=smooth_steps,
                    shared_noise=False, profile=False, result=r, one_drop_hint=None) for r in avg.results]
    members, extras = [d[0] for d in done], [d[2] for d in done]
    preds, sds = {}, {}
    for c in fit_curves + predict_curves:
        each = np.array([e["pred"][c.name] for e in extras])
        preds[c.name] = weighted_mean(each, avg.weights)
        sds[c.name] = mixture_band(each, [(e["sd"][c.name], e["sd_final"][c.name]) for e in extras], avg.weights)
    doc = {
        "law": avg.label,
        "params": {},
        "fit_seconds": float(sum(r.seconds for r in avg.results)),
        "converged": all(m["converged"] for m in members),
        "skip_steps": skip_steps,
        "metrics_target": members[0]["metrics_target"],
        **_scored(fit_curves, predict_curves, preds, sds, skip_steps, smooth_steps),
        "band": {"method": f"{'equal-weight' if avg.weights is None else 'weighted'} mixture of the averaged laws "
                           f"(sde_scales.fitting.average): the mean of their bands' variances plus the variance of "
                           f"their predictions about the mean; null where any law's band is undetermined",
                 "weights": None if avg.weights is None else list(avg.weights),
                 "conditional_on": sorted({n for r in avg.results for n in r.extra["covariance"].conditional_on})},
        "members": members,
        "warnings": sorted({w for m in members for w in m["warnings"]}),
    }
    doc["checks"] = _checks(doc, any(m["checks"]["lack_of_fit"] for m in members),
                            [c.name for c in predict_curves
                             if any(c.name in m["checks"]["extrapolated"] for m in members)],
                            rising(fit_curves + predict_curves, skip_steps))
    doc["summary"] = summarize(doc)
    return doc, avg, {"pred": preds, "sd": {k: v[0] for k, v in sds.items()},
                      "sd_final": {k: v[1] for k, v in sds.items()}, "offset": {}, "members": extras}


def paired_comparisons(results: list, predict_curves: list[LossCurve], *, skip_steps: int,
                       smooth_steps: int) -> list[dict]:
    """Every pair of fitted laws (``(law, result, extra)`` as :func:`run_law` returns them) compared
    on the predicted curves by :func:`sde_scales.fitting.compare.compare_curves` (the per-curve
    comparisons under ``per_curve``)."""
    from sde_scales.fitting.compare import compare_curves

    return [compare_curves(predict_curves, [ex_a["pred"][c.name] for c in predict_curves],
                           [ex_b["pred"][c.name] for c in predict_curves], label_a=law_a.label, label_b=law_b.label,
                           skip_steps=skip_steps, smooth_steps=smooth_steps)
            for i, (law_a, _, ex_a) in enumerate(results) for law_b, _, ex_b in results[i + 1:]]


def rising(curves: list[LossCurve], skip_steps: int) -> list[str]:
    """The curves whose loss rises, from ``skip_steps`` on, where their learning rate does not
    (:meth:`~sde_scales.fitting.curves.LossCurve.loss_rise`, cached on each curve): no law follows
    such a stretch, so a fit through it is pulled by it and a score against it measures it."""
    return sorted(c.name for c in curves if c.loss_rise(skip_steps) is not None)


def _checks(doc: dict, lack_of_fit: bool, extrapolated: list[str], rises: list[str] = ()) -> dict:
    """A law's (or an average's) ``checks`` for its JSON document and ``--strict``: its ``converged``,
    whether its lack-of-fit test fired, the predicted curves it extrapolates to, those of its
    scored predictions without a band, and the curves whose loss rises where their rate does not
    (:func:`rising`)."""
    return {"converged": doc["converged"], "lack_of_fit": lack_of_fit, "extrapolated": sorted(extrapolated),
            "no_band": [r["file"] for r in doc["predict"] if r.get("final_loss_pred_sd") is None],
            "rises": list(rises)}


def strict_failures(doc: dict) -> list[str]:
    """Why the reported law's answer cannot be taken as given, from its document's ``checks`` (for
    ``fit-delay --strict``): an optimiser stopped at its limit, a law that misses its own fitted
    curves by more than their noise, a prediction that extrapolates beyond the fitted curves (any of
    :func:`~sde_scales.fitting.fit.extrapolations`), a predicted final loss the fit does not
    determine, a fitted or predicted loss that rises where its rate does not (:func:`rising`).
    Empty where none holds."""
    c = doc["checks"]
    out = []
    if not c["converged"]:
        out.append("the optimiser stopped at its evaluation limit before converging (--max-evaluations)")
    if c["lack_of_fit"]:
        out.append("the law misses its fitted curves by more than their noise (lack_of_fit)")
    if c["extrapolated"]:
        out.append(f"the prediction of {', '.join(c['extrapolated'])} extrapolates beyond the fitted curves")
    if c["no_band"]:
        out.append(f"the fitted curves do not determine the predicted final loss of {', '.join(c['no_band'])}")
    if c.get("rises"):
        out.append(f"the loss of {', '.join(c['rises'])} rises where the learning rate does not, which no law follows")
    return out


def band_summary(rows: list[dict]) -> tuple[float | None, float | None]:
    """Over scored predictions (:func:`~sde_scales.fitting.fit.score` with ``final_pred_sd``): the
    mean standard deviation of the predicted final losses from the fit's parameters, and the share
    whose final error lies within the 95% band of that and the observed final loss's standard error
    combined (|z| <= 1.96), near 0.95 where a law's misses are noise; each over the rows where it is
    known, None where it is known for none."""
    sds = [r["final_loss_pred_sd"] for r in rows if r.get("final_loss_pred_sd") is not None]
    zs = [r["final_err_z"] for r in rows if r.get("final_err_z") is not None]
    return (float(np.mean(sds)) if sds else None,
            float(np.mean(np.abs(zs) <= 1.96)) if zs else None)


def summarize(doc: dict) -> dict:
    out = {}
    for key, rows in (("predict", doc["predict"]),
                      ("predict_shared_noise", doc.get("shared_noise_correction", {}).get("predict"))):
        if not rows:
            continue
        cool = [r["cooldown_rmse"] for r in rows if r["cooldown_rmse"] is not None]
        out[key] = {"mean_rmse": float(np.mean([r["rmse"] for r in rows])),
                    "mean_cooldown_rmse": float(np.mean(cool)) if cool else None,
                    "mean_abs_final_loss_err": float(np.mean([abs(r["final_loss_err"]) for r in rows]))}
        if key == "predict":
            out[key]["mean_final_loss_pred_sd"], out[key]["within_95"] = band_summary(rows)
    return out


def format_rows(doc: dict) -> str:
    if "members" in doc:  # an average (run_average): each law's parameters on a line of its own
        lines = [f"law {doc['law']}: fitted in {doc['fit_seconds']:.2f} s"]
        lines += [f"  {m['law']}: " + ", ".join(f"{k}={v:.4g}" for k, v in m["params"].items()) for m in doc["members"]]
    else:
        lines = [f"law {doc['law']}: fitted in {doc['fit_seconds']:.2f} s; params "
                 + ", ".join(f"{k}={v:.4g}" for k, v in doc["params"].items())]
    head = (f"  {'part':8s} {'file':34s} {'r2':>7s} {'mae':>7s} {'rmse':>7s} {'cool_rmse':>9s} {'max_err':>7s} "
            f"{'final_err':>9s} {'pred_sd':>7s} {'z':>6s}")
    lines.append(head)
    for part in ("fit", "predict"):
        for r in doc[part]:
            cool = "-" if r["cooldown_rmse"] is None else f"{r['cooldown_rmse']:.4f}"
            sd = "-" if r.get("final_loss_pred_sd") is None else f"{r['final_loss_pred_sd']:.4f}"
            z = "-" if r.get("final_err_z") is None else f"{r['final_err_z']:+.2f}"
            r2 = "-" if r["r2"] is None else f"{r['r2']:.3f}"
            lines.append(f"  {part:8s} {r['file'][:34]:34s} {r2:>7s} {r['mae']:7.4f} {r['rmse']:7.4f} {cool:>9s} "
                         f"{r['max_abs_err']:7.4f} {r['final_loss_err']:+9.4f} {sd:>7s} {z:>6s}")
    floor = [r["target_noise_rmse"] for r in doc["fit"] + doc["predict"]]
    fin = [r["final_loss_noise"] for r in doc["fit"] + doc["predict"] if r["final_loss_noise"] is not None]
    lines.append(f"  the moving average's own noise puts a floor of {min(floor):.4f}-{max(floor):.4f} under these "
                 f"RMSEs" + (f"; the observed final losses have standard errors {min(fin):.4f}-{max(fin):.4f}"
                             if fin else "") + " (independent per-point noise)")
    if "band" in doc:
        cond = doc["band"]["conditional_on"]
        merr = doc["band"].get("model_error_sd") or 0.0
        what = ("the averaged laws' parameters and their disagreement" if "members" in doc
                else f"the fit's parameters and its miss of the fitted curves beyond their noise ({merr:.3g}, "
                     f"lack of fit)" if merr > 0 else "the fit's parameters (given the law)")
        lines.append(f"  pred_sd: standard deviation of the predicted final loss from {what}; z: final_err over it and "
                     f"the observed final loss's standard error combined"
                     + (f"; conditional on {', '.join(cond)}" if cond else ""))
    for k, v in doc["summary"].items():
        cool = "-" if v["mean_cooldown_rmse"] is None else f"{v['mean_cooldown_rmse']:.4f}"
        lines.append(f"  {k}: mean rmse {v['mean_rmse']:.4f}, mean cooldown rmse {cool}, "
                     f"mean |final err| {v['mean_abs_final_loss_err']:.4f}")
    if "kernel" in doc:
        k = doc["kernel"]
        lines.append(f"  kernel: {k['kind']} in {k['time']}, time scale {k['time_scale']:.4g}, "
                     f"delay (half response) {k['delay_half_response']:.4g}")
    if doc.get("offset_test"):
        o = doc["offset_test"]
        lines.append(f"  progress term: {'A (S1 + S0)^-alpha, S0 = ' + format(o['S0'], '.4g') if o['kept'] else 'A S1^-alpha'}"
                     f" (the plain term's likelihood-ratio p = {o['p']:.3g} against the offset's, "
                     f"{'below' if o['kept'] else 'not below'} {o['level']:g})")
    if doc.get("time_scale_interval") and doc["time_scale_interval"]["ci"][0] is not None:
        t = doc["time_scale_interval"]
        lines.append(f"  time scale 95% interval from the fit's curvature [{t['ci'][0]:.4g}, {t['ci'][1]:.4g}]")
    if "identifiability" in doc:
        i = doc["identifiability"]
        lines.append(f"  time scale 95% profile interval [{i['interval'][0]:.4g}, {i['interval'][1]:.4g}] ({i['time']})")
    for w in doc["warnings"]:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


def plot_fit(path: Path, fit_curves, predict_curves, preds, smooth_steps: int, title: str, sds=None,
             band: str = "95% band of the prediction from the fit's parameters", forecasts=()) -> Path:
    """Observed (smoothed) and predicted curves with the learning rates beneath; with ``sds`` (standard
    deviations by curve name, :func:`~sde_scales.fitting.fit.predict_sd`) a shaded 95% band around each
    predicted curve where it is determined, ``band`` its legend entry; ``forecasts``
    (:class:`~sde_scales.fitting.forecast.Forecast`) dash-dotted, with their bands and rates."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from sde_scales.plots import save_figure

    curves = list(fit_curves) + list(predict_curves)
    fig, (ax, axl) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]},
                                  constrained_layout=True)
    for i, c in enumerate(curves):
        col = f"C{i % 10}"
        role = "fit" if i < len(fit_curves) else "predicted"
        ax.plot(c.step, c.loss, color=col, alpha=0.12, lw=0.6)
        ax.plot(c.step, c.smoothed(smooth_steps), color=col, lw=1.2, label=f"{c.name} (observed, {role})")
        ax.plot(c.step, preds[c.name], color=col, lw=1.2, ls="--")
        if sds is not None and role == "predicted" and np.isfinite(sds[c.name]).any():
            ax.fill_between(c.step, preds[c.name] - 1.96 * sds[c.name], preds[c.name] + 1.96 * sds[c.name],
                            color=col, alpha=0.2, lw=0)
        axl.plot(c.step, c.lr, color=col, lw=1.0)
    for j, f in enumerate(forecasts):
        col = f"C{(len(curves) + j) % 10}"
        ax.plot(f.step, f.loss, color=col, lw=1.2, ls="-.", label=f"{f.name} (forecast: no observed loss)")
        if np.isfinite(f.sd).any():
            ax.fill_between(f.step, f.loss - 1.96 * f.sd, f.loss + 1.96 * f.sd, color=col, alpha=0.2, lw=0)
        axl.plot(f.step, f.lr, color=col, lw=1.0, ls="-.")
    ax.set_ylabel("training loss")
    keys = [Line2D([], [], color="0.3", lw=1.2, label=f"observed, moving average over {smooth_steps} steps"),
            Line2D([], [], color="0.3", lw=1.2, ls="--", label="law (fitted or predicted)")]
    if sds is not None:
        keys.append(Patch(color="0.3", alpha=0.2, lw=0, label=band))
    handles, _ = ax.get_legend_handles_labels()
    shown = [c.smoothed(smooth_steps) for c in curves] + [f.loss[np.isfinite(f.loss)] for f in forecasts]
    late = [c.smoothed(smooth_steps)[c.step > c.step[-1] * 0.1] for c in curves] + \
        [f.loss[(f.step > f.step[-1] * 0.1) & np.isfinite(f.loss)] for f in forecasts]
    lo = min(np.percentile(v, 1) for v in shown if v.size)
    hi = max(np.percentile(v, 99) for v in late if v.size)
    ax.set_ylim(lo - 0.05, hi + 0.05)
    ax.legend(handles=handles + keys, fontsize=6, ncol=2)
    ax.set_title(title, fontsize=9)
    axl.set_ylabel("learning rate")
    axl.set_xlabel("step")
    return save_figure(fig, path)


def plot_kernel(path: Path, law: KernelLaw, theta) -> Path | None:
    r"""The fitted memory kernel :math:`q(\tau)` and its integral :math:`Q(\tau)`, the response to a
    unit drop of the learning rate, with the half response marked on both. The kernel's axis shows
    four decades below its largest value: an exponential kernel's tail fell to 1e-48 over the
    plotted range and flattened everything above it. None, and nothing written, where the law
    has no time scale (the instantaneous kernel: its geometric range of tau ended in numpy's
    ValueError after the fit's JSON was written)."""
    import matplotlib.pyplot as plt

    from sde_scales.plots import save_figure

    unit = "steps" if law.time == "steps" else "learning-rate area"
    ts = law.time_scale(theta)
    if not (np.isfinite(ts) and ts > 0):
        return None
    tau = np.geomspace(max(ts / 1000, 1e-3), ts * 100, 300)
    q = np.asarray(law.q(theta, tau), float)
    hr = law.half_response(theta)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.4), constrained_layout=True)
    a1.loglog(tau, q, color="C0", label=rf"$q(\tau)$, {law.label}")
    top = np.nanmax(q[np.isfinite(q) & (q > 0)]) if np.any(np.isfinite(q) & (q > 0)) else None
    if top is not None:
        a1.set_ylim(top * 1e-4, top * 2)
    a1.set_xlabel(rf"$\tau$ ({unit} since the drop)")
    a1.set_ylabel(rf"memory kernel $q(\tau)$ (per {'step' if law.time == 'steps' else 'unit of area'})")
    a2.semilogx(tau, law.Q(theta, tau), color="C0", label=r"$Q(\tau) = \int_0^\tau q$")
    for a in (a1, a2):
        a.axvline(hr, color="C3", ls="--", lw=1.2, label=f"half response {hr:.3g} {unit}" if a is a2 else None)
        a.grid(True, which="major", alpha=0.3)
    a2.set_xlabel(rf"$\tau$ ({unit} since the drop)")
    a2.set_ylabel(r"response $Q(\tau)$ to a unit drop")
    a2.set_ylim(-0.02, 1.05)
    a1.legend(fontsize=7, loc="lower left")
    a2.legend(fontsize=7, loc="upper left")
    fig.suptitle("fitted memory kernel of the loss's response to a learning-rate drop", fontsize=9)
    return save_figure(fig, path)


def schedule_specs(specs: list[str]) -> dict[str, str]:
    """``NAME:SPEC`` texts (``--schedule``) as {curve name: spec text}; refused without
    the colon or with two specs for one curve."""
    by = {}
    for text in specs or []:
        if ":" not in text:
            raise InvalidArgumentError(f"--schedule {text!r}: give NAME:SPEC, NAME the curve's file name without "
                                       f"extension, e.g. cos:warmup=2160,peak=3e-4,decay=cosine,total=72000")
        name, spec = text.split(":", 1)
        name = Path(name).stem
        if name in by:
            raise InvalidArgumentError(f"--schedule: two specs for curve {name!r}")
        by[name] = spec
    return by


def apply_schedules(curves: list[LossCurve], specs: list[str]) -> list[LossCurve]:
    """Attach ``NAME:SPEC`` schedule specs (``--schedule``) to the curves named NAME
    (:func:`~sde_scales.fitting.curves.curve_name`)."""
    by = schedule_specs(specs)
    known = {c.name for c in curves}
    unknown = sorted(set(by) - known)
    if unknown:
        raise InvalidArgumentError(f"--schedule names {unknown}, which are not among the curves {sorted(known)}")
    return [c.with_spec(by[c.name]) if c.name in by else c for c in curves]


def forecast_specs(texts: list[str], taken: list[str], every: int | None, columns: dict | None = None) -> dict:
    """``NAME:SPEC``, ``NAME:FILE`` or ``FILE`` texts (``--forecast``; a file alone is named after
    its stem) as {name: the learning rate at every step}, from the spec or the schedule file (:func:`~sde_scales.fitting.forecast.schedule_from_file`,
    its columns found as the curve files' are, ``columns`` their ``--columns``), checked before any
    fit: the colon, the spec or file, a name given twice or already a curve's (``taken``: the
    outputs name each after it), the schedule's length and ``every`` (``--forecast-every``)
    against it. A text after the colon with an ``=`` in it is a spec, else a file. The rates are
    expanded here once, not once per law forecast."""
    by = {}
    for text in texts or []:
        if ":" not in text and Path(text).is_file():
            text = f"{Path(text).stem}:{text}"  # a schedule file alone is named after its file name
        if ":" not in text:
            raise InvalidArgumentError(f"--forecast {text!r}: no such file, and no NAME: before a spec; give "
                                       f"NAME:SPEC, e.g. wsd:warmup=500,peak=1e-3,decay=linear,decay_start=40000,"
                                       f"total=50000, or a schedule file ([NAME:]FILE)")
        name, spec = (x.strip() for x in text.split(":", 1))
        if not name:
            raise InvalidArgumentError(f"--forecast {text!r}: the name before the colon is empty; it names the "
                                       f"forecast's outputs (NAME.csv)")
        if name in (".", "..") or Path(name).name != name:
            raise InvalidArgumentError(f"--forecast {text!r}: the name {name!r} holds a path; give a plain name (it "
                                       f"names the file NAME.csv that --predictions writes)")
        if name in by or name in taken:
            raise InvalidArgumentError(f"--forecast {text!r}: {name!r} is already "
                                       f"{'a forecast' if name in by else 'a fitted or predicted curve'}'s name; "
                                       f"give each forecast a name of its own")
        try:
            if "=" in spec:
                by[name] = ScheduleSpec.parse(spec)
            else:
                from sde_scales.fitting.forecast import schedule_from_file

                by[name] = schedule_from_file(spec, columns)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"--forecast {name}: {exc}") from None
    return {name: forecast_rates(spec, every, name) for name, spec in by.items()}


def forecast_rates(spec, every: int | None, name: str) -> np.ndarray:
    """A ``--forecast`` schedule's rate at every step, and ``--forecast-every`` checked against its
    length, as :func:`~sde_scales.fitting.forecast.forecast` checks them."""
    from sde_scales.fitting.forecast import _check_every, schedule_rates

    try:
        rates = schedule_rates(spec)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"--forecast {name}: {str(exc).removeprefix('forecast: ')}") from None
    try:
        _check_every(every, rates.size - 1)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"--forecast-every for {name}: {exc}") from None
    return rates


def run_forecasts(result, specs: dict, every: int | None) -> list:
    """Each ``--forecast`` schedule predicted by ``result`` (a fit or an average):
    :func:`~sde_scales.fitting.forecast.forecast`, its warnings kept in each forecast."""
    from sde_scales.fitting.forecast import forecast

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PeakLRWarning)  # in each forecast's warnings, printed with the law
        return [forecast(result, spec, every=every, name=name) for name, spec in specs.items()]


def forecast_differences(result, forecasts: list) -> list:
    """Every pair of ``forecasts`` of one result compared
    (:func:`~sde_scales.fitting.forecast.forecast_difference`)."""
    from sde_scales.fitting.forecast import forecast_difference

    return [forecast_difference(result, a, b) for i, a in enumerate(forecasts) for b in forecasts[i + 1:]]


def attach_forecasts(doc: dict, forecasts: list, differences: list = ()) -> None:
    """A law's forecasts in its document: under ``forecasts`` (and their pairwise differences under
    ``forecast_differences``), their warnings among the law's, and in its ``checks`` (for
    ``--strict``): those that extrapolate beyond the fitted curves, and those whose final loss has
    no band."""
    if not forecasts:
        return
    doc["forecasts"] = [f.to_dict() for f in forecasts]
    if differences:
        doc["forecast_differences"] = [d.to_dict() for d in differences]
    doc["warnings"] = sorted(set(doc["warnings"]) | {w for f in forecasts for w in f.warnings})
    doc["checks"]["extrapolated"] = sorted(set(doc["checks"]["extrapolated"]) | {f.name for f in forecasts if f.warnings})
    doc["checks"]["no_band"] = list(doc["checks"]["no_band"]) + [f.name for f in forecasts if f.final_sd is None]


def forecast_into(doc: dict, extra: dict, result, specs: dict, every: int | None) -> None:
    """``--forecast``: the schedules of ``specs`` forecast by ``result`` and compared in pairs,
    kept in ``extra`` (``forecasts``, ``forecast_differences``) and in the law's document
    (:func:`attach_forecasts`)."""
    extra["forecasts"] = run_forecasts(result, specs, every)
    extra["forecast_differences"] = forecast_differences(result, extra["forecasts"])
    attach_forecasts(doc, extra["forecasts"], extra["forecast_differences"])


def format_forecasts(label: str, forecasts: list, differences: list = ()) -> str:
    """The forecasts of one law, a line each: the last step, the predicted final loss with its
    standard deviation and 95% interval ("no band" where the fitted curves do not determine it);
    then each pair's difference of final losses, with its own band (the forecasts share the fit's
    parameters, so it is narrower than theirs, unless the law misses its fitted curves: that part,
    each forecast's miss as if independent, is named)."""
    lines = [f"forecasts of {label} (no observed loss; final loss: mean of the last 5% of rows):"]
    for f in forecasts:
        band = ("no band: the fitted curves do not determine it" if f.final_sd is None else
                f"+- {f.final_sd:.4f} sd, 95% [{f.final_loss - 1.96 * f.final_sd:.4f}, "
                f"{f.final_loss + 1.96 * f.final_sd:.4f}]")
        lines.append(f"  {f.name[:30]:30s} to step {int(f.step[-1]):,}: final loss {f.final_loss:.4f} {band}"
                     + ("   (beyond the fitted curves: see the warnings)" if f.warnings else ""))
        if f.member_final_losses:
            v = list(f.member_final_losses.values())
            lines.append(f"  {'':30s} the averaged fits' own final losses: {min(v):.4f} to {max(v):.4f}")
    if differences:
        lines.append("  differences of final losses (a minus b; one fit's parameters, so their errors move together):")
    for d in differences:
        band = "no band" if d.sd is None else (f"+- {d.sd:.4f} sd" + (f" (the law's miss of its curves: {d.model_sd:.4f})"
                                                                      if d.model_sd > 0 else "")
                                               + f", 95% [{d.interval[0]:+.4f}, {d.interval[1]:+.4f}]")
        say = {"a lower": f"{d.a} ends lower", "b lower": f"{d.b} ends lower"}.get(d.verdict, d.verdict)
        lines.append(f"    {d.a} - {d.b}: {d.difference:+.4f} {band}: {say}")
    return "\n".join(lines)


def _check_law_options(args) -> None:
    """Options that shape the kernel law, refused where no kernel law is fitted (they were ignored:
    ``--law momentum --kernel power`` fitted the momentum law); then their defaults."""
    kernel, time = getattr(args, "kernel", None), getattr(args, "time", None)
    given = [f for f, v in (("--kernel", kernel), ("--time", time)) if v is not None]
    if args.law in ("momentum", "mpl") and not args.compare:
        given += ["--drops-only"] if getattr(args, "drops_only", False) else []
        given += [f"--offset {args.offset}"] if getattr(args, "offset", None) is not None else []
        if given:
            raise InvalidArgumentError(f"{' and '.join(given)} {'shapes' if len(given) == 1 else 'shape'} the kernel "
                                       f"law, and --law {args.law} fits none; "
                                       f"use --law kernel, or --compare to fit every law")
    if args.law == "auto" and given:
        raise InvalidArgumentError(f"--law auto tries every kernel in steps and in learning-rate area; leave "
                                   f"{' and '.join(given)} out (--law kernel fits the one you name)")
    if getattr(args, "per_seed", False) and not getattr(args, "store", None):
        raise InvalidArgumentError("--per-seed reads each run of a --store as a curve of its own; give --store PATH")
    if getattr(args, "metric", None) is not None and not getattr(args, "store", None):
        # it was ignored: the files' own loss column was fitted, whatever --metric said
        raise InvalidArgumentError(f"--metric {args.metric} chooses a --store's loss; a file's loss column is named "
                                   f"with --columns loss=NAME (e.g. --columns loss=val_loss)")
    if getattr(args, "store", None) and getattr(args, "metric", None) is None:
        args.metric = "train_loss"
    # both were ignored in silence: the profile is of the kernel law's time scale, and the correction
    # is of the predicted curves' metrics
    if getattr(args, "profile", False) and args.law != "kernel" and not args.compare:
        raise InvalidArgumentError(f"--profile profiles the kernel law's time scale, and --law {args.law} reports "
                                   f"{'an average of laws' if args.law == 'auto' else 'none'}; use --law kernel, or "
                                   f"--compare to fit every law")
    if getattr(args, "shared_noise", False) and not (getattr(args, "predict", None)
                                                     or getattr(args, "predict_where", None)):
        raise InvalidArgumentError("--shared-noise corrects the metrics of predicted curves; give --predict CSV "
                                   "(or --predict-where with --store)")
    if getattr(args, "average_time_scale", False):
        from sde_scales.fitting.time_scale_average import has_time_scale

        single = args.law != "auto" and has_time_scale(make_law(args.law, kernel, time))
        if not single or args.compare:
            raise InvalidArgumentError(
                "--average-time-scale averages one law over its single time scale; give --law kernel --kernel exp "
                "(with --time steps or area) or --law momentum" + (", without --compare" if args.compare else ""))
        clash = [f for f, v in (("--profile", getattr(args, "profile", False)),
                                ("--shared-noise", getattr(args, "shared_noise", False))) if v]
        if clash:
            raise InvalidArgumentError(f"{' and '.join(clash)} {'works' if len(clash) == 1 else 'work'} on one fit, "
                                       f"and --average-time-scale predicts with a mixture of fits; leave "
                                       f"{' and '.join(clash)} out")
    workers = getattr(args, "workers", None)
    if workers is not None and args.law != "auto" and not getattr(args, "average_time_scale", False):
        # it was ignored: one law is one fit, in this process
        raise InvalidArgumentError(f"--workers {workers} runs --law auto's cross-validation fits, or "
                                   f"--average-time-scale's held fits, in parallel, and --law {args.law} fits one "
                                   f"law in this process; leave --workers out")
    args.workers = 1 if workers is None else workers
    args.kernel, args.time = kernel or "nonparametric", time or "steps"


def run_fit_delay(args) -> int:
    _check_law_options(args)
    if getattr(args, "workers", 1) < 1:
        raise InvalidArgumentError(f"--workers {args.workers}; give at least 1 process")
    if args.skip_steps < 0:
        raise InvalidArgumentError(f"--skip-steps {args.skip_steps}; give a step >= 0 (0: every row)")
    max_evaluations = evaluation_limit(getattr(args, "max_evaluations", None), "--max-evaluations")
    if args.smooth_steps is not None and args.smooth_steps < 1:
        raise InvalidArgumentError(f"--smooth-steps {args.smooth_steps}; give a window of at least 1 step (leave it "
                                   f"out for the default)")
    cols = parse_columns(getattr(args, "columns", None))
    specs = schedule_specs(getattr(args, "schedule", None) or [])  # a loss-only file takes its rates from its spec
    with warnings.catch_warnings(record=True) as caught:  # what reading the files assumed: printed and in the JSON
        warnings.simplefilter("always")
        fit_curves = [load_curve(p, cols, schedule=specs.get(curve_name(p))) for p in (args.fit or [])]
        predict_curves = [load_curve(p, cols, schedule=specs.get(curve_name(p))) for p in (args.predict or [])]
    read_notes = list(dict.fromkeys(str(w.message) for w in caught))
    for note in read_notes:
        print(f"warning: {note}")
    for c in fit_curves + predict_curves:
        if c.columns and "lr" not in dict(c.columns):
            print(f"{c.name}: no learning-rate column; its rate at every step is that of its --schedule spec")
    renamed = {c.name: dict(c.columns) for c in fit_curves + predict_curves if any(k != v for k, v in c.columns)}
    for name, m in renamed.items():
        print(f"{name}: read " + ", ".join(f"{v!r} as {k}" for k, v in m.items() if k != v))
    ema = getattr(args, "log_ema", None)
    running = getattr(args, "log_running_mean", None)
    if ema is not None and running is not None:
        raise InvalidArgumentError(f"--log-ema {ema} and --log-running-mean {running}: a log is one kind of average; "
                                   f"give the one the training loop printed")
    if running is not None:
        fit_curves = [c.unsmooth_running_mean(running) for c in fit_curves]
        predict_curves = [c.unsmooth_running_mean(running) for c in predict_curves]
        rounding = max(c.unsmoothing_rounding for c in fit_curves + predict_curves) if fit_curves + predict_curves else 0.0
        print("the logged losses are read as a running mean "
              + (f"reset every {running} steps" if running else "since the start of the run")
              + " and turned back into the mean loss over each logging interval"
              + (f"; the logged means' rounding becomes noise of up to {rounding:.3g} (sd) per recovered value"
                 if rounding > 0 else ""))
    if ema is not None:
        fit_curves = [c.unsmooth_ema(ema) for c in fit_curves]
        predict_curves = [c.unsmooth_ema(ema) for c in predict_curves]
        print(f"the logged losses are read as an exponential moving average with decay {ema:g} per step and turned "
              f"back into the mean loss over each logging interval (the first row keeps its logged value)")
    if getattr(args, "store", None):
        from sde_scales.fitting.stores import curves_from_store, parse_where

        if args.where is None and not fit_curves:
            raise InvalidArgumentError("--store needs --where to select the runs to fit (e.g. --where param=mup)")
        if args.where is not None:
            fit_curves += curves_from_store(args.store, parse_where(args.where), metric=args.metric,
                                            per_seed=args.per_seed)
        if args.predict_where:
            predict_curves += curves_from_store(args.store, parse_where(args.predict_where), metric=args.metric,
                                                per_seed=args.per_seed)
    elif getattr(args, "where", None) or getattr(args, "predict_where", None):
        raise InvalidArgumentError("--where and --predict-where select runs of a --store; give --store PATH")
    if not fit_curves:
        raise InvalidArgumentError("nothing to fit: give --fit CSV (repeatable) or --store PATH --where ...")
    names = [c.name for c in fit_curves + predict_curves]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        where = [c.source for c in fit_curves + predict_curves if c.name == twice]
        same = len(set(where)) == 1
        raise InvalidArgumentError(
            f"two curves are named {twice!r} ({' and '.join(where[:2])}): the fit, the predictions and the JSON "
            f"name each curve after its file, so the names must differ; "
            + ("give the file once (as --fit or as --predict)" if same else
               "copy or link one of the files under another name"))
    every = getattr(args, "forecast_every", None)
    if every is not None and not getattr(args, "forecast", None):
        raise InvalidArgumentError(f"--forecast-every {every} sets the rows of --forecast schedules; give --forecast "
                                   f"NAME:SPEC, or leave it out")
    if getattr(args, "predictions", None) and not predict_curves and not getattr(args, "forecast", None):
        # it made an empty folder and wrote nothing
        raise InvalidArgumentError(f"--predictions {args.predictions} writes one CSV per predicted curve and per "
                                   f"forecast, and there is none; give --predict CSV or --forecast NAME:SPEC, or "
                                   f"leave --predictions out")
    fspecs = forecast_specs(getattr(args, "forecast", None) or [], names, every, cols)
    both = apply_schedules(fit_curves + predict_curves, getattr(args, "schedule", None) or [])
    fit_curves, predict_curves = both[:len(fit_curves)], both[len(fit_curves):]
    dropped = {}
    if getattr(args, "drop_spikes", False):
        for c in fit_curves + predict_curves:  # from the first row after an update: the initial loss is no spike
            rows = c.spike_rows(first_trained_step(c, args.skip_steps))
            if rows.size:
                dropped[c.name] = [int(v) for v in c.step[rows]]
                print(f"{c.name}: dropped {rows.size} spike row(s) (--drop-spikes), at step(s) "
                      + ", ".join(str(v) for v in dropped[c.name][:10]) + (" ..." if rows.size > 10 else ""))
        fit_curves = [c.without_spikes(first_trained_step(c, args.skip_steps)) for c in fit_curves]
        predict_curves = [c.without_spikes(first_trained_step(c, args.skip_steps)) for c in predict_curves]
    for c in fit_curves + predict_curves:  # before any fit: a diverged log is refused as it is in a fit
        diverged = c.divergence(first_trained_step(c, args.skip_steps))
        if diverged is not None:
            raise DataFileError(diverged)
    for c in fit_curves + predict_curves:  # the initial loss, said once here (each law's fit leaves it out)
        note = c.initial_loss_note(args.skip_steps)
        if note is not None:
            print(f"warning: {note}")
            read_notes.append(note)
    if args.smooth_steps is None:
        args.smooth_steps = default_smooth_steps(fit_curves + predict_curves)
        if args.smooth_steps < SMOOTH_STEPS:
            print(f"metrics against a {args.smooth_steps}-step moving average ({SMOOTH_FRACTION:.0%} of the shortest "
                  f"curve, at least three of its logging intervals; --smooth-steps to choose)")
    auto = None
    level = not getattr(args, "drops_only", False)
    offset = OFFSET_CHOICES[getattr(args, "offset", None) or "test"]
    workers, progress = getattr(args, "workers", 1), not getattr(args, "no_progress", True)
    if args.law == "auto":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AutoChoiceWarning)  # printed below and kept in the JSON
            auto = choose_law(fit_curves, skip_steps=args.skip_steps, smooth_steps=args.smooth_steps, level=level,
                              offset=offset, workers=workers, progress=progress, max_evaluations=max_evaluations)
        print(f"--law auto ({auto['method']}):")
        for r in auto["candidates"]:
            cv = "-" if r["cv_rmse"] is None else f"{r['cv_rmse']:.4f}"
            fe = "-" if r["cv_abs_final_err"] is None else f"{r['cv_abs_final_err']:.4f}"
            stuck = len(r["unconverged_folds"])
            print(f"  {r['law']:30s} held-out rmse {cv:>7s}  |final err| {fe:>7s}"
                  + ("   <- chosen" if r["law"] == auto["chosen"] else "")
                  + (f"   ({stuck} of {len(r['folds'])} fold fits not converged)" if stuck else ""))
        if auto["warning"]:
            print(f"warning: {auto['warning']}")
        if auto["convergence_warning"]:
            print(f"warning: {auto['convergence_warning']}")
        if auto["undecided"]:
            avg, auto["member_failures"] = fit_members(auto, fit_curves, skip_steps=args.skip_steps, level=level,
                                                       offset=offset,
                                                       workers=workers, progress=progress,
                                                       max_evaluations=max_evaluations)
            avg_doc, _, avg_extra = run_average(avg, fit_curves, predict_curves, skip_steps=args.skip_steps,
                                                smooth_steps=args.smooth_steps)
            print(f"the prediction is the average of {len(avg.labels)} laws, each fitted to all the fitted curves "
                  f"({', '.join(avg.labels)}), with their disagreement in its band")
        if auto["undecided"] and predict_curves:
            auto["undecided_predictions"] = undecided_predictions(avg.labels, [e["pred"] for e in avg_extra["members"]],
                                                                  predict_curves, auto["member_failures"])
            print(f"predicted final losses of the chosen law and the {len(auto['undecided'])} candidate(s) the data "
                  f"do not separate from it, each fitted to all the fitted curves:")
            for u in auto["undecided_predictions"]["curves"]:
                if u["spread"] is not None:
                    print(f"  {u['file'][:40]:40s} {u['range'][0]:.4f} to {u['range'][1]:.4f} (spread {u['spread']:.4f})")
            for lab, why in auto["undecided_predictions"]["failed"].items():
                print(f"  {lab}: its fit to all the fitted curves failed ({why}); left out of the range")
        print()
        laws = [] if auto["undecided"] else [chosen_law(auto, level, offset)]
    else:
        laws = [make_law(n, args.kernel, args.time, level, offset) for n in (LAW_CHOICES if args.compare else (args.law,))]
    docs, results = [], []

    def keep(key, res, doc: dict, extra: dict) -> None:
        """One law's (or the mean's) forecasts made, its document and result kept, its rows printed."""
        forecast_into(doc, extra, res, fspecs, every)
        docs.append(doc)
        results.append((key, res, extra))
        print(format_rows(doc))
        if extra["forecasts"]:
            print(format_forecasts(doc["law"], extra["forecasts"], extra["forecast_differences"]))
        print()

    if getattr(args, "average_time_scale", False):
        from sde_scales.fitting.time_scale_average import effective_number, time_scale_average

        with warnings.catch_warnings(record=True) as edge:  # a weight piled at the grid's edge: in the warnings
            warnings.simplefilter("always", IdentifiabilityWarning)
            tsa = time_scale_average(laws[0], fit_curves, skip_steps=args.skip_steps,
                                     max_evaluations=max_evaluations, workers=args.workers, progress=progress)
        doc, _, extra = run_average(tsa, fit_curves, predict_curves, skip_steps=args.skip_steps,
                                    smooth_steps=args.smooth_steps)
        n_eff = effective_number(tsa.weights)
        doc["time_scale_average"] = {"labels": list(tsa.labels), "weights": list(tsa.weights),
                                     "effective_number": n_eff}
        # each held fit's own notes are in its member document; the mixture's are those of the
        # fit of most weight (the others', e.g. a held delay below the log's resolution, are not fits)
        top = doc["members"][int(np.argmax(tsa.weights))]
        one_drop = one_drop_note(tsa.label, fit_curves, predict_curves, SECOND_DROP)  # the form is still one law's
        doc["warnings"] = sorted(set(top["warnings"]) | ({one_drop} if one_drop else set())
                                 | {str(w.message) for w in edge if issubclass(w.category, IdentifiabilityWarning)})
        # the mixture's band holds the time scale's uncertainty: it is not conditional on it
        doc["band"]["conditional_on"] = [c for c in doc["band"]["conditional_on"] if not c.startswith("log10_tau")]
        print(f"the prediction averages {laws[0].label} over {len(tsa.labels)} held time scales, weighted by their "
              f"likelihood on the fitted curves (effective number {n_eff:.1f}; 1: the "
              f"curves decide it):")
        for lab, w in zip(tsa.labels, tsa.weights):
            print(f"  {lab:40s} weight {w:.3f}")
        keep(tsa, tsa, doc, extra)
        laws = []
    if auto is not None and auto["undecided"]:
        doc, extra = avg_doc, avg_extra
        # what was asked of one law and is not done for a mean: said in the output and the JSON
        skipped = [(flag, why) for flag, why in (
            ("--shared-noise", "corrects one law's predictions with its own residuals"),
            ("--profile", "profiles one kernel law's time scale")) if getattr(args, flag[2:].replace("-", "_"), False)]
        doc["warnings"] = sorted(set(doc["warnings"]) | {
            f"{flag} {why}; it is not applied to the mean of {len(avg.labels)} laws that --law auto predicts with "
            f"(run the law of your choice with --law/--kernel/--time to have it)" for flag, why in skipped})
        keep(avg, avg, doc, extra)
    for law in laws:
        doc, res, extra = run_law(law, fit_curves, predict_curves, skip_steps=args.skip_steps,
                                  smooth_steps=args.smooth_steps, shared_noise=args.shared_noise,
                                  profile=args.profile, max_evaluations=max_evaluations,
                                  one_drop_hint=ONE_DROP_HINT if auto is None else AUTO_DROP_HINT)
        keep(law, res, doc, extra)
    if args.compare:
        print(f"{'law':30s} {'fit s':>6s} {'cool_rmse':>9s} {'|final|':>8s} {'pred_sd':>8s} {'in 95%':>6s}   "
              f"(with shared-noise correction)")
        for d in docs:
            s = d["summary"].get("predict", {})
            c = d["summary"].get("predict_shared_noise", {})
            f = lambda v, k=4: "-" if v is None else f"{v:.{k}f}"  # noqa: E731
            print(f"{d['law']:30s} {d['fit_seconds']:6.2f} {f(s.get('mean_cooldown_rmse')):>9s} "
                  f"{f(s.get('mean_abs_final_loss_err')):>8s} {f(s.get('mean_final_loss_pred_sd')):>8s} "
                  f"{f(s.get('within_95'), 2):>6s}   {f(c.get('mean_cooldown_rmse'))} {f(c.get('mean_abs_final_loss_err'))}")
    pairwise = []
    if args.compare and predict_curves:
        pairwise = paired_comparisons(results, predict_curves, skip_steps=args.skip_steps,
                                      smooth_steps=args.smooth_steps)
        print("\npaired differences over the predicted curves (a minus b; 95% intervals valid for any correlation "
              "between the curves' noises; sde_scales.fitting.compare):")
        for c in pairwise:
            for m, key, iv in (("rmse", "mean_rmse_diff", "rmse_interval"),
                               ("|final|", "mean_abs_final_err_diff", "final_interval")):
                ivs = "-" if c[iv] is None else f"[{c[iv][0]:+.3g}, {c[iv][1]:+.3g}]"
                verdict = c["rmse_verdict" if m == "rmse" else "final_verdict"]
                print(f"  {c['a']:>28s} - {c['b']:<28s} {m:8s} {c[key]:+10.3g} {ivs:>22s}  {verdict}")
    for d in docs:
        d["warnings"] = sorted(set(d["warnings"]) | set(read_notes))
    if args.json:
        out = docs[0] if len(docs) == 1 else {"compare": docs}
        if pairwise:
            out = dict(out, pairwise=pairwise)
        if auto is not None:
            out = dict(out, auto=auto)
        if renamed:
            out = dict(out, columns=renamed)
        if ema is not None:
            out = dict(out, log_ema=ema)
        if getattr(args, "drop_spikes", False):
            out = dict(out, dropped_spikes=dropped)  # steps of the rows left out, by curve
        if running is not None:
            out = dict(out, log_running_mean={"period": running, "rounding_sd": rounding})
        write_json_atomic(Path(args.json), out)  # strict JSON: null for a missing or non-finite value
        print(f"JSON: {args.json}")
    if args.predictions:
        import pandas as pd

        law, res, extra = results[0]
        d = Path(args.predictions)
        d.mkdir(parents=True, exist_ok=True)
        for c in predict_curves:
            df = pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss, "predicted": extra["pred"][c.name],
                               "predicted_sd": extra["sd"][c.name]})  # empty where undetermined
            if c.name in extra["offset"]:
                df["predicted_shared_noise"] = extra["pred"][c.name] + extra["offset"][c.name]
            write_text_atomic(d / f"{c.name}.csv", df.to_csv(index=False))
        for f in extra["forecasts"]:
            write_text_atomic(d / f"{f.name}.csv", f.to_frame().to_csv(index=False))
        print(f"predictions: {len(predict_curves) + len(extra['forecasts'])} files in {d}")
    if args.plot:
        law, res, extra = results[0]
        if isinstance(law, AveragedFit) and law.weights is not None:  # --average-time-scale: its label says so
            what, band = (law.label, "95% band of the mixture: the fits' own bands and their spread between time scales")
        elif isinstance(law, AveragedFit):  # the laws' names are in the JSON and the printout; the title counts them
            what, band = (f"--law auto: the mean of {len(law.labels)} laws the folds do not separate",
                          "95% band of the mean: the laws' own bands and their disagreement")
        else:
            what, band = law.label, "95% band of the prediction from the fit's parameters"
        p = plot_fit(Path(args.plot), fit_curves, predict_curves, extra["pred"], args.smooth_steps,
                     f"{what}: fitted on {', '.join(c.name for c in fit_curves)}", sds=extra["sd"], band=band,
                     forecasts=extra["forecasts"])
        print(f"plot: {p}")
        if isinstance(law, KernelLaw):
            kp = Path(args.plot)
            drawn = plot_kernel(kp.with_name(kp.stem + '_kernel' + kp.suffix), res.law, res.theta)
            print(f"kernel plot: {drawn or 'none (an instantaneous response has no memory kernel to draw)'}")
    if getattr(args, "strict", False):
        failures = strict_failures(docs[0])
        for f in failures:
            print(f"strict: {docs[0]['law']}: {f}")
        if failures:
            return 1
    return 0
