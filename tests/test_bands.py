"""Prediction bands (sde_scales.fitting.bands): the delta method against refits to fresh noise,
against the textbook covariance of a linear model, and where the data do not determine a
prediction."""

import functools
import json
import subprocess
import sys
import warnings
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting import KernelLaw, LossCurve, MomentumLaw, fit, predict, predict_sd, score
from sde_scales.fitting.bands import parameter_covariance
from sde_scales.fitting.fit import final_rows, lack_of_fit_fired, model_error
from test_fitting import schedules_5k, synthetic

NOISE = 0.05  # per-point noise of the planted curves, as in the identifiability tests
DRAWS = 80


def _nonparametric_truth():
    """The default kernel law on the grid it builds for these curves, with weight on two of its
    time scales (the third and sixth)."""
    probe = synthetic(KernelLaw("exp", "steps"), [2.5, 3.0, 0.5, 0.4, 2.5], schedules_5k()["cos"], "cos")[0]
    law = KernelLaw("nonparametric", "steps").for_curves([probe])
    w = np.zeros(len(law.taus))
    w[2], w[5] = 0.25, 0.15
    return law, np.r_[2.5, 3.0, 0.5, w], KernelLaw("nonparametric", "steps")


@pytest.mark.parametrize("case", ["nonparametric", "exp", "momentum"])
def test_band_matches_the_scatter_of_refits_to_fresh_noise(case):
    """Fit a cosine and a step-decay run, predict a WSD run's final loss, DRAWS times with fresh
    noise. The law is the truth, so the reported standard deviation should be the scatter of the
    predictions. Three paths: the non-parametric kernel (analytic Jacobian, weights at 0 held), the
    exponential kernel and the momentum law (finite differences).

    Tolerances, from the Monte-Carlo error of DRAWS = 80 draws:
    * scatter / mean reported sd within [1/1.6, 1.6]: a sample sd of 80 draws has a relative
      standard error of 1/sqrt(2 * 79) = 0.08; the reported sd is by construction a little wide
      (the autocorrelation factor is max(1, an estimate from about ten blocks)), and the ratio is
      0.94-0.96 in these three cases; 1.6 is more than 4 standard errors beyond that either way,
      and a band off by a factor of two fails (checked by scaling the variance by 4 and by 1/4);
    * coverage of the true final loss by +-1.96 sd at least 0.85: binomial(80, 0.95) has standard
      deviation 0.024, and 0.85 is 4 of them below 0.95;
    * the final-error z-scores against freshly observed WSD curves (their own noise included):
      standard deviation within [0.68, 1.32], 4 standard errors (0.08) of a sample sd around 1.
    """
    sch = schedules_5k()
    if case == "nonparametric":
        law, theta, fit_law = _nonparametric_truth()
    elif case == "exp":
        law = fit_law = KernelLaw("exp", "steps")
        theta = [2.5, 3.0, 0.5, 0.4, np.log10(300.0)]
    else:
        law = fit_law = MomentumLaw()
        theta = [2.5, 3.0, 0.5, 0.4, np.log10(500.0)]
    wsd, clean = synthetic(law, theta, sch["wsd"], "wsd")
    n_last = final_rows(wsd.step.size)
    truth = clean[-n_last:].mean()
    preds, sds, zs = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in range(DRAWS):
            curves = [synthetic(law, theta, sch[k], k, noise=NOISE, seed=1000 * m + i)[0]
                      for i, k in enumerate(["cos", "step"])]
            observed = synthetic(law, theta, sch["wsd"], "wsd", noise=NOISE, seed=1000 * m + 7)[0]
            r = fit(fit_law, curves, skip_steps=200)
            p = predict(r, observed)
            sd_rows, sd_final = predict_sd(r, observed)
            assert sd_rows.shape == p.shape and np.all(np.isfinite(sd_rows))
            preds.append(p[-n_last:].mean())
            sds.append(sd_final)
            zs.append(score(observed, p, final_pred_sd=sd_final)["final_err_z"])
    preds, sds, zs = np.array(preds), np.array(sds), np.array(zs, float)
    ratio = preds.std(ddof=1) / sds.mean()
    assert 1 / 1.6 <= ratio <= 1.6, (ratio, sds.mean())
    assert np.mean(np.abs(preds - truth) <= 1.96 * sds) >= 0.85
    assert 0.68 <= zs.std(ddof=1) <= 1.32, zs.std(ddof=1)


def test_band_of_a_linear_model_is_the_textbook_one():
    """Residuals linear in three parameters whose first two columns are equal: x1 + x2 and x3 are
    determined, with the covariance s^2 (B^T B)^-1 of the two-column model B = [u, v]
    (s^2 = RSS / (n - 2), the rank); x1 alone is not, and gets NaN, not a pseudo-inverse's value.
    The same with the Jacobian by central differences (exact for a linear model)."""
    rng = np.random.default_rng(3)
    n = 200
    u, v = rng.standard_normal(n), rng.standard_normal(n)
    A = np.stack([u, u, v], axis=1)
    y = A @ [1.0, 2.0, -0.5] + 0.3 * rng.standard_normal(n)
    B = np.stack([u, v], axis=1)
    beta, rss = np.linalg.lstsq(B, y, rcond=None)[:2]
    x = np.array([beta[0] / 2, beta[0] / 2, beta[1]])
    law = SimpleNamespace(names=("x1", "x2", "x3"))
    lo, hi = np.full(3, -10.0), np.full(3, 10.0)
    for jac in (lambda xf: A, None):
        cov = parameter_covariance(law, x, lambda xf: A @ xf - y, jac, np.ones(3, bool), lo, hi, {}, 1.0)
        want = np.sqrt(float(rss[0]) / (n - 2) * np.diag(np.linalg.inv(B.T @ B)))
        got = cov.sd(np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
        np.testing.assert_allclose(got[:2], want, rtol=1e-6)
        assert np.isnan(got[2])
    # the residuals' autocorrelation inflation kappa multiplies the covariance: sds by sqrt(kappa)
    cov = parameter_covariance(law, x, lambda xf: A @ xf - y, lambda xf: A, np.ones(3, bool), lo, hi, {}, 2.5)
    got = cov.sd(np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    np.testing.assert_allclose(got, np.sqrt(2.5) * want, rtol=1e-6)


def test_no_band_where_the_curves_have_no_drop(tmp_path):
    """A constant run alone leaves the drop response undetermined: the prediction of a WSD run has
    no band (NaN here; null, with a warning, from the command), while the prediction of the
    constant schedule itself, which does not depend on the drop response, has one."""
    sch = schedules_5k()
    law, theta = KernelLaw("exp", "steps"), [2.5, 3.0, 0.5, 0.4, np.log10(300.0)]
    const = synthetic(law, theta, sch["const"], "const", noise=NOISE, seed=1)[0]
    wsd = synthetic(law, theta, sch["wsd"], "wsd", noise=NOISE, seed=2)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit(law, [const], skip_steps=200)
    assert np.isnan(predict_sd(r, wsd)[1])
    sd_rows, sd_const = predict_sd(r, const)
    assert np.isfinite(sd_const) and 0 < sd_const < NOISE
    # before the cooldown the WSD run is the constant run: the band is there, and only there
    sd_wsd = predict_sd(r, wsd)[0]
    before = wsd.step < 4000
    assert np.all(np.isfinite(sd_wsd[before])) and np.all(np.isnan(sd_wsd[wsd.step > 4100]))

    paths = {}
    for c in (const, wsd):
        paths[c.name] = tmp_path / f"{c.name}.csv"
        pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss}).to_csv(paths[c.name], index=False)
    out = tmp_path / "fit.json"
    run = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(paths["const"]),
                          "--predict", str(paths["wsd"]), "--kernel", "exp", "--skip-steps", "200",
                          "--json", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    doc = json.loads(out.read_text())  # strict JSON: the missing band is null
    assert doc["predict"][0]["final_loss_pred_sd"] is None and doc["predict"][0]["final_err_z"] is None
    assert doc["fit"][0]["final_loss_pred_sd"] > 0
    assert any("do not determine the predicted final loss of wsd" in w for w in doc["warnings"])


def test_an_overflowed_band_is_named_as_such(monkeypatch):
    """A band whose variance overflows (inf, not NaN) is reported as an overflow, not as a
    prediction the curves do not determine, and is null in the report (strict JSON)."""
    from sde_scales.fitting import report

    sch = schedules_5k()
    law, theta = KernelLaw("exp", "steps"), [2.5, 3.0, 0.5, 0.4, np.log10(300.0)]
    fitted = [synthetic(law, theta, sch[k], k, noise=NOISE, seed=i)[0] for i, k in enumerate(("const", "step"))]
    wsd = synthetic(law, theta, sch["wsd"], "wsd", noise=NOISE, seed=3)[0]
    real = report.predict_sd

    def overflowing(result, curve):
        rows, final = real(result, curve)
        return (np.full_like(rows, np.inf), np.inf) if curve.name == "wsd" else (rows, final)

    monkeypatch.setattr(report, "predict_sd", overflowing)
    doc, _, _ = report.run_law(law, fitted, [wsd], skip_steps=200, smooth_steps=500, shared_noise=False, profile=False)
    assert any("band of the predicted final loss of wsd overflows" in w for w in doc["warnings"])
    assert not any("do not determine the predicted final loss" in w for w in doc["warnings"])
    assert doc["predict"][0]["final_loss_pred_sd"] is None
    json.dumps(doc, allow_nan=False)


def test_band_is_conditional_on_parameters_on_a_bound():
    """A parameter the fit pins to its bound is named in ``conditional_on`` and left out of the
    covariance: here the momentum law with C_eff forced to its lower bound 0 by planting a loss that
    rises, not falls, at the cooldown."""
    sch = schedules_5k()
    law = MomentumLaw()
    c = synthetic(law, [2.5, 3.0, 0.5, -0.4, np.log10(300.0)], sch["step"], "step", noise=0.01, seed=4)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit(law, [c], skip_steps=200)
    cov = r.extra["covariance"]
    assert r.theta[law.names.index("C_eff")] == pytest.approx(0.0, abs=1e-6)
    assert "C_eff" in cov.conditional_on
    assert not cov.used[law.names.index("C_eff")]
    assert np.isfinite(predict_sd(r, c)[1])
    # the command's report says so among its warnings, by name
    from sde_scales.fitting.report import run_law

    doc = run_law(law, [c], [c], skip_steps=200, smooth_steps=500, shared_noise=False, profile=False)[0]
    assert any("hold C_eff at its bound" in w and "too narrow" in w for w in doc["warnings"])
    assert "C_eff" in doc["band"]["conditional_on"]


def test_predict_sd_needs_a_fit_result_from_fit():
    """A FitResult without the covariance (made by hand) gets an error that says to refit."""
    sch = schedules_5k()
    law = KernelLaw("exp", "steps")
    c = synthetic(law, [2.5, 3.0, 0.5, 0.4, 2.5], sch["cos"], "cos", noise=NOISE)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit(law, [c], skip_steps=200)
    bare = replace(r, extra={})
    with pytest.raises(InvalidArgumentError, match="refit"):
        predict_sd(bare, c)


def test_law_comparison_figure_draws_what_it_is_given(tmp_path):
    """One panel per protocol; each law's bar is its mean |final-loss error|; a law with no band
    (null standard deviations) is drawn without an error bar; the figure is written."""
    from sde_scales.plots import law_comparison, save_figure

    def split(err, sd):
        return {"final_loss_err": err, "final_loss_pred_sd": sd, "final_loss_noise": 0.01,
                "final_err_z": None if sd is None else err / np.hypot(sd, 0.01)}

    rows = [{"protocol": "p1", "law": "a", "splits": [split(0.02, 0.005), split(-0.04, 0.005)]},
            {"protocol": "p1", "law": "b", "splits": [split(0.01, None)]},
            {"protocol": "p2", "law": "a", "splits": [split(-0.003, 0.001)]}]
    fig = law_comparison(rows, title="planted")
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["p1", "p2"]
    bars = sorted(p.get_width() for p in axes[0].patches if p.get_height() == pytest.approx(0.6))
    assert bars == pytest.approx([0.01, 0.03])
    from matplotlib.collections import LineCollection

    # law a's error bar (one LineCollection): 1.96 x its mean sd (0.005) on either side of its bar
    # end at 0.03; law b, with no band, has none
    bars_a = [c for c in axes[0].collections if isinstance(c, LineCollection)]
    assert len(bars_a) == 1
    (x0, _), (x1, _) = bars_a[0].get_segments()[0]
    assert sorted([x0, x1]) == pytest.approx([0.03 - 1.96 * 0.005, 0.03 + 1.96 * 0.005])
    assert save_figure(fig, tmp_path / "laws.png").stat().st_size > 10_000


def test_fit_delay_compare_reports_every_law_with_its_band(tmp_path):
    """``--compare`` fits the kernel, momentum and multi-power laws to the same curves: the JSON has
    one document per law, each predicted curve with its band, and the printed comparison has a row
    per law with the band and the share within it."""
    sch = schedules_5k()
    law, theta = KernelLaw("exp", "steps"), [2.5, 3.0, 0.5, 0.4, np.log10(300.0)]
    paths = []
    for i, k in enumerate(["cos", "step", "wsd"]):
        c = synthetic(law, theta, sch[k], k, noise=NOISE, seed=10 + i)[0]
        paths.append(tmp_path / f"{k}.csv")
        pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss}).to_csv(paths[-1], index=False)
    out = tmp_path / "compare.json"
    run = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(paths[0]), "--fit",
                          str(paths[1]), "--predict", str(paths[2]), "--compare", "--skip-steps", "200",
                          "--smooth-steps", "500", "--json", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    docs = json.loads(out.read_text())["compare"]
    assert [d["law"].split("(")[0] for d in docs] == ["kernel", "momentum", "mpl"]
    for d in docs:
        (row,) = d["predict"]
        assert row["file"] == "wsd" and row["final_loss_pred_sd"] > 0
        assert d["summary"]["predict"]["mean_final_loss_pred_sd"] == pytest.approx(row["final_loss_pred_sd"])
        line = next(ln for ln in run.stdout.splitlines() if ln.startswith(d["law"]) and "fitted in" not in ln)
        assert f"{row['final_loss_pred_sd']:.4f}" in line
    # every pair of laws compared on the predicted curve; the RMSEs are score()'s, the verdicts printed
    pairs = json.loads(out.read_text())["pairwise"]
    by_law = {d["law"]: d["predict"][0] for d in docs}
    assert [(p["a"], p["b"]) for p in pairs] == [(docs[0]["law"], docs[1]["law"]), (docs[0]["law"], docs[2]["law"]),
                                                 (docs[1]["law"], docs[2]["law"])]
    for p in pairs:
        (one,) = p["per_curve"]
        assert one["rmse_a"] == pytest.approx(by_law[p["a"]]["rmse"], rel=1e-12)
        assert one["rmse_b"] == pytest.approx(by_law[p["b"]]["rmse"], rel=1e-12)
        assert one["final_err_a"] == pytest.approx(by_law[p["a"]]["final_loss_err"], rel=1e-9)
        assert p["rmse_verdict"] in ("not separated", f"{p['a']} better", f"{p['b']} better")
    assert "paired differences over the predicted curves" in run.stdout


def test_workers_below_one_is_refused(tmp_path):
    """``--workers 0`` is bad input: exit 2 and a message naming the value, before anything is fitted
    or written; ``choose_law`` refuses it the same way."""
    from sde_scales.fitting.report import choose_law

    c = synthetic(KernelLaw("exp", "steps"), [2.5, 3.0, 0.5, 0.4, 2.5], schedules_5k()["cos"], "cos", noise=NOISE)[0]
    path = tmp_path / "cos.csv"
    pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss}).to_csv(path, index=False)
    out = tmp_path / "fit.json"
    run = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(path), "--law", "auto",
                          "--workers", "0", "--json", str(out)], capture_output=True, text=True)
    assert run.returncode == 2 and "--workers 0" in run.stderr and not out.exists()
    with pytest.raises(InvalidArgumentError, match="--workers 0"):
        choose_law([c], skip_steps=0, smooth_steps=200, workers=0)


def test_a_parameter_whose_interval_reaches_its_bound_is_named():
    """A planted floor L0 = 0.003 (its bound is 0: the losses stay positive, C_eff = 0.04; with 0.4
    the cooldown takes them below 0, where L0 may follow) on one cosine with noise 0.005: the fit stops
    near the bound but not on it, and L0's 95% interval from the curvature (+-0.014: its standard
    deviation, 0.007, is twice the planted value, so the interval reaches 0 in practically every
    draw) reaches 0, so one warning names L0. The same curves shifted up to L0 = 2.5 keep every
    interval clear of its bound (the other parameters are well determined at this noise): no such
    warning, so the warning follows the interval, not the law or the curve's shape. Three seeds."""
    law = MomentumLaw(lam=0.99)
    cos = schedules_5k()["cos"]
    for seed in (3, 4, 5):
        for l0 in (0.003, 2.5):
            c = synthetic(law, [l0, 3.0, 0.5, 0.04], cos, "cos", noise=0.005, seed=seed)[0]
            assert c.loss.min() > 0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = fit(law, [c], skip_steps=200)
            assert r.extra["covariance"].on_bound == ()  # off the bound: the on-bound warning says nothing
            msgs = [w for w in r.extra["warnings"] if "interval from the curvature" in w]
            if l0 == 0.003:
                assert len(msgs) == 1 and "of L0 = " in msgs[0] and "(bound 0) reaches its bound" in msgs[0], msgs
            else:
                assert msgs == [], msgs


def _smooth_miss(n: int, delta: float, rng, waves: int = 3) -> np.ndarray:
    """A model error no law here can follow: ``waves`` sines of 4 to 10 periods over the curve with
    random phases, RMS ``delta`` (in expectation), drawn afresh for every curve."""
    t = np.arange(n) / n
    g = sum(np.sin(2 * np.pi * (4 + 6 * rng.random()) * t + 2 * np.pi * rng.random()) for _ in range(waves))
    return delta * np.sqrt(2.0 / waves) * g


def test_band_adds_the_miss_of_the_fitted_curves_where_the_law_fails_them():
    """Each planted curve is the exponential kernel law, white noise of 0.05 per point, and its own
    smooth miss of RMS 0.03 (:func:`_smooth_miss`): the stated model of
    :func:`~sde_scales.fitting.fit.model_error`, a held-out curve missed by an error of the size of
    the fitted curves' misses. Fitted on a cosine, a constant and a step-decay run, a WSD run
    predicted, 16 draws.

    * The lack-of-fit test fires in every draw (a miss of 0.03 against block noise of 0.05/sqrt(25)),
      the model error is the largest fitted curve's ``misfit_rms``, and the band is the parameters'
      and it in quadrature.
    * Calibration: the final error over the band and the observed final loss's standard error has
      an RMS near 1. Over 16 draws of a standard normal the RMS has a standard error of
      1/sqrt(32) = 0.18; [0.55, 1.45] is 2.5 of them each way. The parameters' band alone fails
      that bound (its RMS z was 2.2 here): the test fails without the model error.
    * A law fitted to its own form (no miss) adds nothing: its band is the parameters' alone.
    """
    sch = schedules_5k()
    law, theta = KernelLaw("exp", "steps"), [2.5, 3.0, 0.5, 0.4, np.log10(300.0)]
    z_with, z_without = [], []
    for seed in range(16):
        rng = np.random.default_rng(seed)
        curves = {}
        for j, name in enumerate(["cos", "const", "step", "wsd"]):
            c, _ = synthetic(law, theta, sch[name], name, NOISE, 4 * seed + j)
            curves[name] = LossCurve(c.step, c.lr, c.loss + _smooth_miss(c.step.size, 0.03, rng), name=name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = fit(law, [curves["cos"], curves["const"], curves["step"]], skip_steps=200)
            held = curves["wsd"]
            pred = predict(r, held)
            rows, final = predict_sd(r, held)
            rows0, final0 = predict_sd(r, held, model=False)
        checks = r.extra["lack_of_fit"]
        assert lack_of_fit_fired(checks)
        d = model_error(r)
        assert d == max(v["misfit_rms"] for v in checks.values())
        assert final == pytest.approx(np.hypot(final0, d), rel=1e-12)
        np.testing.assert_allclose(rows, np.hypot(rows0, d), rtol=1e-12)
        z_with.append(score(held, pred, skip_steps=200, final_pred_sd=final)["final_err_z"])
        z_without.append(score(held, pred, skip_steps=200, final_pred_sd=final0)["final_err_z"])
    assert 0.55 <= np.sqrt(np.mean(np.square(z_with))) <= 1.45
    assert np.sqrt(np.mean(np.square(z_without))) > 1.45

    clean = [synthetic(law, theta, sch[name], name, NOISE, 99 + j)[0] for j, name in enumerate(["cos", "step"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit(law, clean, skip_steps=200)
        wsd = synthetic(law, theta, sch["wsd"], "wsd", NOISE, 7)[0]
        assert not lack_of_fit_fired(r.extra["lack_of_fit"]) and model_error(r) == 0.0
        assert predict_sd(r, wsd)[1] == predict_sd(r, wsd, model=False)[1]


def test_a_fit_to_one_drop_says_its_band_is_given_the_laws_form():
    """One fitted curve with a drop and a predicted run of another schedule: the note names that run
    (in the JSON's warnings), also where the other fitted curve is a constant run (no drop); not for
    a predicted run of the fitted schedule (fresh noise), not with two fitted drops, not where no
    fitted curve drops, and not in an average of laws (its band holds their disagreement)."""
    from sde_scales.fitting.average import AveragedFit
    from sde_scales.fitting.report import run_average, run_law

    law, theta = KernelLaw("exp", "steps"), [2.5, 3.0, 0.5, 0.4, 2.5]
    sch = schedules_5k()
    cos = synthetic(law, theta, sch["cos"], "cos", noise=0.01, seed=1)[0]
    cos_again = synthetic(law, theta, sch["cos"], "cos_again", noise=0.01, seed=2)[0]
    wsd = synthetic(law, theta, sch["wsd"], "wsd", noise=0.01, seed=3)[0]
    step = synthetic(law, theta, sch["step"], "step", noise=0.01, seed=4)[0]
    const = synthetic(law, theta, sch["const"], "const", noise=0.01, seed=5)[0]
    kw = dict(skip_steps=200, smooth_steps=500, shared_noise=False, profile=False)

    def notes(doc):
        return [w for w in doc["warnings"] if "one drop does not test" in w]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = run_law(law, [cos], [wsd, cos_again], **kw)
        (note,) = notes(one[0])
        assert "the bands of wsd are" in note and "cos_again" not in note.split(": To test")[0]
        assert "--law auto" in note
        assert not notes(run_law(law, [cos], [cos_again], **kw)[0])
        assert not notes(run_law(law, [cos, step], [wsd], **kw)[0])
        (note,) = notes(run_law(law, [const, cos], [wsd], **kw)[0])
        assert "only cos has a learning-rate drop" in note and "the bands of wsd are" in note
        assert not notes(run_law(law, [const], [wsd], **kw)[0])
        assert not notes(run_law(law, [cos], [wsd], one_drop_hint=None, **kw)[0])
        avg = AveragedFit(("a", "b"), (one[1], fit(MomentumLaw(), [cos], skip_steps=200)))
        doc = run_average(avg, [cos], [wsd], skip_steps=200, smooth_steps=500)[0]
    assert not notes(doc) and not any(notes(m) for m in doc["members"])


def test_the_convex_bound_planted_by_the_band_benchmark_is_its_formula():
    """The out-of-family truth of ``benchmarks/one_curve_bands.py`` (the last-iterate bound of SGD
    on a convex Lipschitz problem). At a constant rate each inner term is 1/(t-k), so the bound is
    (r + t)/(2t) + H_{t-1}/2 in closed form; on a random schedule it is the double sum written out;
    updates at rate 0 leave the iterate, and so the bound, where it was."""
    from scipy.special import digamma
    from conftest import load_benchmark

    cb = load_benchmark("one_curve_bands").convex_bound
    t = np.array([1, 2, 10, 500, 3000])
    harmonic = digamma(t) + np.euler_gamma  # H_{t-1}
    np.testing.assert_allclose(cb(np.full(3000, 0.7), t, 40.0), (40.0 + t) / (2 * t) + harmonic / 2, rtol=1e-12)
    rng = np.random.default_rng(3)
    lr = rng.uniform(0.1, 1.0, 30)
    e = lr / lr.max()
    for t in (2, 7, 30):
        direct = (5.0 + np.sum(e[:t] ** 2)) / (2 * np.sum(e[:t])) + 0.5 * sum(
            e[k] / np.sum(e[k + 1:t]) * np.sum(e[k:t] ** 2) / np.sum(e[k:t]) for k in range(t - 1))
        assert cb(lr, [t], 5.0)[0] == pytest.approx(direct, rel=1e-12)
    paused = np.concatenate([lr, np.zeros(4)])
    assert cb(paused, [34], 5.0)[0] == pytest.approx(cb(lr, [30], 5.0)[0], rel=1e-12)
    # what it cannot plant is refused, never truncated or divided by zero
    for bad_lr, steps, r in ((np.zeros(30), [5], 5.0), (np.where(np.arange(30) == 3, np.nan, lr), [5], 5.0),
                             (-lr, [5], 5.0), (lr, [5], -1.0), (lr, [5], np.inf), (lr, [31], 5.0), (lr, [0], 5.0),
                             (np.concatenate([np.zeros(3), lr]), [3], 5.0)):
        with pytest.raises(ValueError, match="convex_bound"):
            cb(bad_lr, steps, r)
    assert np.isfinite(cb(np.concatenate([np.zeros(3), lr]), [4], 5.0)[0])


def test_lack_of_fit_fires_on_the_pooled_p_or_one_curve_below_its_bonferroni_share():
    """The rule by hand: Fisher's combination of the curves' p-values below LACK_OF_FIT_P, or one
    curve's p below LACK_OF_FIT_P over the number of curves; curves without a p are left out."""
    from scipy import stats

    from sde_scales.fitting.fit import LACK_OF_FIT_P

    def checks(*ps):
        return {f"c{i}": {"p": p} for i, p in enumerate(ps)}

    a = LACK_OF_FIT_P
    # one curve of three between a/3 and a, the others far from rejection: neither rule fires
    mid = 0.5 * (a / 3 + a)
    assert stats.combine_pvalues([mid, 0.9, 0.9], method="fisher")[1] > a
    assert not lack_of_fit_fired(checks(mid, 0.9, 0.9))
    assert lack_of_fit_fired(checks(0.5 * a / 3, 0.9, 0.9))  # below its share
    assert lack_of_fit_fired(checks(mid, None, None))  # alone, its share is the whole level
    # no curve alone below its share, but together below the level
    ps = [2 * a, 2 * a, 2 * a]
    assert stats.combine_pvalues(ps, method="fisher")[1] < a and lack_of_fit_fired(checks(*ps))
    assert not lack_of_fit_fired(checks(None, None)) and not lack_of_fit_fired({})


def test_autocorrelation_inflation_is_the_block_variance_factor_over_1000_steps():
    """``autocorrelation_inflation``: B times the variance of the means of blocks of B rows (1,000
    steps) over the variance of single residuals. For AR(1) residuals with coefficient phi its
    expectation is (1 + phi)/(1 - phi) - 2 phi (1 - phi^B) / (B (1 - phi)^2): 179 for phi = 0.99
    logged every step (B = 1000), 17.9 for the same process logged every 10 steps (phi^10, B =
    100); about 1 for white noise. 400 blocks: the block variance has a relative standard error
    of sqrt(2/399) = 0.071, so 28% is 4 of them."""
    from scipy.signal import lfilter

    from sde_scales.fitting.fit import autocorrelation_inflation

    def expected(phi, B):
        return (1 + phi) / (1 - phi) - 2 * phi * (1 - phi**B) / (B * (1 - phi) ** 2)

    rng = np.random.default_rng(8)
    phi = 0.99
    e = lfilter([1.0], [1.0, -phi], rng.standard_normal(400_000 + 5_000))[5_000:]  # past the start-up
    assert autocorrelation_inflation(e, 1) == pytest.approx(expected(phi, 1000), rel=0.28)
    assert autocorrelation_inflation(e[::10], 10) == pytest.approx(expected(phi**10, 100), rel=0.28)
    assert autocorrelation_inflation(rng.standard_normal(400_000), 1) < 1.3


@functools.cache
def _inflation_benchmark():
    from conftest import load_benchmark

    return load_benchmark("inflation_estimator")


def _ar1(rng, phi, n):
    """AR(1) series of unit variance (the benchmark's generator, ``benchmarks/inflation_estimator.py``,
    loaded once rather than once per series)."""
    return _inflation_benchmark().ar1(rng, phi, n)


def test_autocorrelation_inflation_overlapping_batches_scatter_less():
    """On a cosine-sized log (1,171 rows at 10 steps: 100-row batches, 11 of them) of AR(1)
    residuals with coefficient 0.9, the estimate's expectation is the batch-means one,
    (1 + phi)/(1 - phi) - 2 phi (1 - phi^B) / (B (1 - phi)^2) = 17.2, and overlapping batches give it
    a relative standard deviation of about 0.32, where disjoint batches gave 0.39-0.40 (2,000 series
    each, two seeds; ``benchmarks/inflation_estimator.py``).
    Over 1,000 series (12 seeds, an ad hoc loop) the relative sd scattered by 0.004 about 0.31
    (overlapping) and by 0.005 about 0.38 (disjoint), so 0.35 lies 7 or more of them from either;
    the mean scattered by 0.20 about 17.1, so 0.8 is 4 of them."""
    from sde_scales.fitting.fit import autocorrelation_inflation

    rng = np.random.default_rng(21)
    k = np.array([autocorrelation_inflation(_ar1(rng, 0.9, 1171), 10) for _ in range(1000)])
    expected = 19.0 - 2 * 0.9 * (1 - 0.9**100) / (100 * 0.1**2)
    assert abs(k.mean() - expected) < 0.8
    assert k.std() / k.mean() < 0.35


def test_autocorrelation_inflation_batches_each_curve_at_its_own_interval():
    """Two curves, pooled: white noise logged every step (100,000 rows: 1,000-row batches) and AR(1)
    noise with coefficient 0.9 per row logged every 10 steps (10,000 rows: 100-row batches), both of
    unit variance and with 99 degrees of weight each. The pooled inflation is the mean of 1 and the
    AR(1) curve's 17.2, 9.1; the estimate's relative sd is about 0.06 here, so 25% is 4 of them.
    Batches of 1,000 rows laid over both curves, as one curve logged every step, would read the
    AR(1) curve at 10,000 steps, in 10 of 110 batches: about (100 + 10 x 19) / 110 = 2.6. The order
    of the curves does not matter, and a curve shorter than three batches is left out."""
    from sde_scales.fitting.fit import autocorrelation_inflation

    rng = np.random.default_rng(22)
    white, ar = rng.standard_normal(100_000), _ar1(rng, 0.9, 10_000)
    expected = (1.0 + 19.0 - 2 * 0.9 * (1 - 0.9**100) / (100 * 0.1**2)) / 2
    k = autocorrelation_inflation(np.concatenate([white, ar]), [1, 10], [white.size, ar.size])
    assert k == pytest.approx(expected, rel=0.25)
    assert autocorrelation_inflation(np.concatenate([ar, white]), [10, 1], [ar.size, white.size]) == pytest.approx(
        k, rel=1e-9)
    # as one curve logged every step: the AR(1) curve seen through 1,000-row batches
    assert autocorrelation_inflation(np.concatenate([white, ar]), 1) < 4.0
    # a 250-row curve at 10 steps holds two 100-row batches only: it is not counted
    short = 5.0 * _ar1(rng, 0.99, 250)
    assert autocorrelation_inflation(np.concatenate([ar, short]), [10, 10], [ar.size, short.size]) == pytest.approx(
        autocorrelation_inflation(ar, 10), rel=1e-6)
    with pytest.raises(ValueError, match="add up to"):
        autocorrelation_inflation(ar, 10, [100, 200])
    # an interval per curve that does not match the curves, or one that is no interval (NaN was read
    # as 1 step by max(1, nan)), is refused by value
    for every in ([10, 10, 10], [10, float("nan")], [0.5, 10]):
        with pytest.raises(ValueError, match=r"log_every \["):
            autocorrelation_inflation(np.concatenate([ar, short]), every, [ar.size, short.size])


def test_a_parameter_within_its_tolerance_of_a_bound_is_on_it_and_warned_by_name():
    """The rule for "on a bound" (1e-6 of the bound, relative where the bound exceeds the unit):
    a bounded optimiser stops a hair inside a bound it is pushed against, so a value 1e-9 inside
    is on it and one 1e-3 inside is not, at either bound and in loss units; the fit's warning names
    the parameter and the bound."""
    from sde_scales.fitting.bands import on_lower_bound, on_upper_bound
    from sde_scales.fitting.fit import _parameter_warnings

    for hi, unit in ((5.0, 1.0), (0.5, 1.0), (300.0, 250.0)):
        assert on_upper_bound(hi - 1e-9 * max(unit, hi), hi, unit)
        assert not on_upper_bound(hi - 1e-3 * max(unit, hi), hi, unit)
        lo = -hi
        assert on_lower_bound(lo + 1e-9 * max(unit, hi), lo, unit)
        assert not on_lower_bound(lo + 1e-3 * max(unit, hi), lo, unit)
    law = MomentumLaw(lam=0.99)
    lo, hi = law.bounds()
    start = law.starts()[0]
    theta = start.copy() + 0.01  # every parameter moved from its start and inside its bounds
    theta[3] = hi[3] * (1 - 1e-9)  # C_eff a hair under its upper bound
    notes = _parameter_warnings(law, theta, lo, hi, start, np.ones(4, bool), np.ones(4))
    assert notes == [f"{law.label}: C_eff = {theta[3]:.4g} is on its upper bound {hi[3]:g}: the data push it past the "
                     f"bound, so its value is the bound's, not a fit"]
