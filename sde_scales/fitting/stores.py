"""Loss curves from a run store of the trainer, with the per-step schedule each run used.

A run's schedule is known exactly from its configuration (schedule name, arguments, peak learning
rate and number of steps), so every curve read here carries it at every step
(:attr:`LossCurve.schedule`) and no late-start assumption is needed. Timing matches
:mod:`sde_scales.fitting.curves`: the trainer logs ``eval_loss`` after the update of a step and
``train_loss`` as the mean minibatch loss since the previous log, so the value logged at step s
depends on the learning rates of updates 0 .. s-1 (0-based), the convention of the fits.

    from sde_scales.fitting.stores import curves_from_store
    curves = curves_from_store("runs/", where={"param": "mup", "width": 256})
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting.curves import LossCurve
from sde_scales.validation import same_value

__all__ = ["curves_from_store", "mean_curve", "parse_where", "run_schedule"]

#: Columns of the curve's name; the other columns that tell runs apart are added to a name where
#: the selected runs differ in them.
_NAMED = ("param", "width", "lr", "schedule", "schedule_kw")


def _keys(columns) -> list[str]:
    """Columns that tell runs apart besides the seed (a seed-averaged curve averages over seeds
    only): the grid's axes and every field that changes a run's numbers
    (:data:`sde_scales.analysis.width.TRAINING_FIELDS`, among them the data seed, the base width and
    the precision)."""
    from sde_scales.analysis.width import TRAINING_FIELDS

    return [k for k in dict.fromkeys(("param", "width", "lr") + TRAINING_FIELDS) if k in columns]


def parse_where(text: str | None) -> dict:
    """``"param=mup,width=256"`` -> ``{"param": "mup", "width": 256}`` (numbers parsed)."""
    out = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise InvalidArgumentError(f"--where {text!r}: {part!r} is not column=value (e.g. param=mup,width=256)")
        k, v = (x.strip() for x in part.split("=", 1))
        if k in out:
            raise InvalidArgumentError(f"--where {text!r}: {k}= is given twice; a selection takes one value per "
                                       f"column (select the runs of each value in a call of its own)")
        try:
            num = float(v)
        except ValueError:
            out[k] = v
            continue
        if not np.isfinite(num):
            raise InvalidArgumentError(f"--where {text!r}: {k}={v} is not a finite number; no run has it (give the "
                                       f"value as the store holds it, e.g. lr=0.001)")
        out[k] = int(num) if num == int(num) and "." not in v and "e" not in v.lower() else num
    return out


def run_schedule(config) -> np.ndarray:
    """The learning rate of every step ``0 .. n`` of a run (``n`` updates; the rate at ``n`` moves no
    logged loss and repeats the last one)."""
    sched = float(config.lr) * config.schedule_factors()
    return np.concatenate([sched, sched[-1:]])


def mean_curve(steps, values, sched, name: str, source: str | None = None) -> LossCurve:
    """The seed-mean curve of ``values`` ``(seeds, steps)`` logged at ``steps``, with the per-step
    schedule ``sched`` the runs used (:func:`run_schedule`)."""
    s = np.asarray(steps).astype(np.int64)
    return LossCurve(s, sched[s], np.asarray(values).mean(axis=0), name=name,
                     source=source or "<memory>").with_schedule(sched)


def curves_from_store(root: str | Path, where: dict | None = None, *, metric: str = "train_loss",
                      per_seed: bool = False) -> list[LossCurve]:
    """The runs of a store that match ``where`` (column -> value), finished runs only, as curves with
    their per-step schedules: one seed-mean curve per configuration (``per_seed=False``; seeds
    aligned on their common logged steps) or one curve per run."""
    from sde_scales.analysis.grid import loss_table, seed_matrix
    from sde_scales.train.store import RunStore, config_from_row

    root = Path(root)
    st = RunStore.existing(root)
    runs, traj = st.read()  # the same runs in both tables
    for k, v in (where or {}).items():
        if k not in runs.columns:
            raise InvalidArgumentError(f"--where: the store has no column {k!r}; columns: {sorted(runs.columns)}")
        col = runs[k]
        runs = runs[same_value(col, v)] if isinstance(v, (int, float)) else runs[col.astype(str) == v]
    n_div = int((runs.status != "finished").sum())
    runs = runs[runs.status == "finished"]
    if runs.empty:
        raise InvalidArgumentError(f"no finished runs in {root} match {where} ({n_div} diverged runs left out)")
    t = loss_table(runs, traj, metric)
    if t.empty:
        raise InvalidArgumentError(f"the selected runs have no logged {metric!r}; use train_loss or eval_loss")
    keys = _keys(runs.columns)
    groups = ([(str(rid), g) for rid, g in runs.groupby("run_id", sort=False)] if per_seed else
              [(None, g) for _, g in runs.groupby(keys, dropna=False)])
    # fields outside the name in which the selection differs go into the names, so that two
    # configurations never share one (depth 1 and depth 2 runs were both "mup_n16_lr0.1_cosine")
    differ = [k for k in keys if k not in _NAMED and runs[k].astype(str).nunique() > 1]
    out = []
    for rid, g in groups:
        steps, values, _ = seed_matrix(t, g.run_id)
        config = config_from_row(g.iloc[0])
        kws = "".join(f"_{k}{v}" for k, v in config.schedule_kw)
        kws += "".join(f"_{k}{g.iloc[0][k]}" for k in differ)
        name = f"{config.param}_n{config.width}_lr{config.lr:g}_{config.schedule}{kws}"
        name = name if rid is None else f"{name}_seed{config.seed}"
        name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
        # the source names the runs, so that an error about the curve says which (it said "st (3 run(s))")
        what = f"run {rid}" if rid is not None else f"runs {name} ({g.shape[0]} seed{'s' if g.shape[0] > 1 else ''})"
        out.append(mean_curve(steps, values, run_schedule(config), name, source=f"{root}, {what}"))
    return out
