"""Run configurations are validated when they are made, and what is stored is what ran: bad values
get the library's errors (exit 2 on the command line, no traceback)."""

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sde_scales.errors import InvalidArgumentError  # noqa: E402
from sde_scales.train import RunConfig, data, make_dataset, train_stack  # noqa: E402
from sde_scales.train.sweep import load_grid_toml  # noqa: E402


@pytest.mark.parametrize("kw, msg", [
    (dict(n_train=0), "n_train=0"),
    (dict(batch_size=512, n_train=256), "batch_size=512 exceeds n_train=256"),
    (dict(width="16"), "width='16'"),
    (dict(width=64.5), "width=64.5"),
    (dict(d_in=0), "d_in=0"),
    (dict(lr=-1.0), "lr=-1.0"),
    (dict(lr=float("nan")), "lr=nan"),
    (dict(epochs=0), "epochs=0"),
    (dict(epochs=1e-3, n_train=1024, batch_size=128), "is 0.008 steps, which rounds to none"),  # was one step
    (dict(schedule="linear"), "schedule='linear'"),
    (dict(schedule="step"), "schedule 'step'"),  # needs its milestones
    (dict(dataset="imagenet"), "dataset='imagenet'"),
    (dict(seed=-1), "seed=-1"),
    (dict(eval_every=-1), "eval_every=-1"),
    (dict(base_width=-2), "base_width=-2"),
    (dict(base_width=8.5), "base_width=8.5"),
    (dict(precision="fp16"), "precision='fp16'"),
    (dict(compile="yes"), "compile='yes'"),
])
def test_bad_run_configs_are_refused(kw, msg):
    with pytest.raises(InvalidArgumentError, match=msg.replace("(", r"\(")):
        RunConfig(**kw)


def test_steps_come_from_the_data_loaded():
    """Runs that say n_train=512 cannot train on 256 samples: epochs and the stored row would lie."""
    ds = make_dataset("synthetic", n_train=256, d_in=16)
    with pytest.raises(InvalidArgumentError, match="256 training samples.*n_train=512"):
        train_stack([RunConfig(width=16, n_train=512, d_in=16, batch_size=32)], ds)
    ok = train_stack([RunConfig(width=16, n_train=256, d_in=16, batch_size=32, epochs=1, log_every=4)], ds)[0]
    assert ok.config.n_train == 256 and max(ok.rows["step"]) == 256 // 32


def _write(tmp_path, text):
    p = tmp_path / "grid.toml"
    p.write_text(text)
    return str(p)


def test_toml_grid_is_typed(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r'widths = .16.; give a non-empty list'):
        load_grid_toml(_write(tmp_path, 'widths = "16"\n'))
    with pytest.raises(InvalidArgumentError, match=r"unknown key\(s\) \['widht'\]"):
        load_grid_toml(_write(tmp_path, "widht = [16]\n"))
    doc = load_grid_toml(_write(tmp_path, 'widths = [16, 32]\nlrs = [0.1]\nschedule = "wsd"\n'
                                          '[schedule_kw]\nfraction = 0.3\n'))
    assert doc["widths"] == [16, 32] and doc["schedule_kw"] == (("fraction", 0.3),)


@pytest.mark.parametrize("argv, msg", [
    (["sweep", "--d-in", "0", "--widths", "16", "--out", "{tmp}/s"], "d_in=0"),
    (["sweep", "--executor", "process", "--workers", "0", "--widths", "16", "--out", "{tmp}/s"],
     "--workers 0; give at least 1"),
    # another executor's options were ignored: --scheduler tcp://... trained in this process
    (["sweep", "--workers", "4", "--widths", "16", "--out", "{tmp}/s"], "--workers 4 is for --executor process or dask"),
    (["sweep", "--executor", "process", "--scheduler", "tcp://10.0.0.1:8786", "--widths", "16", "--out", "{tmp}/s"],
     "is for --executor dask"),
    (["sweep", "--widths", "16", "--out", "{tmp}/afile"], "is a file"),
    (["sweep", "--widths", "16", "--out", "{tmp}/afile/s"], "a part of the path before it is a file"),
    # a file where a folder belongs: tracebacks before (NotADirectoryError, FileExistsError)
    (["verify", "--quick", "--kinds", "training", "--train-dir", "{tmp}/afile"], "--train-dir"),
    (["sweep", "--dataset", "cifar10", "--widths", "16", "--data-root", "{tmp}/afile", "--out", "{tmp}/s"],
     "the data root"),
    # not an address: a dask traceback before (an unreachable one takes dask's 30 s timeout to say the same)
    (["sweep", "--widths", "16", "--executor", "dask", "--scheduler", "foo", "--out", "{tmp}/s"],
     "--scheduler foo: cannot connect to a dask scheduler"),
    (["sweep", "--batch-size", "512", "--n-train", "256", "--widths", "16", "--out", "{tmp}/s"], "exceeds n_train"),
    (["sweep", "--config", "{tmp}/bad.toml", "--out", "{tmp}/s"], "unknown key"),
    (["coordcheck", "--param", "mup", "--steps", "0"], "--steps 0"),
    (["coordcheck", "--param", "mup", "--lr", "-1"], "--lr -1"),
    # each bad flag named with its rule, not every flag listed with every rule
    (["coordcheck", "--param", "mup", "--lr", "inf"], "--lr inf (give a finite rate > 0)"),
    (["coordcheck", "--param", "mup", "--seeds", "2", "--widths", "0,8,16"],
     "--seeds 2 (give at least 3, for an interval); --widths [0, 8, 16] (give at least 3 widths, each at least 1)"),
    (["coordcheck", "--param", "mup", "--base-width", "-4"], "--base-width -4"),
    (["coordcheck", "--param", "mup", "--depth", "0"], "--depth 0"),
    (["coordcheck", "--param", "mup", "--widths", "16,8,16"], "lists a width twice"),
    (["coordcheck", "--param", "mup", "--device", "tpu"], "device='tpu'"),  # a torch traceback before
    # SP has no readout multiplier: the unchanged network was checked under the name of the planted bug
    (["coordcheck", "--param", "sp", "--no-output-multiplier"], "--no-output-multiplier removes the readout "
     "multiplier, and SP has none"),
    # finite in float64, infinite in the networks' float32
    (["coordcheck", "--param", "mup", "--lr", "1e300", "--widths", "8,16,32", "--seeds", "3"], "lr=1e+300"),
    # a step that overflows: no exponent of the change exists (it was a traceback, then a message about runs)
    (["coordcheck", "--param", "mup", "--lr", "1e20", "--widths", "8,16,32", "--seeds", "3"], "networks of width 8 diverged"),
    (["sweep", "--widths", "16", "--lrs", "1e300", "--out", "{tmp}/s"], "lr=1e+300"),
    # a width whose weights no machine holds: torch's allocator traceback before (946 GiB here)
    (["sweep", "--widths", "1000000000", "--lrs", "0.1", "--n-train", "256", "--batch-size", "64", "--d-in", "32",
      "--out", "{tmp}/s"], "1 network(s) of width 1000000000 (42,000,000,000 weights) need"),
    (["coordcheck", "--param", "mup", "--widths", "16,32,1000000000"], "network(s) of width 1000000000"),
    # it also printed "sweep stopped: 0 runs ... run the same command again to resume"
    (["sweep", "--widths", "16", "--device", "tpu", "--out", "{tmp}/s"], "device='tpu'"),
    (["sweep", "--widths", "16", "--base-width", "-1", "--out", "{tmp}/s"], "base_width=-1"),
    (["sweep", "--widths", "16", "--checkpoint-every", "-1", "--out", "{tmp}/s"], "checkpoint_every=-1"),
    (["sweep", "--widths", "16", "--checkpoint-every", "inf", "--out", "{tmp}/s"], "checkpoint_every=inf"),
])
def test_cli_bad_flags_exit_2_without_traceback(tmp_path, argv, msg):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "bad.toml").write_text("colour = 1\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    res = subprocess.run([sys.executable, "-m", "sde_scales.cli", *args, "--no-progress"] if argv[0] == "sweep"
                         else [sys.executable, "-m", "sde_scales.cli", *args], capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert msg in res.stderr and "Traceback" not in res.stderr and "sweep stopped" not in res.stderr
    assert not (tmp_path / "s" / "runs").exists() or not any((tmp_path / "s" / "runs").iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_coordcheck_on_cuda_without_a_gpu_exits_2():
    """It was torch's AssertionError traceback ("Torch not compiled with CUDA enabled")."""
    res = subprocess.run([sys.executable, "-m", "sde_scales.cli", "coordcheck", "--param", "mup", "--device", "cuda"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "no CUDA device is available" in res.stderr and "Traceback" not in res.stderr


def test_stored_row_equals_what_ran(tmp_path):
    from sde_scales.train.store import RunStore
    from sde_scales.train.sweep import run_sweep
    from sde_scales.train.trainer import config_grid

    cfgs = config_grid(["mup"], [16], [0.1], [0], dataset="synthetic", d_in=16, n_train=256, batch_size=32,
                       epochs=1, log_every=4)
    run_sweep(cfgs, str(tmp_path), device="cpu", progress=False)
    row = RunStore(tmp_path).runs().iloc[0]
    for k in ("n_train", "d_in", "batch_size", "width"):
        assert row[k] == getattr(cfgs[0], k)
    traj = RunStore(tmp_path).trajectories()
    assert traj.step.max() == cfgs[0].n_steps() and np.isclose(traj.epoch.max(), 1.0)


def test_coordcheck_takes_widths_in_any_order(tmp_path):
    """Widths typed out of order were refused ("must be ... increasing"): an exponent needs them in
    order, not typed in order, so the command sorts them and says which it used."""
    out = tmp_path / "cc.json"
    res = subprocess.run([sys.executable, "-m", "sde_scales.cli", "coordcheck", "--param", "mup", "--widths",
                          "64,16,32", "--seeds", "3", "--steps", "1", "--json", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "widths [16, 32, 64]" in res.stdout
    assert json.loads(out.read_text())["widths"] == [16, 32, 64]


@pytest.mark.parametrize("steps", [1, 2])
def test_coordcheck_gives_the_abc_tables_exponent_of_what_it_measured(tmp_path, steps):
    """SP with one hidden layer: after one step the table's first-step exponent of the input layer
    (n^-1/2) beside the measurement, in the JSON and as a dashed line of the plot, and none for the
    output (first order in the rate, n^1, is only a lower bound where SP is unstable); after two,
    none (SP is unstable: past its first step no order in n holds), null in the JSON, with the
    reason printed. Before, the input row said n^0 after any number of steps."""
    out, png = tmp_path / "cc.json", tmp_path / "cc.png"
    res = subprocess.run([sys.executable, "-m", "sde_scales.cli", "coordcheck", "--param", "sp", "--widths",
                          "16,32,64,128", "--seeds", "3", "--steps", str(steps), "--json", str(out), "--plot",
                          str(png)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    rows = json.loads(out.read_text())["layers"]
    assert [r["theory_change_exponent"] for r in rows] == (["-1/2", None] if steps == 1 else [None, None])
    assert [r["theory_init_exponent"] for r in rows] == ["0", "0"]
    assert ("after 2 steps, since SP is unstable" in res.stdout) is (steps == 2)
    # four widths give no tolerance for next-order terms here, so no agreement is judged
    assert [r["theory_agrees"] for r in rows] == [None, None]
    assert png.stat().st_size > 10_000


def test_coordcheck_says_where_the_measurement_is_not_the_tables_order(tmp_path):
    """NTK under Adam, two hidden layers, lr 0.01, one step: the hidden layer's own update grows
    like n^1/2 (the table), but at widths up to 1024 it is a tenth of the Theta(1) change carried up
    from the input layer, and the fitted exponent is about 0.07 (benchmarks/RESULTS.md, "The abc
    table against one trained step"). The measurement alone PASSes the layer's muP desideratum at
    these widths; the first step's order is exact, so the layer is held back as INCONCLUSIVE (not
    Theta(1) as n grows), the command says why, and the JSON keeps both verdicts with
    theory_agrees false."""
    out = tmp_path / "cc.json"
    res = subprocess.run([sys.executable, "-m", "sde_scales.cli", "coordcheck", "--param", "ntk", "--optimizer",
                          "adam", "--depth", "2", "--lr", "0.01", "--steps", "1", "--json", str(out), "--strict"],
                         capture_output=True, text=True)
    # the check ran (no error on standard error), and --strict exits 1 on an INCONCLUSIVE overall
    # verdict as on a FAIL: "exit 1 unless the overall verdict is PASS"
    assert res.returncode == 1 and "error" not in res.stderr, res.stderr
    rows = json.loads(out.read_text())["layers"]
    assert [r["theory_change_exponent"] for r in rows] == ["0", "1/2", None]
    assert [r["theory_agrees"] for r in rows] == [True, False, None]
    assert rows[1]["measured_verdict"] == "PASS" and rows[1]["verdict"] == "INCONCLUSIVE"
    assert rows[0]["verdict"] == rows[0]["measured_verdict"] == "PASS"
    assert "layer 2 (hidden): init: PASS" in res.stdout
    assert "but the abc table's exact order of the first step is n^1/2, outside the measurement" in res.stdout
    assert json.loads(out.read_text())["overall"] == "INCONCLUSIVE"


def test_a_coordinate_check_held_to_an_exact_table_holds_back_a_pass_it_contradicts():
    """CoordCheck.hold_to_table, what the command uses after one step: two layers that PASSed
    with measured change exponents near 0 (exact values n^0.02 and n^0.05 on five widths, whose
    Student t interval is a point, tolerance 0.15); a table of 0 and 1/2. The layer the table puts
    at n^1/2 is INCONCLUSIVE when the table is exact and keeps its PASS otherwise; the other layer
    is untouched; the measurement's verdicts are kept."""
    from sde_scales.rates import Verdict, exponent_from_values
    from sde_scales.train.coordcheck import CoordCheck

    x = np.array([64.0, 128, 256, 512, 1024])

    def made():
        cc = CoordCheck(list(x), [0, 1], {}, {})
        for l, e in ((0, 0.02), (1, 0.05)):
            cc.delta_exp[l] = exponent_from_values(x, x**e)
            cc.tolerances[l] = (0.15, 0.15)
            cc.verdicts[l] = Verdict.PASS
            cc.reasons[l] = "init: PASS: fine; change: PASS: fine"
        return cc

    cc = made()
    agrees = cc.hold_to_table({0: "0", 1: "1/2"}, exact=True)
    assert agrees == {0: True, 1: False}
    assert cc.verdicts == {0: Verdict.PASS, 1: Verdict.INCONCLUSIVE}
    assert cc.measured_verdicts == {0: Verdict.PASS, 1: Verdict.PASS}
    assert cc.reasons[1].startswith("init: PASS: fine; change: PASS at these widths (+0.05, tolerance 0.15)")
    assert "exact order of the first step is n^1/2" in cc.reasons[1] and cc.overall is Verdict.INCONCLUSIVE
    later = made()
    assert later.hold_to_table({0: "0", 1: "1/2"}, exact=False) == {0: True, 1: False}
    assert later.verdicts == {0: Verdict.PASS, 1: Verdict.PASS} and later.overall is Verdict.PASS
    assert made().hold_to_table({0: None, 1: None}, exact=True) == {0: None, 1: None}
    # the init part of a reason is kept whole, even where its own text holds "; change: " (it was cut there)
    odd = made()
    odd.init_reasons[1] = "init: PASS: fine; change: of units, none"
    odd.reasons[1] = odd.init_reasons[1] + "; change: PASS: fine"
    odd.hold_to_table({0: "0", 1: "1/2"}, exact=True)
    assert odd.reasons[1].startswith("init: PASS: fine; change: of units, none; change: PASS at these widths")


def test_coordcheck_shows_progress_on_a_terminal_and_its_numbers_do_not_change(monkeypatch):
    """The check's bar ticks once per width on a terminal's standard error (nothing elsewhere), and a
    bar shown or not, the measured sizes are the same."""
    import io

    from sde_scales.parametrization import by_name
    from sde_scales.train.coordcheck import coord_check

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    p = by_name("mup", L=1, optimizer="sgd")
    quiet = coord_check(p, [8, 16, 32], n_seeds=3, steps=1, progress=False)
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    shown = coord_check(p, [8, 16, 32], n_seeds=3, steps=1, progress=True)
    monkeypatch.undo()
    text = term.getvalue()
    assert "coordinate check" in text and "56/56" in text and "n = 32" in text  # 8 + 16 + 32 width units
    for l in quiet.layers:
        assert np.array_equal(quiet.act[l], shown.act[l]) and np.array_equal(quiet.delta[l], shown.delta[l])
    piped = Terminal()
    piped.isatty = lambda: False
    monkeypatch.setattr(sys, "stderr", piped)
    coord_check(p, [8, 16, 32], n_seeds=3, steps=1, progress=True)
    monkeypatch.undo()
    assert piped.getvalue() == ""


def test_python_api_refuses_widths_and_seeds_that_are_not_whole():
    """config_grid and coord_check truncated a width of 32.5 to 32 (and a seed of 0.7 to 0)."""
    from sde_scales.parametrization import by_name
    from sde_scales.train.coordcheck import coord_check
    from sde_scales.train.trainer import config_grid

    with pytest.raises(InvalidArgumentError, match="width=32.5"):
        config_grid(["mup"], [32.5], [0.1], [0])
    with pytest.raises(InvalidArgumentError, match="seed=0.7"):
        config_grid(["mup"], [32], [0.1], [0.7])
    assert [(c.width, c.seed) for c in config_grid(["mup"], [np.int64(32), 64.0], [0.1], [1.0])] == [(32, 1), (64, 1)]
    with pytest.raises(InvalidArgumentError, match="whole widths"):
        coord_check(by_name("mup", L=1, optimizer="sgd"), [16, 32.5, 64], n_seeds=3)


@pytest.mark.parametrize("call, msg", [
    # make_dataset read n_train=0 as "the default" (8,192 samples) and a negative count trimmed the
    # split from its end; the builders took d_in=0 (NaN class means), one class, fractional sizes
    (lambda: make_dataset("mixture", n_train=0, d_in=8), "n_train=0"),
    (lambda: make_dataset("synthetic", n_train=-3, d_in=8), "n_train=-3"),
    (lambda: make_dataset("powerlaw", n_train=64.5, d_in=8), "n_train=64.5"),
    (lambda: make_dataset("imagenet", n_train=-1), "dataset 'imagenet'"),
    (lambda: data.teacher_student(n_train=16, n_test=-5, d_in=8), "n_test=-5"),
    (lambda: data.teacher_student(n_train=16, n_test=4, d_in=8, n_classes=1), "n_classes=1"),
    (lambda: data.gaussian_mixture(n_train=16, n_test=4, d_in=0), "d_in=0"),
    (lambda: data.gaussian_mixture(n_train=16, n_test=4, d_in=8, separation=float("nan")), "separation=nan"),
    (lambda: data.powerlaw_features(n_train=16, n_test=4, d_in=8, n_features=2.5), "n_features=2.5"),
    (lambda: data.load_cifar10("/nonexistent", download=False, n_train=-10), "n_train=-10"),
])
def test_data_builders_refuse_sizes_that_are_not_counts(call, msg):
    with pytest.raises(InvalidArgumentError, match=msg):
        call()


def test_data_builders_take_whole_floats_and_give_the_sizes_asked():
    ds = make_dataset("mixture", n_train=64.0, d_in=8)
    assert (ds.n_train, ds.d_in) == (64, 8)
    x, y, xt, yt = data.teacher_student(n_train=16, n_test=0, d_in=8)
    assert x.shape == (16, 8) and xt.shape == (0, 8)
