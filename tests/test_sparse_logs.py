"""Curves with a per-step schedule: sparse loss logs, logs that start late, schedule specs, and
each law against its paper's formula computed directly."""

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sde_scales.errors import DataFileError, InvalidArgumentError
from sde_scales.fitting.curves import LateStartWarning, LossCurve, ScheduleFeatures, ScheduleSpec, load_curve
from sde_scales.fitting.fit import fit, predict
from sde_scales.fitting.laws import KernelLaw, MomentumLaw, MultiPowerLaw

SHARED = Path(__file__).parents[2] / "shared" / "data" / "loss_curves"


def _warmup_cosine(total=6000, warmup=600, peak=1e-3):
    return ScheduleSpec(total=total, peak=peak, warmup=warmup, decay="cosine", end=peak / 10)


def test_spec_expands_to_the_stated_formulas():
    s = ScheduleSpec.parse("warmup=100,peak=2e-3,decay=cosine,end=2e-4,total=1000")
    lr = s.expand()
    assert lr.size == 1001
    assert lr[0] == 0 and lr[50] == pytest.approx(1e-3) and lr[100] == pytest.approx(2e-3)
    mid = 100 + 450
    assert lr[mid] == pytest.approx(2e-4 + 1.8e-3 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr[1000] == pytest.approx(2e-4)
    wsd = ScheduleSpec.parse("peak=1,decay=linear,decay_start=800,total=1000").expand()
    assert wsd[799] == 1 and wsd[900] == pytest.approx(0.5) and wsd[1000] == 0
    ex = ScheduleSpec(total=100, peak=1.0, decay="exp", decay_start=0, end=0.01).expand()
    assert ex[50] == pytest.approx(0.1)
    st = ScheduleSpec(total=100, peak=1.0, decay="step", decay_start=60, end=0.1).expand()
    assert st[59] == 1 and st[60] == pytest.approx(0.1)
    cw = ScheduleSpec(total=10, peak=1.0, warmup=4, warmup_shape="cosine").expand()
    assert cw[2] == pytest.approx(0.5)
    # the square-root cooldown: peak - (peak - end) sqrt(s), a quarter of the way in already half down
    sq = ScheduleSpec.parse("peak=1,decay=sqrt,decay_start=800,end=0,total=1000").expand()
    assert sq[800] == 1 and sq[850] == pytest.approx(0.5) and sq[900] == pytest.approx(1 - math.sqrt(0.5))


@pytest.mark.parametrize("text, match", [
    ("peak=1e-3", "total= is required"), ("total=10,peak=1e-3,foo=1", "unknown key"),
    ("total=10.5,peak=1", "whole number"), ("total=10,peak=-1", "peak"), ("total=10,peak=1,decay=exp", "end > 0"),
    ("total=10,peak=1,warmup=20", "warmup"), ("total=10,peak=1,decay=wiggle", "decay"), ("total=10,peak", "key=value"),
    # a step decay without the step of its drop was the end rate from step 0 on (all zeros by default)
    ("total=10,peak=1,decay=step", "decay=step needs decay_start"),
    # the second value of a key given twice was used, in silence
    ("total=10,peak=1e-3,peak=2e-3", "peak= is given twice"),
    # a fraction of the peak typed as the rate: a "decay" that rose a hundredfold, in silence
    ("total=10,peak=1e-3,decay=cosine,end=0.1", r"end=0.1 is above peak=0.001; end is a learning rate, not a "
                                                 r"fraction of the peak \(for 10% of the peak write end=0.0001\)"),
    ("total=10,peak=1e-3,warmup=5,warmup_init=0.01", "warmup_init=0.01 is above peak=0.001"),
    # it passed here and was refused later as "a corrupt column; fix the file", of a spec typed on the command line
    ("total=10,peak=1e300", r"peak=1e\+300 is beyond 1e\+100"),
])
def test_bad_specs_are_refused_by_name(text, match):
    with pytest.raises(InvalidArgumentError, match=match):
        ScheduleSpec.parse(text)


def _sparse_frame(spec, every, start, loss_fn):
    """A per-step table: lr on every step 0..total, loss every ``every`` steps from ``start``."""
    lr = spec.expand()
    steps = np.arange(lr.size)
    loss = np.full(lr.size, np.nan)
    idx = steps[(steps >= start) & ((steps - start) % every == 0)]
    loss[idx] = loss_fn(idx, lr)
    return pd.DataFrame({"step": steps, "lr": lr, "loss": loss})


def _write_frame(tmp_path, df, name="full.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def _area_loss(idx, lr):
    cum = np.concatenate([[0.0], np.cumsum(lr / lr.max())])
    return 3.0 + 2.0 * cum[idx] ** -0.4


def test_per_step_file_gives_the_schedule_and_the_logged_points(tmp_path):
    spec = _warmup_cosine()
    df = _sparse_frame(spec, 128, 640, _area_loss)
    p = tmp_path / "run.csv"
    df.to_csv(p, index=False)  # empty cells where the loss was not logged
    c = load_curve(p)
    assert c.step[0] == 640 and np.all(np.diff(c.step) == 128) and c.schedule is not None
    np.testing.assert_array_equal(c.per_step_lr(), spec.expand()[: c.step[-1] + 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known from step 0: no late-start warning
        f = ScheduleFeatures.build(c, c.step, c.peak_lr)
    cum = np.cumsum(spec.expand()) / c.peak_lr
    assert f.S1[0] == pytest.approx(cum[639])  # the true area before the first logged loss


def test_late_log_without_schedule_warns_and_overstates_the_warmup_area():
    """A 2,160-step linear warmup, loss logged every 128 steps from step 2,160: without the schedule
    the area at the first logged point is twice the truth (the issue's measurement), with a warning."""
    spec = ScheduleSpec(total=20000, peak=1e-3, warmup=2160, decay="cosine", end=1e-4)
    df = _sparse_frame(spec, 128, 2160, _area_loss)
    logged = df.dropna()
    bare = LossCurve(logged.step.to_numpy(), logged.lr.to_numpy(), logged.loss.to_numpy(), name="late")
    with pytest.warns(LateStartWarning, match="not known before step 2160"):
        f_bare = ScheduleFeatures.build(bare, bare.step, 1e-3)
    f_true = ScheduleFeatures.build(bare.with_spec(spec), bare.step, 1e-3)
    true_area = np.sum(spec.expand()[:2160]) / 1e-3
    assert f_true.S1[0] == pytest.approx(true_area)
    assert f_bare.S1[0] / f_true.S1[0] == pytest.approx(2.0, rel=0.01)


def test_late_start_is_warned_where_its_assumed_area_can_matter_and_only_there():
    """The area assumed before the first logged step (its rate times its step) is compared with the
    area at each fitted or scored step: warned when it is over 1% of it at over 1% of the points.
    A log every 10 steps of a 2,000-step warmup from step 10, or a per-step log from step 1: over 1%
    at their first dozen points (under 1% of them), not warned even scored from their first row. A
    log from step 1,000, inside the warmup: over 1% everywhere, warned. A log from step 100: warned
    exactly where a direct count of the points says so, on either side of the cut-off."""
    spec = ScheduleSpec(total=20000, peak=1e-3, warmup=2000, decay="cosine", end=1e-4)
    lr = spec.expand()

    def curve(first, every):
        s = np.arange(first, 20000, every)
        return LossCurve(s, lr[s], 3.0 + np.zeros(s.size), name=f"from{first}"), s

    def quiet(c, t, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("error", LateStartWarning)
            ScheduleFeatures.build(c, t, 1e-3, **kw)

    c, steps = curve(10, 10)
    quiet(c, steps)
    quiet(c, steps, from_step=500)  # all rows, scored from 500 (as predict builds them)
    quiet(*curve(1, 1))
    c, steps = curve(1000, 10)
    for first in (1000, 19000):  # assumed 1000 x rate(1000) = 0.5, the whole run's area is 11
        with pytest.warns(LateStartWarning, match="not known before step 1000"):
            ScheduleFeatures.build(c, steps[steps >= first], 1e-3)
    c, steps = curve(100, 10)
    assumed = 100 * lr[100]
    area = {t: assumed + math.fsum(lr[100:t]) for t in steps}  # a linear warmup is interpolated exactly
    decided = []
    for first in range(1100, 1400, 10):
        t = steps[steps >= first]
        share = np.mean([assumed > 0.01 * area[k] for k in t])
        if share > 0.01:
            with pytest.warns(LateStartWarning, match=rf"over 1% at {round(share * t.size)} of its {t.size} points"):
                ScheduleFeatures.build(c, t, 1e-3)
        else:
            quiet(c, t)
        decided.append(share > 0.01)
    assert decided[0] and not decided[-1]  # both sides of the cut-off were checked


def test_schedule_that_disagrees_with_the_log_is_refused(tmp_path):
    spec = _warmup_cosine()
    df = _sparse_frame(spec, 100, 100, _area_loss).dropna()
    c = LossCurve(df.step.to_numpy(), df.lr.to_numpy(), df.loss.to_numpy(), name="c", source="c.csv")
    c.with_spec(spec)  # agrees
    with pytest.raises(DataFileError, match=r"c.csv, column 'lr', row \d+: the logged learning rate"):
        c.with_spec(ScheduleSpec(total=6000, peak=1e-3, warmup=600, decay="linear", end=1e-4))
    with pytest.raises(DataFileError, match="ends before the last logged step"):
        c.with_spec(ScheduleSpec(total=3000, peak=1e-3, warmup=600, decay="cosine", end=1e-4))
    with pytest.raises(InvalidArgumentError, match="schedule=6000; give a ScheduleSpec or its text form"):
        c.with_spec(6000)


def test_per_step_file_with_a_gap_is_read_and_a_missing_lr_refused(tmp_path):
    """A per-step file with one row missing (step 123) is read as a log whose rate is on more rows
    than its loss: the rate at the missing step is the line between its neighbours, every other
    step's is the file's, and the loss rows are all kept. (It used to be refused. Files with a rate
    on more rows than their loss are now read; see
    `test_fitting.py::test_a_loss_logged_on_fewer_rows_than_the_rate`.) A missing rate is refused by
    row."""
    df = _sparse_frame(_warmup_cosine(total=400, warmup=40), 10, 10, _area_loss)
    gap = df.drop(index=[123])
    gap.to_csv(tmp_path / "gap.csv", index=False)
    c = load_curve(tmp_path / "gap.csv")
    full = load_curve(_write_frame(tmp_path, df))
    np.testing.assert_array_equal(c.step, full.step)
    np.testing.assert_array_equal(c.loss, full.loss)
    a, b = c.per_step_lr()[:400], full.per_step_lr()[:400]
    keep = np.arange(400) != 123
    np.testing.assert_allclose(a[keep], b[keep], rtol=0, atol=1e-15)
    assert a[123] == pytest.approx(0.5 * (b[122] + b[124]), rel=1e-12)
    bad = df.copy()
    bad.loc[77, "lr"] = np.nan
    bad.to_csv(tmp_path / "nolr.csv", index=False)
    with pytest.raises(DataFileError, match="row 77.*not finite"):
        load_curve(tmp_path / "nolr.csv")


# ------------------------------------------------------------------ each law against its paper


def _one_step_features(lr):
    """Features of a per-step log (loss at every step 1..T), drops binned per step: exact sums."""
    T = lr.size - 1
    c = LossCurve(np.arange(1, T + 1), lr[1:], np.ones(T), name="x").with_schedule(lr)
    return ScheduleFeatures.build(c, c.step, float(lr.max()), bin_steps=1)


def _schedule_small():
    spec = ScheduleSpec(total=60, peak=1.0, warmup=5, warmup_init=0.1, decay="linear", decay_start=30, end=0.2)
    return spec.expand()


def test_momentum_law_is_tissue_et_al():
    """L = L0 + A S1^-alpha - C S2, S1(t) = sum_{i<t} eta_i, m_i = lam m_{i-1} + (eta_{i-1} - eta_i),
    S2(t) = sum_{i<t} m_i, with drops counted after the warmup (steps 1-indexed as in the paper)."""
    lr = _schedule_small()
    f = _one_step_features(lr)
    lam, L0, A, al, Cc = 0.9, 2.0, 1.5, 0.4, 0.7
    law = MomentumLaw(lam=lam)
    got = law.predict(np.array([L0, A, al, Cc / (1 - lam)]), f)
    warm = 5
    out = []
    for t in f.t:
        S1 = sum(lr[:t])
        m, S2 = 0.0, 0.0
        for i in range(1, t):
            d = (lr[i - 1] - lr[i]) if i > warm else 0.0
            m = lam * m + d
            S2 += m
        out.append(L0 + A * S1 ** -al - Cc * S2)
    np.testing.assert_allclose(got, out, rtol=1e-10)


def test_multi_power_law_is_luo_et_al():
    """L = L0 + A S1^-alpha - B sum_k (eta_{k-1} - eta_k) G(eta_k^-gamma S_k(t)), G(x) = 1 - (Cx+1)^-beta,
    S_k(t) = sum_{k <= tau < t} eta_tau."""
    lr = _schedule_small()
    f = _one_step_features(lr)
    th = np.array([2.0, 1.5, 0.4, 0.6, 2.0, 0.7, 0.5])
    got = MultiPowerLaw().predict(th, f)
    L0, A, al, B, Cc, be, ga = th
    out = []
    for t in f.t:
        S1 = sum(lr[:t])
        ld = 0.0
        for k in range(6, t):  # drops after the warmup (peak reached at step 5)
            Sk = sum(lr[k:t])
            ld += (lr[k - 1] - lr[k]) * (1 - (Cc * lr[k] ** -ga * Sk + 1) ** -be)
        out.append(L0 + A * S1 ** -al - B * ld)
    # the law sums G through a sum of exponentials: equal up to its stated error per unit drop
    tol = B * MultiPowerLaw().embedding_error(th, f) * np.abs(f.drop).sum()
    assert tol < 1e-6
    np.testing.assert_allclose(got, out, rtol=0, atol=tol + 1e-12)


def _planted(spec, every, start, seed, law, theta, noise=0.003):
    lr = spec.expand()
    T = spec.total
    full = LossCurve(np.arange(1, T + 1), lr[1:], np.ones(T), name="p").with_schedule(lr)
    f = ScheduleFeatures.build(full, full.step, float(lr.max()))
    y = law.predict(theta, f)
    rng = np.random.default_rng(seed)
    steps = np.arange(start, T + 1, every)
    loss = y[steps - 1] + noise * rng.standard_normal(steps.size)
    return LossCurve(steps, lr[steps], loss, name=f"planted{seed}").with_schedule(lr)


@pytest.mark.parametrize("law, theta", [
    (MomentumLaw(lam=0.99), np.array([2.0, 1.0, 0.5, 0.8])),
    (MultiPowerLaw(), np.array([2.0, 1.0, 0.5, 0.6, 2.0, 0.6, 0.5])),
    (KernelLaw(kernel="exp", time="steps"), np.array([2.0, 1.0, 0.5, 0.6, 2.3])),
])
def test_every_law_fits_a_sparse_late_log_with_its_schedule(law, theta):
    """Logs every 64 steps from step 1,000 (after a 1,000-step warmup), schedules given: each law,
    fitted as its authors fit (a cosine, a constant and a two-stage step-drop run), predicts a WSD
    run it never saw to within three times the loss noise of one logged point."""
    base = dict(total=8000, peak=1e-3, warmup=1000)
    specs = [ScheduleSpec(**base, decay="cosine", end=1e-4), ScheduleSpec(**base),
             ScheduleSpec(**base, decay="step", decay_start=5000, end=3e-4)]
    fitted = [_planted(s, 64, 1000, i, law, theta) for i, s in enumerate(specs)]
    wsd = ScheduleSpec(**base, decay="linear", decay_start=6000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LateStartWarning)
        res = fit(law, fitted)
        p = predict(res, _planted(wsd, 64, 1000, 9, law, theta))
    truth = _planted(wsd, 64, 1000, 9, law, theta, noise=0.0)
    rmse = float(np.sqrt(np.mean((p - truth.loss) ** 2)))
    assert rmse < 3 * 0.003, rmse


# ------------------------------------------------------------------ the shared-data analog


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data/loss_curves")
def test_shared_curves_subsampled_and_started_late_match_the_full_fit():
    """Three shared 124M runs at lr 1e-3 (constant, cosine, WSD; logged every 50 steps) against their
    analog: every third point (150 steps) from step 2,160 on, with each run's per-step schedule
    stated. The exponential-kernel law fitted on each predicts a fourth run (WSD with an 80%
    cooldown) alike.

    Tolerance, from the least-squares model: with p parameters, n points and point noise sigma,
    a prediction's variance averaged over the design is sigma^2 p / n; the analog's points are a
    subset of the full fit's, so the difference of the two predictions has variance
    sigma^2 p (1/n_sparse - 1/n_full). Three of its standard deviations are allowed. (Parameters
    are compared through their predictions: A and alpha trade off against each other on one
    power-law segment, so their values alone move far more than the curve they draw.) Without the
    schedule, the analog warns that it assumes the first logged rate before step 2,160."""
    names = ("124m_const_lr1e-3", "124m_cos0_lr1e-3", "124m_wsd-lin0.2_lr1e-3")
    full = [load_curve(SHARED / f"{n}.csv") for n in names]
    held = load_curve(SHARED / "124m_wsd-lin0.8_lr1e-3.csv")

    def analog(c, schedule=True):
        keep = (c.step >= 2160) & (np.arange(c.step.size) % 3 == 0)
        late = LossCurve(c.step[keep], c.lr[keep], c.loss[keep], name=c.name + "_late")
        return late.with_schedule(c.per_step_lr()) if schedule else late

    law = KernelLaw(kernel="exp", time="steps")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LateStartWarning)  # the full shared logs start at step 50
        r_full = fit(law, full, skip_steps=2160)
        r_late = fit(law, [analog(c) for c in full], skip_steps=2160)
        d_held = (predict(r_full, held) - predict(r_late, held))[held.step >= 2160]
    sigma = float(np.mean([np.std((c.loss - c.smoothed())[c.step >= 2160]) for c in full]))
    n_full, n_sparse, p = r_full.n_points, r_late.n_points, len(law.names)
    tol = 3 * sigma * math.sqrt(p * (1 / n_sparse - 1 / n_full))
    assert float(np.sqrt(np.mean(d_held ** 2))) < tol, (float(np.sqrt(np.mean(d_held ** 2))), tol)
    with pytest.warns(LateStartWarning, match="not known before step 2300"):  # the first kept row
        fit(law, [analog(full[0], schedule=False)])


# ------------------------------------------------------------------ the command


def test_fit_delay_cli_with_a_spec_and_a_per_step_file(tmp_path):
    spec = "warmup=1000,peak=1e-3,decay=cosine,end=1e-4,total=8000"
    law, theta = MomentumLaw(lam=0.99), np.array([2.0, 1.0, 0.5, 0.8])
    a = _planted(ScheduleSpec.parse(spec), 64, 1000, 1, law, theta)
    pd.DataFrame({"step": a.step, "lr": a.lr, "loss": a.loss}).to_csv(tmp_path / "cos.csv", index=False)
    wsd = ScheduleSpec(total=8000, peak=1e-3, warmup=1000, decay="linear", decay_start=6000)
    b = _planted(wsd, 64, 1000, 2, law, theta)
    lr = wsd.expand()
    loss = np.full(lr.size, np.nan)
    loss[b.step] = b.loss
    pd.DataFrame({"step": np.arange(lr.size), "lr": lr, "loss": loss}).to_csv(tmp_path / "wsd.csv", index=False)
    cmd = [sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(tmp_path / "cos.csv"), "--predict",
           str(tmp_path / "wsd.csv"), "--law", "momentum", "--json", str(tmp_path / "out.json")]
    r = subprocess.run(cmd + ["--schedule", f"cos:{spec}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "out.json").read_text())
    assert not any("not known before" in w for w in doc["warnings"])
    assert doc["predict"][0]["n_points"] == b.step.size  # scored where the per-step file has a loss
    r = subprocess.run(cmd, capture_output=True, text=True)  # no spec: the fitted log starts late
    assert r.returncode == 0 and "not known before step 1000" in r.stdout
    r = subprocess.run(cmd + ["--schedule", "cos:peak=2e-3,decay=cosine,total=8000"], capture_output=True, text=True)
    assert r.returncode == 2 and "differs from the stated schedule" in r.stderr
    r = subprocess.run(cmd + ["--schedule", "nosuch:peak=1,total=10"], capture_output=True, text=True)
    assert r.returncode == 2 and "not among the curves" in r.stderr


def test_a_loss_only_export_takes_its_rates_from_its_spec(tmp_path):
    """A Weights & Biases panel export holds one metric per file (``Step``, ``<run> - train/loss`` and
    its ``__MIN``/``__MAX``), with empty cells where another run of the panel logged a step. With the
    run's --schedule spec it fits to the same numbers as the same log with its learning-rate column;
    without a spec it is refused with the fix; a spec that ends before the log is refused."""
    spec = "warmup=1000,peak=1e-3,decay=cosine,end=1e-4,total=8000"
    law, theta = MomentumLaw(lam=0.99), np.array([2.0, 1.0, 0.5, 0.8])
    a = _planted(ScheduleSpec.parse(spec), 64, 1000, 1, law, theta)
    pd.DataFrame({"step": a.step, "lr": a.lr, "loss": a.loss}).to_csv(tmp_path / "cos.csv", index=False)
    other = np.arange(1000, 8001, 100)  # another run's steps in the same panel
    steps = np.union1d(a.step, other)
    col = "cos-run - train/loss"
    loss = pd.Series(a.loss, index=a.step).reindex(steps)
    export = pd.DataFrame({"Step": steps, col: loss.to_numpy(), col + "__MIN": loss.to_numpy(),
                           col + "__MAX": loss.to_numpy()})
    export.to_csv(tmp_path / "wb.csv", index=False)
    wb = load_curve(tmp_path / "wb.csv", schedule=spec)
    assert np.array_equal(wb.step, a.step) and np.array_equal(wb.loss, a.loss)
    np.testing.assert_array_equal(wb.lr, ScheduleSpec.parse(spec).expand()[a.step])
    assert dict(wb.columns) == {"step": "Step", "loss": col}
    outs = {}
    for name in ("cos", "wb"):
        cmd = [sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(tmp_path / f"{name}.csv"),
               "--law", "momentum", "--schedule", f"{name}:{spec}", "--json", str(tmp_path / f"{name}.json")]
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outs[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert "no learning-rate column" in r.stdout
    assert outs["wb"]["params"] == outs["cos"]["params"]
    with pytest.raises(DataFileError, match="no lr column.*--schedule"):
        load_curve(tmp_path / "wb.csv")
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(tmp_path / "wb.csv")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--schedule NAME:SPEC" in r.stderr
    with pytest.raises(DataFileError, match="total=6000 steps ends before the last logged step"):
        load_curve(tmp_path / "wb.csv", schedule="peak=1e-3,total=6000")


def test_one_run_of_a_panel_export_of_several(tmp_path):
    """A Weights & Biases panel export of two runs (``A - train/loss``, ``B - train/loss`` with their
    ``__MIN``/``__MAX``): ``FILE#A`` reads run A alone, as the curve A; the two runs of one file fit
    together with a spec each; a run the export lacks is refused with the runs it has."""
    spec = "warmup=1000,peak=1e-3,decay=cosine,end=1e-4,total=8000"
    law, theta = MomentumLaw(lam=0.99), np.array([2.0, 1.0, 0.5, 0.8])
    a = _planted(ScheduleSpec.parse(spec), 64, 1000, 1, law, theta)
    b = _planted(ScheduleSpec.parse(spec), 100, 1000, 2, law, theta)
    steps = np.union1d(a.step, b.step)
    cols = {"Step": steps}
    for run, c in (("A", a), ("B", b)):
        v = pd.Series(c.loss, index=c.step).reindex(steps).to_numpy()
        cols.update({f"{run} - train/loss": v, f"{run} - train/loss__MIN": v, f"{run} - train/loss__MAX": v})
    pd.DataFrame(cols).to_csv(tmp_path / "panel.csv", index=False)
    got_a = load_curve(f"{tmp_path / 'panel.csv'}#A", schedule=spec)
    assert got_a.name == "A" and np.array_equal(got_a.step, a.step) and np.array_equal(got_a.loss, a.loss)
    assert np.array_equal(load_curve(f"{tmp_path / 'panel.csv'}#B", schedule=spec).step, b.step)
    with pytest.raises(DataFileError, match=r"no run 'C' in this export; its runs are \['A', 'B'\]"):
        load_curve(f"{tmp_path / 'panel.csv'}#C", schedule=spec)
    with pytest.raises(DataFileError, match="could be any of"):  # the whole panel: which run is the user's to say
        load_curve(tmp_path / "panel.csv", schedule=spec)
    out = tmp_path / "fd.json"
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", f"{tmp_path / 'panel.csv'}#A",
                        "--fit", f"{tmp_path / 'panel.csv'}#B", "--law", "momentum", "--schedule", f"A:{spec}",
                        "--schedule", f"B:{spec}", "--json", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(json.loads(out.read_text())["lack_of_fit"]) == ["A", "B"]  # both runs fitted, by their names


# ------------------------------------------------------------------ linear-time responses


@pytest.mark.parametrize("time", ["steps", "area"])
def test_recursive_exponential_filter_equals_the_dense_sum(time):
    """The O(points + bins) filter against the dense (points x bins) sum it replaces, on a schedule
    with drops everywhere (random), evaluation points between and on bin centres."""
    rng = np.random.default_rng(5)
    lr = np.abs(np.cumsum(rng.standard_normal(3001))) * 1e-4 + 1e-5
    steps = np.unique(rng.integers(1, 3000, 400))
    c = LossCurve(steps, lr[steps], np.ones(steps.size), name="r").with_schedule(lr)
    f = ScheduleFeatures.build(c, c.step, float(lr.max()), bin_steps=7)
    el = f.elapsed_steps if time == "steps" else f.elapsed_area
    taus = np.array([0.5, 20.0, 700.0, 1e5])
    dense = np.stack([(-np.expm1(-el / t)) @ f.drop for t in taus], axis=1)
    np.testing.assert_allclose(f.exp_response(taus, time), dense, rtol=1e-10, atol=1e-12)


def test_laws_with_exponential_responses_never_build_the_dense_matrix():
    spec = ScheduleSpec(total=4000, peak=1e-3, warmup=100, decay="cosine")
    c = LossCurve(np.arange(1, 4001), spec.expand()[1:], np.ones(4000), name="x").with_schedule(spec.expand())
    f = ScheduleFeatures.build(c, c.step, 1e-3)
    MomentumLaw().predict(np.array([2.0, 1.0, 0.5, 0.3, 2.5]), f)
    KernelLaw(kernel="exp", time="area").predict(np.array([2.0, 1.0, 0.5, 0.3, 2.5]), f)
    KernelLaw().predict(np.array([2.0, 1.0, 0.5] + [0.1] * 10), f)
    KernelLaw(kernel="power", time="steps").predict(np.array([2.0, 1.0, 0.5, 0.3, 2.0, 1.8]), f)
    KernelLaw(kernel="power", time="area").jacobian(np.array([2.0, 1.0, 0.5, 0.3, 2.0, 1.8]), f)
    MultiPowerLaw().jacobian(np.array([2.0, 1.0, 0.5, 0.4, 0.5, 0.6, 0.5]), f)
    assert "elapsed_steps" not in f.extras and "elapsed_area" not in f.extras


@pytest.mark.parametrize("params", [[0.0, 1.01], [0.0, 6.0], [2.0, 2.0], [3.5, 1.3], [5.0, 1.01], [5.0, 6.0],
                                    [1.0, 3.7]])
def test_power_law_response_terms_meet_their_stated_error(params):
    """The sum-of-exponentials form of Q = 1 - (1 + tau/tau0)^(1-a) against the closed form on
    20,000 points of [0, t_max] that are not the 400 where the error is measured: the true error is
    within twice the stated one (the error curve is smooth on the scale tau0, far wider than the
    measuring grid's spacing) and below 1e-4 everywhere in the bounds."""
    from sde_scales.kernels import PowerLaw, PowerLawFamily

    t_max = 34000.0
    terms = PowerLawFamily().response_terms(params, t_max)
    tau = np.concatenate([np.linspace(0, t_max, 10000), np.geomspace(1e-4, t_max, 10000)])
    approx = (terms.weights * -np.expm1(-tau[:, None] / terms.taus)).sum(axis=1)
    exact = PowerLaw(10.0 ** params[0], params[1]).Q(tau)
    err = np.max(np.abs(approx - exact))
    assert err <= 2 * terms.error + 1e-12 and err < 1e-4, (err, terms.error)


def test_kernel_law_jacobians_equal_finite_differences():
    """The closed-form Jacobians of the power-law, non-parametric and instantaneous kernel laws
    (through the weights' derivatives; the level term's column included) against central differences of predict (step 1e-6: truncation and
    rounding both below 1e-7 of the columns' scale)."""
    spec = ScheduleSpec(total=3000, peak=1e-3, warmup=100, decay="linear", decay_start=2000, end=1e-4)
    lr = spec.expand()
    c = LossCurve(np.arange(10, 3001, 10), lr[np.arange(10, 3001, 10)], np.ones(300), name="x").with_schedule(lr)
    f = ScheduleFeatures.build(c, c.step, 2e-3)  # peak 0.5 in these units: the level term's column is not 0
    for law, theta in ((KernelLaw(kernel="power", time="steps"), np.array([2.0, 1.0, 0.5, 0.3, 2.2, 1.7])),
                       (KernelLaw(kernel="power", time="area"), np.array([2.0, 1.0, 0.5, 0.3, 1.5, 2.5])),
                       (KernelLaw(time="steps"), np.array([2.0, 1.0, 0.5] + list(np.linspace(0.01, 0.1, 10)))),
                       (KernelLaw(time="steps", level=False), np.array([2.0, 1.0, 0.5] + list(np.linspace(0.01, 0.1, 10)))),
                       (KernelLaw(kernel="instant", time="steps"), np.array([2.0, 1.0, 0.5, 0.3])),
                       (MultiPowerLaw(), np.array([2.0, 1.0, 0.5, 0.4, 0.8, 0.6, 0.7]))):
        J = law.jacobian(theta, f)
        num = np.empty_like(J)
        for k in range(theta.size):
            e = np.zeros_like(theta)
            e[k] = 1e-6
            num[:, k] = (law.predict(theta + e, f) - law.predict(theta - e, f)) / 2e-6
        np.testing.assert_allclose(J, num, rtol=1e-5, atol=1e-6 * np.abs(num).max())


@pytest.mark.parametrize("theta", [[3, 2, 0.5, 0.4, 0.5, 0.6, 0.5], [3, 2, 0.5, 0.4, 5.0, 0.01, 2.0],
                                   [3, 2, 0.5, 0.4, 1e3, 5.0, 0.0], [3, 2, 0.5, 0.4, 1e-4, 1.0, 1.0],
                                   [3, 2, 0.5, 0.4, 1e3, 5.0, 2.0]])
def test_multi_power_law_equals_its_published_dense_sum(theta):
    """The linear-time multi-power law against Luo et al.'s sum written out densely, at corners of
    its bounds, on a random schedule: they differ by at most B * (stated error) * sum |drops|."""
    rng = np.random.default_rng(11)
    lr = np.concatenate([np.linspace(1e-5, 1e-3, 200), 1e-3 * np.exp(-np.cumsum(rng.exponential(1e-3, 4800)))])
    steps = np.unique(rng.integers(1, 5000, 300))
    c = LossCurve(steps, lr[steps], np.ones(steps.size), name="r").with_schedule(lr)
    f = ScheduleFeatures.build(c, c.step, 1e-3)
    theta = np.array(theta, dtype=float)
    C, beta, gamma = theta[4:7]
    x = np.maximum(f.eta_after, 1e-6)[None, :] ** -gamma * f.elapsed_area
    dense = theta[0] + theta[1] * np.maximum(f.S1, 1e-12) ** -theta[2] - theta[3] * ((1 - (1 + C * x) ** -beta) @ f.drop)
    law = MultiPowerLaw()
    bound = theta[3] * law.embedding_error(theta, f) * np.abs(f.drop).sum()
    assert np.max(np.abs(law.predict(theta, f) - dense)) <= bound + 1e-12
    assert law.embedding_error(theta, f) < 1e-3


def test_power_law_kernel_law_equals_the_direct_convolution():
    """Kernel law with the power-law kernel against the dense sum of drops times the closed-form
    Q (an independent implementation): they differ by at most B * error * (sum of |drops|). Rates in
    units of 2e-3, so the level term is B (0.5 - 1)."""
    spec = ScheduleSpec(total=5000, peak=1e-3, warmup=200, decay="cosine", end=1e-5)
    lr = spec.expand()
    steps = np.arange(20, 5001, 20)
    c = LossCurve(steps, lr[steps], np.ones(steps.size), name="x").with_schedule(lr)
    f = ScheduleFeatures.build(c, c.step, 2e-3)
    theta = np.array([2.0, 1.0, 0.5, 0.7, 2.3, 1.6])
    for level in (True, False):
        law = KernelLaw(kernel="power", time="steps", level=level)
        direct = theta[0] + theta[1] * np.maximum(f.S1, 1e-12) ** -theta[2] - theta[3] * (
            (1 - (1 + f.elapsed_steps / 10**theta[4]) ** (1 - theta[5])) @ f.drop) + theta[3] * (0.5 - 1) * level
        bound = theta[3] * law.embedding_error(theta, f) * np.abs(f.drop).sum()
        assert np.max(np.abs(law.predict(theta, f) - direct)) <= bound + 1e-12


# ------------------------------------------------------------------ warnings and bad values


def _cosine_curve(name="c", total=6000, noise_seed=0):
    spec = ScheduleSpec(total=total, peak=1e-3, warmup=100, decay="cosine", end=1e-4)
    lr = spec.expand()
    steps = np.arange(50, total + 1, 50)
    cum = np.cumsum(lr) / 1e-3
    loss = 3 + 2 * cum[steps - 1] ** -0.4 + 0.002 * np.random.default_rng(noise_seed).standard_normal(steps.size)
    return LossCurve(steps, lr[steps], loss, name=name).with_schedule(lr)


def test_constant_curve_alone_warns_that_the_response_is_not_determined():
    from sde_scales.fitting.fit import FitWarning

    c = _cosine_curve()
    const = LossCurve(c.step, np.full(c.step.size, 1e-3), c.loss, name="const")
    with pytest.warns(FitWarning, match="no learning-rate drop"):
        res = fit(KernelLaw(kernel="exp", time="steps"), [const])
    assert any("no learning-rate drop" in w for w in res.extra["warnings"])


def test_a_fit_stopped_by_its_evaluation_limit_says_so():
    from sde_scales.fitting.fit import FitWarning

    with pytest.warns(FitWarning, match="limit of 3 evaluations before converging"):
        stopped = fit(KernelLaw(kernel="exp", time="steps"), [_cosine_curve()], max_evaluations=3)
    assert stopped.extra["converged"] is False and stopped.extra["evaluations"] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)  # nothing said where the default limit is not reached
        warnings.filterwarnings("ignore", category=FitWarning, message="^(?!.*evaluations before converging)")
        done = fit(KernelLaw(kernel="exp", time="steps"), [_cosine_curve()])
    assert done.extra["converged"] is True and done.extra["evaluations"] < 2000


def test_parameter_on_a_bound_is_named():
    from sde_scales.fitting.fit import FitWarning

    # drops only: the level term B * peak would otherwise stand in for the pinned L0
    with pytest.warns(FitWarning, match=r"alpha = .* on its (upper|lower) bound"):
        fit(KernelLaw(kernel="exp", time="steps", level=False), [_cosine_curve()], fixed={"L0": 0.0, "A": 0.5})


@pytest.mark.parametrize("col, value", [("lr", 1e300), ("loss", 1e300), ("loss", -1e15)])
def test_absurd_values_are_refused_by_row(col, value):
    c = _cosine_curve()
    wide = c.loss * np.geomspace(1, 1e-8, c.loss.size)  # a loss that falls by eight decades is data
    LossCurve(c.step, c.lr, wide, name="wide")
    lr, loss = c.lr.copy(), c.loss.copy()
    (lr if col == "lr" else loss)[17] = value
    with pytest.raises(DataFileError, match=f"column '{col}', row 17: .* corrupt row"):
        LossCurve(c.step, lr, loss, name="bad")


def test_predicting_a_schedule_of_zeros_is_refused():
    res = fit(MomentumLaw(lam=0.99), [_cosine_curve()])
    zero = LossCurve(np.arange(1, 41), np.zeros(40), np.ones(40), name="zero")
    with pytest.raises(InvalidArgumentError, match="0 at every step"):
        predict(res, zero)


def test_law_auto_cross_validates_every_candidate():
    from sde_scales.fitting.fit import score
    from sde_scales.fitting.report import AUTO_CANDIDATES, choose_law

    law, theta = KernelLaw(kernel="exp", time="steps"), np.array([2.0, 1.0, 0.5, 0.6, 2.5])
    base = dict(total=3000, peak=1e-3, warmup=100)
    specs = [ScheduleSpec(**base, decay="cosine", end=1e-4), ScheduleSpec(**base, decay="linear", decay_start=2000),
             ScheduleSpec(**base, decay="step", decay_start=1500, end=3e-4)]
    curves = [_planted(s, 25, 100, i, law, theta, noise=0.002) for i, s in enumerate(specs)]
    auto = choose_law(curves, skip_steps=0, smooth_steps=200)
    assert len(auto["candidates"]) == len(AUTO_CANDIDATES)
    cv = {r["law"]: r["cv_rmse"] for r in auto["candidates"]}
    assert auto["chosen"] == min((v, k) for k, v in cv.items() if v is not None)[1]
    # one fold of the exponential kernel, by hand
    res = fit(KernelLaw(kernel="exp", time="steps", offset="test"), curves[1:])  # make_law's default offset test
    by_hand = score(curves[0], predict(res, curves[0]), smooth_steps=200)["rmse"]
    row = next(r for r in auto["candidates"] if r["law"] == "kernel(exp, steps, offset tested)")
    assert row["folds"][0]["rmse"] == pytest.approx(by_hand, rel=1e-9)
    # the planted kernel has a 316-step delay and B = 0.6: the folds separate the no-delay
    # candidate from the chosen one, so it is not among those the data leave undecided
    assert auto["chosen"] != "kernel(instant, steps, offset tested)"
    assert "kernel(instant, steps, offset tested)" not in auto["undecided"]
    assert auto["decided"] == (not auto["undecided"])
    # the same with the (candidate, fold) fits in two worker processes, which run them in another
    # order (slow laws first): every fold's scores land in their place, bit for bit (a fit runs on
    # one BLAS thread in any process, so its last bits do not follow the thread count either)
    par = choose_law(curves, skip_steps=0, smooth_steps=200, workers=2)
    assert par["chosen"] == auto["chosen"] and par["undecided"] == auto["undecided"]
    for a, b in zip(auto["candidates"], par["candidates"]):
        assert a["law"] == b["law"]
        for fa, fb in zip(a["folds"], b["folds"]):
            assert fa["held_out"] == fb["held_out"] and fa["rmse"] == fb["rmse"]
            assert fa["final_loss_err"] == fb["final_loss_err"]


def test_law_auto_on_one_curve_validates_on_its_own_tail():
    """One fitted curve: every candidate is fitted to the rows before 50%, 65% and 80% of its steps
    and scored on the rows after; a fold, rebuilt by hand from the raw columns, gives the same
    RMSE."""
    from sde_scales.fitting.fit import score
    from sde_scales.fitting.report import AUTO_CANDIDATES, ROLLING_FRACTIONS, AutoChoiceWarning, choose_law, fit_auto

    law, theta = KernelLaw(kernel="exp", time="steps"), np.array([2.0, 1.0, 0.5, 0.6, 2.5])
    spec = ScheduleSpec(total=3000, peak=1e-3, warmup=100, decay="cosine", end=1e-4)
    c = _planted(spec, 25, 100, 3, law, theta, noise=0.002)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutoChoiceWarning)
        # the multi-power law is left out for time (about 10 s a fold here); the folds are the same for every candidate
        cands = [k for k in AUTO_CANDIDATES if k[0] != "mpl"]
        auto, fitted = fit_auto([c], skip_steps=0, smooth_steps=200, candidates=cands)
    if auto["decided"]:
        assert fitted.law.label == auto["chosen"] and fitted.curves == (c.name,)
    else:  # the laws the folds do not separate, averaged (every one of them fits here)
        assert fitted.labels == (auto["chosen"], *auto["undecided"]) and auto["member_failures"] == {}
        assert all(r.law.label == lab and r.curves == (c.name,) for lab, r in zip(fitted.labels, fitted.results))
    assert "rolling origin" in auto["method"]
    assert [r["name"] for r in auto["candidates"]] == [k[0] for k in cands]
    row = next(r for r in auto["candidates"] if r["law"] == "kernel(exp, steps, offset tested)")
    assert len(row["folds"]) == len(ROLLING_FRACTIONS)
    cut = int(c.step[0] + ROLLING_FRACTIONS[1] * (c.step[-1] - c.step[0]))
    keep = c.step < cut
    prefix = LossCurve(c.step[keep], c.lr[keep], c.loss[keep], name="prefix").with_schedule(spec.expand()[:cut])
    res = fit(KernelLaw(kernel="exp", time="steps", offset="test"), [prefix])
    by_hand = score(c, predict(res, c), skip_steps=cut, smooth_steps=200)["rmse"]
    assert row["folds"][1]["rmse"] == pytest.approx(by_hand, rel=1e-6)
    short = LossCurve(np.arange(1, 31), np.full(30, 1e-3), np.linspace(3, 2, 30), name="short")
    with pytest.raises(InvalidArgumentError, match="first 50% of its steps.*second --fit curve"):
        choose_law([short], skip_steps=0, smooth_steps=10)


def test_law_auto_says_when_the_folds_do_not_decide():
    """The decision rule against scipy's paired t-test on log RMSEs: a candidate is left undecided
    exactly when its fold errors are not significantly (two-sided 5%) above the chosen one's."""
    from scipy import stats

    from sde_scales.fitting.report import _undecided

    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(400):
        n = int(rng.integers(2, 8))
        best = 0.03 + 0.002 * rng.standard_normal(n)
        other = best + rng.normal(rng.uniform(0, 0.002), 0.001, n)
        d = np.log(other) - np.log(best)
        expected = bool(d.mean() <= 1e-6 or stats.ttest_rel(np.log(other), np.log(best)).pvalue >= 0.05)
        assert _undecided(best, other) == expected
        seen.add(expected)
    assert seen == {True, False}  # both outcomes exercised
    assert _undecided([0.03], [0.05])  # one fold decides nothing
    # two laws that the curves reduce to one fit (a run without a drop) differ in the seventh digit of
    # every fold, so consistently that the t interval alone calls it decided: a tie, not a choice
    best = np.array([0.0213, 0.0240, 0.0187])
    twin = best * np.exp([7.08e-8, 7.15e-8, 4.29e-8])  # the log ratios measured on the shared constant run
    d = np.log(twin / best)
    assert stats.ttest_rel(np.log(twin), np.log(best)).pvalue < 0.05  # the t test alone would separate them
    assert _undecided(best, twin)
    assert not _undecided(best, best * np.exp([2.0e-2, 2.1e-2, 1.9e-2]))  # two percent, as consistent: decided
    assert d.mean() < 1e-6


def test_predicting_a_deeper_decay_than_any_fitted_warns():
    from sde_scales.fitting.fit import PeakLRWarning

    law, theta = MomentumLaw(lam=0.99), np.array([2.0, 1.0, 0.5, 0.8])
    base = dict(total=3000, peak=1e-3, warmup=100)
    shallow = _planted(ScheduleSpec(**base, decay="step", decay_start=1500, end=8e-4), 25, 100, 0, law, theta)
    res = fit(law, [shallow])
    deep = _planted(ScheduleSpec(**base, decay="linear", decay_start=2000), 25, 100, 1, law, theta)
    with pytest.warns(PeakLRWarning, match="deeper than any fitted"):
        predict(res, deep)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PeakLRWarning)
        predict(res, shallow)


def test_predicting_far_more_learning_rate_area_than_any_fitted_warns():
    """A 1,200-step head of a run fitted, the 3,000-step run predicted: 2.4 times the fitted area,
    the power term read beyond the data, a warning. A WSD run predicted from a cosine run of the
    same length (1.6 times the area, as on the shared protocols) gets none."""
    from sde_scales.fitting.fit import PeakLRWarning

    law, theta = MomentumLaw(lam=0.99), np.array([2.0, 1.0, 0.5, 0.8])
    base = dict(total=3000, peak=1e-3, warmup=100)
    cos = _planted(ScheduleSpec(**base, decay="cosine", end=1e-4), 25, 100, 0, law, theta)
    wsd = _planted(ScheduleSpec(**base, decay="linear", decay_start=2400), 25, 100, 1, law, theta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        head = fit(law, [wsd.head(1200)])
        whole = fit(law, [cos])
    with pytest.warns(PeakLRWarning, match=r"learning-rate area .* is 2\.[3-5] times the largest fitted"):
        predict(head, wsd)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PeakLRWarning)
        predict(whole, wsd)


def test_time_scale_interval_from_curvature():
    """Planted exponential-kernel curves with sharp drops: the 95% interval of the time scale
    (Gauss-Newton curvature) contains the planted 10^2.5 and is well under a decade wide; a constant
    curve alone gets no interval and a warning that says so."""
    from sde_scales.fitting.fit import IdentifiabilityWarning

    law, theta = KernelLaw(kernel="exp", time="steps"), np.array([2.0, 1.0, 0.5, 0.6, 2.5])
    base = dict(total=6000, peak=1e-3, warmup=100)
    curves = [_planted(ScheduleSpec(**base, decay="step", decay_start=k, end=3e-4), 20, 100, i, law, theta)
              for i, k in enumerate((2000, 4000))]
    res = fit(law, curves)
    ti = res.extra["time_scale_interval"]
    assert ti["ci"][0] < 10 ** 2.5 < ti["ci"][1] and ti["ci"][1] / ti["ci"][0] < 10 and ti["warning"] is None
    const = _planted(ScheduleSpec(**base), 20, 100, 5, law, theta)
    with pytest.warns(IdentifiabilityWarning, match="no interval"):
        r = fit(law, [const])
    assert r.extra["time_scale_interval"]["ci"] == [None, None]


def test_store_curves_keep_configurations_apart_and_name_them_apart(tmp_path):
    """Runs that differ in a field outside the curve's name are not averaged as seeds (the base
    width was averaged in: one "mup_n16_lr0.1_cosine" of four runs), and their names differ (depth
    1 and depth 2 got the same name)."""
    pytest.importorskip("torch")
    from sde_scales.fitting.stores import curves_from_store
    from sde_scales.train.sweep import run_sweep
    from sde_scales.train.trainer import config_grid

    common = dict(dataset="synthetic", epochs=4, n_train=256, d_in=8, batch_size=32, log_every=1, schedule="cosine")
    cfg = (config_grid(["mup"], [16], [0.1], [0, 1], **common)
           + config_grid(["mup"], [16], [0.1], [0, 1], depth=2, **common)
           + config_grid(["mup"], [16], [0.1], [0, 1], base_width=8, **common))
    run_sweep(cfg, str(tmp_path / "s"), progress=False)
    curves = curves_from_store(tmp_path / "s", metric="eval_loss")
    assert sorted(c.name for c in curves) == ["mup_n16_lr0.1_cosine_depth1_base_width0",
                                              "mup_n16_lr0.1_cosine_depth1_base_width8",
                                              "mup_n16_lr0.1_cosine_depth2_base_width0"]
    assert all(c.source == f"{tmp_path / 's'}, runs {c.name} (2 seeds)" for c in curves)  # an error names them
    # one configuration selected: the plain name, as before
    [c] = curves_from_store(tmp_path / "s", {"depth": 2}, metric="eval_loss")
    assert c.name == "mup_n16_lr0.1_cosine"


def test_fit_delay_reads_a_run_store_with_each_runs_schedule(tmp_path):
    pytest.importorskip("torch")
    from sde_scales.fitting.stores import curves_from_store, parse_where
    from sde_scales.schedules import wsd
    from sde_scales.train.sweep import run_sweep
    from sde_scales.train.trainer import config_grid

    cfg = []
    for sched, kw in (("cosine", ()), ("wsd", (("fraction", 0.3),))):
        cfg += config_grid(["mup"], [32], [0.3], [0, 1], dataset="synthetic", d_in=16, n_train=1024, batch_size=64,
                           epochs=6, log_every=4, eval_every=0, schedule=sched, schedule_kw=kw, data_order="seed")
    run_sweep(cfg, str(tmp_path / "s"), progress=False)
    assert parse_where("param=mup,width=32,lr=0.3") == {"param": "mup", "width": 32, "lr": 0.3}
    with pytest.raises(InvalidArgumentError, match="width= is given twice"):  # the second was used, in silence
        parse_where("width=32,width=64")
    with pytest.raises(InvalidArgumentError, match="width=inf is not a finite number"):  # an OverflowError before
        parse_where("width=inf")
    [c] = curves_from_store(tmp_path / "s", {"schedule": "wsd"}, metric="eval_loss")
    n = 6 * 1024 // 64
    np.testing.assert_allclose(c.per_step_lr()[:n], wsd(n, 0.3, fraction=0.3))  # the schedule the runs used
    assert c.step[-1] == n and c.name == "mup_n32_lr0.3_wsd_fraction0.3"
    per = curves_from_store(tmp_path / "s", {"schedule": "wsd"}, metric="eval_loss", per_seed=True)
    assert len(per) == 2 and np.allclose((per[0].loss + per[1].loss) / 2, c.loss)
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--store", str(tmp_path / "s"), "--where",
                        "schedule=cosine", "--predict-where", "schedule=wsd", "--law", "momentum", "--metric",
                        "eval_loss", "--smooth-steps", "40", "--json", str(tmp_path / "f.json")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "f.json").read_text())
    assert [p["file"] for p in doc["predict"]] == ["mup_n32_lr0.3_wsd_fraction0.3"]
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--store", str(tmp_path / "s"), "--where",
                        "nosuch=1"], capture_output=True, text=True)
    assert r.returncode == 2 and "no column 'nosuch'" in r.stderr


def test_curves_from_a_store_leave_diverged_runs_out_of_the_seed_mean(tmp_path, monkeypatch):
    """A seed that diverged is not averaged into its configuration's curve: with seed 1 marked
    diverged in the store's table, the curve is seed 0's alone; with both marked, nothing is left
    and the error counts the runs left out."""
    pytest.importorskip("torch")
    from sde_scales.fitting.stores import curves_from_store
    from sde_scales.train.store import RunStore
    from sde_scales.train.sweep import run_sweep
    from sde_scales.train.trainer import config_grid

    cfg = config_grid(["mup"], [32], [0.3], [0, 1], dataset="synthetic", d_in=16, n_train=1024, batch_size=64,
                      epochs=6, log_every=4, eval_every=0, schedule="cosine", data_order="seed")
    run_sweep(cfg, str(tmp_path / "s"), progress=False)
    per = curves_from_store(tmp_path / "s", metric="eval_loss", per_seed=True)
    seed0 = next(c for c in per if c.name.endswith("_seed0"))
    read = RunStore.read

    def marked(seeds):
        def fake(self):
            runs, traj = read(self)
            runs = runs.copy()
            runs.loc[runs.seed.isin(seeds), "status"] = "diverged"
            return runs, traj
        return fake

    monkeypatch.setattr(RunStore, "read", marked([1]))
    [c] = curves_from_store(tmp_path / "s", metric="eval_loss")
    np.testing.assert_array_equal(c.loss, seed0.loss)
    monkeypatch.setattr(RunStore, "read", marked([0, 1]))
    with pytest.raises(InvalidArgumentError, match=r"no finished runs .* \(2 diverged runs left out\)"):
        curves_from_store(tmp_path / "s", metric="eval_loss")


def test_fit_records_the_embedding_error_and_warns_when_the_form_is_coarse(monkeypatch):
    """A power-law kernel fit reports its sum-of-exponentials error in the JSON extra; with a
    quadrature step of 3 (instead of 0.5: trapezoid error about e^(-pi^2/3) = 4%) the same fit warns
    that it fitted an approximation."""
    from sde_scales import kernels
    from sde_scales.fitting.fit import EMBEDDING_TOL, FitWarning

    c = _cosine_curve()
    const = LossCurve(c.step, np.full(c.step.size, 1e-3), c.loss + 0.05, name="const")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fine = fit(KernelLaw(kernel="power", time="steps"), [const, c])
    assert 0 < fine.extra["embedding_error"] < EMBEDDING_TOL
    assert not any("sum-of-exponentials form" in w for w in fine.extra["warnings"])
    monkeypatch.setattr(kernels, "POWER_QUAD_STEP", 3.0)
    with pytest.warns(FitWarning, match="sum-of-exponentials form misses"):
        coarse = fit(KernelLaw(kernel="power", time="steps"), [const, c])
    assert coarse.extra["embedding_error"] > EMBEDDING_TOL


def test_law_auto_tells_a_kernel_in_area_from_one_in_steps():
    """Curves planted with an exponential kernel in learning-rate area (time scale 300 area units:
    300 steps at the peak, 3,000 after a drop to a tenth): leaving one curve out, --law auto
    chooses a kernel in area, and the folds separate it from the same kernel in steps, whose one
    time scale cannot serve both drop depths."""
    from sde_scales.fitting.report import choose_law

    law, theta = KernelLaw(kernel="exp", time="area"), np.array([2.0, 1.0, 0.5, 0.6, np.log10(300.0)])
    base = dict(total=6000, peak=1e-3, warmup=100)
    specs = [ScheduleSpec(**base, decay="step", decay_start=2000, end=1e-4),
             ScheduleSpec(**base, decay="step", decay_start=3000, end=5e-4),
             ScheduleSpec(**base, decay="step", decay_start=2500, end=2.5e-4),
             ScheduleSpec(**base, decay="cosine", end=1e-4)]
    curves = [_planted(s, 25, 100, i, law, theta, noise=0.002) for i, s in enumerate(specs)]
    cands = (("kernel", "exp", "steps"), ("kernel", "exp", "area"), ("kernel", "instant", "steps"))
    auto = choose_law(curves, skip_steps=0, smooth_steps=200, candidates=cands)
    assert auto["chosen"] == "kernel(exp, area, offset tested)", [(r["law"], r["cv_rmse"]) for r in auto["candidates"]]
    assert "kernel(exp, steps, offset tested)" not in auto["undecided"]
