"""``--law auto`` where the folds do not decide: the equal-weight average of the laws they do not
separate, and the mixture band (:mod:`sde_scales.fitting.average`)."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting import KernelLaw, LossCurve, MomentumLaw, fit, predict, predict_sd
from sde_scales.fitting.average import AveragedFit, mixture_sd, predict_any, predict_sd_any
from sde_scales.fitting.fit import final_rows


def _curve(drop_at: int, name: str, seed: int) -> LossCurve:
    """A power law with a delayed response to one drop, logged every 50 steps with noise 0.02."""
    step = np.arange(0, 6001, 50)
    lr = np.where(step < drop_at, 1e-3, 3e-4)
    after = np.clip(step - drop_at, 0, None)
    clean = 3.0 + 2.0 * (1.0 + step / 1000.0) ** -0.5 - 0.1 * (lr < 1e-3) * (1 - np.exp(-after / 300.0))
    return LossCurve(step, lr, clean + 0.02 * np.random.default_rng(seed).standard_normal(step.size), name=name)


def _two_fits(curves):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(KernelLaw("exp", "steps"), curves, skip_steps=200), fit(MomentumLaw(lam=0.99), curves,
                                                                            skip_steps=200)


def test_mixture_sd_matches_draws_from_the_mixture():
    """Draws from an equal mixture of three normals: their standard deviation against the formula.
    400,000 draws; the sample standard deviation's relative standard error is about
    sqrt((kurtosis - 1) / 4n) < 0.002 here, so 1% is five of them."""
    rng = np.random.default_rng(11)
    means, sds = np.array([0.0, 1.0, 3.0]), np.array([0.5, 1.0, 0.2])
    k = rng.integers(0, 3, 400_000)
    draws = means[k] + sds[k] * rng.standard_normal(k.size)
    assert mixture_sd(means, sds) == pytest.approx(draws.std(), rel=0.01)
    # one law: its own band; identical laws: no disagreement to add
    assert mixture_sd(np.array([2.0]), np.array([0.3])) == pytest.approx(0.3)
    assert mixture_sd(np.array([2.0, 2.0]), np.array([0.3, 0.4])) == pytest.approx(np.sqrt((0.09 + 0.16) / 2))
    # laws that agree to the last digit on their bands and differ by 2d: the band is d
    assert mixture_sd(np.array([1.0, 1.2]), np.zeros(2)) == pytest.approx(0.1)
    # rows along the second axis; an undetermined band stays undetermined
    out = mixture_sd(np.array([[1.0, 2.0], [1.0, 4.0]]), np.array([[0.1, np.nan], [0.1, 0.2]]))
    assert out[0] == pytest.approx(0.1) and np.isnan(out[1])
    with pytest.raises(InvalidArgumentError, match="same shape"):
        mixture_sd(np.zeros(3), np.zeros(2))


def test_an_average_predicts_the_mean_of_its_laws_with_the_mixture_band():
    """Two laws fitted to the same curves: the average's prediction at every row is the mean of the
    laws' own predictions, and its final band is the mixture of their final bands, written out here
    from predict and predict_sd; predict_any and predict_sd_any serve a single fit unchanged."""
    fitted = [_curve(3000, "a", 1), _curve(4500, "b", 2)]
    held = _curve(5000, "h", 3)
    kern, mom = _two_fits(fitted)
    avg = AveragedFit(("kernel(exp, steps)", "momentum(0.99)"), (kern, mom))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pk, pm = predict(kern, held), predict(mom, held)
        assert np.isnan(pk[0]) and np.isnan(pm[0])  # step 0: the initial loss, which no law predicts
        assert np.array_equal(avg.predict(held), (pk + pm) / 2, equal_nan=True)
        n = final_rows(held.step.size)
        fk, fm = pk[-n:].mean(), pm[-n:].mean()
        sk, sm = predict_sd(kern, held)[1], predict_sd(mom, held)[1]
        rows, final = avg.predict_sd(held)
        assert final == pytest.approx(np.sqrt((sk ** 2 + sm ** 2) / 2 + ((fk - fm) / 2) ** 2), rel=1e-12)
        assert final >= abs(fk - fm) / 2 and rows.shape == held.step.shape
        assert np.array_equal(predict_any(avg, held), avg.predict(held), equal_nan=True)
        assert np.array_equal(predict_any(kern, held), pk, equal_nan=True) and predict_sd_any(kern, held)[1] == sk
    assert "mean of 2 laws" in avg.label and "momentum(0.99)" in avg.label


def test_an_average_refuses_laws_fitted_to_other_curves_and_mismatched_labels():
    kern, _ = _two_fits([_curve(3000, "a", 1)])
    _, other = _two_fits([_curve(4500, "b", 2)])
    with pytest.raises(InvalidArgumentError, match="different curves"):
        AveragedFit(("x", "y"), (kern, other))
    with pytest.raises(InvalidArgumentError, match="1 labels for 2 fitted laws"):
        AveragedFit(("x",), (kern, kern))
    with pytest.raises(InvalidArgumentError, match="at least one"):
        AveragedFit((), ())
    # the laws' own results (a forecast's member_final_losses) are reported by label
    with pytest.raises(InvalidArgumentError, match=r"labels \['x'\] name two averaged laws"):
        AveragedFit(("x", "x"), (kern, kern))


def test_fit_members_leaves_out_a_law_that_cannot_be_fitted_and_names_it():
    """A member whose fit fails (here an unknown kernel, refused by the law) is left out of the
    average and named with its error; the others are fitted to all the curves. When none can be
    fitted the average is refused."""
    from sde_scales.fitting.report import fit_members

    curves = [_curve(3000, "a", 1)]
    auto = {"members": ["kernel(exp, steps)", "broken"],
            "candidates": [{"law": "kernel(exp, steps)", "name": "kernel", "kernel": "exp", "time": "steps"},
                           {"law": "broken", "name": "kernel", "kernel": "no-such-kernel", "time": "steps"}]}
    avg, failed = fit_members(auto, curves, skip_steps=200)
    assert avg.labels == ("kernel(exp, steps)",) and list(failed) == ["broken"] and "no-such-kernel" in failed["broken"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = fit(KernelLaw("exp", "steps", offset="test"), curves, skip_steps=200)  # make_law's default
    assert np.array_equal(avg.results[0].theta, alone.theta)
    with pytest.raises(InvalidArgumentError, match="no law of the average could be fitted"):
        fit_members(dict(auto, members=["broken"]), curves, skip_steps=200)


def test_fold_fits_that_stop_at_the_evaluation_limit_are_said():
    """A fold whose fit ran out of evaluations is scored where the optimiser stopped; --law auto
    says which candidates and how many folds, in its result and its one-line description. With
    the limit in force every fold of these well-posed planted curves converges and nothing is said;
    with a limit of two evaluations none does."""
    from sde_scales.fitting.report import choose_law, describe_choice

    curves = [_curve(2000, "a", 1), _curve(3500, "b", 2)]
    cands = (("kernel", "exp", "steps"), ("momentum", None, None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok = choose_law(curves, skip_steps=200, smooth_steps=500, candidates=cands)
    assert all(f["converged"] is True for r in ok["candidates"] for f in r["folds"])
    assert ok["convergence_warning"] is None and "not converged" not in describe_choice(ok)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stuck_fit = fit(KernelLaw("exp", "steps"), curves, skip_steps=200, max_evaluations=2)
    assert stuck_fit.extra["converged"] is False
    for bad in (0, -5, 2.5, True):
        with pytest.raises(InvalidArgumentError, match="max_evaluations="):
            fit(KernelLaw("exp", "steps"), curves, skip_steps=200, max_evaluations=bad)
    # refused before any fold is fitted, by name (not as every fold's failure)
    with pytest.raises(InvalidArgumentError, match=r"^max_evaluations=0; give a whole number"):
        choose_law(curves, skip_steps=200, smooth_steps=500, candidates=cands, max_evaluations=0)
    assert any("limit of 2 evaluations" in w for w in stuck_fit.extra["warnings"])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        stuck = choose_law(curves, skip_steps=200, smooth_steps=500, candidates=cands, max_evaluations=2)
    assert all(f["converged"] is False for r in stuck["candidates"] for f in r["folds"])
    assert [r["unconverged_folds"] for r in stuck["candidates"]] == [["a", "b"], ["a", "b"]]
    note = stuck["convergence_warning"]
    assert "kernel(exp, steps, offset tested) in 2 of 2 folds" in note and "momentum in 2 of 2 folds" in note
    assert "limit of 2 evaluations" in note
    assert any(str(w.message) == note for w in seen)
    assert "fits not converged: kernel(exp, steps, offset tested) in 2 of 2 folds, momentum in 2 of 2 folds" in describe_choice(stuck)


def test_fit_delay_max_evaluations(tmp_path, capsys):
    """--max-evaluations: a bad limit exits 2 naming it and writes nothing; under a limit of three
    evaluations the fit says it stopped there (warning, converged: false in the JSON), and with
    the default limit the same fit converges and says nothing of it."""
    from sde_scales.cli import main

    for name, (drop, seed) in {"a": (2000, 1), "b": (3500, 2)}.items():
        c = _curve(drop, name, seed)
        pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss}).to_csv(tmp_path / f"{name}.csv", index=False)
    base = ["fit-delay", "--fit", str(tmp_path / "a.csv"), "--predict", str(tmp_path / "b.csv"), "--kernel", "exp",
            "--skip-steps", "200"]
    out = tmp_path / "fit.json"
    assert main(base + ["--max-evaluations", "0", "--json", str(out)]) == 2
    assert "--max-evaluations 0" in capsys.readouterr().err and not out.exists()
    docs = {}
    for limit in ("3", None):
        assert main(base + (["--max-evaluations", limit] if limit else []) + ["--json", str(out)]) == 0
        docs[limit] = json.loads(out.read_text())
    assert docs["3"]["converged"] is False
    assert any("limit of 3 evaluations" in w for w in docs["3"]["warnings"])
    assert docs[None]["converged"] is True
    assert not any("evaluations before converging" in w for w in docs[None]["warnings"])


def test_folds_decide_by_the_two_sided_t_interval_of_the_log_ratios():
    """``_undecided``: the paired log RMSE ratios separate two candidates only when their mean
    lies beyond the two-sided DECIDE_LEVEL Student-t bound; a mean between the one-sided and the
    two-sided 95% quantiles is not separated. Computed here from scipy's t quantiles."""
    import numpy as np
    from scipy import stats

    from sde_scales.fitting.report import DECIDE_LEVEL, _undecided

    n = 5
    z = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])  # sd 0.79, mean 0
    sd = float(np.std(z, ddof=1))
    one, two = stats.t.ppf(DECIDE_LEVEL, n - 1), stats.t.ppf(0.5 + DECIDE_LEVEL / 2, n - 1)
    for t_mult, undecided in ((0.5 * (one + two), True), (1.05 * two, False), (0.9 * one, True)):
        d = z + t_mult * sd / np.sqrt(n)  # log(other / best) with this mean and the same sd
        best = np.full(n, 0.02)
        assert _undecided(list(best), list(best * np.exp(d))) is undecided
