"""Width ladders for the scaling collapse: the regression task, the squared-error loss, frozen
learning rates, the ladder's run configurations, and (slow) the experiment end to end."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import strict_json

torch = pytest.importorskip("torch")

from sde_scales.errors import InvalidArgumentError  # noqa: E402
from sde_scales.parametrization import mup  # noqa: E402
from sde_scales.train import RunConfig, make_dataset, train_stack  # noqa: E402
from sde_scales.train.data import powerlaw_features  # noqa: E402
from sde_scales.train.ladder import LadderSpec, frontier_configs, horizon_configs, run_ladder  # noqa: E402
from sde_scales.train.model import StackedMLP  # noqa: E402

ROOT = Path(__file__).parents[1]


def test_powerlaw_task_has_unit_variance_and_a_constant_coordinate():
    n = 200_000
    x, y, xt, yt = powerlaw_features(n_train=n, n_test=10, d_in=16, seed=3)
    assert x.shape == (n, 16) and y.shape == (n,) and y.dtype == np.float32
    assert np.all(x[:, -1] == 1.0)
    # Var y = sum a_k^2 Var h = 1 exactly (orthonormal features); the sample variance's standard
    # error is sqrt((E y^4 - 1) / n): five of them is the tolerance
    se = math.sqrt(max(np.mean(y.astype(float) ** 4) - 1, 0) / n)
    assert abs(float(np.var(y.astype(float))) - 1) < 5 * se
    assert abs(float(np.mean(y))) < 5 / math.sqrt(n)
    with pytest.raises(InvalidArgumentError, match="n_features"):
        powerlaw_features(n_train=10, d_in=4, n_features=4)
    with pytest.raises(InvalidArgumentError, match="alpha"):
        powerlaw_features(n_train=10, d_in=4, alpha=0.5)


def test_squared_error_and_its_gradient_match_autograd():
    out = torch.randn(3, 5, 1, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, dtype=torch.float64)
    loss, grad = StackedMLP.mse_losses(out.detach().clone(), y)
    ref = ((out - y.view(1, 5, 1)) ** 2).mean(dim=(1, 2))
    ref.sum().backward()
    np.testing.assert_allclose(loss.numpy(), ref.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad.numpy(), out.grad.numpy(), rtol=1e-12)


def test_regression_runs_log_a_falling_squared_error():
    data = make_dataset("powerlaw", n_train=2048, d_in=16)
    assert data.task == "regression" and data.n_classes == 1
    o = train_stack([RunConfig(width=32, lr=0.03, seed=0, dataset="powerlaw", d_in=16, n_train=2048, batch_size=64,
                               epochs=4, log_every=32, eval_every=1)], data)[0]
    df = o.frame()
    ev = df[df.metric == "eval_loss"].value.to_numpy()
    assert o.status == "finished" and ev[-1] < 0.8 * ev[0]
    assert "test_acc" not in set(df.metric) and np.isfinite(df[df.metric == "test_loss"].value).all()


def test_frozen_learning_rates_follow_the_multiplier_free_form():
    """muP (SGD) without multipliers has learning rates n, 1, 1/n: frozen at n0, a width-n network's
    layers step (n/n0)^-1, 1 and (n/n0) times their muP size."""
    n, n0 = 64, 8
    m = StackedMLP(mup(2), 1, 16, n, 1, [0], lr_width=n0)
    assert m.lr_scale == pytest.approx([n0 / n, 1.0, n / n0])
    assert StackedMLP(mup(2), 1, 16, n0, 1, [0], lr_width=n0).lr_scale == pytest.approx([1.0, 1.0, 1.0])
    # at its own width a frozen run is the muP run, number for number; at another width it differs
    data = make_dataset("powerlaw", n_train=512, d_in=16)
    kw = dict(lr=0.03, seed=1, dataset="powerlaw", d_in=16, n_train=512, batch_size=64, epochs=1, log_every=4)
    a = train_stack([RunConfig(width=16, **kw)], data)[0].frame()
    b = train_stack([RunConfig(width=16, lr_width=16, **kw)], data)[0].frame()
    c = train_stack([RunConfig(width=16, lr_width=4, **kw)], data)[0].frame()
    np.testing.assert_array_equal(a.value.to_numpy(), b.value.to_numpy())
    assert not np.allclose(a.value.to_numpy(), c.value.to_numpy())
    with pytest.raises(InvalidArgumentError, match="lr_width"):
        RunConfig(lr_width=-1)


def test_ladder_configs():
    spec = LadderSpec(widths=(4, 8, 16), seeds=3, frontier_steps=800, log_points=16)
    fc = frontier_configs(spec)
    assert len(fc) == 9 and {c.schedule for c in fc} == {"constant"} and {c.n_steps() for c in fc} == {800}
    steps = {4: 100, 8: 230, 16: 517}
    hc = horizon_configs(spec, steps, "linear")
    assert {(c.width, c.n_steps()) for c in hc} == set(steps.items())
    assert {c.schedule for c in hc} == {"wsd"} and dict(hc[0].schedule_kw) == {"fraction": 1.0, "decay": "linear"}
    assert {c.lr_width for c in horizon_configs(spec, steps, "linear", "frozen")} == {4}
    assert {c.param for c in horizon_configs(spec, steps, "linear", "sp")} == {"sp"}
    for bad in (dict(widths=(8, 4, 16)), dict(widths=(4, 8)), dict(schedules=("exp",)), dict(controls=("ntk",)),
                dict(frontier_steps=10)):
        with pytest.raises(InvalidArgumentError):
            LadderSpec(**bad)
    # a width of 8.5 was trained as width 8 (int() in the configs) and a seed count of 2.5 was a
    # TypeError in range(); whole floats are read as the whole numbers they are
    for bad, name in ((dict(widths=(4.5, 8, 16)), "widths"), (dict(widths=(0, 8, 16)), "widths"),
                      (dict(seeds=2.5), "seeds=2.5"), (dict(log_points=16.5), "log_points=16.5")):
        with pytest.raises(InvalidArgumentError, match=name):
            LadderSpec(**bad)
    assert LadderSpec(widths=(4.0, 8, 16), seeds=3.0).widths == (4, 8, 16)


def test_ladder_too_short_to_show_horizons_is_refused_clearly(tmp_path):
    spec = LadderSpec(widths=(4, 8, 16), seeds=2, frontier_steps=256, log_points=16, n_train=4096)
    with pytest.raises(InvalidArgumentError, match="horizon"):
        run_ladder(spec, str(tmp_path / "store"), progress=False, n_boot=20)
    assert len(list((tmp_path / "store" / "runs").glob("*.parquet"))) == 6  # the runs are kept for a resume


@pytest.mark.slow
def test_collapse_experiment_quick_end_to_end(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "collapse.py"), "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    d = strict_json((tmp_path / "collapse.json").read_text())
    assert set(d["ladders"]) == {"mup/constant", "mup/cosine", "mup/linear", "frozen/linear", "sp/linear"}
    for e in d["ladders"].values():
        assert e["result"]["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE")
        lo, hi = e["result"]["ratio_ci"]
        assert lo <= e["result"]["ratio_max"] * 1.5 and hi >= lo
    assert d["frontier"]["ci"]["L0"][0] <= d["frontier"]["L0"] <= d["frontier"]["ci"]["L0"][1]
    for f in ("collapse_frontier.png", "collapse_curves.png", "collapse_delta_sigma.png"):
        assert (tmp_path / f).stat().st_size > 10_000
    assert "gamma" in r.stdout and "L0" in r.stdout and "frozen/linear" in r.stdout
