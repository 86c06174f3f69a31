r"""Supercollapse of the user's own loss curves (``sde-scales collapse``).

The table is long: one row per logged step of each run, with the run's model size, its seed, the
step and the loss. Each size's runs are taken as trained to that size's horizon (its last logged
step, the same for all its seeds), as a compute-optimal ladder is; with the irreducible loss
:math:`L_0` given (``--L0``: from a fit of the loss-compute frontier, e.g.
:func:`sde_scales.analysis.collapse.fit_frontier`, or a scaling-law fit of one's own), every run
is normalised as Qiu et al. do (:func:`~sde_scales.analysis.collapse.normalise`),

.. math:: \ell_p(x) = \frac{L_p(x T_p) - L_0}{\bar L_p(T_p) - L_0},

and the spread of the sizes' seed-mean curves :math:`\Delta(x)` is set against the seed noise
:math:`\sigma(x)` (:func:`~sde_scales.analysis.collapse.collapse_stats`): PASS when the bootstrap
interval of :math:`\max_{x \ge x_0} \Delta/\sigma` lies below 1, FAIL when above, INCONCLUSIVE
otherwise (and with fewer than ten seeds at some size, or fewer than three sizes).
"""

from __future__ import annotations

import numpy as np

from sde_scales.analysis.collapse import CollapseResult, Curves, collapse_stats, normalise
from sde_scales.errors import DataFileError, InvalidArgumentError
from sde_scales.tables import label_column, numeric_column
from sde_scales.validation import distinct_columns

__all__ = ["curves_from_table", "run_collapse"]


def _numbers(df, name: str, source: str, what: str) -> np.ndarray:
    return numeric_column(df, name, source, flag=f"--{what}", what=what,
                          hint=" (a diverged run? leave its rows out)" if what == "loss" else "")


def curves_from_table(df, *, size: str = "size", seed: str = "seed", step: str = "step", loss: str = "loss",
                      source: str = "table") -> list[Curves]:
    """One :class:`~sde_scales.analysis.collapse.Curves` per size, its seeds' losses at the steps
    they all logged. Refused, naming the size and seed: seeds of one size that did not log the
    same steps (their horizons differ, or a run stopped early), a step logged twice by one run, a
    negative or fractional step (naming the row). Rows at step 0 are left out (the initial loss:
    no normalisation reaches x = 0)."""
    # one column in two roles: a step "logged twice", or no spread
    distinct_columns((("--size", size), ("--seed-column", seed), ("--step", step), ("--loss", loss)), source, df.columns)
    p = _numbers(df, size, source, "size")
    s = label_column(df, seed, source, flag="--seed-column", what="seed")  # a seed number or a run's name
    t = _numbers(df, step, source, "step")
    y = _numbers(df, loss, source, "loss")
    bad = (t < 0) | (t != np.round(t))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataFileError(f"{source}, column {step!r}, row {i}: step {t[i]:g} is not a non-negative whole number; "
                            f"fix or drop the row")
    keep = t > 0
    out = []
    for ps in np.unique(p):
        at = (p == ps) & keep
        seeds = np.unique(s[at])
        if seeds.size == 0:
            raise DataFileError(f"{source}: size {ps:g} has no row after step 0 (the initial loss alone); give its "
                                f"runs' logged steps")
        per = {}
        for sd in seeds:
            m = at & (s == sd)
            order = np.argsort(t[m], kind="stable")
            ts, ys = t[m][order], y[m][order]
            if np.any(np.diff(ts) == 0):
                dup = ts[1:][np.diff(ts) == 0][0]
                raise DataFileError(f"{source}: size {ps:g}, seed {sd} logs step {dup:g} twice; keep one row per "
                                    f"step (the last, if the run was resumed)")
            per[sd] = (ts, ys)
        ref_seed = seeds[0]
        ref = per[ref_seed][0]
        for sd, (ts, _) in per.items():
            if ts.size != ref.size or np.any(ts != ref):
                missing = np.setdiff1d(ref, ts)
                extra = np.setdiff1d(ts, ref)
                raise DataFileError(
                    f"{source}: size {ps:g}: seed {sd} logged other steps than seed {ref_seed} (its last step "
                    f"{ts[-1]:g} against {ref[-1]:g}; {missing.size} of seed {ref_seed}'s steps missing, "
                    f"{extra.size} extra): the seeds of a size must share one horizon and logging; drop the runs "
                    f"that stopped early, or keep the steps all seeds logged")
        if not (float(ps).is_integer() and ps >= 1):
            raise DataFileError(f"{source}, column {size!r}: size {ps:g} is not a whole number >= 1; give each model's "
                                f"size as its parameter count (or width)")
        if ref.size < 2:
            raise DataFileError(f"{source}: size {ps:g} logs one step after step 0 ({ref[0]:g}); a normalised curve "
                                f"needs at least two logged steps per run: give its runs' whole logs")
        params = int(ps)
        # the seeds in one order whatever their names (by their losses, the first logged step first), so
        # that renamed runs give the same interval as the bootstrap draws seeds by position
        loss_rows = np.stack([per[sd][1] for sd in seeds])
        order = np.lexsort(loss_rows.T[::-1])
        out.append(Curves(width=params, params=params, batch=1, steps=ref, loss=loss_rows[order],
                          seeds=tuple(seeds[order])))
    if len(out) < 2:
        raise InvalidArgumentError(f"{source}: {len(out)} size(s) in column {size!r}; a collapse compares at least "
                                   f"two (three for a verdict)")
    return out


def run_collapse(args) -> int:
    """``sde-scales collapse``: read, normalise, judge, print; ``--json``, ``--plot``; with
    ``--strict`` exit 1 unless PASS."""
    from sde_scales.atomic import write_json_atomic
    from sde_scales.rates import check_resamples
    from sde_scales.tables import read_table
    from sde_scales.verdicts import Verdict

    if not (np.isfinite(args.L0)):
        raise InvalidArgumentError(f"--L0 {args.L0}; give the irreducible loss, a finite number")
    if not 0 <= args.x0 < 1:
        raise InvalidArgumentError(f"--x0 {args.x0}; give the start of the judged window in [0, 1)")
    if not 10 <= args.grid_points <= 10_000:
        raise InvalidArgumentError(f"--grid-points {args.grid_points}; give 10 to 10,000 (the curves are interpolated "
                                   f"on the grid: more points than logged steps add no information)")
    check_resamples(args.resamples, "--resamples")
    df = read_table(args.table)
    curves = curves_from_table(df, size=args.size, seed=args.seed_column, step=args.step, loss=args.loss,
                               source=str(args.table))
    start = max(float(c.steps[0]) / float(c.steps[-1]) for c in curves)
    if start > args.x0:
        raise InvalidArgumentError(f"{args.table}: a size's first logged step is at x = {start:.3g} of its horizon, after "
                                   f"--x0 {args.x0}; judge from a later x0 or log earlier")
    grid = np.linspace(start, 1.0, args.grid_points)
    ells = normalise(curves, args.L0, grid)
    res: CollapseResult = collapse_stats(ells, grid, x0=args.x0, widths=tuple(c.params for c in curves),
                                         n_boot=args.resamples, seed=args.seed)
    print(f"supercollapse of {len(curves)} sizes (L0 = {args.L0:g}; x = step / each size's last step; judged on "
          f"x >= {args.x0:g})")
    print(f"  {'size':>14s} {'seeds':>6s} {'horizon':>10s} {'final loss':>11s} {'leaves the others at x':>23s}")
    for c in curves:
        dep = res.departures.get(c.params)
        print(f"  {c.params:14,d} {c.n_seeds:6d} {int(c.steps[-1]):10,d} {float(c.loss[:, -1].mean()):11.4g} "
              f"{'-' if dep is None else f'{dep:.3f}':>23s}")
    print(f"max over x >= {args.x0:g} of Delta/sigma: {res.ratio:.3f} [{res.ratio_ci[0]:.3f}, {res.ratio_ci[1]:.3f}]")
    note = None
    if np.isfinite(res.ratio_ci[0]) and res.ratio < res.ratio_ci[0]:
        # a resample repeats seeds, which adds to Delta's seed noise: the maximum's bootstrap lies high
        note = ("the point estimate lies below its interval: the interval is a percentile bootstrap of a maximum "
                "over the grid, and a resample of seeds (some repeated) spreads the sizes' means more than the "
                "data do, so it lies high; it is the interval the verdict reads (PASS needs its upper end below 1)")
        print(f"note: {note}")
    print(f"supercollapse (Delta <= sigma): {res.verdict.value}: {res.reason}")
    doc = dict(res.to_dict(), file=str(args.table), L0=args.L0, seed=args.seed, resamples=args.resamples, note=note,
               sizes=[{"size": c.params, "seeds": c.n_seeds, "horizon": int(c.steps[-1]),
                       "final_loss": float(c.loss[:, -1].mean())} for c in curves])
    if args.json:
        print(f"JSON: {write_json_atomic(args.json, doc)}")
    if args.plot:
        from sde_scales.plots import save_figure

        print(f"plot: {save_figure(_plot(res, ells, curves, args.L0), args.plot)}")
    return 1 if args.strict and res.verdict is not Verdict.PASS else 0


def _plot(res: CollapseResult, ells, curves, L0: float):
    import matplotlib.pyplot as plt

    from sde_scales.plots import plain_log_ticks

    fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 3.8), constrained_layout=True)
    for i, (c, e) in enumerate(zip(curves, ells)):
        m, sd = e.mean(axis=0), e.std(axis=0, ddof=1)
        a.plot(res.x, m, color=f"C{i % 10}", lw=1.3, label=f"size {c.params:,} ({c.n_seeds} seeds)")
        a.fill_between(res.x, m - sd, m + sd, color=f"C{i % 10}", alpha=0.15, lw=0)
    a.set(xlabel="x = step / horizon", ylabel=r"$\ell(x) = (L - L_0) / (\bar L(T) - L_0)$", yscale="log")
    a.set_title(f"normalised loss, L0 = {L0:g} (bands: one seed sd)", fontsize=9)
    plain_log_ticks(a.yaxis)
    a.legend(fontsize=7)
    # Delta is 0 where the seed noise explains the whole spread: left out of the log axis, not drawn to it
    b.plot(res.x, np.where(res.delta > 0, res.delta, np.nan), color="C3",
           label=r"$\Delta(x)$: spread of the sizes' mean curves, less their seed noise (gaps: 0)")
    b.fill_between(res.x, res.delta_ci[0], res.delta_ci[1], color="C3", alpha=0.2, lw=0)
    b.plot(res.x, res.delta_raw, color="C3", ls="--", lw=0.8, label="the same with the seed noise in")
    b.plot(res.x, res.sigma, color="k", label=r"$\sigma(x)$: seed noise (pooled)")
    b.fill_between(res.x, res.sigma_ci[0], res.sigma_ci[1], color="k", alpha=0.15, lw=0)
    b.axvline(res.x0, color="0.5", ls=":", lw=1, label=f"x0 = {res.x0:g} (judged from here)")
    # every size's mean ends at 1 by construction, so Delta is 0 at x = 1: scaled without that point
    inner = res.x < 1
    shown = np.concatenate([res.delta[inner], res.sigma[inner], res.delta_raw[inner]])
    shown = shown[np.isfinite(shown) & (shown > 0)]
    b.set(xlabel="x = step / horizon", ylabel="deviation and noise floor", yscale="log")
    b.set_title(rf"max over $x \geq x_0$ of $\Delta/\sigma$: {res.ratio:.2f} ({res.verdict.value})", fontsize=9)
    if shown.size:
        b.set_ylim(shown.min() / 3, shown.max() * 3)
    b.legend(fontsize=7)
    for ax in (a, b):
        ax.grid(True, which="major", alpha=0.3)
    return fig

