"""The byte-level language-model family (:mod:`sde_scales.train.lm`) and its experiment script:
branched runs equal runs from scratch, the logged rows are the stated means, data order is a
function of (seed, update) alone, bad input is refused, curves are written once and read back."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import strict_json

torch = pytest.importorskip("torch")

from sde_scales import schedules  # noqa: E402
from sde_scales.errors import DataFileError, InvalidArgumentError  # noqa: E402
from sde_scales.fitting import load_curve  # noqa: E402
from sde_scales.train import lm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = lm.LMConfig(d_model=16, n_layer=1, n_head=2, context=16, batch=4, log_every=5, seed=3)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A corpus of text in a real file: 20 kB of generated lines, read by file_corpus."""
    rng = np.random.default_rng(0)
    words = ["def", "return", "self", "import", "class", "for", "in", "if", "x", "y", "=", "(", ")", ":"]
    text = "\n".join(" ".join(rng.choice(words, size=8)) for _ in range(600))
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    path.write_text(text)
    return lm.file_corpus([path])


def test_branched_runs_equal_runs_from_scratch(corpus):
    """A WSD run started from the trunk's state at its cooldown gives bit for bit the losses of the
    same run trained from update 0 (one initialisation, one data order); the cosine run leaves the
    trunk after the warmup, where the two first differ."""
    n = 60
    sch = {"constant": schedules.constant(n, 3e-3, warmup_steps=5),
           "wsd": schedules.wsd(n, 3e-3, 0.3, warmup_steps=5),
           "cos": schedules.cosine(n, 3e-3, 0.1, warmup_steps=5)}
    fast = lm.train_family(corpus, sch, TINY)
    slow = lm.train_family(corpus, sch, TINY, branch=False)
    assert fast["wsd"]["branched_at"] == n - 18 and fast["cos"]["branched_at"] == 6  # wsd: 30% of 60 = 18 steps
    assert all(slow[k]["branched_at"] == 0 for k in sch)
    for k in sch:
        np.testing.assert_array_equal(fast[k]["loss"], slow[k]["loss"])
    # the runs did differ: the cooldown lowers the last rows' loss below the constant run's
    assert fast["wsd"]["loss"][-1] != fast["constant"]["loss"][-1]
    np.testing.assert_array_equal(fast["wsd"]["loss"][:8], fast["constant"]["loss"][:8])  # rows before step 42


def test_logged_rows_are_means_of_the_minibatch_losses_of_the_initial_model(corpus):
    """With every rate 0 the model never moves (AdamW's decay is scaled by the rate), so update k's
    loss is the initial model's loss on the windows batch_starts(seed, k) gives; each logged row at
    step s is the mean of updates s - 5 .. s - 1. Computed here independently of train_family."""
    n = 20
    out = lm.train_family(corpus, {"zero": np.zeros(n)}, TINY)["zero"]
    model = lm.tiny_lm(TINY)
    data = torch.from_numpy(corpus.data.astype(np.int64))
    per = []
    with torch.no_grad():
        for k in range(n):
            s = lm.batch_starts(TINY.seed, k, corpus.n_bytes - TINY.context, TINY.batch)
            win = torch.stack([data[i:i + TINY.context + 1] for i in s])
            logits = model(win[:, :-1])
            per.append(float(torch.nn.functional.cross_entropy(logits.reshape(-1, 256), win[:, 1:].reshape(-1))))
    np.testing.assert_array_equal(out["step"], [5, 10, 15, 20])
    np.testing.assert_allclose(out["loss"], np.reshape(per, (4, 5)).mean(axis=1), rtol=1e-6)
    assert out["schedule"].size == n + 1 and np.all(out["lr"] == 0)
    # the initial model's loss is near ln 256 (uniform over bytes): 5.55 nats; it is not trained
    assert abs(np.mean(per) - np.log(256)) < 0.5


def test_updates_are_adamw_with_the_stated_clip_and_decay(corpus):
    """The updates, recomputed by a plain loop: torch's AdamW (betas 0.9 and 0.95, eps 1e-8, the
    config's decoupled weight decay) at each update's rate, after clipping the gradient's norm to
    the config's clip, on the windows batch_starts gives. With a clip that binds (0.05), the logged
    means are the loop's, and they differ from a run without clipping (so the clip was applied)."""
    import dataclasses

    n = 15
    rates = schedules.cosine(n, 3e-3, 0.1, warmup_steps=3)
    cfg = dataclasses.replace(TINY, clip=0.05, weight_decay=0.2)
    got = lm.train_family(corpus, {"cos": rates}, cfg)["cos"]["loss"]
    model = lm.tiny_lm(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=float(rates[0]), betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=cfg.weight_decay)
    data = torch.from_numpy(corpus.data.astype(np.int64))
    per = []
    for k in range(n):
        s = lm.batch_starts(cfg.seed, k, corpus.n_bytes - cfg.context, cfg.batch)
        win = torch.stack([data[i:i + cfg.context + 1] for i in s])
        loss = torch.nn.functional.cross_entropy(model(win[:, :-1]).reshape(-1, 256), win[:, 1:].reshape(-1))
        per.append(float(loss))
        for g in opt.param_groups:
            g["lr"] = float(rates[k])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
    want = np.reshape(per, (3, 5)).mean(axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    unclipped = lm.train_family(corpus, {"cos": rates}, dataclasses.replace(cfg, clip=0.0))["cos"]["loss"]
    assert np.max(np.abs(unclipped - want)) > 1e-4


def test_data_order_depends_on_seed_and_update_only():
    a = lm.batch_starts(1, 7, 1000, 8)
    assert np.array_equal(a, lm.batch_starts(1, 7, 1000, 8))
    assert not np.array_equal(a, lm.batch_starts(1, 8, 1000, 8))
    assert not np.array_equal(a, lm.batch_starts(2, 7, 1000, 8))
    assert a.min() >= 0 and a.max() < 1000


@pytest.mark.parametrize("sch, needle", [
    ({"a": np.ones(20), "b": np.ones(21)}, "has 21 updates"),
    ({"a": np.r_[np.ones(10), -1.0, np.ones(9)]}, "learning rate -1.0 at update 10"),
    ({"a": np.r_[np.ones(3), np.nan, np.ones(16)]}, "learning rate nan at update 3"),
    ({}, "no schedules"),
    ({"a": np.ones(3)}, "fewer than log_every=5"),
])
def test_bad_schedules_are_refused_by_value(corpus, sch, needle):
    with pytest.raises(InvalidArgumentError, match=needle.replace("(", r"\(")):
        lm.train_family(corpus, sch, TINY)


@pytest.mark.parametrize("first_hot", [0, 7])
def test_a_diverging_run_names_schedule_and_update(corpus, first_hot):
    """A rate of 1e30 moves every weight by about 1e30 in its update (Adam steps are the rate times a
    unit-size ratio), so the loss of the next update cannot be finite. The losses are read back once
    per logged block (5 updates here): the error must still name the first bad update, 1 (in the
    first block) or 8 (inside the second, not its start)."""
    sch = np.r_[np.full(first_hot, 1e-3), np.full(10 - first_hot, 1e30)]
    with pytest.raises(FloatingPointError, match=rf"schedule 'hot': loss .* at update {first_hot + 1} "):
        lm.train_family(corpus, {"hot": sch}, TINY)


def test_bad_configs_and_corpora(tmp_path):
    with pytest.raises(InvalidArgumentError, match="d_model=10 is not divisible by n_head=4"):
        lm.LMConfig(d_model=10, n_head=4)
    with pytest.raises(InvalidArgumentError, match="batch=0"):
        lm.LMConfig(batch=0)
    with pytest.raises(DataFileError, match="missing.txt: cannot read it"):
        lm.file_corpus([tmp_path / "missing.txt"])
    (tmp_path / "short.txt").write_text("abc")
    with pytest.raises(DataFileError, match="3 bytes; a corpus needs at least 4,096"):
        lm.file_corpus([tmp_path / "short.txt"])


@pytest.mark.parametrize("config", [TINY, lm.LMConfig(), lm.LMConfig(d_model=64, n_layer=3, n_head=8, context=32)])
def test_the_parameter_count_is_the_models(config):
    """lm_parameters counts without building the model: the built model's parameters, counted by
    torch, on three shapes (the memory check rests on it)."""
    assert lm.lm_parameters(config) == sum(p.numel() for p in lm.tiny_lm(config).parameters())


def test_a_model_too_large_for_memory_is_refused_before_any_weight(corpus, monkeypatch):
    """A d_model of 2**17 (2 blocks: 4e11 parameters, 6 TB of float32 state) is refused by name
    before a weight is drawn (it would fail in torch's allocator, or be killed); the floor is at
    least the weights, gradients and moments (16 bytes a parameter) and counts kept snapshots."""
    from dataclasses import replace

    big = replace(lm.LMConfig(), d_model=2**17, n_head=4)
    called = []
    monkeypatch.setattr(lm, "tiny_lm", lambda c: called.append(c))
    with pytest.raises(InvalidArgumentError, match=r"d_model=131072.*parameters.*need .* GiB and .* GiB is "
                                                   r"available; give a smaller d_model"):
        lm.train_family(corpus, {"constant": np.full(10, 1e-3)}, big)
    assert not called
    p = lm.lm_parameters(TINY)
    assert lm.lm_memory_bytes(TINY, 0, 0) > 16 * p
    assert lm.lm_memory_bytes(TINY, 0, 2) - lm.lm_memory_bytes(TINY, 0, 0) == 2 * 12 * p


def test_devices_are_named_and_one_torch_cannot_use_is_refused(corpus):
    with pytest.raises(InvalidArgumentError, match="device='gpu'; give 'cpu', 'cuda', 'cuda:<k>' or 'mps'"):
        lm.LMConfig(device="gpu")
    from dataclasses import replace

    sch = {"constant": np.full(10, 1e-3)}
    cpu = lm.train_family(corpus, sch, TINY)
    named = lm.train_family(corpus, sch, replace(TINY, device="cpu"))  # the default, named: the same numbers
    np.testing.assert_array_equal(cpu["constant"]["loss"], named["constant"]["loss"])
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(InvalidArgumentError, match=f"device='cuda:{have}', but torch sees {have} CUDA device"):
        lm.train_family(corpus, sch, replace(TINY, device=f"cuda:{have}"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_run_starts_from_the_cpus_weights_and_data(corpus):
    """On a GPU the first logged row (the mean loss of the first five updates, from the same
    initial weights on the same windows) matches the CPU's to float rounding grown over five
    updates (1e-4 relative: TF32 matmuls are off by default for float32 in torch 2.x)."""
    from dataclasses import replace

    sch = {"constant": np.full(10, 1e-3)}
    cpu = lm.train_family(corpus, sch, TINY)["constant"]["loss"]
    gpu = lm.train_family(corpus, sch, replace(TINY, device="cuda"))["constant"]["loss"]
    np.testing.assert_allclose(gpu[0], cpu[0], rtol=1e-4)


def test_stdlib_corpus_reads_sources_in_path_order_without_packages_or_tests(tmp_path):
    for rel, text in {"b.py": "B" * 3000, "a/z.py": "Z" * 3000, "site-packages/p.py": "P", "test/t.py": "T",
                      "a/tests/u.py": "U", "c.txt": "C"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    c = lm.stdlib_corpus(tmp_path)
    assert c.data.tobytes() == b"Z" * 3000 + b"\n" + b"B" * 3000  # "a/z.py" sorts before "b.py"
    assert "(2 files)" in c.source
    with pytest.raises(DataFileError, match="no .py files"):
        lm.stdlib_corpus(tmp_path / "a" / "tests" / "none")


def test_lm_family_script_writes_curves_once_and_reads_them_back(tmp_path, corpus):
    """The script's training half: six curves in the shared curves' format, whose logged rates are
    the family's schedules; a second run trains nothing; another peak writes new files beside the
    old ones, which stay as they were."""
    src = tmp_path / "corpus.txt"
    src.write_bytes(corpus.data.tobytes())
    script = str(ROOT / "experiments" / "fit_lm_family.py")
    args = [sys.executable, script, "--quick", "--steps", "200", "--train-only", "--no-progress", "--corpus", str(src),
            "--threads", "1", "--out", str(tmp_path / "o")]  # one thread: beside the other test workers
    first = subprocess.run(args, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "training seed 0" in first.stdout
    paths = sorted((tmp_path / "o" / "curves").glob("*.csv"))
    assert len(paths) == 6
    wsd = next(p for p in paths if p.name.startswith("wsd-lin0.2_"))
    assert list(pd.read_csv(wsd).columns) == ["step", "lr", "loss"]
    c = load_curve(wsd)
    lr = schedules.wsd(200, 3e-3, 0.2, warmup_steps=2)
    np.testing.assert_array_equal(c.step, np.arange(10, 201, 10))
    np.testing.assert_allclose(c.lr, np.r_[lr, lr[-1]][c.step], rtol=1e-12)
    before = {p: p.read_bytes() for p in paths}
    again = subprocess.run(args, capture_output=True, text=True)
    assert again.returncode == 0 and "training seed" not in again.stdout
    hot = subprocess.run(args + ["--lr", "1e-3"], capture_output=True, text=True)
    assert hot.returncode == 0 and "training seed 0" in hot.stdout
    two = subprocess.run([*args[:-4], "--threads", "2", *args[-2:]], capture_output=True, text=True)
    assert two.returncode == 0 and "training seed 0" in two.stdout  # another setting: trained into new files
    assert len(list((tmp_path / "o" / "curves").glob("*.csv"))) == 18
    assert all(p.read_bytes() == b for p, b in before.items())
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "o" / "curves").glob("manifest_seed0_*.json")]
    assert sorted((m["peak_lr"], m["config"]["threads"]) for m in manifests) == [(0.001, 1), (0.003, 1), (0.003, 2)]
    assert all(m["corpus_sha256"] == corpus.sha256 for m in manifests)
    back = subprocess.run(args, capture_output=True, text=True)  # the first peak again: read back, not trained
    assert back.returncode == 0 and "training seed" not in back.stdout
    wsd.write_text("step,lr,loss\n10,0.003,oops\n")  # a curve damaged after it was written: refused, kept
    broken = subprocess.run(args, capture_output=True, text=True)
    assert broken.returncode == 2 and wsd.name in broken.stderr and "manifest_seed0_" in broken.stderr
    assert "training seed" not in broken.stdout and wsd.read_text() == "step,lr,loss\n10,0.003,oops\n"
    bad = subprocess.run([sys.executable, script, "--lr", "-1", "--out", str(tmp_path / "bad")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "--lr -1.0" in bad.stderr and not (tmp_path / "bad").exists()
    bad = subprocess.run([sys.executable, script, "--corpus", str(tmp_path / "none.txt"), "--out",
                          str(tmp_path / "bad")], capture_output=True, text=True)
    assert bad.returncode == 2 and "none.txt: cannot read it" in bad.stderr
    bad = subprocess.run([sys.executable, script, "--workers", "0", "--out", str(tmp_path / "bad")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "--workers 0" in bad.stderr and not (tmp_path / "bad").exists()
    bad = subprocess.run([sys.executable, script, "--device", "tpu", "--out", str(tmp_path / "bad")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "device='tpu'" in bad.stderr and not (tmp_path / "bad").exists()
    if not torch.cuda.is_available():  # a GPU the machine lacks: refused when the first seed would train, nothing written
        gone = subprocess.run(args + ["--device", "cuda", "--lr", "2e-3"], capture_output=True, text=True)
        assert gone.returncode == 2 and "torch sees 0 CUDA device" in gone.stderr and "Traceback" not in gone.stderr
        assert len(list((tmp_path / "o" / "curves").glob("*.csv"))) == 18


@pytest.mark.slow
def test_lm_family_script_fits_both_protocols_into_strict_json(tmp_path, corpus):
    """The whole script on a small family (1,000 steps at width 32, two laws): both protocols' rows,
    --law auto on single-cosine, the paired comparison, strict JSON, the family's final losses."""
    src = tmp_path / "corpus.txt"
    src.write_bytes(corpus.data.tobytes())
    out = tmp_path / "o"
    run = subprocess.run([sys.executable, str(ROOT / "experiments" / "fit_lm_family.py"), "--quick", "--steps", "1000",
                          "--no-progress", "--laws", "exp-steps,momentum0.99", "--corpus", str(src), "--threads", "1",
                          "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr

    doc = strict_json((out / "lm_family.json").read_text())
    assert [(r["protocol"], r["law"]) for r in doc["rows"]] == [
        ("single-cosine", "kernel(exp, steps)"), ("single-cosine", "momentum(lambda=0.99)"),
        ("single-cosine", "auto (rolling origin)"), ("loso", "kernel(exp, steps)"), ("loso", "momentum(lambda=0.99)")]
    assert [len(r["splits"]) for r in doc["rows"]] == [4, 4, 4, 6, 6]
    assert doc["family"]["corpus_sha256"] == corpus.sha256 and doc["skip_steps"] == 25 and doc["smooth_steps"] == 29
    c = load_curve(next((out / "curves").glob("constant_seed0_*.csv")))  # 100 rows: the last 5% is 5
    assert doc["family"]["constant_final"] == pytest.approx(np.mean(c.loss[-5:]), rel=1e-12)
    bad = subprocess.run([sys.executable, str(ROOT / "experiments" / "fit_lm_family.py"), "--laws", "nope",
                          "--out", str(tmp_path / "bad")], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown ['nope']" in bad.stderr and not (tmp_path / "bad").exists()


    # --auto-loso on the same folder: the curves and the laws' rows are read back, and loso gains the
    # row of --law auto chosen in each split from its five fitted curves alone (in two worker
    # processes). One split is recomputed here in this process from the CSV files: the same choice
    # and the same held-out RMSE, so the row is auto on the right curves and the worker count
    # changes nothing.
    again = subprocess.run([sys.executable, str(ROOT / "experiments" / "fit_lm_family.py"), "--quick", "--steps", "1000",
                            "--no-progress", "--laws", "exp-steps,momentum0.99", "--corpus", str(src), "--threads", "1",
                            "--auto-loso", "--workers", "2", "--out", str(out)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "training seed" not in again.stdout
    doc = strict_json((out / "lm_family.json").read_text())
    rows = {(r["protocol"], r["law"]): r for r in doc["rows"]}
    assert rows[("loso", "kernel(exp, steps)")]["read_back"] and rows[("loso", "momentum(lambda=0.99)")]["read_back"]
    auto = rows[("loso", "auto (leave one out)")]
    names = ["constant", "cos10", "wsd-lin0.1", "wsd-lin0.2", "wsd-lin0.4", "wsd-sqrt0.2"]
    assert [s["held_out"] for s in auto["splits"]] == [f"{k}_seed0" for k in names]

    from dataclasses import replace

    from sde_scales.fitting import score
    from sde_scales.fitting.average import predict_any
    from sde_scales.fitting.report import fit_auto

    def curve(k):
        lr = {"constant": schedules.constant(1000, 3e-3, warmup_steps=10),
              "cos10": schedules.cosine(1000, 3e-3, 0.1, warmup_steps=10),
              "wsd-lin0.1": schedules.wsd(1000, 3e-3, 0.1, warmup_steps=10),
              "wsd-lin0.2": schedules.wsd(1000, 3e-3, 0.2, warmup_steps=10),
              "wsd-lin0.4": schedules.wsd(1000, 3e-3, 0.4, warmup_steps=10),
              "wsd-sqrt0.2": schedules.wsd(1000, 3e-3, 0.2, decay="sqrt", warmup_steps=10)}[k]
        c = load_curve(next((out / "curves").glob(f"{k}_seed0_*.csv")))
        return replace(c.with_schedule(np.r_[lr, lr[-1]]), name=f"{k}_seed0")

    held = curve("wsd-lin0.2")
    choice, fitted = fit_auto([curve(k) for k in names if k != "wsd-lin0.2"], skip_steps=25, smooth_steps=29)
    split = next(s for s in auto["splits"] if s["held_out"] == "wsd-lin0.2_seed0")
    assert split["chosen"] == choice["chosen"] and split["decided"] == choice["decided"]
    assert split["rmse"] == pytest.approx(score(held, predict_any(fitted, held), skip_steps=25, smooth_steps=29)["rmse"],
                                          rel=1e-9)


def test_the_thread_count_is_pinned_while_training_and_restored(corpus):
    """The numbers depend on torch's thread count (its reductions are split by it), so training
    pins it: the caller's setting changes nothing, and is back afterwards."""
    sch = {"a": schedules.constant(30, 3e-3, warmup_steps=3)}
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = lm.train_family(corpus, sch, TINY)["a"]["loss"]
        assert torch.get_num_threads() == 1
        torch.set_num_threads(3)
        three = lm.train_family(corpus, sch, TINY)["a"]["loss"]
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one, three)
    with pytest.raises(InvalidArgumentError, match="threads=0"):
        lm.LMConfig(threads=0)


def test_the_model_is_a_function_of_its_seed_and_leaves_torch_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = lm.tiny_lm(TINY)
    assert torch.equal(torch.rand(3), expected)  # the global stream went on as if no model were made
    b = lm.tiny_lm(TINY)
    c = lm.tiny_lm(lm.LMConfig(d_model=16, n_layer=1, n_head=2, context=16, batch=4, log_every=5, seed=4))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.state_dict()["pos"], c.state_dict()["pos"])
