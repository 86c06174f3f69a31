"""Exponent estimates on synthetic data with a known exponent and noise level, and verdicts."""

import numpy as np
import pytest

from sde_scales.errors import InvalidArgumentError
from sde_scales.models import WidthModel, simulate_widths
from sde_scales.rates import (
    RateKind,
    Verdict,
    bias_exponent,
    exponent_difference,
    exponent_from_values,
    fluctuation_exponent,
    verdict,
)

WIDTHS = np.array([64, 128, 256, 512, 1024, 2048])


def gaussian_replicas(p, R, seed, scale=1.0, mean=None):
    """R replicas per width of N(mean(n), (scale n^p)^2): the spread has exponent p exactly."""
    rng = np.random.default_rng(seed)
    return [(0.0 if mean is None else mean(n)) + scale * n**p * rng.standard_normal(R) for n in WIDTHS]


@pytest.mark.parametrize("p", [-1.0, -0.5, -0.25])
def test_fluctuation_exponent_recovers_known_exponent(p):
    """With R = 2000 the standard error of a log-std is 1/sqrt(2(R-1)) = 0.016 per point, so the
    slope over six widths has a standard error of about 0.009; the 95% interval must cover p in
    almost every seed, and be narrower than 0.1."""
    est = fluctuation_exponent(WIDTHS, gaussian_replicas(p, 2000, seed=1), seed=0)
    assert est.ci[0] <= p <= est.ci[1]
    assert est.ci_width < 0.1
    assert abs(est.exponent - p) < 0.04  # about 4 standard errors of the slope


def test_interval_coverage_is_about_95_percent():
    """Across 40 independent data sets the 95% interval covers the true exponent in 33..40 of
    them (binomial(40, 0.95) puts 99.6% of its mass there)."""
    hits = 0
    for s in range(40):
        est = fluctuation_exponent(WIDTHS[:4], gaussian_replicas(-0.5, 200, seed=100 + s)[:4], n_resamples=600, seed=s)
        hits += est.ci[0] <= -0.5 <= est.ci[1]
    assert 33 <= hits <= 40


def test_bias_exponent_recovers_known_exponent():
    """Mean n^-1 with replica noise 0.2 n^-1 and R = 2000: each bias is resolved to 0.5%."""
    reps = gaussian_replicas(-1.0, 2000, seed=3, scale=0.2, mean=lambda n: 1.0 / n)
    est = bias_exponent(WIDTHS, reps, 0.0, seed=0)
    assert est.ci[0] <= -1.0 <= est.ci[1] and est.ci_width < 0.1
    assert not est.notes


def test_unresolved_bias_is_flagged():
    reps = gaussian_replicas(-0.5, 50, seed=4)  # mean 0: no bias at all
    est = bias_exponent(WIDTHS, reps, 0.0, seed=0)
    assert est.notes and "within 2 standard errors" in est.notes[0]


def test_planted_false_claim_fails_and_true_claim_passes():
    """A quantity that is Theta(n^-1/2): claiming Theta(n^-1) must FAIL, Theta(n^-1/2) must PASS,
    and O(n^-1) must FAIL too."""
    est = fluctuation_exponent(WIDTHS, gaussian_replicas(-0.5, 1000, seed=5), seed=0)
    assert verdict(RateKind.THETA, -1.0, est).verdict is Verdict.FAIL
    assert verdict(RateKind.THETA, -0.5, est).verdict is Verdict.PASS
    assert verdict(RateKind.BIG_O, -1.0, est).verdict is Verdict.FAIL
    assert verdict(RateKind.BIG_O, -0.5, est).verdict is Verdict.PASS


def test_too_small_experiment_is_inconclusive():
    """Five replicas at three nearby widths cannot pin an exponent down."""
    w = WIDTHS[:3]
    rng = np.random.default_rng(6)
    reps = [n**-0.5 * rng.standard_normal(5) for n in w]
    est = fluctuation_exponent(w, reps, seed=0)
    r = verdict(RateKind.THETA, -0.5, est)
    assert est.ci_width > 0.3
    assert r.verdict is Verdict.INCONCLUSIVE and "more replicas" in r.reason


def test_non_finite_interval_is_never_a_pass():
    from sde_scales.rates import ExponentEstimate

    est = ExponentEstimate(-0.5, (np.nan, np.nan), WIDTHS[:3].astype(float), np.ones(3), np.ones(3), 0.0, "fluctuation")
    for kind in RateKind:
        assert verdict(kind, -0.5, est).verdict is Verdict.INCONCLUSIVE


def test_separation_verdicts():
    macro = gaussian_replicas(-1.0, 1000, seed=7)
    micro = gaussian_replicas(-0.5, 1000, seed=8)
    assert verdict(RateKind.SEPARATION, 0.0, exponent_difference(WIDTHS, macro, micro)).verdict is Verdict.PASS
    same = gaussian_replicas(-0.5, 1000, seed=9)
    r = verdict(RateKind.SEPARATION, 0.0, exponent_difference(WIDTHS, same, micro))
    assert r.verdict is Verdict.FAIL and "no separation" in r.reason
    assert verdict(RateKind.SEPARATION, 0.0, exponent_difference(WIDTHS, micro, macro)).verdict is Verdict.FAIL


def test_exponent_from_values():
    x = np.array([1.0, 2, 4, 8, 16])
    est = exponent_from_values(x, 3 * x**-0.75 * (1 + 0.01 * np.sin(x)))
    assert est.ci[0] <= -0.75 <= est.ci[1] and est.ci_width < 0.05


def test_bad_inputs():
    with pytest.raises(InvalidArgumentError, match="at least 3 widths"):
        fluctuation_exponent([64, 128], [np.ones(5), np.ones(5)])
    with pytest.raises(InvalidArgumentError, match="increasing"):
        fluctuation_exponent([64, 32, 128], [np.random.rand(5)] * 3)
    with pytest.raises(InvalidArgumentError, match="non-finite"):
        fluctuation_exponent([64, 128, 256], [np.random.rand(5), np.array([1, np.nan, 2.0]), np.random.rand(5)])
    with pytest.raises(InvalidArgumentError, match="replicas"):
        fluctuation_exponent([64, 128, 256], [np.random.rand(5), np.random.rand(2), np.random.rand(5)])


def test_width_model_macro_micro_rates():
    """On the width model itself (tanh teacher, beta = 1/2): macro spread ~ n^-1, micro ~ n^-1/2.
    A wrong beta (noise and spread not shrinking, beta = 0) must not pass the macro O(1/n) claim."""
    base = WidthModel(n=1, c=0.5)
    s = simulate_widths(base, [64, 128, 256, 512], 300, 0.02, seed=1)
    macro = fluctuation_exponent(s.widths, s.macro)
    micro = fluctuation_exponent(s.widths, s.micro)
    assert verdict(RateKind.BIG_O, -1.0, macro).verdict is Verdict.PASS
    assert verdict(RateKind.THETA, -0.5, micro).verdict is Verdict.PASS
    sp = simulate_widths(WidthModel(n=1, c=0.5, beta=0.0), [64, 128, 256, 512], 300, 0.02, seed=1)
    assert verdict(RateKind.BIG_O, -1.0, fluctuation_exponent(sp.widths, sp.macro)).verdict is Verdict.FAIL
