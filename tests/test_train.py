"""The torch trainer: stacked runs, data, run store, sweeps with kill/resume, coordinate checks."""

import hashlib
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sde_scales.errors import DataFileError, InvalidArgumentError  # noqa: E402
from sde_scales.parametrization import mup, ntk, sp  # noqa: E402
from sde_scales.train import RunConfig, make_dataset, resolve_device, train_stack  # noqa: E402
from sde_scales.train import data as D  # noqa: E402
from sde_scales.train.coordcheck import coord_check  # noqa: E402
from sde_scales.train.model import StackedMLP  # noqa: E402
from sde_scales.train.store import RunStore  # noqa: E402
from sde_scales.train.sweep import plan, run_sweep  # noqa: E402
from sde_scales.train.trainer import config_grid  # noqa: E402

SMALL = dict(n_train=512, d_in=64, epochs=2, batch_size=64, log_every=4)


@pytest.fixture(scope="module")
def small_data():
    return make_dataset("synthetic", n_train=512, d_in=64)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_stacked_runs_equal_separate_runs(small_data, optimizer):
    """K learning rates in one stack give the numbers of K separate runs (float32 tolerance:
    batched and unbatched matmuls may sum in different orders, about 1e-6 relative)."""
    cfgs = [RunConfig(width=64, lr=lr, seed=3, optimizer=optimizer, param="mup", **SMALL) for lr in (0.01, 0.1, 0.5)]
    stacked = train_stack(cfgs, small_data)
    for c, s in zip(cfgs, stacked):
        alone = train_stack([c], small_data)[0]
        a, b = s.frame(), alone.frame()
        assert list(a.metric) == list(b.metric)
        np.testing.assert_allclose(a.value.to_numpy(), b.value.to_numpy(), rtol=1e-4, atol=1e-5)
    # and the runs really differ from one another
    assert stacked[0].final["train_loss"] != stacked[2].final["train_loss"]


def test_model_reads_the_parametrization_table():
    n = 256
    m = StackedMLP(mup(2), 2, 32, n, 10, [0, 1])
    W = [w.detach().double() * k for w, k in zip(m.weights, m.mult)]
    # effective hidden weights N(0, 1/n); effective readout N(0, 1/n^2) under muP (SGD)
    assert W[1].var().item() == pytest.approx(1 / n, rel=0.02)
    assert W[2].var().item() == pytest.approx(1 / n**2, rel=0.1)
    assert m.lr_scale == [1.0, 1.0, 1.0]
    m2 = StackedMLP(ntk(2), 1, 32, n, 10, [0])
    assert m2.mult[1] == pytest.approx(n**-0.5) and m2.init_std[1] == 1.0
    changed = StackedMLP(mup(2).with_layer(1, c=1), 1, 32, n, 10, [0])
    assert changed.lr_scale[1] == pytest.approx(1 / n)


def test_member_init_depends_only_on_its_seed():
    a = StackedMLP(mup(1), 3, 16, 32, 10, [5, 6, 7])
    b = StackedMLP(mup(1), 1, 16, 32, 10, [6])
    for wa, wb in zip(a.weights, b.weights):
        assert torch.equal(wa[1], wb[0])


def test_diverged_run_is_recorded_and_others_go_on(small_data):
    cfgs = [RunConfig(width=64, lr=lr, seed=0, param="sp", **SMALL) for lr in (0.05, 1e5)]
    out = train_stack(cfgs, small_data)
    assert out[1].status == "diverged" and out[1].diverged_step is not None
    assert out[0].status == "finished" and np.isfinite(out[0].final["train_loss"])
    alone = train_stack([cfgs[0]], small_data)[0]
    np.testing.assert_allclose(out[0].frame().value, alone.frame().value, rtol=1e-4, atol=1e-5)


def test_a_run_broken_by_its_last_update_is_diverged(small_data):
    """The minibatch check reads the loss before each update, so the last update is checked on the
    evaluation batch after it: a one-step run at lr 1e6 ends with an evaluation loss of about 1e9
    (the start: 2.3) and must not be stored as finished."""
    one_step = dict(SMALL, epochs=SMALL["batch_size"] / SMALL["n_train"])
    good, bad = train_stack([RunConfig(width=64, lr=lr, seed=0, param="sp", **one_step) for lr in (0.05, 1e6)],
                            small_data)
    assert good.config.n_steps() == 1
    assert bad.status == "diverged" and bad.diverged_step == 1
    assert not bad.final["eval_loss"] < 100 * 2.4  # what the check saw
    assert good.status == "finished" and good.diverged_step is None


def test_logged_metrics_and_micro_coordinates(small_data):
    o = train_stack([RunConfig(width=32, lr=0.1, seed=1, **SMALL)], small_data)[0]
    df = o.frame()
    needed = {"train_loss", "test_loss", "test_acc", "dist2", "act_rms", "act_delta_rms", "grad_norm", "lr", "w"}
    assert needed <= set(df.metric)
    w = df[df.metric == "w"]
    assert w.layer.nunique() == 2 * 4  # 2 layers x 4 coordinates
    o2 = train_stack([RunConfig(width=32, lr=0.1, seed=1, **SMALL)], small_data)[0]
    np.testing.assert_array_equal(o2.frame().value, df.value)  # same seed, same numbers
    assert df[(df.metric == "dist2") & (df.layer == -1)].value.iloc[-1] > 0


def test_bad_run_inputs():
    for lr in (-0.1, float("nan"), float("inf"), 1e300):  # 1e300: finite, but infinite in float32
        with pytest.raises(InvalidArgumentError, match="lr="):
            RunConfig(lr=lr)
    RunConfig(lr=3e38)  # the largest float32 is 3.4e38
    with pytest.raises(InvalidArgumentError, match="parametrization"):
        RunConfig(param="xyz")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidArgumentError, match="no CUDA device"):
            resolve_device("cuda")
    assert resolve_device("auto") in ("cpu", "cuda")


# ----------------------------------------------------------------------------- CIFAR-10 files
def _fake_cifar(root: Path, n=12):
    d = root / D.CIFAR_DIR
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for f in D.TRAIN_FILES + (D.TEST_FILE,):
        D.write_cifar_bin(d / f, rng.integers(0, 256, (n, 3072)), rng.integers(0, 10, n))
    return d


def test_cifar_binary_format(tmp_path):
    d = _fake_cifar(tmp_path)
    x, y = D.read_cifar_bin(d / "data_batch_1.bin")
    raw = np.fromfile(d / "data_batch_1.bin", dtype=np.uint8).reshape(-1, 3073)
    np.testing.assert_array_equal(y, raw[:, 0])
    np.testing.assert_array_equal(x, raw[:, 1:])
    xt, yt, xs, ys = D.load_cifar10(tmp_path, download=False, records=12)
    assert xt.shape == (60, 3072) and xs.shape == (12, 3072) and xt.dtype == np.float32
    # the published size is checked: 12-record files are not CIFAR-10
    with pytest.raises(DataFileError, match="12 records where CIFAR-10 files hold 10000"):
        D.load_cifar10(tmp_path, download=False)
    # channel-major layout: the red channel of record 0 is bytes 1..1024
    r0 = (raw[0, 1:1025] / 255.0 - D.CIFAR_MEAN[0]) / D.CIFAR_STD[0]
    np.testing.assert_allclose(xt[0, :1024], r0, rtol=1e-5)


def test_cifar_corrupt_and_missing(tmp_path):
    d = _fake_cifar(tmp_path)
    with open(d / "data_batch_2.bin", "ab") as fh:
        fh.write(b"\x01\x02")
    with pytest.raises(DataFileError, match="not a whole number of 3073-byte"):
        D.load_cifar10(tmp_path, download=False, records=12)
    # whole records, but a label byte out of 0..9 (a flipped bit, another data set): refused by record
    d = _fake_cifar(tmp_path / "labels")
    x, y = D.read_cifar_bin(d / "data_batch_3.bin")
    y[5] = 10
    D.write_cifar_bin(d / "data_batch_3.bin", x, y)
    with pytest.raises(DataFileError, match="data_batch_3.bin: record 5 has label 10; CIFAR-10 labels are 0..9"):
        D.load_cifar10(tmp_path / "labels", download=False, records=12)
    with pytest.raises(DataFileError, match="missing"):
        D.load_cifar10(tmp_path / "elsewhere", download=False)


def _fake_archive(tmp_path: Path):
    """A cifar-10-binary.tar.gz of fake 12-record files, and its MD5."""
    src = tmp_path / "src"
    _fake_cifar(src)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / D.CIFAR_DIR, arcname=D.CIFAR_DIR)
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_two_processes_downloading_at_once_both_succeed(tmp_path):
    """Each download writes its own temporary file and extracts into its own folder before the
    rename, so two at once neither share a .part file nor see a half-extracted folder."""
    from concurrent.futures import ThreadPoolExecutor

    archive, md5 = _fake_archive(tmp_path)
    dest = tmp_path / "dest"
    with ThreadPoolExecutor(3) as ex:
        outs = list(ex.map(lambda _: D.download_cifar10(dest, url=archive.as_uri(), md5=md5), range(3)))
    assert all(o == dest / D.CIFAR_DIR for o in outs)
    assert D.load_cifar10(dest, download=False, records=12)[0].shape == (60, 3072)
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_cifar_download_checks_the_archive(tmp_path):
    """The real download code, fed a file:// URL: extracts when the MD5 matches, refuses otherwise."""
    archive, md5 = _fake_archive(tmp_path)
    dest = tmp_path / "dest"
    out = D.download_cifar10(dest, url=archive.as_uri(), md5=md5)
    assert (out / "test_batch.bin").exists()
    bad = tmp_path / "bad"
    with pytest.raises(DataFileError, match="MD5"):
        D.download_cifar10(bad, url=archive.as_uri(), md5="0" * 32)
    with pytest.raises(DataFileError, match="could not be downloaded"):
        D.download_cifar10(tmp_path / "none", url=(tmp_path / "absent.tar.gz").as_uri())


# ----------------------------------------------------------------------------- run store and sweeps
def test_sweep_store_and_skip(tmp_path):
    cfgs = config_grid(["mup"], [16, 32], [0.05, 0.2], [0, 1], **SMALL)
    store = tmp_path / "store"
    r1 = run_sweep(cfgs, str(store), progress=False)
    assert r1 == {"ran": 8, "diverged": 0, "skipped": 0, "stacks": 4, "runs": 8, "repeats": 0}
    st = RunStore(store)
    assert len(st.finished()) == 8 and set(st.runs().run_id) == {c.run_id for c in cfgs}
    assert set(st.trajectories().columns) == {"run_id", "step", "epoch", "metric", "layer", "value"}
    mtimes = {p: p.stat().st_mtime_ns for p in (store / "runs").iterdir()}
    r2 = run_sweep(cfgs, str(store), progress=False)
    assert r2["ran"] == 0 and r2["skipped"] == 8
    assert {p: p.stat().st_mtime_ns for p in (store / "runs").iterdir()} == mtimes
    assert plan(cfgs, st.finished()) == []


def test_a_grid_extended_by_a_learning_rate_trains_the_new_runs_and_keeps_the_old(tmp_path):
    """A second sweep that adds a learning rate to a finished grid: the new runs share a stack with
    finished ones. Skipping such a stack because some of its runs are done would leave the new runs
    untrained with exit 0; the finished runs' files must stay as they were, and each new run must
    give the numbers of a sweep that trains it alone."""
    store, alone = tmp_path / "store", tmp_path / "alone"
    run_sweep(config_grid(["mup"], [16], [0.05], [0, 1], **SMALL), str(store), progress=False)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (store / "runs").iterdir()}
    grown = config_grid(["mup"], [16], [0.05, 0.2], [0, 1], **SMALL)
    r = run_sweep(grown, str(store), progress=False)
    # one stack per seed (one minibatch order per seed), each holding a finished run and a new one;
    # "ran" counts the runs written, so ran + skipped is the grid
    assert r["skipped"] == 2 and r["ran"] == 2 and r["stacks"] == 2 and r["runs"] == 4, r
    st = RunStore(store)
    assert st.finished() == {c.run_id for c in grown}
    assert {p.name: p.stat().st_mtime_ns for p in (store / "runs").iterdir() if p.name in mtimes} == mtimes
    new = [c for c in grown if c.lr == 0.2]
    run_sweep(new, str(alone), progress=False)
    a = st.runs().set_index("run_id").loc[[c.run_id for c in new], "final_train_loss"]
    b = RunStore(alone).runs().set_index("run_id").loc[[c.run_id for c in new], "final_train_loss"]
    # to float32 rounding: a stack of two members multiplies in other blocks than a stack of one
    # (README: the same numbers as separate runs to float tolerance); rtol 1e-5 is about 80 ulps
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-5)


def test_a_value_repeated_in_the_grid_is_trained_once(tmp_path):
    """--lrs 0.05,0.05 listed every run twice: both copies were trained (twice the time) and the
    command counted four runs where the store holds two."""
    cfgs = config_grid(["mup"], [16, 32], [0.05, 0.05], [0], **SMALL)
    assert len(cfgs) == 4
    r = run_sweep(cfgs, str(tmp_path / "s"), progress=False)
    assert r["ran"] == 2 and r["runs"] == 2 and r["repeats"] == 2
    assert sorted(c.run_id for s in plan(cfgs) for c in s.configs) == sorted({c.run_id for c in cfgs})


SWEEP = [sys.executable, "-m", "sde_scales.cli", "sweep", "--param", "mup", "--dataset", "synthetic", "--widths",
         "16,32,48,64", "--lrs", "0.05,0.1", "--seeds", "0,1", "--epochs", "6", "--n-train", "512", "--d-in", "64",
         "--batch-size", "64", "--device", "cpu", "--no-progress"]


def test_killed_sweep_resumes_and_matches_an_uninterrupted_one(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(SWEEP + ["--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # count written runs only: pathlib's glob also matches the hidden temporary file of a run that
    # is being written, and a kill at that moment leaves it behind without it counting as a run
    def written():
        return len([p for p in (killed / "runs").glob("*.parquet") if not p.name.startswith(".")])

    deadline = time.time() + 120
    while time.time() < deadline and written() < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = written()
    assert 2 <= before < 16, before  # killed mid-sweep: some stacks finished, some not
    res = subprocess.run(SWEEP + ["--out", str(killed)], capture_output=True, text=True, check=True)
    assert f"{before} already in the store" in res.stdout
    subprocess.run(SWEEP + ["--out", str(clean)], capture_output=True, text=True, check=True)
    a, b = RunStore(killed), RunStore(clean)
    assert a.finished() == b.finished() and len(a.finished()) == 16
    ta = a.trajectories().sort_values(["run_id", "metric", "layer", "step"]).reset_index(drop=True)
    tb = b.trajectories().sort_values(["run_id", "metric", "layer", "step"]).reset_index(drop=True)
    np.testing.assert_array_equal(ta.value.to_numpy(), tb.value.to_numpy())
    # a writer killed mid-write leaves only a hidden temporary file, which never counts as a run
    (killed / "runs" / ".deadbeef.999.tmp.parquet").write_bytes(b"half a file")
    assert len(RunStore(killed).finished()) == 16 and len(RunStore(killed).runs()) == 16


def test_sweep_on_process_pool_and_dask_gives_the_same_numbers(tmp_path):
    cfgs = config_grid(["mup"], [16, 32], [0.1], [0], **SMALL)
    run_sweep(cfgs, str(tmp_path / "local"), progress=False)
    run_sweep(cfgs, str(tmp_path / "pool"), executor="process", workers=2, progress=False)
    run_sweep(cfgs, str(tmp_path / "dask"), executor="dask", workers=2, scheduler="local", progress=False)
    ref = RunStore(tmp_path / "local").trajectories().sort_values(["run_id", "metric", "layer", "step"]).value.to_numpy()
    for name in ("pool", "dask"):
        other = RunStore(tmp_path / name).trajectories().sort_values(["run_id", "metric", "layer", "step"]).value.to_numpy()
        np.testing.assert_array_equal(ref, other)


# ----------------------------------------------------------------------------- coordinate checks
WIDTHS = [64, 128, 256, 512, 1024]


def test_coordcheck_mup_passes_where_the_widths_decide():
    """muP: input and hidden layers PASS; no layer FAILs. The readout's change after three steps is
    Theta(1) plus a random n^-1/2 part that is still visible at n <= 1024 (its local exponent climbs
    from about -0.26 to 0), so that layer may be INCONCLUSIVE, and then says so."""
    from sde_scales.rates import Verdict

    cc = coord_check(mup(2), WIDTHS, steps=3, lr=0.1)
    assert cc.verdicts[0] is Verdict.PASS and cc.verdicts[1] is Verdict.PASS
    assert cc.overall is not Verdict.FAIL
    if cc.verdicts[2] is not Verdict.PASS:
        assert "asymptotic range" in cc.reasons[2]


def test_coordcheck_sp_fails():
    from sde_scales.rates import Verdict

    cc = coord_check(sp(2), WIDTHS, steps=3, lr=0.1)
    assert cc.overall is Verdict.FAIL and cc.delta_exp[1].exponent > 0.2  # hidden features grow with width


@pytest.mark.parametrize("name", ["sp1", "sp2", "ntk2", "mup2", "mup2-small-readout", "sp2-adam", "ntk2-adam",
                                  "mup2-adam", "mup2-adam-slow-hidden"])
def test_the_abc_tables_first_step_is_what_one_trained_step_measures(name):
    """The symbolic table (theory.abc) against networks trained here for one step: each layer's
    measured exponent of its change lies within the check's own tolerance of the table's first-step
    exponent, for every layer of a stable parametrization and its output, and for an unstable one's
    layers up to the first that grows with n (above it the table's first order is a lower bound).
    Where TP4's later-step exponent differs (SP: input 0 against the first step's -1/2, hidden at
    depth 2 1 against 1/2; muP whose readout starts at n^-3/2: input and hidden 0 against -1/2),
    the measurement excludes it. Before, the table gave SP's input features a Theta(1) change beside
    a measured n^-0.49, and under Adam a hidden layer whose own rate is n^-2 a change of n^-1, where
    the input layer's Theta(1) change reaches it through its initial weights (measured n^0.00)."""
    from theory.abc import derive

    p = {"sp1": lambda: sp(1), "sp2": lambda: sp(2), "ntk2": lambda: ntk(2), "mup2": lambda: mup(2),
         "mup2-small-readout": lambda: mup(2).with_layer(2, b=1), "sp2-adam": lambda: sp(2, "adam"),
         "ntk2-adam": lambda: ntk(2, "adam"), "mup2-adam": lambda: mup(2, "adam"),
         "mup2-adam-slow-hidden": lambda: mup(2, "adam").with_layer(1, c=2)}[name]()
    t = derive(p)
    cc = coord_check(p, WIDTHS, steps=1, lr=0.1)
    judged = [l for l, exact in enumerate(t.first_step_exact) if exact]
    differs = 0
    for l in judged:
        d, tol = cc.delta_exp[l], cc.tolerances[l][1]
        first = float(t.output_change if l == p.L else t.first_step_feature_change[l])
        assert d.ci[0] - tol <= first <= d.ci[1] + tol, (l, d, tol, first)
        later = first if l == p.L else float(t.feature_change[l])
        if first != later:
            differs += 1
            assert not d.ci[0] - tol <= later <= d.ci[1] + tol, (l, d, tol, later)
    assert len(judged) == {"sp1": 1, "sp2": 2, "sp2-adam": 2, "ntk2-adam": 2}.get(name, 3)
    assert differs == {"sp1": 1, "sp2": 2, "mup2-small-readout": 2}.get(name, 0)


def test_mu_optimizer_adam_is_torch_adam_with_the_layer_learning_rates():
    """The muP optimizer's Adam against torch.optim.Adam (an independent implementation) run with
    each layer's learning rate lr * lr_scale[l] and member by member: equal to float32 rounding."""
    from sde_scales.train.optim import MuOptimizer

    torch.manual_seed(0)
    shapes = [(3, 5, 4), (3, 5, 5), (3, 2, 5)]
    ours = [torch.randn(s) for s in shapes]
    ref = [w.clone().requires_grad_(True) for w in ours]
    scales = [1.0, 0.25, 0.125]
    opt = MuOptimizer("adam", ours, scales)
    torch_opt = torch.optim.Adam([{"params": [w], "lr": 0.01 * s} for w, s in zip(ref, scales)], eps=1e-8)
    for step in range(1, 6):
        grads = [torch.randn(s) for s in shapes]
        opt.step(grads, 0.01, step)
        for w, g in zip(ref, grads):
            w.grad = g.clone()
        torch_opt.step()
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_coordcheck_with_adam_passes_mup_and_fails_sp():
    """Adam has its own muP table (input layer lr Theta(1), hidden and readout 1/n): the check with
    that table and update PASSes muP's input and hidden layers and FAILs SP under Adam, whose
    features grow with width."""
    from sde_scales.rates import Verdict

    cc = coord_check(mup(2, "adam"), WIDTHS, steps=3, lr=0.01)
    assert cc.verdicts[0] is Verdict.PASS and cc.verdicts[1] is Verdict.PASS, cc.reasons
    assert cc.overall is not Verdict.FAIL, cc.reasons
    bad = coord_check(sp(2, "adam"), WIDTHS, steps=3, lr=0.01)
    assert bad.overall is Verdict.FAIL, bad.reasons


def test_coordcheck_catches_missing_output_multiplier():
    from sde_scales.rates import Verdict

    cc = coord_check(mup(2).with_layer(2, a=0), WIDTHS, steps=3, lr=0.1)
    assert cc.overall is Verdict.FAIL


@pytest.mark.gpu
def test_gpu_matches_cpu(small_data):
    cfg = RunConfig(width=64, lr=0.1, seed=0, **SMALL)
    cpu = train_stack([cfg], small_data)[0].frame().value.to_numpy()
    gpu = train_stack([cfg], small_data.to("cuda"), device="cuda")[0].frame().value.to_numpy()
    np.testing.assert_allclose(cpu, gpu, rtol=1e-3, atol=1e-4)


def _autograd_grads(model, x, y, alive):
    """Independent reference: autograd through the same forward pass."""
    ws = [w.detach().clone().requires_grad_(True) for w in model.weights]
    saved = model.weights
    model.weights = ws
    try:
        logits = model.forward(x)
        K = logits.shape[0]
        losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(K),
                                                   reduction="none").reshape(K, -1).mean(dim=1)
        (losses * alive).sum().backward()
    finally:
        model.weights = saved
    return losses.detach(), [w.grad for w in ws]


@pytest.mark.parametrize("param,depth", [("mup", 1), ("mup", 2), ("sp", 2), ("ntk", 3)])
def test_hand_written_gradients_equal_autograd(param, depth):
    """float64, so the two may differ only by rounding (1e-12 relative is ~1e4 ulps of slack for
    sums of a few hundred terms)."""
    P = {"mup": mup, "sp": sp, "ntk": ntk}[param](depth)
    m = StackedMLP(P, 3, 20, 16, 10, [1, 2, 3], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 20, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (8,), generator=g)
    alive = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)  # the middle member gets no gradient
    ref_losses, ref = _autograd_grads(m, x, y, alive)
    with torch.no_grad():
        logits, pre = m.forward(x, keep=True)
        losses, dlogits = m.losses(logits, y)
        got = m.backward(x, pre, dlogits * alive.view(3, 1, 1))
    torch.testing.assert_close(losses, ref_losses, rtol=1e-12, atol=1e-12)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert all(float(gr[1].abs().max()) == 0 for gr in got) and float(got[0][0].abs().max()) > 0

    # the fused SGD step moves the weights exactly as w -= lr * lr_scale * grad
    lr = torch.tensor([0.3, 0.0, 0.05], dtype=torch.float64)
    expect = [w - (lr * c).view(3, 1, 1) * gr for w, c, gr in zip(m.weights, m.lr_scale, got)]
    with torch.no_grad():
        m.backward(x, pre, dlogits * alive.view(3, 1, 1), step_size=lr)
    for a, b in zip(m.weights, expect):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_trainer_matches_a_plain_autograd_loop(small_data, schedule):
    """An independent SGD loop (autograd, the same initial weights and batch order, the cosine's
    factor written out: update k at lr (1 + cos(pi k / (n - 1))) / 2) reaches the same weights after
    16 steps, and every logged quantity is the loop's own (float32; rtol 1e-4 leaves room for
    summation-order rounding)."""
    cfg = RunConfig(width=32, lr=0.2, seed=4, param="mup", depth=2, schedule=schedule, **SMALL)
    n = cfg.n_steps()
    factor = np.ones(n) if schedule == "constant" else 0.5 * (1 + np.cos(np.pi * np.arange(n) / (n - 1)))
    out = train_stack([cfg], small_data)[0]
    m = StackedMLP(mup(2), 1, small_data.d_in, 32, 10, [4])
    ws = [w[0].clone().requires_grad_(True) for w in m.weights]
    gen = torch.Generator().manual_seed(cfg.data_seed)
    perm, pos = torch.randperm(small_data.n_train, generator=gen), 0
    losses, grad_norms = [], []
    for k in range(n):
        if pos + cfg.batch_size > small_data.n_train:
            perm, pos = torch.randperm(small_data.n_train, generator=gen), 0
        idx = perm[pos:pos + cfg.batch_size]
        pos += cfg.batch_size
        h = small_data.x_train[idx]
        for l, (w, mult) in enumerate(zip(ws, m.mult)):
            h = (torch.relu(h) if l > 0 else h) @ w.T * mult
        loss = torch.nn.functional.cross_entropy(h, small_data.y_train[idx])
        for w in ws:
            w.grad = None
        loss.backward()
        losses.append(float(loss.detach()))
        grad_norms.append([float(w.grad.norm()) for w in ws])
        with torch.no_grad():
            for w, c in zip(ws, m.lr_scale):
                w -= cfg.lr * factor[k] * c * w.grad
    df = out.frame()
    micro = df[(df.metric == "dist2") & (df.layer == -1)].value.iloc[-1]
    ref = sum(float(((w.detach() - w0[0]) ** 2).sum()) for w, w0 in zip(ws, m.initial))
    assert micro == pytest.approx(ref, rel=1e-4)
    logged = df[df.metric == "train_loss"].value.to_numpy()
    per_log = np.array(losses).reshape(-1, cfg.log_every).mean(axis=1)
    np.testing.assert_allclose(logged, per_log, rtol=1e-4)
    # at each log: the learning rate of its step's update, and that update's minibatch gradient norms
    steps = np.sort(df[df.metric == "lr"].step.unique())
    np.testing.assert_array_equal(steps, np.arange(cfg.log_every, n + 1, cfg.log_every))
    np.testing.assert_allclose(df[df.metric == "lr"].sort_values("step").value, cfg.lr * factor[steps - 1], rtol=1e-6)
    for l in range(len(ws)):
        got = df[(df.metric == "grad_norm") & (df.layer == l)].sort_values("step").value
        np.testing.assert_allclose(got, [grad_norms[s - 1][l] for s in steps], rtol=1e-4)
    # the macro-variables of the last log, from the same weights: the evaluation batch (the first
    # 256 training inputs) through the plain forward pass, and autograd's gradient of its loss
    last = df[df.step == df.step.max()]

    def at(metric, layer):
        return float(last[(last.metric == metric) & (last.layer == layer)].value.iloc[0])

    x, y = small_data.x_train[:256], small_data.y_train[:256]
    h, pres = x, []
    for l, (w, mult) in enumerate(zip(ws, m.mult)):
        h = (torch.relu(h) if l > 0 else h) @ w.T * mult
        pres.append(h)
    eval_loss = torch.nn.functional.cross_entropy(h, y)
    grads = torch.autograd.grad(eval_loss, ws)
    assert at("eval_loss", -1) == pytest.approx(float(eval_loss), rel=1e-4)
    h0, pres0 = x, []  # the same batch through the initial weights
    for l, (w0, mult) in enumerate(zip(m.initial, m.mult)):
        h0 = (torch.relu(h0) if l > 0 else h0) @ w0[0].T * mult
        pres0.append(h0)
    for l, (pre, pre0, g) in enumerate(zip(pres, pres0, grads)):
        assert at("act_rms", l) == pytest.approx(float(pre.pow(2).mean().sqrt()), rel=1e-4)
        assert at("act_delta_rms", l) == pytest.approx(float((pre - pre0).pow(2).mean().sqrt()), rel=1e-4)
        assert at("eval_grad_norm", l) == pytest.approx(float(g.norm()), rel=1e-4)
    total = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
    assert at("eval_grad_norm", -1) == pytest.approx(total, rel=1e-4)


def test_same_numbers_with_one_or_two_torch_threads(small_data):
    """Same seed, same numbers whatever the thread count (bitwise), for a stack and a deep net."""
    cfgs = [RunConfig(width=48, lr=lr, seed=2, depth=2, **SMALL) for lr in (0.05, 0.2, 0.4)]
    before = torch.get_num_threads()
    try:
        vals = []
        for th in (1, 2):
            torch.set_num_threads(th)
            vals.append(np.concatenate([o.frame().value.to_numpy() for o in train_stack(cfgs, small_data)]))
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(vals[0], vals[1])


def _workers_of(proc, timeout=120):
    import psutil

    deadline = time.time() + timeout
    while time.time() < deadline:
        kids = psutil.Process(proc.pid).children(recursive=True)
        if len(kids) >= 2:
            return kids
        time.sleep(0.2)
    raise AssertionError("the process pool never started")


@pytest.mark.parametrize("executor", ["process", "dask"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_pool_workers_end_with_their_sweep(tmp_path, sig, executor):
    """A process-pool or dask-LocalCluster sweep killed (SIGKILL) or stopped (SIGTERM) leaves no
    worker behind; SIGTERM exits with 143 and says how to resume."""
    import psutil

    long = [a if a != "6" else "400" for a in SWEEP]  # epochs: long enough to be caught mid-stack
    proc = subprocess.Popen(long + ["--out", str(tmp_path / "s"), "--executor", executor, "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kids = _workers_of(proc)
    # training under way in the workers (a stack written, or a few seconds of it)
    deadline = time.time() + 30
    while time.time() < deadline and not any(p.cpu_percent(0.2) > 20 for p in kids if p.is_running()):
        pass
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    gone, alive = psutil.wait_procs(kids, timeout=20)
    assert not alive, [p.pid for p in alive]
    if sig == signal.SIGTERM:
        assert proc.returncode == 143 and "run the same command again to resume" in err


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_sigterm_while_the_sweep_starts_stops_it_cleanly(tmp_path, executor):
    """SIGTERM before any stack ran (the data loading, or the dask cluster starting) still stops the
    sweep with 143 and its message: the handler is installed before any worker starts."""
    long = [a if a != "6" else "400" for a in SWEEP]
    workers = [] if executor == "local" else ["--workers", "2"]  # --workers is refused for local
    proc = subprocess.Popen(long + ["--out", str(tmp_path / "s"), "--executor", executor, *workers],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60  # the sweep has started once its store exists
    while time.time() < deadline and not (tmp_path / "s").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "run the same command again to resume" in err, (proc.returncode, err[-500:])


def test_coordinate_check_sizes_against_a_plain_autograd_loop():
    """What the coordinate check reports, recomputed independently: each network (its seed's
    initial weights) stepped by plain SGD with autograd (update w -= lr * lr_scale * grad on the
    batch after the probe), and the RMS over the probe batch and the units of each layer's
    pre-activations at initialisation and of their change after each step (float32; rtol 1e-4 for
    summation order)."""
    widths, steps, n_seeds, d_in, batch, lr = [8, 16, 32], 2, 3, 16, 8, 0.1
    cc = coord_check(mup(2), widths, steps=steps, lr=lr, n_seeds=n_seeds, d_in=d_in, batch=batch)
    x, y, _, _ = D.teacher_student(n_train=batch * (steps + 1), n_test=1, d_in=d_in, seed=0)
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    probe = x[:batch]

    def forward(ws, mult, h):
        pres = []
        for l, (w, mu) in enumerate(zip(ws, mult)):
            h = (torch.relu(h) if l > 0 else h) @ w.T * mu
            pres.append(h)
        return pres

    for i, n in enumerate(widths):
        m = StackedMLP(mup(2), n_seeds, d_in, n, 10, list(range(n_seeds)))
        for s in range(n_seeds):
            ws = [w[s].clone().requires_grad_(True) for w in m.weights]
            with torch.no_grad():
                pre0 = forward(ws, m.mult, probe)
            for l, p in enumerate(pre0):
                assert cc.act[l][i, s] == pytest.approx(float(p.pow(2).mean().sqrt()), rel=1e-4)
            for k in range(steps):
                xb, yb = x[batch * (k + 1): batch * (k + 2)], y[batch * (k + 1): batch * (k + 2)]
                loss = torch.nn.functional.cross_entropy(forward(ws, m.mult, xb)[-1], yb)
                grads = torch.autograd.grad(loss, ws)
                with torch.no_grad():
                    for w, c, g in zip(ws, m.lr_scale, grads):
                        w -= lr * c * g
                    pre = forward(ws, m.mult, probe)
                for l, (p, p0) in enumerate(zip(pre, pre0)):
                    assert cc.delta[l][i, k, s] == pytest.approx(float((p - p0).pow(2).mean().sqrt()), rel=1e-4)
