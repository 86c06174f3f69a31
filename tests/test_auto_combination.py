"""``experiments/auto_combination.py``: the rules that combine ``--law auto``'s candidates, on
cases whose answers are known by construction."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "auto_combination.py"
sys.path.insert(0, str(ROOT / "experiments"))

from auto_combination import rule_predictions, simplex_weights  # noqa: E402

CANDS = [("kernel", "exp", "steps"), ("kernel", "exp", "area"), ("mpl", None, None)]


def test_simplex_weights_recover_a_target_that_is_a_mixture():
    """A target that is 0.3 of one candidate and 0.7 of another, in every fold, gets those weights
    (the quadratic's minimum is unique: the candidates are independent), a third candidate none."""
    rng = np.random.default_rng(0)
    folds = []
    for _ in range(4):
        P = rng.standard_normal((3, 200))
        folds.append((P, 0.3 * P[0] + 0.7 * P[2], 1.0))
    np.testing.assert_allclose(simplex_weights(folds), [0.3, 0.0, 0.7], atol=1e-6)
    # a target outside the candidates' hull: the weights stay on the simplex
    w = simplex_weights([(P, 3 * P[1], 1.0) for P, _, _ in folds])
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0) and w[1] == pytest.approx(1.0, abs=1e-6)


def _fits(errors, full):
    """Fits of the three candidates in folds whose held-out target is 0 and whose prediction is the
    candidate's error, constant along the fold (RMSE = |error|); ``full``: each one's prediction of
    the split's held-out curve."""
    return [{"folds": [(np.full(50, e), np.zeros(50)) for e in errs], "full": np.full(10, f)}
            for errs, f in zip(errors, full)]


def test_the_rules_pick_average_and_stack_as_they_say():
    """Candidate 0 is best in every fold and decided against candidate 2, not against candidate 1
    (whose errors are within the folds' noise of its own): the pick is 0, the mean is that of 0 and
    1, stacking puts weight where the folds' squared errors are least."""
    errors = [[0.10, 0.11, 0.09, 0.10], [0.11, 0.10, 0.10, 0.11], [0.50, 0.60, 0.55, 0.52]]
    preds, weights = rule_predictions(_fits(errors, [1.0, 2.0, 9.0]), CANDS)
    assert np.all(preds["pick"] == 1.0) and np.allclose(preds["mean"], 1.5)
    assert set(weights["mean"]) == {"kernel(exp, steps, offset tested)", "kernel(exp, area, offset tested)"}
    assert weights["stack"].get("mpl", 0.0) == 0.0  # the worst candidate gets no weight
    assert np.allclose(preds["kernel(exp, area, offset tested)"], 2.0)


def test_a_candidate_that_failed_a_fold_takes_no_part():
    errors = [[0.10, 0.11, 0.09, 0.10], [0.05, 0.05, 0.05, 0.05], [0.50, 0.60, 0.55, 0.52]]
    fits = _fits(errors, [1.0, 2.0, 9.0])
    fits[1]["folds"][2] = None  # its fit failed in one fold: it cannot be scored, so it is left out
    preds, weights = rule_predictions(fits, CANDS)
    assert np.all(preds["pick"] == 1.0) and "kernel(exp, area, offset tested)" not in preds
    assert all("kernel(exp, area, offset tested)" not in w for w in weights.values())
    for f in fits:
        f["full"] = None  # no candidate fitted to all the curves: refused, not an IndexError
    with pytest.raises(ValueError, match="no candidate could be fitted"):
        rule_predictions(fits, CANDS)


def test_help_and_a_family_without_curves_are_answered(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and "stacking" in run.stdout
    run = subprocess.run([sys.executable, str(SCRIPT), "--family", "lm1e-3", "--lm-folder", str(tmp_path / "none"),
                          "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert run.returncode == 2 and "train the family" in run.stderr
