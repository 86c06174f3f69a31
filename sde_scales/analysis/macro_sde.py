r"""A macro-variable's SDE calibrated on a seed ensemble, simulated with the engine, and held
against seeds and widths it never saw.

Model (per width): the seeds' values :math:`X^s(t)` of a macro-variable (the evaluation loss)
follow a linear SDE around their mean path,

.. math::

    dX_t = \big[m'(t) - \kappa(t)\,(X_t - m(t))\big]\,dt + \sigma(t)\,dW_t,

with :math:`m` the seed-mean path (piecewise linear between logged times) and :math:`\kappa,
\sigma` constant on each of a few time bins. A positive :math:`\kappa` is the contraction of the
seeds towards each other that training produces; :math:`\sigma` the noise SGD keeps injecting.

Estimators (per bin :math:`b`, logged interval :math:`h`, :math:`S` seeds, centred values
:math:`Y = X - \bar X` over the seeds at each time), from the exact transition of the linear SDE
over one interval, :math:`Y_{i+1} = a\,Y_i + \varepsilon_i` with :math:`a = e^{-\kappa h}` and
:math:`\operatorname{Var}\varepsilon = \sigma^2 (1 - e^{-2\kappa h})/(2\kappa)`:

* :math:`\hat a_b = \sum_{s,i} Y^s_{i+1} Y^s_i / \sum_{s,i} (Y^s_i)^2` (least squares, the
  Gaussian maximum-likelihood estimate), :math:`\hat\kappa_b = -\ln\hat a_b / h`;
* :math:`\hat v_b = \sum_{s,i} (r^s_i)^2 / ((S - 1) N_b)` with :math:`r = Y_{i+1} - \hat a Y_i`
  over the bin's :math:`N_b` intervals (:math:`S - 1`: centring on the seed mean removes one
  degree of freedom), and :math:`\hat\sigma^2_b = \hat v_b\, 2\hat\kappa_b / (1 - e^{-2\hat\kappa_b h})`
  (:math:`\hat v_b / h` as :math:`\hat\kappa_b \to 0`);
* 95% intervals under the model, whose residuals are then independent Gaussians:
  :math:`\hat v_b \nu/\chi^2_\nu` for the variance (:math:`\nu = (S-1)N_b - 1`), mapped to
  :math:`\sigma^2`, and Student's t on the slope :math:`\hat a_b` (standard error
  :math:`\sqrt{\hat v_b/\sum Y_i^2}`), mapped to :math:`\kappa`. Where the model fails they
  mean nothing, which is why the specification checks below come with them. (A bootstrap over
  seeds was tried first: its intervals for :math:`\sigma^2` covered planted values at about 80%,
  as a resample that repeats seeds has fewer distinct ones than the variance is divided by.)

Exact in the interval, so no discretisation bias at any logging interval (an Euler estimator is
biased by about :math:`\kappa h`); :math:`\hat a \le 0` has no reading as a linear SDE and is
reported.

Specification checks, stated as tests under the model (a result is flagged, not hidden):

* the lag-1 autocorrelation :math:`\rho_1` of the standardised residuals along each path is 0
  under the model (independent increments); flagged when :math:`|\rho_1| > 3/\sqrt{N}`, N the
  number of residual pairs (3 standard errors);
* the correlation of :math:`r^2` with :math:`Y^2` is 0 under the model (the noise does not depend
  on the state); flagged above :math:`3/\sqrt{N}` likewise.

Predictions: :func:`simulate` integrates the calibrated SDE with :func:`sde_scales.solve`
(Euler-Maruyama, exact in distribution as the bins' step shrinks); :func:`compare` holds a
simulated mean and spread against observed seeds with their bootstrap intervals and reports where
the prediction lies inside them; :func:`predict_width` interpolates the coefficients across
widths (mean path :math:`a + b/n`, :math:`\kappa` likewise, :math:`\log\sigma^2` and the initial
log spread linear in :math:`\log n`) for a width left out of the calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np

from sde_scales import seeds
from sde_scales.errors import InvalidArgumentError
from sde_scales.rates import check_resamples
from sde_scales.validation import is_whole

__all__ = ["MacroSDEFit", "calibrate", "compare", "predict_width", "simulate"]

#: Specification checks flag a statistic beyond this many standard errors under the model.
SPEC_SIGMAS = 3.0
#: Seeds whose spread is at most this fraction of the values' magnitude at every time are copies of
#: one run: the mean of equal numbers differs from them by rounding only (a few times 1e-16 of
#: them), while seeds of any real training differ in their third digit or earlier. Without the
#: check, that rounding was calibrated as a contraction (kappa 1.5 per step on eight identical paths).
NO_SPREAD_RTOL = 1e-12


@dataclass(frozen=True)
class MacroSDEFit:
    """A calibrated macro SDE (see the module docstring). Times ``t`` (logged, equally spaced),
    seed-mean path ``mean``; bins ``bin_edges`` (times; ``kappa``, ``sigma2`` constant inside) with
    95% intervals ``kappa_ci``, ``sigma2_ci``; the initial spread ``sd0``; specification checks in
    ``checks``; ``warnings`` for anything a reader must know."""

    t: np.ndarray
    mean: np.ndarray
    bin_edges: np.ndarray
    kappa: np.ndarray
    sigma2: np.ndarray
    kappa_ci: np.ndarray
    sigma2_ci: np.ndarray
    sd0: float
    n_seeds: int
    checks: dict = field(default_factory=dict)
    warnings: tuple = ()

    @property
    def misspecified(self) -> bool:
        return bool(self.checks.get("autocorrelation_flag") or self.checks.get("heteroscedasticity_flag"))

    def to_json(self) -> dict:
        """Strict-JSON-ready (NaN, as in the intervals of :func:`predict_width`, becomes null)."""
        from sde_scales.atomic import strict_json

        return strict_json({"t": self.t, "mean": self.mean, "bin_edges": self.bin_edges, "kappa": self.kappa,
                            "kappa_ci": self.kappa_ci, "sigma2": self.sigma2, "sigma2_ci": self.sigma2_ci,
                            "sd0": self.sd0, "n_seeds": self.n_seeds, "checks": self.checks,
                            "misspecified": self.misspecified, "warnings": list(self.warnings)})


def _check_paths(t, X) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t, dtype=float)
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or t.ndim != 1 or X.shape[1] != t.size:
        raise InvalidArgumentError(f"paths of shape {X.shape} and times of shape {t.shape}; give X as (n_seeds, n_times)")
    if X.shape[0] < 4:
        raise InvalidArgumentError(f"{X.shape[0]} seeds; the spread and its interval need at least 4")
    if t.size < 4 or np.any(np.diff(t) <= 0):
        raise InvalidArgumentError("times must increase strictly and number at least 4")
    d = np.diff(t)
    if np.max(np.abs(d - d[0])) > 1e-9 * d[0]:
        raise InvalidArgumentError("the logged times are not equally spaced; resample the paths onto a regular grid")
    if not np.all(np.isfinite(X)):
        s, k = (int(v) for v in np.argwhere(~np.isfinite(X))[0])
        raise InvalidArgumentError(f"X[{s}, {k}] = {X[s, k]} is not finite (a diverged seed?); drop that seed")
    spread = float(np.max(X.std(axis=0)))
    scale = float(np.max(np.abs(X)))
    if spread <= NO_SPREAD_RTOL * scale:
        raise InvalidArgumentError(f"the {X.shape[0]} seeds agree to rounding at every logged time (largest spread "
                                   f"{spread:.3g} against values up to {scale:.3g}): they are copies of one run, and "
                                   f"there is no noise to calibrate; check that each seed reaches the training "
                                   f"(initialisation and data order)")
    return t, X


def _estimate(t, X, bins):
    """kappa, sigma2 and their 95% intervals per bin, and the residuals (exact OU transition over
    one logged interval, intervals under the model; see the module docstring)."""
    from scipy import stats

    Y = X - X.mean(axis=0)
    Yn, Yl = Y[:, 1:], Y[:, :-1]
    h = float(t[1] - t[0])
    B = len(bins)
    kappa, sigma2 = np.empty(B), np.empty(B)
    kci, sci = np.full((B, 2), np.nan), np.full((B, 2), np.nan)
    r = np.empty_like(Yn)
    S = X.shape[0]

    def to_sigma2(v, k):
        x = 2.0 * k * h
        return v / h * (x / -np.expm1(-x) if abs(x) > 1e-12 else 1.0)

    for b, (lo, hi) in enumerate(bins):
        yl, yn = Yl[:, lo:hi], Yn[:, lo:hi]
        den = float(np.sum(yl**2))
        a = float(np.sum(yn * yl)) / den if den > 0 else np.nan
        rb = yn - (0.0 if not np.isfinite(a) else a) * yl
        r[:, lo:hi] = rb
        nu = (S - 1) * rb.shape[1] - 1  # centring removes one seed's worth, the slope one more
        v = float(np.sum(rb**2)) / nu
        if not (np.isfinite(a) and a > 0):
            kappa[b], sigma2[b] = np.nan, v / h
            continue
        kappa[b] = -np.log(a) / h
        sigma2[b] = to_sigma2(v, kappa[b])
        se = np.sqrt(v / den)
        q = stats.t.ppf(0.975, nu)
        a_lo, a_hi = a - q * se, a + q * se
        kci[b] = [-np.log(a_hi) / h, -np.log(a_lo) / h if a_lo > 0 else np.inf]
        v_lo, v_hi = v * nu / stats.chi2.ppf(0.975, nu), v * nu / stats.chi2.ppf(0.025, nu)
        sci[b] = [to_sigma2(v_lo, kappa[b]), to_sigma2(v_hi, kappa[b])]
    return kappa, sigma2, kci, sci, r, Yl


def calibrate(t, X, n_bins: int = 6) -> MacroSDEFit:
    """Calibrate the macro SDE on seeds ``X`` (n_seeds, n_times) logged at times ``t``."""
    t, X = _check_paths(t, X)
    n_inc = t.size - 1
    if not (is_whole(n_bins, 1) and n_bins <= n_inc // 2):
        raise InvalidArgumentError(f"n_bins={n_bins} for {n_inc} increments; give 1..{n_inc // 2} (two increments a bin)")
    cuts = np.linspace(0, n_inc, int(n_bins) + 1).round().astype(int)
    bins = list(zip(cuts[:-1], cuts[1:]))
    kappa, sigma2, kci, sci, r, Yl = _estimate(t, X, bins)
    S = X.shape[0]
    # specification checks on standardised residuals
    dt = np.diff(t)
    sd_bin = np.empty(n_inc)
    for b, (lo, hi) in enumerate(bins):
        sd_bin[lo:hi] = max(float(np.sqrt(np.mean(r[:, lo:hi] ** 2))), 1e-300)
    z = r / sd_bin
    pairs = z[:, 1:] * z[:, :-1]
    n_pairs = pairs.size
    rho1 = float(np.sum(pairs) / np.sum(z**2))
    zz, yy = (z**2).ravel(), (Yl**2).ravel()
    het = float(np.corrcoef(zz, yy)[0, 1]) if zz.std() > 0 and yy.std() > 0 else 0.0
    lim_rho = SPEC_SIGMAS / np.sqrt(n_pairs)
    lim_het = SPEC_SIGMAS / np.sqrt(zz.size)
    checks = {"residual_lag1_autocorrelation": rho1, "autocorrelation_limit": lim_rho,
              "autocorrelation_flag": bool(abs(rho1) > lim_rho),
              "r2_vs_Y2_correlation": het, "heteroscedasticity_limit": lim_het,
              "heteroscedasticity_flag": bool(abs(het) > lim_het)}
    warns = []
    if checks["autocorrelation_flag"]:
        warns.append(f"the residuals are autocorrelated along the paths (lag-1 {rho1:+.3f}, beyond the {lim_rho:.3f} that "
                     f"independent increments allow): the noise has memory the model lacks (coloured noise, or "
                     f"measurement noise on the logged values); its spread predictions are not to be trusted as such")
    if checks["heteroscedasticity_flag"]:
        warns.append(f"the squared residuals correlate with the squared deviation from the mean ({het:+.3f}, beyond "
                     f"{lim_het:.3f}): the noise depends on the state, which the model's sigma(t) does not")
    bad_a = [b for b in range(len(bins)) if not np.isfinite(kappa[b])]
    if bad_a:
        warns.append(f"in bin(s) {bad_a} the seeds' deviations change sign from one logged step to the next on "
                     f"average (slope <= 0): no linear SDE reads so; kappa is undefined there")
    if np.any(np.nan_to_num(kappa) * dt[0] > 20):
        warns.append("in some bin the seeds' deviations do not carry over from one logged step to the next "
                     "(kappa * h > 20): the logging interval is too coarse to see the drift; log more often")
    edges = t[cuts]
    return MacroSDEFit(t, X.mean(axis=0), edges, kappa, sigma2, kci, sci, float(X[:, 0].std(ddof=1)), S, checks,
                       tuple(warns))


# ------------------------------------------------------------------ simulation with the engine
@numba.njit
def _macro_drift(t, x, p, out):  # pragma: no cover - compiled
    K = int(p[0])
    B = int(p[1])
    tk = p[2:2 + K]
    m = p[2 + K:2 + 2 * K]
    edges = p[2 + 2 * K:3 + 2 * K + B]
    kap = p[3 + 2 * K + B:3 + 2 * K + 2 * B]
    i = 0
    while i < K - 2 and t >= tk[i + 1]:
        i += 1
    slope = (m[i + 1] - m[i]) / (tk[i + 1] - tk[i])
    mt = m[i] + slope * (t - tk[i])
    b = 0
    while b < B - 1 and t >= edges[b + 1]:
        b += 1
    out[0] = slope - kap[b] * (x[0] - mt)


@numba.njit
def _macro_diffusion(t, x, p, out):  # pragma: no cover - compiled
    K = int(p[0])
    B = int(p[1])
    edges = p[2 + 2 * K:3 + 2 * K + B]
    sig = p[3 + 2 * K + 2 * B:3 + 2 * K + 3 * B]
    b = 0
    while b < B - 1 and t >= edges[b + 1]:
        b += 1
    out[0] = sig[b]


def simulate(fit: MacroSDEFit, x0, n_paths: int, seed: int, substeps: int = 4) -> np.ndarray:
    """Paths of the calibrated SDE at ``fit.t`` (n_paths, n_times), started from values drawn with
    replacement from ``x0`` (an array of initial values) or, for a float, from N(mean(0), x0^2)."""
    from sde_scales.sde import EulerMaruyama, SaveAt, SDEProblem, solve

    if not is_whole(n_paths, 1):
        raise InvalidArgumentError(f"n_paths={n_paths!r}; give a whole number of paths >= 1")
    if not is_whole(substeps, 1):
        raise InvalidArgumentError(f"substeps={substeps!r}; give a whole number of solver steps per logged interval >= 1")
    rng = seeds.rng(seed, "analysis.macro_sde_start")
    if np.ndim(x0) == 0:
        start = fit.mean[0] + float(x0) * rng.standard_normal(int(n_paths))
    else:
        x0 = np.asarray(x0, dtype=float)
        start = x0[rng.integers(0, x0.size, int(n_paths))]
    if not np.all(np.isfinite(fit.kappa)):
        bad = [b for b in range(fit.kappa.size) if not np.isfinite(fit.kappa[b])]
        raise InvalidArgumentError(f"kappa is undefined in bin(s) {bad} (the seeds' deviations do not carry over from "
                                   f"one logged time to the next there): no linear SDE to simulate; calibrate on "
                                   f"values logged more often")
    if np.any(fit.sigma2 < 0) or not np.all(np.isfinite(fit.sigma2)):
        raise InvalidArgumentError(f"sigma2 = {fit.sigma2.tolist()}; the diffusion needs finite non-negative values")
    K, B = fit.t.size, fit.kappa.size
    params = np.concatenate([[K, B], fit.t, fit.mean, fit.bin_edges, fit.kappa, np.sqrt(fit.sigma2)])
    prob = SDEProblem(_macro_drift, _macro_diffusion, x0=start[:, None], tspan=(float(fit.t[0]), float(fit.t[-1])),
                      noise="diagonal", params=params, name="macro-sde")
    n_steps = (K - 1) * int(substeps)
    dt = (fit.t[-1] - fit.t[0]) / n_steps
    sol = solve(prob, EulerMaruyama(), dt, noise=seeds.child(seed, "analysis.macro_sde_noise"),
                save_at=SaveAt(every=int(substeps)), on_blowup="raise")
    return sol.x[:, :, 0].T


def _boot_band(X, n_boot, seed):
    rng = seeds.rng(seed, "analysis.compare_boot")
    S = X.shape[0]
    ms, ss = [], []
    for _ in range(int(n_boot)):
        idx = rng.integers(0, S, S)
        ms.append(X[idx].mean(axis=0))
        ss.append(X[idx].std(axis=0, ddof=1))
    return np.percentile(ms, [2.5, 97.5], axis=0), np.percentile(ss, [2.5, 97.5], axis=0)


def _spans(t, ok) -> list[list[float]]:
    """Maximal runs of consecutive times where ``ok`` holds, as [first, last] pairs."""
    out, start = [], None
    for i, v in enumerate(ok):
        if v and start is None:
            start = i
        if (not v or i == ok.size - 1) and start is not None:
            end = i if v else i - 1
            out.append([float(t[start]), float(t[end])])
            start = None
    return out


def compare(t, predicted: np.ndarray, observed: np.ndarray, n_boot: int = 500, seed: int = 0) -> dict:
    """Hold simulated paths (n_paths, n_times) against observed seeds (n_seeds, n_times): the
    observed mean and sd with 95% seed-bootstrap intervals, the predicted mean and sd, where each
    predicted value lies inside the observed interval, and summary errors."""
    t, observed = _check_paths(t, observed)
    predicted = np.asarray(predicted, dtype=float)
    if predicted.ndim != 2 or predicted.shape[1] != t.size or predicted.shape[0] < 2:
        raise InvalidArgumentError(f"predicted paths of shape {predicted.shape} for {t.size} times; give (n_paths, "
                                   f"n_times) with at least 2 paths (a spread needs two)")
    if not np.all(np.isfinite(predicted)):
        p, k = (int(v) for v in np.argwhere(~np.isfinite(predicted))[0])
        raise InvalidArgumentError(f"predicted[{p}, {k}] = {predicted[p, k]} is not finite; the simulation blew up "
                                   f"there (use a smaller step) or the prediction is broken")
    check_resamples(n_boot, "n_boot")
    pm, ps = predicted.mean(axis=0), predicted.std(axis=0, ddof=1)
    om, osd = observed.mean(axis=0), observed.std(axis=0, ddof=1)
    (mlo, mhi), (slo, shi) = _boot_band(observed, n_boot, seed)
    in_mean = (pm >= mlo) & (pm <= mhi)
    in_sd = (ps >= slo) & (ps <= shi)
    late = t >= t[0] + 0.5 * (t[-1] - t[0])
    return {
        "t": t.tolist(), "observed_mean": om.tolist(), "observed_mean_ci": [mlo.tolist(), mhi.tolist()],
        "observed_sd": osd.tolist(), "observed_sd_ci": [slo.tolist(), shi.tolist()],
        "predicted_mean": pm.tolist(), "predicted_sd": ps.tolist(),
        "mean_inside_fraction": float(in_mean.mean()), "sd_inside_fraction": float(in_sd.mean()),
        "sd_holds_on": _spans(t, in_sd), "sd_fails_on": _spans(t, ~in_sd),
        "mean_holds_on": _spans(t, in_mean), "mean_fails_on": _spans(t, ~in_mean),
        "rms_mean_error": float(np.sqrt(np.mean((pm - om) ** 2))),
        "late_sd_ratio_median": float(np.median(ps[late] / np.maximum(osd[late], 1e-300))),
        "n_observed": int(observed.shape[0]), "n_predicted": int(predicted.shape[0]),
    }


def predict_width(fits: dict[int, MacroSDEFit], width: int) -> MacroSDEFit:
    """Coefficients at a width left out of the calibration, from fits at >= 3 other widths on the
    same times and bins: mean path and kappa as a + b/n, log sigma^2 and log sd0 linear in log n
    (least squares). It has no intervals of its own (NaN inside, null in JSON): :func:`compare`
    judges the prediction against the held-out seeds."""
    ns = sorted(int(n) for n in fits)
    if len(ns) < 3:
        raise InvalidArgumentError(f"calibration widths {ns}; interpolating across widths needs at least 3")
    if width in ns:
        raise InvalidArgumentError(f"width {width} is among the calibration widths {ns}; leave it out to predict it")
    ref = fits[ns[0]]
    for n in ns[1:]:
        f = fits[n]
        if f.t.size != ref.t.size or np.any(f.t != ref.t) or np.any(f.bin_edges != ref.bin_edges):
            raise InvalidArgumentError(f"width {n} was calibrated on other times or bins than width {ns[0]}")
    inv = 1.0 / np.array(ns, dtype=float)
    A = np.stack([np.ones_like(inv), inv], axis=1)
    M = np.stack([fits[n].mean for n in ns])
    Kp = np.stack([fits[n].kappa for n in ns])
    S2 = np.stack([fits[n].sigma2 for n in ns])
    if np.any(S2 <= 0):
        raise InvalidArgumentError("a calibrated sigma^2 is 0; its logarithm cannot be interpolated")
    a = np.array([1.0, 1.0 / width])
    mean = a @ np.linalg.lstsq(A, M, rcond=None)[0]
    kappa = a @ np.linalg.lstsq(A, Kp, rcond=None)[0]
    L = np.stack([np.ones(len(ns)), np.log(ns)], axis=1)
    al = np.array([1.0, np.log(width)])
    sigma2 = np.exp(al @ np.linalg.lstsq(L, np.log(S2), rcond=None)[0])
    sd0 = float(np.exp(al @ np.linalg.lstsq(L, np.log([fits[n].sd0 for n in ns]), rcond=None)[0]))
    extrap = width < ns[0] or width > ns[-1]
    warns = (f"width {width} lies outside the calibration widths {ns[0]}..{ns[-1]}: an extrapolation",) if extrap else ()
    nan2 = np.full((kappa.size, 2), np.nan)
    return MacroSDEFit(ref.t, mean, ref.bin_edges, kappa, sigma2, nan2, nan2.copy(), sd0, 0,
                       {"interpolated_from": ns}, warns)
