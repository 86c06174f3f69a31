r"""Analyses of a width x learning-rate x seed grid read from a run store.

All functions take the two tables of :class:`sde_scales.train.store.RunStore` (``runs`` and
``trajectories``) as pandas DataFrames, so they work on any store, local or copied from a cluster.

* :func:`loss_table` -- a metric per (width, lr, seed, step), diverged runs left out (or as ``inf``);
  :func:`diverged_counts` says how many were left out per width.
* :func:`eta_star` -- the best learning rate per width and step (seed-averaged loss), and
  :func:`settle_step`, the first step from which it no longer changes.
* :func:`loss_ratio` -- worst/best loss across learning rates over time (the paper reports 1.10 at
  epoch 10 and 238.33 at epoch 120 for width 10,000).
* :func:`transfer_curves` -- final loss against learning rate per width (muP: optimum stable in
  width; SP: drifting).
* :func:`seed_fluctuation` -- spread over seeds of a macro-variable (the loss) and of a weight's
  displacement, per width, ready for ``sde_scales.rates``.

The scaling collapse of Qiu et al. (2025) is in :mod:`sde_scales.analysis.collapse`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sde_scales.errors import InvalidArgumentError
from sde_scales.validation import same_value

__all__ = ["diverged_counts", "eta_star", "loss_ratio", "loss_table", "one_configuration_each", "require_runs",
           "seed_fluctuation", "seed_matrix", "settle_step", "transfer_curves"]


def require_runs(runs: pd.DataFrame, traj: pd.DataFrame | None = None, metric: str | None = None) -> None:
    """Refuse, by name, a runs table with no runs, and a trajectory table without ``metric``.

    An empty store (a mistyped path: ``RunStore`` creates the folders it is given) or a misspelt
    metric would otherwise give empty analyses, or a ``KeyError`` from pandas."""
    if runs.empty or "run_id" not in runs.columns:
        raise InvalidArgumentError("the runs table is empty: the store holds no finished runs (check its path; "
                                   "`sde-scales sweep --out PATH` trains runs into one)")
    if traj is not None and metric is not None and not (traj.metric == metric).any():
        have = sorted(m for m in traj.metric.unique() if m != "w")
        raise InvalidArgumentError(f"metric {metric!r} is not in the store's trajectories; it has {have}")


def one_configuration_each(runs: pd.DataFrame) -> None:
    """Refuse a runs table in which the runs of one parametrization differ in a field that changes
    their numbers besides width, learning rate and seed (two sweeps written into one store, say a
    cosine and a WSD one): the analyses below group by (param, width, lr) and would average them
    as seeds. :func:`sde_scales.analysis.width.one_configuration` per parametrization."""
    from sde_scales.analysis.width import one_configuration

    for param, sel in runs.groupby("param"):
        one_configuration(sel, str(param))


def loss_table(runs: pd.DataFrame, traj: pd.DataFrame, metric: str = "train_loss",
               diverged: str = "exclude") -> pd.DataFrame:
    """A metric per (param, width, lr, seed, step). ``diverged="exclude"`` leaves diverged runs out
    (count them with :func:`diverged_counts`); ``"inf"`` keeps them with an infinite loss."""
    if diverged not in ("exclude", "inf"):
        raise ValueError(f"diverged={diverged!r}; use 'exclude' or 'inf'")
    require_runs(runs, traj, metric)
    t = traj[(traj.metric == metric) & (traj.layer == -1)][["run_id", "step", "epoch", "value"]]
    t = t.merge(runs[["run_id", "param", "width", "lr", "seed", "status"]], on="run_id")
    if diverged == "exclude":
        return t[t.status == "finished"].copy()
    t["value"] = t["value"].where(np.isfinite(t["value"]), np.inf)
    return t


def seed_matrix(table: pd.DataFrame, run_ids) -> tuple[np.ndarray, np.ndarray, list]:
    """From a :func:`loss_table`, the steps after initialisation (step > 0) that every one of
    ``run_ids`` logged, and their values as a ``(runs, steps)`` array, with the run ids in row order."""
    piv = (table[table.run_id.isin(run_ids) & (table.step > 0)]
           .pivot_table(index="run_id", columns="step", values="value").dropna(axis=1))
    return piv.columns.to_numpy(float), piv.to_numpy(float), list(piv.index)


def diverged_counts(runs: pd.DataFrame) -> pd.DataFrame:
    """Diverged runs per (param, width): ``n_diverged`` and the learning rates they had."""
    require_runs(runs)
    d = runs[runs.status != "finished"]
    g = d.groupby(["param", "width"])
    out = g.size().rename("n_diverged").to_frame()
    out["diverged_lrs"] = g["lr"].apply(lambda v: sorted(set(v)))
    return out.reset_index()


def eta_star(runs, traj, metric: str = "train_loss") -> pd.DataFrame:
    """Best learning rate per (param, width, step), by the seed-averaged metric.

    ``at_grid_edge`` is True where that learning rate is the smallest or the largest one trained at
    that (param, width), diverged runs included: the optimum may then lie outside the grid, and
    ``eta_star`` is only the grid's end (widen the grid). A best rate below a rate that diverged
    is not flagged: the optimum is then bracketed by the divergence."""
    t = loss_table(runs, traj, metric)
    one_configuration_each(runs)
    m = t.groupby(["param", "width", "step", "lr"], as_index=False)["value"].mean()
    idx = m.groupby(["param", "width", "step"])["value"].idxmin()
    best = m.loc[idx].rename(columns={"lr": "eta_star", "value": "best_value"}).reset_index(drop=True)
    grid = runs.groupby(["param", "width"])["lr"].agg(lr_min="min", lr_max="max").reset_index()
    best = best.merge(grid, on=["param", "width"], how="left")
    # exact: eta_star is one of the runs' own rates (np.isclose's absolute 1e-8 would call 1e-9 and 2e-9 equal)
    best["at_grid_edge"] = (best.eta_star == best.lr_min) | (best.eta_star == best.lr_max)
    return best.drop(columns=["lr_min", "lr_max"])


def settle_step(best: pd.DataFrame) -> pd.DataFrame:
    """Per (param, width): the first logged step from which eta* stays at its final value, and
    whether that value is at the grid's edge (``final_at_grid_edge``, from :func:`eta_star`)."""
    out = []
    for (p, w), g in best.sort_values("step").groupby(["param", "width"]):
        e = g["eta_star"].to_numpy()
        s = g["step"].to_numpy()
        changed = np.flatnonzero(e != e[-1])
        first = s[changed[-1] + 1] if changed.size else s[0]
        row = {"param": p, "width": w, "settle_step": int(first), "final_eta_star": float(e[-1])}
        if "at_grid_edge" in g:
            row["final_at_grid_edge"] = bool(g["at_grid_edge"].to_numpy()[-1])
        out.append(row)
    return pd.DataFrame(out)


def loss_ratio(runs, traj, metric: str = "train_loss") -> pd.DataFrame:
    """Worst/best seed-averaged loss across the learning rates whose runs did not diverge, per
    (param, width, step), with ``n_diverged`` (the diverged runs of that width, left out)."""
    t = loss_table(runs, traj, metric)
    one_configuration_each(runs)
    m = t.groupby(["param", "width", "step", "lr"], as_index=False)["value"].mean()
    g = m.groupby(["param", "width", "step"])["value"]
    out = (g.max() / g.min()).rename("ratio").reset_index()
    return _with_counts(out, runs)


def _with_counts(df: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    dc = diverged_counts(runs)[["param", "width", "n_diverged"]]
    out = df.merge(dc, on=["param", "width"], how="left")
    out["n_diverged"] = out["n_diverged"].fillna(0).astype(int)
    return out


def transfer_curves(runs, traj, metric: str = "train_loss") -> pd.DataFrame:
    """Final seed-averaged metric per (param, width, lr) over the runs that did not diverge, with
    ``n_diverged`` per width."""
    t = loss_table(runs, traj, metric)
    one_configuration_each(runs)
    last = t.sort_values("step").groupby("run_id").tail(1)
    return _with_counts(last.groupby(["param", "width", "lr"], as_index=False)["value"].mean(), runs)


def seed_fluctuation(runs, traj, lr: float, step: int | None = None, param: str | None = None) -> dict:
    """At one learning rate and parametrization: per width, over seeds, the final train loss (macro)
    and the displacement of the first logged hidden-layer weight coordinate (micro). Returns
    ``{"widths": [...], "macro": [arrays], "micro": [arrays]}`` for ``sde_scales.rates``.

    ``param`` may be left out when the store holds one parametrization; runs of several at the
    learning rate are refused (they were pooled as seeds)."""
    require_runs(runs, traj, "train_loss")
    sel = runs[same_value(runs.lr, lr) & (runs.status == "finished")]
    if param is not None:
        sel = sel[sel.param == param]
    elif sel.param.nunique() > 1:
        raise InvalidArgumentError(f"runs of {sorted(sel.param.unique())} at lr={lr}: their spread is no seed "
                                   f"spread; choose one with param=")
    if sel.empty:
        raise InvalidArgumentError(f"no finished runs at lr={lr}{f' with param={param!r}' if param else ''}; the "
                                   f"store has learning rates {sorted(runs.lr.unique())} and parametrizations "
                                   f"{sorted(runs.param.unique())}")
    one_configuration_each(sel)
    widths = sorted(sel.width.unique())
    macro, micro = [], []
    for w in widths:
        ids = sel[sel.width == w].run_id
        t = traj[traj.run_id.isin(ids)]
        stp = t.step.max() if step is None else step
        loss = t[(t.metric == "train_loss") & (t.step == stp)].set_index("run_id")["value"]
        wcoord = t[(t.metric == "w") & (t.layer == 1000)]  # layer 1 (hidden), first chosen coordinate
        first = wcoord[wcoord.step == wcoord.step.min()].set_index("run_id")["value"]
        last = wcoord[wcoord.step == stp].set_index("run_id")["value"]
        macro.append(loss.reindex(ids).to_numpy())
        micro.append((last - first).reindex(ids).to_numpy())
    return {"widths": widths, "macro": macro, "micro": micro}

