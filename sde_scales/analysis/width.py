r"""Training evidence for width rates: per-width replica samples of macro- and micro-variables,
read from a run store, ready for :mod:`sde_scales.rates`.

A *replica* is one run (one seed: its own initialisation and, with ``data_order="seed"``, its own
minibatch order) at one width, parametrization and learning rate. Variables (``VARIABLES``):

==================  ==========  =================================================================
name                scale       what
==================  ==========  =================================================================
``eval_loss``       macro       loss on the fixed evaluation batch
``grad_norm``       macro       norm of the gradient of that loss (all layers, raw weights)
``act_rms``         macro       RMS of the hidden pre-activations on the evaluation batch
``w{l}_value``      micro       effective value :math:`n^{-a_l} w` of a tracked weight of layer l
``w{l}_disp``       micro       its displacement from initialisation
``w{l}_*_raw``      micro       the same in raw units (the trainer's parameter), for comparison
==================  ==========  =================================================================

Micro-variables are *effective* weights (multiplier times raw weight): the raw weight of an
abc-parametrization is not invariant under its symmetry :math:`(a, b, c) \to (a + \theta,
b - \theta, c - 2\theta)`, which rescales it by :math:`n^{\theta}`, so its exponent in n would depend
on how the table is written. Each run tracks several coordinates per layer (chosen from its seed);
they are exchangeable components of one replica (pooled by the estimators, resampled together).

Diverged runs are left out and counted; a width with fewer finished runs than the estimators need
is reported, not silently used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from sde_scales.analysis.grid import require_runs
from sde_scales.errors import InvalidArgumentError
from sde_scales.parametrization import by_name
from sde_scales.validation import same_value

__all__ = ["VARIABLES", "WidthSamples", "eta_star_log", "final_optimum", "micro_layers", "one_configuration", "optimum_shift",
           "optimum_shift_samples",
           "progress_to_plateau", "width_samples", "TRAINING_FIELDS"]

VARIABLES = {
    "eval_loss": ("macro", "loss on the fixed evaluation batch"),
    "grad_norm": ("macro", "gradient norm of the evaluation loss (all layers)"),
    "act_rms": ("macro", "RMS of the hidden pre-activations on the evaluation batch"),
}
_MACRO_SOURCE = {"eval_loss": ("eval_loss", -1), "grad_norm": ("eval_grad_norm", -1), "act_rms": ("act_rms", 0)}


def micro_layers(depth: int) -> dict[int, str]:
    """Layer index -> name for an MLP with ``depth`` hidden layers."""
    names = {0: "input"}
    for l in range(1, depth):
        names[l] = f"hidden {l}"
    names[depth] = "readout"
    return names


def _variable_info(name: str) -> tuple[str, str]:
    if name in VARIABLES:
        return VARIABLES[name]
    if name.startswith("w") and name.endswith(("_value", "_disp", "_value_raw", "_disp_raw")):
        l, what = name[1:].split("_", 1)
        if l.isdigit():
            units = "raw" if what.endswith("_raw") else "effective"
            return "micro", (f"{units} {'value' if what.startswith('value') else 'displacement from initialisation'} "
                             f"of a tracked weight of layer {l}")
    raise InvalidArgumentError(f"variable {name!r}; use one of {', '.join(VARIABLES)} or w<layer>_value, "
                               f"w<layer>_disp (add _raw for raw units)")


@dataclass(frozen=True)
class WidthSamples:
    """Replica samples of one variable per width at one time.

    ``samples[k]`` is ``(R_k,)`` for macro-variables and ``(J, R_k)`` for micro-variables (J
    tracked coordinates per run). ``steps[k]`` is the logged step used at width k (``fraction``
    of that width's training). ``diverged[k]`` runs at width k were left out. ``run_ids[k]``: the
    run of each replica (each column of ``samples[k]``), in order."""

    variable: str
    scale: str
    description: str
    param: str
    lr: float
    fraction: float
    widths: list[int]
    samples: list[np.ndarray]
    steps: list[int]
    diverged: list[int] = field(default_factory=list)
    run_ids: list[list[str]] = field(default_factory=list)

    @property
    def n_replicas(self) -> int:
        return int(min(s.shape[-1] for s in self.samples)) if self.samples else 0


#: Fields of a run's configuration that change its training (width, learning rate and seed aside):
#: the runs that a rate compares, as replicas of one width or across widths, must agree on all of them.
TRAINING_FIELDS = ("optimizer", "depth", "dataset", "d_in", "n_train", "data_seed", "batch_size", "epochs", "schedule",
                   "schedule_kw", "data_order", "lr_width", "base_width", "precision")


def one_configuration(sel: pd.DataFrame, param: str) -> None:
    """Refuse runs of ``param`` that differ in a field of :data:`TRAINING_FIELDS`: a store that holds
    two sweeps (say depth 1 and depth 2 at the same learning rate) would otherwise pool them as
    replicas, or compare one configuration at some widths with another at others."""
    for f in TRAINING_FIELDS:
        if f in sel.columns:
            vals = sorted(sel[f].astype(str).unique())
            if len(vals) > 1:
                per = sel.groupby(sel[f].astype(str)).width.unique()
                where = "; ".join(f"{f}={v}: widths {sorted(int(w) for w in per[v])}" for v in vals)
                raise InvalidArgumentError(
                    f"the {param} runs differ in {f} ({where}): a rate would pool runs of different configurations "
                    f"as replicas, or compare one configuration at some widths with another at others; keep one "
                    f"configuration per store (sde-scales sweep --out DIR for each)")


def _select(runs: pd.DataFrame, param: str, lr: float | None) -> tuple[pd.DataFrame, float]:
    require_runs(runs)
    sel = runs[runs.param == param]
    if sel.empty:
        raise InvalidArgumentError(f"no runs with param={param!r} in the store (it has {sorted(runs.param.unique())})")
    lrs = np.sort(sel.lr.unique())
    if lr is None:
        if lrs.size != 1:
            raise InvalidArgumentError(f"param={param!r} has learning rates {lrs.tolist()}; choose one with lr=")
        lr = float(lrs[0])
    sel = sel[same_value(sel.lr, lr)]
    if sel.empty:
        raise InvalidArgumentError(f"no {param} runs at lr={lr}; the store has {lrs.tolist()}")
    one_configuration(sel, param)
    return sel, float(lr)


def _multiplier(row, layer: int) -> float:
    """The multiplier of ``layer`` that the run of this runs-table row trained with."""
    from sde_scales.train.store import config_from_row

    c = config_from_row(row)
    return by_name(c.param, L=c.depth, optimizer=c.optimizer).factors(layer, c.width, c.base_width or None)[0]


def width_samples(runs: pd.DataFrame, traj: pd.DataFrame, variable: str, *, param: str = "mup",
                  lr: float | None = None, fraction: float = 1.0) -> WidthSamples:
    """Per-width replica samples of ``variable`` at ``fraction`` of training (the last logged step at
    or before ``fraction`` times each run's last step; 1.0 = the end)."""
    scale, desc = _variable_info(variable)
    if not 0 < fraction <= 1:
        raise InvalidArgumentError(f"fraction={fraction}; give a fraction of training in (0, 1]")
    sel, lr = _select(runs, param, lr)
    widths, samples, steps, diverged, run_ids = [], [], [], [], []
    for w in sorted(sel.width.unique()):
        g = sel[sel.width == w]
        ok = g[g.status == "finished"]
        diverged.append(int((g.status != "finished").sum()))
        if ok.empty:
            continue
        t = traj[traj.run_id.isin(ok.run_id)]
        last = int(t.step.max())
        logged = np.sort(t.step.unique())
        stp = int(logged[logged <= fraction * last].max(initial=logged.min()))
        ids = ok.run_id.to_numpy()
        if scale == "macro":
            metric, layer = _MACRO_SOURCE[variable]
            v = t[(t.metric == metric) & (t.layer == layer) & (t.step == stp)].set_index("run_id")["value"]
            arr = v.reindex(ids).to_numpy(dtype=float)
        else:
            l = int(variable[1:].split("_", 1)[0])
            depth = int(ok.depth.min())
            if l > depth:
                raise InvalidArgumentError(f"variable {variable!r}: the runs have layers 0..{depth}")
            # effective units: each run's own multiplier (its optimizer's table and its base width)
            mult = 1.0 if variable.endswith("_raw") else np.array([_multiplier(r, l) for _, r in
                                                                    ok.set_index("run_id").loc[ids].reset_index().iterrows()])
            tw = t[(t.metric == "w") & (t.layer // 1000 == l)]
            cur = tw[tw.step == stp].pivot(index="layer", columns="run_id", values="value").reindex(columns=ids)
            if "_disp" in variable:
                first = tw[tw.step == tw.step.min()].pivot(index="layer", columns="run_id", values="value")
                if int(tw.step.min()) != 0:
                    raise InvalidArgumentError("the store's runs log no weights at step 0 (initialisation); "
                                               "displacements need them: retrain with this version of the trainer")
                cur = cur - first.reindex(columns=ids)
            arr = cur.to_numpy(dtype=float) * mult  # (tracked weights, runs) x (runs,)
        if np.isnan(arr).any():
            raise InvalidArgumentError(f"{variable} is missing at step {stp} for some runs of width {w}; the store is "
                                       f"incomplete (re-run the sweep to finish it)")
        widths.append(int(w))
        samples.append(arr)
        steps.append(stp)
        run_ids.append([str(r) for r in ids])
    return WidthSamples(variable, scale, desc, param, lr, fraction, widths, samples, steps, diverged, run_ids)


def _plateau_fit(t: np.ndarray, y: np.ndarray) -> float:
    r"""Plateau :math:`L_\infty` of :math:`L(t) = L_\infty + B (1 + t/\tau)^{-\alpha}` fitted to a
    decreasing curve; bounded to ``[0, min y]`` (a loss is non-negative), so an undetermined plateau
    comes out low and the fraction reached is an underestimate, never an overestimate."""
    ymin = float(np.min(y))
    if t.size < 4 or ymin <= 0:
        return 0.0
    tt = t / t.max()

    def resid(th):
        linf, b, tau, a = th
        return linf + b * (1 + tt / tau) ** (-a) - y

    x0 = [0.5 * ymin, float(y[0] - 0.5 * ymin), 0.1, 1.0]
    try:
        r = optimize.least_squares(resid, x0, bounds=([0, 0, 1e-4, 0.05], [ymin, np.inf, 100, 10]))
        return float(r.x[0]) if r.success else 0.0
    except (ValueError, np.linalg.LinAlgError):
        return 0.0


def progress_to_plateau(runs: pd.DataFrame, traj: pd.DataFrame, *, param: str = "mup", lr: float | None = None,
                        metric: str = "eval_loss") -> pd.DataFrame:
    r"""Per width: how far the seed-mean loss has come from its initial value towards its plateau,

    .. math:: f = \frac{L(0) - L(T)}{L(0) - L_\infty},

    with :math:`L_\infty` from a power-law fit to the curve (bounded below by 0, so an uncertain
    plateau gives a smaller f). Columns: width, initial, final, plateau, fraction."""
    sel, lr = _select(runs, param, lr)
    ok = sel[sel.status == "finished"]
    rows = []
    for w, g in ok.groupby("width"):
        t = traj[traj.run_id.isin(g.run_id) & (traj.metric == metric) & (traj.layer == -1)]
        curve = t.groupby("step")["value"].mean()
        s, y = curve.index.to_numpy(float), curve.to_numpy(float)
        if s.size < 2 or s[0] != 0:
            rows.append({"width": int(w), "initial": np.nan, "final": float(y[-1]) if y.size else np.nan,
                         "plateau": np.nan, "fraction": np.nan})
            continue
        linf = _plateau_fit(s, y)
        frac = (y[0] - y[-1]) / (y[0] - linf) if y[0] > linf else np.nan
        rows.append({"width": int(w), "initial": float(y[0]), "final": float(y[-1]), "plateau": linf,
                     "fraction": float(frac)})
    return pd.DataFrame(rows, columns=["width", "initial", "final", "plateau", "fraction"])


def eta_star_log(lrs: np.ndarray, loss: np.ndarray) -> np.ndarray:
    r""":math:`\log\eta^*` from losses on a learning-rate grid, along axis 0 of ``loss``: the grid point
    with the least loss and the vertex of the parabola in :math:`\log\eta` through it and its two
    neighbours. NaN where the least loss is at either end of the grid (the optimum is not inside
    it) or the parabola does not open upwards."""
    lx = np.log(np.asarray(lrs, float))
    loss = np.asarray(loss, float)
    k = np.argmin(np.where(np.isfinite(loss), loss, np.inf), axis=0)
    inside = (k > 0) & (k < lx.size - 1)
    kc = np.clip(k, 1, lx.size - 2)
    y0, y1, y2 = (np.take_along_axis(loss, (kc + d)[None], axis=0)[0] for d in (-1, 0, 1))
    x0, x1, x2 = lx[kc - 1], lx[kc], lx[kc + 1]
    # vertex of the parabola through three points (general spacing)
    d01, d12 = (y1 - y0) / (x1 - x0), (y2 - y1) / (x2 - x1)
    curv = (d12 - d01) / (x2 - x0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = (x0 + x1) / 2 - d01 / (2 * curv)
    return np.where(inside & (curv > 0), vertex, np.nan)


def optimum_shift_samples(runs: pd.DataFrame, traj: pd.DataFrame, *, param: str = "mup", t0_fraction: float = 0.25,
                          metric: str = "eval_loss") -> dict:
    r"""Per width, the losses needed for :math:`|\log\eta^*(t_0) - \log\eta^*(T)|`: an array
    ``(n_lr, 2, R)`` of ``metric`` per learning rate, time (:math:`t_0` = ``t0_fraction`` of training,
    and the end) and seed. Only widths where every learning rate has the same finished seeds are
    kept; diverged runs count as an infinite loss at both times (a learning rate that diverges for a
    seed is not that seed's optimum). Returns ``{"widths", "lrs", "samples", "steps"}``."""
    if not 0 < t0_fraction < 1:
        raise InvalidArgumentError(f"t0_fraction={t0_fraction!r}; the early time is a fraction of training in (0, 1)")
    require_runs(runs, traj, metric)
    sel = runs[runs.param == param]
    if sel.empty:
        raise InvalidArgumentError(f"no runs with param={param!r} in the store")
    one_configuration(sel, param)
    lrs = np.sort(sel.lr.unique())
    if lrs.size < 3:
        raise InvalidArgumentError(f"param={param!r} has {lrs.size} learning rate(s) {lrs.tolist()}; eta*(t) needs a "
                                   f"grid of at least 3 (train one with `sde-scales sweep --lrs ...`)")
    widths, samples, steps = [], [], []
    for w, g in sel.groupby("width"):
        seeds = sorted(set.intersection(*(set(g[same_value(g.lr, lr)].seed) for lr in lrs)))
        if len(seeds) < 3:
            continue
        t = traj[traj.run_id.isin(g.run_id) & (traj.metric == metric) & (traj.layer == -1)]
        logged = np.sort(t.step.unique())
        last = int(logged.max())
        s0 = int(logged[logged <= t0_fraction * last].max(initial=logged.min()))
        arr = np.full((lrs.size, 2, len(seeds)), np.inf)
        for i, lr in enumerate(lrs):
            gg = g[same_value(g.lr, lr)].set_index("seed")
            for j, sd in enumerate(seeds):
                r = gg.loc[sd]
                if r.status != "finished":
                    continue
                tr = t[t.run_id == r.run_id].set_index("step")["value"]
                arr[i, :, j] = [tr.get(s0, np.nan), tr.get(last, np.nan)]
        widths.append(int(w))
        samples.append(arr)
        steps.append((s0, last))
    if len(widths) < 3:
        raise InvalidArgumentError(
            f"only {len(widths)} width(s) have at least 3 seeds trained at every learning rate of the grid "
            f"{lrs.tolist()}; a rate needs 3 widths (train more seeds per learning rate)")
    return {"widths": widths, "lrs": lrs, "samples": samples, "steps": steps}


def final_optimum(lrs: np.ndarray):
    r"""The statistic :math:`\eta^*(T)` of seed-mean final losses (NaN where the optimum is at an
    end of the grid), for :func:`sde_scales.rates.statistic_exponent` on samples from
    :func:`optimum_shift_samples`: the optimal learning rate whose drift with width says whether it
    transfers."""
    def stat(x):
        return np.exp(eta_star_log(lrs, np.mean(x, axis=-1)[:, 1]))
    return stat


def optimum_shift(lrs: np.ndarray):
    r"""The statistic :math:`|\log\eta^*(t_0) - \log\eta^*(T)|` of seed-mean losses, for
    :func:`sde_scales.rates.statistic_exponent` on samples from :func:`optimum_shift_samples`."""
    def stat(x):
        m = np.mean(x, axis=-1)  # (n_lr, 2, *batch)
        e0, eT = eta_star_log(lrs, m[:, 0]), eta_star_log(lrs, m[:, 1])
        return np.abs(e0 - eT)
    return stat
