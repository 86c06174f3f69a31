"""Loss spikes: logged losses far from their neighbours are named, and nothing else is.

The check (:meth:`LossCurve.spikes`) is model-free, so the tests plant curves of every shape a
schedule gives (step decays, warm restarts, cosine, constant, logged at every step and sparsely)
without noise, where no point is a spike, and noisy curves with spikes at known rows.
"""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from sde_scales import schedules
from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting.curves import SPIKE_Z, LossCurve, LossSpikeWarning, planted_curve
from sde_scales.fitting.fit import fit
from sde_scales.fitting.laws import KernelLaw, MomentumLaw, MultiPowerLaw


def _noisy(n=2000, noise=0.05, seed=0):
    t = np.arange(10, 10 * (n + 1), 10)
    rng = np.random.default_rng(seed)
    y = 2.0 + 3.0 * (t / 10.0) ** -0.3 + noise * rng.standard_normal(t.size)
    return t, y


def test_a_spike_is_named_by_row_and_step():
    t, y = _noisy()
    assert LossCurve(t, np.full(t.size, 1e-3), y, name="clean").spikes() is None
    y = y.copy()
    y[1234] += 20 * 0.05  # 20 noise levels: 2.5x the threshold
    note = LossCurve(t, np.full(t.size, 1e-3), y, name="spiked", source="run.csv").spikes()
    assert note is not None
    assert "row 1234, step 12350" in note and "1 logged loss" in note and "run.csv" in note


def test_a_spike_below_the_threshold_and_one_before_from_step_are_not_named():
    t, y = _noisy()
    y = y.copy()
    y[500] += 0.5 * SPIKE_Z * 0.05  # half the threshold: within what heavy-tailed noise gives
    y[50] += 40 * 0.05              # a real spike, but before the fitted points begin
    c = LossCurve(t, np.full(t.size, 1e-3), y, name="c")
    assert c.spikes(from_step=int(t[100])) is None
    assert "row 50," in c.spikes(from_step=0)


def test_gaussian_noise_of_a_long_log_is_not_a_spike():
    # 200,000 points of Gaussian noise: a threshold of 4 noise levels would flag about 13 of them
    # (2 x 3.2e-5 x 2e5); at SPIKE_Z (8) the chance of one is 2e-10
    rng = np.random.default_rng(7)
    t = np.arange(1, 200_001)
    y = 3.0 + 0.1 * rng.standard_normal(t.size)
    assert LossCurve(t, np.full(t.size, 1e-3), y, name="g").spikes() is None


@pytest.mark.parametrize("law", [KernelLaw(kernel="exp"), MomentumLaw(), MultiPowerLaw()], ids=lambda x: x.label)
def test_noise_free_curves_of_every_schedule_shape_have_no_spike(law):
    # the kinks of step decays and warm restarts are where a per-point spread (each point's
    # distance from its own median, zero along any monotone stretch) called 8-11 "noise levels"
    # of a noise-free curve spikes; the window's own spread does not
    n = 20_000
    restart = np.concatenate([schedules.cosine(n // 4, 1e-3, warmup_steps=100)] * 4)
    shapes = {"step": schedules.step(n, 1e-3, [n // 2, 3 * n // 4], 0.1, warmup_steps=200),
              "step, no warmup": schedules.step(n, 1e-3, [n // 3], 0.01),
              "restarts": restart, "cosine": schedules.cosine(n, 1e-3, warmup_steps=200),
              "wsd": schedules.wsd(n, 1e-3, 0.2, warmup_steps=200)}
    theta = law.starts()[0]
    for name, lr in shapes.items():
        for every in (1, 10, 50):
            curve, _ = planted_curve(law, theta, lr, name, log_every=every)
            assert curve.spikes() is None, (name, every)


def test_the_steep_start_of_a_run_is_not_a_spike_and_spikes_at_the_ends_are():
    """Logged every 50 steps from step 0 through a warmup, the loss falls 6 in its first 50 steps.
    The windows of the first rows were completed by mirroring, which folded that fall back onto
    itself: row 1 stood 14 noise levels above such a median and was named a spike (a user would
    have dropped a good row with --drop-spikes). Spikes planted in each of the first and last three
    rows of a noisy curve are still named, as are those of the interior."""
    rng = np.random.default_rng(0)
    for every, seed in ((50, 0), (100, 1), (20, 2)):
        s = np.arange(0, 20_000, every)
        lr = np.minimum(1.0, (s + 1) / 700) * 6e-4
        y = 2 + 3 * (1 + s / 50) ** -0.5 + 9 * np.exp(-s / 60) + 0.05 * np.random.default_rng(seed).standard_normal(s.size)
        c = LossCurve(s, lr, y, name="warm")
        assert c.untrained_rows() == 1  # row 0 is the initial loss, which the fits leave out
        assert c.spikes(from_step=int(s[1])) is None, every
    t = np.arange(10, 5010, 10)
    y0 = 2 + (1 + t / 5000) ** -0.5 + 0.01 * rng.standard_normal(t.size)
    for row in (0, 1, 2, 250, -3, -2, -1):
        y = y0.copy()
        y[row] += 0.5  # 50 noise levels
        found = LossCurve(t, np.full(t.size, 1e-3), y, name="s").spike_rows()
        assert found.tolist() == [row % t.size], (row, found)
    s = np.arange(0, 5000, 10)
    y = 3 - 3e-4 * s + 0.01 * rng.standard_normal(s.size)  # a trend of 0.06 across a window
    for row in (0, 1, -2, -1):
        spiked = y.copy()
        spiked[row] += 0.5
        assert LossCurve(s, np.full(s.size, 1e-3), spiked, name="t").spike_rows().tolist() == [row % s.size]


def test_rounded_logs_are_not_spikes_and_a_jump_on_a_flat_log_is():
    t = np.arange(10, 200_000, 10)
    smooth = 2.0 + 3.0 * (t / 10.0) ** -0.3
    for digits in (2, 3):  # long runs of equal values: the window's spread is 0 there
        assert LossCurve(t, np.full(t.size, 1e-3), np.round(smooth, digits), name="r").spikes() is None
    flat = np.round(smooth, 2)
    flat[9000] += 0.5
    assert "row 9000," in LossCurve(t, np.full(t.size, 1e-3), flat, name="r").spikes()


def test_a_fit_warns_of_the_spike_and_still_fits():
    lr = schedules.cosine(20_000, 1e-3, warmup_steps=200)
    law = KernelLaw(kernel="exp")
    curve, _ = planted_curve(law, law.starts()[0], lr, "cos", noise=0.02, log_every=20)
    y = curve.loss.copy()
    y[600] = 10 * y[600]
    spiked = LossCurve(curve.step, curve.lr, y, name="cos")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(law, [spiked], skip_steps=200)
    spikes = [w for w in caught if issubclass(w.category, LossSpikeWarning)]
    assert spikes and "row 600," in str(spikes[0].message)
    assert np.all(np.isfinite(res.theta))


def _fit_delay_on_a_spiked_cosine(tmp_path, *extra):
    """fit-delay (momentum law, skip 100 steps) on a planted cosine with a spike of +5 at row 400
    (step 4010): (completed process, JSON document)."""
    lr = schedules.cosine(10_000, 1e-3, warmup_steps=100)
    law = MomentumLaw()
    curve, _ = planted_curve(law, law.starts()[0], lr, "cos", noise=0.02, log_every=10)
    y = curve.loss.copy()
    y[400] += 5.0
    path = tmp_path / "cos.csv"
    np.savetxt(path, np.column_stack([curve.step, curve.lr, y]), delimiter=",", header="step,lr,loss", comments="")
    out = tmp_path / "fit.json"
    run = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(path), "--law", "momentum",
                          "--skip-steps", "100", "--json", str(out), *extra], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run, json.loads(out.read_text())


def test_fit_delay_reports_the_spike_in_its_output_and_json(tmp_path):
    run, doc = _fit_delay_on_a_spiked_cosine(tmp_path)
    assert "row 400, step 4010" in run.stdout
    assert any("row 400, step 4010" in w for w in doc["warnings"])


def test_without_spikes_drops_the_rows_and_keeps_every_steps_learning_rate():
    lr = schedules.step(20_000, 1e-3, [10_000], 0.1, warmup_steps=200)
    law = MomentumLaw()
    curve, _ = planted_curve(law, law.starts()[0], lr, "step", noise=0.02, log_every=20)
    y = curve.loss.copy()
    y[[300, 700]] += 3.0
    spiked = LossCurve(curve.step, curve.lr, y, name="step")
    clean = spiked.without_spikes()
    assert list(spiked.spike_rows()) == [300, 700]
    assert clean.step.size == spiked.step.size - 2 and not np.isin(spiked.step[[300, 700]], clean.step).any()
    assert clean.spikes() is None
    # the rate at every step as the spiked curve read it, from its first logged step on (what came
    # before is still assumed, and still said)
    s0 = int(spiked.step[0])
    np.testing.assert_array_equal(clean.per_step_lr()[s0:], spiked.per_step_lr()[s0:])
    assert clean.known_from == spiked.known_from
    assert spiked.without_spikes(from_step=int(spiked.step[800])) is spiked  # both before the fitted points
    short = LossCurve(curve.step[:20], curve.lr[:20], np.r_[y[:19], 50.0], name="short")  # a spike in the last row
    assert list(short.spike_rows()) == [19]  # judged against its neighbours (the window is mirrored at the end)
    with pytest.raises(InvalidArgumentError, match="would leave 19 points"):
        short.without_spikes()


def test_fit_delay_drop_spikes_leaves_them_out_and_says_which(tmp_path):
    run, doc = _fit_delay_on_a_spiked_cosine(tmp_path, "--drop-spikes")
    assert "cos: dropped 1 spike row(s) (--drop-spikes), at step(s) 4010" in run.stdout
    assert "noise levels from the median" not in run.stdout  # the curve fitted has no spike left to warn of
    assert doc["dropped_spikes"] == {"cos": [4010]}
