r"""Claims as records that tests, docs, plots and ``sde-scales verify`` read.

A :class:`Claim` says *what* is claimed (quantity, variable, limit point, exponent, O or Theta)
and *where* (paper, section); it points at the check that measures it (``measure``) and, where one
exists, at a symbolic derivation of the exponent (``derive``). Verdicts are never stored here:
they are computed every time from measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sde_scales.rates import RateKind

__all__ = ["Claim", "CheckKind", "SymbolicResult"]


@dataclass(frozen=True)
class SymbolicResult:
    """What a derivation returns.

    ``exponent``: the derived exponent (sympy number or expression), or None where the quantity is
    exactly zero; ``holds``: whether the claim follows from the derivation (None when the claim is
    numeric and the derivation only supplies the exponent); ``detail``: the steps in words;
    ``tight``: True when the derived rate is a Theta rate (an exact leading term), False when the
    derivation only gives an upper bound.
    """

    exponent: Any
    holds: bool | None
    detail: str
    tight: bool | None = None


class CheckKind:
    """Which checks apply to a claim (plain names, used in the claim record and in reports)."""

    SYMBOLIC = "symbolic"
    SIMULATION = "simulation"
    TRAINING = "training"


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, as data.

    Attributes
    ----------
    id : str
        Short stable identifier, e.g. ``"thm4.1-macro-fluct"``.
    source : str
        Paper and section.
    statement : str
        The claim in words, as a reader would check it.
    quantity : str
        What is measured.
    variable, limit_point : str
        The asymptotic variable and where it goes (``"n", "oo"``): rates are always written with
        their limit point, e.g. ``O(n^-1, (n, oo))``.
    exponent : float
        Predicted exponent p in ``quantity ~ variable^p``.
    kind : RateKind
        ``O``, ``Theta`` or ``separation`` (difference of exponents below 0).
    reading : str
        ``fluctuation`` (spread over replicas), ``bias`` (distance of the mean from a reference),
        ``values`` (exact values) or ``difference``.
    checks : tuple of str
        Which kinds of check apply (:class:`CheckKind`).
    measure : callable
        ``measure(settings) -> Measurement``; see ``theory.checks``.
    derive : callable, optional
        ``derive() -> SymbolicResult`` (``theory.paper``).
    resolution, max_ci_width : float
        Thresholds of the verdict rules (``sde_scales.rates.verdict``).
    model : str
        The model the check runs on, in words.
    """

    id: str
    source: str
    statement: str
    quantity: str
    variable: str
    limit_point: str
    exponent: float
    kind: RateKind
    reading: str
    checks: tuple[str, ...]
    measure: Callable[[Any], Any] | None = None
    derive: Callable[[], Any] | None = None
    resolution: float = 0.1
    max_ci_width: float = 0.3
    model: str = ""

    @property
    def predicted(self) -> str:
        """The claimed rate with its limit point, e.g. ``O(n^-1) as n -> oo``."""
        if self.kind is RateKind.SEPARATION:
            return f"p_macro - p_micro < 0 as {self.variable} -> {self.limit_point}"
        return f"{self.kind.value}({self.variable}^{self.exponent:g}) as {self.variable} -> {self.limit_point}"

    def to_dict(self) -> dict:
        return {
            "id": self.id, "source": self.source, "statement": self.statement, "quantity": self.quantity,
            "variable": self.variable, "limit_point": self.limit_point, "exponent": self.exponent,
            "kind": self.kind.value, "reading": self.reading, "checks": list(self.checks),
            "resolution": self.resolution, "max_ci_width": self.max_ci_width, "model": self.model,
        }
