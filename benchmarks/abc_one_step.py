"""The abc table (``theory.abc``) against networks trained here for one step.

For each parametrization, optimizer and depth, ``sde_scales.train.coordcheck.coord_check`` trains
a stack of networks per width for one step (``--seeds`` per width, synthetic Gaussian inputs of
dimension 256) and fits each layer's exponent of the change of its pre-activations in the width.
Beside it: the table's first-step exponent (``first_step_feature_change``; the output change for
the readout row) and TP4's later-step one (``feature_change``), and whether the measured interval,
widened by the check's own tolerance for next-order terms, holds each. ``judged``: the rows the
table gives exactly (every row of a stable parametrization; of an unstable one, the layers up to
the first that grows with n, since above it first order in the learning rate is a lower bound).

    python benchmarks/abc_one_step.py
"""

from __future__ import annotations

import argparse
from fractions import Fraction


def cases():
    from sde_scales.parametrization import mup, ntk, sp

    out = []
    for opt in ("sgd", "adam"):
        for L in (1, 3):
            out += [(f"{f.__name__}", f(L, opt)) for f in (mup, sp, ntk)]
        base = mup(3, opt)
        out += [("mup, hidden rate x n^-1", base.with_layer(1, c=base.layers[1].c + 1)),
                ("mup, input rate x n^-1", base.with_layer(0, c=base.layers[0].c + 1))]
    out.append(("mup, readout starts at n^-3/2", mup(2).with_layer(2, b=Fraction(1))))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="64,128,256,512,1024")
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args(argv)
    from sde_scales.train.coordcheck import coord_check
    from theory.abc import derive

    widths = [int(w) for w in args.widths.split(",")]
    print(f"{'case':>30s} {'opt':>4s} {'L':>2s} {'lr':>5s} {'stable':>6s} {'layer':>5s} {'measured [95%]':>22s} "
          f"{'tol':>5s} {'step 1':>6s} {'holds':>5s} {'later':>6s} {'holds':>5s} {'judged':>6s}")
    for name, p in cases():
        lr = 0.1 if p.optimizer == "sgd" else 0.01
        t = derive(p)
        cc = coord_check(p, widths, steps=1, lr=lr, n_seeds=args.seeds)
        judged = {l for l, exact in enumerate(t.first_step_exact) if exact}
        for l in cc.layers:
            d, tol = cc.delta_exp[l], cc.tolerances[l][1]
            first = t.output_change if l == p.L else t.first_step_feature_change[l]
            later = t.output_change if l == p.L else t.feature_change[l]

            def holds(e):
                return "yes" if d.ci[0] - tol <= float(e) <= d.ci[1] + tol else "NO"

            print(f"{name:>30s} {p.optimizer:>4s} {p.L:2d} {lr:5g} {str(t.stable):>6s} {l:5d} "
                  f"{d.exponent:+6.2f} [{d.ci[0]:+.2f}, {d.ci[1]:+.2f}]".ljust(0) + f" {tol:5.2f} {str(first):>6s} "
                  f"{holds(first):>5s} {str(later):>6s} {holds(later):>5s} {'yes' if l in judged else 'no':>6s}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
