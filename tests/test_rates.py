"""Exponent estimates on planted data with a known exponent, curvature and noise, and verdicts
that must say no where the data contradict the claim."""

import re
import warnings
from dataclasses import replace

import numpy as np
import pytest

from conftest import load_benchmark
from sde_scales.errors import InvalidArgumentError
from sde_scales.rates import (
    MIN_REPLICAS,
    ExponentEstimate,
    RateKind,
    Verdict,
    bias_exponent,
    exponent_difference,
    exponent_from_values,
    fluctuation_exponent,
    next_order_factor,
    replicas_for_width,
    statistic_exponent,
    verdict,
)

WIDTHS = np.array([64, 128, 256, 512, 1024, 2048])
WIDE = np.array([64, 128, 256, 512, 1024, 2048, 4096])


def gaussian_replicas(p, R, seed, scale=1.0, mean=None, widths=WIDTHS):
    """R replicas per width of N(mean(n), (scale n^p)^2): the spread has exponent p exactly."""
    rng = np.random.default_rng(seed)
    return [(0.0 if mean is None else mean(n)) + scale * n**p * rng.standard_normal(R) for n in widths]


@pytest.mark.parametrize("p", [-1.0, -0.5, -0.25])
def test_fluctuation_exponent_recovers_known_exponent(p):
    """With R = 2000 the standard error of a log-std is 1/sqrt(2(R-1)) = 0.016 per point, so the
    slope over six widths has a standard error of about 0.009; the 95% interval must cover p and be
    narrower than 0.1."""
    est = fluctuation_exponent(WIDTHS, gaussian_replicas(p, 2000, seed=1), seed=0)
    assert est.ci[0] <= p <= est.ci[1]
    assert est.ci_width < 0.1
    assert abs(est.exponent - p) < 0.04  # about 4 standard errors of the slope
    # a pure power law: its local slope does not change significantly across the range
    assert not est.curvature.significant


def test_the_error_bars_of_a_spread_are_its_sampling_error():
    """The standard error reported with each width's standard deviation (the JSON's ``errors``,
    the plots' error bars) is sd / sqrt(2 (R - 1)) for normal replicas. Checked against the spread
    of the sample sd itself over 2,000 fresh draws of R = 40 replicas: within 10% (the Monte-Carlo
    error of that spread is 1/sqrt(2 x 1999) = 1.6%, and the formula's large-R approximation is
    off by under 1% at R = 40); a formula without the 2 is 41% high."""
    from sde_scales.rates import fluctuation_exponent

    rng = np.random.default_rng(8)
    widths, sds, R = np.array([16.0, 64.0, 256.0]), np.array([0.4, 0.2, 0.1]), 40
    est = fluctuation_exponent(widths, [s * rng.standard_normal(R) for s in sds], n_resamples=100)
    spread = np.std([np.std(sds[:, None] * rng.standard_normal((3, R)), axis=1, ddof=1) for _ in range(2000)],
                    axis=0, ddof=1)
    np.testing.assert_allclose(est.errors / est.values, spread / sds, rtol=0.10)

def test_interval_coverage_is_about_95_percent():
    """Across 40 independent data sets the 95% interval covers the true exponent in 33..40 of
    them (binomial(40, 0.95) puts 99.6% of its mass there)."""
    hits = 0
    for s in range(40):
        est = fluctuation_exponent(WIDTHS[:4], gaussian_replicas(-0.5, 200, seed=100 + s)[:4], n_resamples=600, seed=s)
        hits += est.ci[0] <= -0.5 <= est.ci[1]
    assert 33 <= hits <= 40


def test_three_widths_give_a_slope_interval_without_a_bootstrap_warning():
    """Three widths define a slope and no curvature (the quadratic needs four). The curvature rows
    of the statistic were NaN in every resample, and scipy's bootstrap warned of a degenerate
    distribution ("The BCa confidence interval cannot be calculated") on every such estimate,
    whatever the data. Now only the defined rows are bootstrapped: no warning, the slope's interval
    covers the planted exponent (R = 400: standard error of the slope about 0.04; 0.25 is six of
    them), and no curvature is reported."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = fluctuation_exponent(WIDTHS[:3], gaussian_replicas(-0.5, 400, seed=3)[:3], n_resamples=1000, seed=0)
        est_bias = bias_exponent(WIDTHS[:3], gaussian_replicas(-2.0, 400, seed=4, scale=0.01,
                                                               mean=lambda n: 1 + n**-0.5)[:3], 1.0, seed=0)
    assert est.ci[0] <= -0.5 <= est.ci[1] and est.ci_width < 0.25
    assert est.curvature is None and est_bias.curvature is None
    assert est_bias.ci[0] <= -0.5 <= est_bias.ci[1]


# ----------------------------------------------------------------------------- the planted cases
def test_pure_power_law_008_off_the_claim_fails():
    """A pure power law n^-0.58 measured to about +-0.006 (4,000 replicas, widths 64..4096) is no
    Theta(n^-1/2): the measured tolerance (next-order terms the data cannot exclude) is far below
    0.08, so the claim FAILs; the true exponent PASSes."""
    est = fluctuation_exponent(WIDE, gaussian_replicas(-0.58, 4000, seed=11, widths=WIDE), seed=0)
    assert est.ci_width < 0.03
    wrong = verdict(RateKind.THETA, -0.5, est)
    assert wrong.verdict is Verdict.FAIL
    assert wrong.tolerance is not None and wrong.tolerance < 0.05
    assert "local slope changes" in wrong.tolerance_source and wrong.rule.startswith("Theta")
    assert verdict(RateKind.THETA, -0.58, est).verdict is Verdict.PASS


def _curved(R=4000, seed=12):
    """Local slope -0.7 at n = 64 falling linearly in log n to -1.44 at n = 4096."""
    u = np.log(WIDE / 64.0)
    span = u[-1]
    logq = -0.7 * u - 0.74 * u**2 / (2 * span)
    rng = np.random.default_rng(seed)
    return [np.exp(lq) * rng.standard_normal(R) for lq in logq]


def test_curved_series_is_never_passed_at_its_average_slope():
    est = fluctuation_exponent(WIDE, _curved(), seed=0)
    assert est.curvature.significant
    assert est.curvature.slope_min == pytest.approx(-0.7, abs=0.05)
    assert est.curvature.slope_max == pytest.approx(-1.44, abs=0.05)
    # at its average slope: never PASS, and the reason gives both local slopes
    avg = verdict(RateKind.THETA, est.exponent, est)
    assert avg.verdict is Verdict.INCONCLUSIVE and "not yet in the asymptotic range" in avg.reason
    assert "n = 64" in avg.reason and "n = 4096" in avg.reason
    # the tolerance its curvature implies: claims inside the widened interval are undecided,
    # claims outside it FAIL
    tol = avg.tolerance
    assert tol is not None and 0.3 < tol < 0.5  # g = 0.50 times a change of about 0.76
    for p in (est.exponent - 0.9 * tol, est.exponent + 0.9 * tol, -1.0, -1.44):
        assert verdict(RateKind.THETA, p, est).verdict is Verdict.INCONCLUSIVE
    for p in (-0.5, -2.0):
        assert verdict(RateKind.THETA, p, est).verdict is Verdict.FAIL
    assert verdict(RateKind.BIG_O, -1.0, est).verdict is Verdict.INCONCLUSIVE
    assert verdict(RateKind.BIG_O, -2.0, est).verdict is Verdict.FAIL  # decays far slower than n^-2


def test_curved_rule_does_not_fail_true_claims():
    """The curved-series rule keeps a true claim's false-FAIL rate at the interval's level: pure
    power laws n^-1/2 with 4 components x 32 replicas at widths 64..1024 (the quick training rows'
    size), 120 data sets: no FAIL (a rule on the widest local slope alone gave 7 in 300)."""
    w = WIDTHS[:5]
    fails = 0
    for i in range(120):
        rng = np.random.default_rng(2000 + i)
        est = fluctuation_exponent(w, [n**-0.5 * rng.standard_normal((4, 32)) for n in w], n_resamples=500, seed=i)
        fails += verdict(RateKind.THETA, -0.5, est).verdict is Verdict.FAIL
    assert fails == 0


def test_separation_must_match_the_claimed_difference():
    """A difference of -0.04 is no separation of -1/2: FAILed on at least 8 of 10 data sets (9
    measured). The one left INCONCLUSIVE is the one whose subtracted pure power law looks curved
    by chance (its local-slope change significant at the 5% level): then the exponents it allows
    on its own include those of a large next-order term, and the rule does not FAIL what they
    allow (test_a_term_in_the_subtracted_quantity_does_not_fail_a_true_separation); the ratio
    alone FAILs all ten."""
    fails = 0
    for k in range(10):
        micro = gaussian_replicas(-0.5, 4000, seed=8 + 2 * k, widths=WIDE)
        small = exponent_difference(WIDE, gaussian_replicas(-0.54, 4000, seed=7 + 2 * k, widths=WIDE), micro)
        assert small.exponent == pytest.approx(-0.04, abs=0.02) and small.ci_width < 0.04
        r = verdict(RateKind.SEPARATION, -0.5, small)
        alone = verdict(RateKind.SEPARATION, -0.5, replace(small, parts=None))
        assert alone.verdict is Verdict.FAIL and "excludes -0.5" in alone.reason
        if r.verdict is Verdict.FAIL:
            fails += 1
            assert "excludes -0.5" in r.reason
        else:
            assert r.verdict is Verdict.INCONCLUSIVE and small.parts[1].curvature.significant, r
            assert "on their own allow it" in r.reason
    assert fails >= 8, fails
    micro = gaussian_replicas(-0.5, 4000, seed=8, widths=WIDE)
    true = exponent_difference(WIDE, gaussian_replicas(-1.0, 4000, seed=9, widths=WIDE), micro)
    assert verdict(RateKind.SEPARATION, -0.5, true).verdict is Verdict.PASS
    reversed_ = exponent_difference(WIDE, micro, gaussian_replicas(-1.0, 4000, seed=9, widths=WIDE))
    assert verdict(RateKind.SEPARATION, -0.5, reversed_).verdict is Verdict.FAIL


def test_too_few_replicas_is_inconclusive():
    """Below MIN_REPLICAS a percentile bootstrap under-covers: no verdict, whatever the numbers."""
    R = MIN_REPLICAS - 1
    est = fluctuation_exponent(WIDE, gaussian_replicas(-0.5, R, seed=6, widths=WIDE), seed=0)
    for kind, p in ((RateKind.THETA, -0.5), (RateKind.THETA, -2.0), (RateKind.BIG_O, -1.0)):
        r = verdict(kind, p, est)
        assert r.verdict is Verdict.INCONCLUSIVE and "replicas" in r.reason


def test_small_experiment_with_enough_replicas_is_inconclusive_not_pass():
    """Twelve replicas at four nearby widths: the widened interval is far wider than 0.3."""
    w = WIDTHS[:4]
    rng = np.random.default_rng(6)
    est = fluctuation_exponent(w, [n**-0.5 * rng.standard_normal(12) for n in w], seed=0)
    r = verdict(RateKind.THETA, -0.5, est)
    assert r.verdict is Verdict.INCONCLUSIVE and "more replicas" in r.reason


def test_o_claim_passes_when_its_whole_widened_interval_is_below():
    """O(n^-1/2) of a quantity decaying like n^-1, 200 replicas at widths 64..2048: the exponent
    interval (about +-0.06) widened by the tolerance (about 0.2) lies entirely below -1/2, so the
    claim holds whatever next-order terms within the tolerance do. It was INCONCLUSIVE, because the
    widened interval is wider than 0.3, the limit for a Theta PASS (which needs the exponent pinned
    down; an upper bound needs only the interval's upper end). The mirror claims stay as they were:
    O(n^-3/2) FAILs, Theta(n^-1/2) FAILs, and Theta(n^-1) is INCONCLUSIVE (its widened interval is
    too wide to PASS). Over 40 data sets of a quantity decaying exactly like n^-1/2, O(n^-3/4) (false)
    never PASSes."""
    w = np.array([64, 128, 256, 512, 1024, 2048])
    for seed in range(3):
        rng = np.random.default_rng(seed)
        est = fluctuation_exponent(w, [rng.standard_normal(200) * n**-1.0 for n in w], seed=1)
        r = verdict(RateKind.BIG_O, -0.5, est)
        assert r.verdict is Verdict.PASS and est.ci[1] + r.tolerance <= -0.5 and "at least as fast" in r.reason
        assert (est.ci[1] - est.ci[0]) + 2 * r.tolerance > 0.3  # the case: too wide for the old rule
        assert verdict(RateKind.BIG_O, -1.5, est).verdict is Verdict.FAIL
        assert verdict(RateKind.THETA, -0.5, est).verdict is Verdict.FAIL
        assert verdict(RateKind.THETA, -1.0, est).verdict is Verdict.INCONCLUSIVE
    passes = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        est = fluctuation_exponent(w, [rng.standard_normal(200) * n**-0.5 for n in w], n_resamples=500, seed=seed)
        passes += verdict(RateKind.BIG_O, -0.75, est).verdict is Verdict.PASS
    assert passes == 0


def test_o_claim_one_sided():
    """O(n^-1): a quantity decaying faster passes, one decaying like n^-1/2 fails."""
    fast = fluctuation_exponent(WIDE, gaussian_replicas(-1.5, 3000, seed=13, widths=WIDE), seed=0)
    slow = fluctuation_exponent(WIDE, gaussian_replicas(-0.5, 3000, seed=14, widths=WIDE), seed=0)
    assert verdict(RateKind.BIG_O, -1.0, fast).verdict is Verdict.PASS
    assert verdict(RateKind.BIG_O, -1.0, slow).verdict is Verdict.FAIL
    assert verdict(RateKind.THETA, -1.0, fast).verdict is Verdict.FAIL


def test_next_order_term_widens_the_tolerance_and_is_not_mistaken_for_a_wrong_rate():
    """q = n^-1 (1 + 3 n^-1/2): the fitted slope over 64..4096 is biased below -1 by the next-order
    term (the local slope climbs from about -1.14 to -1.02); it must not be FAILed as a wrong rate."""
    rng = np.random.default_rng(15)
    reps = [n**-1.0 * (1 + 3 * n**-0.5) * rng.standard_normal(4000) for n in WIDE]
    est = fluctuation_exponent(WIDE, reps, seed=0)
    r = verdict(RateKind.THETA, -1.0, est)
    assert est.ci[1] < -1.0
    assert r.verdict is not Verdict.FAIL
    assert est.exponent < -1.02  # the bias is really there: the plain interval excludes -1
    assert r.tolerance is None or r.tolerance >= abs(est.exponent + 1.0) - est.ci_width


def test_a_larger_next_order_term_does_not_fail_a_true_claim_however_many_replicas():
    """q = n^-1/2 (1 + 3/8 (n/64)^-1/2) on 64..4096, in the limit of many replicas (intervals 1e-4
    wide around the noise-free fits, computed here with numpy's polyfit): the fitted slope is
    biased by -0.058, while the small-term tolerance g |change| is 0.053. That rule FAILed the true
    claim (2 of 20 data sets with 16,384 replicas, all of them in the limit); the exact shift of
    the model's term with this change covers it. Claims 1/4 off still FAIL."""
    from sde_scales.rates import Curvature

    x = WIDE.astype(float)
    u = np.log(x)
    logq = -0.5 * u + np.log1p(0.375 * (x / 64.0) ** -0.5)
    slope = np.polyfit(u, logq, 1)[0]
    c2, c1, _ = np.polyfit(u - u.mean(), logq, 2)
    s_min, s_max = c1 + 2 * c2 * (u.min() - u.mean()), c1 + 2 * c2 * (u.max() - u.mean())
    eps = 1e-4
    curv = Curvature(s_min, s_max, s_max - s_min, (s_max - s_min - eps, s_max - s_min + eps), (s_min - eps, s_min + eps),
                     (s_max - eps, s_max + eps))
    est = ExponentEstimate(slope, (slope - eps, slope + eps), x, np.exp(logq), np.full(x.size, np.nan), 0.0,
                           "fluctuation", n_replicas=10**6, curvature=curv)
    assert next_order_factor(x) * abs(s_max - s_min) < abs(slope + 0.5) - 2 * eps  # the old rule's miss
    r = verdict(RateKind.THETA, -0.5, est)
    assert r.verdict is not Verdict.FAIL and r.tolerance >= abs(slope + 0.5) - eps
    assert verdict(RateKind.BIG_O, -0.5, est).verdict is not Verdict.FAIL
    for wrong in (-0.25, -0.75):
        assert verdict(RateKind.THETA, wrong, est).verdict is Verdict.FAIL


def test_a_curvature_interval_with_a_nan_end_gives_no_verdict():
    """A change interval whose upper end is NaN (resamples with no value) has no tolerance: the
    verdict is INCONCLUSIVE, whatever the finite end alone would allow (Python's max of a number
    and a NaN keeps whichever comes first)."""
    from sde_scales.rates import Curvature

    x = WIDE.astype(float)
    curv = Curvature(-0.5, -0.5, 0.0, (-0.01, float("nan")), (-0.51, -0.49), (-0.51, -0.49))
    est = ExponentEstimate(-0.5, (-0.505, -0.495), x, x**-0.5, np.full(x.size, np.nan), 0.0, "fluctuation",
                           n_replicas=1000, curvature=curv)
    for p in (-0.5, -2.0):
        assert verdict(RateKind.THETA, p, est).verdict is Verdict.INCONCLUSIVE


def test_next_order_bias_is_the_small_term_factor_in_its_limit_and_grows_for_a_positive_term():
    """For a small term the exact shift is g times the change; for the model's largest positive
    term (1/2 of the leading one at n = 64) the shift per unit change is 0.60 on 64..4096 (np.polyfit
    of log(1 + 0.5 (n/64)^-1/2) by hand), above g = 0.50."""
    from sde_scales.rates import next_order_bias

    x = WIDE.astype(float)
    assert next_order_bias(x, 1e-4) == pytest.approx(-next_order_factor(x) * 1e-4, rel=0.01)
    u = np.log(x)
    y = np.log1p(0.5 * (x / 64.0) ** -0.5)
    shift = np.polyfit(u, y, 1)[0]
    c2 = np.polyfit(u, y, 2)[0]
    change = 2 * c2 * (u.max() - u.min())
    assert next_order_bias(x, change) == pytest.approx(shift, rel=1e-3)
    assert abs(shift / change) == pytest.approx(0.60, abs=0.005)


def test_next_order_factor_matches_a_direct_computation():
    """g = |slope of n^-1/2 against log n| / |its quadratic-fit slope change|, by hand on 4 widths."""
    x = np.array([64.0, 128, 256, 512])
    u = np.log(x) - np.log(x).mean()
    y = x**-0.5
    slope = np.polyfit(u, y, 1)[0]
    c2, c1, _ = np.polyfit(u, y, 2)
    change = 2 * c2 * (u.max() - u.min())
    assert next_order_factor(x) == pytest.approx(abs(slope / change), rel=1e-9)


# ----------------------------------------------------------------------------- the estimators
def test_bias_exponent_recovers_known_exponent():
    """Mean n^-1 with replica noise 0.2 n^-1 and R = 2000: each bias is resolved to 0.5%."""
    reps = gaussian_replicas(-1.0, 2000, seed=3, scale=0.2, mean=lambda n: 1.0 / n)
    est = bias_exponent(WIDTHS, reps, 0.0, seed=0)
    assert est.ci[0] <= -1.0 <= est.ci[1] and est.ci_width < 0.1
    assert not est.notes


def test_richardson_reference_recovers_the_limit_and_carries_its_error():
    """Mean 2 + 0.5/n: Richardson in 1/n from the two widest widths is exact for a 1/n bias, so
    the exponent is -1; the interval includes the reference's own noise (wider than with the
    exact reference)."""
    reps = gaussian_replicas(-1.0, 3000, seed=16, scale=0.05, mean=lambda n: 2.0 + 0.5 / n)
    rich = bias_exponent(WIDTHS, reps, "richardson", seed=0)
    exact = bias_exponent(WIDTHS, reps, 2.0, seed=0)
    assert rich.ci[0] <= -1.0 <= rich.ci[1]
    assert rich.ci_width > exact.ci_width
    assert any("Richardson" in s for s in rich.notes)
    widest = bias_exponent(WIDTHS, reps, "widest", seed=0)
    assert widest.x.size == WIDTHS.size - 1  # the reference width is left out of the fit
    # ... but its noise is in the interval: wider than with its mean taken as an exact reference
    # (a version that did not resample the reference width gave exactly equal widths; its noise
    # adds about 8% here, so 5% separates the two)
    fixed = bias_exponent(WIDTHS[:-1], reps[:-1], float(np.mean(reps[-1])), seed=0)
    assert widest.ci_width > 1.05 * fixed.ci_width


def test_differences_judge_a_bias_whose_limit_is_not_known():
    """Mean 2 + n^-1/2 with noise 0.002 per replica and 400 replicas: the differences of successive
    means are 0.293 n^-1/2 (0.037 at 64 down to 0.0065 at 2048) against a standard error of
    1.4e-4, so each is resolved to 2% or better. Without the limit the exponent is that of the
    bias from the exact limit (the two intervals overlap), the false claim O(n^-1) FAILs, where
    Richardson in 1/n cannot FAIL it, and the true claim PASSes."""
    reps = gaussian_replicas(-1.0, 400, seed=5, scale=0.002 * 64, mean=lambda n: 2.0 + n**-0.5)
    diff = bias_exponent(WIDTHS, reps, "differences", seed=0)
    exact = bias_exponent(WIDTHS, reps, 2.0, seed=0)
    rich = bias_exponent(WIDTHS, reps, "richardson", seed=0)
    assert diff.x.tolist() == WIDTHS[:-1].tolist()
    assert diff.ci[0] <= -0.5 <= diff.ci[1] and max(diff.ci[0], exact.ci[0]) < min(diff.ci[1], exact.ci[1])
    assert verdict(RateKind.BIG_O, -1.0, diff).verdict is Verdict.FAIL
    assert verdict(RateKind.THETA, -0.5, diff).verdict is Verdict.PASS
    assert verdict(RateKind.BIG_O, -1.0, rich).verdict is not Verdict.FAIL
    # the quantity is the differences themselves, with the two means' errors combined
    m = np.array([r.mean() for r in reps])
    np.testing.assert_allclose(diff.values, np.abs(m[:-1] - m[1:]), rtol=1e-12)
    se = np.array([r.std(ddof=1) / np.sqrt(r.size) for r in reps])
    np.testing.assert_allclose(diff.errors, np.hypot(se[:-1], se[1:]), rtol=1e-12)


def test_differences_do_not_depend_on_the_limit():
    """Any constant added to every replica moves the limit and leaves every difference as it
    was: the same exponent and interval to rounding (a reading that used a reference would move)."""
    reps = gaussian_replicas(-1.0, 200, seed=8, scale=0.05, mean=lambda n: 1.0 + 3.0 / n)
    a = bias_exponent(WIDTHS, reps, "differences", n_resamples=300, seed=1)
    b = bias_exponent(WIDTHS, [r + 7.5 for r in reps], "differences", n_resamples=300, seed=1)
    assert abs(a.exponent - b.exponent) < 1e-9 and np.allclose(a.ci, b.ci, atol=1e-9)
    # a stated limit that the shift makes wrong reads the shift as a bias that does not fall
    d = bias_exponent(WIDTHS, reps, 1.0, n_resamples=300, seed=1)
    e = bias_exponent(WIDTHS, [r + 7.5 for r in reps], 1.0, n_resamples=300, seed=1)
    assert abs(d.exponent + 1.0) < 0.1 and abs(e.exponent) < 0.05


def test_differences_with_a_next_order_term_are_not_failed():
    """Mean 1 + 0.5/n - 10/n^2 (the claim Theta(n^-1) holds; over 64..2048 the bias's local slope
    runs from -0.6 toward -1): the differences keep the next-order term's order, their curvature is
    resolved (noise 1e-5 per mean), and the verdict is INCONCLUSIVE, not FAIL, as with the exact
    limit."""
    reps = gaussian_replicas(-1.0, 64, seed=2, scale=8e-5 * 64, mean=lambda n: 1.0 + 0.5 / n - 10.0 / n**2)
    diff = bias_exponent(WIDTHS, reps, "differences", seed=0)
    exact = bias_exponent(WIDTHS, reps, 1.0, seed=0)
    assert diff.curvature.significant and exact.curvature.significant
    for est in (diff, exact):
        assert verdict(RateKind.THETA, -1.0, est).verdict is Verdict.INCONCLUSIVE
        assert verdict(RateKind.BIG_O, -1.0, est).verdict is not Verdict.FAIL


def test_differences_need_widths_in_one_ratio_and_say_where_the_means_turn():
    reps = gaussian_replicas(-1.0, 50, seed=3, scale=0.01, mean=lambda n: 1.0 / n)
    with pytest.raises(InvalidArgumentError, match=r"constant ratio .* 2, 1.5, 1.333"):
        bias_exponent([100, 200, 300, 400, 600], reps[:5], "differences")
    with pytest.raises(InvalidArgumentError, match="at least 4 widths"):
        bias_exponent(WIDTHS[:3], reps[:3], "differences")
    # widths in a ratio of 3 are fine
    ok = bias_exponent([10, 30, 90, 270, 810], gaussian_replicas(-1.0, 50, seed=3, scale=1e-4, mean=lambda n: 1.0 / n,
                                                               widths=np.array([10, 30, 90, 270, 810])),
                       "differences", n_resamples=200)
    assert abs(ok.exponent + 1.0) < 0.05
    # means that go down and up again: the note names the width where the differences turn
    turn = [np.full(20, v) + 1e-4 * np.random.default_rng(k).standard_normal(20)
            for k, v in enumerate([1.0, 0.5, 0.3, 0.35, 0.36, 0.365])]
    est = bias_exponent(WIDTHS, turn, "differences", n_resamples=200)
    assert any("change sign (at n = 256" in s for s in est.notes)


@pytest.mark.parametrize("reference", [1.0, "differences"])
def test_the_error_of_a_mean_counts_replicas_not_their_components(reference):
    """Four tracked weights of one run move together (a shared draw 0.01 z per replica, their own
    noise 1e-4): the mean over 50 replicas has standard error 0.01 / sqrt(50) = 0.0014, which the
    printed errors and the 'unresolved' note must use. Counting the 200 rows as draws gave half
    that. A standard deviation from 50 draws is within 30% of its value here (3 of its 10%
    standard errors)."""
    rng = np.random.default_rng(0)
    w = [64, 128, 256, 512, 1024]
    samples = []
    for n in w:
        z = rng.standard_normal(50)
        samples.append(np.vstack([1 + 1 / n + 0.01 * z + 1e-4 * rng.standard_normal(50) for _ in range(4)]))
    est = bias_exponent(w, samples, reference, n_resamples=200)
    per_mean = 0.01 / np.sqrt(50) * (np.sqrt(2) if reference == "differences" else 1.0)
    assert np.all(np.abs(est.errors / per_mean - 1) < 0.3), est.errors


def test_richardson_in_one_over_n_bends_a_bias_of_another_order_toward_minus_one():
    """A bias of n^-1/2 (mean 2 + n^-1/2, noise small enough to resolve every bias): Richardson in
    1/n misplaces the limit by (sqrt 2 - 1) / sqrt(1024) on this ladder, so the bias left at the widest
    widths falls like n^-1 between them (two-point slope exactly -1 at 1024..2048, by hand below).
    The estimator's local slope there reads near -1 while the exact limit gives -1/2; the true
    claim is not PASSed and the wrong claim of -1 is not FAILed, and the note says why."""
    from sde_scales.rates import RateKind, Verdict, verdict

    reps = gaussian_replicas(-1.0, 400, seed=5, scale=0.02, mean=lambda n: 2.0 + n**-0.5)
    rich = bias_exponent(WIDTHS, reps, "richardson", seed=0)
    exact = bias_exponent(WIDTHS, reps, 2.0, seed=0)
    ref = 2.0 + (2 * 2048**-0.5 - 1024**-0.5)  # (r q(N) - q(N/2)) / (r - 1), r = 2
    two_point = np.log((2.0 + 1024**-0.5 - ref) / (2.0 + 2048**-0.5 - ref)) / np.log(0.5)
    assert abs(two_point + 1.0) < 1e-9
    assert rich.curvature.slope_max < -0.85 and abs(exact.curvature.slope_max + 0.5) < 0.1
    assert verdict(RateKind.THETA, -0.5, rich).verdict is not Verdict.PASS
    assert verdict(RateKind.THETA, -1.0, rich).verdict is not Verdict.FAIL
    assert verdict(RateKind.THETA, -1.0, exact).verdict is Verdict.FAIL
    assert any("tends to -1 whatever the true exponent" in s for s in rich.notes)


def test_unresolved_bias_is_flagged():
    reps = gaussian_replicas(-0.5, 50, seed=4)  # mean 0: no bias at all
    est = bias_exponent(WIDTHS, reps, 0.0, seed=0)
    assert est.notes and "within 2 standard errors" in est.notes[0]


def test_pooled_components_and_statistic_exponent():
    """(J, R) samples pool J exchangeable components; a user statistic (here the spread) gives
    the same exponent as the dedicated estimator."""
    rng = np.random.default_rng(17)
    reps = [n**-0.5 * rng.standard_normal((4, 500)) for n in WIDTHS]
    pooled = fluctuation_exponent(WIDTHS, reps, seed=0)
    assert pooled.ci[0] <= -0.5 <= pooled.ci[1]
    one = fluctuation_exponent(WIDTHS, [r[0] for r in reps], seed=0)
    assert pooled.ci_width < one.ci_width  # four components carry more information than one
    st = statistic_exponent(WIDTHS, [r[0] for r in reps], lambda x: np.std(x, axis=-1, ddof=1), seed=0)
    assert st.exponent == pytest.approx(one.exponent, abs=1e-12)


def test_planted_false_claim_fails_and_true_claim_passes():
    """A quantity that is Theta(n^-1/2): claiming Theta(n^-1) must FAIL, Theta(n^-1/2) must PASS,
    and O(n^-1) must FAIL too."""
    est = fluctuation_exponent(WIDE, gaussian_replicas(-0.5, 2000, seed=5, widths=WIDE), seed=0)
    assert verdict(RateKind.THETA, -1.0, est).verdict is Verdict.FAIL
    assert verdict(RateKind.THETA, -0.5, est).verdict is Verdict.PASS
    assert verdict(RateKind.BIG_O, -1.0, est).verdict is Verdict.FAIL
    assert verdict(RateKind.BIG_O, -0.5, est).verdict is Verdict.PASS


def test_a_statistic_that_resamples_to_no_log_gives_a_nan_interval_quietly_and_no_verdict():
    """The mean of replicas near zero is positive at the data and not in every resample (a delay that
    the data barely show): its log is NaN there, the percentile interval is NaN, and the verdict is
    INCONCLUSIVE saying so, without scipy's warning of a "degenerate BCa interval" on stderr."""
    import warnings

    rng = np.random.default_rng(7)
    samples = [0.05 + rng.standard_normal(12) for _ in range(4)]
    samples = [s - s.mean() + 0.05 for s in samples]  # each width's mean is 0.05 at the data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = statistic_exponent(WIDTHS[:4], samples, lambda x: np.mean(x, axis=-1), n_resamples=500)
    assert np.isfinite(est.exponent) and not np.all(np.isfinite(est.ci))
    v = verdict(RateKind.THETA, 0.0, est)
    assert v.verdict is Verdict.INCONCLUSIVE and "not finite" in v.reason


def test_non_finite_interval_is_never_a_pass():
    est = ExponentEstimate(-0.5, (np.nan, np.nan), WIDTHS[:3].astype(float), np.ones(3), np.ones(3), 0.0, "fluctuation")
    for kind in RateKind:
        assert verdict(kind, -0.5, est).verdict is Verdict.INCONCLUSIVE


def test_values_need_five_points_for_a_tolerance():
    x = np.array([1.0, 2, 4, 8])
    est = exponent_from_values(x, 3 * x**-0.75)
    assert est.curvature is None
    r = verdict(RateKind.THETA, -0.75, est)
    assert r.verdict is Verdict.INCONCLUSIVE and r.tolerance is None  # next-order terms not measured
    # the reason says so, whatever the claim and its kind (it read "lies in unbounded" before)
    for kind, claim in [(RateKind.THETA, -0.75), (RateKind.THETA, 3.0), (RateKind.BIG_O, -0.5),
                        (RateKind.BIG_O, -3.0)]:
        r = verdict(kind, claim, est)
        assert r.verdict is Verdict.INCONCLUSIVE
        assert "not measured" in r.reason and "at least 5 widths (got 4)" in r.reason and "unbounded" not in r.reason
    x5 = np.array([1.0, 2, 4, 8, 16])
    est5 = exponent_from_values(x5, 3 * x5**-0.75 * (1 + 0.01 * np.sin(x5)))
    assert est5.ci[0] <= -0.75 <= est5.ci[1] and est5.ci_width < 0.05


def test_bad_inputs():
    with pytest.raises(InvalidArgumentError, match="at least 3 widths"):
        fluctuation_exponent([64, 128], [np.ones(5), np.ones(5)])
    with pytest.raises(InvalidArgumentError, match="increasing"):
        fluctuation_exponent([64, 32, 128], [np.random.rand(5)] * 3)
    with pytest.raises(InvalidArgumentError, match="non-finite"):
        fluctuation_exponent([64, 128, 256], [np.random.rand(5), np.array([1, np.nan, 2.0]), np.random.rand(5)])
    with pytest.raises(InvalidArgumentError, match="replicas"):
        fluctuation_exponent([64, 128, 256], [np.random.rand(5), np.random.rand(2), np.random.rand(5)])
    with pytest.raises(InvalidArgumentError, match="richardson"):
        bias_exponent([64, 128, 256], [np.random.rand(5)] * 3, "mean-field")
    with pytest.raises(InvalidArgumentError, match="positive finite"):
        statistic_exponent([64, 128, 256], [np.random.rand(5)] * 3, lambda x: -np.ones(np.shape(x)[:-1]))
    with pytest.raises(InvalidArgumentError, match="RateKind"):
        verdict("Theta", -0.5, fluctuation_exponent(WIDTHS, gaussian_replicas(-0.5, 50, seed=1)))


def test_bad_verdict_and_estimator_arguments_are_refused_by_name():
    """A NaN claim came out PASS ("nan within [...]"); confidence 1.5 gave a NaN interval and 0 one
    of zero width; n_resamples=0 ended in scipy's ValueError; unsorted x in exponent_from_values
    mislabelled the ends of its local slopes."""
    import fractions

    import sympy

    x = np.array([64.0, 128, 256, 512, 1024])
    est = exponent_from_values(x, x**-0.5 * (1 + 0.001 * np.sin(x)))
    for kw, said in [({"predicted": float("nan")}, "predicted=nan"), ({"predicted": float("inf")}, "predicted=inf"),
                     ({"max_width": -1.0}, "max_width=-1.0"), ({"floor": -0.1}, "floor=-0.1"),
                     ({"min_replicas": 0}, "min_replicas=0")]:
        args = {"predicted": -0.5, **kw}
        with pytest.raises(InvalidArgumentError, match=re.escape(said)):
            verdict(RateKind.THETA, args.pop("predicted"), est, **args)
    # exact claims written as sympy or Fraction numbers are numbers too
    for p in (sympy.Rational(-1, 2), fractions.Fraction(-1, 2), np.float32(-0.5)):
        assert verdict(RateKind.THETA, p, est).verdict is Verdict.PASS
    for conf in (0, 1.0, 1.5, float("nan")):
        with pytest.raises(InvalidArgumentError, match="strictly between 0 and 1"):
            exponent_from_values(x, x**-0.5, confidence=conf)
        with pytest.raises(InvalidArgumentError, match="strictly between 0 and 1"):
            fluctuation_exponent(x, gaussian_replicas(-0.5, 20, seed=1, widths=x), confidence=conf)
    with pytest.raises(InvalidArgumentError, match="n_resamples=0"):
        fluctuation_exponent(x, gaussian_replicas(-0.5, 20, seed=1, widths=x), n_resamples=0)
    with pytest.raises(InvalidArgumentError, match="increasing"):
        exponent_from_values(x[::-1], x**-0.5)
    # True read as a width of 1, a complex sample's imaginary part dropped with a numpy warning, and a
    # negative seed ended in numpy's "expected non-negative integer"
    reps = gaussian_replicas(-0.5, 20, seed=1, widths=x)
    with pytest.raises(InvalidArgumentError, match="widths holds boolean values"):
        fluctuation_exponent([True, 128, 256, 512, 1024], reps)
    with pytest.raises(InvalidArgumentError, match="the samples at width 128 holds complex values"):
        fluctuation_exponent(x, [r + 0j if i == 1 else r for i, r in enumerate(reps)])
    with pytest.raises(InvalidArgumentError, match="values holds boolean values"):
        exponent_from_values(x, x > 100)
    with pytest.raises(InvalidArgumentError, match="seed=-1"):
        fluctuation_exponent(x, reps, seed=-1)
    # the seed is read as before: an int and its SeedSequence give the same interval
    assert fluctuation_exponent(x, reps, seed=5).ci == fluctuation_exponent(x, reps, seed=np.random.SeedSequence(5)).ci


def test_values_whose_squares_leave_the_double_range_and_quantities_without_spread_are_refused():
    """Values of 1e-200 gave "zero spread" (their squares underflow to 0) and one of 1e300 an
    exponent of -200 with an overflow warning; a second quantity without spread gave a
    separation interval from its floored log (1e-300), not an error."""
    x = np.array([64.0, 128, 256, 512])
    good = gaussian_replicas(-0.5, 12, seed=4, widths=x)
    for scale in (1e-200, 1e200):
        with pytest.raises(InvalidArgumentError, match="outside the magnitudes 1e-150 to 1e.150"):
            fluctuation_exponent(x, [s * scale for s in good], n_resamples=200)
    # at 1e-140 (inside the limits) the exponent is the unscaled one: the unit does not matter
    a = fluctuation_exponent(x, good, n_resamples=200)
    b = fluctuation_exponent(x, [s * 1e-140 for s in good], n_resamples=200)
    assert b.exponent == pytest.approx(a.exponent, abs=1e-9)
    flat = [np.ones(12) for _ in x]
    with pytest.raises(InvalidArgumentError, match="zero spread .* in the second quantity"):
        exponent_difference(x, good, flat, n_resamples=200)
    with pytest.raises(InvalidArgumentError, match="zero spread .* in the first quantity"):
        exponent_difference(x, flat, good, n_resamples=200)


def test_rate_plot_says_which_points_a_log_axis_cannot_show():
    """A bias of exactly 0 at one width was left out of the figure with nothing said. (The bias
    reading now refuses such a bias, whose log is -inf; an estimate built by hand can still hold
    one, and the figure still says so.)"""
    import dataclasses

    from sde_scales.plots import rate_plot

    samples = gaussian_replicas(-0.5, 40, seed=3, mean=lambda n: n**-1.0)
    means = np.array([s.mean() for s in samples])
    ref = np.zeros(WIDTHS.size)
    ref[2] = means[2]  # the mean at n = 256 is its reference: a bias of exactly 0 there
    with pytest.raises(InvalidArgumentError, match="equals the reference exactly at width.s. 256: a bias of 0"):
        bias_exponent(WIDTHS, samples, ref, n_resamples=200)
    clean = bias_exponent(WIDTHS, samples, 0.0, n_resamples=200)
    est = dataclasses.replace(clean, values=np.where(np.arange(WIDTHS.size) == 2, 0.0, clean.values))
    assert est.values[2] == 0 and np.all(est.values[[0, 1, 3, 4, 5]] > 0)
    with pytest.warns(UserWarning, match="n = 256: 0"):
        fig = rate_plot(est)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("1 of 6 points <= 0 or not finite, not drawn" in t for t in labels), labels
    drawn = fig.axes[0].containers[0].lines[0].get_xdata()
    assert sorted(drawn) == [64, 128, 512, 1024, 2048]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = rate_plot(clean)
    assert not any("not drawn" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_rate_plot_draws_each_slope_it_names():
    """The lines of a rate plot on log-log axes: the measured series' line has the fitted exponent
    as its slope, and the dashed predicted line the predicted one (here -1/2 against a measured -1,
    so a sign or a slope taken from the wrong place shows), both through the data's centre."""
    from sde_scales.plots import rate_plot

    est = exponent_from_values(WIDTHS, 3.0 * WIDTHS**-1.0)
    fig = rate_plot(est, predicted=-0.5, predicted_label="claimed -1/2")
    lines = {l.get_label(): l for l in fig.axes[0].get_lines()}
    for label, slope in (("claimed -1/2", -0.5), (next(k for k in lines if k.startswith("measured")), est.exponent)):
        x, y = (np.asarray(v, float) for v in lines[label].get_data())
        assert np.polyfit(np.log(x), np.log(y), 1)[0] == pytest.approx(slope, rel=1e-9)
    assert est.exponent == pytest.approx(-1.0, rel=1e-9)


def test_the_planted_rates_benchmark_plants_what_it_states():
    """``benchmarks/rate_verdicts.py`` plants sd = n^p (1 + D n^-omega) (fluctuation), a mean
    1 + n^p (1 + D n^-omega) with per-replica noise 2 n^p (bias), and beside the first a second
    quantity of sd n^(p + 1/2) correlated 1/2 with it (separation): checked on 200,000 replicas
    against those formulas, to the sampling error of a standard deviation (1/sqrt(2R) relative:
    0.0016; 5 of them allowed), of a mean (2 n^p / sqrt(R)) and of a correlation (1/sqrt(R))."""
    rv = load_benchmark("rate_verdicts")
    rng = np.random.default_rng(7)
    widths, R, p, D, omega = (64, 4096), 200_000, -0.5, 2.0, 0.5
    for n, x in zip(widths, rv.planted(rng, widths, R, p, D, omega, "fluctuation")):
        want = n**p * (1 + D * n**-omega)
        assert abs(x.std() / want - 1) < 5 / np.sqrt(2 * R)
    for n, x in zip(widths, rv.planted(rng, widths, R, p, D, omega, "bias")):
        bias = n**p * (1 + D * n**-omega)
        assert abs(x.mean() - 1 - bias) < 5 * 2 * n**p / np.sqrt(R)
        assert abs(x.std() / (2 * n**p) - 1) < 5 / np.sqrt(2 * R)
    a, b = rv.planted(rng, widths, R, p, D, omega, "separation")
    for n, xa, xb in zip(widths, a, b):
        assert abs(xa.std() / (n**p * (1 + D * n**-omega)) - 1) < 5 / np.sqrt(2 * R)
        assert abs(xb.std() / n**(p + 0.5) - 1) < 5 / np.sqrt(2 * R)
        assert abs(np.corrcoef(xa, xb)[0, 1] - 0.5) < 5 / np.sqrt(R)


def test_planted_rates_true_claims_never_fail_and_claims_a_quarter_off_never_pass():
    """One planted data set per configuration of the benchmark (2 grids x 3 replica counts x 2
    exponents x 4 corrections x 3 readings: 144 estimates, 1,392 verdicts). The full run (100 per
    configuration, benchmarks/RESULTS.md) gave 4 FAILs of true claims in 33,600 (two series whose
    slope and curvature intervals both missed: the intervals' own error, about 1 in 10,000
    judgements) and no PASS of a claim 0.25 or 0.5 off in 67,200; these 336 true and 672 false
    judgements must show neither, and the largest replica count must decide something (a rule that
    answers INCONCLUSIVE to everything would pass the first two checks)."""
    rv = load_benchmark("rate_verdicts")
    rows = rv.run(1, progress=False)
    assert len(rows) == 96 * 11 + 48 * 7
    assert sum(r["FAIL"] for r in rows if r["true"]) == 0
    assert sum(r["PASS"] for r in rows if not r["true"] and ("0.25" in r["claim"] or "0.5" in r["claim"])) == 0
    big = [r for r in rows if r["replicas"] == 1024]
    assert sum(r["FAIL"] for r in big if not r["true"]) > 0 and sum(r["PASS"] for r in big if r["true"]) > 0


def test_planted_biases_judged_without_their_limit_never_fail_a_true_claim(capsys):
    """The bias reading's planted tables of the benchmark, with the limit hidden (the differences
    of successive widths' means) and the noise at 0.02 n^p per replica, where the differences are
    resolved: one data set per configuration (48 estimates, 432 verdicts). In 50 per configuration
    (benchmarks/RESULTS.md) a true Theta claim FAILed 7 times in 2,400 (the stated limit: 10) and a
    claim 0.25 off PASSed once in 9,600: these must show no FAIL of a true claim and no PASS of a
    claim 1/2 off, and decide something. A grid in no constant ratio is refused with exit 2."""
    rv = load_benchmark("rate_verdicts")
    rows = rv.run(1, progress=False, readings=("bias",), bias_reference="differences", bias_noise=0.02)
    assert len(rows) == 48 * 11
    assert sum(r["FAIL"] for r in rows if r["true"]) == 0
    assert sum(r["PASS"] for r in rows if not r["true"] and "0.5" in r["claim"]) == 0
    assert sum(r["FAIL"] for r in rows if not r["true"]) > 0 and sum(r["PASS"] for r in rows if r["true"]) > 0
    assert rv.main(["--seeds", "1", "--readings", "bias", "--bias-reference", "differences",
                    "--grid", "100,200,300,400,600"]) == 2
    assert "constant ratio" in capsys.readouterr().err


def test_a_long_axis_label_is_wrapped_inside_the_figure_and_keeps_its_math_whole():
    """verify's label of a bias row on a raw weight's displacement ran off the top of the figure
    ("... (evaluation b"); wrapped at spaces outside $...$, every line holds whole math spans and
    the drawn label lies inside the figure."""
    from sde_scales.plots import plt, rate_plot, wrap_label

    label = (r"|seed mean at $n$ - at the next width| of input weight "
             r"$W^{(1)}_{ij}(T) - W^{(1)}_{ij}(0)$ (raw)")
    lines = wrap_label(label).split("\n")
    assert len(lines) > 1 and " ".join(lines) == label
    assert all(line.count("$") % 2 == 0 for line in lines)
    assert all(len(line) <= 44 or " " not in line.replace(r"$W^{(1)}_{ij}(T) - W^{(1)}_{ij}(0)$", "W")
               for line in lines)
    x = np.array([64.0, 128, 256, 512])
    fig = rate_plot(exponent_from_values(x, 1 / x), ylabel=label)
    fig.canvas.draw()
    box = fig.axes[0].yaxis.label.get_window_extent(fig.canvas.get_renderer())
    assert box.y0 >= 0 and box.y1 <= fig.bbox.height and box.x0 >= 0
    plt.close(fig)
    assert wrap_label("short") == "short" and wrap_label("") == ""


def test_rate_plot_labels_a_narrow_log_axis_in_plain_numbers():
    """Values within a decade were labelled 3 x 10^-2, 4 x 10^-2, 6 x 10^-2 (matplotlib's minor
    labels); they are now 0.03, 0.05, 0.07. A series over many decades keeps the powers of ten."""
    from sde_scales.plots import plt, rate_plot

    def labels(est):
        fig = rate_plot(est)
        fig.canvas.draw()
        lo, hi = fig.axes[0].get_ylim()
        shown = [t.get_text() for t, v in zip(fig.axes[0].get_yticklabels(), fig.axes[0].get_yticks())
                 if lo <= v <= hi and t.get_text()]
        plt.close(fig)
        return shown

    x = np.array([64.0, 128, 256, 512, 1024])
    narrow = exponent_from_values(x, 0.1 * (x / 64) ** -0.3)  # 0.1 down to 0.044
    got = labels(narrow)
    assert got and all(re.fullmatch(r"0\.\d+", t) for t in got), got
    wide = exponent_from_values(x, (x / 64) ** -4.0)  # five decades
    got = labels(wide)
    assert got and not any(re.fullmatch(r"0\.\d+", t) for t in got), got


def test_the_fluctuation_reading_reports_the_unbiased_spread_per_width():
    """The values behind the exponent (printed per width, plotted, in the JSON) are the sample
    standard deviations with n - 1 in the variance, and with components their variances pooled
    before the root; computed here by hand from the replicas."""
    rng = np.random.default_rng(4)
    x = np.array([64.0, 128, 256, 512])
    reps = [rng.standard_normal(R) * n**-0.5 for n, R in zip(x, (5, 7, 9, 11))]
    est = fluctuation_exponent(x, reps, n_resamples=200)
    want = [np.sqrt(np.sum((r - r.mean()) ** 2) / (r.size - 1)) for r in reps]
    np.testing.assert_allclose(est.values, want, rtol=1e-12)
    comps = [rng.standard_normal((3, 6)) * n**-0.5 for n in x]  # 3 components x 6 replicas
    est2 = fluctuation_exponent(x, comps, n_resamples=200)
    want2 = [np.sqrt(np.mean([np.sum((c - c.mean()) ** 2) / (c.size - 1) for c in m])) for m in comps]
    np.testing.assert_allclose(est2.values, want2, rtol=1e-12)


def test_the_replicas_an_inconclusive_verdict_asks_for_narrow_its_interval_to_the_pass_width():
    """A true Theta(n^-1/2) at 64 replicas is INCONCLUSIVE for a widened interval wider than 0.3, and
    the reason says how many replicas would narrow it: R (w / 0.3)^2. Planted again at that count
    (the median over 16 series), the widened width comes out near 0.3. Bounds: the rule's
    1/sqrt(R) is about 10% off between 64 and 256 replicas (measured: width x sqrt(R) is 6.4 at 64
    and 7.1 from 256 on; the percentile bootstrap under-covers at few replicas) and a 16-series
    mean has a standard error of 0.02 (7% of 0.3): [0.8, 1.4] x 0.3 holds both at 3 standard
    errors. A count that is not squared (R w / 0.3, about 170) gives a width near 0.55."""
    from sde_scales.rates import _tolerance

    def widened(R, seed):
        est = fluctuation_exponent(WIDTHS, gaussian_replicas(-0.5, R, seed), n_resamples=1000, seed=seed)
        tol, _ = _tolerance(est, 0.0, "")
        return est, est.ci_width + 2 * tol

    need = []
    for seed in range(16):
        est, w = widened(64, seed)
        v = verdict(RateKind.THETA, -0.5, est)
        if v.verdict is Verdict.INCONCLUSIVE and "wide (> 0.3)" in v.reason:
            k = replicas_for_width(64, w, 0.3)
            assert f"about {k:,} replicas per width, against 64 here" in v.reason
            need.append(k)
    assert len(need) >= 12, need
    R1 = int(np.median(need))
    assert 200 < R1 < 1000, need
    mean_width = np.mean([widened(R1, 100 + seed)[1] for seed in range(16)])
    assert 0.8 * 0.3 < mean_width < 1.4 * 0.3, (R1, mean_width)


def _with_term(p, a, R, seed, widths=WIDTHS):
    """R replicas per width of a spread n^p (1 + a (n / n_min)^-1/2): the stated model's term, a
    times the leading one at the smallest width."""
    rng = np.random.default_rng(seed)
    return [n**p * (1 + a * (n / widths[0]) ** -0.5) * rng.standard_normal(R) for n in widths]


@pytest.mark.parametrize("a", [2.0, 4.0])
def test_a_large_next_order_term_does_not_fail_a_true_claim(a):
    """A next-order term 2 or 4 times the leading one at the smallest width (beyond the tolerance's
    NEXT_ORDER_MAX of 1/2) bends the series: its average slope sits 0.2-0.4 below p while the slope
    changes by only 0.1-0.2, so the interval widened by the tolerance alone excluded the true p and
    FAILed it on 13 (a = 2) and 20 (a = 4) of 20 series of 2,000 replicas. The exponents the local
    slopes allow for a term of any size (curved_exponents) hold p: at most 3 FAILs in 20 (1 and 2
    measured; the rectangle of two 95% intervals covers at 90% or more: 2 expected, 3 exceeded with
    probability 0.13 at 10%). False claims 1/2 off still FAIL: flatter than p on at least 18 of 20 (20
    measured); steeper at a = 2 on at least 15 (19 measured), while at a = 4 the series is close to
    the power law p - 1/2 over the range (the regime no range of widths tells apart: NEXT_ORDER_MAX's
    comment), where neither rule FAILs it."""
    from sde_scales.rates import _tolerance

    p, old_fails, fails, flatter_fails, steeper_fails = -0.5, 0, 0, 0, 0
    for seed in range(20):
        est = fluctuation_exponent(WIDTHS, _with_term(p, a, 2000, seed), n_resamples=500, seed=seed)
        tol, _ = _tolerance(est, 0.0, "")
        old_fails += est.curvature.significant and not (est.ci[0] - tol <= p <= est.ci[1] + tol)
        fails += verdict(RateKind.THETA, p, est).verdict is Verdict.FAIL
        flatter_fails += verdict(RateKind.THETA, p + 0.5, est).verdict is Verdict.FAIL
        steeper_fails += verdict(RateKind.THETA, p - 0.5, est).verdict is Verdict.FAIL
    assert old_fails >= 10, old_fails  # the case: the tolerance alone fails the true claim
    assert fails <= 3, fails
    assert flatter_fails >= 18, flatter_fails
    if a == 2.0:
        assert steeper_fails >= 15, steeper_fails


def test_curved_series_pass_an_o_claim_when_every_exponent_they_allow_is_below_it():
    """n^-1 (1 - 0.4 (n / n_min)^-1/2): the local slope falls from about -0.67 towards -1. O(n^-1/2)
    holds, and every exponent the curved series allows (its widened interval and the model's) lies
    below -1/2: PASS, where the curved rule gave INCONCLUSIVE whatever the claim. O(n^-1) (true
    too, at the edge) stays INCONCLUSIVE, O(n^-3/2) (false) never PASSes and FAILs where the
    allowed exponents all lie above it."""
    verdicts = {-0.5: [], -1.0: [], -1.5: []}
    for seed in range(10):
        est = fluctuation_exponent(WIDTHS, _with_term(-1.0, -0.4, 2000, seed), n_resamples=500, seed=seed)
        if not est.curvature.significant:
            continue
        for claim in verdicts:
            verdicts[claim].append(verdict(RateKind.BIG_O, claim, est).verdict)
    assert len(verdicts[-0.5]) >= 8
    assert all(v is Verdict.PASS for v in verdicts[-0.5]), verdicts[-0.5]
    assert Verdict.FAIL not in verdicts[-1.0] and Verdict.PASS not in verdicts[-1.0]
    assert Verdict.PASS not in verdicts[-1.5] and verdicts[-1.5].count(Verdict.FAIL) >= len(verdicts[-1.5]) - 1


def test_the_planted_rates_benchmark_takes_the_terms_it_is_given(capsys):
    """``--corrections D:OMEGA,...`` plants those terms instead of the default four; a term that
    makes the planted quantity negative at n = 64 (D 64^-omega <= -1), or an omega <= 0, is refused
    with exit 2 before anything runs."""
    rv = load_benchmark("rate_verdicts")
    rows = rv.run(1, progress=False, corrections=((16.0, 0.5),))
    assert {(r["D"], r["omega"]) for r in rows} == {(16.0, 0.5)}
    assert len(rows) == 24 * 11 + 12 * 7
    for bad in ("-8:0.5", "1:0", "2", "x:0.5"):
        assert rv.main(["--seeds", "1", f"--corrections={bad}"]) == 2
        assert "--corrections" in capsys.readouterr().err


def test_a_verdict_states_the_exponents_it_allows_and_fails_exactly_the_claims_outside_them():
    """``VerdictResult.allowed`` (``allowed_exponents`` in JSON): disjoint intervals in increasing
    order; a Theta claim FAILs exactly when it lies outside all of them, on curved series (a term
    twice the leading one) and on pure power laws alike."""
    claims = np.linspace(-1.2, 0.2, 57)
    for seed, a, R in ((0, 2.0, 2000), (1, 2.0, 2000), (2, 0.0, 300), (3, -0.4, 2000)):
        est = fluctuation_exponent(WIDTHS, _with_term(-0.5, a, R, seed), n_resamples=500, seed=seed)
        for c in claims:
            v = verdict(RateKind.THETA, float(c), est)
            iv = v.allowed
            assert iv and all(lo <= hi for lo, hi in iv) and all(iv[k][1] < iv[k + 1][0] for k in range(len(iv) - 1))
            inside = any(lo <= c <= hi for lo, hi in iv)
            assert (v.verdict is Verdict.FAIL) == (not inside), (seed, c, v.verdict, iv)
            assert v.to_dict()["allowed_exponents"] == [list(x) for x in iv]


def test_the_replica_count_and_the_curved_set_refuse_what_they_cannot_use():
    """replicas_for_width on no replicas, a NaN or non-positive width; curved_exponents on an
    estimate without local slopes (fewer than 4 widths) or widths out of order: refused by value."""
    from sde_scales.rates import curved_exponents

    assert replicas_for_width(64, 0.6, 0.3) == 256
    for args in ((0, 0.6, 0.3), (64, float("nan"), 0.3), (64, 0.6, 0.0), (2.5, 0.6, 0.3)):
        with pytest.raises(InvalidArgumentError):
            replicas_for_width(*args)
    est = fluctuation_exponent(WIDTHS, _with_term(-0.5, 2.0, 500, 0), n_resamples=200, seed=0)
    with pytest.raises(InvalidArgumentError, match="Curvature"):
        curved_exponents(WIDTHS, None)
    with pytest.raises(InvalidArgumentError, match="increasing"):
        curved_exponents(WIDTHS[::-1], est.curvature)


@pytest.mark.parametrize("r", [-0.12, -0.05, 0.3, 2.0])
def test_the_curved_set_holds_the_exponent_of_a_noiseless_series_of_its_model(r):
    """The exponents curved_exponents allows are judged against the estimator's local slopes, the
    end slopes of a quadratic in log n. On the noiseless series n^-1/2 (1 + r (n/n_max)^-1/2),
    with each slope's interval +-0.01 about its value, the set must hold -1/2 and leave out
    exponents 0.2 away (a small positive term is weakly identified: at r = 0.3 the set is
    [-0.55, -0.41]; at r = 2 a second range of terms, negative ones, also fits, near -0.84). The tangents of the model (its slopes in the limit of many widths) differ
    from the quadratic's end slopes by up to 0.2 for a negative term (0.65 against 0.43 at n_min for
    r = -0.1 on 64..2048): the set built on them left out the true exponent (it was [-0.73, -0.68]
    on a term of -3/4 the leading one at n = 64, 2,000 replicas)."""
    from sde_scales.rates import Curvature, _fit_stats, _merged, curved_exponents

    x = np.asarray(WIDTHS, float)
    st = _fit_stats(np.log(x), -0.5 * np.log(x) + np.log1p(r * (x / x[-1]) ** -0.5))
    e = 0.01  # the slopes' stated intervals: narrow, as many replicas give them
    curv = Curvature(float(st[1]), float(st[2]), float(st[3]), (st[3] - 2 * e, st[3] + 2 * e),
                     (st[1] - e, st[1] + e), (st[2] - e, st[2] + e))
    iv = _merged(*curved_exponents(x, curv))
    assert any(lo <= -0.5 <= hi for lo, hi in iv), iv
    assert not any(lo <= c <= hi for lo, hi in iv for c in (-0.7, -0.3)), iv
    if r < 1:  # one range of terms fits: one interval, no slivers of the grid's spacing
        assert len(iv) == 1, iv


def _pair_with_terms(a_term, b_term, R, seed, rho=0.5):
    """Paired replicas of a = n^-1 (1 + a_term (n/64)^-1/2) xi and b = n^-1/2 (1 + b_term (n/64)^-1/2)
    (rho xi + sqrt(1 - rho^2) eta) on WIDE: sd(a) / sd(b) has the exponent -1/2 exactly."""
    rng = np.random.default_rng(seed)
    a, b = [], []
    for n in WIDE:
        xi, eta = rng.standard_normal(R), rng.standard_normal(R)
        a.append(n**-1.0 * (1 + a_term * (n / 64) ** -0.5) * xi)
        b.append(n**-0.5 * (1 + b_term * (n / 64) ** -0.5) * (rho * xi + np.sqrt(1 - rho**2) * eta))
    return a, b


@pytest.mark.parametrize("terms, off_claims", [((0.0, 2.0), (0.0, -1.0)), ((-0.5, 2.0), (-1.0,))])
def test_a_term_in_the_subtracted_quantity_does_not_fail_a_true_separation(terms, off_claims):
    """The separation was judged on the ratio sd(a) / sd(b) alone, with one next-order term. A term
    in b twice the leading one at n = 64 makes the ratio's term (1 + a x) / (1 + 2 x), outside that
    model: the true difference -1/2 was FAILed on 10 of 10 series of 2,000 replicas with a = 0
    (7 with a = -1/2, measured). b is curved on its own, so the differences of the exponents a and
    b allow on their own are allowed too: at most 1 FAIL in 10 (0 measured in both cases; the
    own sets cover at 90% or more each). Differences 1/2 off still FAIL on at least 8 of 10 (0:
    9 measured, 10 before; -1: 10, as before). With a = -1/2 the ratio is 1/6 of its power law at
    n = 64, and 0 was FAILed on none of 10 before either."""
    true_fails, off = 0, dict.fromkeys(off_claims, 0)
    for seed in range(10):
        a, b = _pair_with_terms(*terms, 2000, seed)
        est = exponent_difference(WIDE, a, b, n_resamples=500, seed=seed)
        assert est.parts is not None and est.parts[1].curvature.significant
        true_fails += verdict(RateKind.SEPARATION, -0.5, est).verdict is Verdict.FAIL
        for d in off:
            off[d] += verdict(RateKind.SEPARATION, d, est).verdict is Verdict.FAIL
    assert true_fails <= 1, true_fails
    assert min(off.values()) >= 8, off


def test_a_separations_one_bootstrap_gives_each_part_the_estimate_it_has_on_its_own():
    """The ratio and both parts come from one bootstrap (the same resamples, each spread computed
    once per resample); each part must be exactly the fluctuation estimate of its quantity with
    the same seed, and the ratio's interval that of the ratio's own percentile bootstrap (a
    mis-sliced interval, or a part given the other's statistics, changes them). Three widths (no
    curvature) and components (2-d samples) included."""
    rng = np.random.default_rng(7)
    for widths, shape in ((WIDE, (60,)), (np.array([64.0, 256.0, 1024.0]), (30,)), (WIDE[:5], (3, 40))):
        a = [rng.standard_normal(shape) / n for n in widths]
        b = [rng.standard_normal(shape) * (1 + 4 / np.sqrt(n)) / np.sqrt(n) for n in widths]
        est = exponent_difference(widths, a, b, n_resamples=300, seed=3)
        for part, q in zip(est.parts, (a, b)):
            alone = fluctuation_exponent(widths, q, n_resamples=300, seed=3)
            assert part.to_dict() == alone.to_dict()
        ratio = statistic_exponent(widths, [np.stack([x, y]) for x, y in zip(a, b)],
                                   _ratio_of_spreads(len(shape) == 2), n_resamples=300, seed=3)
        assert est.ci == pytest.approx(ratio.ci, abs=1e-12) and est.exponent == pytest.approx(ratio.exponent)


def _ratio_of_spreads(components: bool):
    """Statistic of stacked (quantity, [component,] ..., replica) samples: the first quantity's
    spread over the second's, components pooled as the root mean of their variances."""
    def statistic(s):
        v = s.var(axis=-1, ddof=1)
        if components:
            v = v.mean(axis=1)
        return np.sqrt(v[0] / v[1])
    return statistic


def test_a_separation_states_the_parts_it_allows_and_keeps_its_power_where_the_subtracted_one_is_not_curved():
    """Pure power laws in both quantities: the subtracted one is not curved on its own, so the
    ratio's paired interval judges alone, and claims 0.25 off FAIL on every series. A term in the
    first quantity alone leaves the ratio one-term exactly: the parts are not consulted (the
    verdict is the ratio's). With a curved subtracted quantity, the verdict's allowed exponents hold
    the parts' differences, and the estimate's JSON (rate --minus --json) holds both parts'
    estimates."""
    for seed in range(5):
        est = exponent_difference(WIDE, *_pair_with_terms(0.0, 0.0, 2000, seed), n_resamples=500, seed=seed)
        if any(q.curvature.significant for q in est.parts):
            continue
        assert verdict(RateKind.SEPARATION, -0.5, est).verdict is Verdict.PASS
        for d in (-0.75, -0.25):
            assert verdict(RateKind.SEPARATION, d, est).verdict is Verdict.FAIL
    est = exponent_difference(WIDE, *_pair_with_terms(2.0, 0.0, 2000, 0), n_resamples=500, seed=0)
    assert est.parts[0].curvature.significant and not est.parts[1].curvature.significant
    for d in np.linspace(-1.2, 0.2, 29):
        v, alone = verdict(RateKind.SEPARATION, d, est), verdict(RateKind.SEPARATION, d, replace(est, parts=None))
        assert (v.verdict, v.reason, v.allowed) == (alone.verdict, alone.reason, alone.allowed)
    est = exponent_difference(WIDE, *_pair_with_terms(0.0, 2.0, 2000, 0), n_resamples=500, seed=0)
    v = verdict(RateKind.SEPARATION, -0.5, est)
    assert v.verdict is Verdict.INCONCLUSIVE and "on their own" in v.reason
    assert any(lo <= -0.5 <= hi for lo, hi in v.allowed)
    d = est.to_dict()
    assert [q["exponent"] for q in d["parts"]] == [q.exponent for q in est.parts]
