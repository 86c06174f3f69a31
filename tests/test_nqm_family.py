"""The many-mode noisy quadratic under a schedule (SpectralNQM) against closed forms, the protocol
runner the fitting experiments share, and the model-family experiment end to end."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import strict_json
from scipy import special

from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting import LossCurve, MomentumLaw, fit, load_curve, predict
from sde_scales.fitting.fit import extrapolations
from sde_scales.models.nqm import NoisyQuadraticModel, SpectralNQM

ROOT = Path(__file__).resolve().parents[1]


def test_two_modes_at_a_constant_rate_match_the_nqm_closed_form():
    """The two-mode NoisyQuadraticModel at width 1 (beta = 0) is SpectralNQM with weights 1/2 and
    m0 = h^-2; its closed form (a geometric sum) and the recursion agree to rounding."""
    nqm = NoisyQuadraticModel(n=1, h=(1.0, 20.0), sigma=0.3, beta=0.0)
    h = np.array([1.0, 20.0])
    s = SpectralNQM(h=h, weights=[0.5, 0.5], m0=h**-2.0, sigma=0.3)
    eta = 0.07
    got = s.expected_loss(np.full(400, eta))
    want = [float(nqm.expected_loss(eta, t)) for t in (0, 1, 5, 50, 400)]
    assert got[[0, 1, 5, 50, 400]] == pytest.approx(want, rel=1e-12)


def test_a_drop_relaxes_each_mode_geometrically_to_its_new_level():
    """One mode, rate eta1 for t0 steps then eta2: m(t) = m*(eta2) + (m(t0) - m*(eta2)) r2^(2(t - t0))
    with m*(eta) = eta^2 sigma^2 h / (1 - r^2) and m(t0) from the same formula at eta1: the
    recursion solved by hand."""
    h, sigma, m0, floor = 0.3, 0.5, 2.0, 1.5
    s = SpectralNQM(h=[h], weights=[1.0], m0=[m0], sigma=sigma, floor=floor)
    t0, eta1, eta2 = 40, 0.5, 0.1
    lr = np.r_[np.full(t0, eta1), np.full(60, eta2)]
    got = s.expected_loss(lr)

    def stationary(eta):
        r2 = (1 - eta * h) ** 2
        return eta**2 * sigma**2 * h / (1 - r2), r2

    s1, r1 = stationary(eta1)
    s2, r2 = stationary(eta2)
    m_t0 = s1 + (m0 - s1) * r1**t0
    t = np.arange(t0, 101)
    want = floor + 0.5 * h * (s2 + (m_t0 - s2) * r2 ** (t - t0))
    assert got[t0:] == pytest.approx(want, rel=1e-12)


def test_power_law_spectrum_gives_the_power_law_in_the_learning_rate_area():
    r"""Without noise, at a small constant rate, the loss above its floor is
    :math:`\tfrac12 \sum_i A i^{-(1+\alpha a)} e^{-2\eta t i^{-a}} \approx \tfrac{A}{2a}\Gamma(\alpha)(2\eta t)^{-\alpha}`
    while the slowest modes are far from relaxed (1e8 coordinates; eta h <= 0.01 makes
    (1 - eta h)^(2t) = exp(-2 eta h t) to 1%). Tolerance 2%: the binned sum's quadrature error (400
    geometric bins over eight decades, a ratio of 1.047 per bin) is a few tenths of a percent, the
    discrete-step correction under 1% at these t."""
    alpha, a, amp, eta = 0.3, 1.5, 1.0, 0.01
    s = SpectralNQM.power_law(alpha=alpha, a=a, amplitude=amp, sigma=0.0, floor=0.0, modes=1e8)
    L = s.expected_loss(np.full(20000, eta))
    for t in (2000, 20000):
        want = amp / (2 * a) * special.gamma(alpha) * (2 * eta * t) ** (-alpha)
        assert L[t] == pytest.approx(want, rel=0.02)


def test_bad_rates_and_spectra_are_refused_with_the_value():
    s = SpectralNQM.power_law()
    with pytest.raises(InvalidArgumentError, match=r"lr\[3\] = 0.8 is at or beyond the edge of stability"):
        s.expected_loss([0.1, 0.1, 0.1, 0.8])
    with pytest.raises(InvalidArgumentError, match=r"lr\[1\] = -0.1"):
        s.expected_loss([0.1, -0.1])
    with pytest.raises(InvalidArgumentError, match=r"lr\[0\] = nan"):
        s.expected_loss([np.nan])
    with pytest.raises(InvalidArgumentError, match="equal lengths"):
        SpectralNQM(h=[1.0, 2.0], weights=[1.0], m0=[1.0, 1.0], sigma=0.1)
    with pytest.raises(InvalidArgumentError, match="h > 0"):
        SpectralNQM(h=[1.0, 0.0], weights=[1.0, 1.0], m0=[1.0, 1.0], sigma=0.1)
    with pytest.raises(InvalidArgumentError, match="a > 1"):
        SpectralNQM.power_law(a=1.0)


def test_run_protocol_fits_each_fitted_set_once_and_scores_against_the_truth(monkeypatch):
    """Two splits that share their fitted curve reuse one fit; the noise-free scores are the RMSE
    and final error against the given truth, recomputed here from a fit made independently."""
    from sde_scales.fitting import protocols

    step = np.arange(0, 6001, 50)
    lr_fit = np.where(step < 4000, 1e-3, 1e-4)
    lr_held = np.where(step < 5000, 1e-3, 3e-4)
    rng = np.random.default_rng(4)
    truth_fit = 3.0 + 2.0 * (1.0 + step / 1000.0) ** -0.5 - 0.2 * (lr_fit < 1e-3)
    truth_held = 3.0 + 2.0 * (1.0 + step / 1000.0) ** -0.5 - 0.1 * (lr_held < 1e-3)
    fitted = LossCurve(step, lr_fit, truth_fit + 0.02 * rng.standard_normal(step.size), name="fit")
    held = [LossCurve(step, lr_held, truth_held + 0.02 * rng.standard_normal(step.size), name=f"held{i}")
            for i in range(2)]
    calls = []
    real_fit = protocols.fit
    monkeypatch.setattr(protocols, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    law = MomentumLaw(lam=0.99)
    per, preds = protocols.run_protocol(law, [([fitted], h) for h in held], skip_steps=200, smooth_steps=500,
                                        truth={"held0": truth_held})
    assert len(calls) == 1 and len(per) == len(preds) == 2
    r = fit(law, [fitted], skip_steps=200)
    p = predict(r, held[0])
    keep = step >= 200
    assert per[0]["rmse_truth"] == pytest.approx(np.sqrt(np.mean((p - truth_held)[keep] ** 2)), rel=1e-9)
    n_last = 6  # 5% of 121 rows
    assert per[0]["final_err_truth"] == pytest.approx(np.mean(p[-n_last:]) - np.mean(truth_held[-n_last:]), rel=1e-9)
    # before the cooldown (steps < 5000, where the held-out rate leaves its peak) and in it
    for part, rows in (("stable", keep & (step < 5000)), ("cooldown", step >= 5000)):
        assert per[0][f"{part}_rmse_truth"] == pytest.approx(np.sqrt(np.mean((p - truth_held)[rows] ** 2)), rel=1e-9)
        target = held[0].smoothed(500)
        assert per[0][f"{part}_rmse"] == pytest.approx(np.sqrt(np.mean((p - target)[rows] ** 2)), rel=1e-9)
    assert "rmse_truth" not in per[1]
    row = protocols.protocol_row("p", law.label, per, 1.0)
    assert row["mean_rmse"] == pytest.approx(np.mean([x["rmse"] for x in per]))
    assert "mean_rmse_truth" not in row  # only one of the two held-out curves has a truth
    assert row["mean_stable_rmse"] == pytest.approx(np.mean([x["stable_rmse"] for x in per]))
    # what predict would warn is kept per split and counted per row: nothing here, and a held-out
    # run at three times the fitted peak rate (and so 3.8 times its area) named as an extrapolation
    assert per[0]["extrapolations"] == [] and row["extrapolated"] == 0
    hot = LossCurve(step, 3 * lr_held, held[0].loss, name="hot")
    per_hot, _ = protocols.run_protocol(law, [([fitted], hot)], skip_steps=200, smooth_steps=500)
    assert per_hot[0]["extrapolations"] == sorted(extrapolations(fit(law, [fitted], skip_steps=200), hot))
    assert any(m.startswith("hot: peak learning rate 0.003") for m in per_hot[0]["extrapolations"])
    assert protocols.protocol_row("p", law.label, per_hot, 1.0)["extrapolated"] == 1


def test_nqm_family_experiment_writes_its_curves_and_strict_json(tmp_path):
    """A small run of the script: eight curves written in the real format, read back, with noise of
    the stated level about the model's expected loss; strict JSON with the rows of both protocols and
    the paired comparisons, each with its noise-free answer."""
    out = tmp_path / "nqm"
    run = subprocess.run([sys.executable, str(ROOT / "experiments" / "fit_nqm_family.py"), "--steps", "3000",
                          "--seeds", "1", "--laws", "exp-steps,momentum0.99", "--amplitude", "2", "--sigma", "0.5",
                          "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    paths = sorted((out / "curves").glob("*.csv"))
    assert len(paths) == 8
    c = load_curve(out / "curves" / "wsd-lin0.2_seed0.csv")
    assert list(pd.read_csv(paths[0]).columns) == ["step", "lr", "loss"]
    from sde_scales import schedules

    lr = schedules.wsd(3000, 0.5, 0.2, warmup_steps=30)
    model = SpectralNQM.power_law(amplitude=2.0, sigma=0.5)  # the family the flags ask for
    mean = model.expected_loss(lr)[c.step]
    assert c.step[0] == 0 and c.lr == pytest.approx(lr[c.step])
    # 60 points of noise 0.1: the sample sd has standard error 0.1 / sqrt(2 * 59) = 0.009; 4 of them
    assert np.std(c.loss - mean, ddof=1) == pytest.approx(0.1, abs=0.037)

    doc = strict_json((out / "nqm_family.json").read_text())
    assert [(r["protocol"], r["law"]) for r in doc["rows"]] == [
        ("single-cosine", "kernel(exp, steps)"), ("single-cosine", "momentum(lambda=0.99)"),
        ("loso", "kernel(exp, steps)"), ("loso", "momentum(lambda=0.99)")]
    assert all(r["mean_rmse_truth"] > 0 for r in doc["rows"])
    assert [e["law"] for e in doc["comparisons"]] == ["kernel(exp, steps)"] * 2
    assert all(set(e["truth"]) == {"rmse", "final"} for e in doc["comparisons"])
    # the family's shape, as the docstring and RESULTS.md quote it, from the model here: the constant
    # run's fall from the logged step nearest 1,000 x 3,000 / 34,000 (88: logged every 50, so 100) to
    # the last logged step, and the 20% WSD cooldown's gain there
    k = c.step
    const = model.expected_loss(schedules.constant(3000, 0.5, warmup_steps=30))[k]
    assert doc["family"]["constant_fall_from_step"] == 100
    assert doc["family"]["constant_fall"] == pytest.approx(const[k == 100][0] - const[-1], rel=1e-12)
    assert doc["family"]["cooldown_gain"] == pytest.approx(const[-1] - mean[-1], rel=1e-12)
    bad = subprocess.run([sys.executable, str(ROOT / "experiments" / "fit_nqm_family.py"), "--noise", "-1",
                          "--out", str(tmp_path / "bad")], capture_output=True, text=True)
    assert bad.returncode == 2 and "--noise -1" in bad.stderr and not (tmp_path / "bad").exists()
    bad = subprocess.run([sys.executable, str(ROOT / "experiments" / "fit_nqm_family.py"), "--sigma", "0",
                          "--out", str(tmp_path / "bad")], capture_output=True, text=True)
    assert bad.returncode == 2 and "--sigma 0" in bad.stderr and not (tmp_path / "bad").exists()
    assert doc["family"]["model"] == "SpectralNQM.power_law(amplitude=2, sigma=0.5)"


def test_run_auto_protocol_chooses_once_per_fitted_set_and_predicts_with_the_choice(monkeypatch):
    """Two held-out curves predicted from the same fitted pair: one choice (fit_auto called once),
    both rows name it, and each prediction is the chosen law's, fitted to the pair afresh here, or,
    where the folds do not separate the two laws, the mean of both laws' predictions."""
    from sde_scales.fitting import KernelLaw, protocols, report

    step = np.arange(0, 6001, 50)
    rng = np.random.default_rng(8)

    def curve(drop_at, name):
        lr = np.where(step < drop_at, 1e-3, 3e-4)
        return LossCurve(step, lr, 3.0 + 2.0 * (1.0 + step / 1000.0) ** -0.5 - 0.1 * (lr < 1e-3)
                         + 0.02 * rng.standard_normal(step.size), name=name)

    fitted = [curve(3000, "a"), curve(4500, "b")]
    held = [curve(5000, "h0"), curve(4000, "h1")]
    calls = []
    real = report.fit_auto
    monkeypatch.setattr(report, "fit_auto", lambda *a, **k: calls.append(1) or real(*a, **k))
    cands = (("kernel", "exp", "steps"), ("momentum", None, None))
    per, preds, choices = protocols.run_auto_protocol([(fitted, h) for h in held], skip_steps=200,
                                                      smooth_steps=500, candidates=cands)
    assert len(calls) == 1 and list(choices) == [("a", "b")]
    auto, res = choices[("a", "b")]
    assert [p["chosen"] for p in per] == [auto["chosen"]] * 2
    assert auto["chosen"] in ("kernel(exp, steps, offset tested)", "momentum")
    by_label = {"kernel(exp, steps, offset tested)": KernelLaw("exp", "steps", offset="test"), "momentum": MomentumLaw()}
    members = [auto["chosen"]] if auto["decided"] else [auto["chosen"], *auto["undecided"]]
    assert [p["members"] for p in per] == [members] * 2
    again = [fit(by_label[m], fitted, skip_steps=200) for m in members]
    for p, h in zip(preds, held):
        assert p == pytest.approx(np.mean([predict(r, h) for r in again], axis=0), rel=1e-9, nan_ok=True)
    # the least-error pick from the same choice, reused: no cross-validation runs again, and the rows
    # and predictions equal those of a pick that cross-validates afresh
    fresh = protocols.run_auto_protocol([(fitted, h) for h in held], skip_steps=200, smooth_steps=500,
                                        candidates=cands, average=False)
    monkeypatch.setattr(report, "choose_law", lambda *a, **k: pytest.fail("cross-validated again"))
    reused = protocols.run_auto_protocol([(fitted, h) for h in held], skip_steps=200, smooth_steps=500,
                                         candidates=cands, average=False,
                                         choices={k: a for k, (a, _) in choices.items()})
    assert reused[0] == fresh[0] and all(np.array_equal(x, y, equal_nan=True) for x, y in zip(reused[1], fresh[1]))
    assert [p["members"] for p in reused[0]] == [[auto["chosen"]]] * 2
    # a choice made on other curves is refused, not used
    with pytest.raises(InvalidArgumentError, match="the choice given was made on the folds"):
        protocols.run_auto_protocol([([held[0], held[1]], fitted[0])], skip_steps=200, smooth_steps=500,
                                    candidates=cands, average=False, choices={("h0", "h1"): auto})
