"""Run claims, collect verdicts into a table and JSON, draw the rate plots.

``sde-scales verify [--quick] [--claims ID ...] [--json PATH] [--plots DIR] [--seed N]``
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sde_scales.atomic import write_text_atomic
from sde_scales.errors import InvalidArgumentError
from sde_scales.rates import RateKind, Verdict, verdict
from theory.checks import Measurement, Settings
from theory.claims import Claim
from theory.paper import CLAIMS

__all__ = ["ClaimResult", "run_claims", "format_table", "main_from_args"]


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdict: Verdict
    reason: str
    measurement: Measurement | None = None
    symbolic: object = None  # SymbolicResult
    seconds: float = 0.0
    rule: str = ""
    symbolic_verdict: Verdict | None = None
    agree: bool | None = None

    @property
    def symbolic_exponent(self):
        return None if self.symbolic is None else self.symbolic.exponent

    def to_dict(self) -> dict:
        est = self.measurement.estimate if self.measurement else None
        d = {
            "id": self.claim.id,
            "statement": self.claim.statement,
            "source": self.claim.source,
            "predicted": self.claim.predicted,
            "kind": self.claim.kind.value,
            "reading": self.claim.reading,
            "predicted_exponent": self.claim.exponent,
            "measured_exponent": None if est is None else est.exponent,
            "ci": None if est is None else list(est.ci),
            "verdict": self.verdict.value,
            "reason": self.reason,
            "rule": self.rule,
            "model": None if self.measurement is None else self.measurement.model,
            "seconds": self.seconds,
        }
        if self.symbolic is not None:
            d["symbolic_exponent"] = None if self.symbolic.exponent is None else str(self.symbolic.exponent)
            d["symbolic_verdict"] = None if self.symbolic_verdict is None else self.symbolic_verdict.value
            d["symbolic_detail"] = self.symbolic.detail
            d["symbolic_tight"] = self.symbolic.tight
            d["symbolic_agrees_with_measurement"] = self.agree
        if est is not None:
            d["points"] = {"x": est.x.tolist(), "values": est.values.tolist(), "errors": est.errors.tolist()}
        if self.measurement is not None and self.measurement.extra:
            d["extra"] = self.measurement.extra
        return d


def select(ids: list[str] | None) -> list[Claim]:
    if not ids:
        return list(CLAIMS)
    known = {c.id: c for c in CLAIMS}
    missing = [i for i in ids if i not in known]
    if missing:
        raise InvalidArgumentError(f"unknown claim id(s) {missing}; known: {', '.join(known)} (see --list)")
    return [known[i] for i in ids]


def judge(claim: Claim, m: Measurement) -> tuple[Verdict, str, str]:
    res = verdict(claim.kind, claim.exponent, m.estimate, resolution=claim.resolution, max_width=claim.max_ci_width)
    v, reason = res.verdict, res.reason
    if m.extra_fail is not None:
        v, reason = Verdict.FAIL, f"{m.extra_fail}; rate: {reason}"
    for note in m.estimate.notes:
        reason += f"; note: {note}"
    return v, reason, res.rule


def symbolic_verdict(claim: Claim, sres) -> tuple[Verdict, str]:
    """What the derivation alone says of the claim."""
    if sres.holds is not None:
        return (Verdict.PASS if sres.holds else Verdict.FAIL), sres.detail
    e = sres.exponent
    if e is None:
        ok = claim.kind is RateKind.BIG_O
        return (Verdict.PASS if ok else Verdict.FAIL), "the quantity is exactly zero; " + sres.detail
    ev = float(e)
    if claim.kind is RateKind.BIG_O:
        ok = ev <= claim.exponent + 1e-12
    elif claim.kind is RateKind.THETA:
        ok = abs(ev - claim.exponent) < 1e-12 and bool(sres.tight)
    else:
        ok = ev < 0
    return (Verdict.PASS if ok else Verdict.FAIL), f"derived exponent {e}: " + sres.detail


def agreement(claim: Claim, sres, m: Measurement) -> bool | None:
    """Whether the derived exponent lies in the measured interval (widened by the resolution)."""
    if sres is None or sres.exponent is None or m is None:
        return None
    lo, hi = m.estimate.ci
    return bool(lo - claim.resolution <= float(sres.exponent) <= hi + claim.resolution)


def run_claims(claims: list[Claim], settings: Settings, progress: bool = True,
               symbolic_only: bool = False) -> list[ClaimResult]:
    """Derive (where a derivation exists), measure (unless ``symbolic_only``) and judge each claim.

    The verdict is the numeric one where the claim has a numeric check, else the symbolic one;
    both are reported, with whether the derived exponent agrees with the measured interval."""
    from tqdm.auto import tqdm

    results = []
    bar = tqdm(claims, desc="claims", unit="claim", disable=not progress, file=sys.stderr)
    for claim in bar:
        bar.set_postfix_str(claim.id)
        t = time.perf_counter()
        sym = claim.derive() if claim.derive is not None else None
        sv, sreason = symbolic_verdict(claim, sym) if sym is not None else (None, "")
        if claim.measure is None or symbolic_only:
            if sym is None:
                v, reason = Verdict.INCONCLUSIVE, "no check for this claim"
            else:
                v, reason = sv, "symbolic: " + sreason
            results.append(ClaimResult(claim, v, reason, None, sym, time.perf_counter() - t, "symbolic derivation", sv))
            continue
        m = claim.measure(settings)
        v, reason, rule = judge(claim, m)
        results.append(ClaimResult(claim, v, reason, m, sym, time.perf_counter() - t, rule, sv, agreement(claim, sym, m)))
    return results


def format_table(results: list[ClaimResult]) -> str:
    rows = [("claim", "predicted", "symbolic", "measured [95% CI]", "verdict")]
    for r in results:
        est = r.measurement.estimate if r.measurement else None
        meas = "-" if est is None else f"{est.exponent:+.3f} [{est.ci[0]:+.3f}, {est.ci[1]:+.3f}]"
        if r.symbolic is None:
            sym = "-"
        else:
            sym = "0 (exact)" if r.symbolic.exponent is None else str(r.symbolic.exponent)
            if r.agree is not None:
                sym += " (agrees)" if r.agree else " (DISAGREES)"
        rows.append((r.claim.id, r.claim.predicted, sym, meas, r.verdict.value))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    for r in results:
        lines.append(f"{r.claim.id}: {r.verdict.value}: {r.reason}")
    return "\n".join(lines)


def write_json(path: str | Path, results: list[ClaimResult], seconds: float, settings: Settings) -> Path:
    doc = {"claims": [r.to_dict() for r in results], "seconds": seconds, "quick": settings.quick,
           "seed": settings.seed}
    return write_text_atomic(path, json.dumps(doc, indent=2))


def draw_plots(results: list[ClaimResult], out_dir: str | Path) -> list[Path]:
    from sde_scales.plots import rate_plot, save_figure

    paths = []
    for r in results:
        if r.measurement is None:
            continue
        m = r.measurement
        predicted = None if r.claim.kind is RateKind.SEPARATION else r.claim.exponent
        fig = rate_plot(m.estimate, predicted=predicted, title=f"{r.claim.id}", xlabel=m.plot_xlabel,
                        ylabel=m.plot_ylabel, verdict=r.verdict.value)
        paths.append(save_figure(fig, Path(out_dir) / f"{r.claim.id}.png"))
    return paths


def main_from_args(args) -> int:
    claims = select(args.claims)
    if args.list:
        for c in claims:
            print(f"{c.id:22s} {c.predicted:32s} {c.statement}")
        return 0
    started = time.perf_counter()
    settings = Settings(quick=args.quick, seed=args.seed)
    if args.symbolic_only:
        claims = [c for c in claims if c.derive is not None]
    results = run_claims(claims, settings, progress=not args.no_progress, symbolic_only=args.symbolic_only)
    seconds = time.perf_counter() - started
    print(format_table(results))
    print(f"\n{len(results)} claims in {seconds:.1f} s ({'quick' if args.quick else 'full'} run, seed {args.seed})")
    if args.json:
        print(f"JSON: {write_json(args.json, results, seconds, settings)}")
    if args.plots:
        paths = draw_plots(results, args.plots)
        print(f"plots: {len(paths)} files in {args.plots}")
    return 0
