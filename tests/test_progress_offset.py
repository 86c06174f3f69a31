"""The kernel law's progress offset, A (S1 + S0)^-alpha, and the test that decides whether a fit keeps it.

Planted families of known truth: the offset law itself (the test must keep the offset, and its
predictions must beat the plain law's), and the plain law (the test must drop it at about its
stated level, so that a user whose curves follow the plain term gets the plain fit)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from sde_scales import schedules
from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting.curves import ScheduleFeatures, planted_curve
from sde_scales.fitting.fit import OFFSET_TEST_LEVEL, fit, fit_warnings, offset_test, predict
from sde_scales.fitting.laws import KernelLaw

N, PEAK, SKIP = 5001, 1e-3, 200


def _schedules():
    return {"cos": schedules.cosine(N, PEAK, final_fraction=0.1, warmup_steps=100),
            "wsd": schedules.wsd(N, PEAK, fraction=0.2, warmup_steps=100),
            "const": schedules.constant(N, PEAK, warmup_steps=100),
            "step": schedules.step(N, PEAK, [3000, 4000], factor=0.3, warmup_steps=100)}


#: A run whose early fall bends away from a power law of the area: S0 = 500 steps at the peak rate,
#: alpha 1.5 (the plain term cannot follow it with any exponent); tau 300 steps.
OFFSET_TRUTH = (KernelLaw("exp", "steps", offset=True), [2.5, 2e4, 1.5, 0.4, np.log10(300.0), np.log10(500.0)])
#: The plain law (the planted law of tests/test_fitting.py).
PLAIN_TRUTH = (KernelLaw("exp", "steps"), [2.5, 3.0, 0.5, 0.4, np.log10(300.0)])


def _rmse_vs_truth(result, curve, clean) -> float:
    keep = curve.step >= SKIP
    return float(np.sqrt(np.mean((predict(result, curve) - clean)[keep] ** 2)))


def test_offset_jacobian_matches_finite_differences():
    """The closed-form Jacobian of the offset law (every kernel family with one) against central
    differences: the offset's column, and the power term's columns at S1 + S0."""
    sch = _schedules()
    curve, _ = planted_curve(*OFFSET_TRUTH, sch["wsd"], "wsd")
    for kern in ("nonparametric", "power", "instant"):
        law = KernelLaw(kern, "steps", offset=True).for_curves([curve])
        f = ScheduleFeatures.build(curve, curve.step, lr_scale=PEAK, bin_steps=40)
        lo, hi = law.bounds()
        theta = np.clip(np.array(law.starts()[0], float) + 0.05, lo, hi)
        theta[-1] = 2.4
        jac = law.jacobian(theta, f)
        num = np.empty_like(jac)
        for i in range(theta.size):
            h = 1e-6 * max(1.0, abs(theta[i]))
            up, dn = theta.copy(), theta.copy()
            up[i] += h
            dn[i] -= h
            num[:, i] = (law.predict(up, f) - law.predict(dn, f)) / (2 * h)
        # central differences of smooth terms err by O(h^2) relative, far below 1e-6
        assert np.max(np.abs(jac - num)) <= 1e-6 * np.max(np.abs(num)), kern
        assert law.names[-1] == "log10_S0" and law.s0(theta) == pytest.approx(10 ** 2.4)


def test_offset_is_the_plain_law_at_s0_zero_and_refuses_other_values():
    """S0 -> 0 is the plain law (to the offset's lower bound's size); a value of ``offset`` that is
    none of True, False, "test" is refused by name."""
    sch = _schedules()
    curve, plain = planted_curve(*PLAIN_TRUTH, sch["cos"], "cos")
    law, theta = PLAIN_TRUTH
    near, _ = planted_curve(KernelLaw("exp", "steps", offset=True), [*theta, -12.0], sch["cos"], "cos")
    np.testing.assert_allclose(near.loss, plain, rtol=1e-9)
    assert KernelLaw("exp", "steps", offset=1).offset is True and KernelLaw("exp", "steps", offset=0).offset is False
    with pytest.raises(InvalidArgumentError, match="offset='maybe'"):
        KernelLaw("exp", "steps", offset="maybe")
    assert KernelLaw("exp", "steps", offset="test").names == law.names  # the plain law until fitted


@pytest.mark.parametrize("fitted", [("cos",), ("cos", "wsd")])
def test_the_test_keeps_a_planted_offset_and_predicts_better_than_the_plain_law(fitted):
    """Curves of the offset law: the test keeps the offset (p far below its level), the fitted S0
    is within a factor 1.6 of the truth, and the fit predicts the schedules it did not see closer to
    the noise-free truth than the plain law fitted to the same curves: the constant run at least
    three times closer (measured over three seeds: 4-8x from one cosine, 8-11x from two curves),
    the others at least 1.3 times (measured: 1.5-2.9x for the step decay from one cosine, where
    the constant run's level is what the plain law misses most)."""
    sch = _schedules()
    for seed in range(2):
        cur = {k: planted_curve(*OFFSET_TRUTH, sch[k], k, noise=0.02, seed=seed + 10 * i)
               for i, k in enumerate(sch)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tested = fit(KernelLaw("nonparametric", "steps", offset="test"), [cur[k][0] for k in fitted],
                         skip_steps=SKIP)
            plain = fit(KernelLaw("nonparametric", "steps"), [cur[k][0] for k in fitted], skip_steps=SKIP)
        o = tested.extra["offset_test"]
        assert o["kept"] and o["p"] < 1e-4 and tested.law.offset is True and tested.law.tested
        assert 500 / 1.6 < o["S0"] < 500 * 1.6
        assert tested.law.label == "kernel(nonparametric, steps, offset tested)"
        for k in sch:
            if k not in fitted:
                factor = 3.0 if k == "const" else 1.3
                assert factor * _rmse_vs_truth(tested, *cur[k]) < _rmse_vs_truth(plain, *cur[k]), (seed, k)


def test_the_test_drops_the_offset_on_curves_of_the_plain_law():
    """Ten noisy cosines of the plain law: the test keeps the offset where p < 0.01. Its chi2_1
    tail is conservative at the boundary S0 = 0 (the null is half chi2_0, half chi2_1), so the
    chance of keeping it is at most 1% per curve, and of keeping it in 3 or more of 10 below 1.2e-4
    (binomial). Where dropped, the fit is the plain law's (its parameters, its label's parameters),
    and the offset's lower bound is never warned about as a bound."""
    sch = _schedules()
    kept = 0
    for seed in range(10):
        cos, _ = planted_curve(*PLAIN_TRUTH, sch["cos"], "cos", noise=0.02, seed=100 + seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tested = fit(KernelLaw("nonparametric", "steps", offset="test"), [cos], skip_steps=SKIP)
            forced = fit(KernelLaw("nonparametric", "steps", offset=True), [cos], skip_steps=SKIP)
        o = tested.extra["offset_test"]
        assert o["level"] == OFFSET_TEST_LEVEL and (o["p"] < o["level"]) == o["kept"]
        kept += o["kept"]
        if not o["kept"]:
            assert tested.law.offset is False and "log10_S0" not in tested.law.names
            plain = fit(KernelLaw("nonparametric", "steps"), [cos], skip_steps=SKIP)
            np.testing.assert_array_equal(tested.theta, plain.theta)
        assert not any("log10_S0" in w and "lower bound" in w for w in fit_warnings(forced))
    assert kept <= 2


def test_offset_test_statistic_is_the_likelihood_ratio_of_the_two_fits():
    """The statistic against the two fits' residuals recomputed here, on white noise (inflation 1
    within its estimate's spread), and a fit no better than the plain one gives p = 1."""
    sch = _schedules()
    cos, _ = planted_curve(*OFFSET_TRUTH, sch["cos"], "cos", noise=0.02, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = fit(KernelLaw("nonparametric", "steps"), [cos], skip_steps=SKIP)
        off = fit(KernelLaw("nonparametric", "steps", offset=True), [cos], skip_steps=SKIP)
    keep = cos.step >= SKIP
    r0, r1 = (predict(plain, cos) - cos.loss)[keep], (predict(off, cos) - cos.loss)[keep]
    o = offset_test(plain, off, [cos])
    sigma2 = np.sum(r1 ** 2) / (r1.size - off.theta.size)
    assert o["statistic"] == pytest.approx((np.sum(r0 ** 2) - np.sum(r1 ** 2)) / (o["inflation"] * sigma2), rel=1e-9)
    assert 1.0 <= o["inflation"] < 2.0
    same = offset_test(plain, plain, [cos])
    assert same["statistic"] == 0.0 and same["p"] == 1.0 and not same["kept"]


def test_fit_delay_reports_the_offset_test_and_takes_offset_on_off(tmp_path):
    """The command's default kernel law tests the offset and says what it kept, in the output and
    the JSON; ``--offset off`` fits the plain term, ``--offset on`` the offset; ``--offset`` with a
    law that has no progress offset is refused with exit 2."""
    sch = _schedules()
    paths = {}
    for i, k in enumerate(("cos", "wsd")):
        c, _ = planted_curve(*OFFSET_TRUTH, sch[k], k, noise=0.02, seed=i)
        paths[k] = tmp_path / f"{k}.csv"
        pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss}).to_csv(paths[k], index=False)
    base = [sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(paths["cos"]), "--predict",
            str(paths["wsd"]), "--skip-steps", str(SKIP)]
    docs = {}
    for opt in (None, "off", "on"):
        out = tmp_path / f"{opt}.json"
        run = subprocess.run(base + (["--offset", opt] if opt else []) + ["--json", str(out)], capture_output=True,
                             text=True)
        assert run.returncode == 0, run.stderr
        docs[opt] = json.loads(out.read_text())
        if opt is None:
            assert "progress term: A (S1 + S0)^-alpha, S0 = " in run.stdout
    laws = {k: d["laws"][0] if "laws" in d else d for k, d in docs.items()}
    assert laws[None]["offset_test"]["kept"] is True and "log10_S0" in laws[None]["params"]
    assert "offset_test" not in laws["off"] and "log10_S0" not in laws["off"]["params"]
    assert "offset_test" not in laws["on"] and "log10_S0" in laws["on"]["params"]
    assert laws[None]["params"] == laws["on"]["params"]  # kept: the same fit as the offset law alone
    bad = subprocess.run(base + ["--law", "momentum", "--offset", "on"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--offset on" in bad.stderr and "Traceback" not in bad.stderr


def test_a_long_curve_is_tested_on_thinned_rows_and_fitted_on_all():
    """A curve of 33,000 fitted rows (a loss at every step): the test runs on about 4,096 evenly spaced
    rows, whose verdict on a planted offset is as clear as on the whole curve, and the kept law is
    then fitted to every row (its point count), not to the thinned ones."""
    n = 34000
    lr = schedules.cosine(n, PEAK, final_fraction=0.1, warmup_steps=340)
    law, theta = OFFSET_TRUTH
    curve, _ = planted_curve(law, [2.5, 2e4 * 6.8 ** 1.5, 1.5, 0.4, np.log10(2000.0), np.log10(3400.0)], lr, "long",
                             noise=0.02, seed=5, log_every=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit(KernelLaw("nonparametric", "steps", offset="test"), [curve], skip_steps=340)
    o = r.extra["offset_test"]
    assert o["kept"] and o["p"] < 1e-4 and 3000 < o["points"] < 5000
    assert r.law.offset is True and r.n_points == int(np.sum(curve.step >= 340))
