"""Verdicts on claimed orders of convergence (``OrderEstimate.judge`` and ``sde-scales converge``).

Planted claims with known answers: the stated orders of Euler-Maruyama and Milstein on problems
with exact solutions are true, the stated order +- 1/2 is false. ``benchmarks/order_verdicts.py``
measures the rates over many seeds and ladders; these tests pin the cases where a simpler rule
(the slope within 3 standard errors + 0.1, as ``agrees_with``) gives a wrong answer.
"""

import json
import math

import numpy as np
import pytest

from sde_scales import EulerMaruyama, Milstein, convergence_study
from sde_scales.cli import main
from sde_scales.errors import InvalidArgumentError
from sde_scales.sde import testproblems as tp
from sde_scales.sde.convergence import MIN_JUDGED_LEVELS, MIN_PATHS, fit_order
from sde_scales.verdicts import Verdict


def _study(build, solver, levels, paths, seed=0):
    ex = build()
    return ex, convergence_study(ex.problem, solver, levels, paths, seed=seed, exact=ex.exact)


def test_true_orders_pass_and_false_ones_fail_on_an_asymptotic_ladder():
    ex, st = _study(tp.ornstein_uhlenbeck, EulerMaruyama(), range(3, 8), 1000)
    assert st.strong.judge(1.0).verdict is Verdict.PASS
    assert st.weak.judge(1.0).verdict is Verdict.PASS
    assert st.weak.judge(2.0).verdict is Verdict.FAIL
    assert st.strong.judge(1.5).verdict is Verdict.FAIL
    # errors falling faster than the claim are no FAIL: a term of higher order may still dominate
    v = st.strong.judge(0.5)
    assert v.verdict is Verdict.INCONCLUSIVE and "fall faster" in v.reason
    ex, st = _study(tp.geometric_brownian_motion, EulerMaruyama(), range(4, 10), 1000)
    assert st.strong.judge(EulerMaruyama().strong_order_for(ex.problem.noise)).verdict is Verdict.PASS
    v = st.strong.judge(1.0)  # EM is not strong order 1 on multiplicative noise
    assert v.verdict is Verdict.FAIL and "fall more slowly" in v.reason


@pytest.mark.parametrize("p", [0.5, 1.0])
@pytest.mark.parametrize("D", [0.2, -0.2])
def test_the_extrapolated_order_removes_a_next_order_term_of_order_one_half(p, D):
    """Noise-free errors e(h) = h^p (1 + D h^(1/2)) on h = 2^-2 .. 2^-9: the local slope moves
    towards p by a factor 2^(-1/2) per halving, and the extrapolation (fine-end slope plus the
    bend's remaining geometric sum) assumes exactly that. Its linear part in D cancels; what is left
    is of order D^2 (0.0006 at |D| = 0.2). Bound: 0.002, under a quarter of the fine-end slope's own
    error here (0.009); an extrapolation that assumed another next order (1 instead of 1/2) is
    0.007 off."""
    h = 2.0 ** -np.arange(2, 10)
    est = fit_order(h, (h**p * (1 + D * h**0.5))[:, None])
    assert abs(est.fine_order - p) > 0.008  # the fine end alone is still bent
    assert abs(est.limit_order - p) <= 0.002, est.limit_order


def test_weak_noise_hides_the_order_on_coarse_steps_and_no_verdict_is_wrong():
    """EM on a diagonal GBM with weak noise (sigma 0.3, 0.4; drift 1, -1): the strong error's order-1/2
    term has a small constant, and over dt = 1/4..1/32 the errors fall like dt^0.88; the local slope
    reaches 1/2 only below dt = 2^-10 (successive ratios 0.87, 0.88, 0.86, 0.81, 0.74, 0.63, 0.60,
    0.53 over levels 2..11, 4000 paths). The simple rule FAILs the true order 1/2 and PASSes the
    false order 1. Neither is decided here: a slope above the claim may be a higher-order term, and
    one below it by more than its noise is not within reach of 1."""
    ex, st = _study(lambda: tp.diagonal_gbm_2d(mu=(1.0, -1.0), sigma=(0.3, 0.4)), EulerMaruyama(), range(2, 6), 1000)
    assert st.strong.agrees_with(1.0, 0.1) and not st.strong.agrees_with(0.5, 0.1)  # the simple rule is fooled
    assert st.strong.judge(0.5).verdict is Verdict.INCONCLUSIVE
    assert st.strong.judge(1.0).verdict is Verdict.INCONCLUSIVE


def test_a_straight_ladder_too_short_to_show_its_bend_is_not_judged():
    """On dt = T..T/4 EM's strong error on the commuting general-noise system falls like h (successive
    ratios 1.07, 1.06) and bends to h^(1/2) only on finer steps: the slope agrees with the false
    order 1 within 3 se + 0.1, and three levels cannot show it."""
    ex, st = _study(tp.commuting_linear_general, EulerMaruyama(), range(0, 3), 1000)
    assert st.strong.agrees_with(1.0, 0.1)  # the simple rule is fooled
    v = st.strong.judge(1.0)
    assert v.verdict is Verdict.INCONCLUSIVE and f"at least {MIN_JUDGED_LEVELS}" in v.reason


def test_a_ladder_still_bending_is_not_passed():
    """EM on OU from dt = T: successive ratios 2.2, 1.2, 1.1, 1.1; the whole-ladder slope (1.37) is
    far from 1 and bending towards it, so neither PASS nor FAIL of the true order."""
    ex, st = _study(tp.ornstein_uhlenbeck, EulerMaruyama(), range(0, 5), 1000)
    assert abs(st.strong.order - 1.0) > 0.25
    v = st.strong.judge(1.0)
    assert v.verdict is Verdict.INCONCLUSIVE and "asymptotic range" in v.reason


def test_weak_errors_inside_their_monte_carlo_error_are_not_judged():
    """The command's default ladder on GBM: EM's weak bias is smaller than the Monte-Carlo error at
    every level; the slope through those errors is noise, whatever its interval says."""
    ex, st = _study(tp.geometric_brownian_motion, EulerMaruyama(), range(4, 10), 2000)
    assert st.weak.resolution.min() < 3
    for claim in (0.5, 1.0, 2.0):
        v = st.weak.judge(claim)
        assert v.verdict is Verdict.INCONCLUSIVE and "not resolved" in v.reason


def test_too_few_paths_or_a_bad_claim():
    ex, st = _study(tp.ornstein_uhlenbeck, EulerMaruyama(), range(3, 8), MIN_PATHS - 1)
    assert st.strong.judge(1.0).verdict is Verdict.INCONCLUSIVE
    assert st.strong.judge(1.0).tolerance is None
    with pytest.raises(InvalidArgumentError, match="not a finite number"):
        st.strong.judge(float("nan"))


def test_converge_command_prints_verdicts_writes_strict_json_and_gates_with_strict(tmp_path, capsys):
    out = tmp_path / "conv.json"
    args = ["converge", "--problem", "ou", "--coarsest", "3", "--finest", "7", "--paths", "1000", "--strict"]
    assert main(args + ["--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "strong order 1 (stated by the solver): PASS" in text
    doc = json.loads(out.read_text())  # strict JSON: json.loads rejects NaN only with a hook, so check below
    assert doc["orders"]["strong"]["verdict"] == "PASS" and doc["orders"]["weak"]["verdict"] == "PASS"
    assert "NaN" not in out.read_text()
    # a planted false claim: FAIL, and --strict turns it into exit 1
    assert main(args + ["--expect-strong", "1.5"]) == 1
    assert "strong order 1.5 (claimed (the solver states 1)): FAIL" in capsys.readouterr().out
    # too few paths for an interval: null in the JSON, INCONCLUSIVE, exit 1 under --strict
    few = tmp_path / "few.json"
    assert main(["converge", "--problem", "ou", "--paths", "10", "--strict", "--json", str(few)]) == 1
    d = json.loads(few.read_text())["orders"]["strong"]
    assert d["verdict"] == "INCONCLUSIVE" and d["se"] is None and d["tolerance"] is None
    assert math.isfinite(d["order"])


@pytest.mark.parametrize("bad, what", [
    (["--paths", "1"], "--paths 1"),
    (["--coarsest", "4", "--finest", "5"], "--coarsest 4 --finest 5"),
    (["--coarsest", "-1"], "--coarsest -1"),
    (["--expect-strong", "-1"], "--expect-strong -1"),
    (["--expect-weak", "nan"], "--expect-weak nan"),
])
def test_converge_command_refuses_bad_input_with_exit_2(bad, what, capsys):
    assert main(["converge", *bad]) == 2
    assert what in capsys.readouterr().err


def test_a_precise_whole_ladder_slope_does_not_pass_a_false_claim_alone():
    """Milstein on the general-noise system from dt = T with 30 paths: the whole-ladder slope is
    steep (about 1.4) before it bends to 1, and the false claim 3/2 falls within its tolerance in
    some studies. A PASS also needs the fine end (measured to better than 0.25) and the
    extrapolation to agree, which none of 20 studies gives."""
    from sde_scales.sde.convergence import ORDER_MAX_TOL, ORDER_MODEL_TOL, ORDER_Z

    simple, passed = 0, 0
    for seed in range(20):
        ex, st = _study(tp.commuting_linear_general, Milstein(), range(0, 5), 30, seed=seed)
        est = st.strong
        simple += est.agrees_with(1.5, ORDER_MODEL_TOL, ORDER_Z) and ORDER_Z * est.se + ORDER_MODEL_TOL < ORDER_MAX_TOL
        passed += est.judge(1.5).verdict is Verdict.PASS
    assert simple >= 1, "the case no longer tests anything: the simple rule passes no study"
    assert passed == 0


def test_convergence_figure_draws_what_it_is_given(tmp_path):
    """One panel per order: the errors (hollow where unresolved), the fitted slope with its interval
    in the legend, the claimed slope through the finest resolved point, labelled axes; the command
    writes it as a PNG."""
    import numpy as np

    from sde_scales.plots import convergence_plot, save_figure

    ex, st = _study(tp.geometric_brownian_motion, EulerMaruyama(), range(4, 10), 2000)
    fig = convergence_plot(st, expected={"strong": 0.5, "weak": 1.0})
    strong, weak = fig.axes[:2]
    for ax, kind in ((strong, "strong"), (weak, "weak")):
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any(t.startswith(f"fitted slope {getattr(st, kind).order:.2f}") for t in labels), labels
        assert "step size" in ax.get_xlabel() and kind in ax.get_ylabel()
    assert "claimed order 0.5" in [t.get_text() for t in strong.get_legend().get_texts()]
    # EM's weak errors on this ladder are inside their Monte-Carlo error: drawn hollow and said so
    assert any("not judged" in t.get_text() for t in weak.get_legend().get_texts())
    assert not any("not judged" in t.get_text() for t in strong.get_legend().get_texts())
    # the claimed line passes through the finest step's strong error (all resolved)
    line = next(l for l in strong.get_lines() if l.get_label() == "claimed order 0.5")
    x, y = line.get_data()
    assert np.interp(np.log(st.dts[-1]), np.log(x), np.log(y)) == pytest.approx(np.log(st.strong_error[-1]))
    assert np.polyfit(np.log(x), np.log(y), 1)[0] == pytest.approx(0.5, rel=1e-9)  # and has the claimed slope
    save_figure(fig, tmp_path / "direct.png")
    out = tmp_path / "conv.png"
    assert main(["converge", "--problem", "ou", "--coarsest", "3", "--finest", "7", "--paths", "200",
                 "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_thirty_paths_do_not_pass_an_order_they_cannot_tell_from_its_neighbour():
    """The weak-noise GBM above with 30 paths from dt = 1: the slope (about 0.87) lies within the
    noise allowance below the false claim 1 in some studies. A PASS needs the whole range of slopes
    that would pass (3 se below the claim to 3 se + 0.1 above it) narrower than 0.25; none of 20
    studies gives that, so none PASSes, while a rule that bounds only the upper side passes some."""
    from sde_scales.sde.convergence import ORDER_MAX_TOL, ORDER_MODEL_TOL, ORDER_Z

    loose, passed = 0, 0
    for seed in range(100, 120):
        ex, st = _study(lambda: tp.diagonal_gbm_2d(mu=(1.0, -1.0), sigma=(0.3, 0.4)), EulerMaruyama(), range(0, 5),
                        30, seed=seed)
        est = st.strong
        v = est.judge(1.0)
        passed += v.verdict is Verdict.PASS
        loose += (v.verdict is Verdict.INCONCLUSIVE and "span" in v.reason
                  and ORDER_Z * max(est.se, est.fine_se) + ORDER_MODEL_TOL < ORDER_MAX_TOL)
    assert loose >= 1, "the case no longer tests anything: no study is held back by the width alone"
    assert passed == 0
