r"""Exponents of a quantity against width, with confidence intervals, and verdicts.

Given a quantity measured over ``R_k`` independent replicas at widths :math:`n_k` (a geometric
grid), fit :math:`q(n) \approx C n^{p}` by least squares of :math:`\log q` on :math:`\log n`:

fluctuation reading
    :math:`q(n_k)` = standard deviation over the replicas at :math:`n_k`;
bias reading
    :math:`q(n_k) = |\bar X_{n_k} - \mathrm{ref}_k|`, the distance of the replica mean from a
    reference (a closed form, a larger width, or the mean-field limit).

The confidence interval is a percentile bootstrap (``scipy.stats.bootstrap``) that resamples the
replicas of every width independently, so it carries the Monte-Carlo error of every point into
the slope. For values without replicas (exact computations), :func:`exponent_from_values` uses
the least-squares standard error of the slope with a Student-t interval, which then measures
how far the points are from a power law.

Verdicts (:func:`verdict`) never force an answer; every rule and threshold is returned with the
verdict so the reader can check it:

``Theta(n^p)``
    FAIL if :math:`p \notin [lo - \delta, hi + \delta]`; PASS if it is inside and the interval is
    narrower than ``max_width``; otherwise INCONCLUSIVE (interval too wide: more replicas).
``O(n^p)``
    PASS if :math:`hi \le p + \delta`; FAIL if :math:`lo > p + \delta`; otherwise INCONCLUSIVE.
``separation`` (:math:`p_{macro} - p_{micro} < 0`)
    PASS if the interval of the difference lies below 0; FAIL if it lies above 0, or contains
    0 while narrower than ``max_width`` (no separation is resolved where one could be);
    otherwise INCONCLUSIVE.

:math:`\delta` (``resolution``) is the model part of the error: a rate measured over a finite
range of widths carries next-order terms, :math:`C n^p (1 + D n^{-1/2} + \dots)`, that tilt the
fitted slope by about :math:`D n_{min}^{-1/2}/2`; for :math:`n_{min} \ge 64` and :math:`|D| \le 1`
that is at most 0.06, so the default is 0.1.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from sde_scales.errors import InvalidArgumentError

__all__ = [
    "ExponentEstimate",
    "RateKind",
    "Verdict",
    "VerdictResult",
    "bias_exponent",
    "exponent_difference",
    "exponent_from_values",
    "fluctuation_exponent",
    "verdict",
]


class RateKind(enum.Enum):
    THETA = "Theta"
    BIG_O = "O"
    SEPARATION = "separation"


class Verdict(enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclass(frozen=True)
class ExponentEstimate:
    """A fitted exponent with its interval and the points behind it.

    Attributes
    ----------
    exponent : float
    ci : tuple of float
        Confidence interval (``confidence`` level).
    x : ndarray
        The widths (or other variable).
    values, errors : ndarray
        The quantity at each x and its standard error (for error bars).
    intercept : float
        :math:`\\log C` of the fit, for drawing the fitted line.
    reading : str
        ``"fluctuation"``, ``"bias"``, ``"values"`` or ``"difference"``.
    """

    exponent: float
    ci: tuple[float, float]
    x: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    intercept: float
    reading: str
    confidence: float = 0.95
    n_replicas: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def ci_width(self) -> float:
        return float(self.ci[1] - self.ci[0])

    def to_dict(self) -> dict:
        return {
            "exponent": self.exponent, "ci": list(self.ci), "reading": self.reading,
            "x": self.x.tolist(), "values": self.values.tolist(), "errors": self.errors.tolist(),
            "intercept": self.intercept, "confidence": self.confidence, "n_replicas": self.n_replicas,
        }


def _check_grid(x, samples) -> tuple[np.ndarray, list[np.ndarray]]:
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 3:
        raise InvalidArgumentError(f"need at least 3 widths for an exponent and its interval; got {x.tolist()}")
    if np.any(x <= 0) or not np.all(np.isfinite(x)) or np.any(np.diff(x) <= 0):
        raise InvalidArgumentError(f"widths {x.tolist()} must be positive, finite and increasing")
    if len(samples) != x.size:
        raise InvalidArgumentError(f"{len(samples)} samples for {x.size} widths; give one array of replicas per width")
    out = []
    for n, s in zip(x, samples):
        s = np.asarray(s, dtype=float)
        if s.shape[-1] < 3:
            raise InvalidArgumentError(f"width {n:g} has {s.shape[-1]} replicas; need at least 3")
        if not np.all(np.isfinite(s)):
            raise InvalidArgumentError(f"width {n:g} has non-finite replicas; drop diverged runs first")
        out.append(s)
    return x, out


def _slope_intercept(logx: np.ndarray, logy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xm = logx - logx.mean()
    ym = logy - logy.mean(axis=-1, keepdims=True)
    slope = (ym * xm).sum(axis=-1) / (xm**2).sum()
    return slope, logy.mean(axis=-1) - slope * logx.mean()


def _bootstrap_ci(samples, statistic, confidence, n_resamples, seed):
    res = stats.bootstrap(tuple(samples), statistic, vectorized=True, paired=False,
                          n_resamples=n_resamples, confidence_level=confidence, method="percentile",
                          random_state=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return (lo, hi)


def fluctuation_exponent(widths, samples, *, confidence: float = 0.95, n_resamples: int = 2000,
                         seed: int = 0) -> ExponentEstimate:
    """Exponent of the standard deviation over replicas against width."""
    x, samples = _check_grid(widths, samples)
    logx = np.log(x)
    sd = np.array([s.std(ddof=1) for s in samples])
    if np.any(sd <= 0):
        raise InvalidArgumentError("a width has zero spread over its replicas; the fluctuation exponent is undefined")
    slope, icpt = _slope_intercept(logx, np.log(sd))

    def stat(*ss, axis=-1):
        # a resample of few replicas can repeat one value (std 0): floor the log so the slope is
        # extreme (and the interval wide) instead of NaN
        logsd = np.stack([np.log(np.maximum(np.std(s, axis=axis, ddof=1), 1e-300)) for s in ss], axis=-1)
        return _slope_intercept(logx, logsd)[0]

    ci = _bootstrap_ci(samples, stat, confidence, n_resamples, seed)
    # standard error of a standard deviation, for error bars: sd / sqrt(2 (R - 1))
    err = np.array([v / np.sqrt(2 * (s.shape[-1] - 1)) for v, s in zip(sd, samples)])
    return ExponentEstimate(float(slope), ci, x, sd, err, float(icpt), "fluctuation", confidence,
                            int(min(s.shape[-1] for s in samples)))


def bias_exponent(widths, samples, reference, *, confidence: float = 0.95, n_resamples: int = 2000,
                  seed: int = 0) -> ExponentEstimate:
    """Exponent of ``|mean over replicas - reference|`` against width.

    ``reference`` is a number or one number per width. When a bias is not resolved (its standard
    error is comparable to it) the interval comes out wide, and the verdict says so.
    """
    x, samples = _check_grid(widths, samples)
    ref = np.broadcast_to(np.asarray(reference, dtype=float), x.shape).copy()
    if not np.all(np.isfinite(ref)):
        raise InvalidArgumentError(f"reference {ref.tolist()} is not finite")
    logx = np.log(x)
    bias = np.array([abs(s.mean() - r) for s, r in zip(samples, ref)])
    err = np.array([s.std(ddof=1) / np.sqrt(s.shape[-1]) for s in samples])
    tiny = 1e-300
    slope, icpt = _slope_intercept(logx, np.log(np.maximum(bias, tiny)))

    def stat(*ss, axis=-1):
        logb = np.stack([np.log(np.maximum(np.abs(np.mean(s, axis=axis) - r), tiny)) for s, r in zip(ss, ref)], axis=-1)
        return _slope_intercept(logx, logb)[0]

    ci = _bootstrap_ci(samples, stat, confidence, n_resamples, seed)
    notes = []
    unresolved = bias < 2 * err
    if unresolved.any():
        notes.append("bias within 2 standard errors of zero at n = "
                     + ", ".join(f"{n:g}" for n in x[unresolved]))
    return ExponentEstimate(float(slope), ci, x, bias, err, float(icpt), "bias", confidence,
                            int(min(s.shape[-1] for s in samples)), tuple(notes))


def exponent_difference(widths, samples_a, samples_b, *, confidence: float = 0.95, n_resamples: int = 2000,
                        seed: int = 0) -> ExponentEstimate:
    """Difference of fluctuation exponents ``p_a - p_b`` of two quantities measured on the same
    replicas (paired: a replica is resampled with both of its values)."""
    x, sa = _check_grid(widths, samples_a)
    _, sb = _check_grid(widths, samples_b)
    for n, a, b in zip(x, sa, sb):
        if a.shape != b.shape:
            raise InvalidArgumentError(f"width {n:g}: {a.shape} and {b.shape} replicas; pair them one to one")
    logx = np.log(x)

    def stat(*idx, axis=-1):
        # bootstrap over replica indices (1-d samples), so a replica keeps both of its values
        la = np.stack([np.log(np.maximum(np.std(a[ix], axis=-1, ddof=1), 1e-300)) for a, ix in zip(sa, idx)], axis=-1)
        lb = np.stack([np.log(np.maximum(np.std(b[ix], axis=-1, ddof=1), 1e-300)) for b, ix in zip(sb, idx)], axis=-1)
        return _slope_intercept(logx, la)[0] - _slope_intercept(logx, lb)[0]

    index_samples = [np.arange(a.shape[-1]) for a in sa]
    point = float(stat(*index_samples))
    ci = _bootstrap_ci(index_samples, stat, confidence, n_resamples, seed)
    ratio = np.array([a.std(ddof=1) / b.std(ddof=1) for a, b in zip(sa, sb)])
    _, icpt = _slope_intercept(logx, np.log(ratio))
    return ExponentEstimate(point, ci, x, ratio, np.full_like(ratio, np.nan), float(icpt), "difference",
                            confidence, int(min(a.shape[-1] for a in sa)))


def exponent_from_values(x, values, *, confidence: float = 0.95, reading: str = "values") -> ExponentEstimate:
    """Exponent of exact (noise-free) values: least squares on logs, Student-t interval from the
    residuals, which then measures the departure from a pure power law."""
    x = np.asarray(x, dtype=float)
    v = np.asarray(values, dtype=float)
    if x.shape != v.shape or x.size < 3:
        raise InvalidArgumentError(f"x {x.shape} and values {v.shape} must match with at least 3 points")
    if np.any(v <= 0) or not np.all(np.isfinite(v)) or np.any(x <= 0):
        raise InvalidArgumentError(f"values {v.tolist()} must be positive and finite for a log-log fit")
    res = stats.linregress(np.log(x), np.log(v))
    t = stats.t.ppf(0.5 + confidence / 2, x.size - 2)
    half = t * res.stderr
    return ExponentEstimate(float(res.slope), (float(res.slope - half), float(res.slope + half)), x, v,
                            np.zeros_like(v), float(res.intercept), reading, confidence, None)


@dataclass(frozen=True)
class VerdictResult:
    verdict: Verdict
    reason: str
    rule: str = ""
    thresholds: dict = field(default_factory=dict)


def verdict(kind: RateKind, predicted: float, est: ExponentEstimate, *, resolution: float = 0.1,
            max_width: float = 0.3) -> VerdictResult:
    """PASS, FAIL or INCONCLUSIVE for a claimed rate; see the module docstring for the rules."""
    lo, hi = est.ci
    w = hi - lo
    th = {"resolution": resolution, "max_ci_width": max_width}
    ci_s = f"[{lo:.3f}, {hi:.3f}]"
    if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(est.exponent)):
        # NaN compares False everywhere: without this guard it would slip through to PASS
        return VerdictResult(Verdict.INCONCLUSIVE, f"interval {ci_s} is not finite: the experiment is too small "
                             f"or degenerate (more replicas needed)", "non-finite interval", th)
    if kind is RateKind.THETA:
        rule = f"Theta: PASS iff {predicted:g} in [lo - {resolution}, hi + {resolution}] and width <= {max_width}"
        if predicted < lo - resolution or predicted > hi + resolution:
            return VerdictResult(Verdict.FAIL, f"interval {ci_s} excludes {predicted:g} (resolution {resolution})", rule, th)
        if w > max_width:
            return VerdictResult(Verdict.INCONCLUSIVE, f"interval {ci_s} is {w:.3f} wide (> {max_width}): more replicas or widths needed", rule, th)
        return VerdictResult(Verdict.PASS, f"{predicted:g} within {ci_s} (+- {resolution})", rule, th)
    if kind is RateKind.BIG_O:
        rule = f"O: PASS iff hi <= {predicted:g} + {resolution}; FAIL iff lo > {predicted:g} + {resolution}"
        if hi <= predicted + resolution:
            return VerdictResult(Verdict.PASS, f"upper end {hi:.3f} <= {predicted:g} + {resolution}", rule, th)
        if lo > predicted + resolution:
            return VerdictResult(Verdict.FAIL, f"lower end {lo:.3f} > {predicted:g} + {resolution}: decays slower than claimed", rule, th)
        return VerdictResult(Verdict.INCONCLUSIVE, f"interval {ci_s} straddles {predicted:g} + {resolution}: more replicas or widths needed", rule, th)
    if kind is RateKind.SEPARATION:
        rule = f"separation: PASS iff hi < 0; FAIL iff lo > 0 or (0 in interval and width <= {max_width})"
        if hi < 0:
            return VerdictResult(Verdict.PASS, f"difference interval {ci_s} lies below 0", rule, th)
        if lo > 0:
            return VerdictResult(Verdict.FAIL, f"difference interval {ci_s} lies above 0: reversed", rule, th)
        if w <= max_width:
            return VerdictResult(Verdict.FAIL, f"difference interval {ci_s} contains 0 and is narrow: no separation", rule, th)
        return VerdictResult(Verdict.INCONCLUSIVE, f"difference interval {ci_s} contains 0 and is {w:.3f} wide", rule, th)
    raise InvalidArgumentError(f"kind={kind!r}; use a RateKind")
