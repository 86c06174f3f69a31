r"""Claims as records that tests, docs, plots and ``sde-scales verify`` read.

A :class:`Claim` says *what* is claimed (quantity, variable, limit point, exponent, O, Theta or a
separation with its claimed difference of exponents) and *where* (paper, section, and which
:class:`Group` it belongs to); it maps each kind of evidence (:class:`CheckKind`: symbolic,
simulation, training) to the check that measures it, as :class:`Evidence` records. Verdicts are
never stored here: they are computed every time from measurements, by the rules of
:mod:`sde_scales.rates`, against the claim's own kind and exponent.

A symbolic check receives the claim and returns a :class:`SymbolicResult` (the exponent it
derives and whether that exponent is a tight Theta rate or only a bound); the verdict compares the
derived exponent with the claim, so a claim planted with a wrong exponent gets a symbolic FAIL.
A numeric check receives the run settings and returns one or more measurements.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable

from sde_scales.rates import RateKind

__all__ = ["Claim", "CheckKind", "Evidence", "Group", "SymbolicResult"]


@dataclass(frozen=True)
class SymbolicResult:
    """What a derivation returns.

    ``exponent``: the derived exponent (sympy number), or None where the quantity is exactly zero;
    ``tight``: True when the derived rate is a Theta rate (an exact leading term), False when the
    derivation only gives an upper bound; ``detail``: the steps in words. ``derived`` is False for
    an entry that states an exponent without deriving it; such an entry is reported as
    "not derived" and gets no verdict.
    """

    exponent: Any
    detail: str
    tight: bool | None = None
    derived: bool = True


class CheckKind:
    """Kinds of evidence (plain names, used in the claim record and in reports)."""

    SYMBOLIC = "symbolic"
    SIMULATION = "simulation"
    TRAINING = "training"
    ALL = (SYMBOLIC, SIMULATION, TRAINING)


class Group(enum.Enum):
    """How a claim relates to the paper."""

    PAPER = "paper"
    READING = "reading"
    CONSISTENCY = "consistency"
    RELATED = "related"

    @property
    def title(self) -> str:
        return {"paper": "The paper's claims, as its authors state them",
                "reading": "Other readings of the same claims",
                "consistency": "Consistency and typo checks",
                "related": "Claims of related works"}[self.value]


@dataclass(frozen=True)
class Evidence:
    """One kind of evidence for a claim.

    ``check``: for ``symbolic``, ``check(claim) -> SymbolicResult``; for ``simulation`` and
    ``training``, ``check(settings) -> Measurement | list[Measurement]`` (``theory.checks``).
    ``what``: what this evidence shows, in words (e.g. that a simulation row checks a model whose
    rate is built in, and so tests the engine and estimator rather than the theorem)."""

    kind: str
    check: Callable[..., Any]
    what: str = ""

    def __post_init__(self) -> None:
        if self.kind not in CheckKind.ALL:
            raise ValueError(f"evidence kind {self.kind!r}; use one of {CheckKind.ALL}")


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, as data.

    Attributes
    ----------
    id : str
        Short stable identifier, e.g. ``"thm4.1-macro-fluct"``.
    source : str
        Paper and section.
    group : Group
        The paper's claim, another reading of it, or a consistency/typo check.
    statement : str
        The claim in words, as a reader would check it.
    quantity : str
        What is measured.
    variable, limit_point : str
        The asymptotic variable and where it goes (``"n", "oo"``): rates are always written with
        their limit point, e.g. ``O(n^-1, (n, oo))``.
    exponent : float
        Predicted exponent p in ``quantity ~ variable^p``; for a separation, the claimed
        difference of exponents (``-0.5`` for Theorem 4.1: O(1/n) against Theta(1/sqrt n)); for a
        bound, the bound on the quantity.
    kind : RateKind
        ``O``, ``Theta``, ``separation`` or ``bound`` (a statistic at most the bound).
    reading : str
        ``fluctuation`` (spread over replicas), ``bias`` (distance of the mean from a reference),
        ``values`` (exact values), ``difference`` or ``symbolic``.
    evidence : tuple of Evidence
        The checks that measure it, at most one per kind.
    max_ci_width : float
        Widest widened interval that can PASS (``sde_scales.rates.verdict``).
    """

    id: str
    source: str
    group: Group
    statement: str
    quantity: str
    variable: str
    limit_point: str
    exponent: float
    kind: RateKind
    reading: str
    evidence: tuple[Evidence, ...]
    max_ci_width: float = 0.3

    def __post_init__(self) -> None:
        kinds = [e.kind for e in self.evidence]
        if len(kinds) != len(set(kinds)):
            raise ValueError(f"claim {self.id}: evidence kinds {kinds} repeat; give one check per kind")
        if not self.evidence:
            raise ValueError(f"claim {self.id} has no evidence; give at least one check")

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(e.kind for e in self.evidence)

    def evidence_of(self, kind: str) -> Evidence | None:
        return next((e for e in self.evidence if e.kind == kind), None)

    @property
    def predicted(self) -> str:
        """The claimed rate with its limit point, e.g. ``O(n^-1) as n -> oo``."""
        if self.kind is RateKind.BOUND:
            return f"{self.quantity} <= {self.exponent:g}"
        if self.kind is RateKind.SEPARATION:
            return f"p_macro - p_micro = {self.exponent:g} as {self.variable} -> {self.limit_point}"
        return f"{self.kind.value}({self.variable}^{self.exponent:g}) as {self.variable} -> {self.limit_point}"

    def to_dict(self) -> dict:
        return {
            "id": self.id, "source": self.source, "group": self.group.value, "statement": self.statement,
            "quantity": self.quantity, "variable": self.variable, "limit_point": self.limit_point,
            "predicted": self.predicted, "predicted_exponent": self.exponent, "kind": self.kind.value,
            "reading": self.reading, "evidence_kinds": list(self.kinds), "max_ci_width": self.max_ci_width,
        }
