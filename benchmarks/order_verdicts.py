"""How often ``OrderEstimate.judge`` gives each verdict to true and to false order claims.

For every built-in problem with an exact solution, both solvers, several ladders of levels and two
path counts, ``--studies`` independent convergence studies (seeds 0, 1, ...) are judged against
the solver's stated strong and weak orders (true claims) and against the stated order +- 1/2
(false claims; order - 1/2 only where it stays positive). A true claim must (almost) never FAIL and
a false claim never PASS; how often each gets a decision (PASS, FAIL) rather than INCONCLUSIVE is
the verdict's power on that ladder. For comparison the script also counts the wrong decisions of
the simple rule (PASS iff the slope is within 3 se + 0.1 of the claim and that tolerance is
under 0.25, FAIL iff it is not within), which the tests' ``assert_order`` uses on fine ladders.

    python benchmarks/order_verdicts.py                    # about 5 minutes on 2 cores
    python benchmarks/order_verdicts.py --studies 4        # a quick look
"""

from __future__ import annotations

import argparse
import collections


def _ladder(text: str) -> range:
    a, b = (int(v) for v in text.split("-"))
    return range(a, b + 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--studies", type=int, default=20, help="studies (seeds) per configuration (default 20)")
    ap.add_argument("--first-seed", type=int, default=0, help="seed of the first study (default 0)")
    ap.add_argument("--variant", choices=["default", "other", "third"], default="default",
                    help="the problems' parameters: the built-in defaults; 'other' (stronger drift, weaker noise, "
                         "a faster OU over twice the span: it showed the rules' first versions wrong, see "
                         "benchmarks/RESULTS.md); 'third' (decay, mixed noise levels, a slow OU with strong noise), "
                         "held back until the rules were final")
    ap.add_argument("--paths", default="30,1000", help="comma-separated path counts (default 30,1000)")
    ap.add_argument("--ladders", default="0-2,0-4,1-4,2-5,3-6,4-9",
                    help="comma-separated level ranges FIRST-LAST (default 0-2,0-4,1-4,2-5,3-6,4-9)")
    args = ap.parse_args(argv)
    counts = [int(v) for v in args.paths.split(",")]
    ladders = [_ladder(v) for v in args.ladders.split(",")]
    if args.studies < 1 or min(counts) < 2:
        ap.error("give --studies >= 1 and path counts >= 2")
    from tqdm import tqdm

    from sde_scales.errors import UnstableStepError
    from sde_scales.sde import EulerMaruyama, Milstein, convergence_study
    from sde_scales.sde.convergence import ORDER_MAX_TOL, ORDER_MODEL_TOL, ORDER_Z
    from sde_scales.sde import testproblems as tp

    if args.variant == "default":
        problems = {"gbm": tp.geometric_brownian_motion, "ou": tp.ornstein_uhlenbeck,
                    "diagonal": tp.diagonal_gbm_2d, "general": tp.commuting_linear_general}
    elif args.variant == "third":
        problems = {"gbm": lambda: tp.geometric_brownian_motion(mu=-0.5, sigma=0.5, x0=2.0),
                    "ou": lambda: tp.ornstein_uhlenbeck(theta=1.0, mu=0.0, sigma=2.0, x0=3.0),
                    "diagonal": lambda: tp.diagonal_gbm_2d(mu=(0.2, 0.5), sigma=(1.2, 0.2)),
                    "general": lambda: tp.commuting_linear_general(a=(-2.0, -0.5), T=0.5)}
    else:
        problems = {"gbm": lambda: tp.geometric_brownian_motion(mu=1.0, sigma=0.3),
                    "ou": lambda: tp.ornstein_uhlenbeck(theta=5.0, mu=-1.0, sigma=0.3, x0=0.0, T=2.0),
                    "diagonal": lambda: tp.diagonal_gbm_2d(mu=(1.0, -1.0), sigma=(0.3, 0.4)),
                    "general": lambda: tp.commuting_linear_general(T=2.0)}
    tally = collections.Counter()
    refused: set = set()
    worst = []
    jobs = [(pn, s, lv, n) for pn in problems for s in (EulerMaruyama(), Milstein()) for lv in ladders for n in counts]
    for pn, solver, lv, n in tqdm(jobs, desc="configurations"):
        ex = problems[pn]()
        stated = {"strong": solver.strong_order_for(ex.problem.noise), "weak": solver.weak_order_for(ex.problem.noise)}
        for seed in range(args.first_seed, args.first_seed + args.studies):
            try:
                st = convergence_study(ex.problem, solver, lv, n, seed=seed, exact=ex.exact)
            except UnstableStepError:  # a coarse level past the explicit step's stability bound
                refused.add((pn, repr(solver), f"{lv.start}-{lv.stop - 1}"))
                break
            for kind, est in (("strong", st.strong), ("weak", st.weak)):
                p = stated[kind]
                for claim, truth in ((p, "true"), (p + 0.5, "false +1/2"), (p - 0.5, "false -1/2")):
                    if claim <= 0:
                        continue
                    v = est.judge(claim).verdict.value
                    tol = ORDER_Z * est.se + ORDER_MODEL_TOL
                    if est.se == est.se:  # the simple rule needs an interval
                        simple = ("FAIL" if abs(est.order - claim) > tol else
                                  "PASS" if tol < ORDER_MAX_TOL else "INCONCLUSIVE")
                        tally[("simple", truth == "true", simple)] += 1
                    tally[(truth, kind, v)] += 1
                    tally[(truth, kind, v, f"{lv.start}-{lv.stop - 1}", n)] += 1
                    if (truth == "true" and v == "FAIL") or (truth != "true" and v == "PASS"):
                        worst.append((pn, repr(solver), f"{lv.start}-{lv.stop - 1}", n, seed, kind, claim, v))
    print("\nclaim       order  PASS  FAIL  INCONCLUSIVE")
    for truth in ("true", "false +1/2", "false -1/2"):
        for kind in ("strong", "weak"):
            c = [tally[(truth, kind, v)] for v in ("PASS", "FAIL", "INCONCLUSIVE")]
            print(f"{truth:11s} {kind:6s} {c[0]:5d} {c[1]:5d} {c[2]:13d}")
    print("\nper ladder and path count (all problems, solvers and both orders): true claims PASS/FAIL/INC; "
          "false claims PASS/FAIL/INC")
    for lv in ladders:
        name = f"{lv.start}-{lv.stop - 1}"
        for n in counts:
            t = [tally[("true", k, v, name, n)] for v in ("PASS", "FAIL", "INCONCLUSIVE") for k in ("strong", "weak")]
            f = [tally[(tr, k, v, name, n)] for v in ("PASS", "FAIL", "INCONCLUSIVE")
                 for tr in ("false +1/2", "false -1/2") for k in ("strong", "weak")]
            print(f"levels {name:5s} {n:6d} paths: true {t[0] + t[1]}/{t[2] + t[3]}/{t[4] + t[5]}; "
                  f"false {sum(f[0:4])}/{sum(f[4:8])}/{sum(f[8:12])}")
    if refused:
        print(f"\nladders refused by solve (a level past the explicit step's stability bound): "
              f"{', '.join(' '.join(r) for r in sorted(refused))}")
    print(f"\nwrong decisions (a true claim FAILed or a false one PASSed): {len(worst)}")
    n_true = sum(tally[("simple", True, v)] for v in ("PASS", "FAIL", "INCONCLUSIVE"))
    n_false = sum(tally[("simple", False, v)] for v in ("PASS", "FAIL", "INCONCLUSIVE"))
    print(f"the simple rule on the same studies: {tally[('simple', True, 'FAIL')]} of {n_true} true claims FAILed, "
          f"{tally[('simple', False, 'PASS')]} of {n_false} false claims PASSed")
    for w in worst:
        print("  ", *w)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
