"""experiments/single_curve_diagnosis.py: on planted families of known truth it tells a law whose
form holds (the joint fit follows the cosine as its own fit does; rolling origin on the cosine finds
the truth's time scale) from one whose form does not (the joint fit misses the cosine, and the
lack-of-fit test says so); it reads the curves fit_lm_family.py writes; bad input exits 2."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import strict_json

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "single_curve_diagnosis.py"
sys.path.insert(0, str(ROOT / "experiments"))

from single_curve_diagnosis import _profile_average, band_coverage, diagnose, planted_families  # noqa: E402


def test_planted_families_tell_a_wrong_form_from_a_right_one():
    """Noise 0.003 per logged row, 5,001 steps. Where the truth is the law, both fits are of the
    true law and differ by parameter error alone, so the joint fit misses the cosine by less than
    the moving average's own noise more than the cosine's own fit (measured: |gap| <= 0.0002 over
    five seeds, against a noise floor of 0.0008), the lack-of-fit test does not fire (p > 0.01: a
    1% false-alarm rate), and the held time scale that rolling origin on the cosine prefers is the
    grid point nearest the truth (log10 300 = 2.48 -> 2.5), which also predicts the WSD runs best.
    Where progress runs on the rate's square root, no parameter set follows the cosine and the WSD
    runs together: the gap is over three noise floors (measured 0.0046-0.0050) and the test fires."""
    fams = planted_families(seed=0)
    good = fams["planted-law"]
    d = diagnose(good["cosine"], good["wsd"], skip=good["skip"], smooth=good["smooth"])
    floor = d["target_noise_rmse"]
    assert abs(d["form_gap"]) < floor
    assert d["joint_fit"]["cosine_lack_of_fit_p"] > 0.01
    assert not any("misses the fitted curves" in w for w in d["joint_fit"]["warnings"])
    assert d["cv_choice_log10_tau"] == 2.5 and d["wsd_best_log10_tau"] == 2.5
    # averaged over the held time scales by their profile likelihood on the cosine, the weight is
    # on the grid point nearest the truth (the others' fits miss the cosine by many noise levels:
    # their weights are exp(-several hundred)), and the prediction is that point's
    avg = d["profile_average"]
    held = [s for s in d["held_time_scale"] if not s["fitted"]]
    assert avg["effective_n"] < 1.01 and held[int(np.argmax(avg["weights"]))]["log10_tau"] == 2.5
    assert avg["wsd_rmse"] == pytest.approx(held[int(np.argmax(avg["weights"]))]["wsd_rmse"], rel=1e-6)
    # the joint fit's half response, tau ln 2, within 12% (0.05 in log10 tau) of the truth's
    assert abs(np.log10(d["joint_fit"]["half_response"] / np.log(2)) - good["truth_log10_tau"]) < 0.05
    bad = fams["planted-sqrt-clock"]
    d = diagnose(bad["cosine"], bad["wsd"], skip=bad["skip"], smooth=bad["smooth"])
    assert d["form_gap"] > 3 * d["target_noise_rmse"]
    assert d["joint_fit"]["cosine_lack_of_fit_p"] < 1e-6
    assert any("misses the fitted curves by more than their noise" in w for w in d["joint_fit"]["warnings"])
    fitted = next(s for s in d["held_time_scale"] if s["fitted"])
    assert fitted["log10_tau"] is None and len(d["held_time_scale"]) == 8


def test_profile_average_weights_follow_the_likelihood_of_the_cosine():
    """Two held time scales whose fits leave the cosine residual sums of squares 4 and 6 over 4
    points: the residual variance is 4/4 = 1 at the better one, so under Gaussian errors the
    likelihood ratio is exp(-(6 - 4) / 2) = e^-1 and the weights are 1/(1 + e^-1) and
    e^-1/(1 + e^-1). (Four points in blocks of 2 are fewer than three blocks: no autocorrelation
    inflation.) The averaged prediction is the weighted sum of the two, which the stand-in score
    (the prediction's mean) reads back."""
    good, worse = np.ones(4), np.full(4, np.sqrt(1.5))  # SSR 4 and 6
    p_good, p_worse = np.full(3, 2.0), np.full(3, 5.0)
    fake_score = lambda h, pred, skip_steps, smooth_steps: {"rmse": float(pred.mean()), "final_loss_err": -1.0}  # noqa: E731
    avg = _profile_average([(good, [p_good]), (worse, [p_worse])], 1000, ["wsd"], 0, 1, fake_score)
    w = np.array([1.0, np.exp(-1.0)]) / (1.0 + np.exp(-1.0))
    assert avg["weights"] == pytest.approx(w, rel=1e-12) and avg["residual_inflation"] == 1.0
    assert avg["effective_n"] == pytest.approx(np.exp(-(w * np.log(w)).sum()), rel=1e-12)
    assert avg["wsd_rmse"] == pytest.approx(2.0 * w[0] + 5.0 * w[1], rel=1e-12) and avg["wsd_abs_final_err"] == 1.0
    # residuals correlated over 1,000 steps (logged every 100: runs of 10 equal values +-1, 6 runs,
    # mean 0): the 51 overlapping means of 10 rows are +-(10 - 2k)/10 at offset k into a run, whose
    # squares add up to 5 x 3.4 + 1 = 18 over k = 0..9 five times and the last window; the long-run
    # variance is 60 x 10 / (50 x 51) x 18 = 4.235, over single values' variance 60/59: 4.165. SSR 60
    # against 90 then gives a log weight ratio of -(90 - 60) / (2 * 4.165 * 60/60) instead of -15
    # for independent residuals
    rep = np.repeat(np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0]), 10)
    slow = _profile_average([(rep, [p_good]), (rep * np.sqrt(1.5), [p_worse])], 100, ["wsd"], 0, 1, fake_score)
    kappa = 600 / (50 * 51) * 18 / (60 / 59)
    r = np.exp(-30.0 / (2 * kappa))
    assert slow["residual_inflation"] == pytest.approx(kappa, rel=1e-12)
    assert slow["weights"] == pytest.approx([1 / (1 + r), r / (1 + r)], rel=1e-12)
    # a held fit with no residual (a noise-free curve reproduced exactly): all the weight, no NaN
    exact = _profile_average([(good, [p_good]), (np.zeros(4), [p_worse])], 1000, ["wsd"], 0, 1, fake_score)
    assert exact["weights"] == [0.0, 1.0] and exact["effective_n"] == 1.0 and exact["wsd_rmse"] == 5.0


def test_band_coverage_adds_the_spread_between_time_scales():
    """Two held fits predict a run's final loss 1.0 and 1.4 (sd 0.1 each), weighted 1/2 each: the
    mixture has mean 1.2 and variance 0.01 + 0.04 = 0.05 (sd 0.2236), so with the observed loss's
    standard error 0.05 the band is 1.2 +- 1.96 sqrt(0.0525) = 1.2 +- 0.449: 1.6 lies within, 1.7
    does not. One fit alone (weight 1 on 1.0, sd 0.1) covers neither: 1.0 +- 0.219. An
    undetermined band (NaN) with weight gives None; with weight 0 it does not count."""
    finals = [[(1.0, 0.1), (1.0, 0.1)], [(1.4, 0.1), (1.4, 0.1)]]
    observed = [(1.6, 0.05), (1.7, 0.05)]
    assert band_coverage([0.5, 0.5], finals, observed) == 0.5
    assert band_coverage([1.0], finals[:1], observed) == 0.0
    # |1.0 - 1.2| = 0.2 <= 1.96 (0.01 + 0.0025)^(1/2) = 0.219, within; |1.0 - 0.8| = 0.2 > 1.96 * 0.1, not
    assert band_coverage([1.0], finals[:1], [(1.2, 0.05), (0.8, 0.0)]) == 0.5
    undetermined = [[(1.0, float("nan")), (1.0, 0.1)], [(1.4, 0.1), (1.4, 0.1)]]
    assert band_coverage([0.5, 0.5], undetermined, observed) is None
    assert band_coverage([0.0, 1.0], undetermined, observed) == 0.5  # 1.6 within 1.4 +- 0.219; 1.7 not


def _lm_folder(tmp_path) -> Path:
    """A folder as fit_lm_family.py writes it (one seed, 1,000 steps at 3e-3), its losses planted
    from the exponential kernel law with noise 0.003."""
    from fit_lm_family import family_schedules

    from sde_scales.fitting.curves import planted_curve
    from sde_scales.fitting.laws import KernelLaw

    d = tmp_path / "lm" / "curves"
    d.mkdir(parents=True)
    tag = "abcd1234_n1000_d16_lr0.003_00000000"
    for i, (k, lr) in enumerate(family_schedules(1000, 3e-3).items()):
        c, _ = planted_curve(KernelLaw("exp", "steps"), [2.5, 3.0, 0.5, 0.4, 1.7], lr, k, noise=0.003, seed=i,
                             lr_scale=3e-3)
        pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss}).to_csv(d / f"{k}_seed0_{tag}.csv", index=False)
    (d / f"manifest_seed0_{tag}.json").write_text(json.dumps({"steps": 1000, "peak_lr": 3e-3}))
    return tmp_path / "lm"


def test_the_script_reads_a_fit_lm_family_folder_and_writes_strict_json(tmp_path):
    lm = _lm_folder(tmp_path)
    out = tmp_path / "o"
    run = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path / "none"), "--lm", str(lm),
                          "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    doc = strict_json((out / "single_curve_diagnosis.json").read_text())
    (fam,) = doc["rows"]
    assert fam["family"] == "lm/seed0" and fam["law"] == "kernel(exp, steps)"
    assert fam["cosine"] == "cos10_seed0"
    assert fam["wsd"] == ["wsd-lin0.1_seed0", "wsd-lin0.2_seed0", "wsd-lin0.4_seed0", "wsd-sqrt0.2_seed0"]
    assert fam["skip_steps"] == 25 and fam["smooth_steps"] == 29
    run = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path / "none"), "--lm", str(lm),
                          "--skip-fraction", "0.1", "--out", str(tmp_path / "o10")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    later = strict_json((tmp_path / "o10" / "single_curve_diagnosis.json").read_text())
    last = pd.read_csv(next((lm / "curves").glob("cos10_*.csv"))).step.iloc[-1]
    assert later["rows"][0]["skip_steps"] == int(0.1 * last) > 25  # 10% of the cosine's last logged step
    assert [s["log10_tau"] for s in fam["held_time_scale"]] == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, None]
    assert all(np.isfinite(s["wsd_rmse"]) for s in fam["held_time_scale"])
    # a law without one time scale: the form's measurement alone, the scan's fields null
    run = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path / "none"), "--lm", str(lm),
                          "--laws", "np-steps,mpl", "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    doc = strict_json((out / "single_curve_diagnosis.json").read_text())
    assert [r["law"] for r in doc["rows"]] == ["kernel(nonparametric, steps)", "mpl"]
    for r in doc["rows"]:
        assert r["held_time_scale"] == [] and r["cv_choice_log10_tau"] is None and r["wsd_best_rmse"] is None
        assert np.isfinite(r["form_gap"]) and np.isfinite(r["own_fit"]["wsd_rmse"])


def test_bad_input_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "o"
    run = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path / "none"), "--lm", str(tmp_path / "x"),
                          "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 2 and "--lm" in run.stderr and "no curves/ folder" in run.stderr
    lm = _lm_folder(tmp_path)
    (man,) = (lm / "curves").glob("manifest_*.json")
    man.write_text('{"steps": 1000}')  # no peak: refused by name
    run = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path / "none"), "--lm", str(lm),
                          "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 2 and man.name in run.stderr and "peak_lr" in run.stderr
    man.write_text('{"steps": 1000, "peak_lr": 0.003}')
    man.rename(lm / "curves" / "manifest_seed0.json")  # a whole manifest, but no tag in its name to find its curves by
    run = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path / "none"), "--lm", str(lm),
                          "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 2 and "manifest_seed0.json" in run.stderr and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path / "none"), "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "no family to diagnose" in run.stderr
    run = subprocess.run([sys.executable, str(SCRIPT), "--planted-only", "--laws", "nope", "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "unknown ['nope']" in run.stderr
    run = subprocess.run([sys.executable, str(SCRIPT), "--planted-only", "--skip-fraction", "nan", "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "--skip-fraction nan" in run.stderr
    # a start so late that the rolling origin's first head keeps too few rows: refused by family, no traceback
    run = subprocess.run([sys.executable, str(SCRIPT), "--planted-only", "--skip-fraction", "0.49", "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "family planted-law" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists()


def test_help_names_the_options():
    run = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and "--planted-only" in run.stdout
