"""Forecasts: a fitted law's loss curve for a schedule with no logged loss (``fit-delay --forecast``)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sde_scales import schedules
from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting import KernelLaw, LossCurve, MomentumLaw, PeakLRWarning, fit, predict, predict_sd
from sde_scales.fitting.curves import ScheduleSpec, planted_curve
from sde_scales.fitting import AveragedFit
from sde_scales.fitting.forecast import forecast, forecast_difference, schedule_rates

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "loss_curves"

LAM = 0.99
THETA = np.array([2.0, 1.5, 0.4, 0.3])  # L0, A, alpha, C_eff of the momentum law with lambda fixed


def drops_by_hand(lr, lr_scale):
    """Rates in units of ``lr_scale`` and their drops d_k = eta_(k-1) - eta_k, zero up to the end of
    the warmup (where the rate first stops rising)."""
    eta = np.asarray(lr, float) / lr_scale
    w = int(np.argmax(np.diff(eta) <= 0)) + 1 if np.any(np.diff(eta) <= 0) else eta.size
    d = np.zeros_like(eta)
    d[1:] = eta[:-1] - eta[1:]
    d[:w] = 0.0
    return eta, d


def momentum_by_hand(theta, lr, steps, lr_scale, lam=LAM):
    r"""The momentum law (Tissue et al. 2024) written out from its definition, one drop per step:
    :math:`L(t) = L_0 + A S_1(t)^{-\alpha} - C \sum_{w \le k < t} d_k (1 - \lambda^{t - k})`, with
    :math:`S_1(t) = \sum_{k < t} \eta_k` and :math:`d_k = \eta_{k-1} - \eta_k` after the warmup
    :math:`w` (where the rate first stops rising), rates in units of ``lr_scale``."""
    eta, d = drops_by_hand(lr, lr_scale)
    out = []
    for t in steps:
        k = np.arange(t)
        s1 = eta[:t].sum()
        out.append(theta[0] + theta[1] * s1 ** -theta[2] - theta[3] * np.sum(d[:t] * (1 - lam ** (t - k))))
    return np.array(out)


@pytest.fixture(scope="module")
def planted_fit():
    """The momentum law fitted to a cosine run planted from it (per-step log, noise 0.01)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(MomentumLaw(lam=LAM), [planted_fit_curve()])


def test_a_forecast_is_the_law_on_the_schedule_computed_by_hand(planted_fit):
    """Against an independent evaluation of the fitted law's definition on a WSD schedule of 3,000
    steps (every drop in a bin of its own there: the schedule is known at every step): the forecast
    reads the schedule from step 0, sums the area before each row and the drops before it."""
    spec = ScheduleSpec(total=3000, peak=1e-3, warmup=100, decay="linear", decay_start=2400, end=1e-5)
    f = forecast(planted_fit, spec, every=30, name="wsd")
    assert f.step[0] == 30 and f.step[-1] == 3000 and np.all(np.diff(f.step) == 30)
    truth = momentum_by_hand(planted_fit.theta, spec.expand(), f.step, planted_fit.lr_scale)
    # float64 sums of 3,000 terms: agreement to 1e-9 of the loss
    np.testing.assert_allclose(f.loss, truth, rtol=0, atol=1e-9)
    assert f.final_loss == pytest.approx(truth[-f.final_rows:].mean(), abs=1e-9)
    np.testing.assert_array_equal(f.lr, spec.expand()[f.step])


def test_the_reported_C_is_that_of_tissue_et_al_s_momentum_sum(planted_fit):
    """The JSON's ``C`` (with ``lambda``) is the coefficient of Tissue et al.'s annealing area
    S_2(t) = sum_{j < t} m_j with the momentum m_j = lambda m_{j-1} + d_j: the fitted law's curve
    equals L0 + A S_1^-alpha - C S_2 with S_2 summed by that recursion, on a WSD schedule (the fit
    itself carries C_eff = C / (1 - lambda)); and the reported delay, the half response."""
    spec = ScheduleSpec(total=1500, peak=1e-3, warmup=100, decay="linear", decay_start=900, end=1e-5)
    lr, steps = spec.expand(), np.arange(150, 1501, 150)
    rep = planted_fit.law.reported(planted_fit.theta)
    assert rep["lambda"] == pytest.approx(LAM, rel=1e-12)
    eta, d = drops_by_hand(lr, planted_fit.lr_scale)
    m, s2, S2 = 0.0, 0.0, np.zeros(eta.size + 1)
    for j in range(eta.size):
        m = LAM * m + d[j]
        s2 += m
        S2[j + 1] = s2
    th = planted_fit.theta
    want = np.array([th[0] + th[1] * eta[:t].sum() ** -th[2] - rep["C"] * S2[t] for t in steps])
    np.testing.assert_allclose(momentum_by_hand(th, lr, steps, planted_fit.lr_scale), want, rtol=0, atol=1e-9)
    # its delay: a drop's response 1 - lambda^k is half done where lambda^k = 1/2
    assert planted_fit.law.half_response(th) == pytest.approx(np.log(0.5) / np.log(LAM), rel=1e-12)


def test_the_forecast_of_an_unseen_schedule_holds_the_truth_within_its_band(planted_fit):
    """The planted law's own loss on a WSD schedule the fit never saw: the forecast's final loss
    within 4 of its standard deviations (a 95% band that holds is within 1.96 in 95% of seeds;
    4 fails once in 16,000 if the band is right), and the band is not vacuous (under 0.05)."""
    spec = ScheduleSpec(total=3000, peak=1e-3, warmup=100, decay="linear", decay_start=2400)
    f = forecast(planted_fit, spec, every=10, name="wsd")
    truth = momentum_by_hand(THETA, spec.expand(), f.step, planted_fit.lr_scale)
    assert f.final_sd is not None and 0 < f.final_sd < 0.05
    assert abs(f.final_loss - truth[-f.final_rows:].mean()) < 4 * f.final_sd


def test_the_difference_of_two_forecasts_holds_the_truth_and_is_narrower_than_their_bands(planted_fit):
    """Two cooldowns (10% and 40% of the run) forecast from one fit: the difference of their final
    losses within 4 of its standard deviations of the planted law's (z over 20 seeds: 19 within
    1.96), and its band narrower than the two bands combined as if independent (0.69 of it on these
    data in every one of those seeds: both forecasts share the fit's errors)."""
    a = forecast(planted_fit, ScheduleSpec(total=3000, peak=1e-3, warmup=100, decay="linear", decay_start=2700),
                 every=10, name="short")
    b = forecast(planted_fit, ScheduleSpec(total=3000, peak=1e-3, warmup=100, decay="linear", decay_start=1800),
                 every=10, name="long")
    d = forecast_difference(planted_fit, a, b)
    truth = [momentum_by_hand(THETA, f.curve.schedule, f.step, planted_fit.lr_scale)[-f.final_rows:].mean()
             for f in (a, b)]
    assert d.difference == pytest.approx(a.final_loss - b.final_loss, abs=1e-12)
    assert abs(d.difference - (truth[0] - truth[1])) < 4 * d.sd
    assert d.sd < 0.9 * np.hypot(a.final_sd, b.final_sd)
    assert d.verdict == "b lower" and d.interval[0] > 0  # the longer cooldown ends lower, by 0.11
    same = forecast_difference(planted_fit, a, forecast(planted_fit, a.curve.schedule, every=10, name="again"))
    assert same.difference == 0 and same.sd == 0 and same.verdict == "not separated"


def test_the_difference_of_a_law_that_misses_its_curve_holds_that_miss_for_each_forecast():
    """A law whose form is not the curve's (lambda 0.999 fitted to a curve planted with 0.99): the
    lack-of-fit test rejects it, and each forecast's miss delta enters the difference's variance as
    if the two misses were independent (2 delta^2 more than the parameters' part; measured on
    trained families, the parameters' part alone decided differences of the wrong sign). Where the
    test does not reject the law nothing is added."""
    from dataclasses import replace

    from sde_scales.fitting.fit import model_error

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(MomentumLaw(lam=0.999), [planted_fit_curve()])
    delta = model_error(res)
    assert delta > 0.005  # the test rejects the law: its miss is a third of the noise per row or more
    a, b = (forecast(res, ScheduleSpec(total=3000, peak=1e-3, warmup=100, decay="linear", decay_start=start),
                     every=10, name=name) for start, name in ((2700, "short"), (1800, "long")))
    d = forecast_difference(res, a, b)
    without = replace(res, extra={**res.extra, "lack_of_fit": {}})  # the same fit, its miss not found
    assert model_error(without) == 0
    d0 = forecast_difference(without, a, b)
    assert d0.model_sd == 0 and d.model_sd == pytest.approx(np.sqrt(2) * delta, rel=1e-12)
    assert d.sd ** 2 == pytest.approx(d0.sd ** 2 + 2 * delta ** 2, rel=1e-9)
    assert d.difference == d0.difference
    from sde_scales.fitting.report import format_forecasts

    assert f"the law's miss of its curves: {d.model_sd:.4f}" in format_forecasts("m", [a, b], [d])
    assert "miss" not in format_forecasts("m", [a, b], [d0])
    assert d.to_dict()["model_sd"] == d.model_sd


def test_the_difference_under_an_average_of_laws_holds_their_disagreement(planted_fit):
    """The mixture rule: the mean of the laws' differences, and a variance of the mean of their
    variances plus the spread of their differences."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = fit(KernelLaw(kernel="exp", time="steps"), [planted_fit_curve()])
    avg = AveragedFit(("momentum", "exp"), (planted_fit, other))
    spec_a, spec_b = "peak=1e-3,warmup=100,decay=linear,decay_start=2700,total=3000", \
        "peak=1e-3,warmup=100,decay=cosine,total=3000"
    each = []
    for r in avg.results:
        each.append(forecast_difference(r, forecast(r, spec_a, every=10, name="a"), forecast(r, spec_b, every=10, name="b")))
    d = forecast_difference(avg, forecast(avg, spec_a, every=10, name="a"), forecast(avg, spec_b, every=10, name="b"))
    diffs, sds = np.array([e.difference for e in each]), np.array([e.sd for e in each])
    assert d.difference == pytest.approx(diffs.mean(), abs=1e-12)
    assert d.sd == pytest.approx(np.sqrt(np.mean(sds ** 2) + np.var(diffs)), rel=1e-9)
    with pytest.raises(InvalidArgumentError, match="compare forecasts of the result given"):
        forecast_difference(planted_fit, forecast(avg, spec_a, name="a"), forecast(avg, spec_b, name="b"))


def planted_fit_curve():
    lr = schedules.cosine(3000, 1e-3, final_fraction=0.1, warmup_steps=100)
    return planted_curve(MomentumLaw(lam=LAM), THETA, lr, "cos", noise=0.01, seed=3, log_every=1)[0]


def test_a_forecast_equals_the_prediction_of_a_run_of_that_schedule():
    """On a real curve: forecasting the per-step rates of the 124M WSD run gives what predicting
    that run (with the same per-step schedule) gives, row by row, band included."""
    cos = LossCurve.from_csv(DATA / "124m_cos10_lr1e-3.csv")
    wsd = LossCurve.from_csv(DATA / "124m_wsd-lin0.2_lr1e-3.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(KernelLaw(kernel="exp", time="steps"), [cos], skip_steps=500)
        run = wsd.with_schedule(wsd.per_step_lr())
        f = forecast(res, wsd.per_step_lr(), every=wsd.log_every, name="wsd")
        sd, final_sd = predict_sd(res, run)
        np.testing.assert_array_equal(f.step, run.step)
        fitted = f.step >= 500  # the fit's first fitted step: no forecast before it
        assert f.from_step == 500 and np.isnan(f.loss[~fitted]).all() and np.isnan(f.sd[~fitted]).all()
        np.testing.assert_allclose(f.loss[fitted], predict(res, run)[fitted], rtol=0, atol=1e-12)
    np.testing.assert_allclose(f.sd[fitted], sd[fitted], rtol=1e-12)
    assert f.final_sd == pytest.approx(final_sd, rel=1e-12)
    with pytest.raises(InvalidArgumentError, match="before step 500, where the fit's rows begin"):
        forecast(res, "peak=1e-3,total=400")


def test_a_schedule_beyond_the_fitted_curves_warns_and_keeps_the_warning(planted_fit):
    with pytest.warns(PeakLRWarning, match="peak learning rate 0.003 differs"):
        f = forecast(planted_fit, "peak=3e-3,warmup=100,decay=cosine,total=3000", name="hot")
    assert any("peak learning rate 0.003" in w for w in f.warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fitted schedule itself: nothing to warn of
        same = forecast(planted_fit, schedules.cosine(3001, 1e-3, final_fraction=0.1, warmup_steps=100), name="same")
    assert same.warnings == ()


@pytest.mark.parametrize("bad, said", [
    (np.array([1e-3, np.nan] + [1e-3] * 30), "learning rate nan at step 1"),
    (np.array([1e-3] * 10 + [-1e-4] + [1e-3] * 30), "learning rate -0.0001 at step 10"),
    (np.zeros(100), "0 at every step"),
    (np.ones((10, 10)), "shape (10, 10)"),
    (np.full(5, 1e-3), "a schedule of 5 steps"),
    ("peak=1e-3,decay=wavy,total=100", "decay='wavy'"),
    ("peak=1e-3", "total= is required"),
    ("peak=1e-3,total=10", "total=10; a forecast needs at least 20 steps"),
    ("peak=1e-3,total=60000000", "total=60,000,000 is beyond"),
])
def test_bad_schedules_are_refused_by_value(bad, said):
    with pytest.raises(InvalidArgumentError) as e:
        schedule_rates(bad)
    assert said in str(e.value)


def test_every_is_checked(planted_fit):
    for bad in (0, 2.5, True, 1000):
        with pytest.raises(InvalidArgumentError, match="every="):
            forecast(planted_fit, "peak=1e-3,total=3000", every=bad)
    with pytest.raises(InvalidArgumentError, match="give a FitResult"):
        forecast("not a fit", "peak=1e-3,total=3000")


def _cli(args):
    from sde_scales.cli import main

    return main(["fit-delay", *args])


def test_fit_delay_forecast_prints_writes_and_plots(tmp_path, capsys):
    cos = str(DATA / "124m_cos10_lr1e-3.csv")
    spec = "wsd:warmup=500,peak=1e-3,decay=linear,decay_start=40000,total=50000"
    out = tmp_path / "f.json"
    rc = _cli(["--fit", cos, "--skip-steps", "500", "--kernel", "exp", "--forecast", spec, "--forecast-every", "250",
               "--json", str(out), "--predictions", str(tmp_path / "p"), "--plot", str(tmp_path / "f.png")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "forecasts of kernel(exp, steps, offset tested)" in text and "to step 50,000: final loss" in text
    doc = json.loads(out.read_text())
    (fc,) = doc["forecasts"]
    assert fc["name"] == "wsd" and fc["rows"] == 200 and fc["every"] == 250 and fc["last_step"] == 50000
    assert fc["final_loss_pred_sd"] > 0 and len(fc["predicted"]) == 200
    assert "forecast_differences" not in doc  # one forecast: no pair
    df = pd.read_csv(tmp_path / "p" / "wsd.csv")
    assert list(df.columns) == ["step", "lr", "predicted", "predicted_sd"]
    assert df["predicted"].iloc[-10:].mean() == pytest.approx(fc["final_loss_pred"], abs=1e-12)
    assert (tmp_path / "f.png").stat().st_size > 0


def test_a_forecast_the_fit_does_not_determine_has_a_null_band_and_fails_strict(tmp_path, capsys):
    """Fitted on a constant-rate run alone, no drop response is determined: a forecast with a
    cooldown has no band (null in the JSON), which --strict counts."""
    const = str(DATA / "124m_const_lr1e-3.csv")
    out = tmp_path / "f.json"
    rc = _cli(["--fit", const, "--skip-steps", "500", "--forecast",
               "wsd:warmup=500,peak=1e-3,decay=linear,decay_start=40000,total=50000", "--json", str(out), "--strict"])
    assert rc == 1
    doc = json.loads(out.read_text())
    assert doc["forecasts"][0]["final_loss_pred_sd"] is None
    assert "wsd" in doc["checks"]["no_band"]
    assert "no band" in capsys.readouterr().out


@pytest.mark.parametrize("extra, said", [
    (["--forecast", "peak=1e-3,total=100"], "no such file, and no NAME: before a spec; give NAME:SPEC"),
    (["--forecast", "a/b:peak=1e-3,total=1000"], "holds a path"),
    (["--forecast", "w:peak=1e-3,totl=1000"], "unknown key 'totl'"),
    (["--forecast", "124m_cos10_lr1e-3:peak=1e-3,total=1000"], "a fitted or predicted curve's name"),
    (["--forecast", "w:peak=1e-3,total=1000", "--forecast", "w:peak=1e-3,total=2000"], "already a forecast's name"),
    (["--forecast", "w:peak=1e-3,total=1000", "--forecast-every", "0"], "every=0"),
    (["--forecast", "w:peak=1e-3,total=1000", "--forecast-every", "100"], "leaves 10 rows"),
    (["--forecast-every", "100"], "sets the rows of --forecast schedules"),
    (["--forecast", "w:peak=1e-3,total=5"], "--forecast w: total=5"),
])
def test_fit_delay_refuses_bad_forecasts_before_fitting_or_writing(tmp_path, capsys, extra, said):
    out = tmp_path / "f.json"
    assert _cli(["--fit", str(DATA / "124m_cos10_lr1e-3.csv"), "--json", str(out), *extra]) == 2
    assert said in capsys.readouterr().err
    assert not out.exists()


def test_fit_delay_compares_every_pair_of_forecasts(tmp_path, capsys):
    out = tmp_path / "f.json"
    specs = [f"{n}:warmup=500,peak=1e-3,decay=linear,decay_start={s},total=50000"
             for n, s in (("wsd10", 45000), ("wsd20", 40000), ("wsd40", 30000))]
    args = ["--fit", str(DATA / "124m_cos10_lr1e-3.csv"), "--fit", str(DATA / "124m_wsd-lin0.2_lr1e-3.csv"),
            "--skip-steps", "500", "--kernel", "exp", "--json", str(out)]
    for sp in specs:
        args += ["--forecast", sp]
    assert _cli(args) == 0
    assert "wsd10 - wsd20:" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    pairs = [(d["a"], d["b"]) for d in doc["forecast_differences"]]
    assert pairs == [("wsd10", "wsd20"), ("wsd10", "wsd40"), ("wsd20", "wsd40")]
    finals = {f["name"]: f["final_loss_pred"] for f in doc["forecasts"]}
    for d in doc["forecast_differences"]:
        assert d["difference"] == pytest.approx(finals[d["a"]] - finals[d["b"]], abs=1e-12)
        assert d["verdict"] in ("a lower", "b lower", "not separated")


def test_the_cooldown_experiment_finds_the_planted_best_cooldown(tmp_path):
    """``experiments/cooldown_forecast.py`` on a family planted from the momentum law (3,000 steps,
    noise 0.005 per logged point): fitted on its constant and cosine runs, every WSD run's final
    loss lies within 4 standard deviations of forecast and observation combined, and the grid
    fraction that is truly best (the law written out by hand on the experiment's own schedules)
    is among those the fit does not separate from the forecast's best (the forecast's best was the
    true best, 0.8, in 10 of 10 noise draws of these data, with at most one neighbour not
    separated from it)."""
    import importlib.util
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("cooldown_forecast", root / "experiments" / "cooldown_forecast.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    law = MomentumLaw(lam=LAM)
    const = schedules.constant(3001, 1e-3, warmup_steps=100)
    runs = {"const": const, "cos": schedules.cosine(3001, 1e-3, final_fraction=0.1, warmup_steps=100)}
    runs.update({f"wsd-{f:.1f}": mod.cooldown(const, f) for f in (0.1, 0.2, 0.4, 0.6, 0.8)})
    for i, (name, lr) in enumerate(runs.items()):
        c, _ = planted_curve(law, THETA, lr, name, noise=0.005, seed=i, log_every=10)
        pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss}).to_csv(tmp_path / f"{name}.csv", index=False)
    # the cooldown keeps the template's rate at its start: a linear fall to 0 over the last f of the steps
    lr = mod.cooldown(const, 0.25)
    assert lr[2250] == 1e-3 and lr[-1] == 0 and np.allclose(np.diff(lr[2250:]), -1e-3 / 750)
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(root / "experiments" / "cooldown_forecast.py"), "--quick", "--data",
                    str(tmp_path), "--fit", "const", "cos", "--observed", "wsd-*.csv", "--skip-steps", "100",
                    "--out", str(out)], check=True, capture_output=True, text=True)
    text = (out / "cooldown_forecast.json").read_text()
    assert "NaN" not in text
    (row,) = json.loads(text)["laws"].values()
    assert len(row["runs"]) == 5 and all(abs(r["z"]) < 4 for r in row["runs"])
    fr = np.array(json.loads(text)["fractions"])
    rates = [mod.cooldown(const, f) for f in fr]
    ends = [momentum_by_hand(THETA, r, np.arange(10, 3001, 10)[-15:], 1e-3).mean() for r in rates]
    assert float(fr[int(np.argmin(ends))]) in row["not_separated_from_best"]
    assert (out / "cooldown_forecast.png").stat().st_size > 0


def test_a_schedule_file_forecasts_as_its_spec_does(tmp_path, planted_fit, capsys):
    """A table of the schedule (step, lr every 10 steps; a loss column is not read), linear
    between its rows: on a schedule whose knots lie on those rows the per-step rates, and so the
    forecast, equal the spec's; in fit-delay, NAME:FILE forecasts the file."""
    from sde_scales.fitting.forecast import schedule_from_file

    spec = ScheduleSpec(total=3000, peak=1e-3, warmup=100, decay="linear", decay_start=2400, end=1e-5)
    steps = np.arange(0, 3001, 10)
    f = tmp_path / "sched.csv"
    pd.DataFrame({"global_step": steps, "learning_rate": spec.expand()[steps], "loss": 1.0}).to_csv(f, index=False)
    rates = schedule_from_file(f)
    np.testing.assert_allclose(rates, spec.expand(), rtol=0, atol=1e-18)
    a, b = forecast(planted_fit, rates, every=30), forecast(planted_fit, spec, every=30)
    np.testing.assert_allclose(a.loss, b.loss, rtol=0, atol=1e-12)  # the rates' interpolation rounds at 1e-19
    out = tmp_path / "f.json"
    assert _cli(["--fit", str(DATA / "124m_cos10_lr1e-3.csv"), "--skip-steps", "500", "--kernel", "exp",
                 "--forecast", f"mine:{f}", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["forecasts"][0]["last_step"] == 3000
    # the file alone, as the usage line reads (NAME:SPEC|[NAME:]FILE), is named after it: it was
    # refused with "give NAME:SPEC"
    assert _cli(["--fit", str(DATA / "124m_cos10_lr1e-3.csv"), "--skip-steps", "500", "--kernel", "exp",
                 "--forecast", str(f), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())["forecasts"][0]
    assert doc["name"] == "sched" and doc["last_step"] == 3000


@pytest.mark.parametrize("table, said", [
    ({"step": [0, 20, 10], "lr": [1e-3, 1e-3, 1e-3]}, "row 2: step 10 does not increase"),
    ({"step": [0, 10, 20], "lr": [1e-3, -1e-3, 1e-3]}, "row 1: learning rate"),
    ({"step": [0, 10.5, 20], "lr": [1e-3, 1e-3, 1e-3]}, "row 1: step 10.5 is not a whole number"),
    ({"step": [0, 10, 20], "loss": [3.0, 2.9, 2.8]}, "no lr column"),
])
def test_bad_schedule_files_are_refused_by_row(tmp_path, capsys, table, said):
    f = tmp_path / "s.csv"
    pd.DataFrame(table).to_csv(f, index=False)
    assert _cli(["--fit", str(DATA / "124m_cos10_lr1e-3.csv"), "--forecast", f"s:{f}"]) == 2
    assert said in capsys.readouterr().err


def test_a_schedule_file_takes_the_curve_files_columns(tmp_path, capsys):
    """Its step and lr are found as a curve file's are: --columns names columns of other names (and
    its loss=..., for the fitted files, is not looked for in a schedule, which has none); without
    them the refusal names the file's columns and --columns, not a loss-alone log's remedy."""
    f = tmp_path / "sched.csv"
    pd.DataFrame({"it": np.arange(0, 3001, 10), "eta": 1e-3}).to_csv(f, index=False)
    fit_file = str(DATA / "124m_cos10_lr1e-3.csv")
    assert _cli(["--fit", fit_file, "--forecast", f"s:{f}"]) == 2
    err = capsys.readouterr().err
    assert "no step column" in err and "no lr column" in err and "['it', 'eta']" in err and "--columns" in err
    assert "loss alone" not in err
    out = tmp_path / "f.json"
    assert _cli(["--fit", fit_file, "--skip-steps", "500", "--kernel", "exp", "--columns", "step=step,lr=lr,loss=loss",
                 "--forecast", f"s:{f}", "--json", str(out)]) == 2  # step=step is not a column of the schedule
    assert "step='step' is not a column of the file" in capsys.readouterr().err
    from sde_scales.fitting.forecast import schedule_from_file

    rates = schedule_from_file(f, {"step": "it", "lr": "eta", "loss": "train/loss"})
    assert rates.size == 3001 and np.all(rates == 1e-3)
