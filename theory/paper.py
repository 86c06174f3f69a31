r"""The claims of Hong & Wang, "On the Provable Separation of Scales in Maximal Update
Parameterization" (ICML 2025), as :class:`~theory.claims.Claim` records.

Theorem 4.1 is checked on two readings, reported separately because they need not agree:
*fluctuation* (spread over independent replicas) and *bias* (distance of the replica mean from the
mean-field limit). For a single weight the two differ: its fluctuation is of order
:math:`n^{-1/2}`, while its mean moves from the limit only at second order (by the variance,
:math:`n^{-1}`), so "micro-variables move at Theta(1/sqrt n)" holds on the first reading and is
expected to fail, or stay unresolved, on the second.
"""

from __future__ import annotations

from sde_scales.rates import RateKind
from theory import checks
from theory.claims import CheckKind, Claim

__all__ = ["CLAIMS", "claims_by_id"]

SRC = "Hong & Wang (ICML 2025)"

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="thm4.1-macro-fluct", source=f"{SRC}, Theorem 4.1",
        statement="Macro-variables settle at O(1/n): the replica spread of M_n(T) is O(n^-1)",
        quantity="std over replicas of M_n(T)", variable="n", limit_point="oo", exponent=-1.0,
        kind=RateKind.BIG_O, reading="fluctuation", checks=(CheckKind.SIMULATION,),
        measure=checks.macro_fluctuation, model=checks.WIDTH_MODEL_TEXT,
    ),
    Claim(
        id="thm4.1-macro-bias", source=f"{SRC}, Theorem 4.1",
        statement="Macro-variables settle at O(1/n): |E M_n(T) - M_oo(T)| is O(n^-1)",
        quantity="|E M_n(T) - M_oo(T)|", variable="n", limit_point="oo", exponent=-1.0,
        kind=RateKind.BIG_O, reading="bias", checks=(CheckKind.SIMULATION,),
        measure=checks.macro_bias, model=checks.WIDTH_MODEL_TEXT,
    ),
    Claim(
        id="thm4.1-micro-fluct", source=f"{SRC}, Theorem 4.1",
        statement="Micro-variables move at Theta(1/sqrt n): the replica spread of theta_1(T) is Theta(n^-1/2)",
        quantity="std over replicas of theta_1(T)", variable="n", limit_point="oo", exponent=-0.5,
        kind=RateKind.THETA, reading="fluctuation", checks=(CheckKind.SIMULATION,),
        measure=checks.micro_fluctuation, model=checks.WIDTH_MODEL_TEXT,
    ),
    Claim(
        id="thm4.1-micro-bias", source=f"{SRC}, Theorem 4.1",
        statement="Micro-variables move at Theta(1/sqrt n): |E theta_1(T) - theta_oo(T)| is Theta(n^-1/2)",
        quantity="|E theta_1(T) - theta_oo(T)|", variable="n", limit_point="oo", exponent=-0.5,
        kind=RateKind.THETA, reading="bias", checks=(CheckKind.SIMULATION,),
        measure=checks.micro_bias, model=checks.WIDTH_MODEL_TEXT,
    ),
    Claim(
        id="thm4.1-separation", source=f"{SRC}, Theorem 4.1",
        statement="Separation of scales: macro-variables fluctuate at a smaller order than micro-variables",
        quantity="p(std M_n) - p(std theta_1)", variable="n", limit_point="oo", exponent=0.0,
        kind=RateKind.SEPARATION, reading="difference", checks=(CheckKind.SIMULATION,),
        measure=checks.separation, model=checks.WIDTH_MODEL_TEXT,
    ),
    Claim(
        id="thm3.1-early-optimum", source=f"{SRC}, Theorem 3.1",
        statement="Early-stage learning-rate optima approximate final ones: |log eta*(t0) - log eta*(T)| is O(1/n)",
        quantity="|log eta*(t0) - log eta*(T)|", variable="n", limit_point="oo", exponent=-1.0,
        kind=RateKind.BIG_O, reading="values", checks=(CheckKind.SIMULATION,),
        measure=checks.early_optimum, model="noisy quadratic model with width",
    ),
    Claim(
        id="thm5.1-delay", source=f"{SRC}, Theorem 5.1",
        statement="The loss answers a learning-rate change with a delay set by the memory kernel: the lag is "
                  "Theta(tau) in the kernel time scale and vanishes for a zero-memory kernel",
        quantity="lag (time to half response) after a learning-rate drop", variable="tau", limit_point="0",
        exponent=1.0, kind=RateKind.THETA, reading="values", checks=(CheckKind.SIMULATION,),
        measure=checks.delay_lag, model="memory-kernel learning-rate-delay model",
    ),
)


def claims_by_id() -> dict[str, Claim]:
    return {c.id: c for c in CLAIMS}
