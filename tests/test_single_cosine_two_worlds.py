"""experiments/single_cosine_two_worlds.py: the two worlds' separation is the distance between the
data a rule sees (the optimal test between them errs as Le Cam's bound says), each world's own law
is the better baseline there, no fitted law beats the two-point bound, the draws do not depend on
their order, and the command writes strict JSON and refuses bad input with exit 2."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import strict_json
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "single_cosine_two_worlds.py"
sys.path.insert(0, str(ROOT / "experiments"))

from single_cosine_two_worlds import _one_draw, lecam_bound, make_worlds, monte_carlo, summarise  # noqa: E402

from sde_scales.fitting.laws import MomentumLaw  # noqa: E402

N, PEAK, SKIP = 3000, 1e-3, 75


def _schedules():
    from sde_scales import schedules

    return {"cos10": schedules.cosine(N, PEAK, final_fraction=0.1, warmup_steps=30),
            **{f"wsd{f:g}": schedules.wsd(N, PEAK, fraction=f, warmup_steps=30) for f in (0.1, 0.2, 0.4)}}


def _family(noise: float):
    """A cosine and three WSD runs (3,000 steps, logged every 10) of the exponential kernel law with
    a time scale of 300 steps, a law neither world's (lambda 0.99: 100 steps; 0.999: 1,000)."""
    from sde_scales.fitting.curves import planted_curve
    from sde_scales.fitting.laws import KernelLaw

    law, theta = KernelLaw("exp", "steps"), [2.5, 3.0, 0.5, 0.4, np.log10(300.0)]
    curves = {}
    for i, (k, lr) in enumerate(_schedules().items()):
        c, _ = planted_curve(law, theta, lr, k, noise=noise, seed=i)
        curves[k] = replace(c, lr=np.r_[lr, lr[-1]][c.step], schedule=None)
    return curves["cos10"], [v for k, v in curves.items() if k != "cos10"]


def test_lecam_bound_by_hand():
    # Phi(-delta/2): 1/2 for data that are the same; Phi(-1) = 0.158655 at delta 2 (tables)
    assert lecam_bound(0.0) == pytest.approx(0.5)
    assert lecam_bound(2.0) == pytest.approx(0.158655, abs=1e-6)
    assert lecam_bound(40.0) < 1e-80
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            lecam_bound(bad)


def test_separation_is_what_the_optimal_test_between_the_worlds_sees():
    """The likelihood-ratio test between two Gaussian worlds of one covariance errs with
    probability Phi(-Delta/2) in each; run here on every row of the cosine (before the protocol's
    start too), with the noise level the worlds state. If the worlds differed before the start, or
    Delta were not their distance in noise units, the test's error would not be the bound's. 20,000
    draws: binomial standard error at most 0.0036; allowed 4 of them."""
    cos, wsd = _family(noise=0.1)
    w = make_worlds(cos, wsd, skip=SKIP)
    assert 0.5 < w["delta"] < 5  # a separation where the bound is far from 0 and 1/2
    a, b = w["cos"]["fast"], w["cos"]["slow"]
    assert np.array_equal(a[~w["keep"]], b[~w["keep"]])
    rng = np.random.default_rng(7)
    n = 20_000
    y = a + w["sigma"] * rng.standard_normal((n, a.size))  # data of world F
    says_slow = ((y - b) ** 2).sum(1) < ((y - a) ** 2).sum(1)
    err = says_slow.mean()
    assert err == pytest.approx(w["bound"], abs=4 * np.sqrt(0.25 / n))
    assert w["tv"] == pytest.approx(1 - 2 * w["bound"], abs=1e-12)


def test_each_world_favours_its_own_lambda_and_no_law_beats_the_two_point_bound():
    """Noise 0.1 per row (Delta about 1.9, bound about 0.17). In world F the momentum law with
    lambda 0.99 is the truth, so fitted to F's noisy cosine it predicts F's WSD runs better than
    lambda 0.999, which the cosine pulls towards S's runs; in world S the reverse. The distances the
    worlds state, d_rmse, are the RMS differences of their runs, computed here afresh. Le Cam: for
    each law and run, the mean over the worlds of the share of draws with error >= d/2 is at least
    the bound, less 4 binomial standard errors of 40 draws (2 x 20)."""
    cos, wsd = _family(noise=0.1)
    w = make_worlds(cos, wsd, skip=SKIP)
    for j, (h, d) in enumerate(zip(wsd, w["distances"])):
        keep = h.step >= SKIP
        diff = (w["wsd"]["fast"][j] - w["wsd"]["slow"][j])[keep]
        assert d["d_rmse"] == pytest.approx(np.sqrt(np.mean(diff ** 2)), rel=1e-12)
    laws = [MomentumLaw(0.99), MomentumLaw(0.999)]
    rows = monte_carlo(cos, wsd, w, laws, skip=SKIP, draws=20, seed=3)
    s = summarise(rows, w, {law.label for law in laws})
    fast, slow = (law.label for law in laws)
    assert s["laws"][fast]["fast"]["rmse"] < s["laws"][slow]["fast"]["rmse"]
    assert s["laws"][slow]["slow"]["rmse"] < s["laws"][fast]["slow"]["rmse"]
    assert s["best_baseline"]["fast"]["rmse"]["law"] == fast and s["best_baseline"]["slow"]["rmse"]["law"] == slow
    for law, checks in s["lecam"].items():
        for e in checks:
            for m in ("share_rmse", "share_final"):
                assert e[m] >= e["bound"] - 4 * e["binomial_se"], (law, e)
    # the risk form: R_F + R_S >= d (1 - TV) for every rule, here every fitted law, less 4 Monte
    # Carlo standard errors of the sum
    for c in s["runs"]:
        assert c["floor"] == pytest.approx(c["d"] * (1 - w["tv"]))
        for law, r in c["risks"].items():
            total = r["fast"]["risk"] + r["slow"]["risk"]
            assert total >= c["floor"] - 4 * np.hypot(r["fast"]["se"], r["slow"]["se"]), (law, c["run"], c["metric"])
    for metric in ("rmse", "abs_final"):  # the protocols' metric: means over the runs of each draw
        per = [c for c in s["runs"] if c["metric"] == metric]
        mean = per.pop()
        assert mean["run"] == "mean over runs" and mean["d"] == pytest.approx(np.mean([c["d"] for c in per]))
        for law in mean["risks"]:
            for world in ("fast", "slow"):
                assert mean["risks"][law][world]["risk"] == pytest.approx(
                    np.mean([c["risks"][law][world]["risk"] for c in per]))


def test_risk_certificate_by_hand():
    """Two draws of two baselines and one other law on one run, errors chosen so that the sums are
    known: world F's best baseline is b1 (risk 0.01), world S's is b2 (0.02); their sum 0.03 with
    standard error hypot(0, 0.005) (b2's two errors 0.015 and 0.025 in S: sd 0.00707 over sqrt 2).
    With d = 0.1 and TV 0.5 the floor is 0.05: 0.03 + 2 x 0.005 < 0.05, so no rule matches both.
    With TV 0.8 the floor is 0.02 and the argument does not bind."""
    from single_cosine_two_worlds import _error_matrices, _risk_certificates

    err = {("b1", "fast"): [0.01, -0.01], ("b1", "slow"): [0.05, 0.07], ("b2", "fast"): [0.04, 0.04],
           ("b2", "slow"): [0.015, -0.025], ("k", "fast"): [0.0, 0.1], ("k", "slow"): [0.0, 0.1]}
    rows = [{"draw": i, "world": w, "law": law, "run": "r", "rmse": abs(v[i]), "final_err": v[i]}
            for (law, w), v in err.items() for i in range(2)]
    worlds = {"tv": 0.5, "distances": [{"name": "r", "d_rmse": 0.1, "d_final": 0.1}]}
    checks = _risk_certificates(_error_matrices(rows), worlds, {"b1", "b2"})
    assert [(c["run"], c["metric"]) for c in checks] == [("r", "rmse"), ("mean over runs", "rmse"),
                                                         ("r", "abs_final"), ("mean over runs", "abs_final")]
    for c in checks:  # one run: its mean over runs is itself
        assert c["best_baseline"] == {"fast": "b1", "slow": "b2"}
        assert c["floor"] == pytest.approx(0.05) and c["best_sum"] == pytest.approx(0.03)
        assert c["best_sum_se"] == pytest.approx(0.005) and c["impossible"] is True
        assert c["risks"]["k"]["fast"]["risk"] == pytest.approx(0.05)
    worlds["tv"] = 0.8
    assert not any(c["impossible"] for c in _risk_certificates(_error_matrices(rows), worlds, {"b1", "b2"}))


def test_draws_are_the_same_in_any_order():
    cos, wsd = _family(noise=0.1)
    w = make_worlds(cos, wsd, skip=SKIP)
    laws = [MomentumLaw(0.99)]
    rows = monte_carlo(cos, wsd, w, laws, skip=SKIP, draws=3, seed=5)
    child = np.random.SeedSequence(5).spawn(3)[2]
    alone = _one_draw((cos, wsd, w, laws, SKIP, child))
    assert [r for r in rows if r["draw"] == 2] == [{"draw": 2, **r} for r in alone]
    assert [r for r in rows if r["draw"] == 0] != [{"draw": 0, **r} for r in alone]
    assert monte_carlo(cos, wsd, w, laws, skip=SKIP, draws=3, seed=5, workers=2) == rows  # two spawned workers


def test_worlds_refuse_bad_settings():
    cos, wsd = _family(noise=0.1)
    with pytest.raises(ValueError, match="fast < slow"):
        make_worlds(cos, wsd, skip=SKIP, fast=0.999, slow=0.99)
    with pytest.raises(ValueError, match="truth"):
        make_worlds(cos, wsd, skip=SKIP, truth="medium")
    quiet = replace(cos, loss=np.full(cos.step.size, 2.5))  # no noise to measure the worlds' distance in
    with pytest.raises(ValueError, match="no noise"):
        make_worlds(quiet, wsd, skip=SKIP)


def test_command_writes_strict_json_and_refuses_bad_input(tmp_path):
    """The command on a folder laid out as the shared curves are (the 124M runs at 1e-3), two draws
    of the two momentum laws; bad settings and a missing --lm folder exit 2 and write nothing."""
    cos, wsd = _family(noise=0.1)
    data = tmp_path / "data"
    data.mkdir()
    names = {"cos10": cos, "wsd-lin0.1": wsd[0], "wsd-lin0.2": wsd[1], "wsd-lin0.4": wsd[2]}
    for k, c in names.items():
        pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss}).to_csv(data / f"124m_{k}_lr1e-3.csv", index=False)
    out = tmp_path / "out"
    run = lambda *a: subprocess.run([sys.executable, str(SCRIPT), *a], capture_output=True, text=True)  # noqa: E731
    p = run("--data", str(data), "--draws", "2", "--laws", "momentum0.99,momentum0.999", "--truth", "fast",
            "--no-progress", "--out", str(out))
    assert p.returncode == 0, p.stderr
    doc = strict_json((out / "single_cosine_two_worlds.json").read_text())
    fam = doc["families"][0]
    assert fam["family"] == "shared-124m" and fam["truth"] == "fast" and fam["skip_steps"] == 500
    assert fam["bound"] == pytest.approx(stats.norm.sf(fam["delta"] / 2))
    assert len(fam["monte_carlo"]["rows"]) == 2 * 2 * 2 * 3  # draws x worlds x laws x WSD runs
    assert "Delta =" in p.stdout
    notes = [n for v in fam["fit_warnings"].values() for n in v]
    assert all(n in p.stdout for n in notes)  # every warning of the worlds' fits is printed, not only in the JSON
    # a second run reads the finished family back; a damaged file, or one of other settings, is
    # refused and kept as it was
    again = run("--data", str(data), "--draws", "2", "--laws", "momentum0.99,momentum0.999", "--truth", "fast",
                "--no-progress", "--out", str(out))
    assert again.returncode == 0 and "read back" in again.stdout, again.stderr
    redo = json.loads((out / "single_cosine_two_worlds.json").read_text())
    assert redo["families"] == doc["families"]
    # a world's draws do not depend on which other worlds the run has: S fitted to the data, run
    # alone, gives the numbers it gives beside F (where it is the second)
    both = run("--data", str(data), "--draws", "2", "--laws", "momentum0.99,momentum0.999", "--truth", "both",
               "--no-progress", "--out", str(out))
    alone = run("--data", str(data), "--draws", "2", "--laws", "momentum0.99,momentum0.999", "--truth", "slow",
                "--no-progress", "--out", str(tmp_path / "alone"))
    assert both.returncode == 0 and alone.returncode == 0, both.stderr + alone.stderr
    slow = [f for f in json.loads((out / "single_cosine_two_worlds.json").read_text())["families"] if f["truth"] == "slow"]
    assert slow == json.loads((tmp_path / "alone" / "single_cosine_two_worlds.json").read_text())["families"]
    other = run("--data", str(data), "--draws", "3", "--laws", "momentum0.99,momentum0.999", "--truth", "fast",
                "--no-progress", "--out", str(out))
    assert other.returncode == 2 and "other settings" in other.stderr and "'draws': 2" in other.stderr
    (out / "single_cosine_two_worlds.json").write_text('{"fast": 0.99, "families": [')
    broken = run("--data", str(data), "--draws", "2", "--out", str(out))
    assert broken.returncode == 2 and "--fresh" in broken.stderr
    assert (out / "single_cosine_two_worlds.json").read_text() == '{"fast": 0.99, "families": ['
    for bad in (["--fast", "0.999", "--slow", "0.99"], ["--draws", "-1"], ["--workers", "0"], ["--laws", "nope"],
                ["--lm", str(tmp_path / "absent")], ["--no-shared"]):
        q = run("--data", str(data), *bad, "--out", str(tmp_path / "bad"))
        assert q.returncode == 2 and "error:" in q.stderr, (bad, q.stderr)
        assert not (tmp_path / "bad" / "single_cosine_two_worlds.json").exists()
