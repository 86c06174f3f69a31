"""Checkpoints inside a stack, the base width of the learning rate, the GEMM precision, and the
trainer's test-set chunking: each against an independent reference (an uninterrupted run, the SP
network, an fp32 run, one unchunked evaluation)."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sde_scales.errors import InvalidArgumentError  # noqa: E402
from sde_scales.parametrization import mup, ntk, sp  # noqa: E402
from sde_scales.train import RunConfig, make_dataset, train_stack  # noqa: E402
from sde_scales.train import trainer as T  # noqa: E402
from sde_scales.train.model import StackedMLP  # noqa: E402
from sde_scales.train.optim import MuOptimizer  # noqa: E402
from sde_scales.train.store import RunStore  # noqa: E402
from sde_scales.train.trainer import Checkpointing  # noqa: E402

SMALL = dict(n_train=512, d_in=64, epochs=3, batch_size=64, log_every=4, eval_every=1)


class _Kill(Exception):
    pass


class _KillAt:
    """A progress object that stops training after ``n`` steps (a kill at a known step)."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def update(self, k):
        self.seen += k
        if self.seen >= self.n:
            raise _Kill


def _values(outcomes):
    return [np.asarray(o.rows["value"]) for o in outcomes], [o.status for o in outcomes]


@pytest.mark.parametrize("optimizer,order", [("sgd", "shared"), ("adam", "seed")])
def test_a_stack_killed_after_a_checkpoint_resumes_bit_identically(tmp_path, optimizer, order):
    """Kill at step 19 of 24 (checkpoints every 5 steps, saved at logged steps 8 and 16): the
    resumed stack redoes steps 17..24 only and its every logged value equals the uninterrupted
    run's, Adam moments and per-run data orders included."""
    ds = make_dataset("mixture", "cpu", d_in=64, n_train=512, seed=0)
    cfgs = [RunConfig(param="mup", width=32, lr=lr, seed=s, optimizer=optimizer, data_order=order,
                      dataset="mixture", **SMALL) for lr in ((0.05, 0.2) if optimizer == "sgd" else (1e-3, 3e-3))
            for s in (0, 1)]
    if order == "shared":
        cfgs = [c for c in cfgs if c.seed == 0]
    clean = train_stack(cfgs, ds)
    ck = Checkpointing(str(tmp_path / "ck.pt"), 5)
    with pytest.raises(_Kill):
        train_stack(cfgs, ds, checkpoint=ck, progress=_KillAt(19))
    saved = torch.load(ck.path, weights_only=False)
    assert saved["step"] == 16  # the last logged step at or after a multiple of 5 before the kill
    counter = _KillAt(10 ** 9)
    resumed = train_stack(cfgs, ds, checkpoint=ck, progress=counter)
    assert counter.seen == 24 - 16  # it did not start over
    a, b = _values(clean), _values(resumed)
    assert a[1] == b[1]
    for x, y in zip(a[0], b[0]):
        np.testing.assert_array_equal(x, y)


def test_a_damaged_or_foreign_checkpoint_is_moved_aside_and_the_stack_starts_over(tmp_path, capsys):
    ds = make_dataset("mixture", "cpu", d_in=64, n_train=512, seed=0)
    cfgs = [RunConfig(param="mup", width=32, lr=0.1, seed=0, dataset="mixture", **SMALL)]
    clean = train_stack(cfgs, ds)
    path = tmp_path / "ck.pt"
    path.write_bytes(b"\x00garbage, not a checkpoint")
    out = train_stack(cfgs, ds, checkpoint=Checkpointing(str(path), 5))
    assert "moved to" in capsys.readouterr().err and (tmp_path / "ck.pt.damaged").exists()
    np.testing.assert_array_equal(clean[0].rows["value"], out[0].rows["value"])
    # a checkpoint of other runs (another learning rate) is not used either
    other = [RunConfig(param="mup", width=32, lr=0.2, seed=0, dataset="mixture", **SMALL)]
    with pytest.raises(_Kill):
        train_stack(other, ds, checkpoint=Checkpointing(str(path), 5), progress=_KillAt(19))
    capsys.readouterr()
    out = train_stack(cfgs, ds, checkpoint=Checkpointing(str(path), 5))
    assert "saved for other runs" in capsys.readouterr().err
    np.testing.assert_array_equal(clean[0].rows["value"], out[0].rows["value"])
    with pytest.raises(InvalidArgumentError, match="at least 1"):
        Checkpointing(str(path), 0)


SWEEP = [sys.executable, "-m", "sde_scales.cli", "sweep", "--param", "mup", "--dataset", "synthetic", "--widths",
         "32", "--lrs", "0.05,0.1", "--seeds", "0", "--epochs", "60", "--n-train", "512", "--d-in", "64",
         "--batch-size", "64", "--device", "cpu", "--no-progress", "--checkpoint-every", "5"]


def test_a_killed_sweep_resumes_inside_its_stack(tmp_path):
    """SIGKILL a one-stack sweep once a checkpoint is on disk: the rerun says it resumes from the
    checkpoint, removes it when done, and stores the numbers of an uninterrupted sweep."""
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(SWEEP + ["--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckdir = killed / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and not [p for p in ckdir.glob("*.pt") if not p.name.startswith(".")]:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p for p in ckdir.glob("*.pt") if not p.name.startswith(".")], "no checkpoint before the kill"
    assert not RunStore(killed).finished()  # the stack had not finished: only its checkpoint saves work
    res = subprocess.run(SWEEP + ["--out", str(killed)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "resuming from its checkpoint" in res.stderr
    assert not [p for p in ckdir.glob("*.pt") if not p.name.startswith(".")]  # removed once written
    subprocess.run(SWEEP + ["--out", str(clean)], capture_output=True, text=True, check=True)
    ta = RunStore(killed).trajectories().sort_values(["run_id", "metric", "layer", "step"]).value.to_numpy()
    tb = RunStore(clean).trajectories().sort_values(["run_id", "metric", "layer", "step"]).value.to_numpy()
    np.testing.assert_array_equal(ta, tb)


# ----------------------------------------------------------------------------- base width
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("L", [1, 3])
def test_at_its_base_width_every_parametrization_is_the_sp_network(optimizer, L):
    """mup's convention: at width n0 a base-width-n0 model is the SP model (same weights,
    multipliers and per-layer learning rates), so the learning rate means the same in both."""
    for p in (mup(L, optimizer), ntk(L, optimizer)):
        a = StackedMLP(p, 2, 16, 48, 10, [1, 2], base_width=48)
        b = StackedMLP(sp(L, optimizer), 2, 16, 48, 10, [1, 2])
        assert a.mult == pytest.approx(b.mult, rel=1e-15) and a.lr_scale == pytest.approx(b.lr_scale, rel=1e-15)
        for x, y in zip(a.weights, b.weights):
            torch.testing.assert_close(x, y, rtol=1e-6, atol=0)


def _train_losses(model, steps=6, lr=0.1):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(steps * 32, model.d_in, generator=g, dtype=torch.float64)
    y = torch.randint(0, model.d_out, (steps * 32,), generator=g)
    opt = MuOptimizer(model.param.optimizer, model.weights, model.lr_scale)
    out = []
    for s in range(steps):
        xb, yb = x[s * 32:(s + 1) * 32], y[s * 32:(s + 1) * 32]
        logits, pre = model.forward(xb, keep=True)
        loss, dl = model.losses(logits, yb)
        opt.step(model.backward(xb, pre, dl), torch.full((model.K,), lr, dtype=torch.float64), s + 1)
        out.append(loss.clone())
    return torch.stack(out)


def test_base_width_does_not_depend_on_how_the_table_is_written():
    """The abc symmetry (a + t, b - t, c - 2t under SGD) leaves a base-width model's training
    unchanged: the base width scales the effective weights and steps, which the symmetry preserves,
    not one way of writing the table. A rule applied to a, b, c separately with the wrong reference
    would break this. (SGD only: Adam's epsilon makes its symmetry approximate.)"""
    p = mup(2, "sgd")
    q = p.shifted(0.5, layer=1).shifted(-0.25, layer=2)
    a = StackedMLP(p, 2, 16, 256, 10, [4, 5], base_width=32, dtype=torch.float64)
    b = StackedMLP(q, 2, 16, 256, 10, [4, 5], base_width=32, dtype=torch.float64)
    torch.testing.assert_close(_train_losses(a), _train_losses(b), rtol=1e-12, atol=0)


def test_base_width_changes_constants_not_exponents():
    """Each factor with base width n0 is n^-e times the same constant at every width."""
    p = mup(2, "sgd")
    for l in range(3):
        r = [np.array(p.factors(l, n, 64)) / np.array(p.factors(l, n)) for n in (64, 256, 4096)]
        np.testing.assert_allclose(r[0], r[1], rtol=1e-12)
        np.testing.assert_allclose(r[0], r[2], rtol=1e-12)
    with pytest.raises(InvalidArgumentError, match="base_width"):
        p.factors(0, 64, 0)
    with pytest.raises(InvalidArgumentError, match="base_width"):
        RunConfig(base_width=-3)
    assert RunConfig().run_id == RunConfig(base_width=0).run_id  # older stores keep their ids
    assert RunConfig().run_id != RunConfig(base_width=64).run_id


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.1), ("adam", 0.01)])
def test_base_width_agrees_with_the_mup_package(optimizer, lr):
    """An independent implementation: mup's MuReadout with base shapes of width n0, stepped by
    MuSGD or MuAdam, trains to the same losses (float64, 8 steps) as this trainer with
    base_width=n0. The two optimizers scale different layers (Adam: the hidden layer's learning
    rate by n0/n and the readout's multiplier; SGD: the multipliers alone), so each is checked.
    Skipped when the mup package is absent (its own requirements pull a CUDA build of torch and
    torchvision, so the README's set-up installs it with ``pip install --no-deps mup==1.0.0``)."""
    mup_pkg = pytest.importorskip("mup")
    import torch.nn as nn
    import torch.nn.functional as F

    d_in, C, n, n0 = 16, 10, 256, 32

    class Net(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.l = nn.ModuleList([nn.Linear(d_in, width, bias=False), nn.Linear(width, width, bias=False)])
            self.out = mup_pkg.MuReadout(width, C, bias=False)

        def forward(self, x):
            for m in self.l:
                x = torch.relu(m(x))
            return self.out(x)

    ours = StackedMLP(mup(2, optimizer), 1, d_in, n, C, [3], base_width=n0, dtype=torch.float64)
    net = Net(n).double()
    mup_pkg.set_base_shapes(net, Net(n0), delta=Net(2 * n0))
    with torch.no_grad():
        for m, w, mu in zip(net.l, ours.weights, ours.mult):
            m.weight.copy_(w[0] * mu)
        net.out.weight.copy_(ours.weights[-1][0] * ours.mult[-1] * (n / n0))
    opt = (mup_pkg.MuSGD(net.parameters(), lr=lr) if optimizer == "sgd"
           else mup_pkg.MuAdam(net.parameters(), lr=lr, eps=1e-8))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8 * 32, d_in, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (8 * 32,), generator=g)
    theirs = []
    for s in range(8):
        opt.zero_grad()
        loss = F.cross_entropy(net(x[s * 32:(s + 1) * 32]), y[s * 32:(s + 1) * 32])
        loss.backward()
        opt.step()
        theirs.append(loss.item())
    mine = []
    mopt = MuOptimizer(optimizer, ours.weights, ours.lr_scale)
    for s in range(8):
        xb, yb = x[s * 32:(s + 1) * 32], y[s * 32:(s + 1) * 32]
        logits, pre = ours.forward(xb, keep=True)
        loss, dl = ours.losses(logits, yb)
        mopt.step(ours.backward(xb, pre, dl), torch.tensor([lr], dtype=torch.float64), s + 1)
        mine.append(loss.item())
    assert len(set(np.round(theirs, 6))) == 8  # the losses move: the steps are compared, not the start
    np.testing.assert_allclose(mine, theirs, rtol=1e-12)


# ----------------------------------------------------------------------------- precision and evaluation
def test_bf16_gemms_track_fp32_and_keep_fp32_weights():
    """bf16 GEMM operands (8 bits of mantissa, relative rounding 2^-9 per operand) move a short
    run's losses by well under 2% of fp32's; the weights stay fp32 and the run id differs."""
    ds = make_dataset("mixture", "cpu", d_in=64, n_train=512, seed=0)
    base = dict(param="mup", width=64, seed=0, dataset="mixture", **SMALL)
    a = train_stack([RunConfig(lr=0.1, **base)], ds)[0]
    b = train_stack([RunConfig(lr=0.1, precision="bf16", **base)], ds)[0]
    la = np.array([v for m, v in zip(a.rows["metric"], a.rows["value"]) if m == "train_loss"])
    lb = np.array([v for m, v in zip(b.rows["metric"], b.rows["value"]) if m == "train_loss"])
    assert np.all(np.abs(lb / la - 1) < 0.02)
    assert not np.array_equal(la, lb)  # the GEMMs did run in bf16
    assert RunConfig(precision="bf16", **base).run_id != RunConfig(**base).run_id
    with pytest.raises(InvalidArgumentError, match="precision"):
        RunConfig(precision="fp8")


def test_the_test_split_is_evaluated_in_row_chunks_with_the_same_numbers(monkeypatch):
    """Chunking the test split (a budget of 1 element: one row at a time) gives the test loss and
    accuracy of one evaluation of the whole split, to float rounding of the per-row sums."""
    ds = make_dataset("mixture", "cpu", d_in=64, n_train=512, seed=0)
    cfgs = [RunConfig(param="mup", width=32, lr=lr, seed=0, dataset="mixture", **SMALL) for lr in (0.05, 0.2)]
    whole = train_stack(cfgs, ds)
    monkeypatch.setitem(T.EVAL_ELEMENTS, "cpu", 1)
    rows = train_stack(cfgs, ds)
    for a, b in zip(whole, rows):
        for metric, rtol in (("test_loss", 1e-6), ("test_acc", 0)):
            va = [v for m, v in zip(a.rows["metric"], a.rows["value"]) if m == metric]
            vb = [v for m, v in zip(b.rows["metric"], b.rows["value"]) if m == metric]
            assert len(va) > 2
            np.testing.assert_allclose(vb, va, rtol=rtol)


# ----------------------------------------------------------------------------- same seed, same numbers
def _readme_sweep() -> list[str]:
    """The README's own sweep command (its first ``sde-scales sweep`` line and its continuation)."""
    from pathlib import Path

    from conftest import shell_command

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    cmd = shell_command(text[text.index("sde-scales sweep --param"):])
    i = cmd.index("--out")
    del cmd[i: i + 2]
    return [sys.executable, "-m", "sde_scales.cli"] + cmd[1:] + ["--no-progress"]


def test_the_readme_sweep_gives_the_same_numbers_on_every_executor_and_thread_count(tmp_path):
    """The README's sweep at its own sizes (d_in 3072, batch 128, 8,192 samples): OMP_NUM_THREADS 1
    and 2 in-process, a 2-worker process pool and a dask LocalCluster store bit-identical values."""
    import os

    cmd = _readme_sweep()
    assert "--widths" in cmd and "--lrs" in cmd
    stores = {}
    for name, extra, threads in (("t1", [], "1"), ("t2", [], "2"),
                                 ("pool", ["--executor", "process", "--workers", "2"], "2"),
                                 ("dask", ["--executor", "dask", "--workers", "2", "--scheduler", "local"], "2")):
        env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        subprocess.run(cmd + extra + ["--out", str(tmp_path / name)], env=env, check=True, capture_output=True)
        stores[name] = RunStore(tmp_path / name).trajectories().sort_values(
            ["run_id", "metric", "layer", "step"]).reset_index(drop=True)
    ref = stores.pop("t1")
    assert len(ref) > 1000
    for name, df in stores.items():
        assert list(df.run_id) == list(ref.run_id), name
        np.testing.assert_array_equal(df.value.to_numpy(), ref.value.to_numpy(), err_msg=name)
