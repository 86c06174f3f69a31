"""The average over a law's time scales (:mod:`sde_scales.fitting.time_scale_average`) and the
weighted mixture it rests on (:class:`~sde_scales.fitting.average.AveragedFit` with weights)."""

import json
import warnings
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import strict_json

from sde_scales import schedules
from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting import KernelLaw, LossCurve, MomentumLaw, fit
from sde_scales.fitting.fit import fit_bounds
from sde_scales.fitting.average import AveragedFit, mixture_sd, predict_any, predict_sd_any
from sde_scales.fitting.curves import planted_curve
from sde_scales.fitting.forecast import forecast, forecast_difference
from sde_scales.fitting.time_scale_average import effective_number, time_scale_average, time_scale_grid

LAW = KernelLaw("exp", "steps")
THETA = [2.5, 3.0, 0.5, 0.4, np.log10(300.0)]  # time scale 300 steps
N, PEAK = 5001, 1e-3


def _planted(kind: str, seed: int):
    lr = (schedules.cosine(N, PEAK, final_fraction=0.1, warmup_steps=100) if kind == "cos"
          else schedules.wsd(N, PEAK, fraction=0.2, warmup_steps=100))
    return planted_curve(LAW, THETA, lr, kind, noise=0.003, seed=seed)


def test_weighted_mixture_formulas_by_hand():
    """Means 1 and 3, sds 0.5 and 1, weights 1/4 and 3/4: mean 2.5, variance
    0.25 * 0.25 + 0.75 * 1 + 0.25 * 2.25 + 0.75 * 0.25 = 1.5625; a NaN sd of weight 0 does not
    count; equal weights are the unweighted mixture."""
    means, sds = np.array([1.0, 3.0]), np.array([0.5, 1.0])
    assert float(mixture_sd(means, sds, np.array([0.25, 0.75]))) == pytest.approx(np.sqrt(1.5625), rel=1e-12)
    assert float(mixture_sd(means, np.array([np.nan, 1.0]), np.array([0.0, 1.0]))) == pytest.approx(1.0, rel=1e-12)
    assert np.isnan(mixture_sd(means, np.array([np.nan, 1.0]), np.array([0.5, 0.5])))
    assert float(mixture_sd(means, sds, np.array([0.5, 0.5]))) == pytest.approx(float(mixture_sd(means, sds)),
                                                                                rel=1e-12)


def test_an_averaged_fit_with_weights_predicts_and_forecasts_the_weighted_mixture():
    """Two fits of one curve (time scale held at 100 and 1,000 steps), weighted 1:3 (normalised to
    1/4, 3/4): the prediction, its band, a forecast and a forecast difference are the weighted
    mixture of the two fits' own; equal weights give what the unweighted average gives."""
    cos, _ = _planted("cos", 0)
    wsd, _ = _planted("wsd", 1)
    a, b = (fit(LAW, [cos], fixed={"log10_tau": v}) for v in (2.0, 3.0))
    avg = AveragedFit(("100", "1000"), (a, b), (1.0, 3.0), "two time scales")
    assert avg.weights == (0.25, 0.75) and avg.label == "two time scales"
    pa, pb = predict_any(a, wsd), predict_any(b, wsd)
    np.testing.assert_allclose(predict_any(avg, wsd), 0.25 * pa + 0.75 * pb, rtol=1e-13)
    fa, fb = predict_sd_any(a, wsd)[1], predict_sd_any(b, wsd)[1]
    n = max(1, round(0.05 * wsd.step.size))
    ma, mb = pa[-n:].mean(), pb[-n:].mean()
    m = 0.25 * ma + 0.75 * mb
    final = np.sqrt(0.25 * fa ** 2 + 0.75 * fb ** 2 + 0.25 * (ma - m) ** 2 + 0.75 * (mb - m) ** 2)
    assert predict_sd_any(avg, wsd)[1] == pytest.approx(final, rel=1e-12)
    spec_a = "warmup=100,peak=1e-3,decay=linear,decay_start=4500,total=5000"
    spec_b = "warmup=100,peak=1e-3,decay=linear,decay_start=3000,total=5000"
    fx, fy = forecast(avg, spec_a, name="a"), forecast(avg, spec_b, name="b")
    ones = [forecast(r, spec_a, name="a").final_loss for r in (a, b)]
    assert fx.final_loss == pytest.approx(0.25 * ones[0] + 0.75 * ones[1], rel=1e-12)
    d = forecast_difference(avg, fx, fy)
    da, db = (forecast(r, spec_a, name="a").final_loss - forecast(r, spec_b, name="b").final_loss for r in (a, b))
    assert d.difference == pytest.approx(0.25 * da + 0.75 * db, rel=1e-12)
    equal, plain = AveragedFit(("100", "1000"), (a, b), (2.0, 2.0)), AveragedFit(("100", "1000"), (a, b))
    assert predict_sd_any(equal, wsd)[1] == pytest.approx(predict_sd_any(plain, wsd)[1], rel=1e-12)
    for bad in ((1.0,), (1.0, -1.0), (0.0, 0.0), (1.0, float("nan"))):
        with pytest.raises(InvalidArgumentError, match="weight"):
            AveragedFit(("100", "1000"), (a, b), bad)


def test_the_grid_is_the_range_the_fit_searches():
    """The law's bounds of log10 tau, 0 to 5 (1 to 100,000 steps), raised to twice the longest
    curve in the law's clock as fit raises them: a 5,000-step cosine stays within 0..5; a
    1,000,000-step run reaches log10(2e6) = 6.30, rounded out to 6.5, in steps and, at a constant
    rate, in learning-rate area (the area over the peak is then the length); a cosine's area is
    about 0.55 of its length."""
    cos, _ = _planted("cos", 0)  # logged every 10 steps, to step 5,000
    np.testing.assert_array_equal(time_scale_grid(LAW, [cos]), np.arange(0.0, 5.25, 0.5))
    for law in (LAW, KernelLaw("exp", "area"), MomentumLaw()):  # fit_bounds is what fit searches
        lo, hi = fit_bounds(law, [cos], skip_steps=300)
        r = fit(law, [cos], skip_steps=300, max_evaluations=5)
        np.testing.assert_array_equal(lo, r.extra["bounds"][0])
        np.testing.assert_array_equal(hi, r.extra["bounds"][1])
    step = np.arange(1000, 1_000_001, 1000)
    long = LossCurve(step, np.full(step.size, 1e-3), 2.0 + (step / 1e3) ** -0.5, name="long")
    assert time_scale_grid(LAW, [long])[-1] == 6.5 and time_scale_grid(KernelLaw("exp", "area"), [long])[-1] == 6.5
    # a cosine to 10%: its area is about 0.55 of its length, 2 x 550,000 = 1.1e6, log10 6.04 -> 6.5
    lr = schedules.cosine(1_000_001, 1e-3, final_fraction=0.1)
    c = LossCurve(step, lr[step], 2.0 + (step / 1e3) ** -0.5, name="c", schedule=lr)
    area = float(np.sum(c.per_step_lr())) / c.peak_lr
    assert 5.4e5 < area < 5.6e5 and time_scale_grid(KernelLaw("exp", "area"), [c])[-1] == 6.5
    with pytest.raises(InvalidArgumentError, match="no single time scale"):
        time_scale_grid(KernelLaw("nonparametric", "steps"), [cos])
    assert effective_number([0.5, 0.5]) == pytest.approx(2.0) and effective_number([1.0, 0.0]) == 1.0
    for bad in ([0.0, 0.0], [1.0, float("nan")], [1.0, -0.5]):  # were nan or a negative count
        with pytest.raises(InvalidArgumentError, match="weights"):
            effective_number(bad)


def test_where_the_curves_decide_the_weight_is_on_the_plain_fit():
    """A cosine and a WSD run of the law itself (time scale 300 steps) pin the time scale. On the
    grid alone the weight concentrates on 316 steps (log10 2.5, the grid point nearest log10 300 =
    2.48). With the plain fit as a node (the default) it concentrates on the fit, whose member is
    the plain fit itself; either way the effective number is near 1 and the prediction of another
    WSD run is within 0.002 of the truth in RMSE (noise 0.003)."""
    cos, _ = _planted("cos", 0)
    wsd, _ = _planted("wsd", 1)
    held, truth = planted_curve(LAW, THETA, schedules.wsd(N, PEAK, fraction=0.4, warmup_steps=100), "w40", seed=5)
    plain = fit(LAW, [cos, wsd])
    for with_optimum, end in ((False, "tau 316"), (True, f"tau {10 ** plain.theta[-1]:.3g} (fitted)")):
        avg = time_scale_average(LAW, [cos, wsd], with_optimum=with_optimum)
        top = int(np.argmax(avg.weights))
        assert avg.labels[top].endswith(end) and avg.weights[top] > 0.9 and effective_number(avg.weights) < 1.5
        assert np.sqrt(np.mean((predict_any(avg, held) - truth)[50:] ** 2)) < 0.002
    np.testing.assert_array_equal(avg.results[top].theta, plain.theta)


def test_the_plain_fit_node_weighs_by_its_cell(monkeypatch):
    """Equal residuals at every node (a flat likelihood), the grid 2.0, 2.5, 3.0 (cells of half a
    decade, from 1.75 to 3.25) and the plain fit planted at log10 tau = 2.2: the nodes' cells end
    at the midpoints 2.1, 2.35 and 2.75, so their widths are 0.35, 0.25, 0.4 and 0.5, and the
    weights are those over 1.5. A plain fit on a grid point, outside the grid or on a bound of its
    own range adds no node."""
    import dataclasses

    import sde_scales.fitting.time_scale_average as tsa_mod
    from sde_scales.fitting.time_scale_average import cell_widths

    np.testing.assert_allclose(cell_widths(np.array([2.0, 2.2, 2.5, 3.0]), (1.75, 3.25)), [0.35, 0.25, 0.4, 0.5])
    for nodes in ([2.5, 2.0, 3.0], [2.0, 2.0, 3.0], [1.0, 2.0], [2.0, float("nan")], []):  # a width < 0, or none
        with pytest.raises(InvalidArgumentError, match="give finite nodes in increasing order within the span"):
            cell_widths(np.array(nodes), (1.75, 3.25))
    cos, _ = _planted("cos", 0)
    sign = np.where(np.arange(cos.step.size) % 2 == 0, 1.0, -1.0)
    monkeypatch.setattr(tsa_mod, "predict", lambda r, c: c.loss + sign)
    real_fit, planted = tsa_mod.fit, {"v": 2.2}

    def fit_planting_the_optimum(law, curves, fixed=None, **kw):
        r = real_fit(law, curves, fixed=fixed, max_evaluations=5, **{k: v for k, v in kw.items()
                                                                    if k != "max_evaluations"})
        if fixed is None:
            theta, (lo, hi) = r.theta.copy(), r.extra["bounds"]
            theta[-1], hi = planted["v"], hi.copy()
            hi[-1] = planted.get("hi", hi[-1])
            r = dataclasses.replace(r, theta=theta, extra={**r.extra, "bounds": (lo, hi)})
        return r

    monkeypatch.setattr(tsa_mod, "fit", fit_planting_the_optimum)
    avg = time_scale_average(LAW, [cos], grid=[2.0, 2.5, 3.0])
    assert avg.labels[1].endswith("(fitted)") and avg.results[1].theta[-1] == 2.2
    assert avg.weights == pytest.approx((0.35 / 1.5, 0.25 / 1.5, 0.4 / 1.5, 0.5 / 1.5), rel=1e-9)
    for v, hi in ((2.5, 5.0), (3.4, 5.0), (2.2, 2.2)):  # a grid point, past the grid, on the fit's bound
        planted.update(v=v, hi=hi)
        avg = time_scale_average(LAW, [cos], grid=[2.0, 2.5, 3.0])
        assert len(avg.labels) == 3 and avg.weights == pytest.approx((1 / 3, 1 / 3, 1 / 3), rel=1e-9)
    # the plain fit the most likely (smaller residuals): the edge warning reads its nearest grid
    # point, the grid's longest at 2.9 (the weight piles at the edge, shared with 3.0), not at 2.6
    from sde_scales.fitting.fit import IdentifiabilityWarning

    monkeypatch.setattr(tsa_mod, "predict", lambda r, c: c.loss + sign * (0.9 if r.theta[-1] == planted["v"] else 1))
    planted.update(v=2.9, hi=5.0)
    with pytest.warns(IdentifiabilityWarning, match=r"of most likelihood .* 794 steps, is at the longest end"):
        time_scale_average(LAW, [cos], grid=[2.0, 2.5, 3.0])
    planted.update(v=2.6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        time_scale_average(LAW, [cos], grid=[2.0, 2.5, 3.0])


def test_laws_without_one_time_scale_are_refused():
    cos, _ = _planted("cos", 0)
    for law in (KernelLaw("nonparametric", "steps"), KernelLaw("power", "steps")):
        with pytest.raises(InvalidArgumentError, match="no single time scale"):
            time_scale_average(law, [cos])
    labels = time_scale_average(MomentumLaw(), [cos], grid=[2.0, 3.0], with_optimum=False).labels
    assert labels[0].startswith("momentum at tau 100")


def test_fit_delay_average_time_scale(tmp_path):
    """The command: the weights in strict JSON summing to 1, the mixture's band not conditional on
    the time scale, the one-curve note kept; refused (exit 2) for a law without one time scale and
    beside --compare or --profile."""
    cos, _ = _planted("cos", 0)
    wsd, _ = _planted("wsd", 1)
    paths = []
    for c in (cos, wsd):
        p = tmp_path / f"{c.name}.csv"
        pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss}).to_csv(p, index=False)
        paths.append(str(p))
    base = [sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", paths[0], "--predict", paths[1],
            "--no-progress"]
    out = tmp_path / "a.json"
    run = subprocess.run(base + ["--kernel", "exp", "--average-time-scale", "--json", str(out)], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    doc = strict_json(out.read_text())
    tsa = doc["time_scale_average"]
    assert sum(tsa["weights"]) == pytest.approx(1.0) and len(tsa["labels"]) == len(doc["members"])
    assert not any(c.startswith("log10_tau") for c in doc["band"]["conditional_on"])
    assert any("fitted to one curve" in w for w in doc["warnings"])
    assert doc["predict"][0]["final_loss_pred_sd"] is not None
    # the held fits in two processes: the same numbers
    run = subprocess.run(base + ["--kernel", "exp", "--average-time-scale", "--workers", "2", "--json",
                                 str(tmp_path / "w2.json")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    doc2 = json.loads((tmp_path / "w2.json").read_text())
    assert doc2["time_scale_average"] == tsa and doc2["predict"] == doc["predict"]
    for bad in ([], ["--kernel", "exp", "--compare"], ["--kernel", "exp", "--profile"], ["--law", "mpl"]):
        run = subprocess.run(base + bad + ["--average-time-scale"], capture_output=True, text=True)
        assert run.returncode == 2 and "--average-time-scale" in run.stderr and "Traceback" not in run.stderr


def test_a_held_value_without_finite_residuals_gets_no_weight(monkeypatch):
    """A held time scale whose fit predicts a non-finite loss (a law that overflows there) carries
    no likelihood: weight 0, left out, the others weighted as without it; if none is finite the
    average is refused by name, not built from NaN weights."""
    import sde_scales.fitting.time_scale_average as tsa_mod

    cos, _ = _planted("cos", 0)
    real_predict = tsa_mod.predict

    def overflowing_at_1000(r, c):
        p = real_predict(r, c)
        return np.full_like(p, np.nan) if r.theta[-1] == 3.0 else p

    monkeypatch.setattr(tsa_mod, "predict", overflowing_at_1000)
    avg = time_scale_average(LAW, [cos], grid=[2.0, 2.5, 3.0])
    assert not any(lab.endswith("tau 1e+03") for lab in avg.labels) and np.isclose(sum(avg.weights), 1.0)
    monkeypatch.setattr(tsa_mod, "predict", lambda r, c: np.full(c.step.size, np.nan))
    with pytest.raises(InvalidArgumentError, match="no held time scale"):
        time_scale_average(LAW, [cos], grid=[2.0, 3.0])


def test_weights_are_the_profile_likelihood_by_hand(monkeypatch):
    """Residuals planted through ``predict``: +-1 alternating at the held value 100 steps (SSR n,
    so sigma^2 = 1; alternating residuals have no block correlation, so no inflation) and
    +-sqrt(1 + 2/n) at 1,000 steps (SSR n + 2). The likelihood ratio is exp(-2 / 2) = e^-1: the
    weights are 1/(1 + e^-1) and e^-1/(1 + e^-1)."""
    import sde_scales.fitting.time_scale_average as tsa_mod

    cos, _ = _planted("cos", 0)
    n = cos.step.size
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)

    def planted_residuals(r, c):
        return c.loss + sign * (1.0 if r.theta[-1] == 2.0 else np.sqrt(1.0 + 2.0 / n))

    monkeypatch.setattr(tsa_mod, "predict", planted_residuals)
    avg = time_scale_average(LAW, [cos], grid=[2.0, 3.0], with_optimum=False)
    e = np.exp(-1.0)
    assert avg.weights == pytest.approx((1 / (1 + e), e / (1 + e)), rel=1e-9)
    # residuals in runs of 100 rows of one sign (1,000 steps at 10 per row): correlated, so the
    # likelihood is flattened by the fit's own inflation factor kappa (> 1 here)
    from sde_scales.fitting.fit import autocorrelation_inflation

    sign[:] = np.where((np.arange(n) // 100) % 2 == 0, 1.0, -1.0)
    kappa = autocorrelation_inflation(sign.copy(), cos.log_every)
    assert kappa > 10
    avg = time_scale_average(LAW, [cos], grid=[2.0, 3.0], with_optimum=False)
    r = np.exp(-1.0 / kappa)
    assert avg.weights == pytest.approx((1 / (1 + r), r / (1 + r)), rel=1e-9)


def test_weight_piled_at_the_grid_edge_is_warned(tmp_path):
    """A cosine and a WSD run of the law with time scale 300 steps, averaged over grids that hold
    it inside (100 to 1,000 steps: no warning) and that stop above it (1,000 to 10,000 steps: the
    weight piles on 1,000, the grid's shortest, and the average cannot count the truth's side of
    it): an IdentifiabilityWarning names the edge, and fit-delay's JSON keeps it."""
    from sde_scales.fitting.fit import IdentifiabilityWarning

    cos, _ = _planted("cos", 0)
    wsd, _ = _planted("wsd", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        time_scale_average(LAW, [cos, wsd], grid=[2.0, 2.5, 3.0])
    with pytest.warns(IdentifiabilityWarning, match=r"most likelihood .*1e\+03 steps, is at the shortest end of the "
                                                   r"grid given"):
        time_scale_average(LAW, [cos, wsd], grid=[3.0, 3.5, 4.0])
    # the command, on the default grid (1 to 100,000 steps): a response of 0.3 steps lies past its
    # shortest end (measured: all the weight on 1 step)
    fast = THETA[:4] + [-0.5]  # log10 of 0.3 steps
    paths = []
    for i, (kind, lr) in enumerate((("cos", schedules.cosine(N, PEAK, final_fraction=0.1, warmup_steps=100)),
                                    ("wsd", schedules.wsd(N, PEAK, fraction=0.2, warmup_steps=100)))):
        c, _ = planted_curve(LAW, fast, lr, kind, noise=0.003, seed=i)
        paths += ["--fit", str(tmp_path / f"{kind}.csv")]
        pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss}).to_csv(tmp_path / f"{kind}.csv", index=False)
    out = tmp_path / "edge.json"
    run = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", *paths, "--kernel", "exp",
                          "--average-time-scale", "--no-progress", "--json", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    doc = json.loads(out.read_text())
    assert any("is at the shortest end of the range the fit searches" in w for w in doc["warnings"])
    assert "IdentifiabilityWarning" not in run.stderr  # said once, in the report


def test_the_same_average_from_two_worker_processes(tmp_path):
    """The held fits run in two spawned processes give the same weights, members and prediction as
    in this process, to the last bit; a worker count that is not a whole number >= 1 is refused."""
    cos, _ = _planted("cos", 0)
    wsd, _ = _planted("wsd", 1)
    one = time_scale_average(LAW, [cos], grid=[1.0, 2.0, 3.0, 4.0])
    two = time_scale_average(LAW, [cos], grid=[1.0, 2.0, 3.0, 4.0], workers=2)
    assert one.labels == two.labels and one.weights == two.weights
    np.testing.assert_array_equal(predict_any(one, wsd), predict_any(two, wsd))
    for bad in (0, 1.5, True):
        with pytest.raises(InvalidArgumentError, match="workers"):
            time_scale_average(LAW, [cos], grid=[2.0, 3.0], workers=bad)
