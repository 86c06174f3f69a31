r"""Width ladders trained to their compute-optimal horizons: the experiment behind the scaling
collapse of Qiu et al. (ICML 2025), in three stages that share one run store.

1. :func:`frontier_configs`: every width trained at a constant learning rate for the same number
   of steps; the loss-compute frontier, :math:`L_0` and the horizons
   :math:`t^*(p) = k\, p^\gamma` come from these runs (:mod:`sde_scales.analysis.collapse`).
2. :func:`horizon_configs`: every width trained for its own horizon with a schedule stretched to
   it (``constant``, ``cosine``, or ``linear`` decay to zero).
3. The same with a mis-scaled control: ``frozen`` (muP initialisation and multipliers, but every
   width uses the per-layer learning rates of the narrowest width, the ablation of the paper) or
   ``sp`` (standard parametrization at the same base learning rate).

:func:`run_ladder` does all three and returns, per schedule and control, the collapse statistics.
Runs are written to the store as they finish, so an interrupted ladder resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sde_scales.errors import InvalidArgumentError
from sde_scales.train.trainer import RunConfig
from sde_scales.validation import is_integral

__all__ = ["LADDER_FULL", "LADDER_QUICK", "LadderSpec", "frontier_configs", "horizon_configs", "run_ladder"]

#: Schedule names of a ladder and the trainer's schedule with its arguments.
LADDER_SCHEDULES = {"constant": ("constant", ()), "cosine": ("cosine", ()),
                    "linear": ("wsd", (("fraction", 1.0), ("decay", "linear")))}
CONTROLS = ("frozen", "sp")


@dataclass(frozen=True)
class LadderSpec:
    """A ladder: widths, seeds, the task and the optimiser, and how long the frontier runs are.

    ``frontier_steps``: steps of the constant-learning-rate runs that locate the frontier (long
    enough for the widest width to reach it); ``log_points``: logged points per run (the x grid of
    the normalised curves is resolved to about ``1 / log_points``)."""

    widths: tuple = (8, 16, 32, 64)
    seeds: int = 10
    lr: float = 0.03
    param: str = "mup"
    optimizer: str = "sgd"
    dataset: str = "powerlaw"
    d_in: int = 32
    n_train: int = 65536
    batch_size: int = 64
    depth: int = 1
    frontier_steps: int = 12000
    log_points: int = 64
    schedules: tuple = ("constant", "cosine", "linear")
    controls: tuple = ("frozen", "sp")
    control_schedule: str = "linear"
    data_seed: int = 0
    metric: str = "eval_loss"

    def __post_init__(self) -> None:
        widths = tuple(self.widths)
        if len(widths) < 3 or not all(is_integral(w, 1) for w in widths) or sorted(set(widths)) != list(widths):
            raise InvalidArgumentError(f"widths={self.widths}; give at least three increasing whole widths >= 1")
        object.__setattr__(self, "widths", tuple(int(w) for w in widths))  # 64.0 -> 64; 8.5 is refused above
        for name in ("seeds", "frontier_steps", "log_points"):
            if not is_integral(getattr(self, name), 1):
                raise InvalidArgumentError(f"{name}={getattr(self, name)!r}; give a whole number")
            object.__setattr__(self, name, int(getattr(self, name)))
        bad = [s for s in (*self.schedules, self.control_schedule) if s not in LADDER_SCHEDULES]
        if bad:
            raise InvalidArgumentError(f"schedules {bad}; use {', '.join(LADDER_SCHEDULES)}")
        bad = [c for c in self.controls if c not in CONTROLS]
        if bad:
            raise InvalidArgumentError(f"controls {bad}; use {', '.join(CONTROLS)}")
        if self.seeds < 2 or self.frontier_steps < 4 * self.log_points or self.log_points < 8:
            raise InvalidArgumentError(f"seeds={self.seeds}, frontier_steps={self.frontier_steps}, "
                                       f"log_points={self.log_points}; give at least 2 seeds, 8 log points and 4 "
                                       f"steps per log point")

    def to_dict(self) -> dict:
        return asdict(self)


#: About 2 minutes on 2 cores; 10 seeds, the fewest a seed bootstrap trusts.
LADDER_QUICK = LadderSpec()
#: More seeds and a wider ladder (the widest crossing needs longer frontier runs).
LADDER_FULL = LadderSpec(widths=(8, 16, 32, 64, 128), seeds=32, frontier_steps=24000, log_points=96)


def _base(spec: LadderSpec, steps: int, **kw) -> dict:
    d = dict(param=spec.param, optimizer=spec.optimizer, dataset=spec.dataset, d_in=spec.d_in, n_train=spec.n_train,
             batch_size=spec.batch_size, depth=spec.depth, data_seed=spec.data_seed, data_order="seed",
             eval_every=0, lr=spec.lr, epochs=steps * spec.batch_size / spec.n_train,
             log_every=max(1, steps // spec.log_points))
    d.update(kw)
    return d


def frontier_configs(spec: LadderSpec) -> list[RunConfig]:
    """Constant learning rate, every width for ``frontier_steps`` steps."""
    return [RunConfig(width=int(w), seed=s, **_base(spec, spec.frontier_steps))
            for w in spec.widths for s in range(spec.seeds)]


def horizon_configs(spec: LadderSpec, steps: dict, schedule: str, control: str | None = None) -> list[RunConfig]:
    """Every width for its own horizon ``steps[width]`` with ``schedule`` stretched to it; with a
    control, mis-scaled as the module docstring says."""
    name, kw = LADDER_SCHEDULES[schedule]
    out = []
    for w in spec.widths:
        extra = {"schedule": name, "schedule_kw": kw}
        if control == "frozen":
            extra["lr_width"] = int(spec.widths[0])
        elif control == "sp":
            extra["param"] = "sp"
        out += [RunConfig(width=int(w), seed=s, **_base(spec, int(steps[w]), **extra)) for s in range(spec.seeds)]
    return out


def run_ladder(spec: LadderSpec, store_root: str, *, progress: bool = True, seed: int = 0, x0: float = 0.2,
               n_boot: int = 400) -> dict:
    """Train (or resume) the whole ladder into ``store_root`` and analyse it.

    Returns ``{"frontier": FrontierFit, "horizons": HorizonFit, "steps": {width: T}, "x": grid,
    "ladders": {label: {"result": CollapseResult, "curves": [Curves], "ells": [...], "diverged": {...}}}}``
    with labels ``"mup/constant"``, ``"mup/cosine"``, ..., ``"frozen/linear"``, ``"sp/linear"``."""
    from sde_scales.analysis import collapse as co
    from sde_scales.train.store import RunStore
    from sde_scales.train.sweep import run_sweep

    front = frontier_configs(spec)
    run_sweep(front, store_root, device="cpu", progress=progress)
    st = RunStore(store_root)
    runs, traj = st.read()
    front_ids = {c.run_id for c in front}
    curves, _ = co.curves_from_store(runs[runs.run_id.isin(front_ids)], traj, spec.metric)
    fit = co.fit_frontier(curves, n_boot=n_boot, seed=seed)
    hz = co.horizons(curves, fit, n_boot=n_boot, seed=seed)
    params = {w: co.param_count(w, spec.d_in, 1, spec.depth) for w in spec.widths}
    steps = {w: max(spec.log_points * 2, int(round(float(hz.predict(params[w]))))) for w in spec.widths}
    jobs = [(f"{spec.param}/{s}", horizon_configs(spec, steps, s)) for s in spec.schedules]
    jobs += [(f"{c}/{spec.control_schedule}", horizon_configs(spec, steps, spec.control_schedule, c))
             for c in spec.controls]
    run_sweep([c for _, cs in jobs for c in cs], store_root, device="cpu", progress=progress)
    st = RunStore(store_root)
    runs, traj = st.read()
    lo = max(2.0 / spec.log_points, 0.02)  # the first logged point of every run lies at or before x = 1/log_points
    grid = np.linspace(lo, 1.0, spec.log_points)
    ladders = {}
    for label, cs in jobs:
        ids = {c.run_id for c in cs}
        sel = runs[runs.run_id.isin(ids)]
        entry = {"diverged": {int(w): int((g.status != "finished").sum()) for w, g in sel.groupby("width")}}
        try:
            cv, _ = co.curves_from_store(sel, traj, spec.metric)
            ells = co.normalise(cv, fit.L0, grid)
            entry.update(curves=cv, ells=ells,
                         result=co.collapse_stats(ells, grid, x0=x0, widths=[c.width for c in cv], seed=seed,
                                                  n_boot=max(n_boot, 400)))
        except InvalidArgumentError as exc:
            entry.update(curves=[], ells=[], result=None, error=str(exc))
        ladders[label] = entry
    return {"spec": spec, "frontier": fit, "horizons": hz, "steps": steps, "x": grid, "ladders": ladders,
            "frontier_curves": curves}

