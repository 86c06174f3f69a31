"""Paired comparison of two predictions (sde_scales.fitting.compare): intervals that cover the
noise-free difference at their level, verdicts that decide where the curve does and refuse where it
does not, and bad input refused."""

import numpy as np
import pytest

from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting import LossCurve
from sde_scales.fitting.compare import (compare_over_curves, compare_predictions, compare_with_best, format_difference,
                                       noise_inflation)
from sde_scales.fitting.fit import final_rows

SIGMA = 0.1  # per-point noise of the planted curves (the shared 124M curves have about 0.125)
DRAWS = 300


def _truth(n=600, every=50):
    """A smooth decaying loss logged every ``every`` steps, and the learning rate (unused here)."""
    step = np.arange(1, n + 1) * every
    m = 3.0 + 2.0 * (step / 1000.0) ** -0.4
    return step, m


def _curve(step, y, name="held"):
    return LossCurve(step, np.full(step.size, 1e-3), y, name=name)


def _noise_free_d(step, m, a, b, skip):
    """The difference of mean squared errors of a and b against the moving average of the
    noise-free curve: what the RMSE interval, times the sum of the two RMSEs, is about."""
    t = _curve(step, m).smoothed(1000)
    keep = step >= skip
    return float(np.mean((a - t)[keep] ** 2 - (b - t)[keep] ** 2))


def test_rmse_interval_covers_the_noise_free_difference_at_its_level():
    """Two predictions that differ by a smooth bump of about the interval's width, DRAWS fresh noisy
    curves: the 95% interval of D (the RMSE interval times the sum of the RMSEs) covers the
    noise-free D in a share of draws near 0.95.

    Tolerance: binomial(300, 0.95) has standard deviation 0.0126; the interval is a little wide by
    construction (sigma is estimated, and the inflation is max(1, an estimate), about 1.03 here),
    so the share is expected at or slightly above 0.95. [0.91, 0.99] is more than 3 standard
    deviations either side; an interval half or twice as wide (coverage 0.68 or 0.9999) fails."""
    step, m = _truth()
    bump = 0.004 * np.exp(-0.5 * ((step - 15000) / 4000.0) ** 2)
    a, b = m + 0.01 + bump, m + 0.01 - bump  # same error size; which is closer depends on the noise
    rng = np.random.default_rng(20261202)
    skip = 500
    d_true = _noise_free_d(step, m, a, b, skip)
    hits, verdicts = 0, []
    for _ in range(DRAWS):
        c = _curve(step, m + SIGMA * rng.standard_normal(step.size))
        r = compare_predictions(c, a, b, skip_steps=skip)
        lo, hi = (v * (r["rmse_a"] + r["rmse_b"]) for v in r["rmse_diff_interval"])
        hits += lo <= d_true <= hi
        verdicts.append(r["rmse_verdict"])
    share = hits / DRAWS
    assert 0.91 <= share <= 0.99, share
    # a true D of this size is below the noise: most draws do not separate the two
    assert verdicts.count("not separated") / DRAWS > 0.5


def test_final_interval_covers_the_noise_free_difference():
    """The final-error interval is the range of |A - mu| - |B - mu| over mu in ybar +- 1.96 s,
    monotone in mu, so it covers the noise-free value whenever the interval of mu covers mu: in at
    least about 95% of draws (more where the function is flat). Tolerance: 0.95 minus 3 binomial
    standard deviations of 300 draws (0.0126)."""
    step, m = _truth()
    n_last = final_rows(step.size)
    mu = float(np.mean(m[-n_last:]))
    a, b = m + 0.004, m - 0.012  # A above mu, B below: which is closer to the observed final loss is noise
    g_true = abs(float(np.mean(a[-n_last:])) - mu) - abs(float(np.mean(b[-n_last:])) - mu)
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(DRAWS):
        c = _curve(step, m + SIGMA * rng.standard_normal(step.size))
        lo, hi = compare_predictions(c, a, b)["final_diff_interval"]
        hits += lo <= g_true <= hi
    assert hits / DRAWS >= 0.95 - 3 * 0.0126, hits / DRAWS


def test_decides_where_the_curve_does():
    """One prediction is the truth, the other misses by 0.15 everywhere (eight times the final
    loss's standard error, 0.1 / sqrt(30) = 0.018, and far above the RMSE noise): both verdicts
    name the truth. Where both predictions lie above every plausible final loss, the final-error
    difference is exactly A - B."""
    step, m = _truth()
    rng = np.random.default_rng(3)
    c = _curve(step, m + SIGMA * rng.standard_normal(step.size))
    r = compare_predictions(c, m, m + 0.15)
    assert r["rmse_verdict"] == "a better" and r["final_verdict"] == "a better"
    assert r["rmse_diff_interval"][1] < 0 and r["final_diff_interval"][1] < 0
    # both predictions far above every plausible final loss: the difference is exactly A - B
    r2 = compare_predictions(c, m + 0.2, m + 0.3)
    assert r2["final_diff_interval"] == pytest.approx([-0.1, -0.1], abs=1e-12)
    # swapping a and b swaps the verdict and negates the intervals
    r3 = compare_predictions(c, m + 0.15, m)
    assert r3["rmse_verdict"] == "b better" and r3["final_verdict"] == "b better"
    assert r3["rmse_diff_interval"] == pytest.approx([-v for v in r["rmse_diff_interval"][::-1]], rel=1e-9)


def test_identical_predictions_are_never_separated():
    step, m = _truth()
    c = _curve(step, m + SIGMA * np.random.default_rng(1).standard_normal(step.size))
    r = compare_predictions(c, m + 0.03, m + 0.03)
    assert r["rmse_diff"] == 0 and r["rmse_diff_sd"] == 0
    assert r["rmse_verdict"] == "not separated" and r["final_verdict"] == "not separated"


@pytest.mark.parametrize("shared", [True, False])
def test_over_curves_covers_whatever_the_correlation_between_curves(shared):
    """Five held-out curves whose noises are identical (one data order) or independent, and two
    predictions of each that differ by a bump of about the noise's size. The combined intervals are
    built for any correlation, so each covers its noise-free value in at least 95% of draws in both
    cases (tolerance: 3 binomial standard deviations of 200 draws, 0.015): for RMSE the mean over
    curves of the noise-free D_k over the observed RMSE_a + RMSE_b, for the final error the mean of
    |A_k - mu_k| - |B_k - mu_k|. An interval a third as wide fails (checked)."""
    step, m = _truth()
    k, draws, skip = 5, 200, 500
    bumps = [0.003 * np.exp(-0.5 * ((step - 6000 * (j + 1)) / 3000.0) ** 2) for j in range(k)]
    preds = [(m + bp, m - bp) for bp in bumps]
    d_true = [_noise_free_d(step, m, a, b, skip) for a, b in preds]
    n_last = final_rows(step.size)
    mu = float(np.mean(m[-n_last:]))
    g_true = np.mean([abs(float(np.mean(a[-n_last:])) - mu) - abs(float(np.mean(b[-n_last:])) - mu) for a, b in preds])
    rng = np.random.default_rng(11 if shared else 12)
    r_hits, f_hits = 0, 0
    for _ in range(draws):
        common = rng.standard_normal(step.size)
        rows = []
        for a, b in preds:
            e = common if shared else rng.standard_normal(step.size)
            rows.append(compare_predictions(_curve(step, m + SIGMA * e), a, b, skip_steps=skip))
        out = compare_over_curves(rows, label_a="A", label_b="B")
        target = np.mean([d / (r["rmse_a"] + r["rmse_b"]) for d, r in zip(d_true, rows)])
        r_hits += out["rmse_interval"][0] <= target <= out["rmse_interval"][1]
        lo, hi = out["final_interval"]
        f_hits += lo <= g_true <= hi
    assert r_hits / draws >= 0.95 - 3 * 0.015
    assert f_hits / draws >= 0.95 - 3 * 0.015


def test_over_curves_names_the_labels_and_decides_a_clear_case():
    step, m = _truth()
    rng = np.random.default_rng(5)
    rows = [compare_predictions(_curve(step, m + SIGMA * rng.standard_normal(step.size)), m + 0.15, m)
            for _ in range(3)]
    out = compare_over_curves(rows, label_a="kernel", label_b="mpl")
    assert out["rmse_verdict"] == "mpl better" and out["final_verdict"] == "mpl better"
    assert out["curves"] == 3 and out["mean_rmse_diff"] > 0


def test_over_curves_final_interval_is_the_bonferroni_mean_of_the_curves_ranges():
    """The final-loss interval over k curves, by hand: each curve's range of |f_a - mu| - |f_b - mu|
    over mu in y_bar +- z_k se with z_k = Phi^-1(1 - 0.05 / (2k)) (so that all k hold together at
    95% whatever their correlation), averaged end by end. The coverage test above does not tell
    z_k from the per-curve 1.96 (means of ranges cancel misses); this does."""
    rows = []
    for fa, fb, y, se in ((2.00, 2.05, 2.02, 0.01), (3.10, 3.00, 3.04, 0.02), (1.50, 1.52, 1.49, 0.005),
                          (2.70, 2.60, 2.66, 0.03)):
        rows.append({"rmse_diff": 0.0, "rmse_diff_sd": 0.001, "rmse_diff_rounding": 0.0, "final_a": fa, "final_b": fb,
                     "final_observed": y, "final_loss_se": se, "abs_final_err_diff": abs(fa - y) - abs(fb - y)})
    zk = 2.497705  # Phi^-1(1 - 0.05 / 8), from a normal table
    ends = []
    for r in rows:
        g = [abs(r["final_a"] - mu) - abs(r["final_b"] - mu)
             for mu in (r["final_observed"] - zk * r["final_loss_se"], r["final_observed"] + zk * r["final_loss_se"])]
        ends.append((min(g), max(g)))
    want = [sum(e[0] for e in ends) / 4, sum(e[1] for e in ends) / 4]
    out = compare_over_curves(rows)
    assert out["final_interval"] == pytest.approx(want, abs=1e-6)
    assert out["mean_abs_final_err_diff"] == pytest.approx(np.mean([r["abs_final_err_diff"] for r in rows]))


def test_noise_inflation_sees_correlated_noise():
    """Independent noise: the inflation stays near 1 (mean of 20 draws below 1.15; it is floored at
    1, so its mean is a little above). AR(1) noise with coefficient 0.5 (long-run variance ratio 3):
    the quarter-window blocks (5 points of 21 here) see most of it (expected about 2.1); asserted
    above 1.6, which independent noise never reaches in these draws."""
    step, m = _truth(n=2000)
    rng = np.random.default_rng(9)
    white = [noise_inflation(_curve(step, m + SIGMA * rng.standard_normal(step.size)), 1000, step >= 500)
             for _ in range(20)]
    ar = []
    for _ in range(20):
        w = rng.standard_normal(step.size)
        e = np.empty_like(w)
        e[0] = w[0]
        for i in range(1, w.size):
            e[i] = 0.5 * e[i - 1] + w[i]
        ar.append(noise_inflation(_curve(step, m + SIGMA * e), 1000, step >= 500))
    assert 1.0 <= np.mean(white) < 1.15
    assert max(white) < 1.6 < min(ar)


def test_bad_input_is_refused_with_the_value():
    step, m = _truth()
    c = _curve(step, m)
    with pytest.raises(InvalidArgumentError, match="599 predictions"):
        compare_predictions(c, m[:-1], m)
    bad = m.copy()
    bad[7] = np.nan
    with pytest.raises(InvalidArgumentError, match="row 7"):
        compare_predictions(c, m, bad)
    with pytest.raises(InvalidArgumentError, match="level=1.5"):
        compare_predictions(c, m, m, level=1.5)
    with pytest.raises(InvalidArgumentError, match="skip_steps=99999"):
        compare_predictions(c, m, m, skip_steps=99999)
    with pytest.raises(InvalidArgumentError, match="at least one"):
        compare_over_curves([])


def test_compare_with_best_picks_the_best_baseline_per_metric_and_flags_a_worse_law():
    """Three held-out curves; baseline "p" has the smaller RMSE (exact, but 0.05 high over the
    last sixth), baseline "q" the smaller |final error| (exact at the end, 0.2 high over the first
    third); a law that misses by 0.15 everywhere is flagged worse than each in its metric, one
    equal to "p" is not."""
    step, m = _truth()
    rng = np.random.default_rng(21)
    held = [_curve(step, m + SIGMA * rng.standard_normal(step.size), name=f"h{i}") for i in range(3)]
    late = np.where(step >= 25000, 0.05, 0.0)
    early = np.where(step < 10000, 0.2, 0.0)
    preds = {"p": [m + late] * 3, "q": [m + early] * 3, "bad": [m + 0.15] * 3, "same": [m + late] * 3}
    rows = []
    for k, v in preds.items():
        pr = [compare_predictions(h, a, a, skip_steps=500) for h, a in zip(held, v)]
        rows.append({"law": k, "mean_rmse": float(np.mean([r["rmse_a"] for r in pr])),
                     "mean_abs_final_err": float(np.mean([abs(r["final_err_a"]) for r in pr]))})
    rows.append({"law": "no predictions", "mean_rmse": 0.0, "mean_abs_final_err": 0.0})
    out = {e["law"]: e for e in compare_with_best(rows, held, preds, {"p", "q"}, skip_steps=500)}
    assert set(out) == {"bad", "same"}
    assert out["bad"]["rmse"]["against"] == "p" and out["bad"]["final"]["against"] == "q"
    assert out["bad"]["rmse"]["worse"] and out["bad"]["final"]["worse"]
    assert not out["same"]["rmse"]["worse"] and out["same"]["rmse"]["mean_diff"] == 0
    assert "vs p: p better" in format_difference(out["bad"]["rmse"])
    assert compare_with_best(rows, held, preds, {"absent"}) == []
    with pytest.raises(InvalidArgumentError, match="2 predictions of bad"):
        compare_with_best(rows, held, dict(preds, bad=preds["bad"][:2]), {"p", "q"})


def test_a_final_loss_without_a_standard_error_is_not_separated_and_null():
    """A curve of 40 rows averages its last 2 for the final loss: too few for a standard error, so the
    final-error comparison has no interval (null in JSON) and the verdict is "not separated", even for
    predictions 0.15 apart, over one curve and over several; the RMSE comparison still decides."""
    step = np.arange(0, 4000, 100)
    m = 3.0 + 2.0 * (1.0 + step / 1000.0) ** -0.4
    c = _curve(step, m + SIGMA * np.random.default_rng(2).standard_normal(step.size))
    r = compare_predictions(c, m, m + 0.15)
    assert r["final_loss_se"] is None and r["final_diff_interval"] is None
    assert r["final_verdict"] == "not separated" and r["rmse_verdict"] == "a better"
    out = compare_over_curves([r, r], label_a="A", label_b="B")
    assert out["final_interval"] is None and out["final_verdict"] == "not separated"


def test_a_rounded_log_keeps_its_rounding_in_the_rmse_comparison():
    """A slowly falling loss with a small wiggle, logged to two decimals with almost no noise: the
    rounding error (up to q/2 = 0.005) follows the curve instead of averaging out, so the noise
    model alone (from successive differences) makes the moving-average target look far more exact
    than it is. Planted: A above the truth and B below it by 0.001-0.004 each, both inside the
    rounding; the noise-free RMSE difference is taken against the moving average of the truth.
    The interval must cover it in every draw: |D - D_true| <= q ||c||_1 / N holds for any rounding
    errors within q/2, so the widened interval is a bound there (measured without the rounding term:
    it covered 10 of these 100 draws and decided the wrong way in 17). A difference far beyond the
    rounding (A off by 0.03) is still decided."""
    step = np.arange(600) * 50
    rng = np.random.default_rng(0)
    hits, wrong = 0, 0
    for _ in range(100):
        ph = rng.uniform(0, 2 * np.pi)
        t = np.arange(step.size) / step.size
        truth = 3.0 - 0.05 * t + 0.003 * np.sin(6 * np.pi * t + ph)
        y = np.round(truth + 1e-4 * rng.standard_normal(step.size), 2)
        a, b = truth + rng.uniform(0.001, 0.004), truth - rng.uniform(0.001, 0.004)
        target = _curve(step, truth).smoothed(1000)
        d = np.sqrt(np.mean((a - target) ** 2)) - np.sqrt(np.mean((b - target) ** 2))
        r = compare_predictions(_curve(step, y), a, b)
        lo, hi = r["rmse_diff_interval"]
        hits += lo <= d <= hi
        wrong += (r["rmse_verdict"] == "a better" and d > 0) or (r["rmse_verdict"] == "b better" and d < 0)
        assert r["loss_resolution"] == pytest.approx(0.01, rel=1e-9) and r["rmse_diff_rounding"] > 0
    assert hits == 100 and wrong == 0
    far = compare_predictions(_curve(step, y), truth + 0.03, truth + 0.002)
    assert far["rmse_verdict"] == "b better"
    # over several curves the bounds add like the standard deviations do (any dependence)
    both = compare_over_curves([r, r])
    assert both["rmse_interval"][1] - both["rmse_interval"][0] == pytest.approx(hi - lo, rel=1e-9)
    # an unrounded loss has no lattice and no rounding term
    assert compare_predictions(_curve(step, truth + 0.01 * rng.standard_normal(step.size)), a, b)[
        "rmse_diff_rounding"] == 0.0


def test_a_rounded_flat_tail_keeps_its_rounding_in_the_final_standard_error():
    """A loss logged to two decimals whose tail is flat to within the last digit: every last value
    is the same, so the noise level of the tail is 0, and with it the standard error of the
    observed final loss was 0, and any two predictions of the final loss were "decided". The
    rounding error of that mean is up to q/2 = 0.005 whatever the number of points, and the
    standard error keeps it (q / sqrt 12; ``final_loss_noise``).

    Planted: true final levels mu drawn uniformly, so the rounded tail sits anywhere within
    +-q/2 of mu; predictions A = truth + 0.002 and B = truth - 0.004, both inside the rounding.
    The 95% interval (ybar +- 1.96 q / sqrt 12 = +-0.57 q) holds mu in every draw since
    |ybar - mu| <= q/2, so the interval of |A - mu| - |B - mu| covers its noise-free value (-0.002)
    in every draw; with a standard error of 0 it covered it in 2 of these 100 draws and decided "b better"
    (the wrong way) in 44."""
    from sde_scales.fitting.fit import final_loss_noise, loss_resolution

    step = np.arange(1, 601) * 50
    rng = np.random.default_rng(11)
    hits, separated, flat = 0, 0, 0
    for mu in rng.uniform(2.9, 3.0, 100):
        m = mu + 0.5 * np.exp(-step / 3000.0)  # flat to 2e-4 over the last 5% of rows
        y = np.round(m + 1e-4 * rng.standard_normal(step.size), 2)
        flat += np.unique(y[-final_rows(step.size):]).size == 1  # the case: a tail of one value
        assert loss_resolution(y) == pytest.approx(0.01, rel=1e-9)
        assert final_loss_noise(y) >= 0.01 / np.sqrt(12) * (1 - 1e-9)
        r = compare_predictions(_curve(step, y), m + 0.002, m - 0.004)
        lo, hi = r["final_diff_interval"]
        hits += lo <= -0.002 <= hi
        separated += r["final_verdict"] != "not separated"
        assert r["final_verdict"] != "b better"  # A is the closer one (by 0.002): never the wrong way
    assert flat > 80  # near a rounding boundary a tail holds two values; elsewhere one
    assert hits == 100
    assert separated <= 10  # 0.002 apart against a rounding of 0.01: rarely decided (only where ybar - mu > 0.0047)
    # values not on a lattice have none; decimals read into binary floats still are on one
    assert loss_resolution(3.0 + 0.1 * rng.standard_normal(700)) == 0.0
    assert loss_resolution(np.round(3.0 + 0.1 * rng.standard_normal(700), 3)) == pytest.approx(1e-3, rel=1e-6)
