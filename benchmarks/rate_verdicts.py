"""Width-rate verdicts on planted rates: how often is a true claim FAILed, or a false one PASSed?

``sde-scales verify`` judges each claim of a rate against width with :func:`sde_scales.rates.verdict`
on an estimate from replicas (:func:`~sde_scales.rates.fluctuation_exponent`,
:func:`~sde_scales.rates.bias_exponent`, :func:`~sde_scales.rates.exponent_difference`). This script plants rates whose exponent is known and counts
the verdicts on true and on false claims, as ``benchmarks/order_verdicts.py`` does for the solvers'
orders.

Planted, at every width n of the grid, R replicas:

* fluctuation: ``x = n^p (1 + D n^-omega) * xi``, xi standard normal (the claim is on the standard
  deviation over replicas);
* bias: ``x = m + n^p (1 + D n^-omega) + 2 n^p xi`` (the claim is on ``|E x - m|``, m given as the
  reference; per-replica noise twice the bias, so the mean's relative error is 2 / sqrt(R);
  ``--bias-noise`` sets the factor 2);
* separation: the fluctuation reading's ``a`` beside ``b = n^(p + 1/2) (rho xi + sqrt(1 - rho^2) eta)``
  on the same replicas (rho = 1/2): the claim is on the difference of their exponents, -1/2, as
  Theorem 4.1's separation of macro- and micro-variables is judged.

``D = 0`` is a pure power law; ``D = +-2`` with ``omega = 1/2`` is the next-order term the rules'
stated model allows (``q = C n^p (1 + D n^-1/2)``); ``omega = 1`` is a faster correction, outside
the stated model but converging to the same rate. Claims judged on each estimate: ``Theta(n^p)``
and ``O(n^p)``, ``O(n^(p + 1/4))`` (true); ``Theta(n^(p +- delta))`` for delta = 0.1, 0.25, 0.5 and
``O(n^(p - delta))`` for delta = 0.1, 0.25 (false); on the separation reading, a difference of -1/2
(true) and of -1/2 +- delta (false). A wrong verdict is a FAIL of a true claim or a
PASS of a false one; INCONCLUSIVE is never wrong, only uninformative.

    python benchmarks/rate_verdicts.py --seeds 100            # the table in benchmarks/RESULTS.md
    python benchmarks/rate_verdicts.py --seeds 3 --json -     # a few seconds
    python benchmarks/rate_verdicts.py --seeds 100 --corrections 16:0.5,-6:0.5   # terms beyond the tolerance's

The bias reading without its limit (``--bias-reference differences``): the same planted tables
judged by the differences of successive widths' means (``bias_exponent(..., "differences")``),
with the stated limit hidden; ``--grid`` with ``--any-ratio`` measures what refusing widths in no
constant ratio prevents:

    python benchmarks/rate_verdicts.py --seeds 100 --readings bias --bias-reference differences
    python benchmarks/rate_verdicts.py --seeds 100 --readings bias --bias-reference differences --bias-noise 0.02
    python benchmarks/rate_verdicts.py --seeds 100 --readings bias --bias-reference differences --bias-noise 0.02 \
        --grid 100,200,300,400,600,800 --any-ratio
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

import numpy as np

GRIDS = {"quick (64..1024)": (64, 128, 256, 512, 1024), "full (64..4096)": (64, 128, 256, 512, 1024, 2048, 4096)}
REPLICAS = (32, 128, 1024)
EXPONENTS = (-1.0, -0.5)
#: (D, omega) of the planted correction n^p (1 + D n^-omega)
CORRECTIONS = ((0.0, 0.5), (2.0, 0.5), (-2.0, 0.5), (2.0, 1.0))
READINGS = ("fluctuation", "bias", "separation")
#: The separation reading's second quantity: n^(p + 1/2), correlated with the first at this level
#: across a replica (a network's macro and micro variables move together).
SEPARATION_RHO = 0.5


def claims(p: float, reading: str = "fluctuation"):
    """(label, kind, exponent, true?) for a planted exponent p; on the separation reading, claims on
    the difference of exponents, whose truth is -1/2."""
    from sde_scales.rates import RateKind

    if reading == "separation":
        out = [("Sep(-1/2)", RateKind.SEPARATION, -0.5, True)]
        for d in (0.1, 0.25, 0.5):
            out += [(f"Sep(-1/2 + {d:g})", RateKind.SEPARATION, -0.5 + d, False),
                    (f"Sep(-1/2 - {d:g})", RateKind.SEPARATION, -0.5 - d, False)]
        return out
    out = [("Theta(p)", RateKind.THETA, p, True), ("O(p)", RateKind.BIG_O, p, True),
           ("O(p + 1/4)", RateKind.BIG_O, p + 0.25, True)]
    for d in (0.1, 0.25, 0.5):
        out += [(f"Theta(p + {d:g})", RateKind.THETA, p + d, False), (f"Theta(p - {d:g})", RateKind.THETA, p - d, False)]
    for d in (0.1, 0.25):
        out.append((f"O(p - {d:g})", RateKind.BIG_O, p - d, False))
    return out


#: The bias reading's per-replica noise, in units of n^p (the planted bias's leading term).
BIAS_NOISE = 2.0


def planted(rng, widths, R, p, D, omega, reading, bias_noise: float = BIAS_NOISE):
    n = np.asarray(widths, float)
    scale = n**p * (1.0 + D * n**-omega)
    if reading == "fluctuation":
        return [s * rng.standard_normal(R) for s in scale]
    if reading == "separation":  # (a, b): sd(a) / sd(b) ~ n^-1/2 (1 + D n^-omega)
        xi = [rng.standard_normal(R) for _ in n]
        eta = [rng.standard_normal(R) for _ in n]
        rho = SEPARATION_RHO
        return ([s * x for s, x in zip(scale, xi)],
                [n_**(p + 0.5) * (rho * x + np.sqrt(1 - rho**2) * e) for n_, x, e in zip(n, xi, eta)])
    return [1.0 + s + bias_noise * n_**p * rng.standard_normal(R) for s, n_ in zip(scale, n)]


def run(seeds: int, root: int = 20261205, progress: bool = True, corrections=CORRECTIONS, readings=READINGS,
        grids=None, bias_reference: str = "stated", bias_noise: float = BIAS_NOISE) -> list[dict]:
    """One row per (grid, replicas, exponent, correction, reading, claim): verdict counts.
    ``corrections``: the (D, omega) pairs planted (default :data:`CORRECTIONS`); ``readings`` and
    ``grids`` (name -> widths; default :data:`GRIDS`) select; ``bias_reference``: ``"stated"``
    (the planted limit, 1), ``"differences"`` (no limit: the differences of successive means) or
    ``"richardson"`` (the limit extrapolated in 1/n from the two widest widths) or ``"widest"`` (the
    widest width's mean);
    ``bias_noise``: the bias reading's per-replica noise in units of n^p.
    A configuration's seeds depend on its place in the full product, so a selection draws the
    same data sets as the full run does for those configurations."""
    from sde_scales.rates import bias_exponent, exponent_difference, fluctuation_exponent, verdict

    grids = GRIDS if grids is None else grids
    full = list(itertools.product(grids.items(), REPLICAS, EXPONENTS, corrections, READINGS))
    children = dict(zip(range(len(full)), np.random.SeedSequence(root).spawn(len(full))))
    chosen = [i for i, c in enumerate(full) if c[-1] in readings]
    configs = [full[i] for i in chosen]
    children = [children[i] for i in chosen]
    ref = 1.0 if bias_reference == "stated" else bias_reference
    rows = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(configs) * seeds, desc="planted rates", unit="estimate")
    for ((gname, widths), R, p, (D, omega), reading), ss in zip(configs, children):
        cl = claims(p, reading)
        counts = {c[0]: {"PASS": 0, "FAIL": 0, "INCONCLUSIVE": 0} for c in cl}
        for k, s in enumerate(ss.spawn(seeds)):
            rng = np.random.default_rng(s)
            x = planted(rng, widths, R, p, D, omega, reading, bias_noise)
            boot_seed = int(s.generate_state(1)[0])
            if reading == "fluctuation":
                est = fluctuation_exponent(widths, x, seed=boot_seed)
            elif reading == "separation":
                est = exponent_difference(widths, *x, seed=boot_seed)
            else:
                est = bias_exponent(widths, x, ref, seed=boot_seed)
            for label, kind, e, _ in cl:
                counts[label][verdict(kind, e, est).verdict.value] += 1
            if bar is not None:
                bar.update(1)
        for label, kind, e, true in cl:
            c = counts[label]
            rows.append({"grid": gname, "replicas": R, "p": p, "D": D, "omega": omega, "reading": reading,
                         "claim": label, "true": true, **c, "wrong": c["FAIL"] if true else c["PASS"],
                         "decided": c["PASS"] + c["FAIL"]})
    if bar is not None:
        bar.close()
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Totals per claim (over every grid, replica count, exponent, correction and reading)."""
    out = {}
    for r in rows:
        t = out.setdefault(r["claim"], {"claim": r["claim"], "true": r["true"], "judged": 0, "PASS": 0, "FAIL": 0,
                                        "INCONCLUSIVE": 0, "wrong": 0})
        for f in ("PASS", "FAIL", "INCONCLUSIVE", "wrong"):
            t[f] += r[f]
        t["judged"] += r["PASS"] + r["FAIL"] + r["INCONCLUSIVE"]
    return list(out.values())


def power(rows: list[dict]) -> list[dict]:
    """How often the verdicts decide, per reading, grid and replica count: the true Theta claim
    PASSed and the Theta claims 1/2 off FAILed (over exponents and corrections)."""
    out = {}
    for r in rows:
        if r["claim"] not in ("Theta(p)", "Theta(p + 0.5)", "Theta(p - 0.5)", "Sep(-1/2)", "Sep(-1/2 + 0.5)",
                              "Sep(-1/2 - 0.5)"):
            continue
        t = out.setdefault((r["reading"], r["grid"], r["replicas"]),
                           {"reading": r["reading"], "grid": r["grid"], "replicas": r["replicas"], "true_pass": 0,
                            "true_n": 0, "half_off_fail": 0, "half_off_n": 0})
        n = r["PASS"] + r["FAIL"] + r["INCONCLUSIVE"]
        if r["true"]:
            t["true_pass"] += r["PASS"]
            t["true_n"] += n
        else:
            t["half_off_fail"] += r["FAIL"]
            t["half_off_n"] += n
    return list(out.values())


def markdown(summ: list[dict], pw: list[dict]) -> str:
    lines = ["| claim | true? | judged | wrong | PASS | FAIL | INCONCLUSIVE |", "|---|---|---|---|---|---|---|"]
    for s in summ:
        lines.append(f"| {s['claim']} | {'true' if s['true'] else 'false'} | {s['judged']} | **{s['wrong']}** | "
                     f"{s['PASS']} | {s['FAIL']} | {s['INCONCLUSIVE']} |")
    lines += ["", "| reading | widths | replicas | true claim PASSed | claims 1/2 off FAILed |", "|---|---|---|---|---|"]
    for t in pw:
        lines.append(f"| {t['reading']} | {t['grid']} | {t['replicas']} | {t['true_pass']} / {t['true_n']} | "
                     f"{t['half_off_fail']} / {t['half_off_n']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=100, help="planted data sets per configuration (default 100)")
    ap.add_argument("--json", metavar="PATH", help="write every row and the summary as JSON (- for standard output)")
    ap.add_argument("--corrections", metavar="D:OMEGA,...",
                    help="the planted next-order terms n^p (1 + D n^-omega) instead of the default four, e.g. "
                         "16:0.5,-6:0.5 (terms 2 and -3/4 times the leading one at n = 64); D n^-omega > -1 at n = 64 "
                         "(a list that starts with a minus sign: --corrections=-6:0.5)")
    ap.add_argument("--readings", default=",".join(READINGS),
                    help=f"comma-separated readings to plant (default {','.join(READINGS)})")
    ap.add_argument("--bias-reference", choices=("stated", "differences", "richardson", "widest"), default="stated",
                    help="the bias reading's reference: the planted limit (stated), none (differences of "
                         "successive widths' means), the limit extrapolated in 1/n (richardson) or the widest "
                         "width's mean (widest)")
    ap.add_argument("--bias-noise", type=float, default=BIAS_NOISE,
                    help=f"the bias reading's per-replica noise in units of n^p (default {BIAS_NOISE:g}: twice the "
                         f"bias; 0.02 resolves every difference)")
    ap.add_argument("--grid", metavar="N,N,...", help="one grid of widths instead of the two default ones")
    ap.add_argument("--any-ratio", action="store_true",
                    help="let the differences reading take widths in no constant ratio (it refuses them): measures "
                         "what the refusal prevents")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    readings = tuple(r.strip() for r in args.readings.split(","))
    if not (np.isfinite(args.bias_noise) and args.bias_noise > 0):
        print(f"rate_verdicts.py: error: --bias-noise {args.bias_noise}: give a positive number", file=sys.stderr)
        return 2
    if not readings or any(r not in READINGS for r in readings):
        print(f"rate_verdicts.py: error: --readings {args.readings}: give some of {', '.join(READINGS)}",
              file=sys.stderr)
        return 2
    grids = None
    if args.grid:
        try:
            w = tuple(int(v) for v in args.grid.split(","))
        except ValueError:
            w = ()
        if len(w) < 4 or any(a <= 0 for a in w) or list(w) != sorted(set(w)):
            print(f"rate_verdicts.py: error: --grid {args.grid}: give at least 4 increasing positive whole widths",
                  file=sys.stderr)
            return 2
        grids = {f"{w[0]}..{w[-1]} ({len(w)} widths)": w}
        ratio = np.array(w[1:], float) / np.array(w[:-1], float)
        if args.bias_reference == "differences" and "bias" in readings and not args.any_ratio \
                and np.ptp(ratio) > 1e-6 * ratio.mean():
            print(f"rate_verdicts.py: error: --grid {args.grid}: the differences reading needs widths in a constant "
                  f"ratio (it refuses these); add --any-ratio to measure what that refusal prevents", file=sys.stderr)
            return 2
    if args.any_ratio:
        import sde_scales.rates as rates_module
        rates_module.RATIO_TOLERANCE = float("inf")
    if args.seeds < 1:
        print(f"rate_verdicts.py: error: --seeds {args.seeds}: give at least 1", file=sys.stderr)
        return 2
    corrections = CORRECTIONS
    if args.corrections:
        try:
            corrections = tuple(tuple(float(v) for v in item.split(":")) for item in args.corrections.split(","))
            bad = [c for c in corrections if len(c) != 2 or not all(np.isfinite(c)) or c[1] <= 0
                   or c[0] * 64.0 ** -c[1] <= -1]
        except ValueError:
            bad = [args.corrections]
        if bad:
            print(f"rate_verdicts.py: error: --corrections {args.corrections}: give D:OMEGA pairs with omega > 0 and "
                  f"D 64^-omega > -1 (a positive quantity at every width), e.g. 16:0.5", file=sys.stderr)
            return 2
    t = time.perf_counter()
    rows = run(args.seeds, progress=not args.no_progress, corrections=corrections, readings=readings, grids=grids,
               bias_reference=args.bias_reference, bias_noise=args.bias_noise)
    summ, pw = summary(rows), power(rows)
    wrong = sum(s["wrong"] for s in summ)
    judged = sum(s["judged"] for s in summ)
    text = markdown(summ, pw) + f"\n\n{wrong} wrong verdicts in {judged} judgements ({time.perf_counter() - t:.0f} s)"
    if args.json:
        doc = {"seeds": args.seeds, "readings": list(readings), "bias_reference": args.bias_reference,
               "any_ratio": args.any_ratio, "bias_noise": args.bias_noise, "rows": rows, "summary": summ, "power": pw, "wrong": wrong, "judged": judged}
        if args.json == "-":
            print(json.dumps(doc, allow_nan=False))
            print(text, file=sys.stderr)
            return 0
        from sde_scales.atomic import write_json_atomic
        write_json_atomic(args.json, doc)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
