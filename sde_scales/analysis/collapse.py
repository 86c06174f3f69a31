r"""Scaling collapse as Qiu et al. (ICML 2025) define it.

A *ladder* is a set of model sizes p (here MLP widths; p counts parameters), each trained with
several seeds. Compute is :math:`c = 6\, t\, p` with t the number of training samples seen (steps
times batch size).

1. **Frontier** (:func:`pareto_frontier`, :func:`fit_frontier`): from constant-learning-rate runs of
   every size, the loss-compute Pareto frontier (points no other point beats with less compute)
   is fitted by :math:`F(c) = a\, c^{-b} + L_0`; :math:`L_0` is the irreducible loss.
2. **Horizons** (:func:`horizons`): size p is compute-optimal where its seed-mean curve, smoothed
   by a fit :math:`\hat L_p(t) = A_p t^{-\alpha_p} + E_p`, comes closest to the fitted frontier,
   :math:`t^*(p) = \arg\min_t (\hat L_p(t) - L_0) / (F(6 t p) - L_0)`,
   and :math:`t^*(p) = k\, p^\gamma` gives the horizon exponent :math:`\gamma`.
3. **Normalisation** (:func:`normalise`): a run of size p trained for :math:`T = t^*(p)` gives

   .. math::

       \ell_p(x; \omega) = \frac{L_p(x T; \omega) - L_0}{\bar L_p(T) - L_0}, \qquad x = c(t) / c(T) = t / T,

   with :math:`\bar L_p(T)` the seed-mean final loss (so the seed-mean curve ends at one and a
   seed's curve ends near one: its final-loss noise is kept, not divided out).
4. **Deviation and noise floor** (:func:`collapse_stats`), on a common x grid:

   .. math::

       \Delta(x)^2 = \operatorname{var}_p\big[\bar\ell_p(x)\big] - \frac{1}{P}\sum_p v_p(x), \qquad
       \sigma(x) = \Big(\frac{1}{P} \sum_p \operatorname{var}_\omega\big[\ell_p(x; \omega)\big]\Big)^{1/2},

   :math:`\bar\ell_p` the seed mean, var with ddof 1, P the number of sizes: the spread of the
   seed-mean curves across sizes less what their own seed noise puts in it (0 where the noise
   accounts for all of it), and the seed-to-seed spread of one size's curve (pooled over sizes).
   :math:`v_p(x)` is the variance of :math:`\bar\ell_p(x)` over draws of S_p seeds, by the delta
   method, with the noise of the seed-mean final loss that every point is divided by:

   .. math::

       v_p(x) = \frac{1}{S_p}\operatorname{var}_\omega\big[\ell_p(x; \omega) - \bar\ell_p(x)\,\ell_p(1; \omega)\big].

   Without it a perfect collapse is not judged as one: the seed means keep a spread of about
   :math:`\sigma \sqrt{(1 + \ell^2)/S}` from noise alone where the noise is independent from one
   logged step to the next (the :math:`\ell^2` from the final loss, one logged point), and with
   10 seeds a planted perfect collapse read :math:`\Delta > \sigma` and was FAILed on most draws
   (benchmarks/RESULTS.md, "Scaling collapse: the seed noise of the sizes' means"). A
   mis-scaled ladder adds a systematic part, which stays. *Supercollapse* is
   :math:`\Delta(x) \le \sigma(x)` for x in :math:`[x_0, 1]`; it is judged on
   :math:`R = \max_{x \in [x_0, 1]} \Delta(x)/\sigma(x)` with a percentile bootstrap over seeds
   (seeds resampled within each size, the normalisation, Delta and sigma recomputed; :math:`L_0`
   held at its fit): PASS iff the interval's upper end is below 1, FAIL iff its lower end is
   above 1. A resample's seed means scatter about the sample's by :math:`v_p` once more, so a
   replicate subtracts twice its own estimate of the noise, which centres the replicates on the
   estimate instead of above it.
5. **Early warning** (:func:`departures`): the first x at which one size's seed-mean curve leaves
   the band of the others (the Student-t quantile of the fewest seeds at the normal's 3-sigma
   tails, 4.09 standard errors at 10 seeds; three grid points in a row): a run that will not
   collapse, caught before its end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from sde_scales import seeds
from sde_scales.analysis.grid import loss_table, require_runs, seed_matrix
from sde_scales.errors import InvalidArgumentError
from sde_scales.rates import MIN_REPLICAS, Verdict, check_confidence, check_resamples
from sde_scales.validation import is_whole, same_value

__all__ = ["CollapseResult", "Curves", "FrontierFit", "HorizonFit", "collapse_stats", "curves_from_store",
           "departures", "fit_frontier", "horizons", "normalise", "param_count", "pareto_frontier"]


def param_count(width: int, d_in: int, d_out: int = 1, depth: int = 1) -> int:
    """Weights of a bias-free MLP ``d_in -> width (x depth hidden layers) -> d_out``."""
    return int(d_in * width + (depth - 1) * width * width + width * d_out)


@dataclass(frozen=True)
class Curves:
    """Loss curves of one size: ``loss[s, i]`` for seed s at ``steps[i]`` (steps > 0 only)."""

    width: int
    params: int
    batch: int
    steps: np.ndarray
    loss: np.ndarray
    seeds: tuple = ()

    def __post_init__(self) -> None:
        st, ls = np.asarray(self.steps, float), np.asarray(self.loss, float)
        if ls.ndim != 2 or ls.shape[1] != st.size or st.size < 2:
            raise InvalidArgumentError(f"width {self.width}: loss of shape {ls.shape} for {st.size} steps; give "
                                       f"(seeds, steps) with at least two steps")
        if np.any(np.diff(st) <= 0) or st[0] <= 0:
            raise InvalidArgumentError(f"width {self.width}: steps must be positive and increasing")
        if not np.all(np.isfinite(ls)):
            raise InvalidArgumentError(f"width {self.width}: non-finite losses; leave diverged runs out")

    @property
    def compute(self) -> np.ndarray:
        """FLOPs :math:`6\\, t\\, p` at each logged step (t = samples seen)."""
        return 6.0 * np.asarray(self.steps, float) * self.batch * self.params

    @property
    def n_seeds(self) -> int:
        return int(self.loss.shape[0])

    @property
    def label(self) -> str:
        """How errors name this size: ``width W`` for a ladder of widths (parameters counted from
        it), ``size P`` where the size was given as such (a user's table)."""
        return f"size {self.params:,}" if self.params == self.width else f"width {self.width}"

    def resampled(self, idx) -> "Curves":
        return Curves(self.width, self.params, self.batch, self.steps, self.loss[idx], self.seeds)


def _one_configuration_per_width(runs: pd.DataFrame) -> None:
    """Refuse runs of one width that differ in anything but the seed: their curves would be taken
    as seeds of one size (two learning rates at a width were pooled as six seeds with repeated seed
    numbers). Widths may differ in their learning rate (each size at its own optimum)."""
    from sde_scales.analysis.width import TRAINING_FIELDS

    for w, g in runs.groupby("width"):
        for f in ("param", "lr") + TRAINING_FIELDS:
            if f in g.columns and g[f].astype(str).nunique() > 1:
                vals = sorted(g[f].astype(str).unique())
                raise InvalidArgumentError(
                    f"the runs of width {int(w)} differ in {f} ({', '.join(vals)}): their curves would be pooled as "
                    f"seeds of one size; select one configuration per width (curves_from_store(..., {f}=...) where "
                    f"it takes one, or filter the runs table first)")


def curves_from_store(runs: pd.DataFrame, traj: pd.DataFrame, metric: str = "eval_loss", *, param: str | None = None,
                      lr: float | None = None, schedule: str | None = None, lr_width: int | None = None,
                      d_out: int = 1) -> tuple[list[Curves], dict]:
    """Curves per width from a run store (finished runs only; seeds aligned on their common steps).

    Returns the curves and ``{width: number of diverged runs left out}``."""
    require_runs(runs, traj, metric)
    r = runs.copy()
    for col, val in (("param", param), ("schedule", schedule), ("lr_width", lr_width)):
        if val is not None:
            if col not in r.columns:
                if col == "lr_width" and val == 0:
                    continue
                raise InvalidArgumentError(f"the store has no column {col!r}")
            r = r[r[col] == val]
    if lr is not None:
        r = r[same_value(r["lr"], lr)]
    if r.empty:
        raise InvalidArgumentError("no runs match the selection; check param, lr and schedule")
    _one_configuration_per_width(r)
    diverged = {int(w): int((g.status != "finished").sum()) for w, g in r.groupby("width")}
    t = loss_table(r, traj, metric)  # finished runs only
    out = []
    for w, g in r[r.status == "finished"].groupby("width"):
        c0 = g.iloc[0]
        steps, values, ids = seed_matrix(t, g.run_id)
        if values.shape[0] == 0 or steps.size < 2:
            continue
        seeds = tuple(g.set_index("run_id").loc[ids, "seed"].tolist())
        p = param_count(int(w), int(c0.d_in), d_out, int(c0.depth))
        out.append(Curves(int(w), p, int(c0.batch_size), steps, values, seeds))
    if not out:
        raise InvalidArgumentError(f"no finished runs with a logged {metric!r} in the selection")
    return out, diverged


# ---------------------------------------------------------------------------------------------
# frontier


def pareto_frontier(compute, loss) -> np.ndarray:
    """Indices of the non-dominated points, in increasing compute: each has a lower loss than
    every point with less (or equal) compute."""
    c, L = np.asarray(compute, float).ravel(), np.asarray(loss, float).ravel()
    order = np.lexsort((L, c))
    keep, best = [], np.inf
    for i in order:
        if L[i] < best:
            keep.append(i)
            best = L[i]
    return np.asarray(keep, dtype=int)


def _frontier_points(curves: list[Curves]) -> tuple[np.ndarray, np.ndarray]:
    c = np.concatenate([cv.compute for cv in curves])
    L = np.concatenate([cv.loss.mean(axis=0) for cv in curves])
    idx = pareto_frontier(c, L)
    return c[idx], L[idx]


def _fit_power(c: np.ndarray, L: np.ndarray) -> tuple[np.ndarray, bool]:
    """Least squares of log L against log(a c^-b + L0), robust (soft L1) with a scale from the
    residuals of a first plain fit; returns ``(log a, b, L0)`` in units of c / c_min, and whether
    the fit converged."""
    u = np.log(c / c[0])
    lmin = float(L.min())
    hi_L0 = lmin * (1 - 1e-6)

    def resid(th):
        la, b, L0 = th
        return np.log(np.exp(la - b * u) + L0) - np.log(L)

    starts = [(np.log(max(L[0] - f * lmin, 1e-12)), b0, f * lmin) for f in (0.0, 0.5, 0.9) for b0 in (0.2, 1.0)]
    best = None
    for la0, b0, L00 in starts:
        try:
            r = optimize.least_squares(resid, [la0, b0, min(L00, hi_L0 * 0.999)],
                                       bounds=([-50, 1e-4, 0.0], [50, 10.0, hi_L0]))
        except ValueError:
            continue
        if best is None or r.cost < best.cost:
            best = r
    if best is None:
        return np.full(3, np.nan), False
    scale = max(float(np.median(np.abs(best.fun))) * 1.4826, 1e-6)  # MAD of the plain fit's residuals
    rob = optimize.least_squares(resid, best.x, bounds=([-50, 1e-4, 0.0], [50, 10.0, hi_L0]), loss="soft_l1",
                                 f_scale=scale)
    return rob.x, bool(rob.success)


@dataclass(frozen=True)
class FrontierFit:
    r"""The fitted frontier :math:`F(c) = a c^{-b} + L_0` with bootstrap intervals.

    ``a`` is in units of :math:`c_0^{b}` where ``c0`` is the least compute on the frontier, so
    :math:`F(c) = a (c / c_0)^{-b} + L_0`. ``warnings`` lists parameters on their bounds and
    frontiers too short to fit."""

    a: float
    b: float
    L0: float
    c0: float
    ci: dict
    compute: np.ndarray
    loss: np.ndarray
    n_boot: int
    warnings: tuple = ()

    def __call__(self, c) -> np.ndarray:
        return self.a * (np.asarray(c, float) / self.c0) ** -self.b + self.L0

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "L0": self.L0, "c0": self.c0, "ci": self.ci, "n_points": int(self.loss.size),
                "n_boot": self.n_boot, "warnings": list(self.warnings)}


def _frontier_params(curves: list[Curves]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, bool]:
    c, L = _frontier_points(curves)
    th, converged = _fit_power(c, L)
    return th, c, L, float(c[0]), converged


def _resample(curves: list[Curves], rng: np.random.Generator) -> list[Curves]:
    return [cv.resampled(rng.integers(0, cv.n_seeds, cv.n_seeds)) for cv in curves]


def _check_boot(n_boot, confidence, verdict: bool = False) -> None:
    """A whole number of bootstrap resamples (at least :data:`~sde_scales.rates.MIN_RESAMPLES` where
    a ``verdict`` reads their interval, else 0 for none) and a confidence level strictly between 0
    and 1: 1.5 ended in numpy's "Percentiles must be in the range [0, 100]", and ``n_boot=0`` in an
    IndexError where a verdict reads the interval."""
    if verdict:
        check_resamples(n_boot, "n_boot")
    elif not is_whole(n_boot, 0):
        raise InvalidArgumentError(f"n_boot={n_boot!r}; give a whole number of bootstrap resamples >= 0 (0: no "
                                   f"intervals)")
    check_confidence(confidence)


def _check_grid(grid) -> np.ndarray:
    """The normalised-time grid: finite and increasing (an unsorted grid was accepted, and the
    departures' runs of consecutive grid points then ran over it in the wrong order)."""
    x = np.asarray(grid, float)
    if x.ndim != 1 or x.size < 2 or not np.all(np.isfinite(x)) or np.any(np.diff(x) <= 0):
        raise InvalidArgumentError(f"grid of {x.size} point(s) must be finite and increasing (e.g. "
                                   f"np.linspace(0.05, 1, 40))")
    return x


def fit_frontier(curves: list[Curves], *, n_boot: int = 400, confidence: float = 0.95, seed: int = 0) -> FrontierFit:
    """Fit :math:`F(c) = a (c/c_0)^{-b} + L_0` to the Pareto frontier of the seed-mean curves of a
    constant-learning-rate ladder. Robust least squares on log L (soft L1 with the residual scale
    of a plain fit); intervals from a percentile bootstrap over seeds (resampled within each
    size, frontier and fit recomputed)."""
    _check_boot(n_boot, confidence)
    if len(curves) < 2:
        raise InvalidArgumentError(f"{len(curves)} size(s); a frontier needs at least two sizes")
    th, c, L, c0, converged = _frontier_params(curves)
    if c.size < 4:
        raise InvalidArgumentError(f"the Pareto frontier has {c.size} points; a 3-parameter fit needs at least 4: log "
                                   f"more often or train longer")
    if not np.all(np.isfinite(th)):
        raise InvalidArgumentError("the frontier fit failed; check that the losses fall with compute")
    rng = seeds.rng(seed, "collapse.frontier_boot")
    boot = []
    for _ in range(n_boot):
        tb, _, _, c0b, _ = _frontier_params(_resample(curves, rng))
        if np.all(np.isfinite(tb)):
            # a in the units of the point fit's c0
            boot.append([np.exp(tb[0]) * (c0 / c0b) ** -tb[1], tb[1], tb[2]])
    boot = np.asarray(boot)
    q = [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100]
    ci = {k: [float(v) for v in np.percentile(boot[:, i], q)] if len(boot) else [None, None]
          for i, k in enumerate(("a", "b", "L0"))}
    warns = []
    if not converged:
        warns.append("the robust frontier fit stopped at its evaluation limit before converging: a, b and L0 are "
                     "where it stopped, not a converged fit")
    if th[2] <= 1e-9:
        warns.append("L0 is on its lower bound 0: the frontier shows no irreducible loss within this compute range "
                     "(train longer or wider)")
    if th[2] >= L.min() * (1 - 1e-4):
        warns.append("L0 is on its upper bound (the lowest loss seen): the frontier has flattened and L0 is not "
                     "resolved")
    if th[1] <= 2e-4 or th[1] >= 9.99:
        warns.append(f"the exponent b = {th[1]:.3g} is on a bound of [1e-4, 10]")
    return FrontierFit(float(np.exp(th[0])), float(th[1]), float(th[2]), c0, ci, c, L, len(boot), tuple(warns))


# ---------------------------------------------------------------------------------------------
# horizons


def _horizon_steps(curves: list[Curves]) -> tuple[np.ndarray, list]:
    """Per size (curves in increasing size), the step from which the next larger size has the
    lower seed-mean loss at equal compute for the rest of the common compute range (their
    difference smoothed by a running mean over 1/8 of that range in log compute): the end of the
    size's stretch on the frontier. The largest size has no successor (``"last"``); ``"never"``:
    the larger size never stays ahead within the runs; ``"start"``: it is ahead from the start."""
    tstar, where = [], []
    for cv, nxt in zip(curves[:-1], curves[1:]):
        c1, c2 = cv.compute, nxt.compute
        lo, hi = max(c1[0], c2[0]), min(c1[-1], c2[-1])
        if not hi > lo:
            tstar.append(np.nan)
            where.append("never")
            continue
        grid = np.geomspace(lo, hi, 256)
        d = (np.interp(np.log(grid), np.log(c2), nxt.loss.mean(axis=0))
             - np.interp(np.log(grid), np.log(c1), cv.loss.mean(axis=0)))
        # a running mean over 1/8 of the common range (in log compute): the crossing of two noisy
        # curves is read off their smoothed difference, not off the last noise-induced sign flip
        win = 33
        d = np.convolve(np.pad(d, win // 2, mode="edge"), np.ones(win) / win, mode="valid")
        ahead = d < 0
        if not ahead[-1]:
            tstar.append(np.nan)
            where.append("never")
            continue
        behind = np.flatnonzero(~ahead)
        if behind.size == 0:
            tstar.append(grid[0] / (6.0 * cv.batch * cv.params))
            where.append("start")
            continue
        i = int(behind[-1])  # last grid point where the larger size is not ahead; cross between i and i + 1
        frac = d[i] / (d[i] - d[i + 1])  # linear in log c between the two points
        cx = np.exp(np.log(grid[i]) + frac * (np.log(grid[i + 1]) - np.log(grid[i])))
        tstar.append(cx / (6.0 * cv.batch * cv.params))
        where.append("inside")
    tstar.append(np.nan)
    where.append("last")
    return np.asarray(tstar), where


@dataclass(frozen=True)
class HorizonFit:
    r"""Compute-optimal horizons :math:`t^*(p)` (steps) per size and the fit :math:`t^* = k p^\gamma`."""

    widths: tuple
    params: np.ndarray
    steps: np.ndarray
    gamma: float
    k: float
    ci: dict
    resolved: tuple
    warnings: tuple = ()

    def predict(self, params) -> np.ndarray:
        """Horizon in steps for a size of ``params`` parameters."""
        return self.k * np.asarray(params, float) ** self.gamma

    def to_dict(self) -> dict:
        return {"widths": list(self.widths), "params": self.params.tolist(), "steps": self.steps.tolist(),
                "gamma": self.gamma, "k": self.k, "ci": self.ci, "resolved": list(self.resolved),
                "warnings": list(self.warnings)}


def horizons(curves: list[Curves], frontier: FrontierFit, *, n_boot: int = 400, confidence: float = 0.95,
             seed: int = 0) -> HorizonFit:
    r"""Per size, its horizon: the step at which the next larger size overtakes it for good at equal
    compute (the end of its stretch on the Pareto frontier; :func:`_horizon_steps`), and
    :math:`\gamma` from a least-squares line of log horizon on log parameters through the sizes
    whose crossing lies inside the runs. The largest size, and a size whose crossing is not seen,
    are left out of the fit and named in ``warnings``; their horizons come from the fitted law.
    The interval of :math:`\gamma` is a percentile bootstrap over seeds (resampled within each
    size, crossings recomputed). ``frontier`` is not used by the crossings (they are read off the
    curves); it is taken so that the pipeline reads in order and may be None."""
    _check_boot(n_boot, confidence)
    curves = sorted(curves, key=lambda cv: cv.params)
    t, where = _horizon_steps(curves)
    p = np.array([cv.params for cv in curves], float)
    ok = np.array([w == "inside" for w in where])
    why = {"last": "the largest size: no larger one to overtake it, horizon from the fitted law",
           "never": "the next size never stays ahead within these runs (train longer)",
           "start": "the next size is ahead from the first common point (log earlier or start with narrower sizes)"}
    warns = [f"width {cv.width}: {why[w]}" for cv, w in zip(curves, where) if w != "inside"]
    if ok.sum() < 2:
        raise InvalidArgumentError("fewer than two sizes have a horizon inside their run: train the constant-lr ladder "
                                   "longer (the widest sizes need the most steps); " + "; ".join(warns))
    g, lk = np.polyfit(np.log(p[ok]), np.log(t[ok]), 1)
    rng = seeds.rng(seed, "collapse.horizon_boot")
    boot = []
    for _ in range(n_boot):
        tb, wb = _horizon_steps(_resample(curves, rng))
        okb = np.array([w == "inside" for w in wb])
        if okb.sum() >= 2 and np.unique(p[okb]).size >= 2:
            boot.append(np.polyfit(np.log(p[okb]), np.log(tb[okb]), 1)[0])
    q = [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100]
    ci = {"gamma": [float(v) for v in np.percentile(boot, q)] if boot else [None, None], "n_boot": len(boot)}
    if ok.sum() == 2:
        warns.append("gamma rests on two sizes only")
    if ci["gamma"][0] is not None and ci["gamma"][0] <= 0:
        warns.append(f"the 95% interval of gamma [{ci['gamma'][0]:.3g}, {ci['gamma'][1]:.3g}] reaches 0 or below: "
                     f"these runs do not show horizons that grow with size, so the horizons from the fitted law "
                     f"are not resolved (more seeds or sizes)")
    return HorizonFit(tuple(cv.width for cv in curves), p, t, float(g), float(np.exp(lk)), ci,
                      tuple(bool(v) for v in ok), tuple(warns))


# ---------------------------------------------------------------------------------------------
# normalisation, deviation and noise floor


def normalise(curves: list[Curves], L0: float, grid) -> list[np.ndarray]:
    """:math:`\\ell_p(x; \\omega)` on ``grid`` (x = t / T with T each size's last logged step), one
    ``(seeds, len(grid))`` array per size; linear interpolation between logged steps. Refused where
    a final loss is not above ``L0`` (the normalisation would divide by zero or flip sign)."""
    x = _check_grid(grid)
    if isinstance(L0, bool) or not isinstance(L0, (int, float, np.integer, np.floating)) or not np.isfinite(L0):
        raise InvalidArgumentError(f"L0={L0!r}; give the frontier's finite irreducible loss (FrontierFit.L0)")
    out = []
    for cv in curves:
        fin = float(cv.loss[:, -1].mean())
        if not fin > L0:
            raise InvalidArgumentError(f"{cv.label}: final loss {fin:.4g} is not above L0 = {L0:.4g}; the "
                                       f"normalised loss is undefined (check L0 or the runs)")
        xs = np.asarray(cv.steps, float) / float(cv.steps[-1])
        if x.min() < xs[0] - 1e-12:
            raise InvalidArgumentError(f"{cv.label}: the grid starts at x = {x.min():g}, before the first logged "
                                       f"point x = {xs[0]:.3g}; start the grid later or log more often")
        out.append(np.stack([np.interp(x, xs, (row - L0) / (fin - L0)) for row in cv.loss]))
    return out


def _require_two_seeds(ells: list[np.ndarray], names, why: str) -> None:
    """Refuse sizes with fewer than two seeds, by name: ``why`` says what needs them."""
    few = [(w, int(e.shape[0])) for w, e in zip(names, ells) if e.shape[0] < 2]
    if few:
        raise InvalidArgumentError(", ".join(f"{w} has {k} seed" for w, k in few) + f"; {why}")


def _check_ends(ells: list[np.ndarray], names, renorm: bool) -> None:
    """Curves that end at x = 1 are divided by their seed-mean value there (the normalised final
    loss, 1 from :func:`normalise`); a mean there that is not positive and finite made every
    statistic NaN, read as "sigma is zero somewhere"."""
    if not renorm:
        return
    bad = [f"{w}: {float(e[:, -1].mean()):.4g}" for w, e in zip(names, ells) if not float(e[:, -1].mean()) > 0
           or not np.isfinite(e[:, -1]).all()]
    if bad:
        raise InvalidArgumentError(f"the seed-mean normalised curve at x = 1 is not a positive finite number "
                                   f"({', '.join(bad)}); normalise the curves by a final loss above L0 (normalise()) "
                                   f"before judging them")


def _renormalised(x: np.ndarray) -> bool:
    """Whether the grid ends at x = 1, where :func:`normalise` divides every curve by its size's
    seed-mean final loss: a resample is then renormalised there, and a seed mean's noise holds
    that final loss's."""
    return bool(np.isclose(x[-1], 1.0))


def _mean_noise_var(e: np.ndarray, renorm: bool) -> np.ndarray:
    """Variance over draws of the seeds of one size's seed-mean curve, by the delta method. With
    ``renorm`` the curve is the seeds' mean over their mean at the grid's last point (x = 1, the
    final loss every point is divided by), whose noise is then in it."""
    S = e.shape[0]
    if not renorm:
        return e.var(axis=0, ddof=1) / S
    end = e[:, -1]
    ratio = e.mean(axis=0) / end.mean()
    return (e - ratio[None, :] * end[:, None]).var(axis=0, ddof=1) / (S * end.mean() ** 2)


def _stats(ells: list[np.ndarray], renorm: bool, noise_times: float = 1.0):
    """(Delta, sigma, the seed means' plain spread, the root mean variance of their noise): Delta^2
    is the sizes' variance of the seed means less ``noise_times`` their mean noise variance,
    clipped at 0 (2 in a bootstrap replicate, whose means scatter about the sample's once more)."""
    means = np.stack([e.mean(axis=0) for e in ells])
    raw2 = means.var(axis=0, ddof=1)
    noise2 = np.mean(np.stack([_mean_noise_var(e, renorm) for e in ells]), axis=0)
    sigma = np.sqrt(np.mean(np.stack([e.var(axis=0, ddof=1) for e in ells]), axis=0))
    return np.sqrt(np.maximum(raw2 - noise_times * noise2, 0.0)), sigma, np.sqrt(raw2), np.sqrt(noise2)


@dataclass
class CollapseResult:
    """Deviation :math:`\\Delta(x)`, noise floor :math:`\\sigma(x)` (with pointwise intervals), the
    statistic :math:`R = \\max_{x \\ge x_0} \\Delta/\\sigma` with its interval, and the verdict.
    ``delta`` has the seed means' own noise removed (the module docstring); ``delta_raw`` is the
    plain spread of the seed means and ``delta_noise`` the root mean variance of that noise
    (``delta_raw**2 = delta**2 + delta_noise**2`` wherever ``delta`` is above 0)."""

    x: np.ndarray
    delta: np.ndarray
    sigma: np.ndarray
    delta_ci: np.ndarray
    sigma_ci: np.ndarray
    x0: float
    ratio: float
    ratio_ci: tuple
    verdict: Verdict
    reason: str
    widths: tuple
    n_seeds: tuple
    means: np.ndarray
    delta_raw: np.ndarray
    delta_noise: np.ndarray
    departures: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"x": self.x.tolist(), "delta": self.delta.tolist(), "sigma": self.sigma.tolist(),
                "delta_ci": self.delta_ci.tolist(), "sigma_ci": self.sigma_ci.tolist(), "x0": self.x0,
                "delta_raw": self.delta_raw.tolist(), "delta_noise": self.delta_noise.tolist(),
                "ratio_max": self.ratio, "ratio_ci": list(self.ratio_ci), "verdict": self.verdict.value,
                "reason": self.reason, "widths": list(self.widths), "n_seeds": list(self.n_seeds),
                "departures": {str(k): v for k, v in self.departures.items()}}


def collapse_stats(ells: list[np.ndarray], grid, *, x0: float = 0.2, widths=(), n_boot: int = 1000,
                   confidence: float = 0.95, seed: int = 0, min_seeds: int = MIN_REPLICAS) -> CollapseResult:
    """:math:`\\Delta(x)`, :math:`\\sigma(x)` and the supercollapse verdict (see the module docstring).

    ``ells``: per size, normalised curves ``(seeds, len(grid))`` from :func:`normalise`. Fewer than
    ``min_seeds`` seeds at some size, or fewer than 3 sizes, give INCONCLUSIVE (a percentile
    bootstrap of so few values under-covers; two sizes give a spread with one degree of freedom)."""
    x = _check_grid(grid)
    _check_boot(n_boot, confidence, verdict=True)
    if len(ells) < 2:
        raise InvalidArgumentError(f"{len(ells)} size(s); a collapse needs at least two")
    win = x >= x0
    if not win.any():
        raise InvalidArgumentError(f"x0 = {x0} leaves no grid point in [x0, 1]")
    names = [f"size {w:,}" for w in widths] if len(widths) == len(ells) else [f"curves {k}" for k in range(len(ells))]
    _require_two_seeds(ells, names, f"the seed noise sigma(x) is a standard deviation over a size's seeds and "
                                    f"needs at least two (a verdict {min_seeds})")
    # a resample's normalisation uses its own seed-mean final loss: with the grid ending at x = 1
    # that is a division of every curve by the resample's mean there
    renorm = _renormalised(x)
    _check_ends(ells, names, renorm)
    delta, sigma, delta_raw, delta_noise = _stats(ells, renorm)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = float(np.max(delta[win] / sigma[win]))
    rng = seeds.rng(seed, "collapse.stats_boot")
    bd, bs, br = [], [], []
    for _ in range(n_boot):
        eb = [e[rng.integers(0, e.shape[0], e.shape[0])] for e in ells]
        if renorm:
            eb = [e / e[:, -1].mean() for e in eb]
        d, s, _, _ = _stats(eb, renorm, noise_times=2.0)
        bd.append(d)
        bs.append(s)
        with np.errstate(divide="ignore", invalid="ignore"):
            br.append(np.max(d[win] / s[win]))
    q = [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100]
    dci, sci = np.percentile(bd, q, axis=0), np.percentile(bs, q, axis=0)
    br = np.asarray(br)
    lo, hi = (float(v) for v in np.percentile(br[np.isfinite(br)], q)) if np.isfinite(br).any() else (np.nan, np.nan)
    ns = tuple(int(e.shape[0]) for e in ells)
    ci_s = f"[{lo:.3f}, {hi:.3f}]"
    if not (np.isfinite(r) and np.isfinite(lo) and np.isfinite(hi)):
        v, why = Verdict.INCONCLUSIVE, "Delta/sigma is not finite (sigma is zero somewhere: identical seeds?)"
    elif min(ns) < min_seeds:
        v, why = Verdict.INCONCLUSIVE, (f"{min(ns)} seeds at some size, fewer than {min_seeds}: the seed bootstrap "
                                        f"under-covers (more seeds needed); max Delta/sigma = {r:.3f} {ci_s}")
    elif len(ells) < 3:
        v, why = Verdict.INCONCLUSIVE, "two sizes: their spread has one degree of freedom (three or more needed)"
    elif hi < 1:
        v, why = Verdict.PASS, f"max over x >= {x0:g} of Delta/sigma = {r:.3f} {ci_s}: below the noise floor"
    elif lo > 1:
        v, why = Verdict.FAIL, f"max over x >= {x0:g} of Delta/sigma = {r:.3f} {ci_s}: the sizes differ by more than " \
                               f"their seed noise"
    else:
        v, why = Verdict.INCONCLUSIVE, f"max over x >= {x0:g} of Delta/sigma = {r:.3f} {ci_s} straddles 1 (more " \
                                       f"seeds needed)"
    means = np.stack([e.mean(axis=0) for e in ells])
    res = CollapseResult(x, delta, sigma, dci, sci, x0, r, (lo, hi), v, why, tuple(widths), ns, means, delta_raw,
                         delta_noise)
    res.departures = departures(ells, x, widths=widths, x_from=x0)
    return res


def departures(ells: list[np.ndarray], grid, *, widths=(), k: float | None = None, run: int = 3,
               x_from: float = 0.0) -> dict:
    """For each size, the first x at which its seed-mean curve leaves the band of the other sizes:
    :math:`|\\bar\\ell_p(x) - \\bar\\ell_{-p}(x)| > k\\, \\mathrm{se}(x)` at ``run`` grid points in a
    row, :math:`\\bar\\ell_{-p}` the other sizes' seed means weighted by their precisions
    :math:`1/v_q` (their best estimate of one common curve) and se the standard error of the
    difference, :math:`\\sqrt{v_p + 1/\\sum_{q \\ne p} v_q^{-1}}`, from the seed means' noise
    variances :math:`v_p` (:func:`collapse_stats`),
    searched from ``x_from`` on (the start of the window the collapse is judged on: before it the
    curves still carry their initial transient). None where it never leaves.

    At each grid point the sizes that leave are found one at a time (:func:`_leaving`): the size
    furthest outside its band leaves, and the others are compared again without it, while three or
    more remain. Compared once with every other size, a size that follows the common curve moved
    with the others' mean when one size bent away, and all four sizes of a ladder with one bent
    size were said to leave at the same x. Two sizes that differ are both said to leave: nothing
    tells which of the two moved. With equal weights a size whose seeds are few or noisy pulled the
    others' reference while staying inside its own wide band, and a size that followed the common
    curve was named instead of it (31-38 of 200 planted ladders with one bent size, 20-40 seeds).

    ``k`` (default) is the Student-t quantile, with the fewest seeds of a size less one degrees of
    freedom, whose two tails hold what 3 standard deviations leave of a normal (0.27%): the
    standard error is estimated from those seeds, and with 10 of them a fixed 3 (t = 3 has 1.5% in
    its tails at 9 degrees of freedom) said a size of a perfect collapse left the others in 14 of
    100 planted ladders, the t quantile (4.09) in 1 (benchmarks/RESULTS.md, "Scaling collapse: the
    seed noise of the sizes' means")."""
    x = _check_grid(grid)
    _require_two_seeds(ells, [f"size {w}" for w in tuple(widths) or range(len(ells))],
                       "a size's band is a standard error over its seeds and needs at least two")
    if k is None:
        dof = min(int(e.shape[0]) for e in ells) - 1
        k = float(stats.t.isf(stats.norm.sf(3.0), dof))
    if not (isinstance(k, (int, float, np.integer, np.floating)) and np.isfinite(k) and k > 0) \
            or not is_whole(run, 1):
        raise InvalidArgumentError(f"k={k!r}, run={run!r}; give a finite k > 0 standard errors and a whole run >= 1 of "
                                   f"grid points")
    widths = tuple(widths) or tuple(range(len(ells)))
    means = [e.mean(axis=0) for e in ells]
    # the seed means' own noise, the final loss they are divided by included (a standard error
    # from the pointwise seed variance alone left it out: independent per-step noise then moved
    # every size out of a perfect collapse's band near x0, where the curve is several times its end)
    sem2 = [_mean_noise_var(e, _renormalised(x)) for e in ells]
    out = {}
    for i, out_band in enumerate(_leaving(np.array(means), np.array(sem2), k)):
        first = None
        for a in range(x.size - run + 1):
            if x[a] >= x_from and out_band[a:a + run].all():
                first = float(x[a])
                break
        out[widths[i]] = first
    return out


def _leaving(means: np.ndarray, sem2: np.ndarray, k: float) -> np.ndarray:
    r"""(sizes, grid) mask of the sizes outside the band of the rest at each grid point (see
    :func:`departures`): while three or more remain, the one with the largest
    :math:`|\bar\ell_p - \bar\ell_{-p}| / \mathrm{se}` above ``k`` leaves and the rest are compared
    again; two that remain and differ by more than ``k`` standard errors both leave. The rest's
    reference is their precision-weighted mean."""
    P, G = means.shape
    active = np.ones((P, G), bool)
    leaving = np.zeros((P, G), bool)
    cols = np.arange(G)

    # at x = 1 every normalised mean is 1 with no noise: a floor keeps the weights (and their sums) finite
    w = 1.0 / np.maximum(sem2, 1e-150)

    others = ~np.eye(P, dtype=bool)[:, :, None]  # [p, q]: q is one of p's others

    def z_scores():
        wq = np.where(others & active[None, :, :], w[None, :, :], 0.0)  # (P, P, G), summed, not subtracted
        w_rest = wq.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            rest = (wq * means[None, :, :]).sum(axis=1) / w_rest
            z = np.abs(means - rest) / np.sqrt(sem2 + 1.0 / w_rest)
        return np.where(active, np.nan_to_num(z, nan=0.0), -np.inf)

    for _ in range(P - 2):
        z = z_scores()
        top = np.argmax(z, axis=0)
        go = (z[top, cols] > k) & (active.sum(axis=0) > 2)
        leaving[top[go], cols[go]] = True
        active[top[go], cols[go]] = False
    z = z_scores()
    both = (active.sum(axis=0) == 2) & (np.max(z, axis=0) > k)  # of two, each is the other's rest
    return leaving | (active & both[None, :])
