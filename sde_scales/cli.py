"""The ``sde-scales`` command line.

Subcommands
    verify      check the claims of the width-scaling theory and print a verdict per claim
    fit-delay   fit learning-rate-response laws to loss curves, predict unseen schedules
    theory      the derived exponent table and classification of a parametrization
    sweep       train muP / SP / NTK MLPs over width x learning rate x seed into a run store
    coordcheck  coordinate check of a parametrization against width
    converge    a convergence study of the engine's solvers on a problem with an exact solution
    rate        a verdict on a claimed width rate from a table of the user's own measurements
    collapse    supercollapse (Qiu et al.) of the user's own loss curves of several model sizes

``theory`` is imported only when ``verify`` runs, so that the library never depends on it.
"""

from __future__ import annotations

import argparse
import math
import sys

from sde_scales.atomic import STDOUT


#: The end of every command's ``--json`` help: what ``--json -`` does (:func:`main` routes it).
_JSON_STDOUT = f"; {STDOUT} for standard output, the table then on standard error"


def _cmd_verify(args: argparse.Namespace) -> int:
    from theory import verify  # loaded only here: sde_scales never imports theory at import time

    return verify.main_from_args(args)


def _cmd_converge(args: argparse.Namespace) -> int:
    from sde_scales.atomic import write_json_atomic
    from sde_scales.errors import InvalidArgumentError
    from sde_scales.sde import EulerMaruyama, Milstein, convergence_study
    from sde_scales.sde import testproblems as tp
    from sde_scales.verdicts import Verdict

    builders = {
        "gbm": tp.geometric_brownian_motion,
        "ou": tp.ornstein_uhlenbeck,
        "diagonal": tp.diagonal_gbm_2d,
        "general": tp.commuting_linear_general,
    }
    if args.paths < 2:
        raise InvalidArgumentError(f"--paths {args.paths}: give at least 2 (30 or more for an interval and a verdict)")
    if args.coarsest < 0 or args.finest < args.coarsest + 2:
        raise InvalidArgumentError(f"--coarsest {args.coarsest} --finest {args.finest}: give 0 <= coarsest and "
                                   "finest >= coarsest + 2 (at least three levels; four for a verdict)")
    for flag, value in (("--expect-strong", args.expect_strong), ("--expect-weak", args.expect_weak)):
        if value is not None and not (value > 0 and value < float("inf")):
            raise InvalidArgumentError(f"{flag} {value}: an order of convergence is a positive finite number")
    ex = builders[args.problem]()
    solver = Milstein() if args.solver == "milstein" else EulerMaruyama()
    st = convergence_study(ex.problem, solver, range(args.coarsest, args.finest + 1), args.paths,
                           seed=args.seed, exact=ex.exact, progress=not args.no_progress)
    print(st.table())
    claims = {"strong": (st.strong, args.expect_strong, solver.strong_order_for(ex.problem.noise)),
              "weak": (st.weak, args.expect_weak, solver.weak_order_for(ex.problem.noise))}
    doc = {"problem": args.problem, "solver": repr(solver), "paths": args.paths, "seed": args.seed,
           "levels": list(range(args.coarsest, args.finest + 1)), "dt": st.dts.tolist(),
           "strong_error": st.strong_error.tolist(), "strong_se": st.strong_se.tolist(),
           "weak_error": st.weak_error.tolist(), "weak_se": st.weak_se.tolist(), "orders": {}}
    verdicts = []
    for kind, (est, claimed, stated) in claims.items():
        expected = stated if claimed is None else claimed
        v = est.judge(expected)
        verdicts.append(v.verdict)
        source = "stated by the solver" if claimed is None else f"claimed (the solver states {stated:g})"
        print(f"{kind} order {expected:g} ({source}): {v.verdict.value}: {v.reason}")
        doc["orders"][kind] = {"order": est.order, "se": est.se, "ci": list(est.ci), "fine_order": est.fine_order,
                               "fine_se": est.fine_se, "bend": est.bend, "bend_se": est.bend_se,
                               "extrapolated_order": est.limit_order, "extrapolated_se": est.limit_se,
                               "ratios": est.ratios.tolist(), "resolution": est.resolution.tolist(),
                               "stated": stated, **v.to_dict()}
    if args.json:
        print(f"JSON: {write_json_atomic(args.json, doc)}")
    if args.plot:
        from sde_scales.plots import convergence_plot, save_figure

        expected = {kind: doc["orders"][kind]["expected"] for kind in ("strong", "weak")}
        print(f"plot: {save_figure(convergence_plot(st, expected=expected), args.plot)}")
    return 1 if args.strict and any(v is not Verdict.PASS for v in verdicts) else 0


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers, e.g. 0.05,0.1,0.2") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated whole numbers, e.g. 64,128") from None


def _cmd_sweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sde_scales.errors import InvalidArgumentError
    from sde_scales.train.sweep import load_grid_toml, run_sweep
    from sde_scales.train.trainer import config_grid

    grid = {"params": [args.param], "widths": args.widths, "lrs": args.lrs, "seeds": args.seeds}
    common = {"dataset": args.dataset, "epochs": args.epochs, "batch_size": args.batch_size, "depth": args.depth,
              "optimizer": args.optimizer, "n_train": args.n_train, "d_in": args.d_in, "log_every": args.log_every,
              "schedule": args.schedule, "base_width": args.base_width, "precision": args.precision,
              "compile": args.compile}
    if args.config:
        toml = load_grid_toml(args.config)
        for k in ("params", "widths", "lrs", "seeds"):
            if k in toml:
                grid[k] = toml.pop(k)
        common.update(toml)
    for k in ("widths", "lrs", "seeds"):
        if not grid[k]:
            raise InvalidArgumentError(f"--{k} is empty; give at least one value")
    # options of another executor were ignored (--scheduler tcp://... trained here, in this process)
    if args.scheduler is not None and args.executor != "dask":
        raise InvalidArgumentError(f"--scheduler {args.scheduler} is for --executor dask (--executor {args.executor} "
                                   f"has no scheduler); add --executor dask")
    if args.workers is not None and args.executor == "local":
        raise InvalidArgumentError(f"--workers {args.workers} is for --executor process or dask (--executor local "
                                   f"trains in this process); add --executor process")
    args.workers = 2 if args.workers is None else args.workers
    if args.workers < 1:
        raise InvalidArgumentError(f"--workers {args.workers}; give at least 1")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise InvalidArgumentError(f"--out {args.out} is a file; give a directory for the run store")
    configs = config_grid(grid["params"], grid["widths"], grid["lrs"], grid["seeds"], **common)
    res = run_sweep(configs, args.out, executor=args.executor, workers=args.workers, scheduler=args.scheduler,
                    device=args.device, data_root=args.data_root, progress=not args.no_progress,
                    checkpoint_every=args.checkpoint_every)
    repeats = (f" ({res['repeats']} repeated in the grid: a value listed twice in --widths, --lrs or --seeds; each "
               f"run is trained once)" if res["repeats"] else "")
    print(f"{res['runs']} runs{repeats}: {res['ran']} trained in {res['stacks']} stacks, {res['skipped']} already in "
          f"the store, {res['diverged']} diverged; store: {args.out}")
    print(f"read it: python -c \"from sde_scales.train.store import RunStore; s = RunStore('{args.out}'); "
          f"runs, traj = s.read(); print(runs)\"  (runs: one row per run; traj: the logged rows; see the README, "
          f"'Reading a run store')")
    return 0


def _cmd_coordcheck(args: argparse.Namespace) -> int:
    from sde_scales.atomic import write_json_atomic
    from sde_scales.parametrization import by_name
    from sde_scales.rates import Verdict
    from sde_scales.train.coordcheck import (MAX_WIDTH, RESOLUTION, RESOLUTION_REASON, coord_check, layer_names,
                                             plot_coord_check)
    from theory.abc import derive  # loaded at run time only

    from sde_scales.errors import InvalidArgumentError

    bad = [f"--{name} {value} (give {rule})" for name, value, ok, rule in (
        ("steps", args.steps, args.steps >= 1, "at least 1"),
        ("seeds", args.seeds, args.seeds >= 3, "at least 3, for an interval"),
        ("lr", args.lr, math.isfinite(args.lr) and args.lr > 0, "a finite rate > 0"),
        ("depth", args.depth, args.depth >= 1, "at least 1"),
        ("widths", args.widths, len(args.widths) >= 3 and all(w >= 1 for w in args.widths),
         "at least 3 widths, each at least 1"),
        ("base-width", args.base_width, args.base_width >= 0, "0 or more")) if not ok]
    if bad:
        raise InvalidArgumentError("; ".join(bad))
    if len(set(args.widths)) < len(args.widths):
        raise InvalidArgumentError(f"--widths {args.widths} lists a width twice; give each width once")
    args.widths = sorted(args.widths)  # an exponent needs them in order, not typed in order
    p = by_name(args.param, L=args.depth, optimizer=args.optimizer)
    if args.no_output_multiplier:
        if p.layers[p.L].a == 0:  # it checked the unchanged network, named "without output multiplier"
            raise InvalidArgumentError(f"--no-output-multiplier removes the readout multiplier, and {p.name} has none "
                                       f"(its readout's a = 0); leave it out, or check --param mup or ntk")
        p = p.with_layer(p.L, a=0)
        p = type(p)(p.name + " without output multiplier", p.layers, p.optimizer)
    cc = coord_check(p, args.widths, steps=args.steps, lr=args.lr, n_seeds=args.seeds, device=args.device,
                     base_width=args.base_width or None, progress=not args.no_progress)
    pred = derive(p)
    names = layer_names(p.L + 1)
    opt_name = {"sgd": "SGD", "adam": "Adam"}[args.optimizer]
    print(f"coordinate check of {p.name} ({opt_name}, lr {args.lr}"
          f"{f' at base width {args.base_width}' if args.base_width else ''}, {args.steps} steps, widths "
          f"{args.widths}, {args.seeds} seeds)")
    print(f"  tolerance: an exponent is judged against the muP value with a tolerance of at least {RESOLUTION} "
          f"({RESOLUTION_REASON}), widened to the measured next-order size where that is larger; an interval "
          f"wider than {MAX_WIDTH} (with tolerance) is INCONCLUSIVE")
    if p.L == 1:
        print("  note: depth 1 has no hidden-to-hidden layer; use --depth 2 or more to check the hidden-layer rule")
    w = max(len(n) for n in names)
    print(f"  {'layer':{w}s} {'init exp [95% CI]':>22s} {'theory':>6s} {'tol':>5s}  {'change exp [95% CI]':>22s} "
          f"{'theory':>6s} {'tol':>5s}  verdict")
    rows = []

    def fmt_tol(t):
        return f"{t:5.2f}" if t is not None else "  -  "

    def theory_change(l):
        """The abc table's exponent of the change the check measures after ``args.steps`` steps. A
        stable parametrization: the first step's own where that is all it ran, else TP4's later-step
        one. An unstable one: after one step, each layer up to the first that grows with n (above
        it, and at the output, the table's first-order exponent is only a lower bound); none after
        more steps (its output, and the loss's derivative, grow with n, so no fixed order holds).
        None where the table gives no exponent."""
        if pred.stable:
            if l == p.L:
                return str(pred.output_change)
            return str((pred.first_step_feature_change if args.steps == 1 else pred.feature_change)[l])
        if args.steps > 1 or not pred.first_step_exact[l]:
            return None
        return str(pred.first_step_feature_change[l])

    theory = {l: theory_change(l) for l in cc.layers}
    # after one step the table's column is that step's exact order (theory_change)
    agrees = cc.hold_to_table(theory, exact=args.steps == 1)
    for l in cc.layers:
        a, d = cc.act_exp[l], cc.delta_exp[l]
        th = theory[l]
        ta, td = cc.tolerances[l]
        print(f"  {names[l]:{w}s} {a.exponent:+6.2f} [{a.ci[0]:+.2f},{a.ci[1]:+.2f}]".ljust(w + 26)
              + f"{str(pred.preactivation[l]):>6s} {fmt_tol(ta)}  "
              + f"{d.exponent:+6.2f} [{d.ci[0]:+.2f},{d.ci[1]:+.2f}]".rjust(22)
              + f" {th or '-':>6s} {fmt_tol(td)}  {cc.verdicts[l].value}")
        rows.append({"layer": names[l], "init_exponent": a.exponent, "init_ci": list(a.ci),
                     "theory_init_exponent": str(pred.preactivation[l]), "init_tolerance": ta,
                     "change_exponent": d.exponent, "change_ci": list(d.ci), "theory_change_exponent": th,
                     "change_tolerance": td, "theory_agrees": agrees[l], "verdict": cc.verdicts[l].value,
                     "measured_verdict": cc.measured_verdicts[l].value})
    for l, r in zip(cc.layers, rows):
        if cc.verdicts[l] is not Verdict.PASS:
            print(f"  {names[l]}: {cc.reasons[l]}")
        if r["theory_agrees"] is False and r["measured_verdict"] == r["verdict"]:
            print(f"  {names[l]}: the abc table gives n^{r['theory_change_exponent']} for its change, outside the "
                  f"measured {r['change_exponent']:+.2f} widened by its tolerance: at these widths a term of another "
                  f"order still dominates (a larger --lr or wider --widths brings the table's term forward), or the "
                  f"network is not the table's")
    print(f"overall: {cc.overall.value} (muP desiderata); theory says: {pred.summary}")
    if not pred.stable:
        print("  theory column: '-' " + (f"after {args.steps} steps, since {p.name} is unstable and only its first "
                                        f"step has an order in n; --steps 1 compares the layers with it"
                                        if args.steps > 1 else
                                        f"where {p.name}, unstable, has no order that the table gives exactly: the "
                                        f"output and the layers above the first that grows (first order in the "
                                        f"learning rate is a lower bound there)"))
    if args.json:
        doc = {"param": p.name, "optimizer": args.optimizer, "lr": args.lr, "base_width": args.base_width or None,
               "steps": args.steps, "seeds": args.seeds, "widths": args.widths, "tolerance_floor": RESOLUTION,
               "layers": rows, "overall": cc.overall.value, "theory": pred.to_dict()}
        print(f"JSON: {write_json_atomic(args.json, doc)}")
    if args.plot:
        table = {l: (str(pred.preactivation[l]), r["theory_change_exponent"]) for l, r in zip(cc.layers, rows)}
        print(f"plot: {plot_coord_check(cc, args.plot, p.name, theory=table)}")
    return 1 if args.strict and cc.overall is not Verdict.PASS else 0


def _cmd_theory_table(args: argparse.Namespace) -> int:
    from sde_scales.atomic import write_json_atomic
    from sde_scales.parametrization import by_name
    from theory.abc import derive, format_table

    t = derive(by_name(args.param, L=args.depth, optimizer=args.optimizer))
    print(format_table(t))
    if args.json:
        print(f"JSON: {write_json_atomic(args.json, t.to_dict())}")
    return 0


def _cmd_collapse(args: argparse.Namespace) -> int:
    from sde_scales.analysis.collapse_table import run_collapse

    return run_collapse(args)


def _cmd_rate(args: argparse.Namespace) -> int:
    from sde_scales.rate_table import run_rate

    return run_rate(args)


def _cmd_fit_delay(args: argparse.Namespace) -> int:
    from sde_scales.fitting.report import run_fit_delay

    return run_fit_delay(args)


def _verdict_outputs(parser: argparse.ArgumentParser, json_help: str, plot_help: str, strict_help: str) -> None:
    """The outputs of a command that gives a verdict: ``--json`` (``-`` for standard output),
    ``--plot`` and ``--strict``."""
    parser.add_argument("--json", metavar="PATH", help=json_help + _JSON_STDOUT)
    parser.add_argument("--plot", metavar="PATH", help=plot_help)
    parser.add_argument("--strict", action="store_true", help=strict_help)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that states every flag's default (unless its text already does, or it has none)."""

    def _get_help_string(self, action):
        text = action.help or ""
        d = action.default
        if (action.option_strings and d is not None and d is not False and d != argparse.SUPPRESS
                and "default" not in text.lower()):
            shown = ",".join(map(str, d)) if isinstance(d, (list, tuple)) else d
            text += f" (default: {shown})"
        return text


class _Parser(argparse.ArgumentParser):
    """An argument parser whose help states every flag's default (:class:`_HelpFormatter`)."""

    def __init__(self, *args, **kw):
        kw.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kw)


def _add_depth(parser: argparse.ArgumentParser) -> None:
    """One name and one default for the number of hidden layers, in every subcommand."""
    parser.add_argument("--depth", "--layers", dest="depth", type=int, default=DEPTH, metavar="L",
                        help=f"hidden layers L of the MLP (input layer, L - 1 hidden-to-hidden layers, readout); "
                             f"default {DEPTH}, the paper's one-hidden-layer network; --layers is the same flag")


#: The default number of hidden layers of every subcommand (the paper's network has one).
DEPTH = 1


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="sde-scales",
                 description="Check the width-scaling theory of neural-network training numerically and symbolically.")
    sub = ap.add_subparsers(dest="command", required=True)  # subcommands are _Parsers too (argparse's default)

    v = sub.add_parser(
        "verify", help="check each claim on every kind of evidence and print a verdict per row",
        description="Judge the claims of the registry on each kind of evidence: symbolic (sympy derivation judged "
                    "against the claim), simulation (models that build the rate in: checks of the engine and "
                    "estimator) and training (trained muP networks, SP and NTK as controls). One row per claim and "
                    "kind of evidence, grouped into the paper's claims, other readings and consistency checks. "
                    "Quick run: about 3 minutes on 2 cores; full run: about 19 minutes, the collapse ladder included.",
        epilog="Exit status: 0 when the run completed (whatever the verdicts), 1 with --strict when a claim does "
               "not hold (a primary row is not PASS), 2 for bad input.")
    v.add_argument("--quick", action="store_true", help="widths 64..1024, 32 training seeds, fewer replicas")
    v.add_argument("--claims", nargs="+", metavar="ID", help="only these claim ids (default: all; see --list)")
    v.add_argument("--kinds", nargs="+", choices=["symbolic", "simulation", "training"],
                   help="only these kinds of evidence (default: all)")
    v.add_argument("--store", metavar="PATH", help="judge the training rows on this run store (from `sde-scales "
                   "sweep`, e.g. a GPU sweep) instead of training the built-in experiment (the coordinate check "
                   "trains its own networks all the same: it measures first steps, which a store does not keep; "
                   "the closing line and the JSON's trained_here name it)")
    v.add_argument("--train-dir", metavar="DIR", help="keep the built-in training's run store in DIR (resumed "
                   "on the next run); default: a temporary directory, removed afterwards")
    v.add_argument("--no-training", action="store_true", help="skip the training rows")
    v.add_argument("--json", metavar="PATH", help="write every row as strict JSON to PATH" + _JSON_STDOUT)
    v.add_argument("--plots", metavar="DIR", help="draw one rate plot per claim and kind of evidence into DIR")
    v.add_argument("--seed", type=int, default=None, help="root seed of every check (default 0)")
    v.add_argument("--symbolic-only", action="store_true", help="only the symbolic derivations (a few seconds)")
    v.add_argument("--strict", action="store_true", help="exit 1 when any selected claim does not hold")
    v.add_argument("--list", action="store_true", help="list the claims with their group and kinds of evidence "
                                                        "(--claims and --kinds select, --json writes the list)")
    v.add_argument("--no-progress", action="store_true", help="no progress bars")
    v.set_defaults(func=_cmd_verify)

    f = sub.add_parser(
        "fit-delay", help="fit a learning-rate-response law to loss curves and predict unseen schedules",
        description="Fit a law on the --fit curves (shared parameters), predict the --predict curves from their "
                    "learning rates alone, print metrics against a smoothed target, forecast --forecast schedules that were "
                    "never run, write JSON / plots / CSVs. "
                    "Learning rates come from each file's lr column (linear between logged steps), a per-step file, "
                    "or a --schedule spec; metrics are computed where a loss was logged. Every predicted final loss "
                    "comes with its standard deviation from the fit's parameters, plus the law's miss of its fitted "
                    "curves where it fails the lack-of-fit test (pred_sd; null where the fitted curves do not "
                    "determine it), and z, its error in units of that and the observed final loss's noise.",
        epilog="Exit status: 0 when the fit ran (whatever its warnings), 1 with --strict when the reported law's "
               "answer cannot be taken as given (the JSON's checks), 2 for bad input.")
    f.add_argument("--fit", action="extend", nargs="+", metavar="CSV",
                   help="curve to fit (several after one flag, as a shell pattern gives them, or the flag "
                        "repeated): CSV, Parquet, a JSON log (.jsonl lines, a list of records, or Hugging Face's trainer_state.json) or a TensorBoard run folder (its event files' "
                        "scalar tags as the columns; needs the tensorboard package; FILE#RUN: one run of a Weights & Biases panel "
                        "export), or a log as printed (.log, .out, or a .txt of key-value lines: nanoGPT's "
                        "'iter 100: loss 4.23', Megatron-LM's 'iteration 100/ 5000 | learning rate: 1.5E-04 | lm loss: "
                        "6.5E+00 |', 'step=100 lr=3e-4 loss=4.2'; sde_scales.fitting.text_logs) with columns step, lr, "
                        "loss (val_loss "
                        "optional; other common names such as global_step, learning_rate, train/loss are recognised, "
                        "see --columns); a file with a row for every step and the loss empty where it was not logged "
                        "is read as a per-step schedule")
    f.add_argument("--predict", action="extend", nargs="+", metavar="CSV",
                   help="curve to predict (several after one flag, or the flag repeated)")
    f.add_argument("--forecast", action="append", metavar="NAME:SPEC|[NAME:]FILE",
                   help="a schedule that has not been run, to predict: its loss curve from the reported law, with "
                        "its 95%% band and the predicted final loss (mean of the last 5%% of rows) with its standard "
                        "deviation, printed, in the JSON (forecasts), in --plot and as NAME.csv in --predictions; "
                        "SPEC as for --schedule, e.g. wsd:warmup=500,peak=1e-3,decay=linear,decay_start=40000,"
                        "total=50000, or a table of the schedule (CSV, TSV or Parquet with step and lr columns, "
                        "linear between its rows; a FILE without NAME: is named after its file name) (repeat for "
                        "several); every warning of a schedule beyond the "
                        "fitted curves applies, and counts for --strict (sde_scales.fitting.forecast)")
    f.add_argument("--forecast-every", type=int, default=None, metavar="STEPS",
                   help="steps between a forecast's rows (default: the total over 1,000; the last step is always a "
                        "row)")
    f.add_argument("--columns", metavar="KEY=NAME,...",
                   help="the files' names for step, lr, loss (val_loss), e.g. step=global_step,lr=learning_rate,"
                        "loss=train/loss; without it each is its own name or the one common alternative the file has "
                        "(sde_scales.fitting.curves.COLUMN_ALIASES), and a file with two candidates is refused")
    f.add_argument("--log-ema", type=float, default=None, metavar="BETA",
                   help="the --fit and --predict files log an exponential moving average of the loss with decay BETA "
                        "per step (m = BETA m + (1 - BETA) loss, as many training loops print it): each logged value "
                        "is turned back into the mean loss over its logging interval before anything is fitted or "
                        "scored (LossCurve.unsmooth_ema), so that the average's delay is not fitted as part of the "
                        "kernel; the first row keeps its value (skip it). Without it a fit of such a log warns of "
                        "correlated residuals")
    f.add_argument("--drop-spikes", action="store_true",
                   help="leave out of the fit and the scores every logged loss that the spike check names (more than "
                        "8 noise levels from the median of the 21 points around it, from --skip-steps on; "
                        "LossCurve.spikes), keeping every step's learning rate; the dropped steps are printed and "
                        "in the JSON (dropped_spikes). Without it such points are warned of and kept")
    f.add_argument("--log-running-mean", type=int, default=None, metavar="PERIOD",
                   help="the --fit and --predict files log the running mean of the loss since the mean was last reset, "
                        "every PERIOD steps (the steps per epoch: Keras's per-batch logs, timm's average meters), or "
                        "never with 0: each logged value is turned back into the mean loss over its logging interval "
                        "before anything is fitted or scored (LossCurve.unsmooth_running_mean), so that the mean's lag "
                        "(half the time since the reset) is not fitted as part of the kernel")
    f.add_argument("--store", metavar="PATH",
                   help="a run store of `sde-scales sweep`: fit the runs selected by --where (with the per-step "
                        "schedule each run used), predict those selected by --predict-where")
    f.add_argument("--where", metavar="COL=VAL,...", help="runs of --store to fit, e.g. param=mup,width=256")
    f.add_argument("--predict-where", metavar="COL=VAL,...", help="runs of --store to predict, e.g. schedule=wsd")
    f.add_argument("--metric", default=None, choices=["train_loss", "eval_loss"],
                   help="the store's loss to fit (default train_loss); with --store only (a file's loss column is "
                        "named with --columns loss=NAME)")
    f.add_argument("--per-seed", action="store_true",
                   help="one curve per run of --store (default: seed-averaged curves, one per configuration)")
    f.add_argument("--schedule", action="append", metavar="NAME:SPEC",
                   help="the learning rate at every step of curve NAME from a spec, checked against the logged "
                        "learning rates, e.g. cos:warmup=2160,peak=3e-4,decay=cosine,end=3e-5,total=72000 (keys: "
                        "total, peak, warmup, warmup_init, warmup_shape=linear|cosine, "
                        "decay=constant|cosine|linear|sqrt|exp|step, decay_start, decay_end, end; step: one drop to "
                        "end at decay_start, which it needs); repeat per curve; NAME is the file name without "
                        "extension, or the run folder's for a trainer_state.json or a Lightning metrics.csv. Without "
                        "it, a log that starts after step 0 assumes its first logged rate before it (with a warning "
                        "where that can matter). A file with the loss and no learning-rate column (a Weights & "
                        "Biases panel export) takes its rates from its spec")
    f.add_argument("--law", choices=["kernel", "momentum", "mpl", "auto"], default="kernel",
                   help="law to fit (default kernel); auto: choose among the laws and kernels by cross-validation "
                        "(leave one --fit curve out; with a single --fit curve, fit it to 50/65/80%% of its steps and "
                        "score the rest), report every candidate's error, and warn when the folds do not separate "
                        "the chosen law from another (a paired 95%% t interval on log RMSE ratios); then predict "
                        "with the chosen law, or, where the folds do not decide, with the mean of the laws they do "
                        "not separate (each fitted to all the --fit curves; their disagreement is in the band), and "
                        "print the range of final losses those laws predict for each --predict curve")
    f.add_argument("--workers", type=int, default=None,
                   help="processes for --law auto's fits or --average-time-scale's (default 1; the choice and "
                        "every number are the same for any count); with those only")
    f.add_argument("--no-progress", action="store_true",
                   help="no progress bar of --law auto's or --average-time-scale's fits (shown on a terminal only)")
    f.add_argument("--max-evaluations", type=int, default=None, metavar="N",
                   help="the optimiser's limit of evaluations per fit (default 2,000); a fit that reaches it says so "
                        "(a warning, and converged: false in the JSON); on a flat objective, as one smooth curve "
                        "gives, a higher limit lets it meet its tolerances, at the cost of time; it applies to "
                        "--law auto's fits and to each point of --profile too")
    f.add_argument("--kernel", choices=["nonparametric", "exp", "power", "instant"], default=None,
                   help="memory kernel of the kernel law, from sde_scales.kernels (default nonparametric: monotone q "
                        "from exponentials; instant: no delay, a baseline)")
    f.add_argument("--time", choices=["steps", "area"], default=None,
                   help="time of the kernel: steps or learning-rate area (default steps; --law auto tries both)")
    f.add_argument("--drops-only", action="store_true",
                   help="kernel law without its level term B * peak learning rate: the drops alone, as in the "
                        "momentum and multi-power laws (default: with it, so runs with different peak learning "
                        "rates sit at different loss levels)")
    f.add_argument("--offset", choices=["test", "on", "off"], default=None,
                   help="progress term of the kernel law: on, A * (S1 + S0)^-alpha with the area offset S0 fitted (it "
                        "bends the power law of the learning-rate area S1 where a run's early fall is steeper than "
                        "its later course predicts); off, the plain A * S1^-alpha (its limit S0 -> 0); test "
                        "(default), fit both and keep the offset only where the fitted curves reject the plain term "
                        "(a likelihood-ratio test at the 1%% level, its residuals' autocorrelation counted; in the "
                        "JSON as fit.offset_test); it shapes --law auto's kernel candidates as well")
    f.add_argument("--average-time-scale", action="store_true",
                   help="predict with the law's fits at every half decade of its time scale over the range the "
                        "fit searches (1 step to 100,000, or to twice the longest curve) and at the plain fit's "
                        "own, weighted by their likelihood on the fitted curves (and the plain fit by the width "
                        "of the time scales nearest it), with the spread between them in the band "
                        "(sde_scales.fitting.time_scale_average), "
                        "instead of the one fitted time scale; for laws with one time scale (--kernel exp, in steps "
                        "or area, or --law momentum), where the fitted curves leave it open (one smooth curve); "
                        "it costs one fit per half decade, 11 up to 50,000 steps, and the plain fit")
    f.add_argument("--skip-steps", type=int, default=0, metavar="STEP",
                   help="ignore rows before this step, in the fit and the metrics")
    f.add_argument("--smooth-steps", type=int, default=None, metavar="STEPS",
                   help="window, in steps, of the centred moving average the metrics compare predictions with "
                        "(default 1,000, or 5%% of the shortest curve's length where that is shorter; a window "
                        "over more than a quarter of a curve gets a warning)")
    f.add_argument("--shared-noise", action="store_true",
                   help="also report metrics with the optional shared batch-noise correction")
    f.add_argument("--profile", action="store_true",
                   help="profile the kernel time scale (an identifiability interval; about 30x the cost of a fit)")
    f.add_argument("--compare", action="store_true", help="fit all laws and print them side by side")
    f.add_argument("--json", metavar="PATH", help="write the fit, every metric and every warning as strict JSON" + _JSON_STDOUT)
    f.add_argument("--strict", action="store_true",
                   help="exit 1 (after writing every output) when the reported law's answer cannot be taken as given: "
                        "its optimiser stopped at the evaluation limit, it misses its fitted curves by more than their "
                        "noise, a prediction extrapolates beyond the fitted curves, a predicted final loss has no "
                        "band, or a fitted or predicted loss rises where its learning rate does not (the JSON's "
                        "checks)")
    f.add_argument("--plot", metavar="PATH", help="observed vs predicted, with the prediction's 95%% band from the "
                                                  "fit's parameters and the learning rate underneath (PNG)")
    f.add_argument("--predictions", metavar="DIR", help="one CSV per predicted curve: step, lr, loss, predicted, "
                                                        "predicted_sd (empty where not determined); one per "
                                                        "--forecast: step, lr, predicted, predicted_sd")
    f.set_defaults(func=_cmd_fit_delay)

    th = sub.add_parser("theory", help="symbolic tools: the derived exponent table of a parametrization")
    thsub = th.add_subparsers(dest="theory_command", required=True)
    tt = thsub.add_parser("table", help="exponents of init, update and feature change per layer, and the classification")
    tt.add_argument("--param", choices=["mup", "sp", "ntk"], required=True, help="the parametrization")
    _add_depth(tt)
    tt.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd",
                    help="the optimizer the learning-rate exponents are for")
    tt.add_argument("--json", metavar="PATH", help="also write the table as JSON" + _JSON_STDOUT)
    tt.set_defaults(func=_cmd_theory_table)

    sw = sub.add_parser("sweep", help="train a width x learning-rate x seed grid into a resumable Parquet run store",
                        description="Runs that differ only in learning rate are trained together as one stacked model. "
                                    "Finished runs are skipped when the same sweep runs again; damaged run files "
                                    "are moved aside and retrained. Lists are comma-separated (--widths 64,128,256).",
                        epilog="Reading the store afterwards (see the README, 'Reading a run store'):\n"
                               "  from sde_scales.train.store import RunStore\n"
                               "  store = RunStore('OUT'); runs, traj = store.read()\n"
                               "Exit status: 0 when every stack ran (diverged runs included, and counted), 2 for bad "
                               "input, 143 when stopped by SIGTERM (run the same command again to resume).")
    sw.add_argument("--param", choices=["mup", "sp", "ntk"], default="mup", help="parametrization of every run")
    sw.add_argument("--dataset", choices=["synthetic", "mixture", "powerlaw", "teacher-student", "cifar10"],
                    default="synthetic", help="training data (cifar10 is downloaded to --data-root when absent)")
    sw.add_argument("--widths", type=_ints, default=[64, 128], metavar="N,N,...", help="hidden widths")
    sw.add_argument("--lrs", type=_floats, default=[0.05, 0.1, 0.2], metavar="LR,LR,...",
                    help="base learning rates (per layer scaled by the parametrization; see --base-width)")
    sw.add_argument("--seeds", type=_ints, default=[0], metavar="S,S,...", help="seeds (initialisation and data order)")
    sw.add_argument("--epochs", type=float, default=1.0, help="passes over the training set (may be fractional)")
    sw.add_argument("--batch-size", type=int, default=128, metavar="B", help="minibatch size (at most --n-train)")
    _add_depth(sw)
    sw.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd", help="per-layer muP-scaled SGD or Adam")
    sw.add_argument("--schedule", choices=["constant", "cosine", "wsd", "step", "eight_one_one"], default="constant",
                    help="learning-rate schedule over the run's steps")
    sw.add_argument("--n-train", type=int, default=8192, metavar="N",
                    help="training samples (synthetic data sets; CIFAR-10 uses at most 50,000)")
    sw.add_argument("--d-in", type=int, default=3072, metavar="D",
                    help="input dimension of the synthetic data sets (CIFAR-10 is 3072)")
    sw.add_argument("--log-every", type=int, default=10, metavar="STEPS", help="steps between logged rows")
    sw.add_argument("--base-width", type=int, default=0, metavar="N0",
                    help="width of the base model at which the learning rates are meant, as in mup: at width N0 "
                         "the network is the SP network with these rates; 0 means base width 1")
    sw.add_argument("--checkpoint-every", type=float, default=0, metavar="EPOCHS",
                    help="save each stack's state every EPOCHS epochs, so that a killed sweep resumes inside a "
                         "stack and loses at most that much training; 0: no checkpoints (a kill loses the "
                         "stacks in flight)")
    sw.add_argument("--config", metavar="TOML",
                    help="grid and run settings from a TOML file (lists params, widths, lrs, seeds and any run "
                         "field, e.g. epochs = 2.0); its values override the flags")
    sw.add_argument("--executor", choices=["local", "process", "dask"], default="local",
                    help="local: in this process; process: a pool of --workers processes; dask: dask.distributed")
    sw.add_argument("--workers", type=int, default=None,
                    help="worker processes (process and dask executors; default 2)")
    sw.add_argument("--scheduler", metavar="ADDRESS",
                    help="dask scheduler address, or 'local' for a LocalCluster of --workers (default local)")
    sw.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    sw.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32",
                    help="fp32; tf32 matmuls (CUDA only: refused for a run on the CPU, which would train in "
                         "fp32); or bf16 copies of the operands of the forward and backward GEMMs (weights and "
                         "updates stay fp32; on the CPU too, at a slower pace)")
    sw.add_argument("--compile", action="store_true",
                    help="torch.compile each stack's forward and backward passes (worth it for long GPU runs; the "
                         "first steps pay the compilation; part of the run id, as fused kernels may round differently)")
    sw.add_argument("--data-root", default="data", metavar="DIR", help="where CIFAR-10 is (or is downloaded to)")
    sw.add_argument("--out", required=True, metavar="DIR", help="run store directory (created; resumed when it exists)")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.set_defaults(func=_cmd_sweep)

    cc = sub.add_parser("coordcheck", help="per-layer activation and update sizes against width, PASS/FAIL per layer",
                        description="Train a stack of networks per width for a few steps and fit, per layer, the "
                                    "exponent in n of the pre-activations at initialisation and of their change; "
                                    "judge them against the muP desiderata (Theta(1) everywhere, O(1) logits at "
                                    "initialisation) with the tolerance printed.",
                        epilog="Exit status: 0 when the check ran (whatever the verdict), 1 with --strict unless the "
                               "overall verdict is PASS, 2 for bad input.")
    cc.add_argument("--param", choices=["mup", "sp", "ntk"], required=True, help="the parametrization to check")
    cc.add_argument("--widths", type=_ints, default=[64, 128, 256, 512, 1024], metavar="N,N,...",
                    help="widths (at least 3; at least 4 for a PASS or FAIL: the tolerance for next-order terms "
                         "is measured from the curvature of the series)")
    _add_depth(cc)
    cc.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd",
                    help="the optimizer whose abc table and update are checked")
    cc.add_argument("--steps", type=int, default=3, help="optimizer steps before the change is measured (>= 1)")
    cc.add_argument("--lr", type=float, default=0.1, help="base learning rate (> 0)")
    cc.add_argument("--base-width", type=int, default=0, metavar="N0",
                    help="base width of the learning rate, as in sweep (changes constants, not exponents); 0 means 1")
    cc.add_argument("--seeds", type=int, default=10,
                    help="networks per width; at least 10 for a trusted interval, at least 3 to run")
    cc.add_argument("--no-output-multiplier", action="store_true", help="remove the readout multiplier (a planted bug)")
    cc.add_argument("--device", default="cpu", help="cpu, cuda or auto (CUDA when present) (default: cpu)")
    cc.add_argument("--no-progress", action="store_true", help="no progress bar (shown on a terminal only)")
    _verdict_outputs(cc, "write the per-layer exponents and verdicts as JSON",
                     "draw the check: one panel per quantity, seed error bars (PNG)",
                     "exit 1 unless the overall verdict is PASS")
    cc.set_defaults(func=_cmd_coordcheck)

    c = sub.add_parser("converge", help="convergence study of a solver on a problem with an exact solution",
                       description="Strong and weak errors of a solver against the exact solution on a ladder of "
                                   "step sizes dt = T / 2**level, with the fitted orders, their intervals, and a "
                                   "verdict per order: PASS, FAIL or INCONCLUSIVE against the order the solver "
                                   "states (or the one given with --expect-strong / --expect-weak). The rule: the "
                                   "slope over the ladder, over its fine end and extrapolated past it must agree "
                                   "with the order; a slope may exceed it by 3 bootstrap standard errors + 0.1 (a "
                                   "higher-order term keeps local slopes above the order) but fall short of it "
                                   "only by 3 standard errors. Errors that fall faster than the order are "
                                   "INCONCLUSIVE, never FAIL: a higher-order term may still dominate. A PASS says "
                                   "the errors fall like dt^p over the ladder's steps. See "
                                   "sde_scales.sde.convergence.",
                       epilog="Exit status: 0 when the study ran (whatever the verdicts), 1 with --strict unless "
                              "both orders PASS, 2 for bad input.")
    c.add_argument("--problem", choices=["gbm", "ou", "diagonal", "general"], default="gbm",
                   help="gbm: geometric Brownian motion; ou: Ornstein-Uhlenbeck; diagonal: 2-d GBM with diagonal "
                        "noise; general: a linear system with commuting noise matrices")
    c.add_argument("--solver", choices=["em", "milstein"], default="em", help="Euler-Maruyama or Milstein")
    c.add_argument("--paths", type=int, default=4000, help="Monte-Carlo paths per level (30 or more for a verdict)")
    c.add_argument("--coarsest", type=int, default=4, help="coarsest level: dt = T / 2**coarsest")
    c.add_argument("--finest", type=int, default=9, help="finest level (at least coarsest + 3 for a verdict)")
    c.add_argument("--seed", type=int, default=0, help="root seed of the Brownian paths")
    c.add_argument("--expect-strong", type=float, metavar="P",
                   help="judge the strong order against P instead of the solver's stated order")
    c.add_argument("--expect-weak", type=float, metavar="P",
                   help="judge the weak order against P instead of the solver's stated order")
    _verdict_outputs(c, "write errors, orders and verdicts as strict JSON to PATH",
                     "draw the errors against dt with the fitted and the claimed slopes, one panel per order (PNG)",
                     "exit 1 unless both orders PASS")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=_cmd_converge)

    r = sub.add_parser("rate", help="verdict on a claimed width rate from a table of your own measurements",
                       description="Judge a claimed rate, Theta(n^p), O(n^p) or a separation of two exponents, on "
                                   "a table of measurements: one row per replica (an independent run or seed) at "
                                   "each width, a width column and a value column. The reading says which "
                                   "quantity of the replicas is the power of the width: fluctuation (their "
                                   "standard deviation), bias (their mean's distance from --reference), mean "
                                   "(their mean, positive), values (one exact value per width). The exponent "
                                   "comes with a percentile-bootstrap interval over replicas, the local slopes at "
                                   "the ends of the width range, and a tolerance for next-order terms measured "
                                   "from their change; PASS, FAIL or INCONCLUSIVE by the rules of "
                                   "sde_scales.rates (the README's 'The verdict rules').",
                       epilog="Exit status: 0 when the check ran (whatever the verdict), 1 with --strict unless it "
                              "is PASS, 2 for bad input. Example: sde-scales rate runs.csv --claim Theta:-1/2 "
                              "--value w_delta (the spread of a weight's change over seeds falls like n^-1/2).")
    r.add_argument("table", metavar="TABLE", nargs="?", help="CSV, TSV or Parquet: one row per replica per width "
                   "(or --store)")
    r.add_argument("--store", metavar="DIR", help="read the measurements from a run store of sde-scales sweep instead "
                   "of a table: each finished run a replica (needs --variable)")
    r.add_argument("--variable", metavar="NAME", help="with --store: eval_loss, grad_norm, act_rms (macro), "
                   "w<layer>_value or w<layer>_disp (a tracked weight's effective value or displacement; add _raw "
                   "for raw units)")
    r.add_argument("--param", choices=["mup", "sp", "ntk"], default=None,
                   help="with --store: the parametrization whose runs are read (default mup)")
    r.add_argument("--lr", type=float, default=None, help="with --store: the learning rate whose runs are read "
                   "(default: the store's one rate of --param)")
    r.add_argument("--fraction", type=float, default=None, help="with --store: the point of training, as a fraction "
                   "of each run's steps (the last logged step at or before it; default 1, the end)")
    r.add_argument("--claim", required=True, metavar="KIND:P",
                   help="Theta:P, O:P (P a number or a fraction: -1/2) or separation:D (p_value - p_minus = D; "
                        "needs --minus)")
    r.add_argument("--reading", choices=["fluctuation", "bias", "mean", "values"], default="fluctuation",
                   help="the quantity whose exponent is judged (default fluctuation)")
    r.add_argument("--width", default="width", metavar="COLUMN", help="the width column (default width)")
    r.add_argument("--value", default="value", metavar="COLUMN", help="the measured column (default value)")
    r.add_argument("--replica", default="auto", metavar="COLUMN",
                   help="the column naming the run each row comes from: a run's several rows (tracked weights, "
                        "say) are components of one replica, pooled and resampled together (default: replica, "
                        "seed or run, the first the table has; none: every row a replica)")
    r.add_argument("--minus", metavar="COLUMN",
                   help="for a separation: the second measured column, of the same replicas (rows)")
    r.add_argument("--reference", metavar="REF",
                   help="for --reading bias: the limit value, a number, richardson (extrapolated in 1/n from the "
                        "two widest widths, which assumes a 1/n bias and bends the slope toward -1), widest, or "
                        "differences: no limit, the differences of successive widths' means, which fall with the "
                        "bias's exponent when the widths are in a constant ratio (64, 128, 256, ...; at least 4, 5 "
                        "for a PASS)")
    r.add_argument("--confidence", type=float, default=0.95, help="level of the bootstrap interval (default 0.95)")
    r.add_argument("--resamples", type=int, default=None,
                   help="bootstrap resamples (default 2000; the values reading has no bootstrap)")
    r.add_argument("--seed", type=int, default=None,
                   help="seed of the bootstrap (default 0; the same seed, the same interval)")
    _verdict_outputs(r, "write the estimate and the verdict as strict JSON",
                     "the quantity against width, log-log, with the fitted and the claimed slopes (PNG)",
                     "exit 1 unless the verdict is PASS")
    r.set_defaults(func=_cmd_rate)

    co = sub.add_parser("collapse", help="supercollapse (Qiu et al.) of your own loss curves of several model sizes",
                        description="Normalise the loss curves of several model sizes, each trained to its own "
                                    "horizon (its last logged step), as Qiu et al. do: l(x) = (L(x T) - L0) / "
                                    "(mean final loss - L0), x = step / T; then set the spread of the sizes' "
                                    "seed-mean curves, Delta(x), against the seed noise sigma(x) and judge the "
                                    "supercollapse Delta <= sigma on x >= x0 by the bootstrap interval of max "
                                    "Delta/sigma over seeds (sde_scales.analysis.collapse). The table: one row per "
                                    "logged step of each run, with the run's size, seed, step and loss.",
                        epilog="Exit status: 0 when the check ran (whatever the verdict), 1 with --strict unless it "
                               "is PASS, 2 for bad input. L0, the irreducible loss, comes from a fit of the "
                               "loss-compute frontier (sde_scales.analysis.collapse.fit_frontier) or your own "
                               "scaling-law fit.")
    co.add_argument("table", metavar="TABLE", help="CSV, TSV or Parquet: size, seed, step, loss per row")
    co.add_argument("--L0", type=float, required=True, help="the irreducible loss the curves are normalised by")
    co.add_argument("--size", default="size", metavar="COLUMN", help="the model-size column (default size)")
    co.add_argument("--seed-column", default="seed", metavar="COLUMN", help="the seed column (default seed)")
    co.add_argument("--step", default="step", metavar="COLUMN", help="the step column (default step)")
    co.add_argument("--loss", default="loss", metavar="COLUMN", help="the loss column (default loss)")
    co.add_argument("--x0", type=float, default=0.2, help="the judged window starts at x0 (default 0.2)")
    co.add_argument("--grid-points", type=int, default=101, help="points of the x grid (default 101)")
    co.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of the seeds (default 1000)")
    co.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    _verdict_outputs(co, "write the deviation, noise floor and verdict as strict JSON",
                     "the normalised curves, and Delta against sigma (PNG)", "exit 1 unless the verdict is PASS")
    co.set_defaults(func=_cmd_collapse)
    return ap


def _check_outputs(args) -> None:
    """The output paths of a command, checked before it works: a file flag that names a folder, a
    folder flag that names a file, or a plot whose suffix matplotlib cannot write ended a finished
    run in a traceback, its results lost."""
    from pathlib import Path

    from sde_scales.atomic import check_writable
    from sde_scales.errors import InvalidArgumentError

    for flag in ("json", "plot"):
        value = getattr(args, flag, None)
        if value is None or (flag == "json" and value == STDOUT):
            continue
        p = Path(value)
        if p.is_dir():
            raise InvalidArgumentError(f"--{flag} {value} is a folder; give a file in it, e.g. "
                                       f"{p / ('results.json' if flag == 'json' else 'plot.png')}")
        if _file_on_the_way(p):
            raise InvalidArgumentError(f"--{flag} {value}: a part of the path before its file name is a file")
        check_writable(p)
        if flag == "plot" and p.suffix:
            from matplotlib.figure import Figure

            kinds = Figure().canvas.get_supported_filetypes()
            if p.suffix[1:].lower() not in kinds:
                raise InvalidArgumentError(f"--plot {value}: matplotlib cannot write {p.suffix!r} files; give one of "
                                           f"{', '.join('.' + k for k in sorted(kinds))} (e.g. {p.with_suffix('.png')})")
    for flag in ("plots", "predictions", "out", "train_dir"):
        value = getattr(args, flag, None)
        if value is not None:
            why = _not_a_folder(value)
            if why:
                raise InvalidArgumentError(f"--{flag.replace('_', '-')} {value} {why}")
            check_writable(value, folder=True)


def _file_on_the_way(path) -> bool:
    """Whether a folder above ``path`` is a file (nothing can be written there)."""
    return any(q.exists() and not q.is_dir() for q in path.parents)


def _not_a_folder(value) -> str | None:
    """Why ``value`` cannot be an output folder (an existing file, or a file on the way to it), or
    None."""
    from pathlib import Path

    p = Path(value)
    if p.exists() and not p.is_dir():
        return "is a file; give a folder (created where it does not exist)"
    if _file_on_the_way(p):
        return "cannot be a folder: a part of the path before it is a file"
    return None


def output_folder(value: str) -> str:
    """An ``argparse`` type for an output folder flag (the experiments' ``--out``): an existing file,
    or a file on the way to the folder, is refused before any work (exit 2) rather than end a
    finished run in a traceback."""
    import argparse

    from sde_scales.atomic import check_writable
    from sde_scales.errors import DataFileError

    why = _not_a_folder(value)
    if why:
        raise argparse.ArgumentTypeError(f"{value} {why}")
    try:
        check_writable(value, folder=True)
    except DataFileError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def main(argv: list[str] | None = None) -> int:
    import contextlib

    args = build_parser().parse_args(argv)
    # --json -: the JSON alone on standard output (for a pipe), the printed table on standard error
    to_stdout = getattr(args, "json", None) == STDOUT
    try:
        with contextlib.redirect_stdout(sys.stderr) if to_stdout else contextlib.nullcontext():
            _check_outputs(args)
            return int(args.func(args) or 0)
    except ValueError as exc:  # our errors are ValueError subclasses with the fix in the message
        from sde_scales.errors import SDEScalesError

        if isinstance(exc, SDEScalesError):
            print(f"sde-scales: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
