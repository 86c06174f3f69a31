"""Losses that rise while the learning rate does not: a diverged run is refused, a rise is warned.

No law of :mod:`sde_scales.fitting.laws` has a loss that rises at a falling or constant rate, so a
log that does (a run that diverged, an unstable stretch) is a log the laws cannot follow. The check
(:meth:`LossCurve.loss_rise`) is model-free; the tests plant rises of known size at known steps,
and the curves that must pass it: every law's curves on every schedule shape (warm restarts,
whose loss keeps rising after the rate has peaked), slow noise (a moving average logged as the
loss) and the shared logs.
"""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter

from sde_scales import schedules
from sde_scales.errors import DataFileError
from sde_scales.fitting.curves import LossCurve, LossRiseWarning, load_curve, planted_curve
from sde_scales.fitting.fit import fit
from sde_scales.fitting.laws import KernelLaw, MomentumLaw, MultiPowerLaw

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "loss_curves"


def _healthy(n=600, every=10, noise=0.05, seed=0):
    """A falling loss at a constant rate after a 200-step warmup, logged every ``every`` steps."""
    t = np.arange(every, every * (n + 1), every)
    lr = 1e-3 * np.minimum(t / 200.0, 1.0)
    y = 2.0 + 3.0 * (t / 10.0) ** -0.3 + noise * np.random.default_rng(seed).standard_normal(t.size)
    return t, lr, y


def _write(path, t, lr, y):
    with open(path, "w") as f:
        f.write("step,lr,loss\n")
        for a, b, c in zip(t, lr, y):
            f.write(f"{a},{b:.8g},{c:.8g}\n")


def test_a_run_that_diverges_is_refused_with_where_its_loss_was_lowest():
    t, lr, y = _healthy()
    y = y.copy()
    y[450:] = 1e6  # the last 150 rows: a finite blow-up, as a run whose loss overflows in a log
    c = LossCurve(t, lr, y, name="run", source="run.csv")
    r = c.loss_rise()
    assert r is not None and r.diverged and r.row == t.size - 1
    assert 300 <= r.low_row < 450  # before the blow-up, where the flat tail's median happens to be lowest
    msg = c.divergence()
    assert "run.csv" in msg and "diverged" in msg and f"step {int(t[r.low_row])}" in msg
    assert c.rise_note() is None  # named once, as the divergence
    with pytest.raises(DataFileError, match="diverged"):
        fit(KernelLaw(kernel="exp"), [c])
    # the fix the message names works: the rows up to the lowest point fit without a word of it
    head = c.head(int(t[r.low_row]) + 1)
    assert head.loss_rise() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", LossRiseWarning)
        fit(KernelLaw(kernel="exp"), [head])


def test_a_run_that_diverges_as_its_rate_warms_up_is_refused():
    # the rate rises over the first 1,000 steps and the loss with it, from step 400 on: the
    # warmup's rise is held at its top, so the rise is judged (a rule that skipped every stretch
    # where the rate had risen since the loss's low would never judge it)
    t = np.arange(10, 3010, 10)
    lr = 1e-3 * np.minimum(t / 1000.0, 1.0)
    y = np.where(t < 400, 10.0 - 5.0 * t / 400.0, np.minimum(5.0 + 15.0 * (t - 400) / 600.0, 20.0))
    y = y + 0.05 * np.random.default_rng(1).standard_normal(t.size)
    c = LossCurve(t, lr, y, name="warm")
    r = c.loss_rise()
    assert r is not None and r.diverged
    assert abs(int(t[r.low_row]) - 400) <= 100  # within half a window of the turn


def test_an_unstable_stretch_that_recovers_is_warned_and_fitted():
    t, lr, y = _healthy(n=3000)
    bump = np.zeros(t.size)
    bump[1500:1600] = np.linspace(0.0, 1.0, 100)  # 20 noise levels of a point, about 40 of the median's
    bump[1600:1700] = np.linspace(1.0, 0.0, 100)
    c = LossCurve(t, lr, y + bump, name="bumpy")
    r = c.loss_rise()
    assert r is not None and not r.diverged
    assert r.low_row <= 1510 and 1590 <= r.row <= 1610  # the low: wherever the flat base's median is lowest
    with pytest.warns(LossRiseWarning, match=r"bumpy: the loss rises from .* at step \d+ to .* at step 1[56]\d\d0"):
        fit(KernelLaw(kernel="exp"), [c])
    # a rise of a tenth of that, about 5 times its median's noise, is not named
    small = LossCurve(t, lr, y + 0.1 * bump, name="small")
    assert small.loss_rise() is None


@pytest.mark.parametrize("law", [KernelLaw(kernel="exp"), KernelLaw(kernel="power"), MomentumLaw(), MultiPowerLaw()],
                         ids=lambda x: x.label)
def test_curves_of_every_law_and_schedule_shape_do_not_rise(law):
    # warm restarts raise the loss, and the laws' response keeps it rising after the rate has
    # peaked and begun to fall: that rise is the restart's, so it is not judged
    n = 20_000
    restarts = np.concatenate([schedules.cosine(n // 4, 1e-3, warmup_steps=100)] * 4)
    restart = np.concatenate([schedules.cosine(n // 2, 1e-3, warmup_steps=100)] * 2)
    shapes = {"step": schedules.step(n, 1e-3, [n // 2, 3 * n // 4], 0.1, warmup_steps=200),
              "restarts": restarts, "one restart": restart, "cosine": schedules.cosine(n, 1e-3, warmup_steps=200),
              "wsd": schedules.wsd(n, 1e-3, 0.2, warmup_steps=200)}
    theta = law.starts()[0]
    for name, lr in shapes.items():
        for every, noise in ((10, 0.0), (10, 0.005), (10, 0.02), (50, 0.02)):
            curve, clean = planted_curve(law, theta, lr, name, log_every=every, noise=noise, seed=3)
            assert curve.loss_rise() is None, (name, every, noise)
            if name == "one restart":  # the rise is there, 0.28-0.38 (about 190 times the noise of a
                # median at noise 0.005): the rule leaves it out on purpose
                assert np.max(clean - np.minimum.accumulate(clean)) > 0.25


def test_slow_noise_is_not_a_rise():
    # an exponential moving average of the loss logged as the loss (beta 0.999: a correlation of
    # 1,000 steps), and batch noise correlated over 100 steps, on a long per-step log. Measured
    # one window apart, the median of such a log scatters 20-50 times less than it wanders over
    # the log, and the largest "rise" came out 17-40 of that noise; the lags up to an eighth of the
    # log see the wander
    T = 300_000
    rng = np.random.default_rng(11)
    s = np.arange(1, T + 1)
    base = 3.0 + 2.0 * (s / T * 3.0 + 0.05) ** -0.5
    white = 0.1 * rng.standard_normal(T)
    lr = np.full(T, 1e-3)
    for b in (0.99, 0.999):
        y = lfilter([1.0 - b], [1.0, -b], base + white, zi=[b * (base[0] + white[0])])[0]
        assert LossCurve(s, lr, y, name=f"ema{b}").loss_rise() is None, b
    ar = lfilter([1.0], [1.0, -0.99], 0.01 * rng.standard_normal(T))
    assert LossCurve(s, lr, base + ar, name="ar").loss_rise() is None


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/loss_curves")
def test_no_shared_log_rises():
    files = sorted(p for p in SHARED.glob("*.csv") if p.name != "manifest.csv")
    assert len(files) >= 20
    for p in files:
        assert load_curve(p).loss_rise() is None, p.name


def test_fit_delay_refuses_a_diverged_log_and_keeps_the_json_it_wrote(tmp_path):
    t, lr, y = _healthy()
    good = tmp_path / "good.csv"
    _write(good, t, lr, y)
    y_div = y.copy()
    y_div[450:] = 50.0 + np.arange(150)  # rises above where the log began (about 3.9) and stays
    bad = tmp_path / "bad.csv"
    _write(bad, t, lr, y_div)
    bump = np.zeros(t.size)
    bump[300:400] = np.linspace(0.0, 2.0, 100)  # on 600 rows: about 30 times its median's noise
    bump[400:500] = np.linspace(2.0, 0.0, 100)
    bumpy = tmp_path / "bumpy.csv"
    _write(bumpy, t, lr, y + bump)
    out = tmp_path / "fit.json"
    cmd = [sys.executable, "-m", "sde_scales.cli", "fit-delay", "--kernel", "exp", "--json", str(out)]
    ok = subprocess.run(cmd + ["--fit", str(bumpy), "--predict", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(out.read_text())
    assert any("bumpy: the loss rises from" in w for w in doc["warnings"])
    before = out.read_bytes()
    for args in (["--fit", str(bad), "--predict", str(good)], ["--fit", str(good), "--predict", str(bad)]):
        r = subprocess.run(cmd + args, capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert "bad.csv" in r.stderr and "the run diverged" in r.stderr and "Traceback" not in r.stderr
        assert out.read_bytes() == before
