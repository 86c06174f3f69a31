"""The claims registry and `sde-scales verify`: evidence per claim, strict JSON, exit codes,
mutations of the simulated models and of the trained networks with the verdicts they must get."""

import json
import subprocess
import sys
from dataclasses import replace

import numba
import numpy as np
import pytest
from conftest import strict_json

from sde_scales.models import simulate_widths
from sde_scales.rates import RateKind, Verdict, exponent_difference, fluctuation_exponent, verdict
from theory import checks
from theory.claims import CheckKind, Claim, Evidence, Group
from theory.paper import CLAIMS, claims_by_id
from theory.verify import claim_holds, judge, run_claims

EVIDENCE_KEYS = {"kind", "measured_exponent", "ci", "verdict", "reason", "rule", "tolerance", "widths",
                 "n_replicas", "model", "allowed_exponents"}
CLAIM_KEYS = {"id", "statement", "source", "group", "predicted", "evidence"}


def test_claims_are_complete_records():
    ids = [c.id for c in CLAIMS]
    assert len(ids) == len(set(ids))
    for c in CLAIMS:
        assert c.variable and c.source and c.evidence and isinstance(c.group, Group)
        if c.kind is RateKind.BOUND:  # a bound on a statistic: no limit, the bound is stated
            assert c.predicted.endswith(f"<= {c.exponent:g}")
            continue
        assert c.limit_point in ("oo", "0")
        assert c.predicted.endswith(f"{c.variable} -> {c.limit_point}")
    by = claims_by_id()
    # Theorem 4.1 has training evidence on both readings and for the separation
    for cid in ("thm4.1-macro-fluct", "thm4.1-micro-fluct", "thm4.1-macro-bias", "thm4.1-micro-bias",
                "thm4.1-separation"):
        assert CheckKind.TRAINING in by[cid].kinds
    assert by["thm4.1-separation"].exponent == -0.5 and by["thm4.1-separation"].kind is RateKind.SEPARATION
    assert by["assumption3.3-input-init"].group is Group.CONSISTENCY
    assert by["thm4.1-micro-bias"].group is Group.READING
    with pytest.raises(ValueError, match="repeat"):
        replace(by["thm4.1-macro-fluct"], evidence=by["thm4.1-macro-fluct"].evidence[:1] * 2)


def test_experiments_read_claims_from_theory():
    """No experiment re-types a claim's exponent or kind: they import the records."""
    from pathlib import Path

    src = (Path(__file__).parents[1] / "experiments" / "width_rates.py").read_text()
    assert "claims_by_id" in src and "RateKind." not in src


# ----------------------------------------------------------------------------- simulation mutations
@numba.njit
def _no_drift(theta, M, q):
    return 0.0


@numba.njit
def _tanh(theta, q):
    return np.tanh(theta)


WIDE = (64, 128, 256, 512, 1024, 2048, 4096)


def _sim_verdicts(base):
    """Macro O(n^-1) and micro Theta(n^-1/2) verdicts on a width model: 1,000 replicas at widths
    64..4096 and EM dt = 0.01, the size of `verify --quick`."""
    s = simulate_widths(base, WIDE, 1000, 0.01, seed=3)
    macro = verdict(RateKind.BIG_O, -1.0, fluctuation_exponent(s.widths, s.macro, seed=0))
    micro = verdict(RateKind.THETA, -0.5, fluctuation_exponent(s.widths, s.micro, seed=0))
    sep = verdict(RateKind.SEPARATION, -0.5, exponent_difference(s.widths, s.macro, s.micro, seed=0))
    return macro.verdict, micro.verdict, sep.verdict


@pytest.mark.parametrize("name, change, expected", [
    # the construction as used: both rates recovered
    ("as built", {}, (Verdict.PASS, Verdict.PASS, Verdict.PASS)),
    # noise and spread n^0: macro spread ~ n^-1/2 (FAIL), micro ~ n^0 (FAIL); the gap of 1/2 remains
    ("noise n^0", {"beta": 0.0}, (Verdict.FAIL, Verdict.FAIL, Verdict.PASS)),
    # noise n^-1: macro ~ n^-3/2 (still O(n^-1): PASS), micro ~ n^-1 (FAIL)
    ("noise n^-1", {"beta": 1.0}, (Verdict.PASS, Verdict.FAIL, Verdict.PASS)),
    # drift off: the same verdicts as with the drift: the rows restate the construction
    ("drift off", {"F": _no_drift, "phi": _tanh, "coupling": None}, (Verdict.PASS, Verdict.PASS, Verdict.PASS)),
])
def test_width_model_mutations_get_their_stated_verdicts(name, change, expected):
    base = replace(checks.WIDTH_BASE, **change)
    assert _sim_verdicts(base) == expected, name


def test_the_registry_separation_row_measures_macro_less_micro():
    """The separation claim's simulation row, run through the registry as `verify` runs it: the
    exponent of std M over std theta_1, which the width model builds in as -1/2 (macro n^-1,
    micro n^-1/2), recovered and PASSed. The test above judges exponent_difference on a sample
    of its own; this one checks the claim's own check, in which the two quantities swapped
    (+1/2) had passed every test."""
    claim = claims_by_id()["thm4.1-separation"]
    (row,) = run_claims([claim], checks.Settings(quick=True, seed=0), progress=False, kinds=("simulation",))
    lo, hi = row.measurement.estimate.ci
    assert lo < -0.5 < hi and hi < -0.4, (lo, hi)
    assert row.verdict is Verdict.PASS


# ----------------------------------------------------------------------------- training evidence
TINY = dict(widths=(32, 64, 128, 256), seeds=12, steps=80, lr=0.5, params=("mup", "sp", "mup-no-readout-mult"),
            d_in=16, n_train=512, batch_size=32, depth=1)


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    from sde_scales.train.sweep import run_sweep

    root = tmp_path_factory.mktemp("verify-store")
    run_sweep(checks.training_configs(TINY), str(root), device="cpu", progress=False)
    return str(root)


def _rows(store, claim_id, **kw):
    checks.training_data.cache_clear()
    claim = claims_by_id()[claim_id]
    return run_claims([claim], checks.Settings(quick=True, store=store, **kw), progress=False, kinds=("training",))


def test_training_rows_from_a_store(tiny_store):
    rows = _rows(tiny_store, "thm4.1-macro-fluct")
    prim = [r for r in rows if r.role == "primary"]
    assert len(prim) == 1 and prim[0].param == "mup" and prim[0].variable == "eval_loss"
    est = prim[0].measurement.estimate
    assert list(est.x) == [32, 64, 128, 256] and est.n_replicas == 12
    extra = prim[0].measurement.extra
    assert len(extra["progress"]["fraction_reached"]) == 4
    assert "of its way to its plateau across n = 32..256" in prim[0].reason  # verify states the fraction
    assert set(extra["exponent_over_training"]) == {"0.25", "0.5", "1.0"}
    params = {r.param for r in rows}
    assert {"mup", "sp"} <= params
    assert any(r.role == "control" and r.param == "sp" for r in rows)


def test_training_bias_rows_read_the_differences_of_successive_means(tiny_store):
    """A trained network's limit is not known: the bias rows judge the differences of successive
    widths' seed means (no assumed 1/n), recomputed here by hand from the store."""
    from sde_scales.analysis.width import width_samples
    from sde_scales.train.store import RunStore

    rows = _rows(tiny_store, "thm4.1-macro-bias")
    prim = [r for r in rows if r.role == "primary"][0]
    est = prim.measurement.estimate
    assert list(est.x) == [32, 64, 128]  # four widths, three differences
    assert any("differences of successive widths' means" in n for n in est.notes)
    runs, traj = RunStore.existing(tiny_store, need_runs=True).read()
    ws = width_samples(runs, traj, "eval_loss", param="mup", lr=checks.judged_lr(runs, "mup"))
    m = np.array([np.mean(s) for s in ws.samples])
    np.testing.assert_allclose(est.values, np.abs(m[:-1] - m[1:]), rtol=1e-9)


def test_output_multiplier_removed_is_caught(tiny_store):
    """muP without its readout multiplier at the same learning rate: the output grows with width and
    runs diverge; the rows for it never PASS and say why."""
    rows = _rows(tiny_store, "thm4.1-macro-fluct")
    mut = [r for r in rows if r.param == "mup-no-readout-mult"]
    assert mut and all(r.verdict is not Verdict.PASS for r in mut)
    assert any("diverged" in r.reason for r in mut)
    mup = [r for r in rows if r.param == "mup"]
    assert mup and all("diverged" not in r.reason for r in mup)


def test_too_short_training_is_inconclusive(tmp_path):
    """A run that has not covered half its way to the plateau gives no verdict, whatever the rate."""
    from sde_scales.train.sweep import run_sweep

    spec = dict(TINY, params=("mup",), steps=2, seeds=10, lr=0.01)
    run_sweep(checks.training_configs(spec), str(tmp_path), device="cpu", progress=False)
    rows = _rows(str(tmp_path), "thm4.1-macro-fluct")
    assert rows and all(r.verdict is Verdict.INCONCLUSIVE for r in rows)
    assert "not trained far enough" in rows[0].reason


def test_rows_that_train_their_own_networks_are_named_with_a_store(tiny_store):
    """With --store the coordinate check still trained its own networks (widths 64..1024, not the
    store's 32..256) while the closing line said "training evidence from STORE" of every row."""
    from theory.verify import trained_here

    rows = _rows(tiny_store, "vlassis-coordinates")
    assert rows and all(r.measurement is None or 64 in r.measurement.estimate.x for r in rows if r.verdict)
    assert trained_here(rows) == ["vlassis-coordinates"]
    assert trained_here(_rows(tiny_store, "thm4.1-macro-fluct")) == []


def test_early_optimum_needs_a_learning_rate_grid(tiny_store):
    rows = _rows(tiny_store, "thm3.1-early-optimum")
    assert rows[0].verdict is Verdict.INCONCLUSIVE and "learning rate" in rows[0].reason


def test_verify_store_cli_strict_json(tiny_store, tmp_path):
    out = tmp_path / "v.json"
    cmd = [sys.executable, "-m", "sde_scales.cli", "verify", "--quick", "--no-progress", "--store", tiny_store,
           "--kinds", "symbolic", "training", "--claims", "thm4.1-macro-fluct", "thm4.1-separation",
           "lemma4.7-const-L", "--json", str(out), "--plots", str(tmp_path / "plots")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    doc = strict_json(text)
    assert [c["id"] for c in doc["claims"]] == ["thm4.1-macro-fluct", "thm4.1-separation", "lemma4.7-const-L"]
    for c in doc["claims"]:
        assert CLAIM_KEYS <= set(c)
        for e in c["evidence"]:
            assert EVIDENCE_KEYS <= set(e)
            assert e["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE", None)
            if e["ci"] is not None:
                assert e["ci"][0] <= e["ci"][1]
            if e["allowed_exponents"] is not None:  # the rate rule's allowed set: it holds the interval
                iv = e["allowed_exponents"]
                assert all(lo <= hi for lo, hi in iv) and e["tolerance"] is not None
                assert any(lo <= e["ci"][0] and e["ci"][1] <= hi for lo, hi in iv)
    train = [e for c in doc["claims"] for e in c["evidence"] if e["kind"] == "training"]
    assert train and all(len(e["widths"]) >= 3 for e in train if e["widths"])
    assert any(e["allowed_exponents"] for e in train)
    assert "== The paper's claims" in res.stdout and "== Other readings" in res.stdout
    figs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert "thm4.1-macro-fluct--training.png" in figs
    # --strict: a claim that does not hold (Lemma 4.7 read with constant L: its symbolic row FAILs, as
    # the run above printed) exits 1, one that holds exits 0. Judged on the symbolic rows alone: the
    # training rows of the run above would only repeat the same 15 s of work for the exit status
    lemma = [e for c in doc["claims"] if c["id"] == "lemma4.7-const-L" for e in c["evidence"] if e["kind"] == "symbolic"]
    assert [e["verdict"] for e in lemma] == ["FAIL"]
    strict = [sys.executable, "-m", "sde_scales.cli", "verify", "--symbolic-only", "--no-progress", "--strict",
              "--claims"]
    assert subprocess.run(strict + ["lemma4.7-const-L"], capture_output=True, text=True).returncode == 1
    assert subprocess.run(strict + ["lemma4.7-small-L"], capture_output=True, text=True).returncode == 0


def test_verify_bad_input_exits_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "sde_scales.cli", "verify", "--claims", "nope"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "unknown claim id" in res.stderr and "--list" in res.stderr
    res = subprocess.run([sys.executable, "-m", "sde_scales.cli", "verify", "--store", str(tmp_path / "none"),
                          "--kinds", "training", "--no-progress"], capture_output=True, text=True)
    assert res.returncode == 2 and "no run store" in res.stderr


def test_simulation_rows_say_what_they_are():
    for cid in ("thm4.1-macro-fluct", "thm4.1-micro-fluct", "thm5.1-delay"):
        what = claims_by_id()[cid].evidence_of(CheckKind.SIMULATION).what
        assert "builds" in what and "check of the model" in what


def test_planted_false_claim_on_the_width_model_fails():
    """Claim Theta(1/n) for the single-weight spread, which is Theta(1/sqrt n): FAIL; the true
    claim PASSes."""
    settings = checks.Settings(quick=True, seed=0)
    ev = (Evidence(CheckKind.SIMULATION, checks.micro_fluctuation),)
    planted = Claim(id="planted", source="test", group=Group.PAPER, statement="", quantity="std theta_1",
                    variable="n", limit_point="oo", exponent=-1.0, kind=RateKind.THETA, reading="fluctuation",
                    evidence=ev)
    true = replace(planted, id="true", exponent=-0.5)
    res = {r.claim.id: r for r in run_claims([planted, true], settings, progress=False)}
    assert res["planted"].verdict is Verdict.FAIL
    assert res["true"].verdict is Verdict.PASS
    assert claim_holds(list(res.values()), true) and not claim_holds(list(res.values()), planted)


def test_extra_condition_overrides_pass_and_inconclusive_overrides_a_rate():
    m = checks.delay_lag(checks.Settings(quick=True))
    claim = claims_by_id()["thm5.1-delay"]
    assert judge(claim, m)[0] is Verdict.PASS
    assert judge(claim, replace(m, extra_fail="lag at zero memory is 0.3"))[0] is Verdict.FAIL
    v, reason, *_ = judge(claim, replace(m, inconclusive="a width was not trained far enough"))
    assert v is Verdict.INCONCLUSIVE and "would give PASS" in reason


def test_early_optimum_training_evidence_from_a_planted_store(tmp_path):
    """A store written through RunStore with a learning-rate grid whose eval loss at a quarter of
    training and at the end is (log eta - log eta*(t))^2 + 1, eta*(t0) and eta*(T) apart by 2/n in
    log, plus seed noise of 1e-6: the check finds |log eta*(t0) - log eta*(T)| ~ n^-1 and PASSes
    O(n^-1); planted apart by a constant, it FAILs."""
    from sde_scales.train.store import RunStore
    from sde_scales.train.trainer import RunConfig, RunOutcome

    def plant(root, shift):
        st = RunStore(root, quiet=True)
        rng = np.random.default_rng(0)
        lrs = [0.05, 0.1, 0.2, 0.4, 0.8]
        for n in (64, 128, 256, 512, 1024):
            for s in range(12):
                for lr in lrs:
                    cfg = RunConfig(width=n, lr=lr, seed=s, d_in=16, n_train=512, batch_size=32, epochs=1.0)
                    rows = {"step": [], "epoch": [], "metric": [], "layer": [], "value": []}
                    for step, centre in ((0, 0.2), (4, 0.2 * np.exp(shift(n))), (16, 0.2)):
                        v = (np.log(lr) - np.log(centre)) ** 2 + 1.0 + 1e-6 * rng.standard_normal()
                        for k, val in (("step", step), ("epoch", step / 16), ("metric", "eval_loss"),
                                       ("layer", -1), ("value", v)):
                            rows[k].append(val)
                    st.write(RunOutcome(cfg, "finished", None, rows, 0.0, {"eval_loss": rows["value"][-1]}))
        return str(root)

    claim = claims_by_id()["thm3.1-early-optimum"]
    for shift, expected in ((lambda n: 2.0 / n, Verdict.PASS), (lambda n: 0.05, Verdict.FAIL)):
        checks.training_data.cache_clear()
        root = plant(tmp_path / f"s{expected.value}", shift)
        rows = run_claims([claim], checks.Settings(quick=True, store=root), progress=False, kinds=("training",))
        assert rows[0].verdict is expected, rows[0].reason
        if expected is Verdict.PASS:
            assert rows[0].measurement.estimate.exponent == pytest.approx(-1.0, abs=0.02)


def test_weight_labels_name_the_layer_of_the_network_they_come_from():
    """Layer 1 is the readout of a one-hidden-layer network and a hidden layer of a deeper one."""
    assert "readout weight" in checks._labels("w1_disp", "fluctuation", 1)
    assert "hidden 1 weight" in checks._labels("w1_disp", "fluctuation", 2)
    assert "input weight" in checks._labels("w0_value_raw", "bias", 2) and "(raw)" in checks._labels(
        "w0_value_raw", "bias", 2)


def test_a_row_without_a_finite_interval_prints_no_nan():
    """The table printed "-0.356 [+nan, +nan]" for a training row whose bootstrap resamples gave no
    value; it prints the exponent and "[no interval]", and the verdict's reason says why, in words."""
    from types import SimpleNamespace

    from sde_scales.rates import ExponentEstimate, RateKind, Verdict, verdict
    from theory.verify import _measured

    def row(exponent, ci):
        est = SimpleNamespace(exponent=exponent, ci=ci)
        return SimpleNamespace(symbolic=None, measurement=SimpleNamespace(estimate=est))

    assert _measured(row(-0.356, (float("nan"), float("nan")))) == "-0.356 [no interval]"
    assert _measured(row(float("nan"), (float("nan"), float("nan")))) == "-"
    assert _measured(row(-0.5, (-0.6, -0.4))) == "-0.500 [-0.600, -0.400]"
    x = np.array([32.0, 64.0, 128.0, 256.0])
    est = ExponentEstimate(-0.356, (float("nan"), float("nan")), x, x ** -0.356, np.zeros(4), 0.0, "statistic")
    v = verdict(RateKind.THETA, -0.5, est)
    assert v.verdict is Verdict.INCONCLUSIVE and "nan" not in v.reason and "-0.356" in v.reason


def test_a_store_without_mup_runs_gets_a_row_per_claim_not_a_traceback(tmp_path):
    """A store of SP runs only: every training row says the store has no muP runs. The separation
    row's variable is a (macro, micro) pair, and printing the table ended in a TypeError (exit 1,
    which --strict reads as "a claim does not hold")."""
    from sde_scales.train.sweep import run_sweep

    store = tmp_path / "sp-only"
    run_sweep([c for c in checks.training_configs(TINY) if c.param == "sp"], str(store), device="cpu", progress=False)
    out = tmp_path / "v.json"
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "verify", "--store", str(store), "--kinds", "training",
                        "--claims", "thm4.1-separation", "thm4.1-macro-fluct", "--json", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "eval_loss / micro_disp [mup]" in r.stdout
    doc = json.loads(out.read_text())
    rows = [e for c in doc["claims"] for e in c["evidence"] if e["kind"] == "training"]
    assert rows and all(e["verdict"] == "INCONCLUSIVE" and "no muP runs" in e["reason"] for e in rows)


def test_a_store_mixing_two_configurations_is_refused_not_pooled(tmp_path):
    """Two sweeps written into one store: depth 1 at widths 32 and 64, depth 2 at 128 and 256, at the
    same learning rate. The rate compared one network at the small widths with another at the large
    ones, and verify printed an exponent (-0.19 [-0.50, +0.07] on such a store) with nothing said;
    now the store is refused with the field, its values and their widths, and the analysis
    functions refuse the same runs."""
    from sde_scales.analysis.width import optimum_shift_samples, width_samples
    from sde_scales.errors import InvalidArgumentError
    from sde_scales.train.store import RunStore
    from sde_scales.train.sweep import run_sweep

    store = tmp_path / "mixed"
    configs = [c if c.width < 128 else replace(c, depth=2)
               for c in checks.training_configs(dict(TINY, seeds=3)) if c.param == "mup"]
    run_sweep(configs, str(store), device="cpu", progress=False)
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "verify", "--store", str(store), "--kinds", "training"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"--store {store}: the mup runs differ in depth (depth=1: widths [32, 64]; depth=2: widths [128, 256])" \
        in r.stderr
    st = RunStore(store)
    with pytest.raises(InvalidArgumentError, match="differ in depth"):
        width_samples(st.runs(), st.trajectories(), "eval_loss", param="mup")
    with pytest.raises(InvalidArgumentError, match="differ in depth"):
        optimum_shift_samples(st.runs(), st.trajectories(), param="mup")


@pytest.mark.parametrize("args, said", [
    (["verify", "--symbolic-only", "--json", "{tmp}"], "--json {tmp} is a folder"),
    (["verify", "--symbolic-only", "--plots", "{tmp}/f.txt"], "--plots {tmp}/f.txt is a file"),
    (["converge", "--paths", "40", "--plot", "{tmp}/c.txt"], "matplotlib cannot write '.txt' files"),
    (["theory", "table", "--param", "mup", "--json", "{tmp}/f.txt/t.json"], "a part of the path before its file name is a file"),
    # a file system that takes no new file (/proc on Linux, for every user): a traceback at the end of the run
    (["converge", "--paths", "40", "--json", "/proc/sde-scales/c.json"], "/proc/sde-scales/c.json: cannot be written"),
    (["verify", "--symbolic-only", "--plots", "/proc/sde-scales-figures"], "/proc/sde-scales-figures: cannot be written"),
    # selections that leave nothing, or contradict each other: symbolic rows instead of the training ones asked
    # for, or "0 of N claims hold" with exit 0
    (["verify", "--symbolic-only", "--kinds", "training"], "--symbolic-only and --kinds training contradict"),
    (["verify", "--no-training", "--kinds", "training"], "--no-training and --kinds training contradict"),
    # --train-dir was ignored where nothing is trained into it
    (["verify", "--symbolic-only", "--train-dir", "{tmp}/td"], "--train-dir {tmp}/td keeps the built-in training's "
     "run store, and no training row is selected"),
    (["verify", "--store", "{tmp}", "--train-dir", "{tmp}/td"], "and --store {tmp} gives the training rows"),
    (["verify", "--claims", "lemma4.6-updates", "--kinds", "training"],
     "none of the selected claims has evidence of kind training (lemma4.6-updates: symbolic)"),
    # --store was ignored, and the summary said "training evidence from" it
    (["verify", "--symbolic-only", "--store", "{tmp}"], "--store {tmp} gives the training rows, and no training row "
     "is selected (--symbolic-only)"),
    (["verify", "--no-training", "--store", "{tmp}"], "no training row is selected (--no-training)"),
    # --list ran nothing, and said nothing of the options that run checks
    (["verify", "--list", "--strict", "--seed", "3"], "--list prints the claims and runs no check, so --seed and "
     "--strict would do nothing"),
])
def test_an_output_path_that_cannot_take_the_results_is_refused_before_the_work(tmp_path, args, said):
    """A --json that names a folder, a --plot matplotlib cannot write, a folder flag that names a
    file: each ended a finished run in a traceback (exit 1), its results lost. Now exit 2 at once."""
    (tmp_path / "f.txt").write_text("x")
    a = [v.format(tmp=tmp_path) for v in args]
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", *a], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert said.format(tmp=tmp_path) in r.stderr
    assert r.stdout == ""  # nothing ran


def test_the_claim_list_is_filtered_by_kind_and_written_as_json(tmp_path):
    """``verify --list --json`` wrote nothing, and ``--kinds`` did not narrow the list. The JSON
    holds the registry's records of exactly the claims with evidence of the kinds asked for."""
    out = tmp_path / "claims.json"
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "verify", "--list", "--kinds", "simulation", "--json",
                        str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    want = [c.id for c in CLAIMS if "simulation" in c.kinds]
    assert 0 < len(want) < len(CLAIMS)  # the filter has something to leave out
    assert [c["id"] for c in doc["claims"]] == want
    assert all("simulation" in c["evidence_kinds"] for c in doc["claims"])
    assert [line.split()[0] for line in r.stdout.splitlines() if not line.startswith("JSON:")] == want


def test_a_fractional_seed_is_refused_not_truncated():
    """Settings(seed=1.5) ran every check with seed 1 before."""
    from sde_scales.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="seed=1.5"):
        checks.Settings(quick=True, seed=1.5)


def test_the_learning_rate_edge_of_stability_from_the_abc_tables():
    """muP's largest stable global learning rate is width-independent and SP's shrinks as 1/n (SGD);
    a table whose rates are already n^-1 times muP's has its edge at n^+1: the derivation reads the
    table, not a constant."""
    from sde_scales.parametrization import LayerRule, by_name, mup
    from theory.paper import stable_lr_exponent

    assert stable_lr_exponent(mup(L=2))[0] == 0
    assert stable_lr_exponent(by_name("sp", L=2))[0] == -1
    p = mup(L=2)
    slow = type(p)("muP / n", tuple(LayerRule(r.a, r.b, r.c + 1) for r in p.layers), p.optimizer)
    assert stable_lr_exponent(slow)[0] == 1


@pytest.mark.parametrize("cid", ["vlassis-coordinates", "vlassis-lr-transfer"])
def test_the_vlassis_claims_planted_with_a_wrong_exponent_fail_symbolically(cid):
    from theory.verify import judge_symbolic

    claim = claims_by_id()[cid]
    sres = claim.evidence_of("symbolic").check(claim)
    assert judge_symbolic(claim, sres)[0] is Verdict.PASS
    wrong = replace(claim, exponent=-0.5)
    assert judge_symbolic(wrong, wrong.evidence_of("symbolic").check(wrong))[0] is Verdict.FAIL


def test_lr_transfer_training_evidence_from_a_planted_store(tmp_path):
    """A store with a learning-rate grid whose final eval loss is (log eta - log eta*(n))^2 + 1 plus
    seed noise 1e-6: eta* constant for muP and 0.4 (64/n) for SP. muP's row has an exponent near 0
    and is never FAILed (PASS, or INCONCLUSIVE where the bootstrap interval of the local slope's
    change happens to exclude 0, as the curvature rule allows at its level: 1 of 3 noise draws
    measured), SP's control row FAILs Theta(n^0) with an exponent near -1; planted with muP's
    optimum drifting as n^-1/2 (and no SP runs: no control row), muP's row FAILs."""
    from sde_scales.train.store import RunStore
    from sde_scales.train.trainer import RunConfig, RunOutcome

    def plant(root, mup_opt, with_sp):
        st = RunStore(root, quiet=True)
        rng = np.random.default_rng(1)
        lrs = 0.4 * 2.0 ** np.arange(-6, 2)  # 0.006 .. 0.8: every optimum inside the grid
        for param, opt in (("mup", mup_opt), ("sp", lambda n: 0.4 * 64 / n))[:2 if with_sp else 1]:
            for n in (64, 128, 256, 512, 1024):
                for s in range(10):
                    for lr in lrs:
                        cfg = RunConfig(param=param, width=n, lr=float(lr), seed=s, d_in=16, n_train=512,
                                        batch_size=32, epochs=1.0)
                        rows = {"step": [], "epoch": [], "metric": [], "layer": [], "value": []}
                        for step in (0, 4, 16):
                            v = (np.log(lr) - np.log(opt(n))) ** 2 + 1.0 + 1e-6 * rng.standard_normal()
                            for k, val in (("step", step), ("epoch", step / 16), ("metric", "eval_loss"),
                                           ("layer", -1), ("value", v)):
                                rows[k].append(val)
                        st.write(RunOutcome(cfg, "finished", None, rows, 0.0, {"eval_loss": rows["value"][-1]}))
        return str(root)

    claim = claims_by_id()["vlassis-lr-transfer"]
    for name, mup_opt, expected in (("flat", lambda n: 0.2, Verdict.PASS), ("drift", lambda n: 0.2 * (64 / n) ** 0.5,
                                                                             Verdict.FAIL)):
        checks.training_data.cache_clear()
        flat = expected is Verdict.PASS
        rows = run_claims([claim], checks.Settings(quick=True, store=plant(tmp_path / name, mup_opt, flat)),
                          progress=False, kinds=("training",))
        by = {r.param: r for r in rows}
        if flat:
            assert by["mup"].verdict is Verdict.PASS or "the series is curved" in by["mup"].reason, by["mup"].reason
        else:
            assert by["mup"].verdict is Verdict.FAIL, by["mup"].reason
        if flat:
            assert by["mup"].measurement.estimate.exponent == pytest.approx(0.0, abs=0.02)
            assert by["sp"].role == "control" and by["sp"].verdict is Verdict.FAIL
            assert by["sp"].measurement.estimate.exponent == pytest.approx(-1.0, abs=0.05)
        else:
            assert set(by) == {"mup"}


def test_without_a_store_the_lr_transfer_row_says_what_to_train():
    rows = run_claims([claims_by_id()["vlassis-lr-transfer"]], checks.Settings(quick=True), progress=False,
                      kinds=("training",))
    assert rows[0].verdict is Verdict.INCONCLUSIVE and "sde-scales sweep --lrs" in rows[0].reason


def test_the_coordinate_check_rows_tell_mup_from_sp():
    """The training evidence of vlassis-coordinates (quick): muP's input and hidden layers PASS
    Theta(n^0) within the check's floor, SP's input layer (whose change falls as n^-1/2 at a
    width-independent rate) FAILs it; the floor is the coordinate check's, stated in the row."""
    from sde_scales.train.coordcheck import RESOLUTION

    rows = run_claims([claims_by_id()["vlassis-coordinates"]], checks.Settings(quick=True), progress=False,
                      kinds=("training",))
    by = {(r.param, r.variable): r for r in rows}
    assert by[("mup", "change of layer 1 (input) pre-activations")].verdict is Verdict.PASS
    assert by[("mup", "change of layer 2 (hidden) pre-activations")].verdict is Verdict.PASS
    sp_in = by[("sp", "change of layer 1 (input) pre-activations")]
    assert sp_in.role == "control" and sp_in.verdict is Verdict.FAIL
    assert all(r.tolerance is None or r.tolerance >= RESOLUTION for r in rows)


def test_a_claim_holds_only_when_every_primary_row_passes():
    """The rule the summary line counts by ("every primary row PASS"): one primary row short of
    PASS (INCONCLUSIVE or FAIL) and the claim does not hold, whatever its other rows say; rows of
    other roles (additional variables, control parametrizations) do not decide it; a claim with no
    row does not hold."""
    from theory.verify import EvidenceResult, claim_holds

    claim, other = CLAIMS[0], CLAIMS[1]

    def rows(*spec):
        return [EvidenceResult(claim, "simulation", v, "planted",
                               measurement=checks.Measurement(None, "model", variable="x", role=role))
                for v, role in spec]

    P, F, I = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE
    assert claim_holds(rows((P, "primary"), (P, "primary")), claim)
    assert not claim_holds(rows((P, "primary"), (I, "primary")), claim)
    assert not claim_holds(rows((F, "primary"), (P, "primary")), claim)
    assert not claim_holds(rows((P, "primary"), (None, "primary")), claim)  # nothing derived is no PASS
    assert claim_holds(rows((P, "primary"), (F, "control"), (I, "additional")), claim)
    assert not claim_holds(rows((I, "control"), (P, "additional")), claim)  # no primary row
    assert not claim_holds(rows((P, "primary")), other)  # another claim's rows
    assert not claim_holds([], claim)


def test_a_claim_with_no_row_of_the_selected_kinds_is_not_judged(tmp_path):
    """``--kinds symbolic`` with a claim that has only training evidence (the supercollapse of Qiu
    et al.) beside one that has a derivation: the run says nothing of the first. Its JSON ``holds``
    was false, as if the evidence had refuted it; now null, and the summary names it. It still
    counts as not holding, so ``--strict`` exits 1 (the gate did not get the claim checked)."""
    out = tmp_path / "v.json"
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "verify", "--kinds", "symbolic", "--claims",
                        "qiu-supercollapse", "thm4.1-micro-fluct", "--no-progress", "--json", str(out), "--strict"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    doc = json.loads(out.read_text())
    holds = {c["id"]: c["holds"] for c in doc["claims"]}
    assert holds == {"qiu-supercollapse": None, "thm4.1-micro-fluct": True}
    assert [e["kind"] for c in doc["claims"] for e in c["evidence"]] == ["symbolic"]
    assert "1 of 2 claims hold" in r.stdout
    assert "not judged: qiu-supercollapse (no evidence of kind symbolic: qiu-supercollapse: training)" in r.stdout
    # every claim judged: no such line, and --strict exits 0
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "verify", "--kinds", "symbolic", "--claims",
                        "thm4.1-micro-fluct", "--no-progress", "--strict"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "not judged" not in r.stdout and "1 of 1 claims hold" in r.stdout
