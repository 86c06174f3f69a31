"""Training evidence: per-seed minibatch order in a stack, the step-0 snapshot, divergence, and the
analyses that turn a run store into per-width samples (sde_scales.analysis.width)."""

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from sde_scales.analysis.width import (  # noqa: E402
    eta_star_log,
    optimum_shift,
    optimum_shift_samples,
    progress_to_plateau,
    width_samples,
)
from sde_scales.atomic import strict_json, write_json_atomic  # noqa: E402
from sde_scales.errors import InvalidArgumentError  # noqa: E402
from sde_scales.parametrization import mup  # noqa: E402
from sde_scales.rates import statistic_exponent  # noqa: E402
from sde_scales.train import RunConfig, make_dataset, train_stack  # noqa: E402
from sde_scales.train.store import RunStore  # noqa: E402
from sde_scales.train.sweep import plan, run_sweep  # noqa: E402
from sde_scales.train.trainer import DIVERGENCE_FACTOR, config_grid  # noqa: E402

TINY = dict(n_train=256, d_in=16, epochs=1, batch_size=32, log_every=2, data_order="seed")


@pytest.fixture(scope="module")
def data():
    return make_dataset("synthetic", n_train=256, d_in=16)


def _values(outcome, metric):
    r = outcome.rows
    return np.array([v for m, v in zip(r["metric"], r["value"]) if m == metric])


def test_per_seed_order_does_not_depend_on_the_stack(data):
    """With data_order='seed' a run draws its batches from its own seed: alone or in a stack of
    other seeds, its losses agree to float32 tolerance (batched and single GEMMs may sum in a
    different order, about 1e-6 relative); two seeds see different batches."""
    cfgs = [RunConfig(width=32, lr=0.3, seed=s, **TINY) for s in (1, 2, 3)]
    stacked = train_stack(cfgs, data)
    alone = train_stack([cfgs[1]], data)[0]
    np.testing.assert_allclose(_values(stacked[1], "train_loss"), _values(alone, "train_loss"), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(_values(stacked[1], "w"), _values(alone, "w"), rtol=1e-4, atol=1e-6)
    # the same initialisation but another data order changes the minibatch losses
    shared = train_stack([RunConfig(width=32, lr=0.3, seed=2, **dict(TINY, data_order="shared"))], data)[0]
    assert not np.allclose(_values(shared, "train_loss"), _values(alone, "train_loss"))


def test_sweep_stacks_seeds_with_their_own_order():
    cfgs = config_grid(["mup"], [32, 64], [0.1], range(5), **TINY)
    stacks = plan(cfgs)
    assert len(stacks) == 2 and all(len(s.configs) == 5 for s in stacks)
    shared = config_grid(["mup"], [32], [0.1, 0.2], range(3), **dict(TINY, data_order="shared"))
    assert len(plan(shared)) == 3  # one stack per seed, holding its learning rates


def test_run_id_of_older_stores_is_kept():
    """A field added later does not change the ids of runs that do not use it."""
    import hashlib
    from dataclasses import asdict

    c = RunConfig(width=32, lr=0.1, seed=0)
    d = asdict(c)
    for later in ("data_order", "lr_width", "base_width", "precision", "compile"):  # the fields added since
        d.pop(later)
    old = hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert c.run_id == old
    assert RunConfig(width=32, lr=0.1, seed=0, data_order="seed").run_id != old
    assert RunConfig(width=32, lr=0.1, seed=0, lr_width=8).run_id != old
    assert RunConfig(width=32, lr=0.1, seed=0, base_width=8).run_id != old
    assert RunConfig(width=32, lr=0.1, seed=0, precision="bf16").run_id != old
    assert RunConfig(width=32, lr=0.1, seed=0, compile=True).run_id != old
    with pytest.raises(InvalidArgumentError, match="data_order"):
        RunConfig(data_order="random")


def test_step_zero_snapshot_is_the_initialisation(data):
    o = train_stack([RunConfig(width=32, lr=0.3, seed=4, **TINY)], data)[0]
    df = o.frame()
    w0 = df[(df.metric == "w") & (df.step == 0)].sort_values("layer")
    from sde_scales.train.model import StackedMLP
    from sde_scales.train.trainer import _micro_indices

    m = StackedMLP(mup(1), 1, 16, 32, 10, [4])
    expect = [float(m.weights[l][0, i, j]) for l in range(2) for i, j in _micro_indices(m.shapes[l], 4, l)]
    np.testing.assert_allclose(w0.value.to_numpy(), expect, rtol=1e-6)
    assert df[(df.metric == "dist2") & (df.step == 0)].value.abs().max() == 0.0
    ev = df[(df.metric == "eval_loss")].sort_values("step")
    assert ev.step.iloc[0] == 0 and ev.value.iloc[0] == pytest.approx(np.log(10), rel=0.05)  # muP starts at ~0 logits
    assert ev.value.iloc[-1] < ev.value.iloc[0]


def test_loss_far_above_its_start_counts_as_diverged(data):
    """A run whose loss passes DIVERGENCE_FACTOR x its initial loss is diverged even while finite."""
    cfgs = [RunConfig(param="mup-no-readout-mult", width=256, lr=lr, seed=0, **TINY) for lr in (0.001, 3.0)]
    out = train_stack(cfgs, data)
    assert out[0].status == "finished"
    assert out[1].status == "diverged" and out[1].diverged_step is not None
    assert DIVERGENCE_FACTOR == 100.0


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    cfgs = config_grid(["mup"], [32, 64, 128], [0.1, 0.3, 1.0], range(4), **dict(TINY, epochs=2))
    run_sweep(cfgs, str(root), device="cpu", progress=False)
    st = RunStore(root)
    return st.runs(), st.trajectories()


def test_width_samples_effective_and_raw_units(store):
    runs, traj = store
    eff = width_samples(runs, traj, "w1_value", param="mup", lr=0.3)
    raw = width_samples(runs, traj, "w1_value_raw", param="mup", lr=0.3)
    assert eff.widths == [32, 64, 128] and eff.samples[0].shape == (4, 4)  # 4 tracked weights x 4 seeds
    for n, e, r in zip(eff.widths, eff.samples, raw.samples):
        np.testing.assert_allclose(e, r * mup(1).multiplier(1, n))  # readout: n^-1/2 times the raw weight
    disp = width_samples(runs, traj, "w0_disp", param="mup", lr=0.3)
    assert disp.samples[0].shape == (4, 4)
    assert all(np.all(np.abs(s) > 0) for s in disp.samples)
    loss = width_samples(runs, traj, "eval_loss", param="mup", lr=0.3, fraction=0.5)
    assert all(s.shape == (4,) for s in loss.samples) and all(st < runs.epochs.max() * 8 for st in loss.steps)
    # the last logged step at or before the fraction of the run, and the values logged there
    for frac in (0.3, 0.5, 1.0):
        ws = width_samples(runs, traj, "eval_loss", param="mup", lr=0.3, fraction=frac)
        for w, stp, smp in zip(ws.widths, ws.steps, ws.samples):
            ids = runs[(runs.width == w) & (runs.lr == 0.3)].sort_values("seed").run_id
            t = traj[traj.run_id.isin(ids) & (traj.metric == "eval_loss") & (traj.layer == -1)]
            logged = np.sort(t.step.unique())
            assert stp == logged[logged <= frac * logged.max()].max()
            at = t[t.step == stp].set_index("run_id").value
            np.testing.assert_allclose(np.sort(smp), np.sort(at.loc[ids].to_numpy()))
    with pytest.raises(InvalidArgumentError, match="choose one with lr"):
        width_samples(runs, traj, "eval_loss", param="mup")
    with pytest.raises(InvalidArgumentError, match="variable"):
        width_samples(runs, traj, "weights", param="mup", lr=0.3)
    with pytest.raises(InvalidArgumentError, match="no runs with param"):
        width_samples(runs, traj, "eval_loss", param="ntk", lr=0.3)


def test_progress_to_plateau_on_a_planted_curve():
    """L(t) = 1 + 2 (1 + t/50)^-1 logged to t = 450: initial 3, plateau 1, final 1.2, so the loss
    has covered 0.9 of its way; the fitted plateau is bounded by [0, min L] and the fraction is
    never above the truth by more than the fit's error."""
    steps = np.arange(0, 451, 30)
    loss = 1 + 2 / (1 + steps / 50)
    runs = pd.DataFrame({"run_id": ["a"], "param": ["mup"], "lr": [0.1], "width": [64], "status": ["finished"]})
    traj = pd.DataFrame({"run_id": "a", "step": steps, "metric": "eval_loss", "layer": -1, "value": loss})
    pr = progress_to_plateau(runs, traj, param="mup")
    assert pr.plateau.iloc[0] == pytest.approx(1.0, abs=0.02)
    assert pr.fraction.iloc[0] == pytest.approx(0.9, abs=0.02)


def test_eta_star_parabola_and_optimum_shift_rate():
    """Planted losses (log eta - log eta*)^2 with eta*(t0) - eta*(T) shrinking like 1/n: the vertex
    recovers each optimum exactly and the shift's exponent is -1."""
    lrs = np.array([0.05, 0.1, 0.2, 0.4, 0.8])
    lx = np.log(lrs)
    widths = [64, 128, 256, 512, 1024]
    rng = np.random.default_rng(0)
    samples = []
    for n in widths:
        shift = 2.0 / n
        t0 = (lx[:, None] - (np.log(0.2) + shift)) ** 2
        tT = (lx[:, None] - np.log(0.2)) ** 2
        base = np.stack([t0, tT], axis=1)  # (n_lr, 2, 1)
        samples.append(base + 1e-9 * rng.standard_normal((5, 2, 12)))
    stat = optimum_shift(lrs)
    assert stat(samples[0]) == pytest.approx(2.0 / 64, rel=1e-3)
    est = statistic_exponent(widths, samples, stat, reading="values", n_resamples=200)
    assert est.exponent == pytest.approx(-1.0, abs=1e-3)
    edge = eta_star_log(lrs, (lx - np.log(2.0)) ** 2)  # optimum beyond the grid
    assert np.isnan(edge)


def test_optimum_shift_samples_needs_a_grid(store):
    runs, traj = store
    d = optimum_shift_samples(runs, traj, param="mup")
    assert d["widths"] == [32, 64, 128] and d["samples"][0].shape == (3, 2, 4)
    one = runs[np.isclose(runs.lr, 0.3)]
    with pytest.raises(InvalidArgumentError, match="grid of at least 3"):
        optimum_shift_samples(one, traj, param="mup")


def test_strict_json_has_no_nan(tmp_path):
    doc = {"a": float("nan"), "b": [np.float64("inf"), np.arange(2)], "c": np.float32(1.5), "d": {"e": -np.inf}}
    out = write_json_atomic(tmp_path / "x.json", doc)
    text = out.read_text()
    assert json.loads(text) == {"a": None, "b": [None, [0, 1]], "c": 1.5, "d": {"e": None}}
    assert strict_json((1.0, float("nan"))) == [1.0, None]


def test_chunked_stack_gives_each_member_its_own_numbers(data, monkeypatch):
    """A stack cut into chunks of members (as for wide stacks) gives bit-identical numbers with a
    minibatch order per run (batched GEMMs treat members separately), and float32-close ones with a
    shared order (the input layer's fused GEMM changes shape)."""
    import sde_scales.train.trainer as T

    for order, exact in (("seed", True), ("shared", False)):
        cfgs = [RunConfig(width=32, lr=0.3, seed=s, **dict(TINY, data_order=order)) for s in range(5)]
        whole = train_stack(cfgs, data)
        monkeypatch.setitem(T.CHUNK_ELEMENTS, "cpu", 2 * 32 * 32)  # two members per chunk: 3 chunks
        assert len(T.member_chunks(5, 32, 32)) == 3
        cut = train_stack(cfgs, data)
        monkeypatch.undo()
        for a, b in zip(whole, cut):
            if exact:
                np.testing.assert_array_equal(a.frame().value.to_numpy(), b.frame().value.to_numpy())
            else:
                np.testing.assert_allclose(a.frame().value.to_numpy(), b.frame().value.to_numpy(), rtol=1e-4,
                                           atol=1e-6)


def test_store_with_a_learning_rate_grid_is_judged_at_a_stated_rate(store):
    """Equal seeds at every rate: the rate with the lowest median final evaluation loss; a rate with
    more finished runs wins over a lower loss."""
    from theory.checks import judged_lr

    runs, _ = store
    med = {lr: np.median(g.final_eval_loss) for lr, g in runs.groupby("lr")}
    assert judged_lr(runs, "mup") == min(med, key=med.get)
    worst = max(med, key=med.get)
    extra = runs[runs.lr == worst].iloc[:1].assign(run_id="extra", seed=99)
    assert judged_lr(pd.concat([runs, extra]), "mup") == worst


def test_effective_weights_use_each_runs_optimizer_and_base_width(tmp_path):
    """Adam's muP table has other multipliers than SGD's, and a base width changes their constants:
    the effective weight of a run is its raw weight times the multiplier it trained with."""
    cfgs = config_grid(["mup"], [32, 64, 128], [1e-3], range(2), optimizer="adam", base_width=32, **TINY)
    run_sweep(cfgs, str(tmp_path), device="cpu", progress=False)
    st = RunStore(tmp_path)
    runs, traj = st.runs(), st.trajectories()
    eff = width_samples(runs, traj, "w1_value", param="mup", lr=1e-3)
    raw = width_samples(runs, traj, "w1_value_raw", param="mup", lr=1e-3)
    for n, e, r in zip(eff.widths, eff.samples, raw.samples):
        m = mup(1, "adam").factors(1, n, 32)[0]
        assert m != pytest.approx(mup(1).multiplier(1, n))  # SGD's table would give another number
        np.testing.assert_allclose(e, r * m)


def test_the_early_time_must_lie_inside_training():
    """t0_fraction=1.5 read eta* at the last step twice and measured a shift of 0 at every width."""
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(InvalidArgumentError, match=f"t0_fraction={bad}"):
            optimum_shift_samples(pd.DataFrame(), pd.DataFrame(), t0_fraction=bad)
