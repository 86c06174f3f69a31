r"""abc-parametrizations of an MLP as data (no torch): the table both ``theory/`` and the trainer read.

An L-hidden-layer MLP has layers ``1 .. L+1`` (input layer 1, hidden layers 2..L, readout L+1).
Layer ``l`` has exponents :math:`(a_l, b_l, c_l)` in the width n:

* multiplier: the effective weight is :math:`W^l = n^{-a_l} w^l`;
* initialisation: :math:`w^l_{ij} \sim N(0, \sigma_l^2 n^{-2 b_l})`;
* learning rate: :math:`\eta_l = \eta\, n^{-c_l}`.

Constant factors that do not depend on n (the fan-in of the input layer, a base learning rate)
are not part of the exponents: the trainer applies them as ``init_std = sigma / sqrt(fan_in_const)``
etc. Exponents are :class:`fractions.Fraction` so that ``theory/`` derives exact rationals.

The table has a symmetry (Yang & Hu 2021): :math:`(a_l, b_l, c_l) \to (a_l + \theta, b_l - \theta,
c_l - 2\theta)` for SGD (:math:`c_l - \theta` for Adam) leaves the trained function unchanged, so
every check in ``theory.abc`` is on invariant exponents, never on one way of writing the table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from sde_scales.errors import InvalidArgumentError
from sde_scales.validation import is_integral, is_whole

__all__ = ["LayerRule", "exponent", "Parametrization", "mup", "mup_no_readout_multiplier", "ntk", "sp", "by_name", "PARAMETRIZATIONS"]

F = Fraction


@dataclass(frozen=True)
class LayerRule:
    """Exponents of one layer: multiplier ``n^-a``, init std ``n^-b``, learning rate ``n^-c``."""

    a: Fraction
    b: Fraction
    c: Fraction

    def __post_init__(self) -> None:
        for k in ("a", "b", "c"):
            object.__setattr__(self, k, exponent(getattr(self, k), k))


def exponent(value, name: str = "exponent") -> Fraction:
    """``value`` as an exact :class:`~fractions.Fraction`: an int, a Fraction, a finite float or a
    string such as ``"1/2"``; anything else (NaN, infinity, a bool, None, text that is no number) is
    refused with its name and value, not left to ``Fraction``'s bare error."""
    if isinstance(value, bool) or value is None:
        raise InvalidArgumentError(f"{name}={value!r}; give a number such as 0, 0.5 or '1/2'")
    try:
        return Fraction(value)
    except (ValueError, TypeError, OverflowError, ZeroDivisionError) as e:
        raise InvalidArgumentError(f"{name}={value!r} is not a finite number ({e}); give a number such as "
                                   f"0, 0.5 or '1/2'") from None


@dataclass(frozen=True)
class Parametrization:
    """A named abc-parametrization of an MLP with ``L`` hidden layers for one optimizer.

    Attributes
    ----------
    name : str
    layers : tuple of LayerRule
        ``L + 1`` rules: input layer, ``L - 1`` hidden-to-hidden layers, readout.
    optimizer : str
        ``"sgd"`` or ``"adam"``.
    """

    name: str
    layers: tuple[LayerRule, ...]
    optimizer: str = "sgd"

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise InvalidArgumentError(f"optimizer={self.optimizer!r}; use 'sgd' or 'adam'")
        if len(self.layers) < 2:
            raise InvalidArgumentError(f"{len(self.layers)} layers; an MLP needs an input layer and a readout")

    @property
    def L(self) -> int:
        """Number of hidden layers."""
        return len(self.layers) - 1

    def _rule(self, l, n) -> LayerRule:
        """Layer ``l``'s rule, after checking ``l`` (0 = input .. L = readout; a negative index
        would silently pick a layer from the end) and the width ``n`` (a whole number >= 1)."""
        if not (is_whole(l, 0) and l <= self.L):
            raise InvalidArgumentError(f"layer l={l!r}; give a whole number 0..{self.L} (0: input, {self.L}: readout)")
        if not is_integral(n, 1):
            raise InvalidArgumentError(f"width n={n!r}; give a whole number >= 1")
        return self.layers[l]

    def multiplier(self, l: int, n: int) -> float:
        return float(n) ** float(-self._rule(l, n).a)

    def init_std(self, l: int, n: int) -> float:
        return float(n) ** float(-self._rule(l, n).b)

    def lr_scale(self, l: int, n: int) -> float:
        return float(n) ** float(-self._rule(l, n).c)

    def factors(self, l: int, n: int, base_width: int | None = None) -> tuple[float, float, float]:
        r"""Multiplier, init std and learning-rate factor of layer ``l`` at width ``n``.

        Without ``base_width`` they are :math:`n^{-a_l}, n^{-b_l}, n^{-c_l}` (base width 1). With a
        base width :math:`n_0` (the convention of the ``mup`` package: a learning rate is the one
        a standard-parametrized model of width :math:`n_0` would use) each factor is SP's at
        :math:`n_0` times this parametrization's width dependence relative to :math:`n_0`:

        .. math::

            m_l = n_0^{-a^{SP}_l} (n/n_0)^{-a_l},\quad
            \sigma_l = n_0^{-b^{SP}_l} (n/n_0)^{-b_l},\quad
            s_l = n_0^{-c^{SP}_l} (n/n_0)^{-c_l},

        so at :math:`n = n_0` the network *is* the SP network, and the exponents in n (all that
        ``theory.abc`` reads) are unchanged. The effective weight scale :math:`m_l\sigma_l` and the
        effective step :math:`m_l^k s_l` (k = 2 for SGD, 1 for Adam) are invariant under the abc
        symmetry, so the result does not depend on how the table is written."""
        rule = self._rule(l, n)
        if base_width is None:
            return float(n) ** float(-rule.a), float(n) ** float(-rule.b), float(n) ** float(-rule.c)
        if not is_integral(base_width, 1):
            raise InvalidArgumentError(f"base_width={base_width!r}; give a width >= 1 (or None for base width 1)")
        ref = sp(self.L, self.optimizer).layers[l]
        r = float(n) / float(base_width)
        n0 = float(base_width)
        return (n0 ** float(-ref.a) * r ** float(-rule.a), n0 ** float(-ref.b) * r ** float(-rule.b),
                n0 ** float(-ref.c) * r ** float(-rule.c))

    def shifted(self, theta: Fraction | float, layer: int | None = None) -> "Parametrization":
        """The same function written differently: apply the abc symmetry with ``theta`` to one
        layer (or all)."""
        th = exponent(theta, "theta")
        if layer is not None:
            self._rule(layer, 1)  # a layer out of range would shift none, silently
        k = 2 if self.optimizer == "sgd" else 1
        new = []
        for i, r in enumerate(self.layers):
            if layer is None or i == layer:
                new.append(LayerRule(r.a + th, r.b - th, r.c - k * th))
            else:
                new.append(r)
        return replace(self, layers=tuple(new), name=f"{self.name} (shifted {th})")

    def with_layer(self, l: int, **kw) -> "Parametrization":
        rules = list(self.layers)
        unknown = sorted(set(kw) - {"a", "b", "c"})
        if unknown:
            raise InvalidArgumentError(f"with_layer({', '.join(unknown)}=...); a layer has the exponents a, b and c")
        self._rule(l, 1)  # checks l (a negative index would pick a layer from the end)
        rules[l] = replace(rules[l], **kw)  # LayerRule converts and checks each exponent
        return replace(self, layers=tuple(rules))

    def to_dict(self) -> dict:
        return {"name": self.name, "optimizer": self.optimizer,
                "layers": [{"a": str(r.a), "b": str(r.b), "c": str(r.c)} for r in self.layers]}


def _stack(first: LayerRule, hidden: LayerRule, last: LayerRule, L: int) -> tuple[LayerRule, ...]:
    if not is_whole(L, 1):
        raise InvalidArgumentError(f"L={L}; an MLP needs at least one hidden layer")
    return (first,) + (hidden,) * (L - 1) + (last,)


def mup(L: int = 1, optimizer: str = "sgd") -> Parametrization:
    """Maximal update parametrization (Yang & Hu 2021, Table 3; Adam: Yang et al. 2021/2022)."""
    if optimizer == "sgd":
        rules = _stack(LayerRule(F(-1, 2), F(1, 2), 0), LayerRule(0, F(1, 2), 0), LayerRule(F(1, 2), F(1, 2), 0), L)
    else:
        rules = _stack(LayerRule(0, 0, 0), LayerRule(0, F(1, 2), 1), LayerRule(1, 0, 0), L)
    return Parametrization("muP", rules, optimizer)


def sp(L: int = 1, optimizer: str = "sgd", lr_exponent: Fraction | int = 0) -> Parametrization:
    """Standard parametrization (PyTorch default init, no multipliers) with learning rate
    :math:`\\eta n^{-c}`; ``lr_exponent = 0`` is a width-independent learning rate."""
    c = Fraction(lr_exponent)
    rules = _stack(LayerRule(0, 0, c), LayerRule(0, F(1, 2), c), LayerRule(0, F(1, 2), c), L)
    return Parametrization("SP" if c == 0 else f"SP (lr n^-{c})", rules, optimizer)


def ntk(L: int = 1, optimizer: str = "sgd") -> Parametrization:
    """Neural tangent parametrization: N(0, 1) weights with 1/sqrt(fan-in) multipliers."""
    rules = _stack(LayerRule(0, 0, 0), LayerRule(F(1, 2), 0, 0), LayerRule(F(1, 2), 0, 0), L)
    return Parametrization("NTK", rules, optimizer)


def mup_no_readout_multiplier(L: int = 1, optimizer: str = "sgd") -> Parametrization:
    """muP with the readout multiplier removed (``a = 0`` on the readout): a planted bug, used as a
    control that a check of muP must catch."""
    p = mup(L, optimizer)
    return replace(p.with_layer(p.L, a=0), name="muP without readout multiplier")


PARAMETRIZATIONS = {"mup": mup, "sp": sp, "ntk": ntk, "mup-no-readout-mult": mup_no_readout_multiplier}


def by_name(name: str, L: int = 1, optimizer: str = "sgd") -> Parametrization:
    key = name.lower()
    if key not in PARAMETRIZATIONS:
        raise InvalidArgumentError(f"parametrization {name!r}; use one of {', '.join(PARAMETRIZATIONS)}")
    return PARAMETRIZATIONS[key](L=L, optimizer=optimizer)
