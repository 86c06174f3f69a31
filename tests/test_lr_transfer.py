"""experiments/lr_transfer.py's summary: the optimum per width from the parabola through the best
grid point and its neighbours, the slope of log2 eta* against log2 width, and that slope per seed."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

from lr_transfer import eta_star_slope, optimum_table, per_seed_slopes  # noqa: E402

LRS = 0.01 * 2.0 ** (np.arange(15) / 3)  # 0.01 .. 0.25, steps of 2^(1/3)


def _loss(lr, eta):
    """A final loss that is a parabola in log lr with its vertex at eta: the parabola through any
    three grid points of it has that vertex exactly."""
    return 1.0 + 0.3 * (np.log(lr) - np.log(eta)) ** 2


def _frames(eta_of):
    """runs and trajectories as the run store gives them: one finished run per (param, width, lr,
    seed), its train loss logged at steps 0 and 100 (the last is the final loss)."""
    runs, traj = [], []
    for param in ("mup", "sp"):
        for w in (64, 256, 1024):
            for seed in (0, 1):
                for lr in LRS:
                    rid = f"{param}-{w}-{lr:.6g}-{seed}"
                    runs.append({"run_id": rid, "param": param, "width": w, "lr": lr, "seed": seed,
                                 "status": "finished"})
                    for step, v in ((0, 5.0), (100, _loss(lr, eta_of(param, w, seed)))):
                        traj.append({"run_id": rid, "step": step, "epoch": 0, "metric": "train_loss", "layer": -1,
                                     "value": v})
    return pd.DataFrame(runs), pd.DataFrame(traj)


def test_the_slope_of_a_planted_drift_is_recovered_per_seed_and_together():
    """Planted optima: muP's fixed at 0.05 (slope 0), SP's 0.1 (64/w)^(1/2) in seed 0 and
    0.1 (64/w)^(1/4) in seed 1 (slopes -1/2 and -1/4 per doubling of width), inside the grid.
    Each seed's slope is recovered to the parabola's exactness (1e-9). The seed mean of two
    parabolas of one curvature is the parabola whose vertex is the mean of their log vertices, so
    the slope of the seeds together is the mean of theirs, -3/8."""
    def eta(param, w, seed):
        return 0.05 if param == "mup" else 0.1 * (64 / w) ** (0.5 if seed == 0 else 0.25)

    runs, traj = _frames(eta)
    seeds = per_seed_slopes(runs, traj)
    assert seeds["mup"][0] == pytest.approx(0.0, abs=1e-9) and seeds["mup"][1] == pytest.approx(0.0, abs=1e-9)
    assert seeds["sp"][0] == pytest.approx(-0.5, abs=1e-9) and seeds["sp"][1] == pytest.approx(-0.25, abs=1e-9)
    from sde_scales.analysis import transfer_curves

    table = optimum_table(transfer_curves(runs, traj))
    assert eta_star_slope(table, "mup") == pytest.approx(0.0, abs=1e-9)
    assert eta_star_slope(table, "sp") == pytest.approx(-0.375, abs=1e-9)


def test_an_optimum_at_the_grid_end_gives_no_slope():
    """At width 1024 SP's planted optimum (0.001) lies below the grid's least rate: the best grid
    point is the end, the parabola has no vertex there, and the slope is None, not a number."""
    runs, traj = _frames(lambda p, w, s: 0.05 if p == "mup" or w < 1024 else 0.001)
    seeds = per_seed_slopes(runs, traj)
    assert seeds["sp"] == {0: None, 1: None}
    assert seeds["mup"][0] == pytest.approx(0.0, abs=1e-9)
    from sde_scales.analysis import transfer_curves

    table = optimum_table(transfer_curves(runs, traj))
    assert next(r for r in table if r["param"] == "sp" and r["width"] == 1024)["eta_star"] is None
    assert eta_star_slope(table, "sp") is None
