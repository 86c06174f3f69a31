"""The ``sde-scales`` command line.

Subcommands
    verify      check the claims of the width-scaling theory and print a verdict per claim
    fit-delay   fit learning-rate-response laws to loss curves, predict unseen schedules
    theory      the derived exponent table and classification of a parametrization
    converge    a convergence study of the engine's solvers on a problem with an exact solution

``theory`` is imported only when ``verify`` runs, so that the library never depends on it.
"""

from __future__ import annotations

import argparse
import sys


def _cmd_verify(args: argparse.Namespace) -> int:
    from theory import verify  # loaded only here: sde_scales never imports theory at import time

    return verify.main_from_args(args)


def _cmd_converge(args: argparse.Namespace) -> int:
    from sde_scales.sde import EulerMaruyama, Milstein, convergence_study
    from sde_scales.sde import testproblems as tp

    builders = {
        "gbm": tp.geometric_brownian_motion,
        "ou": tp.ornstein_uhlenbeck,
        "diagonal": tp.diagonal_gbm_2d,
        "general": tp.commuting_linear_general,
    }
    ex = builders[args.problem]()
    solver = Milstein() if args.solver == "milstein" else EulerMaruyama()
    st = convergence_study(ex.problem, solver, range(args.coarsest, args.finest + 1), args.paths,
                           seed=args.seed, exact=ex.exact)
    print(st.table())
    print(f"stated orders: strong {solver.strong_order_for(ex.problem.noise)}, "
          f"weak {solver.weak_order_for(ex.problem.noise)}")
    return 0


def _cmd_theory_table(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from sde_scales.parametrization import by_name
    from theory.abc import derive, format_table

    t = derive(by_name(args.param, L=args.layers, optimizer=args.optimizer))
    print(format_table(t))
    if args.json:
        p = Path(args.json)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(json.dumps(t.to_dict(), indent=2))
        tmp.replace(p)
        print(f"JSON: {p}")
    return 0


def _cmd_fit_delay(args: argparse.Namespace) -> int:
    from sde_scales.fitting.report import run_fit_delay

    return run_fit_delay(args)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="sde-scales",
        description="Check the width-scaling theory of neural-network training numerically and symbolically.",
    )
    sub = ap.add_subparsers(dest="command", required=True)

    v = sub.add_parser("verify", help="check each claim and print a verdict (PASS / FAIL / INCONCLUSIVE)",
                       description="Run the claims of the registry: symbolic exponent, simulated exponent with "
                                   "its confidence interval, verdict. Writes a table, optionally JSON and plots.")
    v.add_argument("--quick", action="store_true", help="small widths and few replicas (under 2 minutes on 2 cores)")
    v.add_argument("--claims", nargs="+", metavar="ID", help="only these claim ids (default: all)")
    v.add_argument("--json", metavar="PATH", help="write the verdicts as JSON to PATH")
    v.add_argument("--plots", metavar="DIR", help="draw one rate plot per claim into DIR")
    v.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    v.add_argument("--symbolic-only", action="store_true", help="only the symbolic derivations (no simulation)")
    v.add_argument("--list", action="store_true", help="list the claims and exit")
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    v.set_defaults(func=_cmd_verify)

    f = sub.add_parser(
        "fit-delay", help="fit a learning-rate-response law to loss curves and predict unseen schedules",
        description="Fit a law on the --fit curves (shared parameters), predict the --predict curves from their "
                    "learning-rate column alone, print metrics against a smoothed target, write JSON / plots / CSVs.")
    f.add_argument("--fit", action="append", required=True, metavar="CSV", help="curve to fit (repeat for several)")
    f.add_argument("--predict", action="append", metavar="CSV", help="curve to predict (repeat for several)")
    f.add_argument("--law", choices=["kernel", "momentum", "mpl"], default="kernel")
    f.add_argument("--kernel", choices=["nonparametric", "exp", "power"], default="nonparametric",
                   help="memory kernel of the kernel law (default nonparametric: monotone q from exponentials)")
    f.add_argument("--time", choices=["steps", "area"], default="steps",
                   help="time of the kernel: steps or learning-rate area (default steps)")
    f.add_argument("--skip-steps", type=int, default=0, help="ignore rows before this step (fit and metrics)")
    f.add_argument("--smooth-steps", type=int, default=1000, help="window of the centred moving average the metrics use")
    f.add_argument("--shared-noise", action="store_true",
                   help="also report metrics with the optional shared batch-noise correction")
    f.add_argument("--profile", action="store_true", help="profile the kernel time scale (identifiability interval)")
    f.add_argument("--compare", action="store_true", help="fit all laws and print them side by side")
    f.add_argument("--json", metavar="PATH")
    f.add_argument("--plot", metavar="PATH", help="observed vs predicted with the learning rate underneath (PNG)")
    f.add_argument("--predictions", metavar="DIR", help="one CSV per predicted curve: step, lr, loss, predicted")
    f.set_defaults(func=_cmd_fit_delay)

    th = sub.add_parser("theory", help="symbolic tools: the derived exponent table of a parametrization")
    thsub = th.add_subparsers(dest="theory_command", required=True)
    tt = thsub.add_parser("table", help="exponents of init, update and feature change per layer, and the classification")
    tt.add_argument("--param", choices=["mup", "sp", "ntk"], required=True)
    tt.add_argument("--layers", type=int, default=2, help="number of hidden layers L (default 2)")
    tt.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    tt.add_argument("--json", metavar="PATH")
    tt.set_defaults(func=_cmd_theory_table)

    c = sub.add_parser("converge", help="convergence study of a solver on a problem with an exact solution")
    c.add_argument("--problem", choices=["gbm", "ou", "diagonal", "general"], default="gbm")
    c.add_argument("--solver", choices=["em", "milstein"], default="em")
    c.add_argument("--paths", type=int, default=4000)
    c.add_argument("--coarsest", type=int, default=4, help="coarsest level: dt = T / 2**coarsest")
    c.add_argument("--finest", type=int, default=9, help="finest level")
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=_cmd_converge)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:  # our errors are ValueError subclasses with the fix in the message
        from sde_scales.errors import SDEScalesError

        if isinstance(exc, SDEScalesError):
            print(f"sde-scales: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
