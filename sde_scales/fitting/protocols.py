"""Held-out protocols: fit a law on some curves, predict others, score every prediction.

A protocol is a list of splits ``(fitted curves, held-out curve)``: leave one schedule out, fit one
cosine run and predict each WSD run, and so on. The experiment scripts that measure the laws on a
family of curves (``experiments/fit_*.py``) run every law through :func:`run_protocol` and
summarise it with :func:`protocol_row`, so that the shared curves, the trained family and the
model family are scored the same way.
"""

from __future__ import annotations

import warnings

import numpy as np

from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting.average import AveragedFit, predict_any, predict_sd_any
from sde_scales.fitting.curves import LossCurve
from sde_scales.fitting.fit import extrapolations, final_rows, fit, fit_warnings, score
from sde_scales.fitting.laws import KernelLaw, Law, MomentumLaw, MultiPowerLaw

__all__ = ["PROTOCOL_LAWS", "baseline_labels", "comparison_line", "protocol_laws", "protocol_row", "run_auto_protocol",
           "run_protocol"]

#: The laws the held-out experiments measure, by short name (their ``--laws``): the kernel law with
#: each kernel in steps and in learning-rate area, the non-parametric one also without its level
#: term (an ablation); with the progress term's area offset tested (``offset="test"``: ``np-steps-test`` is
#: ``fit-delay``'s default kernel law) in steps and in area, and always fitted (``np-steps-offset``); and the baselines the kernel law is judged against: the momentum law at
#: lambda 0.99, 0.999 and fitted, and the multi-power law.
PROTOCOL_LAWS = {
    "np-steps": KernelLaw(kernel="nonparametric", time="steps"),
    "np-steps-drops": KernelLaw(kernel="nonparametric", time="steps", level=False),
    "exp-steps": KernelLaw(kernel="exp", time="steps"),
    "power-steps": KernelLaw(kernel="power", time="steps"),
    "np-area": KernelLaw(kernel="nonparametric", time="area"),
    "exp-area": KernelLaw(kernel="exp", time="area"),
    "np-steps-test": KernelLaw(kernel="nonparametric", time="steps", offset="test"),
    "np-steps-offset": KernelLaw(kernel="nonparametric", time="steps", offset=True),
    "np-area-test": KernelLaw(kernel="nonparametric", time="area", offset="test"),
    "momentum0.99": MomentumLaw(lam=0.99),
    "momentum0.999": MomentumLaw(lam=0.999),
    "momentum": MomentumLaw(),
    "mpl": MultiPowerLaw(),
}


def protocol_laws(names) -> list[Law]:
    """The laws of :data:`PROTOCOL_LAWS` called ``names`` (a comma-separated string or a list), in
    that table's order; an unknown or empty selection is refused with the choices."""
    names = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = [n for n in names if n not in PROTOCOL_LAWS]
    if unknown or not names:
        raise InvalidArgumentError(f"--laws {','.join(names)!r}: unknown {unknown}; choose from "
                                   f"{', '.join(PROTOCOL_LAWS)}")
    return [law for n, law in PROTOCOL_LAWS.items() if n in names]


def baseline_labels(laws: list[Law]) -> set[str]:
    """Labels of the baselines among ``laws`` (the momentum and multi-power laws): what
    :func:`~sde_scales.fitting.compare.compare_with_best` judges the others against."""
    return {law.label for law in laws if isinstance(law, (MomentumLaw, MultiPowerLaw))}


def comparison_line(e: dict, truth: dict | None = None) -> str:
    """One printed line of a law against the best baselines (an entry of
    :func:`~sde_scales.fitting.compare.compare_with_best`), with the noise-free verdicts beside it
    where the family's truth is known."""
    from sde_scales.fitting.compare import format_difference

    t_rmse = f" (truth: {truth['rmse']})" if truth else ""
    t_final = f" (truth: {truth['final']})" if truth else ""
    return (f"{'':14s}   {e['law']}: RMSE {format_difference(e['rmse'])}{t_rmse};  "
            f"|final| {format_difference(e['final'])}{t_final}")


def run_protocol(law: Law, splits: list[tuple[list[LossCurve], LossCurve]], *, skip_steps: int,
                 smooth_steps: int = 1000, truth: dict | None = None) -> tuple[list[dict], list[np.ndarray]]:
    """Fit ``law`` to each split's fitted curves (once per distinct set of them), predict the
    held-out curve and score it (:func:`~sde_scales.fitting.fit.score` with the band).

    Parameters
    ----------
    law : Law
    splits : list of (list of LossCurve, LossCurve)
    skip_steps, smooth_steps : int
        As in :func:`~sde_scales.fitting.fit.score`.
    truth : dict, optional
        Held-out curve name -> its noise-free loss at every row, where known (a model family): adds
        ``rmse_truth`` (over the scored rows), ``stable_rmse_truth`` and ``cooldown_rmse_truth``
        (before and in the cooldown) and ``final_err_truth`` (against the mean of the noise-free
        loss over the last 5% of rows).

    Returns
    -------
    (list of dict, list of ndarray)
        Per split: ``held_out``, ``rmse``, ``final_loss_err``, ``cooldown_rmse``, ``stable_rmse``,
        ``final_loss_noise``, ``final_loss_pred_sd``, ``final_err_z``, ``warnings`` (the fit's),
        ``extrapolations`` (how the prediction goes beyond the fitted curves,
        :func:`~sde_scales.fitting.fit.extrapolations`: what ``predict`` warns); and the predictions
        of the held-out curves, in split order. The fits' and the predictions' warnings are kept,
        not raised.
    """
    fits = {}

    def fitted_law(fitted):
        key = tuple(c.name for c in fitted)
        if key not in fits:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # kept in each row's "warnings"; a table is the point here
                fits[key] = fit(law, fitted, skip_steps=skip_steps)
        return fits[key]

    return _score_splits(splits, fitted_law, skip_steps, smooth_steps, truth)


def run_auto_protocol(splits: list[tuple[list[LossCurve], LossCurve]], *, skip_steps: int, smooth_steps: int = 1000,
                      workers: int = 1, truth: dict | None = None, candidates=None,
                      average: bool = True, choices: dict | None = None) -> tuple[list[dict], list[np.ndarray], dict]:
    """:func:`run_protocol` for ``--law auto``: in each split the law is chosen on the fitted curves
    alone (:func:`~sde_scales.fitting.report.fit_auto`, once per distinct set of them; the held-out
    curve takes no part in the choice), fitted, and the held-out curve scored: with the chosen law
    where the folds decide, with the average of the laws they do not separate where they do not
    (``average=False``: the chosen law in either case). The rows add ``chosen``, ``decided``,
    ``undecided``, ``members`` (the laws predicted with) and ``unconverged`` (each candidate whose fit
    stopped at the optimiser's evaluation limit in some fold of the choice: the folds); the third value maps each fitted set
    (a tuple of curve names) to its (choice, fit). ``candidates``: as in
    :func:`~sde_scales.fitting.report.choose_law` (None: all of them). ``choices``: the choices of an
    earlier call with the same splits and settings (its third value's first items, by fitted set),
    reused instead of cross-validating again: the pick and the mean of one choice cost one
    cross-validation."""
    from sde_scales.fitting.report import AUTO_CANDIDATES, fit_auto

    choices_given, choices = choices, {}

    def fitted_law(fitted):
        key = tuple(c.name for c in fitted)
        if key not in choices:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the choice's own warning is in its "undecided"
                choices[key] = fit_auto(fitted, skip_steps=skip_steps, smooth_steps=smooth_steps, workers=workers,
                                        candidates=AUTO_CANDIDATES if candidates is None else candidates,
                                        average=average, choice=(choices_given or {}).get(key))
        return choices[key][1]

    per, preds = _score_splits(splits, fitted_law, skip_steps, smooth_steps, truth)
    for row, (fitted, _) in zip(per, splits):
        a = choices[tuple(c.name for c in fitted)][0]
        fitted_with = choices[tuple(c.name for c in fitted)][1]
        row.update(chosen=a["chosen"], decided=a["decided"], undecided=a["undecided"],
                   members=list(fitted_with.labels) if isinstance(fitted_with, AveragedFit) else [a["chosen"]],
                   unconverged={r["law"]: r["unconverged_folds"] for r in a["candidates"] if r["unconverged_folds"]})
    return per, preds, choices


def _check_held_out(splits) -> None:
    """Refuse a split whose held-out curve is among its fitted curves (the same object, the same
    name, or the same steps and losses under another name): its score would be an in-sample fit
    reported as a held-out prediction."""
    for k, (fitted, held) in enumerate(splits):
        for c in fitted:
            # np.array_equal is False for arrays of other shapes; the same object has the same name
            if c.name == held.name or (np.array_equal(c.step, held.step) and np.array_equal(c.loss, held.loss)):
                raise InvalidArgumentError(
                    f"split {k}: the held-out curve {held.name} is also fitted (as {c.name}): its score would be "
                    f"an in-sample fit, not a prediction; leave it out of the split's fitted curves")


def _score_splits(splits, fitted_law, skip_steps, smooth_steps, truth) -> tuple[list[dict], list[np.ndarray]]:
    """Predict and score each split's held-out curve from ``fitted_law(fitted curves)``, a
    :class:`~sde_scales.fitting.fit.FitResult` or an :class:`~sde_scales.fitting.average.AveragedFit`;
    see :func:`run_protocol`."""
    _check_held_out(splits)
    per, preds = [], []
    for fitted, held in splits:
        r = fitted_law(fitted)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a prediction's warnings are the fit's, kept in the row
            p = predict_any(r, held)
            sc = score(held, p, skip_steps=skip_steps, smooth_steps=smooth_steps,
                       final_pred_sd=predict_sd_any(r, held)[1])
        row = {"held_out": held.name, "rmse": sc["rmse"], "final_loss_err": sc["final_loss_err"],
               "cooldown_rmse": sc["cooldown_rmse"], "stable_rmse": sc["stable_rmse"],
               "final_loss_noise": sc["final_loss_noise"],
               "final_loss_pred_sd": sc["final_loss_pred_sd"], "final_err_z": sc["final_err_z"],
               "warnings": (sorted({w for m in r.results for w in fit_warnings(m)})
                            if isinstance(r, AveragedFit) else fit_warnings(r)),
               # how the prediction goes beyond the fitted curves (what predict warns; an average's: its laws')
               "extrapolations": sorted({m for res in (r.results if isinstance(r, AveragedFit) else [r])
                                         for m in extrapolations(res, held)})}
        if truth is not None and held.name in truth:
            t = np.asarray(truth[held.name], dtype=float)
            keep = held.step >= skip_steps
            n_last = final_rows(held.step.size)
            row["rmse_truth"] = float(np.sqrt(np.mean((p - t)[keep] ** 2)))
            cool = held.cooldown_mask() & keep
            for part, rows in (("cooldown", cool), ("stable", keep & ~cool)):
                row[f"{part}_rmse_truth"] = float(np.sqrt(np.mean((p - t)[rows] ** 2))) if rows.any() else None
            row["final_err_truth"] = float(np.mean(p[-n_last:]) - np.mean(t[-n_last:]))
        per.append(row)
        preds.append(p)
    return per, preds


def protocol_row(protocol: str, label: str, per: list[dict], seconds: float) -> dict:
    """The table row of one law on one protocol: means over the held-out curves of the RMSE (also
    before and in the cooldown) and |final-loss error| (and of their noise-free versions where
    known), the mean band and the share within it (:func:`~sde_scales.fitting.report.band_summary`),
    and ``extrapolated``, the number of held-out curves whose prediction goes beyond the fitted ones."""
    from sde_scales.fitting.report import band_summary

    sd, cover = band_summary(per)
    row = {"protocol": protocol, "law": label, "splits": per, "mean_rmse": float(np.mean([p["rmse"] for p in per])),
           "mean_abs_final_err": float(np.mean([abs(p["final_loss_err"]) for p in per])),
           "mean_final_pred_sd": sd, "within_95": cover, "seconds": seconds,
           "extrapolated": sum(bool(p.get("extrapolations")) for p in per)}
    for part in ("stable", "cooldown"):  # where the misses are: the power term's extrapolation, or the drops
        row[f"mean_{part}_rmse"] = _mean_or_none([p[f"{part}_rmse"] for p in per])
    if per and all("rmse_truth" in p for p in per):
        row["mean_rmse_truth"] = float(np.mean([p["rmse_truth"] for p in per]))
        row["mean_abs_final_err_truth"] = float(np.mean([abs(p["final_err_truth"]) for p in per]))
        for part in ("stable", "cooldown"):
            row[f"mean_{part}_rmse_truth"] = _mean_or_none([p[f"{part}_rmse_truth"] for p in per])
    return row


def _mean_or_none(values: list) -> float | None:
    """Mean of the values that are not None (a constant run has no cooldown); None if none are."""
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None
