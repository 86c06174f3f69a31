r"""Coordinate check: per-layer activation and update sizes against width over the first steps.

For each width, ``n_seeds`` networks (one stack) take ``steps`` steps of the parametrization's
optimizer (SGD or Adam, through :class:`~sde_scales.train.optim.MuOptimizer`, the update the
trainer uses) on the same batches. We
record, per layer, the RMS of the pre-activations at initialisation and the RMS of their change
after the last step, on a fixed probe batch, and fit the exponent in n of each with a bootstrap
interval over seeds (``sde_scales.rates.bias_exponent`` against 0).

A layer PASSes when its exponents meet the muP desiderata (stable with feature learning in
every layer): Theta(1) pre-activations at initialisation in the input and hidden layers, O(1)
logits at initialisation (muP starts them at n^-1/2), and Theta(1) changes after the first steps in
every layer including the logits; "consistent with 0" within the measured tolerance of
``sde_scales.rates.verdict``, at least the stated floor 0.15 (next-order corrections of
width-64..1024 networks). The check PASSes when every layer
does, FAILs when any layer FAILs and is otherwise INCONCLUSIVE (e.g. a layer whose exponent is still
moving across the widths checked). The exponents that ``theory.abc`` predicts for the same table are reported beside the
measured ones by the command (``sde-scales coordcheck``), which loads ``theory`` at run time.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch

from sde_scales.parametrization import Parametrization
from sde_scales.rates import RateKind, Verdict, bias_exponent, verdict
from sde_scales.train.model import StackedMLP
from sde_scales.train.optim import MuOptimizer

__all__ = ["CoordCheck", "coord_check", "layer_names", "plot_coord_check"]

#: Smallest tolerance of a coordinate check's exponents, with its reason.
RESOLUTION = 0.15
#: Widest interval (widened by the tolerance) that can PASS: wider says the widths and seeds do not decide.
MAX_WIDTH = 0.6
RESOLUTION_REASON = ("the first SGD steps of width-64..1024 networks carry next-order corrections of relative size "
                     "about n^-1/2, which tilt a fitted exponent by up to ~0.1 over this range")


@dataclass
class CoordCheck:
    widths: list
    layers: list
    act: dict            # layer -> (n_widths, n_seeds) RMS at init
    delta: dict          # layer -> (n_widths, n_steps, n_seeds) RMS of change after each step
    act_exp: dict = field(default_factory=dict)
    delta_exp: dict = field(default_factory=dict)
    verdicts: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)  # layer -> why, for the init and the change exponents
    tolerances: dict = field(default_factory=dict)  # layer -> (init, change) tolerance the verdict used
    measured_verdicts: dict = field(default_factory=dict)  # the measurement's own, where a theory changed one
    init_reasons: dict = field(default_factory=dict)  # layer -> the init exponent's part of its reason

    @property
    def overall(self) -> Verdict:
        """PASS when every layer PASSes, FAIL when any layer FAILs, else INCONCLUSIVE."""
        vs = list(self.verdicts.values())
        if vs and all(v is Verdict.PASS for v in vs):
            return Verdict.PASS
        return Verdict.FAIL if Verdict.FAIL in vs else Verdict.INCONCLUSIVE

    @property
    def passed(self) -> bool:
        return self.overall is Verdict.PASS

    def hold_to_table(self, change_exponents: dict, exact: bool) -> dict:
        """Compare each layer's change exponent with a theory's (``change_exponents``: layer -> its
        exponent as a string such as ``"1/2"``, or None where the theory gives none); returns layer
        -> whether the theory's exponent lies in the measured interval widened by the layer's
        tolerance (None without an exponent or a tolerance).

        ``exact``: the theory's exponents are the order of the change measured (the abc table's
        first step after one step, ``benchmarks/abc_one_step.py``), not a lower bound or a later
        step's. Then a layer that PASSed its Theta(1) desideratum while the theory puts its change
        at n^e outside the measurement is not Theta(1) as n grows, whatever these widths show: its
        verdict becomes INCONCLUSIVE and its reason says why. The verdicts of the measurement
        alone are kept in ``measured_verdicts``."""
        if not self.measured_verdicts:
            self.measured_verdicts = dict(self.verdicts)
        agrees = {}
        for l in self.layers:
            d, td, th = self.delta_exp[l], self.tolerances[l][1], change_exponents.get(l)
            agrees[l] = None if th is None or td is None else bool(
                d.ci[0] - td <= float(Fraction(th)) <= d.ci[1] + td)
            if agrees[l] is False and exact and self.measured_verdicts[l] is Verdict.PASS:
                # the init part as the verdict wrote it (kept apart: a reason may hold any text)
                init = self.init_reasons.get(l, self.reasons[l].split("; change: ")[0])
                self.verdicts[l] = Verdict.INCONCLUSIVE
                self.reasons[l] = (f"{init}; change: PASS at these widths ({d.exponent:+.2f}, tolerance {td:.2f}), "
                                   f"but the abc table's exact order of the first step is n^{th}, outside the "
                                   f"measurement: a term of that order overtakes the measured one at wider widths, "
                                   f"so the layer is not Theta(1) as n grows; INCONCLUSIVE")
        return agrees


def layer_names(n_layers: int) -> list[str]:
    """The one set of layer names of the table, the JSON and the plot: ``layer 1 (input)``,
    ``layer 2 (hidden)``, ..., ``layer L+1 (readout)``."""
    return [f"layer {l + 1} ({'input' if l == 0 else 'readout' if l == n_layers - 1 else 'hidden'})"
            for l in range(n_layers)]


def coord_check(param: Parametrization, widths, *, steps: int = 3, lr: float = 0.1, n_seeds: int = 10,
                d_in: int = 256, batch: int = 64, seed: int = 0, device: str = "cpu",
                base_width: int | None = None, progress: bool = False) -> CoordCheck:
    """Run the check (synthetic Gaussian inputs of dimension ``d_in``, teacher labels).

    ``device``: ``cpu``, ``cuda`` (an error without a GPU) or ``auto`` (CUDA when present).

    ``base_width`` sets the constants of the multipliers, initial scales and learning rates as in
    :class:`~sde_scales.train.model.StackedMLP`; it does not change any exponent.

    ``progress``: a progress bar on standard error (on a terminal only), one tick per width, each
    weighted by its width (the cost of a stack grows with it)."""
    from sde_scales.errors import InvalidArgumentError
    from sde_scales.train.data import teacher_student
    from sde_scales.train.trainer import FLOAT32_MAX, resolve_device

    device = resolve_device(device)  # a clear error for cuda without a GPU, or an unknown device
    given = np.asarray(widths, dtype=float).ravel()
    if (given.size < 3 or not np.all(np.isfinite(given)) or np.any(given != np.round(given)) or np.any(given < 1)
            or np.unique(given).size != given.size):
        raise InvalidArgumentError(f"widths={np.asarray(widths).tolist()}; give at least 3 different whole widths >= 1 "
                                   f"(4 or more for a PASS or FAIL)")
    widths = sorted(int(w) for w in given)  # an exponent needs them in order, not given in order
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)) or not 0 < lr <= FLOAT32_MAX:
        raise InvalidArgumentError(f"lr={lr!r}; give a learning rate > 0 and finite in float32 (at most "
                                   f"{FLOAT32_MAX:.3g}), the networks' arithmetic")
    x, y, _, _ = teacher_student(n_train=batch * (steps + 1), n_test=1, d_in=d_in, seed=seed)
    x, y = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
    probe = x[:batch]
    n_layers = param.L + 1
    act = {l: [] for l in range(n_layers)}
    delta = {l: [] for l in range(n_layers)}
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(widths), desc="coordinate check", unit="width", disable=None if progress else True,
               file=sys.stderr)  # shown on a terminal only
    try:
        for w in widths:
            bar.set_postfix_str(f"n = {w}")
            m = StackedMLP(param, n_seeds, d_in, int(w), 10, [seed * 1000 + s for s in range(n_seeds)], device=device,
                           base_width=base_width)
            with torch.no_grad():
                _, pre0 = m.forward(probe, keep=True)
            for l in range(n_layers):
                act[l].append(pre0[l].pow(2).mean(dim=(1, 2)).sqrt().cpu().numpy())
            per_step = {l: [] for l in range(n_layers)}
            opt = MuOptimizer(param.optimizer, m.weights, m.lr_scale)
            for s in range(steps):
                xb, yb = x[batch * (s + 1): batch * (s + 2)], y[batch * (s + 1): batch * (s + 2)]
                with torch.no_grad():
                    logits, pre_b = m.forward(xb, keep=True)
                    _, dlogits = m.losses(logits, yb)
                    grads = m.backward(xb, pre_b, dlogits)
                    opt.step([torch.nan_to_num(g) for g in grads], lr, s + 1)
                    _, pre = m.forward(probe, keep=True)
                    for l in range(n_layers):
                        per_step[l].append((pre[l] - pre0[l]).pow(2).mean(dim=(1, 2)).sqrt().cpu().numpy())
            for l in range(n_layers):
                delta[l].append(np.stack(per_step[l]))
                if not np.all(np.isfinite(delta[l][-1])):
                    s_bad = int(np.argmax(~np.all(np.isfinite(delta[l][-1]), axis=1))) + 1
                    raise InvalidArgumentError(
                        f"at lr {lr} the networks of width {int(w)} diverged: layer {l + 1}'s pre-activations are not "
                        f"finite after step {s_bad} of {steps}, so no exponent of their change exists; the check "
                        f"measures a stable step: lower the learning rate")
            bar.update(w)
    finally:
        bar.close()
    out = CoordCheck(list(widths), list(range(n_layers)), {l: np.array(v) for l, v in act.items()},
                     {l: np.array(v) for l, v in delta.items()})
    for l in range(n_layers):
        a = bias_exponent(widths, list(out.act[l]), 0.0, n_resamples=500, seed=seed)
        d = bias_exponent(widths, [v[-1] for v in out.delta[l]], 0.0, n_resamples=500, seed=seed)
        out.act_exp[l], out.delta_exp[l] = a, d
        readout = l == n_layers - 1
        va = verdict(RateKind.BIG_O if readout else RateKind.THETA, 0.0, a, floor=RESOLUTION,
                     floor_reason=RESOLUTION_REASON, max_width=MAX_WIDTH)
        vd = verdict(RateKind.THETA, 0.0, d, floor=RESOLUTION, floor_reason=RESOLUTION_REASON, max_width=MAX_WIDTH)
        ok = va.verdict is Verdict.PASS and vd.verdict is Verdict.PASS
        bad = Verdict.FAIL if Verdict.FAIL in (va.verdict, vd.verdict) else Verdict.INCONCLUSIVE
        out.verdicts[l] = Verdict.PASS if ok else bad
        out.tolerances[l] = (va.tolerance, vd.tolerance)
        out.init_reasons[l] = f"init: {va.verdict.value}: {va.reason}"
        out.reasons[l] = f"{out.init_reasons[l]}; change: {vd.verdict.value}: {vd.reason}"
    return out


def plot_coord_check(cc: CoordCheck, path, title: str = "", theory: dict | None = None):
    """Two labelled panels against width (log-log): the RMS pre-activation at initialisation and the
    RMS change after the last step, per layer, as the mean over seeds with error bars of +-1.96
    standard errors of that mean; the legend gives each layer's fitted exponent and verdict.

    ``theory``: per layer, the exponents the abc table gives for the two panels (strings such as
    ``"-1/2"``, None where it gives none), each drawn as a dashed line of that slope through the
    geometric mean of the layer's points and named in its legend entry."""
    import matplotlib.pyplot as plt

    from sde_scales.plots import plain_log_ticks, save_figure, width_ticks

    names = layer_names(len(cc.layers))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), constrained_layout=True)
    n = np.asarray(cc.widths, dtype=float)
    for l in cc.layers:
        for panel, (ax, vals, est, extra) in enumerate(
                ((axes[0], cc.act[l], cc.act_exp[l], ""),
                 (axes[1], cc.delta[l][:, -1], cc.delta_exp[l], f", {cc.verdicts[l].value}"))):
            mean = vals.mean(axis=1)
            se = vals.std(axis=1, ddof=1) / np.sqrt(vals.shape[1]) if vals.shape[1] > 1 else np.zeros_like(mean)
            want = (theory or {}).get(l, (None, None))[panel]
            table = f", table $n^{{{want}}}$" if want is not None else ""
            bars = ax.errorbar(n, mean, yerr=1.96 * se, fmt="o-", capsize=3, ms=4,
                               label=f"{names[l]}: exponent {est.exponent:+.2f}{table}{extra}")
            if want is not None and np.all(mean > 0):
                e = float(Fraction(want))
                centre = np.exp(np.mean(np.log(n)))
                ax.plot(n, np.exp(np.mean(np.log(mean))) * (n / centre) ** e, "--", lw=1,
                        color=bars.lines[0].get_color())
    axes[0].set_ylabel(r"RMS pre-activation at init, $\|h_l\|_{rms}$")
    axes[1].set_ylabel(r"RMS change after the last step, $\|\Delta h_l\|_{rms}$")
    axes[0].set_title("initialisation", fontsize=10)
    steps = cc.delta[cc.layers[0]].shape[1]
    axes[1].set_title(f"after {steps} step{'s' if steps != 1 else ''}", fontsize=10)
    for a in axes:
        a.set_xscale("log", base=2)
        a.set_yscale("log")
        width_ticks(a.xaxis)
        plain_log_ticks(a.yaxis)
        a.set_xlabel("width $n$")
        # below the panel: inside it the legend covered the widest layer's points
        a.legend(fontsize=7, title="mean over seeds, 95% error bars" + ("; dashed: the abc table's slope"
                                                                         if theory else ""),
                 title_fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))
        a.grid(True, which="major", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
