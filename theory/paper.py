r"""The claims of Hong & Wang, "On the Provable Separation of Scales in Maximal Update
Parameterization" (ICML 2025), as :class:`~theory.claims.Claim` records with their derivations.

Theorem 4.1 is checked on two readings, reported separately because they need not agree:
*fluctuation* (spread over independent replicas) and *bias* (distance of the replica mean from the
mean-field limit). For a single weight the two differ: its fluctuation is of order
:math:`n^{-\beta}`, while its mean moves from the limit only at second order (by the variance,
:math:`n^{-2\beta}`), so "micro-variables move at Theta(1/sqrt n)" holds on the first reading and
fails on the second.

Symbolic steps (``derive``), each a sympy computation:

* Theorem 4.1 exponents from the exact finite-n moments of the linear width model
  (:mod:`theory.meanfield`) at :math:`\beta = 1/2`; the micro bias from the second-order (delta
  method) term, proportional to the exact variance.
* Lemma 4.6 and Lemma 4.7 as stated, Lemma 4.7 both with :math:`L = O(n^{-1/2})` and with a
  constant L.
* Assumption 3.3 as printed (input weights :math:`N(0, 1/n^2)`) against the corrected
  :math:`N(0, 1)`: the forward pass of the printed version makes first-layer pre-activations vanish.
* Which O-claims are tight: the separation needs a Theta lower bound on the micro side, because
  :math:`O(1/n)` against :math:`O(1/\sqrt n)` is not by itself a separation.
"""

from __future__ import annotations

from fractions import Fraction

import sympy as sp

from sde_scales.parametrization import mup
from sde_scales.rates import RateKind
from theory import checks
from theory.abc import derive as abc_derive
from theory.asymptotics import big_o, leading_exponent, n, theta
from theory.claims import CheckKind, Claim, SymbolicResult

__all__ = ["CLAIMS", "claims_by_id", "assumption_3_3"]

SRC = "Hong & Wang (ICML 2025)"
HALF = sp.Rational(1, 2)


def _meanfield_exponents():
    from theory.meanfield import SYMBOLS, predicted_exponents

    e = predicted_exponents()
    return {k: (None if v is None else v.subs(SYMBOLS["beta"], HALF)) for k, v in e.items()}, e


def d_macro_fluct():
    e, sym = _meanfield_exponents()
    return SymbolicResult(e["macro_fluctuation"], None,
                          f"linear width model, exact Var M: std M ~ n^({sym['macro_fluctuation']}) -> "
                          f"{e['macro_fluctuation']} at beta = 1/2", tight=True)


def d_micro_fluct():
    e, sym = _meanfield_exponents()
    return SymbolicResult(e["micro_fluctuation"], None,
                          f"linear width model, exact Var theta_i: std ~ n^({sym['micro_fluctuation']}) -> "
                          f"{e['micro_fluctuation']} at beta = 1/2", tight=True)


def d_macro_bias():
    e, sym = _meanfield_exponents()
    return SymbolicResult(e["quadratic_macro_bias"], None,
                          "linear model: E M(t) solves the mean-field ODE exactly (bias 0); the first non-zero "
                          f"macro bias is of a quadratic observable, E Q_n - Q_oo = Var theta_i ~ n^({sym['quadratic_macro_bias']}) "
                          f"-> {e['quadratic_macro_bias']}; a nonlinear phi or F gives the same order (delta method)",
                          tight=True)


def d_micro_bias():
    e, sym = _meanfield_exponents()
    return SymbolicResult(e["quadratic_macro_bias"], None,
                          "E theta_i - theta_oo: zero in the linear model; with a nonlinear F the second-order term "
                          "1/2 F'' Var theta_i gives n^(-2 beta) = n^-1, an order below the claimed n^-1/2",
                          tight=True)


def d_separation():
    e, _ = _meanfield_exponents()
    diff = sp.nsimplify(e["macro_fluctuation"] - e["micro_fluctuation"])
    return SymbolicResult(diff, bool(diff < 0),
                          f"p_macro - p_micro = {e['macro_fluctuation']} - ({e['micro_fluctuation']}) = {diff}; a separation "
                          "needs the micro rate to be a Theta rate (a lower bound), which the exact variance gives",
                          tight=True)


def d_early_optimum():
    # eta*(t) moves by an amount proportional to the gradient-noise variance sigma^2 n^(-2 beta)
    beta = sp.Symbol("beta", positive=True)
    e = (-2 * beta).subs(beta, HALF)
    return SymbolicResult(e, None, "NQM: the noise-free optimum 2/(h1+h2) is the same at every t; the noise term shifts "
                          "eta*(t) by an amount proportional to sigma^2 n^(-2 beta) (implicit function theorem), "
                          "differently at t0 and T, so the gap is Theta(n^(-2 beta)) = n^-1", tight=True)


def d_delay():
    tau = sp.Symbol("tau", positive=True)
    u = sp.Symbol("u", positive=True)
    lag = sp.solve(sp.Eq(1 - sp.exp(-u / tau), HALF), u)[0]
    p = leading_exponent(lag, tau, 0)
    return SymbolicResult(p, None, f"exponential kernel: Q(u) = 1 - exp(-u/tau) = 1/2 at u = {lag}: exponent {p} in tau; "
                          "the zero-memory kernel (tau -> 0) has lag 0", tight=True)


def d_lemma_4_6():
    """Learning rate O(1/n) times an O(1) output gradient gives O(1/n) per-coordinate updates and
    Theta(1) feature updates per layer (muP, SGD), from the abc table the trainer uses."""
    t = abc_derive(mup(L=2))
    lr, grad = 1 / n, sp.Integer(1)
    upd = big_o(lr * grad, 1 / n)
    hidden_upd = Fraction(t.weight_update[1])
    ok = bool(upd) and hidden_upd == -1 and all(f == 0 for f in t.feature_change)
    return SymbolicResult(sp.Rational(hidden_upd.numerator, hidden_upd.denominator), ok,
                          f"{upd.statement} ({upd.message}); muP table: hidden per-coordinate update n^{t.weight_update[1]}, "
                          f"feature change per layer n^{list(map(str, t.feature_change))} (Theta(1): n aligned terms of size 1/n)",
                          tight=True)


def d_lemma_4_7_small_L():
    L, d = n ** (-HALF), n**2
    expr = L * sp.sqrt(d) * sp.sqrt(n)
    res = big_o(expr, n)
    return SymbolicResult(leading_exponent(expr), bool(res), f"L = n^-1/2, d(n) = n^2: L sqrt(d) sqrt(n) = {sp.simplify(expr)}; "
                          f"{res.statement}: {res.message}", tight=bool(theta(expr, n)))


def d_lemma_4_7_const_L():
    L, d = sp.Integer(1), n**2
    expr = L * sp.sqrt(d) * sp.sqrt(n)
    res = big_o(expr, n)
    return SymbolicResult(leading_exponent(expr), bool(res), f"L constant, d(n) = n^2: L sqrt(d) sqrt(n) = {sp.simplify(expr)}; "
                          f"{res.statement}: {res.message} -- the bound is O(n^(3/2)), not O(n)",
                          tight=bool(theta(expr, n ** sp.Rational(3, 2))))


def assumption_3_3(input_variance) -> dict:
    """First-layer pre-activation h_i = sum_{j<=d} W_ij xi_j, d fixed, xi_j = O(1):
    Var h_i = d * Var W. Returns its standard-deviation exponent in n and whether it is Theta(1)."""
    d = sp.Symbol("d", positive=True)
    std = sp.sqrt(d * input_variance)
    p = leading_exponent(std)
    return {"std": std, "exponent": p, "theta_one": bool(theta(std, sp.sqrt(d)))}


def d_assumption_3_3():
    printed = assumption_3_3(n**-2)
    fixed = assumption_3_3(sp.Integer(1))
    ok = printed["theta_one"]
    return SymbolicResult(printed["exponent"], ok,
                          f"as printed, W ~ N(0, 1/n^2): std of a first-layer pre-activation = {printed['std']} ~ n^{printed['exponent']} "
                          f"-> 0: the input layer's signal vanishes with width (flagged); corrected N(0, 1): "
                          f"{fixed['std']} ~ n^{fixed['exponent']} (Theta(1))", tight=True)


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="thm4.1-macro-fluct", source=f"{SRC}, Theorem 4.1",
        statement="Macro-variables settle at O(1/n): the replica spread of M_n(T) is O(n^-1)",
        quantity="std over replicas of M_n(T)", variable="n", limit_point="oo", exponent=-1.0,
        kind=RateKind.BIG_O, reading="fluctuation", checks=(CheckKind.SYMBOLIC, CheckKind.SIMULATION),
        measure=checks.macro_fluctuation, derive=d_macro_fluct, model=checks.WIDTH_MODEL_TEXT,
    ),
    Claim(
        id="thm4.1-macro-bias", source=f"{SRC}, Theorem 4.1",
        statement="Macro-variables settle at O(1/n): |E M_n(T) - M_oo(T)| is O(n^-1)",
        quantity="|E M_n(T) - M_oo(T)|", variable="n", limit_point="oo", exponent=-1.0,
        kind=RateKind.BIG_O, reading="bias", checks=(CheckKind.SYMBOLIC, CheckKind.SIMULATION),
        measure=checks.macro_bias, derive=d_macro_bias, model=checks.WIDTH_MODEL_TEXT,
    ),
    Claim(
        id="thm4.1-micro-fluct", source=f"{SRC}, Theorem 4.1",
        statement="Micro-variables move at Theta(1/sqrt n): the replica spread of theta_1(T) is Theta(n^-1/2)",
        quantity="std over replicas of theta_1(T)", variable="n", limit_point="oo", exponent=-0.5,
        kind=RateKind.THETA, reading="fluctuation", checks=(CheckKind.SYMBOLIC, CheckKind.SIMULATION),
        measure=checks.micro_fluctuation, derive=d_micro_fluct, model=checks.WIDTH_MODEL_TEXT,
    ),
    Claim(
        id="thm4.1-micro-bias", source=f"{SRC}, Theorem 4.1",
        statement="Micro-variables move at Theta(1/sqrt n): |E theta_1(T) - theta_oo(T)| is Theta(n^-1/2)",
        quantity="|E theta_1(T) - theta_oo(T)|", variable="n", limit_point="oo", exponent=-0.5,
        kind=RateKind.THETA, reading="bias", checks=(CheckKind.SYMBOLIC, CheckKind.SIMULATION),
        measure=checks.micro_bias, derive=d_micro_bias, model=checks.WIDTH_MODEL_TEXT,
    ),
    Claim(
        id="thm4.1-separation", source=f"{SRC}, Theorem 4.1",
        statement="Separation of scales: macro-variables fluctuate at a smaller order than micro-variables",
        quantity="p(std M_n) - p(std theta_1)", variable="n", limit_point="oo", exponent=0.0,
        kind=RateKind.SEPARATION, reading="difference", checks=(CheckKind.SYMBOLIC, CheckKind.SIMULATION),
        measure=checks.separation, derive=d_separation, model=checks.WIDTH_MODEL_TEXT,
    ),
    Claim(
        id="thm3.1-early-optimum", source=f"{SRC}, Theorem 3.1",
        statement="Early-stage learning-rate optima approximate final ones: |log eta*(t0) - log eta*(T)| is O(1/n)",
        quantity="|log eta*(t0) - log eta*(T)|", variable="n", limit_point="oo", exponent=-1.0,
        kind=RateKind.BIG_O, reading="values", checks=(CheckKind.SYMBOLIC, CheckKind.SIMULATION),
        measure=checks.early_optimum, derive=d_early_optimum, model="noisy quadratic model with width",
    ),
    Claim(
        id="thm5.1-delay", source=f"{SRC}, Theorem 5.1",
        statement="The loss answers a learning-rate change with a delay set by the memory kernel: the lag is "
                  "Theta(tau) in the kernel time scale and vanishes for a zero-memory kernel",
        quantity="lag (time to half response) after a learning-rate drop", variable="tau", limit_point="0",
        exponent=1.0, kind=RateKind.THETA, reading="values", checks=(CheckKind.SYMBOLIC, CheckKind.SIMULATION),
        measure=checks.delay_lag, derive=d_delay, model="memory-kernel learning-rate-delay model",
    ),
    Claim(
        id="lemma4.6-updates", source=f"{SRC}, Lemma 4.6",
        statement="Under muP a learning rate O(1/n) times an O(1) output gradient gives O(1/n) per-coordinate "
                  "updates and Theta(1) feature updates in every layer",
        quantity="per-coordinate update of a hidden weight", variable="n", limit_point="oo", exponent=-1.0,
        kind=RateKind.BIG_O, reading="symbolic", checks=(CheckKind.SYMBOLIC,), derive=d_lemma_4_6,
        model="abc table of sde_scales.parametrization (muP, SGD)",
    ),
    Claim(
        id="lemma4.7-small-L", source=f"{SRC}, Lemma 4.7",
        statement="L sqrt(d(n)) O(sqrt n) = O(n) when L = O(1/sqrt n) and d(n) = O(n^2)",
        quantity="L sqrt(d(n)) sqrt(n)", variable="n", limit_point="oo", exponent=1.0,
        kind=RateKind.BIG_O, reading="symbolic", checks=(CheckKind.SYMBOLIC,), derive=d_lemma_4_7_small_L,
    ),
    Claim(
        id="lemma4.7-const-L", source=f"{SRC}, Lemma 4.7",
        statement="The same bound O(n) read with a constant L (and d(n) = O(n^2))",
        quantity="L sqrt(d(n)) sqrt(n)", variable="n", limit_point="oo", exponent=1.0,
        kind=RateKind.BIG_O, reading="symbolic", checks=(CheckKind.SYMBOLIC,), derive=d_lemma_4_7_const_L,
    ),
    Claim(
        id="assumption3.3-input-init", source=f"{SRC}, Assumption 3.3",
        statement="Input weights initialised N(0, 1/n^2) (as printed) keep first-layer pre-activations Theta(1)",
        quantity="std of a first-layer pre-activation", variable="n", limit_point="oo", exponent=0.0,
        kind=RateKind.THETA, reading="symbolic", checks=(CheckKind.SYMBOLIC,), derive=d_assumption_3_3,
    ),
)


def claims_by_id() -> dict[str, Claim]:
    return {c.id: c for c in CLAIMS}
