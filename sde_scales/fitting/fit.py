r"""Fit laws jointly to several curves, predict unseen schedules, score and diagnose.

Fitting
    ``scipy.optimize.least_squares`` with bounds, a Huber loss (single-batch train losses are very
    noisy and heavy-tailed) whose scale is 1.345 times the noise level estimated from successive
    differences, several starts, and all parameters shared by all fitted curves.
Metrics (:func:`score`)
    Against a centred moving average of the observed loss over ``smooth_steps`` (1,000 by default;
    stated in every report), on the rows at or after ``skip_steps``: R^2, MAE, RMSE, max |error|,
    RMSE over the cooldown rows and over the rows before it (``stable_rmse``: where the prediction
    is the power term's extrapolation at the peak rate); and ``final_loss_err``, the mean
    prediction minus the mean *observed* (raw) loss over the last 5% of the points. The moving average is itself noisy:
    ``target_noise_rmse`` is the RMSE its noise alone puts under any prediction, under the model of
    independent per-point noise of the robust level :func:`noise_level` (the successive
    differences), :math:`\sigma\,(\overline{1/n_w})^{1/2}` with :math:`n_w` the points in each
    row's window. An RMSE near it is as good as the target can tell; an aim below it cannot be
    met by any prediction. The average also flattens the curve where it bends (a 1,000-step window
    over the first steps of a short run): ``target_bias_rmse``, the RMSE between the prediction and
    its own moving average, is what the metric would charge that prediction were it the noise-free
    loss; where it is a large part of the RMSE, the RMSE measures the window (the report warns;
    ``rmse_raw``, against the raw loss, does not have this bias). Likewise ``final_loss_noise``,
    the standard error of the observed final loss (the noise level of the last 5% of points over their square root): a final-loss error
    below it, or a difference between two predictions' errors below about twice it, is not
    resolved by the curve.
Shared batch noise (optional, :func:`shared_noise_offset`)
    Runs that share a data order share most of their loss noise, including slow batch effects.
    The offset estimated from the fitted runs' residuals can be added to a prediction. It changes
    what the metrics mean, so it is off by default and always reported separately.
Lack of fit (:func:`lack_of_fit`)
    Every fit tests the law against each fitted curve's noise: block means of the residuals against
    what independent noise of the curve's level allows. A fit warns where the law misses its own
    curves by more (a form that does not follow them, noise slower than the logging, or a log of a
    smoothed loss). Where it does, the bands below add that miss as the law's model error
    (:func:`model_error`).
Prediction bands (:func:`predict_sd`)
    Every prediction's standard deviation from the fit's parameters: the delta method on the
    Gauss-Newton covariance of the fit (:mod:`sde_scales.fitting.bands`), inflated for
    autocorrelated residuals; NaN where the fitted curves do not determine the prediction. Where
    the law misses its own curves (lack of fit), their miss beyond the noise is added in
    quadrature. The same covariance gives the time-scale intervals every fit reports.
Identifiability (:func:`time_scale_profile`)
    A profile of the fit over the kernel time scale (a single exponential on a log grid, all other
    parameters re-fitted): the interval where the profile cost is within the 95% chi-square
    threshold, with the noise variance inflated by the autocorrelation of the residuals (effective
    sample size from overlapping means of 1,000-step batches of each curve's residuals,
    :func:`autocorrelation_inflation`). A warning is raised when the interval spans more
    than a factor of 10 or reaches the end of the grid.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, optimize, stats

from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting.bands import law_gradient, on_lower_bound, on_upper_bound, parameter_covariance
from sde_scales.fitting.curves import InitialLossWarning, LossCurve, ScheduleFeatures, warmup_end
from sde_scales.fitting.laws import KernelLaw, Law
from sde_scales.validation import is_whole

__all__ = ["FitResult", "FitWarning", "IdentifiabilityWarning", "PeakLRWarning", "fit", "fit_bounds", "fit_warnings",
           "model_error",
           "prediction_gradient",
           "predict", "predict_sd", "score",
           "score_prediction", "time_scale_profile", "shared_noise_offset", "loss_resolution", "final_loss_noise",
           "lack_of_fit", "autocorrelation_inflation"]


class IdentifiabilityWarning(UserWarning):
    """The fitted curves cannot pin the response time scale down."""


class WindowWarning(UserWarning):
    """The metrics' moving-average window spans more than :data:`SMOOTH_WARN_FRACTION` of a curve:
    the RMSE and R2 against it measure the window, not the law (:func:`score`)."""


class PeakLRWarning(UserWarning):
    """A predicted curve's schedule is unlike every fitted one: a peak learning rate none of them
    had, a deeper decay, or a far larger learning-rate area."""


class FitWarning(UserWarning):
    """A fitted parameter sits on a bound or never moved from its start, or the data cannot
    determine part of the law (no learning-rate drops)."""


#: The loss level the laws' fixed starts and bounds are written for (the cross-entropy of a language
#: model, in nats). A fit scales them by :func:`loss_scale`, the fitted curves' level against this
#: one, so that they move with the loss's units.
REFERENCE_LOSS = 3.0

#: The longest curve (steps, or learning-rate area in steps at the peak rate) the laws' fixed
#: time-scale starts are written for; on longer curves they move with the curves' length
#: (:func:`_scaled_starts`).
REFERENCE_EXTENT = 1e5


def loss_scale(y: np.ndarray) -> float:
    """The fitted losses' level in units of :data:`REFERENCE_LOSS`: median |y| / 3 (1 where every loss
    is 0). Every law is linear in its loss-unit parameters (:attr:`Law.loss_unit_names`), so with
    their starts and bounds multiplied by this factor a fit to ``c * y`` is ``c`` times the fit to
    ``y`` in those parameters and the same in the others (``tests/test_fitting.py``)."""
    m = float(np.median(np.abs(y))) if y.size else 0.0
    return m / REFERENCE_LOSS if m > 0 and np.isfinite(m) else 1.0


def _units(law: Law, scale: float) -> np.ndarray:
    """Each parameter's unit: ``scale`` (:func:`loss_scale`) for those in loss units, else 1."""
    return np.array([scale if n in law.loss_unit_names else 1.0 for n in law.names])


def _data_bounds(law: Law, lo, hi, feats, ys, units: np.ndarray, extent: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Bounds that follow the data where a fixed one would bind on ordinary curves.

    * Parameters in loss units have their fixed bounds multiplied by the loss scale (``units``,
      :func:`_units`).
    * ``L0`` may reach the largest fitted loss (a loss above the fixed bound of 20 is no reason to
      fail), and, where some fitted losses are negative, go below 0 by the losses' range beyond the
      least of them.
    * ``A`` may reach :math:`y_{max} S_{first}^{\alpha_{max}}` (with the largest area offset added to
      :math:`S_{first}` where the law has one, ``log10_S0``): the largest amplitude for which the
      power term at the first fitted point, with the steepest exponent allowed, stays within the
      largest fitted loss (any larger A overshoots the data for every allowed exponent). The fixed
      bound of 100 stays as a floor. It binds on curves fitted from early steps: a run fitted from
      step 200 whose loss there is 12 needs A = 200 at alpha = 0.6, and held at 100 its fit missed
      a held-out schedule by 1.1 (``tests/test_fitting.py``).
    * A time scale (``log10_tau``, ``log10_tau0``) may reach twice the longest fitted curve, in the
      law's clock (steps, or learning-rate area in steps at the peak rate), as the non-parametric
      kernel's grid does (:meth:`KernelLaw.for_curves`); the fixed 10^5 stays as a floor. A
      million-step run whose response takes 300,000 steps is then a fit, not a bound. A rate's
      lower bound (:attr:`Law.rate_names`) moves down with curves longer than
      :data:`REFERENCE_EXTENT` as the starts do (:func:`_scaled_starts`).
    """
    names = list(law.names)
    lo, hi = lo.astype(float) * units, hi.astype(float) * units
    y = np.concatenate(ys)
    if "L0" in names:
        i = names.index("L0")
        hi[i] = max(hi[i], float(y.max()))
        if y.min() < 0:  # a loss that can be negative (a log-likelihood of continuous data, a loss minus a baseline)
            lo[i] = min(lo[i], float(y.min() - (y.max() - y.min())))
    if "A" in names and "alpha" in names:
        i, j = names.index("A"), names.index("alpha")
        s_first = min(float(f.S1[0]) for f in feats if f.S1.size)
        if "log10_S0" in names:  # A (S1 + S0)^-alpha: the amplitude that reaches the loss at the largest offset
            s_first += 10.0 ** max(float(hi[names.index("log10_S0")]), np.log10(2.0 * extent) if extent > 0 else 0.0)
        if s_first > 0 and np.isfinite(y.max()) and y.max() > 0:
            with np.errstate(over="ignore"):  # numpy's power, so that an overflow is inf (then capped), not an error
                a_max = float(y.max()) * float(np.power(s_first, hi[j]))
            hi[i] = max(hi[i], min(a_max, 1e12))  # 1e12: beyond it the power term is no longer a fit in float64
    if extent > 0:
        shift = _length_shift(extent)
        for i, n in enumerate(names):
            if n.startswith("log10_"):
                hi[i] = max(hi[i], float(np.log10(2.0 * extent)))
            elif n in law.rate_names:
                lo[i] /= 10.0 ** shift
    return lo, hi


def _extent(law: Law, feats) -> float:
    """The longest fitted curve in the law's clock (steps, or learning-rate area in steps at the
    peak rate); 0 where the law has no clock."""
    if law.clock is None:
        return 0.0
    return max((float(f.t[-1] if law.clock == "steps" else f.S1[-1]) for f in feats if f.t.size), default=0.0)


def _length_shift(extent: float) -> float:
    """Decades by which curves of ``extent`` are longer than :data:`REFERENCE_EXTENT` (0 if not)."""
    return max(0.0, float(np.log10(extent / REFERENCE_EXTENT))) if extent > 0 else 0.0


def _scaled_starts(law: Law, units: np.ndarray, extent: float) -> list[np.ndarray]:
    r"""The law's starts in the parameters' ``units`` (:func:`_units`: loss-unit entries times the
    loss scale) and, on curves longer than :data:`REFERENCE_EXTENT`, their time scales moved with the length:
    ``log10_*`` entries up by :math:`\delta = \log_{10}(\text{extent}/\text{REFERENCE\_EXTENT})`,
    rates (:attr:`Law.rate_names`) divided by :math:`10^\delta`. A start written for a 30,000-step
    run is then where it would be on a run 30 times as long, not 1.5 decades short of the response
    (where the momentum law's fit stopped at a local optimum of 1/50 the true time scale)."""
    shift = _length_shift(extent)
    out = []
    for s in law.starts():
        s = np.array(s, dtype=float) * units
        for i, n in enumerate(law.names):
            if n.startswith("log10_"):
                s[i] += shift
            elif n in law.rate_names:
                s[i] /= 10.0 ** shift
        out.append(s)
    return out


def _parameter_warnings(law: Law, theta: np.ndarray, lo: np.ndarray, hi: np.ndarray, start: np.ndarray,
                        free: np.ndarray, units: np.ndarray) -> list[str]:
    """Each free parameter on a bound (within 1e-6, relative for a bound above its unit: 1, or the
    loss scale (:func:`loss_scale`) for one in loss units, :func:`_units`) or unmoved from its start
    (within 1e-8, likewise), by name: its value is then set by the bound or the start, not the data."""
    out = []
    weights = [i for i, n in enumerate(law.names) if n.startswith("b_")]
    if weights:  # non-parametric kernel weights: zeros are its sparsity, the edges of its grid are not
        w = theta[weights]
        if w.sum() <= 0:
            out.append(f"{law.label}: every kernel weight is 0: the fit finds no drop response")
        else:
            share = w / w.sum()
            for edge in (0, len(w) - 1):
                if share[edge] > 0.5:
                    why = ("as fast as or faster than the grid's shortest time scale (by default one step: a "
                           "response within one update)" if edge == 0 else
                           "as slow as or slower than the grid's longest time scale (by default twice the longest "
                           "curve: the curves cannot tell it from a response that never ends)")
                    out.append(f"{law.label}: {share[edge]:.0%} of the kernel weight is on "
                               f"{law.names[weights[edge]]}, the {'shortest' if edge == 0 else 'longest'} time "
                               f"scale of its grid: the response is {why}")
    for i, name in enumerate(law.names):
        if not free[i] or name.startswith("b_"):
            continue
        unit = units[i]
        if on_lower_bound(theta[i], lo[i], unit):
            if name in getattr(law, "nested_at_lower_bound", ()):
                continue  # the bound is a nested law (the plain power law for an offset), not a limit of the data
            out.append(f"{law.label}: {name} = {theta[i]:.4g} is on its lower bound {lo[i]:g}: the data push it "
                       f"past the bound, so its value is the bound's, not a fit")
        elif on_upper_bound(theta[i], hi[i], unit):
            out.append(f"{law.label}: {name} = {theta[i]:.4g} is on its upper bound {hi[i]:g}: the data push it "
                       f"past the bound, so its value is the bound's, not a fit")
        elif abs(theta[i] - start[i]) <= 1e-8 * max(unit, abs(start[i])):
            out.append(f"{law.label}: {name} = {theta[i]:.4g} never moved from its start: the data do not "
                       f"determine it")
    return out


def noise_level(y: np.ndarray) -> float:
    """Robust noise standard deviation from successive differences: 1.4826 MAD(diff) / sqrt 2.

    Where more than half of the differences are equal, the MAD is 0 whatever the rest do: a loss
    logged to a few digits (most successive values the same, with a jump of one digit now and then)
    or a noise-free curve that is linear in parts. A level of 0
    would then make every difference between two predictions look decided and the fit's robust
    loss degenerate, so the standard deviation of the differences over sqrt 2 is used instead (0
    only where the curve is exactly linear)."""
    d = np.diff(np.asarray(y, dtype=float))
    if d.size == 0:
        return 0.0
    robust = float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2))
    return robust if robust > 0 else float(np.std(d) / np.sqrt(2))


#: Most evaluations of the residuals per start of a fit; a fit that reaches it says so.
MAX_NFEV = 2000

def evaluation_limit(value: int | None = None, name: str = "max_evaluations") -> int:
    """The optimiser's limit of evaluations per fit: ``value``, or :data:`MAX_NFEV` where it is None.
    Anything but a whole number >= 1 is refused, naming ``name`` (the argument or flag it came from)."""
    if value is None:
        return MAX_NFEV
    if not is_whole(value, 1):
        said = f"{name} {value!r}" if name.startswith("--") else f"{name}={value!r}"
        raise InvalidArgumentError(f"{said}; give a whole number of evaluations >= 1 per fit (default {MAX_NFEV})")
    return int(value)


#: Largest error of a law's sum-of-exponentials form (power-law kernel, multi-power law), as a
#: fraction of a unit drop's full response, that a fit accepts without a warning. Within the
#: parameter bounds the tests measure it below 1e-4 (power law, 34k steps) and assert it below
#: 1e-3 at the multi-power law's corners; a larger one means the fit sits where the form was not
#: checked.
EMBEDDING_TOL = 1e-3


@dataclass(frozen=True)
class FitResult:
    law: Law
    theta: np.ndarray
    lr_scale: float
    skip_steps: int
    bin_steps_factor: int
    cost: float
    seconds: float
    n_points: int
    f_scale: float
    curves: tuple[str, ...]
    peaks: tuple[float, ...]
    starts_tried: int
    extra: dict = field(default_factory=dict)

    @property
    def params(self) -> dict:
        d = {n: float(v) for n, v in zip(self.law.names, self.theta)}
        if hasattr(self.law, "reported"):
            d.update(self.law.reported(self.theta))
        d["lr_scale"] = self.lr_scale
        ts = self.law.time_scale(self.theta)
        if ts is not None:
            d["time_scale"] = ts
        hr = self.law.half_response(self.theta)
        if hr is not None:
            d["delay_half_response"] = hr
        return d


def _features(curve: LossCurve, skip: int, lr_scale: float, factor: int) -> tuple[ScheduleFeatures, np.ndarray]:
    keep = _trained_from(curve, skip)
    if keep.sum() < 10:
        raise InvalidArgumentError(f"{curve.source}: only {int(keep.sum())} points at or after skip_steps={skip} (and after "
                                   f"the first update); lower --skip-steps")
    f = ScheduleFeatures.build(curve, curve.step[keep], lr_scale, bin_steps=curve.drop_bin_steps(factor))
    return f, keep


def fit(law: Law, curves: list[LossCurve], *, skip_steps: int = 0, bin_factor: int = 4, n_starts: int | None = None,
        f_scale: float | None = None, fixed: dict | None = None, max_evaluations: int | None = None) -> FitResult:
    """Fit ``law`` jointly to ``curves`` (shared parameters). ``fixed`` pins parameters by name.
    ``max_evaluations``: the optimiser's limit of residual evaluations per start and stage (default
    :data:`MAX_NFEV`); a fit that reaches it says so (``extra["converged"]`` False, a warning).

    The fit runs with one BLAS thread (:func:`one_blas_thread`), whatever the process's setting:
    its matrices are tall and thin (points x parameters), too small for threads to pay, and the
    threads' split of each reduction changed where the optimiser stopped on flat objectives. A fit
    of many points starts from fits to :data:`COARSE_POINTS` of them and more, evenly spaced
    (:func:`_coarse_rows`), where the law's cost is in its points
    (:attr:`~sde_scales.fitting.laws.Law.coarse_start`)."""
    _check_fit_arguments(curves, skip_steps=skip_steps, bin_factor=bin_factor, n_starts=n_starts, f_scale=f_scale,
                         fixed=fixed)
    kw = dict(skip_steps=skip_steps, bin_factor=bin_factor, n_starts=n_starts, f_scale=f_scale,
              max_evaluations=evaluation_limit(max_evaluations))
    with one_blas_thread():
        if getattr(law, "offset", None) == "test":
            return _fit_offset_tested(law, curves, fixed=fixed, **kw)
        return _fit(law, curves, fixed=fixed, **kw)


#: Level of :func:`offset_test`: the kernel law keeps its progress term's area offset where the
#: plain term's p value is below it (the level of the fits' lack-of-fit test).
OFFSET_TEST_LEVEL = 0.01


def offset_test(plain: FitResult, offset: FitResult, curves: list[LossCurve]) -> dict:
    r"""Do the fitted curves reject the plain progress term :math:`A S_1^{-\alpha}` in favour of
    :math:`A (S_1 + S_0)^{-\alpha}` (:attr:`~sde_scales.fitting.laws.KernelLaw.offset`)?

    The two laws are nested (the plain one is the limit :math:`S_0 \to 0`), so Wilks' likelihood
    ratio for Gaussian residuals,

    .. math:: T = \frac{\mathrm{SSR}_{plain} - \mathrm{SSR}_{offset}}{\kappa\,\hat\sigma^2},
              \qquad \hat\sigma^2 = \frac{\mathrm{SSR}_{offset}}{n - k},

    is :math:`\chi^2_1` where the plain term holds (:math:`n` fitted rows, :math:`k` parameters of
    the offset law, :math:`\kappa` the offset fit's residual autocorrelation inflation,
    :func:`autocorrelation_inflation`, so that correlated residuals do not pass for independent
    evidence). :math:`S_0 = 0` is on the boundary of its range, where the null distribution is the
    mixture :math:`\tfrac12\chi^2_0 + \tfrac12\chi^2_1` (Self and Liang 1987); the
    :math:`\chi^2_1` tail used here is twice that one's, so the test is conservative: it keeps the
    plain term unless the curves reject it. The offset is kept where :math:`p <`
    :data:`OFFSET_TEST_LEVEL`. On one cosine of the plain law (``tests/test_fitting.py``) it is
    dropped, on the language-model families of ``experiments/fit_lm_family.py`` kept (p below
    1e-5; ``benchmarks/RESULTS.md``).

    Returns ``{"kept", "statistic", "p", "level", "S0", "ssr_plain", "ssr_offset", "inflation"}``
    (``S0``: the offset fit's, in area units of steps at the peak rate)."""
    res = {}
    for key, r in (("plain", plain), ("offset", offset)):
        parts = []
        for c in curves:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the fitted curves: nothing to extrapolate
                d = predict(r, c) - c.loss
            parts.append(d[(c.step >= r.skip_steps) & np.isfinite(d)])
        res[key] = parts
    ssr = {k: float(sum(np.sum(p ** 2) for p in v)) for k, v in res.items()}
    sizes = [p.size for p in res["offset"]]
    n, k = int(sum(sizes)), int(len(offset.theta))
    kappa = autocorrelation_inflation(np.concatenate(res["offset"]), [c.log_every for c in curves], sizes)
    sigma2 = ssr["offset"] / max(n - k, 1)
    stat = (ssr["plain"] - ssr["offset"]) / (kappa * sigma2) if sigma2 > 0 else 0.0
    p = float(stats.chi2.sf(max(stat, 0.0), 1))
    return {"kept": bool(p < OFFSET_TEST_LEVEL), "statistic": float(stat), "p": p, "level": OFFSET_TEST_LEVEL,
            "S0": float(offset.law.s0(offset.theta)), "ssr_plain": ssr["plain"], "ssr_offset": ssr["offset"],
            "inflation": float(kappa)}


def _fit_offset_tested(law, curves, *, fixed, **kw) -> FitResult:
    """``offset="test"``: the plain law and the offset law fitted, the one :func:`offset_test` keeps
    returned with the test in ``extra["offset_test"]``; only the kept fit's warnings are issued.

    Curves of :data:`COARSE_POINTS` x :data:`COARSE_FACTOR` fitted points or more are tested on
    about :data:`COARSE_POINTS` evenly spaced rows of them (:func:`_thinned`, every curve's
    per-step schedule kept), and the kept law is then fitted to every row. On a long curve of a
    flat objective the offset's fit to every row walked its valley for minutes (a 131,000-step
    noisy-quadratic cosine: 2,000 evaluations, 153 s, for a cost 0.01% below the plain fit's),
    while 4,096 rows decide a test whose evidence on real runs was p < 1e-5 from 1,200 rows."""
    n_fitted = sum(int(np.sum(c.step >= kw["skip_steps"])) for c in curves)
    thin = n_fitted >= COARSE_POINTS * COARSE_FACTOR
    tested = _thinned(curves, kw["skip_steps"]) if thin else curves
    fits, caught = {}, {}
    for off in (False, True):
        held = {k: v for k, v in (fixed or {}).items() if off or k != "log10_S0"} or None
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            fits[off] = _fit(law.with_offset(off, tested=True), tested, fixed=held, **kw)
        caught[off] = got
    test = offset_test(fits[False], fits[True], tested)
    test["points"] = int(sum(int(np.sum(c.step >= kw["skip_steps"])) for c in tested))
    kept = test["kept"]
    if thin:
        held = {k: v for k, v in (fixed or {}).items() if kept or k != "log10_S0"} or None
        out = _fit(law.with_offset(kept, tested=True), curves, fixed=held, **kw)
    else:
        for w in caught[kept]:
            warnings.warn(w.message, w.category, stacklevel=3)
        out = fits[kept]
    out.extra["offset_test"] = test
    return out


def _thinned(curves: list[LossCurve], skip_steps: int) -> list[LossCurve]:
    """The curves on about :data:`COARSE_POINTS` of their rows from ``skip_steps`` on, evenly spaced
    (:func:`_coarse_rows`), each with its learning rate at every step (:meth:`LossCurve.per_step_lr`),
    so that the schedule a fit sees is the full curve's."""
    keep = [np.flatnonzero(c.step >= skip_steps) for c in curves]
    rows = _coarse_rows([k.size for k in keep], COARSE_POINTS)
    out = []
    for c, k, r in zip(curves, keep, rows):
        idx = k[r]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the thinned log's own notes (a gap before skip_steps) are not the curve's
            out.append(LossCurve(c.step[idx], c.lr[idx], c.loss[idx], name=c.name).with_schedule(c.per_step_lr()))
    return out


def _whole(value, name: str, low: int) -> None:
    if not is_whole(value, low):
        raise InvalidArgumentError(f"{name}={value!r}; give a whole number >= {low}")


def _check_fit_arguments(curves, *, skip_steps, bin_factor, n_starts, f_scale, fixed) -> None:
    """What :func:`fit` is given, checked by name: a negative skip or a bin factor of 0 was taken as
    the default, a NaN pinned value ended in scipy's "Residuals are not finite in the initial
    point", a curve that is not a :class:`LossCurve` in an AttributeError."""
    if not isinstance(curves, (list, tuple)):
        raise InvalidArgumentError(f"curves is a {type(curves).__name__}; give a list of LossCurve (load_curve(path) "
                                   f"reads a file)")
    bad = [type(c).__name__ for c in curves if not isinstance(c, LossCurve)]
    if bad:
        raise InvalidArgumentError(f"curves holds {', '.join(bad)}; give a list of LossCurve (load_curve(path) reads a "
                                   f"file)")
    _whole(skip_steps, "skip_steps", 0)
    _whole(bin_factor, "bin_factor", 1)
    if n_starts is not None:
        _whole(n_starts, "n_starts", 1)
    if f_scale is not None and not (isinstance(f_scale, (int, float, np.floating)) and np.isfinite(f_scale)
                                    and f_scale >= 0):
        raise InvalidArgumentError(f"f_scale={f_scale!r}; give the robust loss's scale, a finite number >= 0 (0: "
                                   f"least squares; None: from the curves' noise)")
    for k, v in (fixed or {}).items():
        if not (isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and np.isfinite(v)):
            raise InvalidArgumentError(f"fixed[{k!r}]={v!r}; a pinned parameter needs a finite value")


#: Points of the first coarse stage of a fit, spread over the fitted curves in proportion to
#: their lengths. A fit of at least :data:`COARSE_FACTOR` times as many points first fits this
#: many, then :data:`COARSE_FACTOR` times as many, and so on while the full fit has at least
#: :data:`COARSE_FACTOR` times the stage's points; each stage starts from the last one's optimum
#: and the full fit from the largest's. Why: on a flat objective the optimiser takes hundreds of
#: steps, each an SVD of the (points x parameters) Jacobian; on a 34,000-point curve logged at
#: every step that was 8-9 s of the issue's 10 s (562 evaluations), and from the coarse optimum
#: the full fit needs tens (``benchmarks/RESULTS.md``, "coarse start"). The first stage is at most
#: an eighth of the points. Smaller fits take the direct path as before; the stages change where
#: a fit ends on a flat objective (lower, in every case measured), so this keeps the published
#: figures of the shared curves (fits of at most 24,000 points) as they were.
COARSE_POINTS = 4096
#: Growth of the coarse stages, and the least ratio of the full fit's points to a stage's.
COARSE_FACTOR = 8


def _coarse_rows(sizes: list[int], total: int) -> list[np.ndarray]:
    """Evenly spaced row indices into each curve (its first and last row included), about
    ``total`` in all, each curve's share in proportion to its size and at least 20 points (or all
    of a shorter curve)."""
    n = sum(sizes)
    out = []
    for m in sizes:
        k = min(m, max(20, int(round(total * m / n))))
        out.append(np.unique(np.linspace(0, m - 1, k).round().astype(int)))
    return out


_BLAS = None  # the ThreadpoolController of one_blas_thread, made on its first use


def one_blas_thread():
    """A context in which BLAS and LAPACK calls run on one thread (``threadpoolctl``).

    Why: a fit's Jacobians are tall and thin (tens of thousands of points by 3-20 parameters),
    and OpenBLAS threads over them cost more than they give. Measured on a 34,000-point curve on
    2 cores (``benchmarks/RESULTS.md``, "one BLAS thread"): the same fit took 42-47 s with two
    threads and 9 s with one. And a reduction split across threads is summed in another order,
    so the optimiser's path, and where it stopped on a flat objective, depended on the thread
    count (a cost of 156.38625 with two threads, 156.38632 with one, on the same data); with one
    thread the fit is the same whatever the machine's thread settings."""
    global _BLAS
    from threadpoolctl import ThreadpoolController

    if _BLAS is None:
        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


@dataclass(frozen=True)
class _Setup:
    """What a fit of ``law`` to curves works on: the law for these curves, the learning-rate scale
    (the largest peak), each curve's features and fitted losses from ``skip_steps``, the loss
    scale and each parameter's unit, the curves' extent in the law's clock, and the bounds."""
    law: Law
    lr_scale: float
    feats: list
    ys: list
    scale: float
    units: np.ndarray
    extent: float
    lo: np.ndarray
    hi: np.ndarray


def _setup(law: Law, curves: list[LossCurve], skip_steps: int, bin_factor: int) -> _Setup:
    if not curves:
        raise InvalidArgumentError("no curves to fit; pass at least one LossCurve")
    law = law.for_curves(curves, bin_factor)  # e.g. the non-parametric kernel's grid follows the data
    lr_scale = max(c.peak_lr for c in curves)
    if lr_scale <= 0:
        raise InvalidArgumentError("every fitted curve has learning rate 0; nothing to learn the schedule response from")
    feats, ys = [], []
    for c in curves:
        f, keep = _features(c, skip_steps, lr_scale, bin_factor)
        feats.append(f)
        ys.append(c.loss[keep])
    scale = loss_scale(np.concatenate(ys))
    units, extent = _units(law, scale), _extent(law, feats)
    lo, hi = _data_bounds(law, *law.bounds(), feats, ys, units, extent)
    return _Setup(law, lr_scale, feats, ys, scale, units, extent, lo, hi)


def fit_bounds(law: Law, curves: list[LossCurve], *, skip_steps: int = 0, bin_factor: int = 4
               ) -> tuple[np.ndarray, np.ndarray]:
    """The bounds of ``law``'s parameters that :func:`fit` searches on ``curves`` (the law's own,
    moved by the data: :func:`_data_bounds`), without fitting; a fit returns the same in
    ``extra["bounds"]``."""
    _check_fit_arguments(curves, skip_steps=skip_steps, bin_factor=bin_factor, n_starts=None, f_scale=None,
                         fixed=None)
    s = _setup(law, curves, skip_steps, bin_factor)
    return s.lo, s.hi


def _fit(law: Law, curves: list[LossCurve], *, skip_steps: int, bin_factor: int, n_starts: int | None,
         f_scale: float | None, fixed: dict | None, max_evaluations: int) -> FitResult:
    started = time.perf_counter()
    s = _setup(law, curves, skip_steps, bin_factor)
    law, lr_scale, feats, ys, scale, units, extent, lo, hi = (s.law, s.lr_scale, s.feats, s.ys, s.scale, s.units,
                                                              s.extent, s.lo, s.hi)
    y = np.concatenate(ys)
    auto_scale = f_scale is None
    if auto_scale:
        f_scale = 1.345 * float(np.median([noise_level(v) for v in ys]))
    names = list(law.names)
    starts = _scaled_starts(law, units, extent)
    fixed = dict(fixed or {})
    unknown = [k for k in fixed if k not in names]
    if unknown:
        raise InvalidArgumentError(f"fixed parameter(s) {unknown} not in {names}")
    drops = float(sum(np.abs(f.drop).sum() for f in feats))
    # Without a drop after the warmup nothing in the data reaches the drop response (the kernel
    # law's level term B * peak is a constant that L0 absorbs when the curves share a peak): its
    # parameters are held at their defaults (the law's first start) rather than left to wander
    # where the objective is flat, and the fit says so below.
    held = {}
    if drops == 0.0:
        held = {n: float(v) for n, v in zip(names[3:], starts[0][3:]) if n not in fixed}
        fixed.update(held)
    free = np.array([n not in fixed for n in names])

    def full(xf):
        th = np.empty(len(names))
        th[free] = xf
        for k, v in fixed.items():
            th[names.index(k)] = v
        return th

    def resid(xf, on_feats=feats, on_y=y):
        th = full(xf)
        return np.concatenate([law.predict(th, f) for f in on_feats]) - on_y

    has_jac = law.jacobian(starts[0], feats[0]) is not None

    def jac(xf, on_feats=feats):
        th = full(xf)
        return np.concatenate([law.jacobian(th, f) for f in on_feats], axis=0)[:, free]

    coarse = []  # (features, losses) of each coarse stage, smallest first
    size = COARSE_POINTS
    while law.coarse_start and size * COARSE_FACTOR <= y.size:
        rows = _coarse_rows([v.size for v in ys], size)
        coarse.append(([ScheduleFeatures.build(c, f.t[r], lr_scale, bin_steps=c.drop_bin_steps(bin_factor))
                        for c, f, r in zip(curves, feats, rows)], np.concatenate([v[r] for v, r in zip(ys, rows)])))
        size *= COARSE_FACTOR

    if n_starts is not None:
        starts = starts[:max(1, n_starts)]

    def solve(x0, fs, stage=None):
        # fs: Huber's scale; stage: (features, losses) of a coarse stage, or None for every point
        # tolerances 1e-12, not scipy's 1e-8: these objectives are flat along (L0, B, kernel weights),
        # and stopping at 1e-8 left the same fit of one cosine run at two points whose predictions of
        # WSD final losses differed by 0.003, depending only on the box bounds
        # Huber's loss, robust to the spikes of real runs, at 1.345 noise levels; with no noise at all
        # (an exactly linear curve) there is nothing to be robust against: ordinary least squares
        # residuals in units of the loss scale: scipy's gradient tolerance is absolute in the cost,
        # so a loss of order 1e-60 stopped every fit at its start
        on_feats, on_y = stage if stage is not None else (feats, y)
        return optimize.least_squares(lambda xf: resid(xf, on_feats, on_y) / scale, x0,
                                      jac=(lambda xf: jac(xf, on_feats) / scale) if has_jac else "2-point",
                                      bounds=(lo[free], hi[free]), loss="huber" if fs > 0 else "linear",
                                      f_scale=fs / scale if fs > 0 else 1.0, x_scale="jac", max_nfev=max_evaluations,
                                      ftol=1e-12, xtol=1e-12, gtol=1e-12)

    # a data-driven start for the level: a little below the mean of the last tenth of the fitted points
    best, best_start = None, None
    for s in starts:
        s = s.copy()
        s[0] = float(np.clip(np.mean(y[-max(1, y.size // 10):]) - 0.1 * REFERENCE_LOSS * scale, lo[0], hi[0]))
        x0 = np.clip(s, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))[free]
        start = x0  # the start a parameter "never moved from" is this one, not a coarse stage's end
        for stage in coarse:
            # the same objective on evenly spaced points first: the optimiser's path through a flat
            # valley is as long either way, and each step costs a fraction; each larger stage, and
            # then the full fit, starts from the last one's end (the result is the full fit's,
            # tolerances unchanged)
            x0 = solve(x0, f_scale, stage).x
        res = solve(x0, f_scale)
        if best is None or res.cost < best.cost:
            best, best_start = res, full(start)
    if auto_scale and f_scale > 0:  # (0: no noise at all, fitted by least squares already)
        # Huber's scale comes from the successive differences, the point noise. Where the law
        # misses the curve by far more (a smooth curve: little point noise, as a deterministic
        # run, a smoothed log or a model's own output gives; or a law that does not fit), nearly
        # every point sits in the loss's linear arm, the objective's curvature falls with the
        # scale, and the optimiser stopped far from the optimum (a straight line with noise 1e-6:
        # an RMSE of 0.018 where least squares reach 0.0004). There the same objective is reached
        # by continuation: solved at the residuals' robust size (1.345 x 1.4826 MAD), then at a
        # tenth of it, and so on down to the noise's scale, each from the last optimum; kept
        # where it ends lower than the direct fit (the objective is the same, so it is the better
        # fit of it). "Far more": over twice, where the MAD's own relative error is about
        # 1.1/sqrt(n) (under 0.25 for the 20 points a curve has at least).
        r_now = best.fun * scale
        fs = 1.345 * 1.4826 * float(np.median(np.abs(r_now - np.median(r_now))))
        if fs > 2.0 * f_scale:
            x = best.x
            while True:
                cand = solve(x, fs)
                x = cand.x
                if fs <= f_scale:
                    break
                fs = max(fs / 10.0, f_scale)
            if cand.cost < best.cost:
                best = cand
    theta = full(best.x)
    notes = _parameter_warnings(law, theta, lo, hi, best_start, free, units)
    if best.status == 0:
        notes.append(f"{law.label}: the optimiser stopped at its limit of {max_evaluations} evaluations before converging: "
                     f"the parameters are where it stopped, not an optimum (a flat objective; --max-evaluations, "
                     f"or max_evaluations=, raises the limit)")
    hr = law.half_response(theta) if not held else None
    resolution = min(max(c.log_every, c.drop_bin_steps(bin_factor)) for c in curves)
    if hr is not None and np.isfinite(hr) and hr < resolution:
        unit = "area units (steps at the peak rate)" if getattr(law, "time", "steps") == "area" else "steps"
        notes.append(f"{law.label}: the fitted delay (half response {hr:.3g} {unit}) is shorter than the curves "
                     f"resolve (their logging interval or drop bins, {resolution} steps): they say the response is "
                     f"faster than that, not how much faster; the delay is a bound, not a fit")
    if held:
        notes.append(f"{law.label}: the fitted curves have no learning-rate drop after their warmup, so the drop "
                     f"response is not determined by the data: its parameters are held at their defaults ("
                     f"{', '.join(f'{n} = {v:.4g}' for n, v in held.items())}); predictions of schedules with drops "
                     f"are not fits. Fit a curve with a decay as well")
    embed = max((law.embedding_error(theta, f) for f in feats), default=0.0) if hasattr(law, "embedding_error") else 0.0
    if embed > EMBEDDING_TOL:
        notes.append(f"{law.label}: its sum-of-exponentials form misses the law's response by up to {embed:.2g} of a "
                     f"unit drop at the fitted parameters (above {EMBEDDING_TOL:g}): the fit is of an approximation "
                     f"that far from the published law")
    notes += [n for n in (_weight_note(law.label, curves, ys),) if n]
    notes += [f"{c.name}: the loss is {v[0]:.6g} at every fitted point: there is nothing for the law to follow "
              f"(its parameters are not fits); is the loss column the loss (--columns loss=NAME)?"
              for c, v in zip(curves, ys) if v.size and np.ptp(v) == 0]
    counts = [v.size for v in ys]
    checks = {c.name: lack_of_fit(r, v, f.t)
              for c, f, r, v in zip(curves, feats, np.split(best.fun * scale, np.cumsum(counts)[:-1]), ys)}
    notes += [n for n in (_lack_of_fit_note(law.label, checks), _alternating_note(law.label, checks)) if n]
    cov = parameter_covariance(law, theta, resid, jac if has_jac else None, free, lo, hi, held,
                               autocorrelation_inflation(best.fun * scale, [c.log_every for c in curves], counts),
                               units)
    notes += _intervals_reaching_bounds(law, theta, cov, lo, hi, free, held)
    ts = _time_scale_interval(law, theta, cov, lo, hi, held=held)
    if ts is not None and ts.get("warning"):
        warnings.warn(ts["warning"], IdentifiabilityWarning, stacklevel=2)
    for msg in notes:
        warnings.warn(msg, FitWarning, stacklevel=2)
    reach = [schedule_reach(c) for c in curves]
    starts_at = [start_area(c, skip_steps) for c in curves]
    window = fall_window(curves)
    return FitResult(law, theta, lr_scale, int(skip_steps), bin_factor, float(best.cost) * scale**2,
                     time.perf_counter() - started,
                     int(y.size), float(f_scale), tuple(c.name for c in curves), tuple(c.peak_lr for c in curves),
                     len(starts), extra={"warnings": notes, "drops": drops, "embedding_error": embed,
                                         "decay_depths": [r[0] for r in reach], "areas": [r[1] for r in reach],
                                         "rises": [r[2] for r in reach], "start_areas": starts_at,
                                         "fall_window": window, "falls": [fastest_fall(c, window) for c in curves],
                                         "time_scale_interval": ts, "covariance": cov,
                                         "lack_of_fit": checks,
                                         "coarse_stages": [int(st[1].size) for st in coarse],
                                         "converged": bool(best.status != 0), "evaluations": int(best.nfev),
                                         "bounds": (lo.copy(), hi.copy())})


def _intervals_reaching_bounds(law, theta, cov, lo, hi, free, held) -> list[str]:
    r"""Each free parameter near a bound but not on it, whose 95% interval from the curvature
    (:math:`\pm 1.96` sd from the fit's covariance) reaches that bound: the data do not keep it off
    the bound, though the optimiser stopped short of it (a parameter on the bound is named by
    :func:`_parameter_warnings`). Kernel weights (their zeros are the kernel's sparsity) and time
    scales (their intervals are reported on their own) are left out."""
    hits = []
    sds = cov.sd(np.eye(len(law.names)))  # every parameter's standard deviation at once
    for i, name in enumerate(law.names):
        if (not free[i] or name in held or name.startswith("b_") or name.startswith("log10_tau")
                or name in cov.on_bound or not np.isfinite(sds[i])):
            continue
        half = 1.96 * float(sds[i])
        bound = lo[i] if theta[i] - half <= lo[i] else hi[i] if theta[i] + half >= hi[i] else None
        if bound == lo[i] and name in getattr(law, "nested_at_lower_bound", ()):
            continue  # an interval that reaches the nested law (_parameter_warnings) is no bound artefact
        if bound is not None:
            hits.append(f"{name} = {theta[i]:.4g} +- {half:.3g} (bound {bound:g})")
    if not hits:
        return []
    return [f"{law.label}: the 95% interval from the curvature of {', '.join(hits)} reaches "
            f"{'its bound' if len(hits) == 1 else 'their bounds'}: the data do not determine "
            f"{'it' if len(hits) == 1 else 'them'} away from the bound, and predictions away from the fitted curves "
            f"depend on where the optimiser stopped (their bands say how much)"]


def _time_scale_interval(law, theta, cov, lo, hi, held=None) -> dict | None:
    r"""95% interval of a fitted time scale (``log10_tau`` or ``log10_tau0``; for the non-parametric
    kernel, :func:`_nonparametric_interval`) from the curvature of the least-squares objective at
    the optimum: the fit's Gauss-Newton covariance ``cov``
    (:class:`~sde_scales.fitting.bands.ParameterCovariance`:
    :math:`\hat\sigma^2 (J^\top J)^{-1}`, inflated by the residuals' autocorrelation, parameters on
    a bound held there). Cheap (one Jacobian), unlike the profile; None for a law without a fitted
    time scale. A warning when the interval spans more than a decade, when the curvature does not
    determine it, when the time scale is on a bound (then the curvature says nothing), or when it is
    ``held`` at its default because the curves have no drop."""
    names = list(law.names)
    key = next((k for k in ("log10_tau", "log10_tau0") if k in names), None)
    if key is not None and key in (held or {}):
        return _no_interval(key, 10 ** held[key], "held at its default: the curves have no drop",
                            f"{law.label}: no interval for the time scale: the fitted curves have no learning-rate "
                            f"drop, so it is held at its default {10 ** held[key]:.4g}; add a run with a drop")
    weights = [i for i, n in enumerate(names) if n.startswith("b_")]
    if key is None and weights:
        return _nonparametric_interval(law, theta, weights, cov, held)
    if key is None or key in cov.pinned:
        return None
    j = names.index(key)
    c = float(theta[j])
    # a law of one time scale can be predicted over the range of them the curves allow
    average = ("; or predict over the time scales they allow, their spread in the band (--average-time-scale, "
               "sde_scales.fitting.time_scale_average)" if key == "log10_tau" else "")
    if key in cov.on_bound:
        return {"parameter": key, "time_scale": 10 ** c, "ci": [None, None], "sd_log10": None,
                "inflation": cov.inflation,
                "warning": f"{law.label}: the time scale 10^{key.split('_', 1)[1]} = {10 ** c:.4g} is on a bound of "
                           f"its range [{10 ** lo[j]:g}, {10 ** hi[j]:g}]: no interval, the data do not determine "
                           f"it{average}",
                "method": "Gauss-Newton curvature at the optimum, inflated by residual autocorrelation"}
    g = np.zeros(len(names))
    g[j] = 1.0
    sd, ci = _decades(c, _sd_or_inf(cov, g))
    warn = _interval_warning(f"{law.label}: the time scale", c, sd, ci,
                             "the fit does not depend on it; these curves carry no information on it (add a run "
                             "with a learning-rate drop)", "add a run with a sharp learning-rate drop" + average)
    return {"parameter": key, "time_scale": 10 ** c, "ci": ci, "sd_log10": sd if np.isfinite(sd) else None,
            "inflation": cov.inflation, "warning": warn,
            "method": "Gauss-Newton curvature at the optimum, inflated by residual autocorrelation"}


def _sd_or_inf(cov, g: np.ndarray) -> float:
    """The standard deviation of ``g . theta`` under ``cov``; inf where the curvature does not
    determine it (a pseudo-inverse would report zero variance there, the opposite of the truth)."""
    sd = float(cov.sd(g[None, :])[0])
    return sd if np.isfinite(sd) else float("inf")


def _no_interval(parameter: str, time_scale: float, method: str, warning: str) -> dict:
    """The record of a time scale that has no interval, with the reason (``method``) and the warning."""
    return {"parameter": parameter, "time_scale": time_scale, "ci": [None, None], "sd_log10": None, "inflation": None,
            "method": method, "warning": warning}


def _decades(c: float, sd: float) -> tuple[float, list]:
    """The 95% interval of a time scale :math:`10^c` whose log10 has standard deviation ``sd``:
    (sd, [low, high]), or (inf, [None, None]) where there is none; 30 decades is none (and 10^x
    overflows)."""
    if np.isfinite(sd) and 1.96 * sd > 30:
        sd = float("inf")
    return sd, ([10 ** (c - 1.96 * sd), 10 ** (c + 1.96 * sd)] if np.isfinite(sd) else [None, None])


def _interval_warning(what: str, c: float, sd: float, ci: list, none_why: str, hint: str) -> str | None:
    """The warning for a time scale 10^c with log10 standard deviation ``sd`` and interval ``ci``:
    none where the interval spans at most a decade."""
    if not np.isfinite(sd):
        return f"{what} {10 ** c:.4g} has no interval: {none_why}"
    if 1.96 * sd > 0.5:
        return (f"{what} {10 ** c:.4g} has a 95% interval [{ci[0]:.4g}, {ci[1]:.4g}] (curvature of the fit, residual "
                f"autocorrelation included) that spans more than a decade: these curves do not pin it down; {hint}")
    return None


def _nonparametric_interval(law, theta, weights, cov, held) -> dict | None:
    r"""95% interval of the non-parametric kernel's time scale, the weighted geometric mean
    :math:`\exp(\sum_j w_j \ln\tau_j / \sum_j w_j)` of its grid, by the delta method on the fit's
    Gauss-Newton covariance ``cov``. Weights on their lower bound 0 are held there (the
    constraint is active: the curvature says nothing about them). A warning when the interval
    spans more than a decade."""
    names = list(law.names)
    if any(names[i] in (held or {}) for i in weights):
        ts = law.time_scale(theta)
        return _no_interval("kernel weights", ts, "held at their defaults: the curves have no drop",
                            f"{law.label}: no interval for the time scale: the fitted curves have no learning-rate "
                            f"drop, so the kernel's weights are held at their defaults (time scale {ts:.4g}); add a "
                            f"run with a drop")
    w = theta[weights]
    W = float(w.sum())
    if W <= 0:
        return None  # no response at all: _parameter_warnings says so
    ln_tau = np.log(np.asarray(law.taus, dtype=float))
    m = float(w @ ln_tau) / W
    c = m / np.log(10.0)
    # weights on their lower bound are held there: no part in the gradient
    active = [(wi, i) for wi, i in enumerate(weights) if cov.used[i]]
    if len(active) < 2:  # one time scale of the grid carries it all: g = 0, and a zero sd would claim certainty
        return _no_interval("kernel weights", 10 ** c, "none: one time scale of the grid carries all the weight",
                            f"{law.label}: the kernel's weight sits on one time scale of its grid ({10 ** c:.4g}), so "
                            f"the curvature gives no interval for it (its resolution is the grid's spacing); "
                            f"--kernel exp fits one time scale with an interval")
    g = np.zeros(len(names))
    for wi, i in active:
        g[i] = (ln_tau[wi] - m) / (W * np.log(10.0))  # d log10(time scale) / d w
    sd, ci = _decades(c, _sd_or_inf(cov, g))
    warn = _interval_warning(f"{law.label}: the kernel's time scale (geometric mean of its grid, weighted)", c, sd,
                             ci, "the curvature of the fit is singular in its weights; these curves do not determine "
                             "it (add a run with a learning-rate drop)",
                             "add a run with a sharp learning-rate drop or use a kernel with fewer parameters "
                             "(--kernel exp)")
    return {"parameter": "kernel weights", "time_scale": 10 ** c, "ci": ci, "sd_log10": sd if np.isfinite(sd) else None,
            "inflation": cov.inflation, "warning": warn,
            "method": "delta method on the Gauss-Newton curvature at the optimum (weights at 0 held), inflated by "
                      "residual autocorrelation"}


#: Length, in steps, of the batches :func:`autocorrelation_inflation` averages residuals over: the
#: correlation it sees is that over up to about this many steps.
INFLATION_BATCH_STEPS = 1000


def autocorrelation_inflation(res: np.ndarray, log_every, sizes=None) -> float:
    r"""Variance inflation :math:`\kappa` of correlated residuals: their long-run variance over the
    variance of single residuals (at least 1; 1 where no curve holds three batches).

    The long-run variance is estimated by overlapping batch means (Meketon and Schmeiser 1984)
    within each curve: with the residuals centred on their overall mean, the means :math:`\bar r_j`
    of the :math:`n - b + 1` runs of :math:`b` consecutive rows of a curve of :math:`n` rows give

    .. math:: \hat\sigma^2_\infty = \frac{n\,b}{(n - b)(n - b + 1)} \sum_j \bar r_j^2 ,

    where :math:`b` is :data:`INFLATION_BATCH_STEPS` over the curve's logging interval (at least 2
    rows). The curves' estimates are pooled with weights :math:`n/b - 1`, proportional to their
    degrees of freedom. No batch straddles two curves, and each curve's batch spans the same steps
    whatever its logging interval. For the same batch length the overlapping estimate has the
    expectation of non-overlapping batch means and two thirds of their variance: on AR(1)
    residuals with coefficient 0.9, 1,171 rows, batches of 100 rows, a relative standard deviation
    of 0.32 against 0.40 (2,000 series, ``benchmarks/inflation_estimator.py``). Both see correlation over
    about :math:`b` rows only, and so read low where it lasts longer (a mean of 44 for a true 66
    at coefficient 0.97).

    Parameters
    ----------
    res : ndarray
        The residuals of one or more curves, concatenated in step order within each curve.
    log_every : int or sequence of int
        The logging interval (steps per row) of every curve, or one for all.
    sizes : sequence of int, optional
        The rows of each curve in ``res`` (default: ``res`` is one curve).

    Returns
    -------
    float
        :math:`\kappa = \hat\sigma^2_\infty / s^2`, :math:`s^2` the sample variance of the residuals
        of the curves that hold three batches; the effective sample size is their number over it.
    """
    res = np.asarray(res, dtype=float).ravel()
    sizes = [res.size] if sizes is None else [int(k) for k in sizes]
    every = np.asarray(log_every, dtype=float).ravel()
    if every.size not in (1, len(sizes)) or not np.all(np.isfinite(every) & (every >= 1)):
        raise ValueError(f"log_every {every.tolist()}: give one logging interval (steps per row, >= 1) for all "
                         f"curves or one per curve ({len(sizes)})")
    every = np.broadcast_to(every, (len(sizes),))
    if sum(sizes) != res.size or min(sizes) < 0:
        raise ValueError(f"sizes {sizes} add up to {sum(sizes)}, not the {res.size} residuals; give each curve's rows")
    batch = [max(2, int(INFLATION_BATCH_STEPS / max(1.0, le))) for le in every]
    used = [(seg, b) for seg, b in zip(np.split(res, np.cumsum(sizes)[:-1]), batch) if seg.size >= 3 * b]
    if not used:
        return 1.0
    pooled = np.concatenate([seg for seg, _ in used])
    mean = float(pooled.mean())
    long_run, dof = 0.0, 0.0
    for seg, b in used:
        n = seg.size
        c = np.concatenate(([0.0], np.cumsum(seg - mean)))
        means = (c[b:] - c[:-b]) / b
        d = n / b - 1.0
        long_run += d * n * b / ((n - b) * (n - b + 1)) * float(means @ means)
        dof += d
    var = float(pooled.var(ddof=1))
    return max(1.0, long_run / dof / max(var, 1e-300))


#: Significance level of the lack-of-fit test (:func:`lack_of_fit`): a fit warns where the fitted
#: curves together, or any one of them after a Bonferroni correction for their number, reject
#: "the law plus independent noise" at this level. A warning, not a refusal: under that null the
#: test fires on about 1% of fits (fewer: the fitted parameters absorb part of every block mean,
#: so the statistic is below its chi-square reference).
LACK_OF_FIT_P = 0.01
#: Blocks the lack-of-fit test cuts a curve into (about; at least 5 points each).
LACK_OF_FIT_BLOCKS = 20
#: The noise variance estimated by :func:`noise_level` from n points scatters as a chi-square
#: variance with (n - 1) / SIGMA_DOF_FACTOR degrees of freedom: its relative variance is 6.7 / n
#: (Monte Carlo, 3,000 Gaussian draws each at n = 40, 100, 400 and 1,500: 7.5, 6.8, 6.6, 6.7), against
#: 2 / n for the sample variance (the MAD keeps 37% of the information, and successive differences
#: are correlated). The lack-of-fit test's reference is an F distribution with those degrees of
#: freedom in the denominator, so that a noise level estimated low does not fail a law that fits.
SIGMA_DOF_FACTOR = 3.35


def lack_of_fit(residual: np.ndarray, loss: np.ndarray, step: np.ndarray) -> dict:
    r"""Whether a law misses a fitted curve by more than the curve's noise: the block-mean test.

    Under the null "the curve is the law plus independent noise of standard deviation
    :math:`\sigma`" (:func:`noise_level`, with the rounding of a logged loss,
    :math:`\sigma^2 + q^2/12`, :func:`loss_resolution`), the means :math:`\bar r_j` of the
    residuals over :math:`J` blocks of :math:`m` consecutive points satisfy
    :math:`\chi^2 = m \sum_j \bar r_j^2 / \sigma^2 \sim \chi^2_J` (fewer: the fitted parameters
    absorb part of it, so the test is conservative); with :math:`\sigma` estimated from the same
    points, :math:`\chi^2/J \sim F(J, \nu)`, :math:`\nu` the estimate's degrees of freedom
    (:data:`SIGMA_DOF_FACTOR`). A law whose form does not follow the curve
    leaves a smooth residual, which the block means keep while they average the noise away: a
    misfit of RMS :math:`\delta` adds about :math:`m\delta^2/\sigma^2` per block. So does noise
    slower than the logging interval, and so does a log of a smoothed loss (an exponential moving
    average, whose successive differences understate the noise; its delay then enters the fitted
    kernel), which the residuals' lag-1 correlation points to. Residuals are clipped at
    :math:`3\sigma` first, so that one spike of a real run does not fail the test on its own
    (under the null this lowers the variance by 3%, in the conservative direction).

    Parameters
    ----------
    residual : ndarray
        Prediction minus observed loss at the fitted rows, in step order.
    loss, step : ndarray
        The observed loss and the steps of those rows.

    Returns
    -------
    dict
        ``points`` (n), ``blocks`` (J), ``block_points`` (m), ``chi2_per_block`` (1 under the null), ``p``
        (:math:`P(F_{J,\nu} \ge \chi^2/J)`), ``misfit_rms`` (the law's RMS miss: the block means'
        mean square less the averaged noise's :math:`\sigma^2/m`, 0 where that is negative),
        ``lag1`` (correlation of neighbouring clipped residuals), ``worst_steps`` and
        ``worst_mean`` (the block with the largest mean); ``p`` and the others None where the
        curve has fewer than two blocks or no noise.
    """
    residual = np.asarray(residual, dtype=float)
    n = residual.size
    sigma = float(np.hypot(noise_level(loss), loss_resolution(loss) / np.sqrt(12.0)))
    m = max(5, n // LACK_OF_FIT_BLOCKS)
    nb = n // m
    out = {"points": int(n), "blocks": int(nb), "block_points": int(m), "chi2_per_block": None, "p": None,
           "misfit_rms": None, "lag1": None, "worst_steps": None, "worst_mean": None}
    if nb < 2 or not sigma > 0:
        return out
    clipped = np.clip(residual, -3 * sigma, 3 * sigma)
    bm = clipped[: nb * m].reshape(nb, m).mean(axis=1)
    chi2 = float(m * np.sum(bm ** 2) / sigma ** 2)
    j = int(np.argmax(np.abs(bm)))
    d0, d1 = clipped[:-1] - clipped.mean(), clipped[1:] - clipped.mean()  # clipped too: a spike of two points
    # would otherwise read as correlated noise
    den = float(np.sqrt(np.sum(d0 ** 2) * np.sum(d1 ** 2)))
    out.update(chi2_per_block=chi2 / nb, p=float(stats.f.sf(chi2 / nb, nb, max(1.0, (n - 1) / SIGMA_DOF_FACTOR))),
               misfit_rms=float(np.sqrt(max(0.0, np.mean(bm ** 2) - sigma ** 2 / m))),
               lag1=float(np.sum(d0 * d1) / den) if den > 0 else None,
               worst_steps=[int(step[j * m]), int(step[j * m + m - 1])], worst_mean=float(bm[j]))
    return out


def lack_of_fit_fired(checks: dict) -> bool:
    """Whether :func:`lack_of_fit` rejects the law on the fitted curves (``checks``: per curve, as
    ``FitResult.extra["lack_of_fit"]``): their p-values combined by Fisher's method below
    :data:`LACK_OF_FIT_P`, or any one curve's below it over their number. The fit's warning
    (:func:`_lack_of_fit_note`) follows this rule."""
    done = [v["p"] for v in checks.values() if v["p"] is not None]
    if not done:
        return False
    # Fisher's combination of the curves' own (calibrated) p-values: a sum of their statistics
    # would be referred to a chi-square that ignores each curve's noise-level error again
    pooled = float(stats.combine_pvalues(done, method="fisher")[1])
    return pooled < LACK_OF_FIT_P or any(p < LACK_OF_FIT_P / len(done) for p in done)


def model_error_of(checks: dict) -> float:
    r"""The law's model error from its lack of fit (``checks``: per fitted curve, as
    ``FitResult.extra["lack_of_fit"]``): where :func:`lack_of_fit_fired`, the largest of the fitted
    curves' ``misfit_rms``, the RMS of their block means beyond what their noise explains; 0 where
    the test does not reject the law (its misfit is then not told apart from the noise).

    Stated model: a law that misses the curves it was fitted on by :math:`\delta` RMS misses a
    predicted curve's smoothed loss by a further error of standard deviation :math:`\delta`,
    independent of its parameters' error; the largest fitted curve's, since a held-out schedule
    may be missed as badly as the worst fitted one. The test's blocks are a twentieth of a curve
    (:data:`LACK_OF_FIT_BLOCKS`), the window of the final loss (the last 5%), so where the miss is
    alike along a curve this is the standard deviation of a final loss's miss too. It is a floor,
    not the whole of it: a prediction beyond the fitted curves (another schedule's shape) may miss
    by more, which no test on the fitted curves can see.

    The whole curve's miss, not its second half's (where a final loss lies): measured both ways,
    the second half's bands held fewer of the trained family's held-out final losses (single
    cosine: RMS z 1.96 against 1.45) and came closer on the 210M runs, whose miss is mostly in
    their steep start (1.18 against 0.63); a band too wide is the safer error
    (``benchmarks/RESULTS.md``)."""
    if not lack_of_fit_fired(checks):
        return 0.0
    return float(max((v["misfit_rms"] for v in checks.values() if v.get("misfit_rms") is not None), default=0.0))


def model_error(result: FitResult) -> float:
    """:func:`model_error_of` the fit's own lack-of-fit checks: the standard deviation that
    :func:`predict_sd` adds to every prediction for the law's miss of its fitted curves."""
    return model_error_of(result.extra.get("lack_of_fit") or {})


def _lack_of_fit_note(label: str, checks: dict) -> str | None:
    """The fit's warning where :func:`lack_of_fit` rejects the law on the fitted curves (their p-values
    combined by Fisher's method, or any one curve at :data:`LACK_OF_FIT_P` over their number); None
    where it does not."""
    if not lack_of_fit_fired(checks):
        return None
    done = {k: v for k, v in checks.items() if v["p"] is not None}
    pooled = float(stats.combine_pvalues([v["p"] for v in done.values()], method="fisher")[1])
    name = max(done, key=lambda k: done[k]["chi2_per_block"])
    v = done[name]
    lag = "" if v["lag1"] is None else f", neighbouring residuals correlate at {v['lag1']:+.2f}"
    return (f"{label}: the law misses the fitted curves by more than their noise (block means of the residuals "
            f"{v['chi2_per_block']:.3g} times the variance independent noise allows on {name}, p = {v['p']:.2g}; "
            f"combined over the fitted curves p = {pooled:.2g}): the law misses it by {v['misfit_rms']:.3g} RMS "
            f"beyond the noise, worst at steps {v['worst_steps'][0]}-{v['worst_steps'][1]} "
            f"({v['worst_mean']:+.3g}){lag}. The law's form does not "
            f"follow these curves there (a steep start: raise --skip-steps), or the noise is slower than the logging "
            f"interval, or the log is of a smoothed loss (an exponential moving average or a running mean: its delay "
            f"is then fitted as part of the kernel; log the raw loss, or declare the average with --log-ema BETA or "
            f"--log-running-mean PERIOD). The prediction bands add the largest such miss of a fitted curve "
            f"({model_error_of(checks):.3g}) as the law's model error; a prediction beyond the fitted curves may miss "
            f"by more")


#: Lag-1 correlation of a fitted curve's residuals below which they alternate from point to point
#: (also at least :data:`ALTERNATING_Z` standard errors :math:`1/\sqrt n` below 0). Independent
#: noise gives 0 (the shared runs: -0.05 to +0.01); a log that was not a moving average, turned back
#: by ``--log-ema`` as if it were, gives :math:`-b/(1+b^2)` with :math:`b = \beta^{\Delta}` the
#: average's decay over a logging interval: -0.50 at b = 0.9, -0.28 at b = 0.3; by
#: ``--log-running-mean``, about -0.5 once the mean holds many intervals.
ALTERNATING_LAG1 = -0.25
ALTERNATING_Z = 4.0


def _alternating_note(label: str, checks: dict) -> str | None:
    """The fit's warning where a fitted curve's residuals alternate from point to point (lag-1
    correlation below :data:`ALTERNATING_LAG1`, significantly): noise that independent logs do not
    have, and the block-mean test cannot see (alternating noise averages out in a block)."""
    bad = {k: v["lag1"] for k, v in checks.items()
           if v["lag1"] is not None and v["lag1"] < ALTERNATING_LAG1 and v["lag1"] * np.sqrt(v["points"]) < -ALTERNATING_Z}
    if not bad:
        return None
    return (f"{label}: the residuals of {', '.join(f'{k} ({r:+.2f})' for k, r in bad.items())} alternate from one "
            f"logged point to the next (lag-1 correlation): independent noise has none. A log that was not an "
            f"average but is read as one (--log-ema, --log-running-mean) has it: the unsmoothing then amplifies the "
            f"noise; leave the option out for such a log, or give the decay or reset period it was averaged with")


def schedule_reach(curve: LossCurve) -> tuple[float, float, float]:
    r"""How far a curve's schedule reaches, in the ways a prediction can go beyond its fitted
    curves: the depth of its decay after the peak, as a fraction of the peak (0: constant, 1: to 0),
    its learning-rate area :math:`\sum_{k < t_{last}} \eta_k` (absolute units), and how much its
    rate rises again after the warmup (restarts, rewarming: the sum of the rises after
    :func:`~sde_scales.fitting.curves.warmup_end`, as a fraction of the rate the warmup reached).
    All from the rates of the steps before the last logged one: the rate at the last step moves no
    logged loss."""
    lr = curve.per_step_lr()[: int(curve.step[-1])]
    area = float(lr.sum())
    if lr.size == 0 or lr.max() <= 0:
        return 0.0, area, 0.0
    k = int(np.argmax(lr))
    w = warmup_end(lr)
    rise = float(np.sum(np.maximum(np.diff(lr[w - 1:]), 0.0)) / lr[w - 1]) if 0 < w < lr.size else 0.0
    return float(1.0 - lr[k:].min() / lr[k]), area, rise


def start_area(curve: LossCurve, skip_steps: int = 0) -> float | None:
    r"""The learning-rate area :math:`\sum_{k < s_0} \eta_k` (absolute units) before the curve's first
    logged step :math:`s_0` at or after ``skip_steps``: where its fitted or scored points begin, in
    the clock of the power term. None if no logged step is that late."""
    k = np.flatnonzero(curve.step >= skip_steps)
    if k.size == 0:
        return None
    return float(curve.per_step_lr()[: int(curve.step[k[0]])].sum())


def fall_window(curves: list[LossCurve]) -> int:
    """The window, in steps, over which :func:`fastest_fall` measures how fast a schedule drops:
    :data:`FALL_WINDOW_FRACTION` of the longest of ``curves`` (the fitted ones), at least one step;
    the same number of steps for the fitted and the predicted curves, since a law's response to a
    drop runs in steps (or in the area they carry), not in fractions of a run."""
    return max(1, int(round(FALL_WINDOW_FRACTION * max(int(c.step[-1]) for c in curves))))


def fastest_fall(curve: LossCurve, window: int) -> float:
    r"""The largest fall of the curve's learning rate within ``window`` steps, as a fraction of its
    peak: :math:`\max_k (\eta_k - \min_{k \le j \le k+w} \eta_j) / \max \eta` over the steps before
    its last logged one (0 for a schedule that never falls; its decay depth where the curve is
    shorter than the window). A cosine over 50,000 steps falls by 0.07 of its peak within 2,500
    steps, a linear cooldown over the last 20% of them by 0.25, over the last 10% by 0.5, a step
    decay by its whole drop. O(steps) whatever the window (a running minimum)."""
    lr = curve.per_step_lr()[: int(curve.step[-1])]
    if lr.size < 2 or lr.max() <= 0:
        return 0.0
    w = min(int(window), lr.size - 1)
    ahead = ndimage.minimum_filter1d(lr, size=w + 1, origin=-((w + 1) // 2), mode="nearest")  # min of lr[k..k+w]
    return float(np.max(lr - ahead) / lr.max())


#: :func:`fall_window`'s fraction of the longest fitted curve: the window of the final loss (the
#: last 5% of a run), so that a fitted cosine and a predicted cooldown are compared over the span
#: a final loss averages.
FALL_WINDOW_FRACTION = 0.05
#: A predicted schedule that decays deeper than every fitted one by more than this fraction of its
#: peak, or whose rate rises again after its warmup by more than this fraction beyond every fitted
#: one's rises, or falls faster (:func:`fastest_fall`) than every fitted one by more than it, is an
#: extrapolation of the drop response.
DEPTH_MARGIN = 0.25


def _ratio_text(r: float) -> str:
    """A ratio as the warnings print it: one decimal (2.4), or three significant digits where that
    would print hundreds of digits (a file in other units: 1.82e+303)."""
    return f"{r:.1f}" if r < 1e6 else f"{r:.3g}"


#: A predicted schedule whose learning-rate area (the sum of its rates up to its last logged step)
#: is more than this many times every fitted curve's reads the power term
#: :math:`L_0 + A S^{-\alpha}` beyond the areas it was fitted on. Within a doubling the fitted
#: curvature of the loss against log-area carries it; beyond, the split between :math:`L_0` and the
#: power law that the fitted curves could not fix decides it (one cosine run fitted alone left
#: :math:`L_0` near 0 on a family whose floor is 2; ``benchmarks/RESULTS.md``). The shared
#: protocols stay inside it: a WSD run has about 1.6 times a cosine run's area.
AREA_FACTOR = 2.0



def extrapolations(result: FitResult, curve: LossCurve) -> list[str]:
    """How a prediction of ``curve`` from ``result`` goes beyond the fitted curves, one message each
    (empty where it does not): another peak rate, a deeper or faster decay (:data:`DEPTH_MARGIN`,
    :func:`fastest_fall`), rises after the warmup, a learning-rate area beyond theirs or, from
    ``skip_steps`` on, before theirs (:data:`AREA_FACTOR`). :func:`predict` warns them;
    ``fit-delay`` lists the curves in its checks, and the held-out protocols in each split."""
    out = []
    # relative only: np.isclose's absolute 1e-8 would call peaks of 1e-9 and 5e-9 the same
    if not any(np.isclose(curve.peak_lr, p, rtol=0.05, atol=0.0) for p in result.peaks):
        out.append(f"{curve.name}: peak learning rate {curve.peak_lr:g} differs from every fitted curve's "
                   f"({', '.join(f'{p:g}' for p in result.peaks)}); laws extrapolate poorly across peak learning rates")
    depths, areas = result.extra.get("decay_depths"), result.extra.get("areas")
    rises = result.extra.get("rises")
    d, a, up = schedule_reach(curve) if depths or areas or rises else (0.0, 0.0, 0.0)
    if rises and up > max(rises) + DEPTH_MARGIN:
        out.append(f"{curve.name}: its learning rate rises again after its warmup (restarts or rewarming) by "
                   f"{up:.0%} of its peak in all, more than any fitted curve's ({max(rises):.0%}): the response "
                   f"to a rise is the law's mirror image of its response to a drop, not a fit; fit a curve "
                   f"with such a rise")
    if depths and d > max(depths) + DEPTH_MARGIN:
        out.append(f"{curve.name}: its learning rate falls to {1 - d:.0%} of its peak, deeper than any fitted "
                   f"curve's (the deepest falls to {1 - max(depths):.0%} of its peak): the prediction extrapolates the "
                   f"drop response beyond the data; fit a curve that decays as far")
    falls, window = result.extra.get("falls"), result.extra.get("fall_window")
    speed = fastest_fall(curve, window) if falls and window else 0.0
    if falls and speed > max(falls) + DEPTH_MARGIN:
        out.append(f"{curve.name}: its learning rate falls by {speed:.0%} of its peak within {window} steps, faster "
                   f"than any fitted curve's (at most {max(falls):.0%} within as many steps): the response to a drop "
                   f"that fast depends on the kernel at lags the fitted curves did not probe, where laws that fit "
                   f"them equally well differ most; fit a curve with as fast a drop, or compare the laws' predictions "
                   f"(--compare, --law auto)")
    if areas and max(areas) > 0 and a > AREA_FACTOR * max(areas):
        out.append(f"{curve.name}: its learning-rate area (the sum of its rates, {a:.4g}) is {_ratio_text(a / max(areas))} "
                   f"times the largest fitted curve's: the prediction extrapolates the power term beyond the "
                   f"areas it was fitted on, where the fitted curves may not fix the loss's floor; fit a run as "
                   f"long (or as large a rate)")
    fitted_starts = [x for x in result.extra.get("start_areas") or [] if x is not None]
    begins = start_area(curve, result.skip_steps) if fitted_starts and min(fitted_starts) > 0 else None
    if begins is not None and begins * AREA_FACTOR < min(fitted_starts):
        out.append(f"{curve.name}: its first point from step {result.skip_steps} on (the fit's --skip-steps) comes "
                   f"after a learning-rate area of {begins:.4g}, under 1/{AREA_FACTOR:g} of every fitted curve's "
                   f"first fitted point ({min(fitted_starts):.4g}): the prediction there reads the power term back "
                   f"to areas it was not fitted on (a fitted log that starts late, or a smaller rate early on); "
                   f"fit a curve that starts as early, or score the prediction from a later step")
    return out


#: Fitted curves whose numbers of fitted points differ by more than this factor get a note
#: (:func:`_weight_note`): least squares over pooled points weighs each curve by its points.
POINTS_RATIO_NOTE = 10.0


def _weight_note(label: str, curves: list[LossCurve], ys: list[np.ndarray]) -> str | None:
    r"""The note on a joint fit whose curves hold very different numbers of fitted points.

    The fit minimises :math:`\sum_c \sum_{i \in c} \rho(r_{ci})` over every point of every curve:
    the likelihood of independent, equal per-point noise, under which a curve logged 100 times more
    densely is 100 times more informative. Where the law does not follow every curve exactly (a
    form that misses one schedule, correlated noise), the parameters settle where the densest curve
    wants them. Said where the largest count exceeds the smallest by :data:`POINTS_RATIO_NOTE`;
    None otherwise."""
    if len(curves) < 2:
        return None
    n = np.array([v.size for v in ys])
    big, small = int(np.argmax(n)), int(np.argmin(n))
    if n[big] <= POINTS_RATIO_NOTE * max(n[small], 1):
        return None
    return (f"{label}: the fit weighs every fitted point alike, and {curves[big].name} holds {n[big]:,} of the "
            f"{n.sum():,} ({n[big] / n.sum():.0%}), {n[big] / max(n[small], 1):.0f} times as many as "
            f"{curves[small].name} ({n[small]:,}): where the law cannot follow both, the parameters follow "
            f"{curves[big].name}. To weigh the curves alike, log them at comparable intervals (e.g. keep every "
            f"k-th row of the denser one)")


def fit_warnings(result: FitResult) -> list[str]:
    """Every warning of a fit, as text: its notes (``extra["warnings"]``: parameters on bounds,
    lack of fit, ...) and the time scale's interval warning (``extra["time_scale_interval"]``),
    which the fit issues as an :class:`IdentifiabilityWarning` and keeps apart."""
    ts = result.extra.get("time_scale_interval") or {}
    return list(result.extra.get("warnings", [])) + ([ts["warning"]] if ts.get("warning") else [])


def _check_result(result) -> None:
    """A fitted law, by name: a bare law (``predict(MomentumLaw(), curve)``) ended in an
    AttributeError about ``peaks``."""
    if isinstance(result, FitResult):
        return
    from sde_scales.fitting.average import AveragedFit  # here: fitting.average imports this module

    if isinstance(result, AveragedFit):  # --law auto's mean of laws
        raise InvalidArgumentError("result is an AveragedFit (the mean of several laws); call its own "
                                   "result.predict(curve) and result.predict_sd(curve)")
    raise InvalidArgumentError(f"result is a {type(result).__name__}; give the FitResult of fit(law, curves) "
                               f"(e.g. r = fit(MomentumLaw(), curves); predict(r, curve))")


def predict(result: FitResult, curve: LossCurve, rows: np.ndarray | None = None) -> np.ndarray:
    """The law's loss at every row of ``curve`` (or at ``rows``), from its learning-rate column alone;
    each of :func:`extrapolations` is warned (:class:`PeakLRWarning`). NaN at rows logged before
    any update (the initial loss, :meth:`LossCurve.untrained_rows`), where no law has a value."""
    _check_result(result)
    if not isinstance(curve, LossCurve):
        raise InvalidArgumentError(f"curve is a {type(curve).__name__}; give a LossCurve (load_curve(path) reads a file)")
    # as row numbers: a boolean mask or a negative index would be misplaced against untrained_rows below
    rows = np.arange(curve.step.size) if rows is None else np.arange(curve.step.size)[rows]
    if curve.peak_lr <= 0:
        raise InvalidArgumentError(f"{curve.source}: the learning rate is 0 at every step; a schedule of zeros has no "
                                   f"loss curve to predict (check the lr column)")
    for msg in extrapolations(result, curve):
        warnings.warn(msg, PeakLRWarning, stacklevel=2)
    f = ScheduleFeatures.build(curve, curve.step[rows], result.lr_scale,
                               bin_steps=curve.drop_bin_steps(result.bin_steps_factor),
                               from_step=first_trained_step(curve, result.skip_steps))
    out = result.law.predict(result.theta, f)
    return np.where(rows < curve.untrained_rows(), np.nan, out)


#: Window of the moving average the metrics compare predictions with, unless a curve is short.
SMOOTH_STEPS = 1000
#: ...which is then this fraction of the shortest curve's length: a window over much of a curve
#: averages its shape away (over a whole curve it is one number), and every law's RMSE measures
#: the window instead.
SMOOTH_FRACTION = 0.05
#: A window over more than this fraction of a curve gets a warning (``--smooth-steps``).
SMOOTH_WARN_FRACTION = 0.25


def default_smooth_steps(curves: list[LossCurve]) -> int:
    """The metrics' moving-average window for ``curves``: :data:`SMOOTH_STEPS`, or
    :data:`SMOOTH_FRACTION` of the shortest curve's span of steps where that is shorter, and at
    least three logging intervals of that curve (a window of one point is the raw loss)."""
    if not curves:
        return SMOOTH_STEPS
    short = min(curves, key=lambda c: int(c.step[-1] - c.step[0]))
    span = int(short.step[-1] - short.step[0])
    return int(min(SMOOTH_STEPS, max(round(SMOOTH_FRACTION * span), 3 * short.log_every)))


def long_window_curves(curves: list[LossCurve], smooth_steps: int) -> list[str]:
    """Names of the curves over more than :data:`SMOOTH_WARN_FRACTION` of whose span of steps a
    ``smooth_steps`` window reaches."""
    return [c.name for c in curves if smooth_steps > SMOOTH_WARN_FRACTION * max(int(c.step[-1] - c.step[0]), 1)]


def long_window_note(names: list[str], smooth_steps: int) -> str:
    """What a window of ``smooth_steps`` over more than :data:`SMOOTH_WARN_FRACTION` of the curves
    ``names`` does to the metrics (:func:`long_window_curves`): said by :func:`score` and by
    ``fit-delay``."""
    return (f"the metrics' {smooth_steps}-step moving average spans more than {SMOOTH_WARN_FRACTION:.0%} of "
            f"{', '.join(names)}: it averages the curve's shape away, and the RMSE and R2 against it measure the "
            f"window, not the law; give a shorter window (smooth_steps, --smooth-steps; the default is "
            f"{SMOOTH_FRACTION:.0%} of the shortest curve where that is below {SMOOTH_STEPS} steps)")


def final_rows(n_rows: int) -> int:
    """How many of a curve's last rows its final loss averages: 5% of them, at least one."""
    return max(1, int(round(0.05 * n_rows)))


def loss_resolution(loss: np.ndarray) -> float:
    r"""Spacing :math:`q` of the lattice a curve's logged losses lie on, 0 where they lie on none.

    A loss printed with :math:`d` decimals lies on multiples of :math:`10^{-d}`; one logged in
    bfloat16 on multiples of :math:`2^{-7}` to :math:`2^{-5}` between 1 and 8. The spacing is the
    smallest gap between the curve's distinct values, accepted when every gap is a whole multiple
    of it (to 1e-3 of it: decimal spacings read into binary floats are off by about 1e-13 of
    themselves, while the gaps of unrounded values are not multiples of their smallest one). A
    loss that falls through several binary ranges has its finest spacing in the lowest, where its
    final loss is. Fewer than three distinct values: 0 (no lattice can be told)."""
    u = np.unique(np.asarray(loss, dtype=float)[np.isfinite(loss)])
    if u.size < 3:
        return 0.0
    g = np.diff(u)
    q = float(g.min())
    k = g / q
    return q if float(np.max(np.abs(k - np.rint(k)))) <= 1e-3 else 0.0


def final_loss_noise(loss: np.ndarray) -> float | None:
    r"""Standard error of a curve's observed final loss (the mean of its last :func:`final_rows`
    points); None with fewer than three of them.

    Model (stated): independent noise of :func:`noise_level` :math:`\sigma` per point, and a
    loss logged on a lattice of spacing :math:`q` (:func:`loss_resolution`). Where
    :math:`\sigma \gg q` the rounding is part of the noise and averages out; where the noise is
    below the spacing (a quantised, flat tail: every last value the same) the rounding error of
    the mean does not average out and is up to :math:`q/2`, uniform: standard deviation
    :math:`q/\sqrt{12}`. The standard error is the larger of the two,
    :math:`\max(\sigma/\sqrt{n}, q/\sqrt{12})`; without the second a flat, rounded tail had a
    standard error of 0, which made every difference between two predicted final losses look
    decided."""
    loss = np.asarray(loss, dtype=float)
    n_last = final_rows(loss.size)
    if n_last < 3:
        return None
    return float(max(noise_level(loss[-n_last:]) / np.sqrt(n_last), loss_resolution(loss) / np.sqrt(12.0)))


def predict_sd(result: FitResult, curve: LossCurve, model: bool = True) -> tuple[np.ndarray, float]:
    r"""Standard deviation of :func:`predict` at every row of ``curve`` and of the predicted final
    loss (the mean over its last 5% of rows): from the fit's parameter covariance (the delta method
    of :mod:`sde_scales.fitting.bands`, parameter uncertainty given the law) and, where the law
    misses its own fitted curves by more than their noise, that miss (:func:`model_error`,
    :math:`\delta`) in quadrature, :math:`(\sigma_\theta^2 + \delta^2)^{1/2}`. NaN where the
    fitted curves do not determine the prediction; conditional on the parameters on a bound
    (``result.extra["covariance"].conditional_on``); ``model=False`` gives the parameters' part
    alone."""
    G, cov = prediction_gradient(result, curve)
    with one_blas_thread():  # as in fit(): the same band whatever the thread count
        n_last = final_rows(curve.step.size)
        rows, final = cov.sd(G), float(cov.sd(G[-n_last:].mean(axis=0, keepdims=True))[0])
        rows[:curve.untrained_rows()] = np.nan  # no prediction there (predict)
    d = model_error(result) if model else 0.0
    return (np.hypot(rows, d), float(np.hypot(final, d))) if d > 0 else (rows, final)


def prediction_gradient(result: FitResult, curve: LossCurve):
    """The gradient of :func:`predict` at every row of ``curve`` with respect to all of the law's
    parameters (shape (rows, parameters)), and the fit's parameter covariance
    (:mod:`sde_scales.fitting.bands`) that turns it into a band: what :func:`predict_sd` uses, and
    what the difference of two predictions from one fit needs (their errors share the parameters)."""
    _check_result(result)
    cov = result.extra.get("covariance")
    if cov is None:
        raise InvalidArgumentError("this FitResult has no covariance (it was not made by fit()); refit it")
    f = ScheduleFeatures.build(curve, curve.step, result.lr_scale,
                               bin_steps=curve.drop_bin_steps(result.bin_steps_factor),
                               from_step=first_trained_step(curve, result.skip_steps))
    with one_blas_thread():
        return law_gradient(result.law, result.theta, f, cov.lo, cov.hi), cov


def score_prediction(result: FitResult, curve: LossCurve, *, skip_steps: int = 0,
                     smooth_steps: int | None = None) -> dict:
    """:func:`score` of ``result``'s prediction of ``curve``, with the predicted final loss's band
    (:func:`predict_sd`): the metrics of a held-out curve in one call. ``smooth_steps``: as for
    :func:`score` (default: :func:`default_smooth_steps` of the curve)."""
    return score(curve, predict(result, curve), skip_steps=skip_steps, smooth_steps=smooth_steps,
                 final_pred_sd=predict_sd(result, curve)[1])


def shared_noise_offset(result: FitResult, references: list[LossCurve], curve: LossCurve,
                        smooth_steps: int = 1000) -> np.ndarray:
    """Optional correction for the batch noise shared by runs with the same data order.

    Model (stated): at every step the shared part of the loss noise is the residual of a fitted
    reference run around the law, smoothed over ``smooth_steps``, and it changes linearly with the
    learning rate at that step. With one reference the offset is its residual; with two or more it
    is the least-squares line through the references' (learning rate, residual) pairs at that step,
    evaluated at ``curve``'s learning rate (the mean residual where the references' learning rates
    agree within 10% of the peak). Only the references (fitted runs) are used, never the curve
    being predicted. Measured on the 124M runs: at the last steps the constant run's residual is
    about twice the cosine run's, so a purely additive offset over-corrects low-learning-rate
    endings.
    """
    if not references:
        raise InvalidArgumentError("shared_noise_offset needs at least one reference curve")
    R, E = [], []
    for ref in references:
        res = ref.averaged(ref.loss - predict(result, ref), smooth_steps)
        u = ref.untrained_rows()  # no residual at the initial loss
        R.append(np.interp(curve.step, ref.step[u:], res[u:]))
        E.append(np.interp(curve.step, ref.step, ref.lr))
    R, E = np.array(R), np.array(E)
    if len(references) == 1:
        return R[0]
    ep = curve.lr
    em, rm = E.mean(axis=0), R.mean(axis=0)
    var = ((E - em) ** 2).sum(axis=0)
    cov = ((E - em) * (R - rm)).sum(axis=0)
    spread = E.max(axis=0) - E.min(axis=0)
    slope = np.where(spread > 0.1 * max(result.peaks), cov / np.where(var > 0, var, 1.0), 0.0)
    return rm + slope * (ep - em)


def _trained_from(curve: LossCurve, skip: int, warn: bool = True) -> np.ndarray:
    """Rows at or after step ``skip`` that were logged after an update (not the initial loss:
    :meth:`LossCurve.untrained_rows`), which a fit takes and a metric scores; with ``warn``, the
    initial loss is warned of (:class:`InitialLossWarning`) where ``skip`` does not leave it out."""
    keep = curve.step >= skip
    note = curve.initial_loss_note(skip) if warn else None
    if note is not None:
        warnings.warn(note, InitialLossWarning, stacklevel=3)
    keep[:curve.untrained_rows()] = False
    return keep


def first_trained_step(curve: LossCurve, skip: int) -> int:
    """Where a curve's judged part begins: ``skip``, or the first row after the initial loss."""
    u = curve.untrained_rows()
    return max(int(skip), int(curve.step[u])) if u < curve.step.size else int(skip)


def scored_rows(curve: LossCurve, skip_steps: int) -> np.ndarray:
    """The rows a metric scores: those at or after ``skip_steps``, less the initial loss
    (:meth:`LossCurve.untrained_rows`); refused where there are none."""
    keep = _trained_from(curve, skip_steps, warn=False)  # said where it is fitted (and in its docstring here)
    if curve.untrained_rows() == curve.step.size:
        raise InvalidArgumentError(f"{curve.name}: every row of {curve.source} is logged before any update with a "
                                   f"positive learning rate (the rate is 0 up to step {int(curve.step[-1])}): no "
                                   f"trained row to score; check the lr column")
    if not keep.any():
        raise InvalidArgumentError(f"skip_steps={skip_steps} leaves no row of {curve.name} after its first update (last "
                                   f"step {int(curve.step[-1])}, {curve.untrained_rows()} row(s) before any update); "
                                   f"give a smaller skip_steps")
    return keep


def _rms(x: np.ndarray) -> float:
    """Root mean square, scaled by the largest magnitude first, so that errors beyond 1e154 (a
    prediction of 1e200 a user scores) give their RMS, not the infinity of their squares."""
    x = np.asarray(x, dtype=float)
    m = float(np.max(np.abs(x))) if x.size else 0.0
    return 0.0 if m == 0 else float(m * np.sqrt(np.mean((x / m) ** 2)))


def _r2(rms_err: float, rms_target: float) -> float | None:
    """1 - (rms_err / rms_target)^2; None where the target does not vary (a window as long as the
    curve: no variance to explain); -inf where the ratio's square overflows (errors 1e154 times the
    target's spread), which the JSON writes as null."""
    if not rms_target > 0:
        return None
    ratio = rms_err / rms_target
    return float(1 - ratio * ratio) if ratio < 1e150 else float("-inf")


def score(curve: LossCurve, pred: np.ndarray, *, skip_steps: int = 0, smooth_steps: int | None = None,
          offset: np.ndarray | None = None, final_pred_sd: float | None = None) -> dict:
    r"""Metrics of a prediction (one value per row of ``curve``); see the module docstring.

    ``smooth_steps``: the window of the centred moving average the RMSE compares with; default
    :func:`default_smooth_steps` of ``curve`` (1,000 steps, or 5% of a shorter curve), what
    ``fit-delay`` uses. A window given over more than :data:`SMOOTH_WARN_FRACTION` of the curve
    warns (:class:`WindowWarning`): the metrics then measure the window.

    With ``final_pred_sd`` (the predicted final loss's standard deviation, :func:`predict_sd`) the
    metrics add ``final_loss_pred_sd`` and ``final_err_z``: the final error over
    :math:`(\sigma_{pred}^2 + \sigma_{obs}^2)^{1/2}`, the two standard deviations of the fit's
    parameters and of the observed final loss. Under the law and the noise model it is about
    standard normal; far outside (say beyond 3) the law misses by more than the noise explains.
    None where either is unknown. A prediction that is not finite at some row is refused
    (:class:`~sde_scales.errors.InvalidArgumentError` naming the row): no metric exists then. Rows
    logged before any update (the initial loss) are not scored and may hold NaN, as :func:`predict`
    gives there."""
    if not isinstance(curve, LossCurve):
        raise InvalidArgumentError(f"curve is a {type(curve).__name__}; give the LossCurve the prediction is of "
                                   f"(score(curve, predict(result, curve)))")
    try:
        pred = np.asarray(pred, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"pred is not an array of numbers ({exc}); give one predicted loss per row of "
                                   f"{curve.name}") from None
    if pred.shape != curve.loss.shape:
        raise InvalidArgumentError(f"predictions of shape {pred.shape} for the {curve.loss.size} rows of {curve.name}; "
                                   f"give one predicted loss per row (a 1-d array)")
    u = curve.untrained_rows()  # the initial loss is not scored: predict gives NaN there
    bad = np.flatnonzero(~np.isfinite(pred[u:])) + u
    if bad.size:
        # NaN metrics (null in the JSON) would read as "not computed", not as a law that failed
        raise InvalidArgumentError(f"the prediction of {curve.name} is not finite at {bad.size} row(s), the first "
                                   f"row {bad[0]} (step {int(curve.step[bad[0]])}, value {pred[bad[0]]}): the law "
                                   f"overflowed or was given a non-finite parameter; no metric can be computed")
    if smooth_steps is None:
        smooth_steps = default_smooth_steps([curve])
    elif not smooth_steps >= 1:
        raise InvalidArgumentError(f"smooth_steps={smooth_steps}; the moving average's window is at least 1 step")
    elif long_window_curves([curve], smooth_steps):
        warnings.warn(long_window_note([curve.name], smooth_steps), WindowWarning, stacklevel=2)
    _whole(skip_steps, "skip_steps", 0)  # -1 scored every row, as 0 does, in silence
    if offset is not None:
        pred = pred + offset
    keep = scored_rows(curve, skip_steps)
    target = curve.smoothed(smooth_steps)
    lo, hi = curve.window_rows(smooth_steps)
    n_w = (hi - lo)[keep]  # points in each scored row's window
    bend = (pred - curve.averaged(pred, smooth_steps))[keep]  # the prediction minus its own moving average
    e = (pred - target)[keep]
    t = target[keep]
    n_last = final_rows(curve.step.size)
    cool = curve.cooldown_mask() & keep
    rms_t = _rms(t - t.mean())
    out = {
        "file": curve.name,
        "r2": _r2(_rms(e), rms_t),
        "mae": float(np.mean(np.abs(e))),
        "rmse": _rms(e),
        "max_abs_err": float(np.max(np.abs(e))),
        "final_loss_err": float(np.mean(pred[-n_last:]) - np.mean(curve.loss[-n_last:])),
        "final_loss_noise": final_loss_noise(curve.loss),
        "cooldown_rmse": _rms((pred - target)[cool]) if cool.any() else None,
        "stable_rmse": _rms((pred - target)[keep & ~cool]) if (keep & ~cool).any() else None,
        "rmse_raw": _rms((pred - curve.loss)[keep]),
        "target_noise_rmse": float(noise_level(curve.loss) * np.sqrt(np.mean(1.0 / n_w))),
        "target_bias_rmse": _rms(bend),
        "n_points": int(keep.sum()),
        "target": f"centred moving average over {smooth_steps} steps",
    }
    if final_pred_sd is not None:
        sd = float(final_pred_sd) if np.isfinite(final_pred_sd) else None
        obs = out["final_loss_noise"]
        out["final_loss_pred_sd"] = sd
        tot = None if sd is None or obs is None else float(np.hypot(sd, obs))
        # a standard deviation at float rounding of the loss (a constant loss, fitted exactly) is no
        # standard deviation: z would be rounding over rounding (it printed -14.91)
        floor = 1e-9 * float(np.max(np.abs(curve.loss)))
        out["final_err_z"] = out["final_loss_err"] / tot if tot and tot > floor else None
    return out


def time_scale_profile(curves: list[LossCurve], *, time: str = "area", skip_steps: int = 0,
                       grid: np.ndarray | None = None, bin_factor: int = 4,
                       max_evaluations: int | None = None) -> dict:
    """Profile of the joint fit over an exponential kernel's time scale; see the module docstring.

    ``max_evaluations``: the optimiser's limit for each profile point's fit (default
    :data:`MAX_NFEV`). A point whose fit stopped at the limit has a profile cost that may lie above
    the true minimum at that time scale, so the interval may be too narrow there: such points are
    listed (``unconverged``, time scales) and warned, never dropped silently."""
    limit = evaluation_limit(max_evaluations)
    grid = np.geomspace(10.0, 1e5, 17) if grid is None else np.asarray(grid, dtype=float)
    law = KernelLaw(kernel="exp", time=time)
    sse, unconverged = [], []
    best_cost, res = np.inf, None  # residuals of the best-fitting time scale
    rows = [scored_rows(c, skip_steps) for c in curves]  # the same at every time scale
    for tau in grid:
        with warnings.catch_warnings():
            # each point's own limit warning is summed up in one below
            warnings.filterwarnings("ignore", message=".*stopped at its limit of")
            r = fit(law, curves, skip_steps=skip_steps, bin_factor=bin_factor, n_starts=1,
                    fixed={"log10_tau": np.log10(tau)}, max_evaluations=limit)
        if not r.extra["converged"]:
            unconverged.append(float(tau))
        rs = np.concatenate([(c.loss - predict(r, c))[keep] for c, keep in zip(curves, rows)])
        sse.append(float(np.sum(rs**2)))
        if r.cost <= best_cost:
            best_cost, res = r.cost, rs
    sse = np.array(sse)
    n = res.size
    n_eff = n / autocorrelation_inflation(res, [c.log_every for c in curves],
                                          [int(keep.sum()) for keep in rows])
    thresh = sse.min() * (1 + stats.chi2.ppf(0.95, 1) / n_eff)
    idx = np.flatnonzero(sse <= thresh)
    # the true edges lie between grid points: widen to the first grid point outside on each side
    lo_, hi_ = float(grid[max(idx.min() - 1, 0)]), float(grid[min(idx.max() + 1, grid.size - 1)])
    k = int(np.argmin(sse))
    warn = None
    if hi_ / lo_ > 10 or lo_ <= grid[0] or hi_ >= grid[-1]:
        warn = (f"the response time scale is not pinned down by these curves: 95% profile interval "
                f"[{lo_:.3g}, {hi_:.3g}] ({time}); add a run with sharp learning-rate drops (e.g. 8-1-1 or a short WSD cooldown)")
        warnings.warn(warn, IdentifiabilityWarning, stacklevel=2)
    limit_warn = None
    if unconverged:
        limit_warn = (f"{len(unconverged)} of {grid.size} profile fits stopped at the optimiser's evaluation limit "
                      f"({limit}; --max-evaluations) at time scales {', '.join(f'{t:.3g}' for t in unconverged)}: "
                      f"their profile costs may be too high, so the interval may be too narrow there")
        warnings.warn(limit_warn, IdentifiabilityWarning, stacklevel=2)
    return {"grid": grid.tolist(), "sse": sse.tolist(), "best": float(grid[k]), "interval": [lo_, hi_],
            "n_eff": float(n_eff), "time": time, "warning": warn, "unconverged": unconverged,
            "max_evaluations": limit, "limit_warning": limit_warn}
