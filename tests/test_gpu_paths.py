"""The GPU paths of the trainer in their CPU mode (always run) and on CUDA (skipped without one)."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sde_scales.train import RunConfig, make_dataset, train_stack  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_benchmark_runs_in_its_cpu_mode_and_its_figures_add_up(tmp_path):
    """``benchmarks/gpu_appendix_b.py --tiny`` runs the code a GPU runs; its figures are consistent
    with each other (images/s = members x batch x steps/s; the projection = grid steps x seconds
    per step + 300 evaluations) and it refuses a CUDA run without a GPU with exit 2."""
    out = tmp_path / "g.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_appendix_b.py"), "--tiny", "--steps", "8",
                          "--warmup", "2", "--json", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    r = json.loads(out.read_text())
    assert r["losses_finite"] and r["steps_per_s"] > 0 and r["seconds_per_step"] > 0
    assert r["images_per_s"] == pytest.approx(r["members"] * r["batch"] * r["steps_per_s"], rel=1e-12)
    assert r["grid_steps"] == round(300 * r["n_train"] / r["batch"])
    proj = (r["grid_steps"] * r["seconds_per_step"] + 300 * r["eval_seconds"]) / 60
    assert r["projected_grid_minutes"] == pytest.approx(proj, rel=1e-12)
    assert "projected 300-epoch grid" in res.stdout
    if not torch.cuda.is_available():
        res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_appendix_b.py")], capture_output=True,
                             text=True)
        assert res.returncode == 2 and "no CUDA device" in res.stderr


def test_the_language_model_gpu_benchmark_runs_in_its_cpu_mode(tmp_path):
    """``benchmarks/gpu_lm_family.py --tiny`` trains the same code on "both" devices (the CPU twice):
    the same first logged row to the bit, a speed-up that is the ratio of the two rates, the
    projection the family's 69,000 updates times the device's rate; a CUDA run without a GPU exits 2."""
    out = tmp_path / "lm.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_lm_family.py"), "--tiny", "--updates", "10",
                          "--json", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    r = json.loads(out.read_text())
    assert r["losses_finite"] and r["first_row_device"] == r["first_row_cpu"] and r["first_row_rel_diff"] == 0.0
    assert r["speedup"] == pytest.approx(r["cpu_seconds_per_update"] / r["device_seconds_per_update"], rel=1e-12)
    assert r["projected_family_minutes"] == pytest.approx(69_000 * r["device_seconds_per_update"] / 60, rel=1e-12)
    assert "projected family" in res.stdout
    if not torch.cuda.is_available():
        res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_lm_family.py")], capture_output=True,
                             text=True)
        assert res.returncode == 2 and "no CUDA device" in res.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none here")
def test_no_host_sync_between_logged_steps():
    """Steps between logs never wait for the GPU: the number of synchronising calls does not grow
    with the number of steps (CUDA's sync debug mode counts them)."""
    ds = make_dataset("mixture", "cuda", d_in=64, n_train=1024, seed=0)

    def syncs(epochs):
        cfgs = [RunConfig(param="mup", width=64, lr=lr, dataset="mixture", d_in=64, n_train=1024, batch_size=64,
                          epochs=epochs, log_every=10_000, eval_every=0) for lr in (0.05, 0.1)]
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as rec:
                warnings.simplefilter("always")
                train_stack(cfgs, ds, device="cuda")
        finally:
            torch.cuda.set_sync_debug_mode(0)
        return sum("synchroniz" in str(w.message) for w in rec)

    assert syncs(2) == syncs(8)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none here")
@pytest.mark.parametrize("precision,rtol", [("tf32", 5e-3), ("bf16", 3e-2)])
def test_low_precision_on_cuda_tracks_fp32(precision, rtol):
    """TF32 (10-bit mantissa) and bf16 (8-bit) GEMMs move a short run's losses by a few rounding
    units of their mantissa accumulated over the run, well under the stated tolerances."""
    ds = make_dataset("mixture", "cuda", d_in=64, n_train=1024, seed=0)
    base = dict(param="mup", width=256, lr=0.1, dataset="mixture", d_in=64, n_train=1024, batch_size=64, epochs=2,
                log_every=4)
    ref = train_stack([RunConfig(**base)], ds, device="cuda")[0]
    low = train_stack([RunConfig(precision=precision, **base)], ds, device="cuda")[0]
    a = np.array([v for m, v in zip(ref.rows["metric"], ref.rows["value"]) if m == "train_loss"])
    b = np.array([v for m, v in zip(low.rows["metric"], low.rows["value"]) if m == "train_loss"])
    np.testing.assert_allclose(b, a, rtol=rtol)


def test_tf32_is_refused_on_the_cpu_and_bf16_runs_there(tmp_path):
    """``precision='tf32'`` sets CUDA's matmul mode only: on the CPU the runs trained in fp32 (the
    same numbers) and were stored as tf32 runs, under another run id. Refused there now, by
    ``train_stack`` and by ``sde-scales sweep`` before the store is made. ``bf16`` GEMMs do run on
    the CPU (the help said they were ignored there): the losses move by bf16 rounding, within the
    tolerance of the CUDA test above."""
    from sde_scales.errors import InvalidArgumentError

    ds = make_dataset("mixture", "cpu", d_in=32, n_train=256, seed=0)
    base = dict(param="mup", width=32, lr=0.1, dataset="mixture", d_in=32, n_train=256, batch_size=32, epochs=1,
                log_every=4)
    with pytest.raises(InvalidArgumentError, match="precision='tf32' sets CUDA's matmul mode"):
        train_stack([RunConfig(precision="tf32", **base)], ds, device="cpu")
    ref = train_stack([RunConfig(**base)], ds, device="cpu")[0]
    low = train_stack([RunConfig(precision="bf16", **base)], ds, device="cpu")[0]
    a = np.array([v for m, v in zip(ref.rows["metric"], ref.rows["value"]) if m == "train_loss"])
    b = np.array([v for m, v in zip(low.rows["metric"], low.rows["value"]) if m == "train_loss"])
    assert not np.array_equal(a, b)  # bf16 was applied
    np.testing.assert_allclose(b, a, rtol=3e-2)
    out = tmp_path / "store"
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "sweep", "--out", str(out), "--precision", "tf32",
                        "--device", "cpu", "--widths", "16", "--lrs", "0.1", "--no-progress"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "precision='tf32' sets CUDA's matmul mode" in r.stderr and not out.exists()


@pytest.mark.slow
def test_compiled_passes_give_the_eager_numbers_on_the_cpu():
    """``compile=True`` (torch.compile of the forward and backward passes) trains to the eager
    numbers within float32 rounding (fused elementwise kernels may round differently: 1e-5
    relative is ~100 float32 ulps), for SGD (the fused in-place step) and Adam; about 30 s of
    compilation on 2 cores, hence slow."""
    ds = make_dataset("mixture", "cpu", d_in=64, n_train=512, seed=0)
    base = dict(param="mup", width=32, seed=0, dataset="mixture", n_train=512, d_in=64, epochs=1, batch_size=64,
                log_every=4)
    for opt, lrs in (("sgd", (0.05, 0.2)), ("adam", (1e-3, 3e-3))):
        eager = train_stack([RunConfig(lr=lr, optimizer=opt, **base) for lr in lrs], ds)
        comp = train_stack([RunConfig(lr=lr, optimizer=opt, compile=True, **base) for lr in lrs], ds)
        for a, b in zip(eager, comp):
            np.testing.assert_allclose(b.rows["value"], a.rows["value"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("optimizer,lrs", [("sgd", (0.05, 0.3, 200.0)), ("adam", (1e-3, 3e-3, 50.0))])
def test_the_sync_free_path_gives_the_numbers_of_the_cpu_path(monkeypatch, optimizer, lrs):
    """The GPU's divergence check (masks on every step, read at logged steps only) against the
    CPU's (read every step, masks only once a member fails), on the CPU: every logged value, the
    status and the step of divergence agree exactly, with one member made to diverge."""
    from sde_scales.train import trainer as T

    ds = make_dataset("mixture", "cpu", d_in=64, n_train=512, seed=0)
    cfgs = [RunConfig(param="mup", width=32, lr=lr, seed=0, optimizer=optimizer, dataset="mixture", d_in=64,
                      n_train=512, batch_size=64, epochs=2, log_every=4) for lr in lrs]
    monkeypatch.setattr(T, "SYNC_FREE", False)
    cpu = train_stack(cfgs, ds)
    monkeypatch.setattr(T, "SYNC_FREE", True)
    gpu = train_stack(cfgs, ds)
    assert [o.status for o in cpu] == ["finished", "finished", "diverged"]
    for a, b in zip(cpu, gpu):
        assert (a.status, a.diverged_step) == (b.status, b.diverged_step)
        np.testing.assert_array_equal(np.asarray(a.rows["value"]), np.asarray(b.rows["value"]))


def test_check_room_weighs_cuda_memory_apart_from_the_hosts(monkeypatch):
    """The one memory check of the MLP stacks and the language model (``check_room``): on CUDA the
    device's bytes against its free memory (torch's ``mem_get_info``, planted here at 1 GiB free),
    the host's against the host's; on the CPU their sum against the host's. Runs without a GPU: a
    ``torch.device("cuda")`` is a name, and the free memory is planted, on the device and on the
    host (4 GiB: the machine's own changes while other tests run beside this one, and a reading of
    it taken here could be stale by the check's)."""
    import sde_scales.validation
    from sde_scales.errors import InvalidArgumentError
    from sde_scales.train import model

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev: (2**30, 8 * 2**30))
    host = 4 * 2**30
    monkeypatch.setattr(sde_scales.validation, "available_memory", lambda: host)
    model.check_room(0, 2**29, "cuda", "half a GiB", "shrink it")  # fits in the free GiB
    with pytest.raises(InvalidArgumentError, match=r"two GiB need 2 GiB on cuda:0 and 1 GiB is free there; shrink"):
        model.check_room(0, 2 * 2**30, "cuda:0", "two GiB", "shrink it")
    # the host's share is still weighed on CUDA (a device with room to spare), and the sum on the CPU
    with pytest.raises(InvalidArgumentError, match="host-sized need 8 GiB and 4 GiB is available"):
        model.check_room(2 * host, 0, "cuda", "host-sized", "shrink it")
    model.check_room(host // 2, host // 2, "cpu", "the host's all", "shrink it")
    with pytest.raises(InvalidArgumentError, match="more than the host need"):
        model.check_room(host // 2 + 1, host // 2 + 1, "cpu", "more than the host", "shrink it")
