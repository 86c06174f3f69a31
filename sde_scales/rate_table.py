r"""A verdict on a claimed rate from a table of the user's own measurements (``sde-scales rate``).

The table is long: one row per replica (an independent run, seed or sample) at each width, a
column of widths and a column of the measured value. The reading says which quantity of the
replicas is a power of the width, and :mod:`sde_scales.rates` estimates its exponent with a
percentile-bootstrap interval over replicas and judges the claim by its stated rules:

``fluctuation``
    the standard deviation over the replicas at each width (micro-variables moving at
    :math:`\Theta(n^{-1/2})`: the value is a coordinate of each replica);
``bias``
    :math:`|\bar X_n - \mathrm{ref}|`, the replica mean's distance from ``--reference`` (a number,
    ``richardson`` or ``widest``; macro-variables settling at :math:`O(1/n)`); with
    ``--reference differences`` no limit at all: :math:`|\bar X_{n_k} - \bar X_{n_{k+1}}|`, the
    differences of successive widths' means, which for widths in a constant ratio fall with the
    bias's exponent (:func:`sde_scales.rates.bias_exponent`);
``mean``
    the replica mean itself, which must be positive (a per-replica size such as
    :math:`|w_t - w_0|`);
``values``
    one exact value per width (no replicas: a Student-t interval from the log-log residuals).

A ``separation:D`` claim reads two columns of the same rows (``--value A --minus B``) and judges
the difference of their fluctuation exponents, :math:`p_A - p_B`, against D, each replica
resampled with both of its values.

The table may also come from a run store of ``sde-scales sweep`` (``--store DIR --variable V``,
:func:`store_table`): one variable of :data:`sde_scales.analysis.width.VARIABLES` or a tracked
weight (``w<layer>_value``, ``w<layer>_disp``), of one parametrization at one learning rate, at a
fraction of training; each run is a replica and a run's tracked weights its components.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from sde_scales import rates
from sde_scales.errors import DataFileError, InvalidArgumentError
from sde_scales.rates import ExponentEstimate, RateKind, VerdictResult
from sde_scales.tables import label_column, numeric_column, read_table
from sde_scales.validation import distinct_columns

__all__ = ["READINGS", "REPLICA_COLUMNS", "RateClaim", "RateCheck", "check_rate", "store_table"]

READINGS = ("fluctuation", "bias", "mean", "values")

#: The bias reading's named references (or a number): :func:`sde_scales.rates.bias_exponent`.
BIAS_REFERENCES = ("richardson", "widest", "differences")
_KINDS = {"theta": RateKind.THETA, "o": RateKind.BIG_O, "separation": RateKind.SEPARATION}


@dataclass(frozen=True)
class RateClaim:
    """A claimed rate: ``kind`` (Theta, O or separation) and its exponent (for a separation, the
    claimed difference of exponents)."""

    kind: RateKind
    exponent: float
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> "RateClaim":
        """From ``KIND:EXPONENT``, e.g. ``Theta:-1/2``, ``O:-1``, ``separation:-0.5`` (the exponent
        a number or a fraction)."""
        if not isinstance(text, str) or ":" not in text:
            raise InvalidArgumentError(f"claim {text!r}: give KIND:EXPONENT, KIND one of Theta, O, separation, e.g. "
                                       f"Theta:-1/2 (the quantity is Theta(n^-1/2))")
        kind, exp = (x.strip() for x in text.split(":", 1))
        if kind.lower() not in _KINDS:
            raise InvalidArgumentError(f"claim {text!r}: kind {kind!r}; use Theta, O or separation")
        try:
            value = float(Fraction(exp))
        except (ValueError, ZeroDivisionError):
            raise InvalidArgumentError(f"claim {text!r}: exponent {exp!r} is not a number or a fraction "
                                       f"(e.g. -1/2, -0.5)") from None
        return cls(_KINDS[kind.lower()], value, text)

    @property
    def statement(self) -> str:
        p = f"{Fraction(self.exponent).limit_denominator(64)}"
        if self.kind is RateKind.SEPARATION:
            return f"separation: p_A - p_B = {p}"
        return f"{self.kind.value}(n^{p})"


@dataclass(frozen=True)
class RateCheck:
    """What :func:`check_rate` found: the estimate, the verdict, and the replicas per width."""

    claim: RateClaim
    reading: str
    estimate: ExponentEstimate
    verdict: VerdictResult
    replicas: dict
    #: the column whose values name the replica a row belongs to (None: every row a replica)
    replica_column: str | None = None
    #: rows (components) per replica at each width
    components: dict | None = None
    #: the bias reading's reference as given (a number, "richardson", "widest", "differences")
    reference: float | str | None = None

    def to_dict(self) -> dict:
        return {"claim": {"kind": self.claim.kind.value, "exponent": self.claim.exponent, "text": self.claim.text,
                          "statement": self.claim.statement},
                "reading": self.reading, "replicas": {_width_key(k): v for k, v in self.replicas.items()},
                "replica_column": self.replica_column,
                "components": None if self.components is None else {_width_key(k): v for k, v in self.components.items()},
                "estimate": self.estimate.to_dict(), **self.verdict.to_dict()}


def _width_key(w) -> str:
    """A width as a JSON key: ``"64"`` for a whole width (read as 64.0 from a table), else as given."""
    w = float(w)
    return str(int(w)) if w.is_integer() else repr(w)


def _column(df, name: str, flag: str, source: str) -> np.ndarray:
    what = "width" if flag == "--width" else "value"
    return numeric_column(df, name, source, flag=flag, what=what,
                          hint=" (a diverged or missing run? drop the row, or all the runs of a width that diverged)")


#: Columns read as the replica (run) a row belongs to when ``replica="auto"``, first found first.
REPLICA_COLUMNS = ("replica", "seed", "run")


def _by_replica(groups: list[list[np.ndarray]], labels: list[np.ndarray], xs, source: str, column: str):
    """Each width's rows regrouped as ``(components, replicas)`` (a replica's rows are components of
    one independent run: a tracked weight each, say), or ``(replicas,)`` where every replica has one
    row. Refused where the replicas of a width hold different numbers of rows."""
    out = [[] for _ in groups]
    for k, (x, lab) in enumerate(zip(xs, labels)):
        names, inverse, counts = np.unique(lab, return_inverse=True, return_counts=True)
        if np.unique(counts).size > 1:
            raise InvalidArgumentError(f"{source}: at width {x:g} the replicas of column {column!r} hold different "
                                       f"numbers of rows ({column} {names[np.argmin(counts)]}: {counts.min()} "
                                       f"row(s), {column} {names[np.argmax(counts)]}: {counts.max()} row(s)); give "
                                       f"each replica the same components (a row written twice by a resumed run: "
                                       f"drop it), or --replica none to read every row as a replica")
        # each replica's rows together, in the table's order (a stable sort by replica), as a row of
        # (replicas, components), then turned to (components, replicas)
        by = np.argsort(inverse, kind="stable")
        blocks = [g[k][by].reshape(names.size, -1).T for g in groups]
        # the replicas in one order whatever their labels (by their values, the first row first), so
        # that runs renamed give the same interval as the bootstrap draws them by position
        order = np.lexsort(np.concatenate(blocks, axis=0)[::-1])
        for j, arr in enumerate(blocks):
            arr = arr[:, order]
            out[j].append(arr[0] if arr.shape[0] == 1 else arr)
    return out


def _grouped(width: np.ndarray, columns: list[np.ndarray], source: str, need: int, by_value: bool = True):
    """The distinct widths, each column's rows at each width, and those rows' places in the table.
    ``by_value``: each width's rows sorted by value (the columns in turn); else in the table's order
    (where rows of one replica are its components, whose order says which is which)."""
    if np.any(width <= 0):
        i = int(np.argmax(width <= 0))
        raise DataFileError(f"{source}, row {i}: width {width[i]:g} is not positive")
    xs = np.unique(width)
    if xs.size < 3:
        raise InvalidArgumentError(f"{source}: {xs.size} distinct width(s) ({', '.join(f'{x:g}' for x in xs)}); an "
                                   f"exponent and its interval need at least 3 (4 for a tolerance for next-order "
                                   f"terms, and so for a PASS)")
    # rows that are replicas: in one order whatever the table's (by value), so that the bootstrap,
    # which draws them by position, gives the same interval for the same rows in any order. Rows that
    # are components keep the table's order: their replicas are put in order by value
    # (_by_replica), and within a replica the order says which component is which (the spread is
    # pooled over components compared across replicas; sorted by value, they would be order statistics)
    groups, rows = [[] for _ in columns], []
    for x in xs:
        at = np.flatnonzero(width == x)
        if by_value:
            at = at[np.lexsort([c[at] for c in reversed(columns)])]
        rows.append(at)
        for g, c in zip(groups, columns):
            g.append(c[at])
    few = [(x, int((width == x).sum())) for x in xs if (width == x).sum() < need]
    if few:
        raise InvalidArgumentError(f"{source}: " + ", ".join(f"width {x:g} has {k} row(s)" for x, k in few)
                                   + f"; the reading needs at least {need} replicas (rows) per width")
    return xs, groups, rows


def check_rate(df, claim: RateClaim | str, *, reading: str = "fluctuation", width: str = "width",
               value: str = "value", minus: str | None = None, reference=None, confidence: float = 0.95,
               n_resamples: int = 2000, seed: int = 0, source: str = "table",
               replica: str | None = "auto") -> RateCheck:
    r"""Estimate the exponent of ``reading`` of column ``value`` against column ``width`` and judge
    ``claim`` by :func:`sde_scales.rates.verdict`.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per replica per width (per width for ``reading="values"``).
    claim : RateClaim or str
        ``Theta:P``, ``O:P`` or ``separation:D`` (the last needs ``minus``).
    reading : str
        One of :data:`READINGS` (module docstring).
    minus : str or None
        For a separation: the second column, whose fluctuation exponent is subtracted.
    reference : float, "richardson", "widest" or "differences"
        The bias reading's limit value, or ``"differences"`` for none (the differences of successive
        widths' means, widths in a constant ratio).
    confidence, n_resamples, seed
        The bootstrap's level, resamples and seed (the same seed gives the same interval).
    replica : str or None
        The column naming the run each row comes from; a run's several rows are components of one
        replica (several tracked weights of one network), pooled and resampled together, not
        independent replicas, which would make the interval too narrow. ``"auto"``: the first of
        :data:`REPLICA_COLUMNS` the table has; None: every row a replica.
    """
    claim = claim if isinstance(claim, RateClaim) else RateClaim.parse(claim)
    if reading not in READINGS:
        raise InvalidArgumentError(f"reading {reading!r}; use one of {', '.join(READINGS)}")
    sep = claim.kind is RateKind.SEPARATION
    if sep != (minus is not None):
        raise InvalidArgumentError("a separation claim compares two columns of the same replicas: give the second "
                                   "with --minus COLUMN (p_value - p_minus is judged)" if sep else
                                   f"--minus {minus} is for a separation claim (separation:D); {claim.text or claim.kind.value} "
                                   f"judges one column")
    if sep and reading != "fluctuation":
        raise InvalidArgumentError(f"a separation is judged on the fluctuation reading (the ratio of the two columns' "
                                   f"spreads); leave out --reading {reading}")
    if replica == "auto":
        replica = next((c for c in REPLICA_COLUMNS if c in df.columns), None) if reading != "values" else None
    elif replica == "none":
        replica = None
    if (reading == "bias") != (reference is not None):
        raise InvalidArgumentError("the bias reading needs --reference (a number, richardson, widest, or "
                                   "differences where the limit is not known)"
                                   if reading == "bias" else "--reference is for the bias reading; give --reading bias "
                                   "or leave --reference out")
    if isinstance(reference, str) and reference not in BIAS_REFERENCES:
        try:
            reference = float(reference)
        except ValueError:
            raise InvalidArgumentError(f"--reference {reference!r}; give a number, richardson, widest or "
                                       f"differences") from None
    # one column in two roles gave a zero spread or one replica per width
    distinct_columns([("--width", width), ("--value", value)] + ([("--minus", minus)] if sep else [])
                     + ([("--replica", replica)] if replica is not None else []), source, df.columns)
    w = _column(df, width, "--width", source)
    cols = [_column(df, value, "--value", source)] + ([_column(df, minus, "--minus", source)] if sep else [])
    need = 1 if reading == "values" else 3
    xs, groups, rows = _grouped(w, cols, source, need, by_value=replica is None)
    components = {float(x): 1 for x in xs}
    n_rep = {float(x): int(g.size) for x, g in zip(xs, groups[0])}
    if replica is not None:
        lab = label_column(df, replica, source, flag="--replica, or --replica none: every row a replica",
                           what="replica")
        groups = _by_replica(groups, [lab[at] for at in rows], xs, source, replica)
        components = {float(x): int(g.shape[0]) if g.ndim == 2 else 1 for x, g in zip(xs, groups[0])}
        n_rep = {float(x): int(g.shape[-1]) for x, g in zip(xs, groups[0])}
        few = [x for x, r in n_rep.items() if r < need]
        if few:
            raise InvalidArgumentError(f"{source}: width {few[0]:g} has {n_rep[few[0]]} replica(s) of column "
                                       f"{replica!r}; the reading needs at least {need}")
    kw = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    if reading == "values":
        dup = [x for x, g in zip(xs, groups[0]) if g.size > 1]
        if dup:
            raise InvalidArgumentError(f"{source}: the values reading takes one exact value per width; width "
                                       f"{dup[0]:g} has {groups[0][list(xs).index(dup[0])].size} rows (replicas: use "
                                       f"--reading fluctuation, bias or mean)")
        est = rates.exponent_from_values(xs, np.array([g[0] for g in groups[0]]), confidence=confidence)
    else:
        try:
            est = _replica_estimate(xs, groups, reading, sep, reference, value, source, kw)
        except InvalidArgumentError as exc:  # what the data cannot give, said with the file it came from
            msg = str(exc)
            raise InvalidArgumentError(msg if msg.startswith(source) else f"{source}: {msg}") from None
    v = rates.verdict(claim.kind, claim.exponent, est)
    return RateCheck(claim, reading, est, v, n_rep, replica, components, reference)


def _replica_estimate(xs, groups, reading: str, sep: bool, reference, value: str, source: str, kw: dict):
    """The exponent estimate of a reading with replicas (every reading but ``values``)."""
    if sep:
        return rates.exponent_difference(xs, groups[0], groups[1], **kw)
    if reading == "fluctuation":
        return rates.fluctuation_exponent(xs, groups[0], **kw)
    if reading == "bias":
        return rates.bias_exponent(xs, groups[0], reference, **kw)
    means = [float(g.mean()) for g in groups[0]]
    if min(means) <= 0:
        k = int(np.argmin(means))
        raise InvalidArgumentError(f"{source}: the mean of {value!r} at width {xs[k]:g} is {means[k]:.4g}; the mean "
                                   f"reading needs a positive quantity (use --reading bias with --reference for a "
                                   f"distance from a limit)")
    several = any(g.ndim == 2 for g in groups[0])  # (components, [batch,] replicas): their mean too
    stat = (lambda s: s.mean(axis=-1).mean(axis=0)) if several else (lambda s: s.mean(axis=-1))
    return rates.statistic_exponent(xs, groups[0], stat, reading="mean", **kw)


def store_table(root, variable: str, *, param: str = "mup", lr: float | None = None, fraction: float = 1.0):
    """The long table (columns ``width``, ``replica`` and ``variable``, its values) of ``variable`` in
    the run store at ``root`` (``sde-scales sweep --out``), read by :func:`sde_scales.analysis.width.width_samples`: the runs of
    ``param`` at ``lr`` (None: the store's one learning rate of ``param``), finished runs only, at
    the last logged step at or before ``fraction`` of training. A run is a replica (labelled by its
    seed, which the runs of one width and learning rate do not share); a micro-variable's tracked
    weights are rows of their run.
    Returns (table, the :class:`~sde_scales.analysis.width.WidthSamples`). A folder that is no store,
    a store without finished runs, and a variable it does not log are refused by name."""
    from pathlib import Path

    import pandas as pd

    from sde_scales.analysis.width import width_samples
    from sde_scales.train.store import RunStore

    root = Path(root)
    st = RunStore.existing(root, need_runs=True)
    runs, traj = st.read()  # the same runs in both tables
    ws = width_samples(runs, traj, variable, param=param, lr=lr, fraction=fraction)
    seed_of = dict(zip(runs.run_id.astype(str), runs.seed))
    frames = []
    for w, a, ids in zip(ws.widths, ws.samples, ws.run_ids):
        a = np.atleast_2d(a)  # (tracked weights, runs); a macro-variable is one row of runs
        seeds = np.array([seed_of[r] for r in ids])
        frames.append(pd.DataFrame({"width": w, "replica": np.tile(seeds, a.shape[0]), variable: a.ravel()}))
    if not frames:
        raise InvalidArgumentError(f"--store {root}: no finished {param} run at lr {ws.lr:g} (every run diverged: "
                                   f"{sum(ws.diverged)})")
    return pd.concat(frames, ignore_index=True), ws


def format_check(check: RateCheck, value: str, minus: str | None = None) -> str:
    """The check in words: the per-width table, the exponent and its interval, the local slopes,
    the verdict with its reason, rule and tolerance."""
    est, v = check.estimate, check.verdict
    what = {"fluctuation": "standard deviation over replicas", "bias": "|replica mean - reference|",
            "mean": "replica mean", "values": "value"}[check.reading]
    if check.reading == "bias" and check.reference == "differences":
        what = "|replica mean at n - at the next width|"
    if minus is not None:
        what = f"sd({value}) / sd({minus})"
    lines = [f"{what} of {value!r} against width ({check.reading} reading)"]
    if check.replica_column is not None:
        j = sorted(set((check.components or {}).values()))
        lines.append(f"  replicas: the runs of column {check.replica_column!r}"
                     + (f", {j[0]} rows (components) each, pooled" if j and j[-1] > 1 else "")
                     + " (--replica none: every row a replica)")
    lines.append(f"  {'width':>10s} {'replicas':>9s} {'quantity':>12s} {'std err':>10s}")
    for x, q, e in zip(est.x, est.values, est.errors):
        err = "-" if not np.isfinite(e) else f"{e:.4g}"
        lines.append(f"  {x:10g} {check.replicas.get(float(x), 0):9d} {q:12.5g} {err:>10s}")
    lines.append(f"exponent {est.exponent:+.4f}, {100 * est.confidence:g}% interval [{est.ci[0]:+.4f}, {est.ci[1]:+.4f}]")
    c = est.curvature
    if c is not None:
        lines.append(f"local slopes {c.slope_min:+.3f} at n = {est.x[0]:g} and {c.slope_max:+.3f} at n = {est.x[-1]:g} "
                     f"(change {c.change:+.3f} [{c.change_ci[0]:+.3f}, {c.change_ci[1]:+.3f}])")
    for n in est.notes:
        lines.append(f"note: {n}")
    lines.append(f"claim {check.claim.statement}: {v.verdict.value}")
    lines.append(f"  reason: {v.reason}")
    lines.append(f"  rule: {v.rule}")
    if v.tolerance_source:
        lines.append(f"  tolerance: {v.tolerance_source}")
    return "\n".join(lines)


def run_rate(args) -> int:
    """``sde-scales rate``: read, judge, print; ``--json``, ``--plot``; with ``--strict`` exit 1
    unless the verdict is PASS."""
    from sde_scales.atomic import write_json_atomic
    from sde_scales.verdicts import Verdict

    claim = RateClaim.parse(args.claim)
    rates.check_confidence(args.confidence)
    if args.reading == "values":
        # they were ignored: exact values get a Student t interval, with no resampling to set
        given = [f for f, v in (("--resamples", args.resamples), ("--seed", args.seed)) if v is not None]
        if given:
            raise InvalidArgumentError(f"{' and '.join(given)} {'sets' if len(given) == 1 else 'set'} the bootstrap, "
                                       f"and the values reading has none (one exact value per width: a Student t "
                                       f"interval); leave {' and '.join(given)} out")
    args.resamples = 2000 if args.resamples is None else args.resamples
    args.seed = 0 if args.seed is None else args.seed
    rates.check_resamples(args.resamples, "--resamples")
    store = getattr(args, "store", None)
    if (args.table is None) == (store is None):
        raise InvalidArgumentError("give a TABLE of measurements or --store DIR (a run store of sde-scales sweep) "
                                   "with --variable, not both" if store else "give a TABLE of measurements, or "
                                   "--store DIR with --variable NAME to read a run store of sde-scales sweep")
    from_store = None
    if store is not None:
        if args.variable is None:
            raise InvalidArgumentError("--store needs --variable NAME: eval_loss, grad_norm, act_rms, "
                                       "w<layer>_value or w<layer>_disp (add _raw for raw units)")
        if args.minus is not None:
            raise InvalidArgumentError(f"--minus {args.minus} reads a second column of a table; a store gives one "
                                       f"variable: write the two as a table to judge a separation")
        named = [f"{flag} {v}" for flag, v, default in (("--width", args.width, "width"), ("--value", args.value, "value"),
                                                         ("--replica", args.replica, "auto")) if v != default]
        if named:
            raise InvalidArgumentError(f"{', '.join(named)} names a column of a table; a store's columns are its "
                                       f"widths, runs and --variable: leave {'them' if len(named) > 1 else 'it'} out")
        df, ws = store_table(store, args.variable, param=args.param or "mup", lr=args.lr,
                             fraction=1.0 if args.fraction is None else args.fraction)
        source, width, value, replica = str(store), "width", args.variable, "replica"
        from_store = {"store": str(store), "variable": args.variable, "scale": ws.scale,
                      "description": ws.description, "param": ws.param, "lr": ws.lr, "fraction": ws.fraction,
                      "steps": dict(zip(map(str, ws.widths), ws.steps)), "diverged_left_out": int(sum(ws.diverged))}
        print(f"run store {store}: {ws.description} ({args.variable}), {ws.param} at lr {ws.lr:g}, at the last "
              f"logged step at or before {ws.fraction:g} of training (steps {sorted(set(ws.steps))}); "
              f"{sum(ws.diverged)} diverged run(s) left out")
    else:
        for flag, v in (("--variable", args.variable), ("--param", args.param), ("--lr", args.lr),
                        ("--fraction", args.fraction)):
            if v is not None:
                raise InvalidArgumentError(f"{flag} selects from a run store; it needs --store DIR (a TABLE's "
                                           f"columns are named with --width, --value and --replica)")
        df, source = read_table(args.table), str(args.table)
        width, value, replica = args.width, args.value, args.replica
    check = check_rate(df, claim, reading=args.reading, width=width, value=value, minus=args.minus,
                       reference=args.reference, confidence=args.confidence, n_resamples=args.resamples,
                       seed=args.seed, source=source, replica=replica)
    print(format_check(check, value, args.minus))
    doc = dict(check.to_dict(), file=None if store else str(args.table), store=from_store,
               columns={"width": width, "value": value, "minus": args.minus},
               reference=args.reference, seed=None if args.reading == "values" else args.seed,
               resamples=None if args.reading == "values" else args.resamples)
    if args.json:
        print(f"JSON: {write_json_atomic(args.json, doc)}")
    if args.plot:
        from sde_scales.plots import rate_plot, save_figure

        est = check.estimate
        label = {"fluctuation": f"sd of {value}", "bias": f"|mean of {value} - reference|",
                 "mean": f"mean of {value}", "values": value}[check.reading]
        if check.reading == "bias" and check.reference == "differences":
            label = f"|mean of {value} at n - at the next width|"
        if args.minus is not None:
            label = f"sd({value}) / sd({args.minus})"
        fig = rate_plot([(est, label)], predicted=claim.exponent, predicted_label=f"claimed: {claim.statement}",
                        ylabel=label, title=f"{claim.statement}: {check.verdict.verdict.value}")
        print(f"plot: {save_figure(fig, args.plot)}")
    return 1 if args.strict and check.verdict.verdict is not Verdict.PASS else 0
