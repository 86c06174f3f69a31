r"""Asymptotic checks with sympy, with the limit point always written.

* :func:`leading_exponent` -- the p in :math:`f \sim C n^p` as :math:`n \to \infty`, from
  :math:`\lim \log|f| / \log n`.
* :func:`big_o` -- :math:`f = O(g)` at the point: :math:`\limsup |f/g| < \infty`, decided by the
  limit of the ratio.
* :func:`theta` -- :math:`f = \Theta(g)`: the limit of :math:`f/g` is finite and non-zero.

An undecided or unevaluated limit (sympy returns a ``Limit`` object, ``nan`` or an
``AccumBounds``) is a failure with a message, never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

__all__ = ["AsymptoticResult", "big_o", "leading_exponent", "leading_exponent_symbolic", "order_str", "power_rate",
           "theta"]

n = sp.Symbol("n", positive=True)


@dataclass(frozen=True)
class AsymptoticResult:
    """``holds``: True/False when decided; ``decided`` False when sympy could not evaluate the
    limit (then ``holds`` is False: undecided is never a pass)."""

    holds: bool
    decided: bool
    statement: str
    limit: object
    message: str = ""

    def __bool__(self) -> bool:
        return self.holds


def _decided(value) -> bool:
    if value is None or isinstance(value, sp.Limit) or value.has(sp.Limit):
        return False
    if value is sp.nan or isinstance(value, sp.AccumBounds) or value.has(sp.AccumBounds):
        return False
    return True


def _limit(expr, var, point):
    try:
        return sp.limit(expr, var, point)
    except (NotImplementedError, ValueError, TypeError):  # sympy could not do it: undecided
        return sp.Limit(expr, var, point)


def order_str(g, var=n, point=sp.oo) -> str:
    return f"O({sp.sstr(g)}, ({var}, {point}))"


def leading_exponent(f, var=n, point=sp.oo):
    r"""The exponent :math:`p = \lim \log|f| / \log var` at ``point`` (``oo`` or ``0``), as a sympy
    number.

    This is the power that :math:`|f|` grows or decays like up to factors slower than any power:
    :math:`\sqrt n \log n` and :math:`\sqrt n` both give 1/2. Whether :math:`|f| \sim C\,var^p`
    with a finite non-zero C (a Theta rate) is a separate question, which :func:`power_rate`
    answers.

    Raises
    ------
    ValueError
        When the limit cannot be decided (message says which), or the exponent is infinite.
    """
    f = sp.sympify(f)
    if f == 0:
        raise ValueError(f"{f} is identically zero at ({var}, {point}): it has no leading exponent")
    p = _limit(sp.log(sp.Abs(f)) / sp.log(var), var, point)
    if not _decided(p) or p in (sp.oo, -sp.oo, sp.zoo):
        raise ValueError(f"leading exponent of {sp.sstr(f)} as {var} -> {point} is undecided ({p}); "
                         f"simplify the expression or give assumptions on its symbols")
    return sp.nsimplify(p)


def power_rate(f, var=n, point=sp.oo):
    r"""``(p, tight)``: :func:`leading_exponent` p, and whether :math:`|f| = \Theta(var^p)` at
    ``point`` (:func:`theta` of :math:`|f|` against :math:`var^p`, decided and holding). ``tight`` is
    False for a log factor (:math:`\log n / n`: p = -1, not Theta(1/n)), an oscillation
    (:math:`\sin n`: p = 0, not Theta(1)) or a limit sympy cannot decide; a symbolic check
    reports it as its :class:`~theory.claims.SymbolicResult`'s ``tight``, so that a Theta claim is
    judged only on a Theta rate."""
    p = leading_exponent(f, var, point)
    t = theta(sp.Abs(sp.sympify(f)), var**p, var, point)
    return p, bool(t.decided and t.holds)


def leading_exponent_symbolic(f, var=n):
    r"""Leading exponent as :math:`var \to \infty` of a sum of power-law terms whose exponents may
    contain symbols (e.g. :math:`\beta`): ``Max`` of the exponents of the expanded terms.

    :func:`leading_exponent` must not be used there: with a symbolic exponent sympy's limit picks
    one branch (it reports :math:`-2\beta - 1` for :math:`n^{-2\beta-1} + n^{-4\beta}`, wrong for
    :math:`\beta < 1/2`). Terms that cancel exactly are removed by the expansion first.
    """
    expr = sp.expand(sp.powsimp(sp.expand(sp.sympify(f)), force=True))
    terms = sp.Add.make_args(expr)
    exps = []
    for t in terms:
        coeff, rest = t.as_independent(var)
        if coeff == 0:
            continue
        e = sp.simplify(sp.expand_log(sp.log(rest), force=True).diff(var) * var)  # d log(rest) / d log n
        if e.has(var):
            raise ValueError(f"term {t} is not a pure power of {var}; use leading_exponent with numbers")
        exps.append(e)
    if not exps:
        raise ValueError(f"{f} is identically zero: it has no leading exponent")
    return sp.Max(*exps)


def big_o(f, g, var=n, point=sp.oo) -> AsymptoticResult:
    """:math:`f = O(g)` as ``var -> point``."""
    stmt = f"{sp.sstr(f)} = {order_str(g, var, point)}"
    lim = _limit(sp.Abs(sp.sympify(f) / sp.sympify(g)), var, point)
    if not _decided(lim):
        return AsymptoticResult(False, False, stmt, lim, f"undecided: limit of |f/g| is {lim}")
    ok = bool(lim.is_finite)
    return AsymptoticResult(ok, True, stmt, lim, f"lim |f/g| = {lim}")


def theta(f, g, var=n, point=sp.oo) -> AsymptoticResult:
    """:math:`f = \\Theta(g)` as ``var -> point``: a finite, non-zero limit of f/g."""
    stmt = f"{sp.sstr(f)} = Theta({sp.sstr(g)}, ({var}, {point}))"
    lim = _limit(sp.sympify(f) / sp.sympify(g), var, point)
    if not _decided(lim):
        return AsymptoticResult(False, False, stmt, lim, f"undecided: limit of f/g is {lim}")
    ok = bool(lim.is_finite) and bool(lim != 0)
    return AsymptoticResult(ok, True, stmt, lim, f"lim f/g = {lim}")
