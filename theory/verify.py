"""Run claims, judge every kind of evidence, print a grouped table, write strict JSON, draw plots.

``sde-scales verify [--quick] [--claims ID ...] [--kinds KIND ...] [--store PATH] [--json PATH]
[--plots DIR] [--strict]``

One row per claim and kind of evidence (training evidence adds rows for more variables and for
the control parametrizations). Every row is judged by its own rule against the claim's kind and
exponent: symbolic rows by comparing the derived exponent with the claim
(:func:`judge_symbolic`), numeric rows by :func:`sde_scales.rates.verdict`. A claim *holds* when
every primary row PASSes; ``--strict`` exits 1 when any selected claim does not hold.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from sde_scales.atomic import write_json_atomic
from sde_scales.errors import InvalidArgumentError
from sde_scales.rates import RateKind, Verdict, verdict
from theory.checks import Measurement, Settings
from theory.claims import CheckKind, Claim, Group, SymbolicResult
from theory.paper import CLAIMS

__all__ = ["EvidenceResult", "judge", "judge_symbolic", "run_claims", "format_table", "main_from_args",
           "claim_holds", "to_json", "unjudged"]

SYMBOLIC_RULE = {
    RateKind.BIG_O: "O(n^p): PASS iff the derived exponent <= p",
    RateKind.THETA: "Theta(n^p): PASS iff the derived exponent = p and the derived rate is tight (a Theta rate)",
    RateKind.SEPARATION: "separation d: PASS iff the derived difference of exponents = d",
    RateKind.BOUND: "bound B: PASS iff the derived value < B",
}


@dataclass(frozen=True)
class EvidenceResult:
    """The verdict of one kind of evidence (one variable, one parametrization) for one claim."""

    claim: Claim
    kind: str
    verdict: Verdict | None
    reason: str
    rule: str = ""
    tolerance: float | None = None
    tolerance_source: str = ""
    measurement: Measurement | None = None
    symbolic: SymbolicResult | None = None
    what: str = ""
    seconds: float = 0.0
    figure: str | None = None
    #: The exponents the rate rule allows (:attr:`sde_scales.rates.VerdictResult.allowed`).
    allowed: tuple | None = None

    @property
    def role(self) -> str:
        return self.measurement.role if self.measurement is not None else "primary"

    @property
    def variable(self) -> str:
        if self.measurement is not None:
            return self.measurement.variable
        return "derivation" if self.kind == CheckKind.SYMBOLIC else ""

    @property
    def param(self) -> str:
        return self.measurement.param if self.measurement is not None else ""

    def to_dict(self) -> dict:
        m = self.measurement
        est = m.estimate if m is not None else None
        d = {
            "kind": self.kind, "variable": self.variable, "param": self.param or None, "role": self.role,
            "measured_exponent": None, "ci": None, "verdict": None if self.verdict is None else self.verdict.value,
            "reason": self.reason, "rule": self.rule, "tolerance": self.tolerance,
            "tolerance_source": self.tolerance_source or None, "widths": None, "n_replicas": None,
            "model": None if m is None else m.model, "what": self.what, "seconds": self.seconds,
            "figure": self.figure,
            "allowed_exponents": None if self.allowed is None else [list(iv) for iv in self.allowed],
        }
        if self.symbolic is not None:
            s = self.symbolic
            d["measured_exponent"] = None if (s.exponent is None or not s.derived) else float(s.exponent)
            d["derived_exponent"] = None if (s.exponent is None or not s.derived) else str(s.exponent)
            d["derivation"] = s.detail
            d["tight"] = s.tight
        if est is not None:
            d.update(measured_exponent=est.exponent, ci=list(est.ci), widths=est.x.tolist(), n_replicas=est.n_replicas,
                     points={"x": est.x.tolist(), "values": est.values.tolist(), "errors": est.errors.tolist()},
                     curvature=None if est.curvature is None else est.curvature.to_dict(), notes=list(est.notes))
        if m is not None and m.extra:
            d["extra"] = m.extra
        return d


def select(ids: list[str] | None) -> list[Claim]:
    if not ids:
        return list(CLAIMS)
    known = {c.id: c for c in CLAIMS}
    missing = [i for i in ids if i not in known]
    if missing:
        raise InvalidArgumentError(f"unknown claim id(s) {missing}; known: {', '.join(known)} (see --list)")
    return [known[i] for i in ids]


def judge(claim: Claim, m: Measurement) -> tuple[Verdict, str, str, float | None, str, tuple | None]:
    """Verdict of one numeric measurement: the rate rule, then the measurement's own conditions;
    with the rule, the tolerance, its source and the exponents the rule allows."""
    if m.estimate is None:
        return Verdict.INCONCLUSIVE, m.inconclusive or "no estimate", "no estimate", None, "", None
    res = verdict(claim.kind, claim.exponent, m.estimate, max_width=claim.max_ci_width, floor=m.floor,
                  floor_reason=m.floor_reason)
    v, reason = res.verdict, res.reason
    if m.extra_fail is not None:
        v, reason = Verdict.FAIL, f"{m.extra_fail}; rate: {reason}"
    elif m.inconclusive is not None:
        reason = f"{m.inconclusive}; the rate alone would give {v.value}: {reason}"
        v = Verdict.INCONCLUSIVE
    for note in m.estimate.notes + ((m.note,) if m.note else ()):
        reason += f"; note: {note}"
    return v, reason, res.rule, res.tolerance, res.tolerance_source, res.allowed


def judge_symbolic(claim: Claim, sres: SymbolicResult) -> tuple[Verdict | None, str]:
    """What the derivation says of the claim: its exponent against the claim's kind and exponent
    (exact rational comparison). An entry that is not derived gets no verdict."""
    if not sres.derived:
        return None, "not derived: " + sres.detail
    p = sp.nsimplify(claim.exponent)
    e = sres.exponent
    if e is None:
        ok = claim.kind is RateKind.BIG_O
        return (Verdict.PASS if ok else Verdict.FAIL), "the quantity is exactly zero; " + sres.detail
    e = sp.nsimplify(e)
    head = f"derived exponent {e} against claimed {p}: "
    if claim.kind is RateKind.BIG_O:
        return (Verdict.PASS if bool(e <= p) else Verdict.FAIL), head + sres.detail
    if bool(sp.Eq(e, p)):
        if sres.tight is False:
            return Verdict.INCONCLUSIVE, head + "equal, but the derivation gives only an upper bound; " + sres.detail
        return Verdict.PASS, head + sres.detail
    return Verdict.FAIL, head + sres.detail


def _measurements(out) -> list[Measurement]:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def run_claims(claims: list[Claim], settings: Settings, progress: bool = True,
               kinds: tuple[str, ...] = CheckKind.ALL) -> list[EvidenceResult]:
    """Every selected kind of evidence of every claim, judged."""
    from tqdm.auto import tqdm

    jobs = [(c, e) for c in claims for e in c.evidence if e.kind in kinds]
    results = []
    # progress=True: bars on a terminal only (disable=None), so logs of scripts and CI stay readable
    bar = tqdm(jobs, desc="evidence", unit="check", disable=None if progress else True, file=sys.stderr)
    for claim, ev in bar:
        bar.set_postfix_str(f"{claim.id} ({ev.kind})")
        t = time.perf_counter()
        if ev.kind == CheckKind.SYMBOLIC:
            sres = ev.check(claim)
            v, reason = judge_symbolic(claim, sres)
            results.append(EvidenceResult(claim, ev.kind, v, reason, SYMBOLIC_RULE[claim.kind], symbolic=sres,
                                          what=ev.what, seconds=time.perf_counter() - t))
            continue
        ms = _measurements(ev.check(settings))
        secs = (time.perf_counter() - t) / len(ms)
        for m in ms:
            v, reason, rule, tol, src, allowed = judge(claim, m)
            results.append(EvidenceResult(claim, ev.kind, v, reason, rule, tol, src, m, what=ev.what, seconds=secs,
                                          allowed=allowed))
    return results


def claim_holds(results: list[EvidenceResult], claim: Claim) -> bool:
    """A claim holds when every primary row of it PASSes."""
    prim = [r for r in results if r.claim.id == claim.id and r.role == "primary"]
    return bool(prim) and all(r.verdict is Verdict.PASS for r in prim)


def unjudged(results: list[EvidenceResult], claims: list[Claim]) -> list[Claim]:
    """The claims among ``claims`` with no row in ``results``: none of their evidence is of the
    kinds the run selected (``--kinds``, ``--no-training``), so the run says nothing of them.
    They do not hold (``--strict`` counts them so), and their JSON ``holds`` is null, not false."""
    seen = {r.claim.id for r in results}
    return [c for c in claims if c.id not in seen]


def _measured(r: EvidenceResult) -> str:
    if r.symbolic is not None:
        if not r.symbolic.derived:
            return "not derived"
        return "exactly 0" if r.symbolic.exponent is None else f"derived {r.symbolic.exponent}"
    est = r.measurement.estimate if r.measurement else None
    if est is None or not math.isfinite(est.exponent):
        return "-"
    if not (math.isfinite(est.ci[0]) and math.isfinite(est.ci[1])):
        return f"{est.exponent:+.3f} [no interval]"
    return f"{est.exponent:+.3f} [{est.ci[0]:+.3f}, {est.ci[1]:+.3f}]"


def format_table(results: list[EvidenceResult]) -> str:
    """Rows grouped by claim group; then one reason line per row."""
    head = ("claim", "evidence", "variable", "predicted", "measured [95% CI]", "tol", "verdict")
    body = []
    for group in Group:
        rs = [r for r in results if r.claim.group is group]
        if not rs:
            continue
        body.append((group.title, None))
        for r in rs:
            ev = r.kind + ("" if r.role == "primary" else f" ({r.role})")
            var = r.variable + (f" [{r.param}]" if r.param and r.kind == CheckKind.TRAINING else "")
            tol = "-" if r.tolerance is None else f"{r.tolerance:.3f}"
            body.append((None, (r.claim.id, ev, var, r.claim.predicted, _measured(r), tol,
                                "-" if r.verdict is None else r.verdict.value)))
    cells = [head] + [row for _, row in body if row is not None]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    lines = [fmt(head), "  ".join("-" * w for w in widths)]
    for title, row in body:
        lines.append(f"\n== {title}" if title is not None else fmt(row))
    lines.append("")
    for r in results:
        tag = f"{r.claim.id} [{r.kind}{'' if r.role == 'primary' else ', ' + r.role}: {r.variable}"
        tag += f", {r.param}]" if r.param and r.kind == CheckKind.TRAINING else "]"
        lines.append(f"{tag}: {'-' if r.verdict is None else r.verdict.value}: {r.reason}")
    return "\n".join(lines)


def trained_here(results: list[EvidenceResult]) -> list[str]:
    """The claims among ``results`` whose training rows come from networks the check trains itself
    (:data:`theory.checks.TRAINS_ITS_OWN`), not from a ``--store``."""
    from theory.checks import TRAINS_ITS_OWN

    return sorted({r.claim.id for r in results if r.kind == CheckKind.TRAINING
                   and any(e.kind == CheckKind.TRAINING and e.check in TRAINS_ITS_OWN for e in r.claim.evidence)})


def to_json(results: list[EvidenceResult], claims: list[Claim], seconds: float, settings: Settings,
            trained: list[str] | None = None) -> dict:
    """The run as strict JSON: per claim its verdict and evidence rows. ``trained``: the claims
    whose training rows the checks trained themselves (:func:`trained_here`; computed where not
    given)."""
    out = []
    silent = {c.id for c in unjudged(results, claims)}
    for c in claims:
        d = c.to_dict()
        # null: no evidence of the selected kinds, so the run neither confirms nor refutes it
        d["holds"] = None if c.id in silent else claim_holds(results, c)
        d["evidence"] = [r.to_dict() for r in results if r.claim.id == c.id]
        out.append(d)
    return {"claims": out, "seconds": seconds, "quick": settings.quick, "seed": settings.seed,
            "store": settings.store,
            # with a store: the claims whose training rows are not the store's (their checks train
            # their own networks)
            "trained_here": (trained if trained is not None else trained_here(results)) if settings.store else [],
            "columns": {"holds": "per claim: true when every primary row PASSes; null when the run has no row of it "
                                 "(no evidence of the selected kinds)",
                        "measured_exponent": "fitted exponent (symbolic rows: the derived one)",
                        "ci": "95% percentile-bootstrap interval (exact values: Student t)",
                        "tolerance": "allowance for next-order terms, measured from the change of the local slope",
                        "verdict": "PASS / FAIL / INCONCLUSIVE by 'rule'; null where nothing was derived",
                        "role": "primary (the claim is judged on it), additional variable, or control "
                                "parametrization"}}


def _param_label(param: str) -> str:
    from sde_scales.parametrization import by_name

    try:
        return by_name(param).name
    except ValueError:
        return param


def _bound_plot(rows, claim):
    """A statistic's profile (``estimate.x``, ``estimate.values``) per row against the claimed bound."""
    from sde_scales.plots import plt

    fig, ax = plt.subplots(figsize=(5.6, 3.8), constrained_layout=True)
    for i, r in enumerate(rows):
        est = r.measurement.estimate
        ax.plot(est.x, est.values, color=f"C{i}", lw=1.4,
                label=f"{r.variable}: max {est.exponent:.2f} [{est.ci[0]:.2f}, {est.ci[1]:.2f}], {r.verdict.value}")
    ax.axhline(claim.exponent, color="k", ls="--", lw=1, label=f"claimed bound {claim.exponent:g}")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.01 * claim.exponent)  # a statistic that is exactly 0 somewhere (Delta at x = 1)
    ax.set_xlabel(rows[0].measurement.plot_xlabel)
    ax.set_ylabel(rows[0].measurement.plot_ylabel)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return fig


def draw_plots(results: list[EvidenceResult], out_dir: str | Path) -> list[EvidenceResult]:
    """One figure per claim and numeric kind of evidence (the primary row with its controls);
    returns the results with their figure paths set."""
    from dataclasses import replace

    from sde_scales.plots import rate_plot, save_figure

    out = list(results)
    keys = []
    for r in results:
        if r.measurement is not None and (r.claim.id, r.kind) not in keys:
            keys.append((r.claim.id, r.kind))
    for cid, kind in keys:
        rows = [r for r in results if r.claim.id == cid and r.kind == kind and r.measurement is not None
                and r.measurement.estimate is not None and r.role in ("primary", "control")]
        if not rows:
            continue
        claim = rows[0].claim
        m0 = rows[0].measurement
        if claim.kind is RateKind.BOUND:  # a statistic's profile, not a rate against width
            fig = _bound_plot(rows, claim)
        else:
            # several rows of one parametrization (the coordinate check's layers): each named by its
            # variable in the legend
            several = len({r.measurement.param for r in rows}) < len(rows)
            series = [(r.measurement.estimate, (_param_label(r.measurement.param)
                                                + (f", {r.measurement.variable}" if several else "")
                                                if kind == CheckKind.TRAINING else "measured")) for r in rows]
            fig = rate_plot(series, predicted=claim.exponent, xlabel=m0.plot_xlabel, ylabel=m0.plot_ylabel,
                            predicted_label=("claimed difference" if claim.kind is RateKind.SEPARATION else "claimed")
                            + f" {claim.exponent:g}")
        path = save_figure(fig, Path(out_dir) / f"{cid}--{kind}.png")
        for i, r in enumerate(out):
            if any(r is x for x in rows):
                out[i] = replace(r, figure=str(path))
    return out


#: verify's options that run or judge checks, which ``--list`` runs none of (flag, attribute)
_RUN_ONLY = (("--quick", "quick"), ("--store", "store"), ("--train-dir", "train_dir"), ("--no-training", "no_training"),
             ("--plots", "plots"), ("--seed", "seed"), ("--symbolic-only", "symbolic_only"), ("--strict", "strict"))


def _list_claims(args, claims: list[Claim]) -> int:
    """``verify --list``: the selected claims (``--claims``; with ``--kinds``, those with evidence of
    one of these kinds), one line each, and with ``--json`` as strict JSON (each claim's record as
    the verdict JSON writes it, without verdicts). Options that run checks are refused: they were
    ignored, and ``--list --json`` wrote nothing."""
    given = [flag for flag, attr in _RUN_ONLY if getattr(args, attr, None) not in (None, False)]
    if given:
        raise InvalidArgumentError(f"--list prints the claims and runs no check, so {' and '.join(given)} would do "
                                   f"nothing; leave {'it' if len(given) == 1 else 'them'} out (--claims, --kinds and "
                                   f"--json apply to the list)")
    if args.kinds:
        claims = [c for c in claims if any(k in c.kinds for k in args.kinds)]
        if not claims:
            raise InvalidArgumentError(f"none of the selected claims has evidence of kind {', '.join(args.kinds)}; "
                                       f"choose other --kinds or --claims")
    for c in claims:
        print(f"{c.id:26s} {c.group.value:12s} {c.predicted:36s} {'/'.join(c.kinds):30s} {c.statement}")
    if args.json:
        print(f"JSON: {write_json_atomic(args.json, {'claims': [c.to_dict() for c in claims]})}")
    return 0


def _kinds_by_claim(claims: list[Claim]) -> str:
    """``id: kind, kind; id: kind``: the kinds of evidence each claim has, for the messages about
    claims without evidence of the selected kinds."""
    return "; ".join(f"{c.id}: {', '.join(c.kinds)}" for c in claims)


def main_from_args(args) -> int:
    claims = select(args.claims)
    if args.list:
        return _list_claims(args, claims)
    if args.seed is None:
        args.seed = 0
    kinds = tuple(args.kinds) if args.kinds else CheckKind.ALL
    if args.symbolic_only:
        if args.kinds and tuple(args.kinds) != (CheckKind.SYMBOLIC,):
            # --kinds training was dropped in silence, and symbolic rows printed instead
            raise InvalidArgumentError(f"--symbolic-only and --kinds {' '.join(args.kinds)} contradict each other; "
                                       f"give one of them")
        kinds = (CheckKind.SYMBOLIC,)
    if args.no_training:
        if args.kinds and CheckKind.TRAINING in args.kinds:
            raise InvalidArgumentError(f"--no-training and --kinds {' '.join(args.kinds)} contradict each other; "
                                       f"give one of them")
        kinds = tuple(k for k in kinds if k != CheckKind.TRAINING)
    if args.store and CheckKind.TRAINING not in kinds:
        # it was ignored, and the summary still said "training evidence from" the store
        raise InvalidArgumentError(f"--store {args.store} gives the training rows, and no training row is selected "
                                   f"({'--symbolic-only' if args.symbolic_only else '--no-training' if args.no_training else '--kinds ' + ' '.join(kinds)}); "
                                   f"leave --store out, or select the training rows")
    if args.train_dir and (args.store or CheckKind.TRAINING not in kinds):
        # it was ignored: nothing is trained into it with a store, or without training rows
        why = (f"--store {args.store} gives the training rows" if args.store
               else "no training row is selected")
        raise InvalidArgumentError(f"--train-dir {args.train_dir} keeps the built-in training's run store, and {why}; "
                                   f"leave --train-dir out")
    if not any(k in c.kinds for c in claims for k in kinds):
        # a run of no rows printed "0 of N claims hold" and exited 0
        have = _kinds_by_claim(claims)
        raise InvalidArgumentError(f"none of the selected claims has evidence of kind {', '.join(kinds)} ({have}); "
                                   f"choose other --kinds or --claims")
    started = time.perf_counter()
    settings = Settings(quick=args.quick, seed=args.seed, store=args.store, train_dir=args.train_dir,
                        progress=not args.no_progress)
    results = run_claims(claims, settings, progress=not args.no_progress, kinds=kinds)
    if args.plots:
        results = draw_plots(results, args.plots)
    seconds = time.perf_counter() - started
    print(format_table(results))
    held = [c for c in claims if claim_holds(results, c)]
    size = "symbolic only" if kinds == (CheckKind.SYMBOLIC,) else ("quick run" if args.quick else "full run")
    own = trained_here(results) if args.store else []
    src = f", training evidence from {args.store}" if args.store else ""
    if own:
        src += f"; {', '.join(own)} trained its own networks, as always: a store keeps no first steps"
    print(f"\n{len(held)} of {len(claims)} claims hold (every primary row PASS); {len(results)} rows in "
          f"{seconds:.1f} s ({size}, seed {args.seed}{src})")
    silent = unjudged(results, claims)
    if silent:
        print(f"not judged: {', '.join(c.id for c in silent)} (no evidence of kind {', '.join(kinds)}: "
              f"{_kinds_by_claim(silent)}); counted as not holding, "
              f"and 'holds' is null in the JSON")
    if args.json:
        print(f"JSON: {write_json_atomic(args.json, to_json(results, claims, seconds, settings, own))}")
    if args.plots:
        print(f"plots: {len({r.figure for r in results if r.figure})} files in {args.plots}")
    if args.strict and len(held) < len(claims):
        return 1
    return 0
