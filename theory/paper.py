r"""The claims of Hong & Wang, "On the Provable Separation of Scales in Maximal Update
Parameterization" (ICML 2025), as :class:`~theory.claims.Claim` records with their evidence.

Groups (:class:`~theory.claims.Group`):

* **paper**: the claims as the authors state them (their rebuttal: macro-variables settle at
  O(1/n); a *typical weight coordinate* fluctuates at Theta(1/sqrt n); the separation is the gap
  of exponents, -1/2; early learning-rate optima approximate final ones; the loss answers a
  learning-rate change with a delay set by a memory kernel; Lemmas 4.6 and 4.7 as printed).
* **reading**: other readings of the same claims, reported beside them because they need not
  agree: the *bias* reading of Theorem 4.1 (distance of the mean from its limit; for a single
  weight the mean moves only at second order, by the variance, :math:`n^{-2\beta}`), and Lemma 4.7
  read with a constant L.
* **consistency**: checks of the text itself (Assumption 3.3 as printed, a typo the authors
  acknowledge).

Evidence per claim: a symbolic derivation (sympy; it receives the claim and is judged against
the claim's own kind and exponent), a simulation (a model that builds the rate in: a check of the
engine and the estimator) and, for Theorem 4.1, training evidence from trained networks
(:func:`theory.checks.training_rows`): the evidence that bears on the theorem.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache, partial

import sympy as sp

from sde_scales.parametrization import LayerRule, by_name, mup
from sde_scales.rates import RateKind
from theory import checks
from theory.abc import derive as abc_derive
from theory.asymptotics import leading_exponent, n, power_rate
from theory.claims import CheckKind, Claim, Evidence, Group, SymbolicResult

__all__ = ["CLAIMS", "claims_by_id", "assumption_3_3"]

SRC = "Hong & Wang (ICML 2025)"
HALF = sp.Rational(1, 2)
BETA = sp.Symbol("beta", positive=True)

MEANFIELD_WHAT = ("exact finite-n moments of the linear width model (theory.meanfield) at beta = 1/2: the rate that "
                  "model implies, derived with sympy")
TRAINING_WHAT = ("trained networks: muP MLPs (SP and NTK as controls), every seed with its own initialisation and "
                 "minibatch order; the evidence that bears on the theorem")


# ---------------------------------------------------------------------------------------------
# symbolic derivations: each receives the claim and returns the exponent it derives


@lru_cache(maxsize=1)
def _meanfield_derivation():
    from theory.meanfield import SYMBOLS, predicted_exponents

    e = predicted_exponents()
    return {k: (None if v is None else v.subs(SYMBOLS["beta"], HALF)) for k, v in e.items()}, e


def _meanfield_exponents():
    """The linear width model's exponents at beta = 1/2 and as functions of beta: one sympy
    derivation (about 5 s) for the four claims that read it, each given its own copies."""
    at_half, general = _meanfield_derivation()
    return dict(at_half), dict(general)


def d_macro_fluct(claim):
    e, sym = _meanfield_exponents()
    return SymbolicResult(e["macro_fluctuation"], f"linear width model, exact Var M: std M ~ n^({sym['macro_fluctuation']}) "
                          f"-> {e['macro_fluctuation']} at beta = 1/2", tight=True)


def d_micro_fluct(claim):
    e, sym = _meanfield_exponents()
    return SymbolicResult(e["micro_fluctuation"], f"linear width model, exact Var theta_i: std ~ "
                          f"n^({sym['micro_fluctuation']}) -> {e['micro_fluctuation']} at beta = 1/2", tight=True)


def d_macro_bias(claim):
    e, sym = _meanfield_exponents()
    return SymbolicResult(e["quadratic_macro_bias"],
                          "linear model: E M(t) solves the mean-field ODE exactly (bias 0); the first non-zero macro "
                          f"bias is of a quadratic observable, E Q_n - Q_oo = Var theta_i ~ n^({sym['quadratic_macro_bias']}) "
                          f"-> {e['quadratic_macro_bias']}", tight=True)


def delta_method_exponent(beta=HALF):
    r"""Leading exponent in n of :math:`\mathbb{E} F(\mu + \varepsilon) - F(\mu)` for a smooth F and a
    coordinate fluctuation with :math:`\mathbb{E}\varepsilon = 0`, :math:`\mathbb{E}\varepsilon^2 = s^2
    n^{-2\beta}`: a sympy series in :math:`\varepsilon` with the moments substituted (the first-order
    term vanishes), every derivative of F replaced by a non-zero constant (a nonlinear F).
    Returns the exponent and the leading term."""
    mu, eps, s, k = sp.symbols("mu epsilon s k", positive=True)
    F = sp.Function("F")
    ser = sp.expand(sp.series(F(mu + eps), eps, 0, 3).removeO())
    # E[series] term by term: the coefficient of eps^k times the k-th moment (0, s^2 n^-2beta)
    # (not subs(eps**2, ...): sympy would also rewrite eps itself as a square root)
    moments = {0: 1, 1: 0, 2: s**2 * n ** (-2 * beta)}
    mean = sum(ser.coeff(eps, k) * m for k, m in moments.items()) - F(mu)
    term = mean.replace(lambda e: isinstance(e, (sp.Subs, sp.Derivative)), lambda e: k)
    shown = mean.replace(lambda e: isinstance(e, (sp.Subs, sp.Derivative)), lambda e: sp.Symbol("F''(mu)"))
    return leading_exponent(term), shown


def d_micro_bias(claim):
    p, term = delta_method_exponent()
    _, tight = power_rate(term.subs(sp.Symbol("F''(mu)"), 1))  # a non-zero F'' (a nonlinear coupling)
    return SymbolicResult(p, f"E theta_i - theta_oo is driven by E F(theta) - F(E theta) = {sp.sstr(term)} + ... "
                          f"(sympy series in the fluctuation, moments substituted, Var theta_i = s^2 n^(-2 beta)): "
                          f"n^{p} at beta = 1/2 for a nonlinear coupling, zero in the linear model (F'' = 0)",
                          tight=tight)


def d_separation(claim):
    e, _ = _meanfield_exponents()
    diff = sp.nsimplify(e["macro_fluctuation"] - e["micro_fluctuation"])
    return SymbolicResult(diff, f"p_macro - p_micro = {e['macro_fluctuation']} - ({e['micro_fluctuation']}) = {diff}, "
                          "both Theta rates from the exact variances", tight=True)


def nqm_optimum_shift(h=(1, 20), t0: int = 3, T: int = 20):
    r"""The first-order shift of :math:`\eta^*(t)` in the noise level :math:`\varepsilon = \sigma^2 n^{-2\beta}`
    of the NQM (:mod:`sde_scales.models.nqm`), exactly in rationals: implicit-function theorem
    :math:`d\eta^*/d\varepsilon = -\partial_{\eta\varepsilon} L / \partial_{\eta\eta} L` at the
    noise-free optimum :math:`\eta_0 = 2/(h_1 + h_2)`. Returns ``(eta0, slope(t0), slope(T),
    dL/deta at eta0)``; the last is 0 when eta0 is the noise-free optimum."""
    eta, eps = sp.symbols("eta epsilon", positive=True)

    def loss(t):
        tot = 0
        for hg in map(sp.Integer, h):
            r = 1 - eta * hg
            geo = sum(r ** (2 * s) for s in range(t))
            tot += sp.Rational(1, 4) * hg * (r ** (2 * t) / hg**2 + eta**2 * eps * hg * geo)
        return sp.expand(tot)

    eta0 = sp.Rational(2, sum(h))
    out = []
    for t in (t0, T):
        L = loss(t)
        at = {eta: eta0, eps: 0}
        out.append(-sp.diff(L, eta, eps).subs(at) / sp.diff(L, eta, 2).subs(at))
    stationary = sp.diff(loss(T), eta).subs({eta: eta0, eps: 0})
    return eta0, out[0], out[1], stationary


def d_early_optimum(claim):
    eta0, s0, sT, stat = nqm_optimum_shift()
    coeff = sp.nsimplify(abs(s0 - sT) / eta0)
    gap = coeff * n ** (-2 * BETA)
    p = leading_exponent(gap.subs(BETA, HALF)) if coeff != 0 else None
    return SymbolicResult(p, f"NQM h = (1, 20), t0 = 3, T = 20: the noise-free optimum 2/21 is stationary at every t "
                          f"(dL/deta = {stat}); implicit-function theorem: log eta*(t) = log(2/21) + eps d(t) + O(eps^2) "
                          f"with |d(3) - d(20)| = {float(coeff):.4g} != 0, eps = sigma^2 n^(-2 beta): gap ~ n^{p} at "
                          f"beta = 1/2", tight=coeff != 0)


def exponential_lag():
    r"""The exponential kernel's lag in closed form: the root :math:`u` of
    :math:`Q(u) = 1 - e^{-u/\tau} = 1/2` (sympy), as an expression in the symbol ``tau``."""
    tau = sp.Symbol("tau", positive=True)
    u = sp.Symbol("u", positive=True)
    return sp.solve(sp.Eq(1 - sp.exp(-u / tau), HALF), u)[0]


def d_delay(claim):
    tau = sp.Symbol("tau", positive=True)
    lag = exponential_lag()
    p, tight = power_rate(lag, tau, 0)
    return SymbolicResult(p, f"exponential kernel: Q(u) = 1 - exp(-u/tau) = 1/2 at u = {lag}: exponent {p} in tau as "
                          "tau -> 0; the zero-memory kernel has lag 0", tight=tight)


def d_lemma_4_6(claim):
    """Per-coordinate update of a hidden weight under muP (SGD), from the abc table the trainer uses:
    learning rate Theta(1) times a Theta(1/n) gradient coordinate."""
    t = abc_derive(mup(L=2))
    hidden_upd = Fraction(t.weight_update[1])
    p = sp.Rational(hidden_upd.numerator, hidden_upd.denominator)
    feat = all(f == 0 for f in t.feature_change)
    changes = ", ".join(f"n^{f}" for f in t.feature_change)
    return SymbolicResult(p, f"muP table (theory.abc): hidden per-coordinate update n^{p}; feature change per layer "
                          f"{changes} ({'Theta(1) in every layer' if feat else 'NOT Theta(1)'}: n aligned terms of "
                          "size 1/n)", tight=True)


def _lemma_4_7(L):
    d = n**2
    expr = L * sp.sqrt(d) * sp.sqrt(n)
    return (*power_rate(expr), sp.simplify(expr))


def d_lemma_4_7_small_L(claim):
    p, tight, e = _lemma_4_7(n ** (-HALF))
    return SymbolicResult(p, f"L = n^-1/2, d(n) = n^2: L sqrt(d) sqrt(n) = {e} ~ n^{p}", tight=tight)


def d_lemma_4_7_const_L(claim):
    p, tight, e = _lemma_4_7(sp.Integer(1))
    return SymbolicResult(p, f"L constant, d(n) = n^2: L sqrt(d) sqrt(n) = {e} ~ n^{p}", tight=tight)


def assumption_3_3(input_variance) -> dict:
    """First-layer pre-activation h_i = sum_{j<=d} W_ij xi_j, d fixed, xi_j = O(1):
    Var h_i = d * Var W. Returns its standard-deviation exponent in n."""
    d = sp.Symbol("d", positive=True)
    std = sp.sqrt(d * input_variance)
    p, tight = power_rate(std)
    return {"std": std, "exponent": p, "tight": tight}


def d_assumption_3_3(claim):
    printed = assumption_3_3(n**-2)
    fixed = assumption_3_3(sp.Integer(1))
    return SymbolicResult(printed["exponent"], f"as printed, W ~ N(0, 1/n^2): std of a first-layer pre-activation = "
                          f"{printed['std']} ~ n^{printed['exponent']} (the input signal vanishes with width); the "
                          f"corrected N(0, 1) gives {fixed['std']} ~ n^{fixed['exponent']}", tight=printed["tight"])


def stable_lr_exponent(p) -> tuple[Fraction, object]:
    r"""The largest exponent e such that the parametrization ``p`` with its learning rates
    multiplied by a global :math:`n^{e}` is stable (:func:`theory.abc.derive`), and the table there:
    the edge of stability that an optimal learning rate sits at or below. Searched over multiples
    of 1/12 from -3 to 3 (the tables' exponents are multiples of 1/2, and stability is monotone
    in the rate: a smaller rate never destabilises)."""
    for k in range(-36, 37):
        shift = Fraction(k, 12)  # every layer's c + shift: the global rate times n^-shift
        q = type(p)(p.name, tuple(LayerRule(r.a, r.b, r.c + shift) for r in p.layers), p.optimizer)
        t = abc_derive(q)
        if t.stable:
            return -shift, t
    raise ValueError(f"{p.name}: no global learning-rate exponent in [-3, 3] makes it stable")


def d_vlassis_lr_transfer(claim):
    """The optimal learning rate's exponent in n under muP (SGD) from the abc table: the edge of
    stability of a global rate; muP is stable with feature learning at every base rate below a
    width-independent edge, so its limit's optimum is a constant. SP beside it, for the contrast."""
    e_mup, t_mup = stable_lr_exponent(mup(L=2))
    e_sp, t_sp = stable_lr_exponent(by_name("sp", L=2))
    p = sp.Rational(e_mup.numerator, e_mup.denominator)
    return SymbolicResult(p, f"abc tables (theory.abc, SGD, 2 hidden layers): the largest global learning rate that "
                          f"keeps muP stable scales as n^{e_mup} ({t_mup.summary} there), so muP has a "
                          f"width-independent limit at every base rate below the edge and the optimum of the limit's "
                          f"loss is a constant, n^{p}; SP's edge is n^{e_sp} ({t_sp.summary} there): its optimum "
                          f"must shrink with width", tight=True)


def d_vlassis_coordinates(claim):
    """Feature changes over training (TP4's -r_l), every layer, under muP (SGD): the abc table's exponents;
    the exponent of largest magnitude is the claim's (0 when every layer is Theta(1))."""
    t = abc_derive(mup(L=2))
    exps = list(t.feature_change) + [t.output_change]
    worst = max(exps, key=abs)
    sp_t = abc_derive(by_name("sp", L=2))
    p = sp.Rational(worst.numerator, worst.denominator)
    return SymbolicResult(p, f"muP table (theory.abc, SGD, 2 hidden layers): feature change per layer "
                          f"{', '.join(f'n^{x}' for x in t.feature_change)}, output change n^{t.output_change}: "
                          f"the largest exponent in magnitude is {worst}; SP at the same base rate: "
                          f"{sp_t.summary}", tight=True)


# ---------------------------------------------------------------------------------------------
# evidence records

def _sym(fn, what=MEANFIELD_WHAT):
    return Evidence(CheckKind.SYMBOLIC, fn, what)


def _simulation(fn, what=checks.WIDTH_MODEL_WHAT):
    return Evidence(CheckKind.SIMULATION, fn, what)


MACRO_VARS = ("eval_loss", "grad_norm", "act_rms")
#: micro-variables: ``micro`` is the primary micro layer (hidden when the network has one, else the
#: input layer), ``readout`` the last layer; ``_raw`` in raw rather than effective units
MICRO_VARS = ("micro_disp", "readout_disp", "micro_value", "readout_value", "micro_disp_raw", "readout_disp_raw")


def _training(reading, variables, control_variables=None):
    return Evidence(CheckKind.TRAINING, partial(checks.training_rows, reading=reading, variables=variables,
                                                control_variables=control_variables), TRAINING_WHAT)


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="thm4.1-macro-fluct", source=f"{SRC}, Theorem 4.1", group=Group.PAPER,
        statement="Macro-variables settle at O(1/n): their spread over independent replicas is O(n^-1)",
        quantity="std over replicas of a macro-variable at time T", variable="n", limit_point="oo", exponent=-1.0,
        kind=RateKind.BIG_O, reading="fluctuation",
        evidence=(_sym(d_macro_fluct), _simulation(checks.macro_fluctuation), _training("fluctuation", MACRO_VARS)),
    ),
    Claim(
        id="thm4.1-micro-fluct", source=f"{SRC}, Theorem 4.1", group=Group.PAPER,
        statement="Micro-variables move at Theta(1/sqrt n): the spread over replicas of a typical weight coordinate "
                  "(its displacement from initialisation) is Theta(n^-1/2)",
        quantity="std over replicas of a weight coordinate at time T", variable="n", limit_point="oo", exponent=-0.5,
        kind=RateKind.THETA, reading="fluctuation",
        evidence=(_sym(d_micro_fluct), _simulation(checks.micro_fluctuation),
                  _training("fluctuation", MICRO_VARS, ("micro_disp",))),
    ),
    Claim(
        id="thm4.1-separation", source=f"{SRC}, Theorem 4.1", group=Group.PAPER,
        statement="Separation of scales: the macro exponent is 1/2 below the micro exponent (O(1/n) against "
                  "Theta(1/sqrt n))",
        quantity="p(std macro) - p(std micro)", variable="n", limit_point="oo", exponent=-0.5,
        kind=RateKind.SEPARATION, reading="difference",
        evidence=(_sym(d_separation), _simulation(checks.separation),
                  _training("difference", (("eval_loss", "micro_disp"),), (("eval_loss", "micro_disp"),))),
    ),
    Claim(
        id="thm3.1-early-optimum", source=f"{SRC}, Theorem 3.1", group=Group.PAPER,
        statement="Early-stage learning-rate optima approximate final ones: |log eta*(t0) - log eta*(T)| is O(1/n)",
        quantity="|log eta*(t0) - log eta*(T)|", variable="n", limit_point="oo", exponent=-1.0,
        kind=RateKind.BIG_O, reading="values",
        evidence=(_sym(d_early_optimum, "noisy quadratic model with width: implicit-function theorem on its exact "
                       "expected loss"),
                  _simulation(checks.early_optimum, "the NQM's noise is set to shrink as n^-2beta; this row checks "
                              "that the exact optimum follows it (a check of the model)"),
                  Evidence(CheckKind.TRAINING, checks.early_optimum_training,
                           "trained networks over a learning-rate grid (a --store with several learning rates)")),
    ),
    Claim(
        id="thm5.1-delay", source=f"{SRC}, Theorem 5.1", group=Group.PAPER,
        statement="The loss answers a learning-rate change with a delay set by the memory kernel: the lag is "
                  "Theta(tau) in the kernel time scale and vanishes for a zero-memory kernel",
        quantity="lag (time to half response) after a learning-rate drop", variable="tau", limit_point="0",
        exponent=1.0, kind=RateKind.THETA, reading="values",
        evidence=(_sym(d_delay, "the exponential kernel's half-response, solved with sympy"),
                  _simulation(checks.delay_lag, "the delay model builds a lag of tau ln 2 in through its exponential "
                              "kernel; this row checks that the simulated lag recovers it (a check of the model)"),
                  Evidence(CheckKind.TRAINING, checks.delay_training,
                           "trained muP MLPs through step drops to 0.5, 0.25, 0.1 and 0.05 of the rate: the mean response "
                           "time of the loss against 1/eta_after (the kernel's time scale in steps if it is fixed in "
                           "learning-rate area)")),
    ),
    Claim(
        id="lemma4.6-updates", source=f"{SRC}, Lemma 4.6", group=Group.PAPER,
        statement="Under muP a learning rate O(1/n) times an O(1) output gradient gives O(1/n) per-coordinate "
                  "updates (and Theta(1) feature updates in every layer)",
        quantity="per-coordinate update of a hidden weight", variable="n", limit_point="oo", exponent=-1.0,
        kind=RateKind.BIG_O, reading="symbolic",
        evidence=(_sym(d_lemma_4_6, "abc table of sde_scales.parametrization (muP, SGD), the table the trainer uses"),),
    ),
    Claim(
        id="lemma4.7-small-L", source=f"{SRC}, Lemma 4.7", group=Group.PAPER,
        statement="L sqrt(d(n)) O(sqrt n) = O(n) when L = O(1/sqrt n) and d(n) = O(n^2)",
        quantity="L sqrt(d(n)) sqrt(n)", variable="n", limit_point="oo", exponent=1.0,
        kind=RateKind.BIG_O, reading="symbolic", evidence=(_sym(d_lemma_4_7_small_L, "sympy limit"),),
    ),
    Claim(
        id="thm4.1-macro-bias", source=f"{SRC}, Theorem 4.1", group=Group.READING,
        statement="Macro-variables settle at O(1/n), read as a bias: |E M_n(T) - M_oo(T)| is O(n^-1)",
        quantity="|E M_n(T) - M_oo(T)|", variable="n", limit_point="oo", exponent=-1.0,
        kind=RateKind.BIG_O, reading="bias",
        evidence=(_sym(d_macro_bias), _simulation(checks.macro_bias), _training("bias", MACRO_VARS)),
    ),
    Claim(
        id="thm4.1-micro-bias", source=f"{SRC}, Theorem 4.1", group=Group.READING,
        statement="Micro-variables move at Theta(1/sqrt n), read as a bias: |E theta_1(T) - theta_oo(T)| is "
                  "Theta(n^-1/2)",
        quantity="|E theta_1(T) - theta_oo(T)|", variable="n", limit_point="oo", exponent=-0.5,
        kind=RateKind.THETA, reading="bias",
        evidence=(_sym(d_micro_bias, "delta method: sympy series of a smooth coupling in the coordinate fluctuation"),
                  _simulation(checks.micro_bias), _training("bias", MICRO_VARS[:4], ("micro_disp",))),
    ),
    Claim(
        id="lemma4.7-const-L", source=f"{SRC}, Lemma 4.7", group=Group.READING,
        statement="The same bound O(n) read with a constant L (and d(n) = O(n^2))",
        quantity="L sqrt(d(n)) sqrt(n)", variable="n", limit_point="oo", exponent=1.0,
        kind=RateKind.BIG_O, reading="symbolic", evidence=(_sym(d_lemma_4_7_const_L, "sympy limit"),),
    ),
    Claim(
        id="assumption3.3-input-init", source=f"{SRC}, Assumption 3.3", group=Group.CONSISTENCY,
        statement="Input weights initialised N(0, 1/n^2) (as printed) keep first-layer pre-activations Theta(1)",
        quantity="std of a first-layer pre-activation", variable="n", limit_point="oo", exponent=0.0,
        kind=RateKind.THETA, reading="symbolic",
        evidence=(_sym(d_assumption_3_3, "forward pass of the first layer, sympy limit (the authors call the printed "
                       "variance a typo)"),),
    ),
)


QIU = "Qiu et al. (ICML 2025), scaling collapse"

RELATED: tuple[Claim, ...] = (
    Claim(
        id="qiu-supercollapse", source=f"{QIU}, Sec. 2 (supercollapse)", group=Group.RELATED,
        statement="With learning-rate decay, the normalised loss curves of a compute-optimal muP width ladder "
                  "collapse below the noise floor: Delta(x) <= sigma(x) for x in [0.2, 1]",
        quantity="max over x >= 0.2 of Delta(x) / sigma(x)", variable="x", limit_point="1", exponent=1.0,
        kind=RateKind.BOUND, reading="ratio",
        evidence=(Evidence(CheckKind.TRAINING, checks.supercollapse_training,
                           "a muP width ladder trained to its compute-optimal horizons with linear decay (frontier, "
                           "L0 and horizons fitted from constant-lr runs); frozen-lr and SP ladders as controls"),),
    ),
)

VLASSIS = "Vlassis et al. (TMLR 2025), a reproduction of muP against SP"

RELATED = RELATED + (
    Claim(
        id="vlassis-coordinates", source=f"{VLASSIS}, abstract (muP's effect on outputs, updates and weights)",
        group=Group.RELATED,
        statement="Under muP every layer's activations change by Theta(1) in width over the first training steps "
                  "(the coordinate check), where SP's do not",
        quantity="RMS change of a layer's pre-activations after the first SGD steps", variable="n",
        limit_point="oo", exponent=0.0, kind=RateKind.THETA, reading="bias",
        evidence=(_sym(d_vlassis_coordinates, "abc table of sde_scales.parametrization (muP, SGD), the table the "
                       "trainer uses"),
                  Evidence(CheckKind.TRAINING, checks.coordinate_training,
                           "coordinate check of muP MLPs (each layer a primary row; SP as control): the RMS change of "
                           "pre-activations on a probe batch after three SGD steps, its exponent over seeds, judged "
                           "with the check's stated floor 0.15 for next-order terms")),
        max_ci_width=0.6,  # the coordinate check's (sde_scales.train.coordcheck.MAX_WIDTH)
    ),
    Claim(
        id="vlassis-lr-transfer", source=f"{VLASSIS}, abstract (optimal hyperparameters independent of width)",
        group=Group.RELATED,
        statement="Under muP the optimal learning rate does not move with width (it transfers from small models to "
                  "large ones), where under SP it does",
        quantity="eta*(T), the learning rate of least final loss", variable="n", limit_point="oo", exponent=0.0,
        kind=RateKind.THETA, reading="values",
        evidence=(_sym(d_vlassis_lr_transfer, "abc tables of sde_scales.parametrization: the edge of stability of a "
                       "global learning rate, muP and SP"),
                  Evidence(CheckKind.TRAINING, checks.lr_transfer_training,
                           "trained networks over a learning-rate grid (a --store with several learning rates): the "
                           "final loss's optimum against width, muP primary, SP control")),
    ),
)

CLAIMS = CLAIMS + RELATED


def claims_by_id() -> dict[str, Claim]:
    return {c.id: c for c in CLAIMS}
