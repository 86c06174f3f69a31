"""``experiments/loss_autocorrelation.py``: the autocorrelation of a loss curve's residuals about
its trend, on curves whose correlated part is planted."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import strict_json

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "loss_autocorrelation.py"
sys.path.insert(0, str(ROOT / "experiments"))

from loss_autocorrelation import residual_autocorrelation  # noqa: E402

from sde_scales.fitting.curves import LossCurve  # noqa: E402

LAGS = (10, 20, 50, 100, 200, 400)


def _curve(seed: int, ou_sd: float, tau: float = 100.0, every: int = 10, steps: int = 40_000):
    """A falling trend, white noise of sd 0.03 per logged point and an Ornstein-Uhlenbeck part of
    sd ``ou_sd`` and time scale ``tau`` steps (exact AR(1) at the logging interval)."""
    rng = np.random.default_rng(seed)
    step = np.arange(every, steps + 1, every)
    phi = np.exp(-every / tau)
    ou = np.empty(step.size)
    ou[0] = rng.normal(0, ou_sd)
    shocks = rng.normal(0, ou_sd * np.sqrt(1 - phi**2), step.size)
    for i in range(1, step.size):
        ou[i] = phi * ou[i - 1] + shocks[i]
    loss = 3 + 2 * (1 + step / 1000) ** -0.5 + rng.normal(0, 0.03, step.size) + ou
    return LossCurve(step, np.full(step.size, 1e-3), loss, name="planted")


def test_a_planted_correlated_part_is_found_at_its_share_and_white_noise_is_not():
    """Equal variances (share s = 0.5) of white noise and an OU part of tau = 100 steps. The
    detrending subtracts each point's centred mean over the window (W = 2,000 steps), which for
    W >> tau takes from the OU part's covariance at lag L about its variance times
    2 tau / W (1 + L / W): the expected autocorrelation is s (exp(-L / tau) - 2 tau / W (1 + L / W)),
    0.131 at 100 steps and -0.051 at 400. Allowed: three standard errors of the sampling plus 0.02
    for the next-order terms of that model. White noise alone: every lag within 4 standard errors
    (six lags: a family-wise false alarm of about 4e-4)."""
    m = residual_autocorrelation(_curve(0, ou_sd=0.03), window=2000, start=0.25, lags=LAGS)
    se = m["se"]
    assert m["n_residuals"] > 2500 and se == pytest.approx(1 / np.sqrt(m["n_residuals"]))
    for lag, a in zip(LAGS, m["acf"]):
        expected = 0.5 * (np.exp(-lag / 100) - 2 * 100 / 2000 * (1 + lag / 2000))
        assert abs(a - expected) < 3 * se + 0.02, (lag, a, expected)
    assert {10, 20, 50, 100} <= set(m["resolved"])
    w = residual_autocorrelation(_curve(1, ou_sd=0.0), window=2000, start=0.25, lags=LAGS)
    assert all(abs(a) < 4 * w["se"] for a in w["acf"]), w["acf"]


def test_uneven_logs_and_lags_off_the_logging_grid_are_refused():
    c = _curve(2, ou_sd=0.01)
    keep = np.arange(c.step.size) != 10
    uneven = LossCurve(c.step[keep], c.lr[keep], c.loss[keep], name="uneven")
    with pytest.raises(ValueError, match="not evenly logged"):
        residual_autocorrelation(uneven, window=2000, start=0.25, lags=LAGS)
    with pytest.raises(ValueError, match=r"lags \[15\] are not whole multiples of the logging interval 10"):
        residual_autocorrelation(c, window=2000, start=0.25, lags=(15, 100))


def test_the_script_writes_strict_json_and_refuses_bad_lags(tmp_path):
    c = _curve(3, ou_sd=0.03)
    f = tmp_path / "const.csv"
    pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss}).to_csv(f, index=False)
    r = subprocess.run([sys.executable, str(SCRIPT), "--curve", str(f), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = strict_json((tmp_path / "o" / "loss_autocorrelation.json").read_text())
    [row] = doc["rows"]
    assert row["lags"] == [10, 20, 50, 100, 200, 400] and 100 in row["resolved"]  # the default: logging intervals
    bad = subprocess.run([sys.executable, str(SCRIPT), "--curve", str(f), "--lags", "15", "--out", str(tmp_path / "b")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not whole multiples" in bad.stderr and not (tmp_path / "b").exists()
