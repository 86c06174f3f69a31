"""Logs that start with the initial loss: a row at step 0 (or in a warmup from a rate of 0), logged
before any update, where the learning-rate area S1 is 0 and every law's power term A S1^-alpha is
infinite. Such a row used to be fitted: on the planted curves below alpha came out 0.051 for a true
0.3, and the held-out WSD run's RMSE 0.35 against 0.018 now (benchmarks/RESULTS.md)."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from sde_scales import schedules
from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting import KernelLaw, LossCurve, fit, predict, score
from sde_scales.fitting.compare import compare_predictions
from sde_scales.fitting.curves import InitialLossWarning, planted_curve
from sde_scales.fitting.fit import predict_sd

THETA = [2.0, 1.5, 0.3, 0.3, np.log10(200.0)]  # L0, A, alpha, B, log10_tau of the exponential kernel in steps
INITIAL = 10.0  # the loss before any update: far above the curve, as a language model's ln(vocabulary) is


def _with_initial_row(curve: LossCurve, lr0: float, loss0: float = INITIAL) -> LossCurve:
    """``curve`` with a row at step 0 holding the initial loss (and the rate of step 0)."""
    return LossCurve(np.r_[0, curve.step], np.r_[lr0, curve.lr], np.r_[loss0, curve.loss], name=curve.name)


def _planted(lr, name, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curve, clean = planted_curve(KernelLaw("exp", "steps"), THETA, lr, name, noise=0.01, seed=seed)
    return curve, clean


def _fit(curves):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(KernelLaw("exp", "steps"), curves)


def test_the_initial_loss_is_left_out_of_the_fit_the_prediction_and_the_scores():
    """With the row at step 0 the fit is the fit without it (the same rows, the same rates), and
    recovers the planted alpha; predict gives NaN at the row, and every metric is that of the
    curve without it (its moving average, the target, does not take the initial loss in)."""
    cos, clean_cos = _planted(schedules.cosine(4001, 1e-3), "cos", 1)
    wsd, _ = _planted(schedules.wsd(4001, 1e-3, fraction=0.2), "wsd", 2)
    full = [_with_initial_row(c, 1e-3) for c in (cos, wsd)]
    assert [c.untrained_rows() for c in full] == [1, 1] and [c.untrained_rows() for c in (cos, wsd)] == [0, 0]
    # the same curves without the row: they start at step 10 and hold their first logged rate
    # before it, which for the WSD run is the rate of step 0
    trimmed = [LossCurve(c.step[1:], c.lr[1:], c.loss[1:], name=c.name) for c in full]
    # fitted on the WSD run, whose rate at step 10 is the peak, so that both fits have one rate unit
    with pytest.warns(InitialLossWarning, match=r"wsd: row 0 \(step 0\).*initial loss"):
        r_full = fit(KernelLaw("exp", "steps"), full[1:])
    r_trim = _fit(trimmed[1:])  # (warns of its late start, which assumes the rate step 0 had)
    np.testing.assert_allclose(r_full.theta, r_trim.theta, rtol=1e-9, atol=1e-12)
    # the planted alpha, within what noise 0.01 on one run allows (the fit taking the row in gave 0.05)
    assert abs(r_full.params["alpha"] - THETA[2]) < 0.05
    p_full, p_trim = predict(r_full, full[1]), predict(r_full, trimmed[1])
    assert np.isnan(p_full[0]) and np.all(np.isfinite(p_full[1:]))
    np.testing.assert_allclose(p_full[1:], p_trim, rtol=1e-12)
    s_full = score(full[1], p_full, smooth_steps=200)
    s_trim = score(trimmed[1], p_trim, smooth_steps=200)
    for k in ("rmse", "mae", "max_abs_err", "final_loss_err", "target_bias_rmse", "rmse_raw"):
        assert s_full[k] == pytest.approx(s_trim[k], rel=1e-9), k
    assert s_full["n_points"] == full[1].step.size - 1
    # the held-out cosine is predicted everywhere but at its initial loss, and the planted truth is
    # inside the fit's band (delta method, predict_sd): at seeds 1, 3, 5, 7 its largest |z| over the
    # rows was 0.6-2.8; 4 leaves room for rows correlated along the curve (the fit taking the
    # initial loss in missed by 0.35 in RMSE, hundreds of such standard deviations)
    p_cos = predict(r_full, full[0])
    assert np.isnan(p_cos[0]) and np.all(np.isfinite(p_cos[1:]))
    sd, _ = predict_sd(r_full, full[0], model=False)
    assert np.isnan(sd[0])
    assert np.max(np.abs(p_cos[1:] - clean_cos) / sd[1:]) < 4
    # a paired comparison of two predictions skips the row as the scores do
    cmp = compare_predictions(full[1], p_full, p_full + 0.001, smooth_steps=200)
    assert np.isfinite(cmp["rmse_diff"]) and cmp["rmse_diff"] < 0


def test_predict_at_chosen_rows_gives_nan_at_the_initial_loss_however_the_rows_are_given():
    """rows as a boolean mask or with negative indices were compared with untrained_rows as they
    were: a full mask left row 0 (the initial loss) predicted, and row -1 (the last) came out NaN."""
    cos, _ = _planted(schedules.cosine(2001, 1e-3), "cos", 3)
    c = _with_initial_row(cos, 1e-3)
    r = _fit([c])
    every = predict(r, c)
    assert np.isnan(every[0])
    mask = np.ones(c.step.size, dtype=bool)
    np.testing.assert_array_equal(predict(r, c, rows=mask), every)
    np.testing.assert_array_equal(predict(r, c, rows=np.array([0, 5, -1])), every[[0, 5, -1]])


def test_moving_averages_leave_the_initial_loss_out_of_every_other_window():
    step = np.arange(0, 401, 10)
    loss = np.r_[INITIAL, np.full(step.size - 1, 3.0)]
    c = LossCurve(step, np.full(step.size, 1e-3), loss, name="flat")
    sm = c.smoothed(100)
    assert sm[0] == INITIAL  # the row itself keeps its value
    np.testing.assert_array_equal(sm[1:], 3.0)  # with the row in the windows, sm[1..5] were up to 4.2
    lo, hi = c.window_rows(100)
    assert lo[0] == 0 and hi[0] == 1 and lo[1:].min() == 1


def test_a_warmup_from_zero_is_untrained_until_its_first_positive_rate():
    """A warmup that starts at 0 (logged per step): rows before the first positive rate has acted."""
    lr = np.r_[0.0, 0.0, 0.0, np.linspace(1e-4, 1e-3, 40), np.full(60, 1e-3)]
    step = np.arange(lr.size)
    c = LossCurve(step, lr, 3.0 + np.zeros(lr.size), name="warm")
    # steps 0-3 have area 0: rates at steps 0, 1, 2 are 0, and the first positive rate acts at step 3
    assert c.untrained_rows() == 4
    # the note (the fit's warning and fit-delay's line) names what a skip does not leave out already
    assert "rows 0-3 (steps 0-3)" in c.initial_loss_note()
    assert "rows 2-3 (steps 2-3)" in c.initial_loss_note(2) and "row 3 (step 3)" in c.initial_loss_note(3)
    assert c.initial_loss_note(4) is None
    # a log whose rate is 0 before every row has nothing trained to score: refused, naming the column
    with pytest.raises(InvalidArgumentError, match="every row .* before any update.*check the lr column"):
        score(LossCurve(np.arange(30), np.r_[np.zeros(29), 1e-3], np.full(30, 3.0), name="z"), np.full(30, 3.0))


def test_fit_delay_says_so_and_writes_no_prediction_at_the_initial_loss(tmp_path):
    paths = []
    for name, lr, seed in (("cos", schedules.cosine(4001, 1e-3), 1), ("wsd", schedules.wsd(4001, 1e-3, fraction=0.2), 2)):
        c = _with_initial_row(_planted(lr, name, seed)[0], 1e-3)
        p = tmp_path / f"{name}.csv"
        pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss}).to_csv(p, index=False)
        paths.append(p)
    out, preds = tmp_path / "r.json", tmp_path / "preds"
    res = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(paths[0]), "--predict",
                          str(paths[1]), "--kernel", "exp", "--json", str(out), "--predictions", str(preds)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("the initial loss") == 2  # once per file, not once per law and part
    doc = json.loads(out.read_text())
    assert sum("initial loss" in w for w in doc["warnings"]) == 2
    assert abs(doc["params"]["alpha"] - THETA[2]) < 0.05
    csv = pd.read_csv(preds / "wsd.csv")
    assert np.isnan(csv["predicted"].iloc[0]) and np.isnan(csv["predicted_sd"].iloc[0])
    assert csv["predicted"].iloc[1:].notna().all()
