"""Grid analyses on hand-built run tables whose answers are known."""

import numpy as np
import pandas as pd
import pytest

from sde_scales.analysis import (
    diverged_counts,
    eta_star,
    loss_ratio,
    loss_table,
    seed_fluctuation,
    settle_step,
    transfer_curves,
)


def _tables():
    """Two widths, three learning rates, two seeds, steps 10..50. Loss = base(lr, step) with the
    best lr switching from 0.3 (early) to 0.1 (from step 30 on); lr 1.0 diverges at step 40."""
    runs, rows = [], []
    for w in (64, 128):
        for lr in (0.1, 0.3, 1.0):
            for s in (0, 1):
                rid = f"{w}-{lr}-{s}"
                runs.append({"run_id": rid, "param": "mup", "width": w, "lr": lr, "seed": s,
                             "status": "diverged" if lr == 1.0 else "finished"})
                for step in (10, 20, 30, 40, 50):
                    if lr == 0.1:
                        v = 2.0 - 0.02 * step
                    elif lr == 0.3:
                        v = 1.9 - 0.01 * step
                    else:
                        v = 3.0 if step < 40 else np.nan
                    v += 0.001 * s  # seeds differ slightly
                    rows.append({"run_id": rid, "step": step, "epoch": step / 10, "metric": "train_loss", "layer": -1, "value": v})
                    rows.append({"run_id": rid, "step": step, "epoch": step / 10, "metric": "w", "layer": 1000,
                                 "value": 0.5 + step * 1e-3 * (1 + s) / w})
    return pd.DataFrame(runs), pd.DataFrame(rows)


def test_eta_star_and_settle_step():
    runs, traj = _tables()
    best = eta_star(runs, traj)
    b64 = best[best.width == 64].set_index("step").eta_star
    # step 10: 0.1 -> 1.8, 0.3 -> 1.8 (tie broken to the first), step 20: 1.6 vs 1.7 ...
    assert b64.loc[50] == 0.1 and b64.loc[20] == 0.1
    st = settle_step(best)
    assert set(st.final_eta_star) == {0.1}


def test_settle_step_is_the_first_step_from_which_eta_star_stays_final():
    """By hand: eta* 0.3, 0.1, 0.3, 0.1, 0.1 at steps 10..50 settles at step 40 (it was 0.3 at 30);
    one that never changes settles at its first logged step. Rows come in any order."""
    best = pd.DataFrame({"param": "mup", "width": [64] * 5 + [128] * 3,
                         "step": [50, 10, 30, 20, 40, 30, 10, 20],
                         "eta_star": [0.1, 0.3, 0.3, 0.1, 0.1, 0.2, 0.2, 0.2]})
    st = settle_step(best).set_index("width")
    assert st.settle_step.loc[64] == 40 and st.final_eta_star.loc[64] == 0.1
    assert st.settle_step.loc[128] == 10 and st.final_eta_star.loc[128] == 0.2


def test_loss_ratio_leaves_diverged_runs_out_and_counts_them():
    """lr 1.0 diverged (both seeds): the ratio is over 0.1 and 0.3 only, and says 2 runs were left out."""
    runs, traj = _tables()
    r = loss_ratio(runs, traj).set_index(["width", "step"])
    # step 10: 0.1 -> 1.8005, 0.3 -> 1.8005; step 40: 0.1 -> 1.2005, 0.3 -> 1.5005
    assert r.ratio.loc[(64, 10)] == pytest.approx(1.0)
    assert r.ratio.loc[(64, 40)] == pytest.approx(1.5005 / 1.2005)
    assert (r.n_diverged == 2).all()
    dc = diverged_counts(runs).set_index("width")
    assert dc.n_diverged.loc[64] == 2 and dc.diverged_lrs.loc[64] == [1.0]
    t = loss_table(runs, traj, diverged="inf")
    assert np.isinf(t[(t.lr == 1.0) & (t.step == 40)].value).all()  # the old reading, on request


def test_transfer_and_seed_fluctuation():
    runs, traj = _tables()
    tr = transfer_curves(runs, traj)
    v = tr[(tr.width == 64) & (tr.lr == 0.1)].value.item()
    assert v == pytest.approx(1.0005)
    f = seed_fluctuation(runs, traj, 0.1)
    assert f["widths"] == [64, 128]
    # displacement (step 50 - step 10) * 1e-3 (1 + s) / w: seeds 0 and 1 differ by 0.04/w
    d = f["micro"][0]
    assert d[1] - d[0] == pytest.approx(0.04 / 64)


def test_two_sweeps_in_one_store_are_not_averaged_as_seeds():
    """A cosine and a WSD sweep written into one store: the analyses grouped by (param, width, lr)
    and averaged the two schedules as seeds. They are refused by field; so are runs of two
    parametrizations at one learning rate in seed_fluctuation, which pooled them."""
    from sde_scales.errors import InvalidArgumentError

    runs, traj = _tables()
    two = runs.assign(schedule="cosine")
    wsd = two.assign(schedule="wsd", run_id=two.run_id + "w")
    both = pd.concat([two, wsd], ignore_index=True)
    traj2 = pd.concat([traj, traj.assign(run_id=traj.run_id + "w", value=traj.value + 1.0)], ignore_index=True)
    for call in (eta_star, loss_ratio, transfer_curves, lambda r, t: seed_fluctuation(r, t, 0.1)):
        with pytest.raises(InvalidArgumentError, match=r"differ in schedule \(schedule=cosine: widths \[64, 128\]"):
            call(both, traj2)
    # one schedule selected: the answers of the one-sweep tables
    assert transfer_curves(two, traj).value.tolist() == transfer_curves(runs, traj).value.tolist()
    sp = runs.assign(param="sp", run_id=runs.run_id + "sp")
    mixed = pd.concat([runs, sp], ignore_index=True)
    traj3 = pd.concat([traj, traj.assign(run_id=traj.run_id + "sp")], ignore_index=True)
    with pytest.raises(InvalidArgumentError, match=r"runs of \['mup', 'sp'\] at lr=0.1"):
        seed_fluctuation(mixed, traj3, 0.1)
    f = seed_fluctuation(mixed, traj3, 0.1, param="sp")
    assert [m.size for m in f["macro"]] == [2, 2]  # two seeds per width, not four
    with pytest.raises(InvalidArgumentError, match="no finished runs at lr=0.1 with param='ntk'"):
        seed_fluctuation(mixed, traj3, 0.1, param="ntk")


def test_eta_star_at_the_end_of_the_grid_is_flagged():
    """The best of 0.1, 0.3 (and 1.0, diverged) is 0.1 from step 20 on: the smallest rate trained,
    so the optimum may lie below the grid; it was reported as eta* with nothing said. At step 10 the
    best, 0.3, lies below a rate that diverged and inside the grid."""
    runs, traj = _tables()
    best = eta_star(runs, traj).set_index(["width", "step"])
    assert best.at_grid_edge.loc[(64, 50)] and best.at_grid_edge.loc[(128, 20)]
    assert best.eta_star.loc[(64, 10)] == 0.3 and not best.at_grid_edge.loc[(64, 10)]
    assert settle_step(best.reset_index()).final_at_grid_edge.all()
    # the same runs with a rate of 0.03 trained too (worse than 0.1 throughout): 0.1 is inside the grid
    extra_runs = runs[runs.lr == 0.1].assign(lr=0.03, run_id=lambda d: d.run_id + "-low")
    extra_traj = traj[traj.run_id.isin(runs[runs.lr == 0.1].run_id)].assign(
        run_id=lambda d: d.run_id + "-low", value=lambda d: d.value + 0.5)
    best = eta_star(pd.concat([runs, extra_runs]), pd.concat([traj, extra_traj]))
    assert set(best[best.step >= 20].eta_star) == {0.1} and not best.at_grid_edge.any()


def test_small_learning_rates_are_told_apart_when_looked_up():
    """Rates of 1e-9 and 2e-9 (the test's 0.1 and 0.3 scaled by 1e-8): np.isclose's absolute 1e-8
    took them for one rate, so seed_fluctuation at 1e-9 pooled both rates' runs as four seeds."""
    runs, traj = _tables()
    small = runs.assign(lr=runs.lr * 1e-8)
    f = seed_fluctuation(small, traj, 1e-9)
    assert [m.size for m in f["macro"]] == [2, 2]  # the two seeds at 1e-9, per width
    ref = seed_fluctuation(runs, traj, 0.1)
    for a, b in zip(f["macro"], ref["macro"]):
        np.testing.assert_array_equal(a, b)
    # a rate read back with rounding in its last digits still matches
    assert [m.size for m in seed_fluctuation(runs.assign(lr=runs.lr * (1 + 1e-12)), traj, 0.1)["macro"]] == [2, 2]
