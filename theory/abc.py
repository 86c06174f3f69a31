r"""Exponents and classification of abc-parametrizations of an MLP (Yang & Hu 2021, TP4).

Input: a :class:`sde_scales.parametrization.Parametrization` (the same table the trainer builds
networks from). All exponents are exact rationals; "exponent e" means a quantity of order
:math:`n^{e}` as :math:`n \to \infty` after one training step from initialisation.

SGD (TP4, Definition 3.2 and Theorem 3.3). First bring every layer to a common learning-rate
exponent with the symmetry :math:`(a_l, b_l, c_l) \to (a_l + \theta_l, b_l - \theta_l, c_l - 2\theta_l)`,
:math:`\theta_l = (c_l - c)/2`; then with

.. math::

    r_l = \min(a_{L+1} + b_{L+1},\ 2a_{L+1} + c) + c - 1 + \min_{m \le l}\,[2a_m + \mathbb 1(m = 1)],
    \qquad r = r_L,

* initial pre-activations: layer 1 :math:`-(a_1+b_1)`, hidden :math:`1/2 - a_l - b_l`, output
  :math:`1/2 - a_{L+1} - b_{L+1}`;
* feature change of layer l over training (TP4's :math:`-r_l`: the largest change at a fixed step
  :math:`t \ge 1` of a *stable* parametrization, where the readout's own update feeds the backward
  pass from the second step on); output change :math:`-\min(2a_{L+1}+c-1, r)`;
* feature change of layer l after the *first* step, :math:`-r^{(1)}_l` with the same formula and
  :math:`a_{L+1} + b_{L+1}` in place of the minimum: the first gradient reaches the hidden layers
  through the readout's initial weights only. It equals :math:`-r_l` unless the readout starts
  smaller than its first update (:math:`a_{L+1} + b_{L+1} > 2a_{L+1} + c`), and it is the only one
  of the two that describes an unstable parametrization: there the output, and with it the loss's
  derivative, grows with n after one step, and later steps are not of any fixed order in n (SP at
  a width-independent rate, one hidden layer: the first step moves the features by
  :math:`n^{-1/2}`, while :math:`r = 0`);
* per-coordinate update of the effective weight :math:`W^l = n^{-a_l}w^l`: hidden and input
  :math:`-(c + 2a_l + a_{L+1} + b_{L+1})`, readout :math:`-(c + 2a_{L+1})`;
* stable iff :math:`a_1 + b_1 = 0`, :math:`a_l + b_l = 1/2` (hidden), :math:`a_{L+1} + b_{L+1} \ge 1/2`,
  :math:`r \ge 0` and :math:`2a_{L+1} + c \ge 1`; nontrivial iff :math:`r = 0` or
  :math:`2a_{L+1} + c = 1`; feature learning iff :math:`r = 0` (in every layer iff every
  :math:`r_l = 0`); kernel regime iff stable, nontrivial and :math:`r > 0`.

Adam (TP4b): the update of :math:`w^l` is :math:`\Theta(\eta n^{-c_l})` per coordinate whatever
the gradient's size, so the effective per-coordinate update is :math:`-(a_l + c_l)`. After the
first step the input layer's features change by :math:`f_1 = -(a_1 + c_1)`, a hidden layer's by
:math:`f_l = \max(1 - a_l - c_l,\ 1/2 - a_l - b_l + f_{l-1})` (its own update summed over n aligned
terms, or its initial weights acting on the change below, the order of a width-n random matrix
times a vector), and the output by :math:`\max(1 - a_{L+1} - c_{L+1},\ 1 - a_{L+1} - b_{L+1} + f_L)`
(the readout's update, or its initial weights on the last features' change, which the first
gradient aligned with them: n terms of one sign). Without the second terms an unstable
parametrization's growth was understated: SP under Adam with two hidden layers moves its output
like :math:`n^{3/2}` to first order, not :math:`n`. Stable iff
initialisation is stable and none of these is positive; feature learning iff every layer's
feature change is 0.

Every exponent here is of first order in the learning rate. In a stable parametrization that is
the order of the change. In an unstable one it is only a lower bound, for the output and for every
layer above the first whose change grows with n: products of two changes (second order) grow faster
still, and ReLU's rectification lines them up. One trained step of SP under Adam with two hidden
layers, lr 0.1, widths 64..1024: output change n^1.93 against the first-order n^3/2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from sde_scales.parametrization import LayerRule, Parametrization

__all__ = ["ExponentTable", "derive", "classify"]

HALF = Fraction(1, 2)


@dataclass(frozen=True)
class ExponentTable:
    """Derived exponents (n^e) per layer and the classification."""

    name: str
    optimizer: str
    preactivation: tuple[Fraction, ...]
    weight_update: tuple[Fraction, ...]
    feature_change: tuple[Fraction, ...]
    first_step_feature_change: tuple[Fraction, ...]
    output_change: Fraction
    r: Fraction | None
    stable: bool
    nontrivial: bool
    feature_learning: bool
    feature_learning_all_layers: bool
    regime: str
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> str:
        if not self.stable:
            return "unstable: " + "; ".join(self.reasons)
        if self.feature_learning_all_layers:
            return "stable, feature learning in every layer"
        if self.feature_learning:
            return "stable, feature learning (not in every layer)"
        if self.nontrivial:
            return "stable, kernel regime (no feature learning)"
        return "stable but trivial (the function does not move)"

    @property
    def first_step_exact(self) -> tuple[bool, ...]:
        """Per row, each layer's features and then the output: whether the first-step exponent is
        the order of that change after one step, not only a lower bound. Every row of a stable
        parametrization; of an unstable one, the layers up to the first whose change grows with n
        (above it, and at the output, products of two changes grow faster still)."""
        n_rows = len(self.first_step_feature_change) + 1
        if self.stable:
            return (True,) * n_rows
        grow = next((l for l, e in enumerate(self.first_step_feature_change) if e > 0), n_rows - 1)
        return tuple(l <= grow and l < n_rows - 1 for l in range(n_rows))

    def is_mup_class(self) -> bool:
        """Stable with feature learning in every layer: what muP is defined by."""
        return self.stable and self.feature_learning_all_layers

    def to_dict(self) -> dict:
        f = [str(x) for x in self.preactivation]
        return {
            "name": self.name, "optimizer": self.optimizer, "preactivation": f,
            "weight_update": [str(x) for x in self.weight_update],
            "feature_change": [str(x) for x in self.feature_change],
            "first_step_feature_change": [str(x) for x in self.first_step_feature_change],
            "output_change": str(self.output_change),
            "r": None if self.r is None else str(self.r), "stable": self.stable, "nontrivial": self.nontrivial,
            "feature_learning": self.feature_learning, "feature_learning_all_layers": self.feature_learning_all_layers,
            "regime": self.regime, "summary": self.summary, "reasons": list(self.reasons),
        }


def _common_c(p: Parametrization) -> tuple[list[LayerRule], Fraction]:
    """Shift layers so that all share the readout's learning-rate exponent (SGD symmetry)."""
    c = p.layers[-1].c
    out = []
    for r in p.layers:
        th = (r.c - c) / 2
        out.append(LayerRule(r.a + th, r.b - th, c))
    return out, c


def _init(rules: list[LayerRule]) -> tuple[list[Fraction], list[str]]:
    pre, why = [], []
    L1 = len(rules)
    for i, r in enumerate(rules):
        e = -(r.a + r.b) if i == 0 else HALF - r.a - r.b
        pre.append(e)
    if pre[0] != 0:
        why.append(f"input pre-activations are n^{pre[0]} (need a_1 + b_1 = 0)")
    for i in range(1, L1 - 1):
        if pre[i] != 0:
            why.append(f"layer {i + 1} pre-activations are n^{pre[i]} (need a + b = 1/2)")
    if pre[-1] > 0:
        why.append(f"output at initialisation grows like n^{pre[-1]} (need a_L+1 + b_L+1 >= 1/2)")
    return pre, why


def derive(p: Parametrization) -> ExponentTable:
    """Exponent table and classification of ``p`` (see the module docstring)."""
    if p.optimizer == "adam":
        return _derive_adam(p)
    rules, c = _common_c(p)
    pre, why = _init(rules)
    last = rules[-1]
    head = min(last.a + last.b, 2 * last.a + c) + c - 1
    first_head = last.a + last.b + c - 1  # step 1: the readout's initial weights carry the gradient
    r_l, r1_l, running = [], [], None
    for i, rl in enumerate(rules[:-1]):
        term = 2 * rl.a + (1 if i == 0 else 0)
        running = term if running is None else min(running, term)
        r_l.append(head + running)
        r1_l.append(first_head + running)
    r = r_l[-1]
    out_stab = 2 * last.a + c - 1
    if r < 0:
        grow = max(-x for x in r1_l)
        why.append(f"features blow up (r = {r} < 0" + (f"; after the first step already like n^{grow})" if grow > 0 else ")"))
    if out_stab < 0:
        why.append(f"the output update grows like n^{-out_stab} (need 2 a_L+1 + c >= 1)")
    stable = not why
    nontrivial = r == 0 or out_stab == 0
    fl = stable and r == 0
    fl_all = stable and all(x == 0 for x in r_l)
    regime = "unstable" if not stable else ("feature learning" if fl else ("kernel" if nontrivial else "trivial"))
    upd = [-(c + 2 * rl.a + last.a + last.b) for rl in rules[:-1]] + [-(c + 2 * last.a)]
    # report update exponents in the user's own table (the symmetry shifts a and c together)
    feat = [-x for x in r_l]
    return ExponentTable(p.name, p.optimizer, tuple(pre), tuple(upd), tuple(feat), tuple(-x for x in r1_l),
                         -min(out_stab, r), r, stable, nontrivial, fl, fl_all, regime, tuple(why))


def _derive_adam(p: Parametrization) -> ExponentTable:
    rules = list(p.layers)
    pre, why = _init(rules)
    upd = [-(r.a + r.c) for r in rules]
    feat = [-(rules[0].a + rules[0].c)]
    for r in rules[1:-1]:  # its own update (n aligned terms), or the change it receives from below
        feat.append(max(1 - r.a - r.c, HALF - r.a - r.b + feat[-1]))
    last = rules[-1]
    # the readout's update, or its initial weights on the last features' change, which the first
    # gradient aligned with them (n terms of one sign)
    out = max(1 - last.a - last.c, 1 - last.a - last.b + feat[-1])
    for i, e in enumerate(feat):
        if e > 0:
            why.append(f"layer {i + 1} features change like n^{e} after one step")
    if out > 0:
        why.append(f"the output moves like n^{out} after one step")
    stable = not why
    fl_all = stable and all(e == 0 for e in feat)
    fl = stable and any(e == 0 for e in feat)
    nontrivial = stable and (fl or out == 0)
    regime = "unstable" if not stable else ("feature learning" if fl else ("kernel" if nontrivial else "trivial"))
    # Adam's update has its size whatever the gradient's, so the first step is of the same order
    return ExponentTable(p.name, p.optimizer, tuple(pre), tuple(upd), tuple(feat), tuple(feat), out, None, stable,
                         nontrivial, fl, fl_all, regime, tuple(why))


def classify(p: Parametrization) -> str:
    """The classification in words."""
    return derive(p).summary


def format_table(t: ExponentTable) -> str:
    names = ["input"] + [f"hidden {i}" for i in range(2, len(t.preactivation))] + ["readout"]
    later = "feature change, later steps" if t.stable else "feature change, later steps (*)"
    rows = [("layer", "pre-activation", "weight update", "feature change, step 1", later)]
    for i, nm in enumerate(names):
        inner = i < len(t.feature_change)
        rows.append((nm, f"n^{t.preactivation[i]}", f"n^{t.weight_update[i]}",
                     f"n^{t.first_step_feature_change[i]}" if inner else "-",
                     f"n^{t.feature_change[i]}" if inner else "-"))
    w = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    lines = [f"{t.name} ({t.optimizer}): {t.summary}"]
    lines += ["  " + "  ".join(c.ljust(w[j]) for j, c in enumerate(r)) for r in rows]
    lines.append(f"  output change after one step: n^{t.output_change}" + ("" if t.r is None else f"; r = {t.r}"))
    if not t.stable:
        lines.append("  (*) " + ("TP4's -r_l, which assumes" if t.optimizer == "sgd" else "these assume")
                     + " a bounded output: in an unstable parametrization the output and the loss's derivative grow "
                     "with n after the first step, so only step 1 has these orders")
        lines.append("  unstable: every exponent is of first order in the learning rate, a lower bound for the output "
                     "and for the layers above the first that grows (second-order terms grow faster)")
    return "\n".join(lines)
