r"""The equal-weight average of laws that the held-out errors do not separate.

``--law auto`` scores every candidate law by cross-validation on the fitted curves
(:func:`~sde_scales.fitting.report.choose_law`). Where the folds separate the least-error candidate
from every other, it is the prediction. Where they do not, picking the least mean error is a coin
toss among the candidates it is not separated from. Where one fitted curve left the choice open,
the pick predicted worse than their average on two of three families measured, and within the
noise on the third; where several fitted curves narrowed it, the two were within the noise of each
other (``benchmarks/RESULTS.md``, "``--law
auto`` when the folds do not decide"). So the prediction is then the average of those :math:`K`
laws, each fitted to all the curves:

.. math:: \bar y(t) = \frac1K \sum_{k=1}^K \hat y_k(t).

Band
    The laws are treated as :math:`K` equally likely models of the curve (a mixture). By the law of
    total variance its standard deviation at a row is

    .. math:: \sigma(t)^2 = \frac1K \sum_k \sigma_k(t)^2
              + \frac1K \sum_k \bigl(\hat y_k(t) - \bar y(t)\bigr)^2,

    the laws' own bands (:func:`~sde_scales.fitting.fit.predict_sd`, parameter uncertainty given
    each law, and each law's miss of its fitted curves where it fails the lack-of-fit test) plus
    their disagreement, which is the part of the model error the data left open.
    The first term is an upper bound of the variance of :math:`\bar y` from the parameters (equal
    to it when the laws' errors move together, as fits to the same noise tend to), so the band is
    on the wide side. NaN (``null`` in JSON) where any law's band is undetermined. The predicted
    final loss (the mean over the last 5% of rows) takes the same form with each law's final value
    and band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting.curves import LossCurve
from sde_scales.fitting.fit import FitResult, final_rows, predict, predict_sd

__all__ = ["AveragedFit", "mixture_band", "mixture_sd", "normalised_weights", "predict_any", "predict_sd_any",
           "weighted_mean"]


def normalised_weights(weights, n: int | None = None) -> np.ndarray:
    """``weights`` over their sum: finite, non-negative, not all 0, and ``n`` of them where ``n`` is
    given (one per averaged law); refused otherwise, naming the weights."""
    w = np.asarray(weights, dtype=float)
    if (w.ndim != 1 or (n is not None and w.size != n) or not np.all(np.isfinite(w)) or np.any(w < 0)
            or not w.sum() > 0):
        per = "" if n is None else f" for {n} fitted laws"
        raise InvalidArgumentError(f"weights {np.ravel(w).tolist()}{per}; give finite weights >= 0"
                                   f"{'' if n is None else ', one per law'}, not all 0")
    return w / w.sum()


@dataclass(frozen=True)
class AveragedFit:
    r"""Laws fitted to the same curves whose predictions are averaged.

    ``labels`` name the laws (as in ``--law auto``'s table), ``results`` are their fits, in the same
    order. ``weights``: the mixture's weights :math:`w_k` (non-negative, normalised to sum to 1);
    None: equal weights, ``--law auto``'s mean. With weights every formula of the module reads
    :math:`\sum_k w_k` for :math:`\frac1K \sum_k` (the profile average over time scales,
    :func:`~sde_scales.fitting.time_scale_average.time_scale_average`).
    """

    labels: tuple[str, ...]
    results: tuple[FitResult, ...]
    weights: tuple[float, ...] | None = None
    name: str | None = None  # the label, where the labels' list would be long (a time-scale average)

    def __post_init__(self):
        if not self.results:
            raise InvalidArgumentError("an average of laws needs at least one fitted law")
        if len(self.labels) != len(self.results):
            raise InvalidArgumentError(f"{len(self.labels)} labels for {len(self.results)} fitted laws; give one each")
        if self.weights is not None:
            w = normalised_weights(self.weights, len(self.results))
            object.__setattr__(self, "weights", tuple(float(x) for x in w))
        if len(set(self.labels)) != len(self.labels):  # each law's results are reported by its label
            twice = sorted({lab for lab in self.labels if list(self.labels).count(lab) > 1})
            raise InvalidArgumentError(f"labels {twice} name two averaged laws; give each law a label of its own")
        curves = {r.curves for r in self.results}
        if len(curves) != 1:
            raise InvalidArgumentError(f"the averaged laws were fitted to different curves ({sorted(curves)}); fit "
                                       f"every law to the same curves")

    @property
    def label(self) -> str:
        if self.name is not None:
            return self.name
        if self.weights is None:
            return f"mean of {len(self.results)} laws ({', '.join(self.labels)})"
        return f"weighted mean of {len(self.results)} fits ({', '.join(self.labels)})"

    def predictions(self, curve: LossCurve) -> np.ndarray:
        """Every law's prediction of ``curve``, one row per law."""
        return np.array([predict(r, curve) for r in self.results])

    def predict(self, curve: LossCurve) -> np.ndarray:
        """The average prediction :math:`\\bar y` at every row of ``curve``."""
        return weighted_mean(self.predictions(curve), self.weights)

    def predict_sd(self, curve: LossCurve) -> tuple[np.ndarray, float]:
        """The mixture's standard deviation at every row of ``curve`` and of its predicted final
        loss (the module's formula)."""
        return mixture_band(self.predictions(curve), [predict_sd(r, curve) for r in self.results], self.weights)


def weighted_mean(values: np.ndarray, w=None) -> np.ndarray:
    r""":math:`\sum_k w_k v_k` over the first axis, the weights ``w`` summing to 1 (an
    :class:`AveragedFit`'s ``weights``); the plain mean where ``w`` is None. A law of weight 0
    counts for nothing, even where its value is NaN."""
    values = np.asarray(values, dtype=float)
    if w is None:
        return values.mean(axis=0)
    w = np.asarray(w, dtype=float).reshape((-1,) + (1,) * (values.ndim - 1))
    return np.sum(np.where(w > 0, w * values, 0.0), axis=0)


def mixture_band(preds: np.ndarray, sds: list[tuple[np.ndarray, float]], w=None) -> tuple[np.ndarray, float]:
    """The band of the (weighted) mean of the laws' predictions ``preds`` (one row per law) from
    their own bands ``sds`` (per law, as :func:`~sde_scales.fitting.fit.predict_sd` returns them:
    the standard deviation at every row and of the predicted final loss, the mean over the last 5%
    of rows), with weights ``w`` (None: equal): :func:`mixture_sd` at every row and of the final
    loss."""
    preds = np.asarray(preds, dtype=float)
    n_last = final_rows(preds.shape[1])
    rows = mixture_sd(preds, np.array([s[0] for s in sds]), w)
    return rows, float(mixture_sd(preds[:, -n_last:].mean(axis=1), np.array([s[1] for s in sds]), w))


def mixture_sd(means: np.ndarray, sds: np.ndarray, w=None) -> np.ndarray:
    r"""Standard deviation of a mixture of :math:`K` distributions with these ``means`` and
    standard deviations ``sds`` (arrays of the same shape, the laws along the first axis) and
    weights :math:`w_k` (None: equal, :math:`1/K`):
    :math:`\bigl(\sum_k w_k \sigma_k^2 + \sum_k w_k (\mu_k - \bar\mu)^2\bigr)^{1/2}` with
    :math:`\bar\mu = \sum_k w_k \mu_k`. NaN where a law of positive weight has a NaN standard
    deviation."""
    means, sds = np.asarray(means, dtype=float), np.asarray(sds, dtype=float)
    if means.shape != sds.shape or means.ndim < 1 or means.shape[0] == 0:
        raise InvalidArgumentError(f"means of shape {means.shape} and standard deviations of shape {sds.shape}; give "
                                   f"arrays of the same shape with the laws along the first axis")
    if w is not None and np.asarray(w).shape != (means.shape[0],):
        raise InvalidArgumentError(f"{np.asarray(w).size} weights for {means.shape[0]} laws; give one each")
    mu = weighted_mean(means, w)
    return np.sqrt(weighted_mean(sds ** 2, w) + weighted_mean((means - mu) ** 2, w))


def predict_any(result, curve: LossCurve) -> np.ndarray:
    """:func:`~sde_scales.fitting.fit.predict` of a fitted law, or the average of an
    :class:`AveragedFit`."""
    return result.predict(curve) if isinstance(result, AveragedFit) else predict(result, curve)


def predict_sd_any(result, curve: LossCurve) -> tuple[np.ndarray, float]:
    """:func:`~sde_scales.fitting.fit.predict_sd` of a fitted law, or the mixture band of an
    :class:`AveragedFit`."""
    return result.predict_sd(curve) if isinstance(result, AveragedFit) else predict_sd(result, curve)
