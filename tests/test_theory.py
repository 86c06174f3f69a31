"""theory/: asymptotics helpers, exact linear-model moments, abc algebra, the paper's steps."""

from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

from sde_scales.errors import InvalidArgumentError
from sde_scales.models import Coupling, WidthModel
from sde_scales.parametrization import mup, ntk, sp as sp_param
from sde_scales.rates import RateKind, Verdict
from theory.abc import derive
from theory.asymptotics import big_o, leading_exponent, leading_exponent_symbolic, n, theta
from theory.meanfield import SYMBOLS, expand_in_inverse_n, moments, predicted_exponents
from theory.paper import assumption_3_3, claims_by_id, d_lemma_4_7_const_L, d_lemma_4_7_small_L


# ----------------------------------------------------------------------------- asymptotics
def test_known_expansions_and_exponents():
    assert leading_exponent(3 / n + n**-2) == -1
    assert leading_exponent(sp.sqrt(n) * sp.log(n) + 5) == sp.Rational(1, 2)
    assert leading_exponent(sp.exp(-1 / n) - 1) == -1  # e^{-1/n} - 1 = -1/n + ...
    series = expand_in_inverse_n(n / (n + 1), 3)
    assert sp.simplify(series.removeO() - (1 - 1 / n + n**-2)) == 0
    assert series.getO() == sp.O(n**-3, (n, sp.oo))


def test_o_and_theta_with_limit_point():
    assert big_o(1 / n, 1 / sp.sqrt(n)).holds
    assert not big_o(1 / sp.sqrt(n), 1 / n).holds
    assert "(n, oo)" in big_o(1 / n, 1 / n).statement
    assert theta(2 / n + n**-2, 1 / n).holds
    assert not theta(1 / n, 1 / sp.sqrt(n)).holds  # O but not Theta: limit 0


def test_a_theta_rate_is_told_from_a_log_factor_and_an_oscillation():
    """leading_exponent gives log n / n the exponent -1 and sin n the exponent 0, but neither is a
    Theta rate; power_rate says so, and a Theta claim judged on such a derivation is INCONCLUSIVE,
    not PASS (the derivations report power_rate's tightness instead of typing tight=True)."""
    from theory.asymptotics import power_rate
    from theory.claims import SymbolicResult
    from theory.verify import judge_symbolic

    tau = sp.Symbol("tau", positive=True)
    assert power_rate(3 / n + n**-2) == (-1, True)
    assert power_rate(tau * sp.log(2), tau, 0) == (1, True)
    assert power_rate(sp.log(n) / n) == (-1, False)
    assert power_rate(sp.sqrt(n) * sp.log(n) + 5) == (sp.Rational(1, 2), False)
    assert power_rate(sp.sin(n)) == (0, False)
    claim = replace(claims_by_id()["thm4.1-micro-fluct"], kind=RateKind.THETA, exponent=-1.0)
    for f, expected in ((3 / n + n**-2, Verdict.PASS), (sp.log(n) / n, Verdict.INCONCLUSIVE)):
        p, tight = power_rate(f)
        assert judge_symbolic(claim, SymbolicResult(p, str(f), tight=tight))[0] is expected


def test_undecided_limit_is_a_failure_not_a_pass():
    r = big_o(sp.sin(n), 1)  # bounded, but the ratio has no limit: sympy cannot decide
    assert not r.decided and not r.holds and "undecided" in r.message
    with pytest.raises(ValueError, match="undecided|identically zero"):
        leading_exponent(sp.Integer(0))


def test_symbolic_exponent_keeps_both_branches():
    beta = sp.Symbol("beta", positive=True)
    e = leading_exponent_symbolic(3 * n ** (-2 * beta - 1) + n ** (-4 * beta))
    assert e.subs(beta, sp.Rational(1, 4)) == -1 and e.subs(beta, 1) == -3


# ----------------------------------------------------------------------------- linear model
def test_predicted_exponents_as_functions_of_beta():
    e = predicted_exponents()
    beta = SYMBOLS["beta"]
    assert sp.simplify(e["macro_fluctuation"] - (-beta - sp.Rational(1, 2))) == 0
    assert sp.simplify(e["micro_fluctuation"] + beta) == 0
    assert sp.simplify(e["quadratic_macro_bias"] + 2 * beta) == 0
    assert e["macro_bias"] is None  # the linear macro-variable has no bias at all


@pytest.mark.parametrize("width", [16, 64, 256])
def test_exact_variance_matches_simulation(width):
    """Var M and Var theta_1 at T = 1 from the formulas against 4,000 simulated replicas. The
    formulas are exact for the SDE; EM at dt = 1e-3 changes variances by O(dt) relative (< 0.3%
    here). Tolerance: 4 Monte-Carlo standard errors of a sample variance, v sqrt(2/(R-1)), plus
    the EM part. eta, sigma and s differ from 1, so that a noise of eta sigma in place of
    sqrt(eta) sigma (or a swapped factor) changes the variances (at eta = sigma = 1 it did not)."""
    q = dict(a=1.0, k=0.5, b=0.2)
    model = WidthModel(n=width, coupling=Coupling.LINEAR, q=[q["a"], q["k"], q["b"]], beta=0.5, sigma=0.7,
                       c=1.0, s=0.8, eta=2.0, T=1.0)
    R = 4000
    x = model.simulate(R, 1e-3, seed=5)
    exact = moments().numeric(a=1.0, k=0.5, b=0.2, c=1.0, s=0.8, sigma=0.7, eta=2.0, t=1.0, beta=0.5, n=width)
    for name, sample in (("var_macro", x.mean(axis=1)), ("var_micro", x[:, 0])):
        v = sample.var(ddof=1)
        tol = 4 * exact[name] * np.sqrt(2 / (R - 1)) + 0.003 * exact[name]
        assert abs(v - exact[name]) <= tol, (name, v, exact[name])
    m = x.mean(axis=1).mean()
    assert abs(m - exact["mean"]) <= 4 * np.sqrt(exact["var_macro"] / R) + 1e-3


@pytest.mark.parametrize("width", [4, 16])
def test_exact_variance_of_the_quadratic_macro_variable_matches_simulation(width):
    """Var Q_n, Q_n = (1/n) sum theta_i^2, from the formula (Gaussian fourth moments: 2 tr(Sigma^2)
    + 4 m^2 1'Sigma 1, over n^2) against 4,000 simulated replicas, at mean 0 (c = b = 0), where
    the trace term is all of it and the coordinates' covariance D/n below Var M enters it (at
    c = 1 the mean's term hides both under the Monte-Carlo error). Tolerance: 4 standard errors
    of a sample variance from the sample's own fourth moment, sqrt((m4 - v^2)/R), plus 0.3% for
    Euler-Maruyama at dt = 1e-3, as above. Dropping the factor 2 or the -D/n moves the formula by 8
    to 18 standard errors at these widths."""
    model = WidthModel(n=width, coupling=Coupling.LINEAR, q=[1.0, 0.5, 0.0], beta=0.5, sigma=0.7, c=0.0, s=0.8,
                       eta=2.0, T=1.0)
    R = 4000
    x = model.simulate(R, 1e-3, seed=5)
    exact = moments().numeric(a=1.0, k=0.5, b=0.0, c=0.0, s=0.8, sigma=0.7, eta=2.0, t=1.0, beta=0.5, n=width)
    Q = (x**2).mean(axis=1)
    v = Q.var(ddof=1)
    se = np.sqrt((np.mean((Q - Q.mean()) ** 4) - v * v) / R)
    assert abs(v - exact["var_quadratic"]) <= 4 * se + 0.003 * exact["var_quadratic"], (v, exact["var_quadratic"], se)


# ----------------------------------------------------------------------------- abc
def test_three_classifications():
    for L in (1, 2, 4):
        m, s_, k = derive(mup(L)), derive(sp_param(L)), derive(ntk(L))
        assert m.stable and m.feature_learning_all_layers and m.r == 0
        assert not s_.stable and s_.regime == "unstable"
        assert k.stable and k.nontrivial and not k.feature_learning and k.regime == "kernel"
    assert derive(sp_param(2, lr_exponent=1)).regime == "kernel"  # SP with lr ~ 1/n: stable kernel
    assert derive(mup(2, "adam")).is_mup_class()
    assert not derive(sp_param(2, "adam")).stable


def test_feature_learning_in_the_later_layers_only_is_not_feature_learning_in_every_layer():
    """muP with its input layer as in SP (a_1 = b_1 = 0, so its pre-activations stay order 1, and
    its learning rate not scaled up): by the table, r_1 = 1 (the input layer's features move like
    n^-1 and do not learn) while every later hidden layer's r_l = 0. Stable and feature learning,
    but not in every layer; read off the last hidden layer alone, it looked like full muP."""
    t = derive(mup(3).with_layer(0, a=0, b=0))
    assert t.stable and t.regime == "feature learning" and t.feature_learning
    assert not t.feature_learning_all_layers
    assert t.to_dict()["feature_change"] == ["-1", "0", "0"]
    assert derive(mup(3)).feature_learning_all_layers


@pytest.mark.parametrize("theta_", [Fraction(1, 3), Fraction(-1, 2), Fraction(2)])
def test_classification_is_invariant_under_the_abc_symmetry(theta_):
    """(a, b, c) -> (a + t, b - t, c - 2t) (SGD) per layer or globally leaves every derived exponent
    unchanged: the checks read invariants, not one way of writing the table."""
    for p in (mup(3), ntk(3), sp_param(3)):
        base = derive(p)
        for layer in (None, 0, 1, 3):
            q = derive(p.shifted(theta_, layer))
            assert q.to_dict() | {"name": base.name} == base.to_dict()


def test_wrong_parametrization_is_not_mup():
    broken = mup(2).with_layer(2, a=0)  # muP with its 1/sqrt(n) output multiplier removed
    t = derive(broken)
    assert not t.is_mup_class() and not t.stable
    assert any("output" in r for r in t.reasons)


def _symbolic(claim):
    from theory.verify import judge_symbolic

    return judge_symbolic(claim, claim.evidence_of("symbolic").check(claim))[0]


def test_lemma_4_6_update_sizes_from_the_trainer_table():
    t = derive(mup(2))
    assert t.weight_update[1] == -1  # O(1/n) per coordinate for a hidden weight
    assert all(f == 0 for f in t.feature_change)  # Theta(1) feature updates in every layer
    assert _symbolic(claims_by_id()["lemma4.6-updates"]) is Verdict.PASS


def test_lemma_4_7_both_ways():
    small = d_lemma_4_7_small_L(None)
    const = d_lemma_4_7_const_L(None)
    assert small.exponent == 1 and const.exponent == sp.Rational(3, 2)
    assert _symbolic(claims_by_id()["lemma4.7-small-L"]) is Verdict.PASS
    assert _symbolic(claims_by_id()["lemma4.7-const-L"]) is Verdict.FAIL


def test_printed_assumption_3_3_is_flagged():
    printed = assumption_3_3(n**-2)
    fixed = assumption_3_3(sp.Integer(1))
    assert printed["exponent"] == -1 and fixed["exponent"] == 0
    assert _symbolic(claims_by_id()["assumption3.3-input-init"]) is Verdict.FAIL


@pytest.mark.parametrize("cid, wrong_kind, wrong_exponent", [
    ("lemma4.6-updates", RateKind.BIG_O, -2.0),        # the planted case: Lemma 4.6 as O(n^-2)
    ("thm4.1-micro-fluct", RateKind.THETA, -1.0),      # Theta at the wrong exponent
    ("thm4.1-micro-fluct", RateKind.THETA, -0.25),
    ("thm4.1-separation", RateKind.SEPARATION, -0.04),  # a separation the derivation does not give
    ("thm3.1-early-optimum", RateKind.BIG_O, -2.0),
    ("thm5.1-delay", RateKind.THETA, 0.5),
])
def test_planted_symbolic_claims_fail(cid, wrong_kind, wrong_exponent):
    """The derivation receives the claim and is judged against the claim's own kind and exponent:
    the true claim PASSes, the same derivation planted with a wrong exponent FAILs."""
    true = claims_by_id()[cid]
    planted = replace(true, id="planted", kind=wrong_kind, exponent=wrong_exponent)
    assert _symbolic(true) is Verdict.PASS
    assert _symbolic(planted) is Verdict.FAIL


def test_symbolic_o_claim_is_one_sided_and_theta_needs_a_tight_rate():
    from theory.claims import SymbolicResult
    from theory.verify import judge_symbolic

    c = claims_by_id()["lemma4.6-updates"]
    assert judge_symbolic(replace(c, exponent=0.0), SymbolicResult(sp.Integer(-1), "x"))[0] is Verdict.PASS
    t = replace(c, kind=RateKind.THETA, exponent=-1.0)
    assert judge_symbolic(t, SymbolicResult(sp.Integer(-1), "x", tight=False))[0] is Verdict.INCONCLUSIVE
    v, reason = judge_symbolic(t, SymbolicResult(None, "only a statement", derived=False))
    assert v is None and reason.startswith("not derived")
    # a quantity that is exactly zero is O(n^p) for every p, and Theta(n^p) for none
    zero = SymbolicResult(None, "the first-order term cancels")
    assert judge_symbolic(c, zero)[0] is Verdict.PASS
    v, reason = judge_symbolic(t, zero)
    assert v is Verdict.FAIL and reason.startswith("the quantity is exactly zero")


def test_derived_entries_are_computed_not_typed():
    """The early optimum and the micro bias come out of sympy computations: the NQM's noise-free
    optimum is stationary and the first-order shift differs between t0 and T; the delta method's
    first-order term vanishes and the second carries Var ~ n^(-2 beta)."""
    from theory.paper import delta_method_exponent, nqm_optimum_shift

    eta0, s0, sT, stationary = nqm_optimum_shift()
    assert eta0 == sp.Rational(2, 21) and stationary == 0 and s0 != sT
    assert delta_method_exponent(sp.Rational(1, 2))[0] == -1
    assert delta_method_exponent(sp.Rational(1, 4))[0] == sp.Rational(-1, 2)


def test_symbolic_only_covers_every_claim():
    """(Its run time is recorded in benchmarks/RESULTS.md, not asserted here.)"""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "sde_scales.cli", "verify", "--symbolic-only", "--no-progress"],
                         capture_output=True, text=True, check=True)
    from theory.claims import CheckKind

    lines = res.stdout.splitlines()
    for cid, c in claims_by_id().items():
        # a claim without a derivation has no row (a row and its reason line start with the id)
        assert any(ln.startswith(cid + " ") for ln in lines) == (CheckKind.SYMBOLIC in c.kinds)
    # and is named as not judged, alone
    [said] = [ln for ln in lines if ln.startswith("not judged: ")]
    assert said.split(" (")[0].removeprefix("not judged: ").split(", ") == [
        cid for cid, c in claims_by_id().items() if CheckKind.SYMBOLIC not in c.kinds]
    assert "lemma4.7-const-L" in res.stdout and "FAIL" in res.stdout


def test_theory_table_command(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "t.json"
    res = subprocess.run([sys.executable, "-m", "sde_scales.cli", "theory", "table", "--param", "mup", "--layers", "3",
                          "--json", str(out)], capture_output=True, text=True, check=True)
    assert "feature learning in every layer" in res.stdout
    doc = json.loads(out.read_text())
    assert doc["stable"] and doc["feature_learning_all_layers"] and len(doc["preactivation"]) == 4
    # --json -: the same document alone on standard output (a file named '-' before), the table on
    # standard error
    res = subprocess.run([sys.executable, "-m", "sde_scales.cli", "theory", "table", "--param", "mup", "--layers", "3",
                          "--json", "-"], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert json.loads(res.stdout) == doc and "feature learning in every layer" in res.stderr
    assert not (tmp_path / "-").exists()


def test_layer_and_width_of_a_parametrization_are_checked():
    """factors(-1, n) gave the readout's factors through Python's negative index, a width of 0 a
    ZeroDivisionError and a width of -4 a complex init std."""
    p = mup(L=2)
    assert p.factors(2, 64) == p.factors(2, 64.0)  # a whole width written as a float is taken
    for l in (-1, 3, 1.5):
        with pytest.raises(InvalidArgumentError, match=f"layer l={l}"):
            p.factors(l, 64)
    for width in (0, -4, 2.5, float("nan")):
        with pytest.raises(InvalidArgumentError, match="width n="):
            p.factors(1, width)
    with pytest.raises(InvalidArgumentError, match="L=1.5"):
        mup(L=1.5)


def test_exponents_that_are_no_number_are_refused_by_name():
    """LayerRule(nan, 0, 0) gave Fraction's bare 'cannot convert NaN to integer ratio';
    shifted(theta, layer=7) shifted no layer, silently; a base width held in a numpy integer (as a
    grid read from an array gives it) was refused."""
    from sde_scales.parametrization import LayerRule

    assert LayerRule("1/2", 0.5, 1) == LayerRule(Fraction(1, 2), Fraction(1, 2), 1)
    for bad in (float("nan"), float("inf"), "abc", None, True):
        with pytest.raises(InvalidArgumentError, match=f"a={bad!r}"):
            LayerRule(bad, 0, 0)
    p = mup(L=2)
    with pytest.raises(InvalidArgumentError, match="theta=nan"):
        p.shifted(float("nan"))
    with pytest.raises(InvalidArgumentError, match="layer l=7"):
        p.shifted(0.5, layer=7)
    with pytest.raises(InvalidArgumentError, match="c=nan"):
        p.with_layer(1, c=float("nan"))
    with pytest.raises(InvalidArgumentError, match="exponents a, b and c"):
        p.with_layer(1, d=1)
    with pytest.raises(InvalidArgumentError, match="layer l=-1"):
        p.with_layer(-1, a=0)
    assert p.with_layer(1, c=1).layers[1].c == 1
    assert p.factors(1, 256, np.int64(64)) == p.factors(1, 256, 64) == p.factors(1, 256, 64.0)
    with pytest.raises(InvalidArgumentError, match="base_width=64.5"):
        p.factors(1, 256, 64.5)


def test_the_delay_derivations_lag_is_the_exponential_kernels_half_response():
    """Theorem 5.1's derivation solves Q(u) = 1/2 for the exponential kernel in sympy; its root,
    evaluated at a few time scales, is the lag that the kernels module finds by root-finding on
    Q (brentq), tau ln 2. (A lag read at another level of the response, 1 - 1/e say, has the same
    exponent in tau, so the claim's verdict alone would not show it.)"""
    from sde_scales.kernels import Exponential, half_response_time
    from theory.paper import exponential_lag

    lag = exponential_lag()
    for tau in (0.01, 1.0, 37.5):
        value = float(lag.subs(sp.Symbol("tau", positive=True), tau))
        assert value == pytest.approx(half_response_time(Exponential(tau)), rel=1e-10)
