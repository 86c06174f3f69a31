r"""The numeric checks behind the claims: each runs an experiment (or reads a run store) and returns
one or more :class:`Measurement` records.

Two kinds of numeric evidence:

simulation
    The width-n model (:mod:`sde_scales.models.width`) builds :math:`n^{-1/2}` coordinate noise
    and initial spread in by construction, so its rows check that the *engine and the estimator*
    recover the rates that construction implies (they keep their exponents with the drift switched
    off). They are checks of the model, not evidence for the theorem. Likewise the delay model
    builds a lag of :math:`\tau \ln 2` in through its exponential kernel.
training
    muP networks trained with SGD on a synthetic teacher task (:data:`TRAINING_QUICK`,
    :data:`TRAINING_FULL`), every seed with its own initialisation and its own minibatch order,
    seeds of one width trained together as one stacked model; or any run store given with
    ``--store``. Macro-variables: loss on a fixed evaluation batch, gradient norm, RMS of the hidden
    pre-activations; micro-variables: tracked individual weights (effective units), their value
    and their displacement from initialisation. SP and NTK networks trained the same way are the
    controls. A width whose loss has not covered half of its way to its plateau makes the row
    INCONCLUSIVE.

Settings (:class:`Settings`) fix the experiment size; ``quick`` is the small version that
``sde-scales verify --quick`` runs in under two minutes on two cores. Seeds of every check come from
one ``numpy.random.SeedSequence`` spawned by purpose (:func:`child_seed`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from sde_scales import seeds
from sde_scales.errors import InvalidArgumentError
from sde_scales.models.delay import DelayModel, Exponential, Instantaneous, lag_from_curves
from sde_scales.models.nqm import NoisyQuadraticModel
from sde_scales.models.width import Coupling, WidthModel, WidthSample, simulate_widths
from sde_scales.rates import (
    MIN_REPLICAS,
    ExponentEstimate,
    bias_exponent,
    statistic_exponent,
    exponent_difference,
    exponent_from_values,
    fluctuation_exponent,
)
from sde_scales.schedules import PiecewiseLinear
from sde_scales.validation import is_whole

__all__ = ["Measurement", "Settings", "TRAINING_QUICK", "TRAINING_FULL", "WIDTH_BASE", "child_seed",
           "training_data", "width_sample"]


@dataclass(frozen=True)
class Settings:
    """Size of the experiments and where training evidence comes from.

    ``quick``: fewer widths and replicas. ``store``: judge the training rows on this run store
    (no training). ``train_dir``: where the built-in training writes its store (kept, and resumed
    on the next run); None trains into a temporary directory that is removed afterwards.
    ``training``: False skips the training rows."""

    quick: bool = False
    seed: int = 0
    store: str | None = None
    train_dir: str | None = None
    training: bool = True
    progress: bool = False

    def __post_init__(self) -> None:
        if not is_whole(self.seed, 0):
            raise InvalidArgumentError(f"seed={self.seed!r}; give a whole number >= 0")

    @property
    def widths(self) -> tuple[int, ...]:
        """Widths of the width-model simulation: a range of 64x (quick) or 128x, so that the local
        slope's change across it (the tolerance for next-order terms) is pinned down."""
        return (64, 128, 256, 512, 1024, 2048, 4096) if self.quick else (64, 128, 256, 512, 1024, 2048, 4096, 8192)

    @property
    def replicas(self) -> int:
        return 1000 if self.quick else 3000

    @property
    def dt(self) -> float:
        return 0.01


def child_seed(settings: Settings, purpose: str) -> int:
    """A seed for one purpose, from one SeedSequence tree rooted at ``settings.seed``."""
    ss = seeds.child(settings.seed, "theory.check", seeds.named(purpose))
    return int(ss.generate_state(1)[0])


@dataclass(frozen=True)
class Measurement:
    """What a numeric check returns for one variable.

    ``estimate`` is the exponent estimate, or None when no estimate could be made (then
    ``inconclusive`` says why). ``inconclusive`` is a reason that makes the verdict INCONCLUSIVE
    whatever the rate says (e.g. a width not trained far enough); ``extra_fail`` a reason that
    overrides a PASS (a second condition of the claim failed). ``role``: ``primary`` (the row the
    claim is judged on), ``additional`` (more variables of the same networks) or ``control``
    (another parametrization, to show the check tells them apart)."""

    estimate: ExponentEstimate | None
    model: str
    variable: str = ""
    param: str = ""
    role: str = "primary"
    extra: dict = field(default_factory=dict)
    extra_fail: str | None = None
    inconclusive: str | None = None
    note: str | None = None
    plot_xlabel: str = r"width $n$"
    plot_ylabel: str = ""
    #: a stated smallest tolerance for next-order terms, and why (``sde_scales.rates.verdict``'s
    #: ``floor``): the coordinate check's, whose first steps carry corrections of known size
    floor: float = 0.0
    floor_reason: str = ""


# ---------------------------------------------------------------------------------------------
# simulation: the width model, the NQM and the delay model

#: The width model used for Theorem 4.1: the mean-field two-layer tanh network fitting a
#: teacher value, at the muP coordinate scale beta = 1/2.
WIDTH_BASE = WidthModel(n=1, coupling=Coupling.TANH_TEACHER, q=[0.8], beta=0.5, sigma=1.0, c=0.5, s=1.0,
                        eta=1.0, T=1.0)
WIDTH_MODEL_TEXT = ("width-n system, tanh teacher: dtheta_i = (y - M)(1 - tanh^2 theta_i) dt + n^-1/2 dW_i, "
                    "M = mean tanh(theta_i), theta_i(0) = 0.5 + n^-1/2 xi_i, y = 0.8, T = 1")
WIDTH_MODEL_WHAT = ("the width model builds n^-1/2 coordinate noise and initial spread in; this row checks that "
                    "the engine and the estimator recover the rates that construction implies (a check of the "
                    "model, not evidence for the theorem)")


_WIDTH_SAMPLES: dict = {}


def width_sample(settings: Settings, base: WidthModel = WIDTH_BASE) -> WidthSample:
    """One simulation per (settings, model), shared by the claims that read it (the model holds
    arrays, so it is keyed by its repr)."""
    key = (settings.quick, settings.seed, repr(base))
    if key not in _WIDTH_SAMPLES:
        if len(_WIDTH_SAMPLES) >= 8:
            _WIDTH_SAMPLES.clear()
        _WIDTH_SAMPLES[key] = simulate_widths(base, settings.widths, settings.replicas, settings.dt,
                                              child_seed(settings, "width-model"))
    return _WIDTH_SAMPLES[key]


def _model(settings: Settings, base: WidthModel = WIDTH_BASE) -> str:
    text = WIDTH_MODEL_TEXT if base == WIDTH_BASE else repr(base)
    return f"{text}; widths {list(settings.widths)}, {settings.replicas} replicas, EM dt={settings.dt}"


def _sim(settings, base, est, ylabel, note=""):
    return Measurement(est, _model(settings, base) + note, variable="width model", param="simulation",
                       plot_ylabel=ylabel)


def macro_fluctuation(settings: Settings, base: WidthModel = WIDTH_BASE) -> Measurement:
    s = width_sample(settings, base)
    return _sim(settings, base, fluctuation_exponent(s.widths, s.macro, seed=settings.seed),
                r"std over replicas of $M_n(T)$")


def micro_fluctuation(settings: Settings, base: WidthModel = WIDTH_BASE) -> Measurement:
    s = width_sample(settings, base)
    return _sim(settings, base, fluctuation_exponent(s.widths, s.micro, seed=settings.seed),
                r"std over replicas of $\theta_1(T)$")


def macro_bias(settings: Settings, base: WidthModel = WIDTH_BASE) -> Measurement:
    s = width_sample(settings, base)
    return _sim(settings, base, bias_exponent(s.widths, s.macro, s.macro_limit, seed=settings.seed),
                r"$|\mathbb{E}\,M_n(T) - M_\infty(T)|$", "; reference: mean-field limit of the same scheme")


def micro_bias(settings: Settings, base: WidthModel = WIDTH_BASE) -> Measurement:
    s = width_sample(settings, base)
    # E theta_1 = E mean_i theta_i by exchangeability; the coordinate mean has far less noise
    return _sim(settings, base, bias_exponent(s.widths, s.coord_mean, s.micro_limit, seed=settings.seed),
                r"$|\mathbb{E}\,\theta_1(T) - \theta_\infty(T)|$",
                "; reference: mean-field limit; E theta_1 estimated by the coordinate mean (exchangeable)")


def separation(settings: Settings, base: WidthModel = WIDTH_BASE) -> Measurement:
    s = width_sample(settings, base)
    return _sim(settings, base, exponent_difference(s.widths, s.macro, s.micro, seed=settings.seed),
                r"$\mathrm{std}\,M_n / \mathrm{std}\,\theta_1$")


def early_optimum(settings: Settings) -> Measurement:
    widths = (64, 256, 1024, 4096, 16384) if settings.quick else (64, 256, 1024, 4096, 16384, 65536)
    t0, T = 3, 20
    gaps = [NoisyQuadraticModel(n).early_late_gap(t0, T) for n in widths]
    est = exponent_from_values(widths, gaps)
    m = NoisyQuadraticModel(widths[0])
    return Measurement(
        est,
        f"NQM: two halves with curvatures (1, 20), SGD noise variance 0.01 h / n, t0 = {t0}, T = {T} steps; "
        f"eta*(t) exact (closed-form expected loss), interval from the least-squares fit",
        variable="NQM", param="simulation",
        extra={"eta_star_t0_smallest_width": m.optimal_lr(t0), "eta_star_T_smallest_width": m.optimal_lr(T),
               "eta_deterministic": m.eta_deterministic},
        plot_ylabel=r"$|\log\eta^*(t_0) - \log\eta^*(T)|$",
    )


def delay_lag(settings: Settings) -> Measurement:
    """Lag of the loss after a learning-rate drop against the kernel time scale, and at zero memory."""
    taus = (0.025, 0.05, 0.1, 0.2, 0.4)  # five scales: the quadratic fit that measures curvature needs 5
    R = 256 if settings.quick else 1024
    dt, t_drop, eta0, eta1, C = 1e-3, 1.0, 1.0, 0.3, 1.0
    sched = PiecewiseLinear.step_drop(eta0, eta1, t_drop)
    curves = []
    t_axis = None
    for tau in taus:
        res = DelayModel(sched, Exponential(tau), C=C).simulate(t_drop + 8 * max(taus), dt, R,
                                                                seed=child_seed(settings, f"delay-{tau}"), save_every=2)
        t_axis = res.t
        curves.append(res.loss)  # (n_save, R)
    zero = DelayModel(sched, Instantaneous(), C=C).simulate(t_drop + 1.0, dt, R, seed=child_seed(settings, "delay-0"),
                                                            save_every=2)
    lag0 = float(lag_from_curves(zero.t, zero.loss, t_drop, C * (eta0 - eta1)))
    gain = C * (eta0 - eta1)
    # the lag of each kernel scale with its interval and curvature, by resampling replicas
    est = statistic_exponent(taus, curves, lambda x: lag_from_curves(t_axis, x, t_drop, gain), reading="values",
                             n_resamples=500, seed=child_seed(settings, "delay-bootstrap"))
    point_lags = est.values
    save_dt = float(t_axis[1] - t_axis[0])
    extra_fail = None
    if not (abs(lag0) <= save_dt):
        extra_fail = f"lag with the zero-memory kernel is {lag0:.4g}, not within one save interval {save_dt:g} of 0"
    return Measurement(
        est,
        f"delay model: eta drops {eta0} -> {eta1} at t = {t_drop}, exponential kernels tau in {list(taus)}, "
        f"loss noise 0.05 eta(t) xi(t), {R} replicas, EM dt = {dt}; lag = half-response time of the mean loss",
        variable="delay model", param="simulation",
        extra={"lags": point_lags.tolist(), "closed_form_lags": (np.asarray(taus) * np.log(2)).tolist(),
               "lag_zero_kernel": lag0},
        extra_fail=extra_fail, plot_xlabel=r"kernel time scale $\tau$", plot_ylabel="lag (time to half response)",
    )


# ---------------------------------------------------------------------------------------------
# training: trained networks from a run store

#: The built-in training experiment: muP (and SP, NTK as controls) MLPs with one hidden layer,
#: SGD at one learning rate, on a 16-d teacher-student task (10 classes), every seed with its own
#: initialisation and minibatch order.
TRAINING_QUICK = dict(widths=(64, 128, 256, 512, 1024), seeds=32, steps=200, lr=0.5, params=("mup", "sp", "ntk"),
                      d_in=16, n_train=2048, batch_size=64, depth=1)
TRAINING_FULL = dict(widths=(64, 128, 256, 512, 1024, 2048, 4096), seeds=128, steps=400, lr=0.5,
                     params=("mup", "sp", "ntk"), d_in=16, n_train=2048, batch_size=64, depth=1)
#: Fraction of its way to the plateau that the loss must cover at every width.
MIN_PROGRESS = 0.5


def training_configs(spec: dict, seed: int = 0):
    """The RunConfigs of a training spec (``TRAINING_QUICK`` or ``TRAINING_FULL``)."""
    from sde_scales.train.trainer import config_grid

    steps = spec["steps"]
    log_every = max(1, steps // 10)
    return config_grid(list(spec["params"]), spec["widths"], [spec["lr"]],
                       [seed * 100_000 + s for s in range(spec["seeds"])], dataset="synthetic", d_in=spec["d_in"],
                       n_train=spec["n_train"], batch_size=spec["batch_size"], depth=spec["depth"],
                       epochs=steps * spec["batch_size"] / spec["n_train"], log_every=log_every, data_order="seed",
                       data_seed=seed, eval_every=0)  # the evidence reads the evaluation batch, not the test split


@dataclass(frozen=True)
class TrainingData:
    """The runs and trajectories the training rows read, with a cache of what is derived from them
    (plateau fits, per-width samples), which several claims and readings share."""

    runs: object
    traj: object
    source: str
    description: str
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    def memo(self, key, compute):
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def samples(self, variable: str, param: str, lr, fraction: float):
        from sde_scales.analysis.width import width_samples

        return self.memo(("samples", variable, param, lr, fraction), lambda: width_samples(
            self.runs, self.traj, variable, param=param, lr=lr, fraction=fraction))


@lru_cache(maxsize=4)
def training_data(settings: Settings) -> TrainingData:
    """The run store the training rows read: the user's (``settings.store``) or the built-in
    experiment, trained now (resuming a kept ``train_dir``)."""
    from sde_scales.train.store import RunStore

    if settings.store is not None:
        root = Path(settings.store)
        st = RunStore.existing(root, need_runs=True)
        runs, traj = st.read()  # the same runs in both tables
        from sde_scales.analysis.grid import one_configuration_each

        try:  # one configuration per parametrization, or no rate means anything
            one_configuration_each(runs)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"--store {root}: {exc}") from None
        return TrainingData(runs, traj, str(root), f"run store {root}: {len(runs)} runs")
    from sde_scales.train.sweep import run_sweep

    spec = TRAINING_QUICK if settings.quick else TRAINING_FULL
    configs = training_configs(spec, settings.seed)

    def train(root):
        run_sweep(configs, str(root), device="cpu", progress=settings.progress)
        st = RunStore(root)
        return st.read()

    if settings.train_dir is not None:
        runs, traj = train(settings.train_dir)
        where = settings.train_dir
    else:
        with tempfile.TemporaryDirectory(prefix="sde-scales-verify-") as tmp:
            runs, traj = train(tmp)
        where = "a temporary store"
    desc = (f"{'/'.join(spec['params'])} MLPs, {spec['depth']} hidden layer, SGD lr {spec['lr']}, {spec['steps']} "
            f"steps of batch {spec['batch_size']} on a {spec['d_in']}-d teacher-student task ({spec['n_train']} "
            f"samples, 10 classes); widths {list(spec['widths'])}, {spec['seeds']} seeds each with its own "
            f"initialisation and minibatch order, seeds stacked; trained into {where}")
    return TrainingData(runs, traj, where, desc)


def _primary_micro(runs, param) -> int:
    """The layer whose weights are the micro-variable: the first hidden-to-hidden layer when the
    network has one (its n^2 weights are the typical coordinates), else the input layer."""
    depth = int(runs[runs.param == param].depth.iloc[0])
    return 1 if depth >= 2 else 0


def _progress(td: TrainingData, param: str, lr) -> tuple[str | None, dict]:
    return td.memo(("progress", param, lr), lambda: _progress_of(td, param, lr))


def _progress_of(td: TrainingData, param: str, lr) -> tuple[str | None, dict]:
    from sde_scales.analysis.width import progress_to_plateau

    pr = progress_to_plateau(td.runs, td.traj, param=param, lr=lr)
    info = {"width": pr.width.tolist(), "fraction_reached": [None if not np.isfinite(f) else float(f)
                                                              for f in pr.fraction],
            "initial_loss": pr.initial.tolist(), "final_loss": pr.final.tolist(), "plateau": pr.plateau.tolist()}
    if pr.empty:
        return "no finished runs (every run diverged)", info
    fr = pr.fraction.to_numpy(dtype=float)
    info["note"] = (f"the loss covered {np.nanmin(fr):.2f} to {np.nanmax(fr):.2f} of its way to its plateau across "
                    f"n = {int(pr.width.min())}..{int(pr.width.max())}")
    low = pr[~(pr.fraction >= MIN_PROGRESS)]
    if len(low):
        return ("not trained far enough: the loss covered only "
                + ", ".join(f"{f:.2f}" if np.isfinite(f) else "an unknown fraction" for f in low.fraction)
                + f" of its way to its plateau at n = {', '.join(str(w) for w in low.width)} "
                f"(need {MIN_PROGRESS})"), info
    return None, info


def _usable(ws) -> tuple[list, list, str | None]:
    """Widths with enough finished replicas; a note on those left out (diverged runs)."""
    keep = [(w, s) for w, s in zip(ws.widths, ws.samples) if s.shape[-1] >= MIN_REPLICAS]
    notes = []
    if sum(ws.diverged):
        notes.append(f"{sum(ws.diverged)} diverged runs left out")
    dropped = [w for w, s in zip(ws.widths, ws.samples) if s.shape[-1] < MIN_REPLICAS]
    if dropped:
        notes.append(f"widths {dropped} have fewer than {MIN_REPLICAS} finished runs and are left out")
    return [w for w, _ in keep], [s for _, s in keep], "; ".join(notes) or None


def _labels(variable: str, reading: str, depth: int) -> str:
    from sde_scales.analysis.width import micro_layers

    if variable.startswith("w"):
        l, what = variable[1:].split("_", 1)
        name = micro_layers(depth).get(int(l), f"layer {l}")
        q = rf"$W^{{({l})}}_{{ij}}$" if what.startswith("value") else rf"$W^{{({l})}}_{{ij}}(T) - W^{{({l})}}_{{ij}}(0)$"
        q = f"{name} weight {q}" + (" (raw)" if what.endswith("_raw") else "")
    else:
        q = {"eval_loss": r"$L_n(T)$ (evaluation batch)", "grad_norm": r"$\|\nabla L_n(T)\|$",
             "act_rms": r"RMS of $h^{(1)}(T)$"}[variable]
    return {"fluctuation": f"std over seeds of {q}",
            "bias": f"|seed mean at $n$ - at the next width| of {q}"}.get(reading, q)


def training_rows(settings: Settings, reading: str, variables: tuple[str, ...], *,
                  control_variables: tuple[str, ...] | None = None, lr: float | None = None) -> list[Measurement]:
    """Training evidence: one measurement per (parametrization, variable): muP's rows, then each other
    parametrization in the store with ``control_variables`` (default: the first variable).

    ``reading``: ``fluctuation``, ``bias`` (no limit is known for a trained network: the
    differences of successive widths' seed means, which fall with the bias's exponent when the
    widths are in a constant ratio, :func:`sde_scales.rates.bias_exponent`; a Richardson limit in
    1/n would assume the claimed 1/n and bend the slope toward it) or ``difference``
    (``variables`` = (macro, micro)). ``micro`` in a variable name stands for the primary micro
    layer (:func:`_primary_micro`). Each row's ``extra`` holds the exponents at a
    quarter and half of training, the fraction of the way to the plateau reached at every width, and
    the number of diverged runs."""
    td = training_data(settings)
    rows: list[Measurement] = []
    # muP is judged; every other parametrization in the store is a control (SP and NTK in the
    # built-in experiment; a planted bug such as "mup-no-readout-mult" in the tests)
    params = ["mup"] + sorted(p for p in set(td.runs.param) if p != "mup")
    if "mup" not in set(td.runs.param):
        first = variables[0]  # a (macro, micro) pair for the difference reading
        return [Measurement(None, td.description, variable=" / ".join(first) if isinstance(first, tuple) else first,
                            param="mup",
                            inconclusive=f"the store has no muP runs (it has {sorted(set(td.runs.param))})")]
    for param in params:
        vs = variables if param == "mup" else (control_variables or variables[:1])
        micro = _primary_micro(td.runs, param)
        depth = int(td.runs[td.runs.param == param].depth.iloc[0])
        lr_p = lr if lr is not None else judged_lr(td.runs, param)
        progress_reason, progress = _progress(td, param, lr_p)
        for i, var in enumerate(vs):
            names = tuple(v.replace("micro", f"w{micro}").replace("readout", f"w{depth}")
                          for v in (var if isinstance(var, tuple) else (var,)))
            role = "control" if param != "mup" else ("primary" if i == 0 else "additional")
            label = " / ".join(names)
            try:
                est, times, note = _training_estimate(td, reading, names, param, lr_p, settings)
            except InvalidArgumentError as exc:
                rows.append(Measurement(None, td.description, variable=label, param=param, role=role,
                                        inconclusive=str(exc), extra={"progress": progress}))
                continue
            rows.append(Measurement(
                est, f"{td.description}; judged at lr {lr_p:g}", variable=label, param=param, role=role,
                inconclusive=progress_reason, note=progress.get("note"),
                extra={"progress": progress, "exponent_over_training": times, "left_out": note},
                plot_ylabel=_labels(names[0], reading, depth) if reading != "difference" else
                f"std ratio {_labels(names[0], '', depth)} / {_labels(names[1], '', depth)}"))
    return rows


def judged_lr(runs, param: str) -> float:
    """The learning rate a store's rows are judged at: the one with the most finished runs, ties
    broken by the lowest median final evaluation loss (a store with a learning-rate grid holds one
    rate per claim row; the row's model text says which)."""
    sel = runs[(runs.param == param) & (runs.status == "finished")]
    if sel.empty:
        return float(runs[runs.param == param].lr.iloc[0])
    loss = sel["final_eval_loss"] if "final_eval_loss" in sel else sel["final_train_loss"]
    table = sel.assign(_loss=loss).groupby("lr").agg(n=("run_id", "size"), med=("_loss", "median"))
    table = table.sort_values(["n", "med"], ascending=[False, True])
    return float(table.index[0])


def _training_estimate(td, reading, names, param, lr, settings):
    def one(fraction):
        wss = [td.samples(v, param, lr, fraction) for v in names]
        widths, samples, note = _usable(wss[0])
        if len(widths) < 3:
            have = "no width has" if not widths else f"only {len(widths)} width(s) {widths} have"
            raise InvalidArgumentError(f"{have} at least {MIN_REPLICAS} finished runs ({note or 'too few runs'}): "
                                       f"no rate can be measured (a rate needs 3 widths)")
        seed = child_seed(settings, f"train-{param}-{reading}-{'/'.join(names)}")
        if reading == "fluctuation":
            return fluctuation_exponent(widths, samples, seed=seed), note
        if reading == "bias":
            return bias_exponent(widths, samples, "differences", seed=seed), note
        w2, s2, _ = _usable(wss[1])
        if w2 != widths:
            raise InvalidArgumentError(f"{names[0]} and {names[1]} are measured at different widths")
        return exponent_difference(widths, samples, s2, seed=seed), note

    est, note = one(1.0)
    times = {}
    for f in (0.25, 0.5):
        try:
            e, _ = one(f)
            times[str(f)] = {"exponent": e.exponent, "ci": list(e.ci)}
        except InvalidArgumentError as exc:
            times[str(f)] = {"exponent": None, "ci": None, "why": str(exc)}
    times["1.0"] = {"exponent": est.exponent, "ci": list(est.ci)}
    return est, times, note


def _optimum_estimate(td: TrainingData, param: str, statistic, seed: int, when: str = ""):
    """The exponent in n of ``statistic(lrs)`` (a statistic of the optimal learning rate) on the
    store's learning-rate grid of ``param``, with the samples it read (:func:`optimum_shift_samples`);
    refused where the optimum lies at an end of the grid at some width."""
    from sde_scales.analysis.width import optimum_shift_samples
    from sde_scales.rates import statistic_exponent

    d = optimum_shift_samples(td.runs, td.traj, param=param)
    stat = statistic(d["lrs"])
    edge = [w for w, s in zip(d["widths"], d["samples"]) if not np.isfinite(stat(s))]
    if edge:
        raise InvalidArgumentError(f"the optimum lies at an end of the learning-rate grid {d['lrs'].tolist()} at "
                                   f"n = {edge}{when}: widen the grid")
    return statistic_exponent(d["widths"], d["samples"], stat, reading="values", seed=seed), d


def early_optimum_training(settings: Settings) -> Measurement:
    r"""Theorem 3.1 on trained networks: :math:`|\log\eta^*(t_0) - \log\eta^*(T)|` against width,
    :math:`t_0` a quarter of training, :math:`\eta^*` from the seed-mean evaluation loss on the
    store's learning-rate grid (parabola in :math:`\log\eta`), interval by resampling seeds."""
    from sde_scales.analysis.width import optimum_shift

    td = training_data(settings)
    base = Measurement(None, td.description, variable="eta*(t0) vs eta*(T)", param="mup",
                       plot_ylabel=r"$|\log\eta^*(t_0) - \log\eta^*(T)|$")
    try:
        est, d = _optimum_estimate(td, "mup", optimum_shift, child_seed(settings, "train-early-optimum"),
                                   " (at t0 or T)")
    except InvalidArgumentError as exc:
        return Measurement(None, td.description, variable=base.variable, param="mup",
                           inconclusive=f"no training evidence: {exc}")
    return Measurement(est, td.description, variable=base.variable, param="mup",
                       extra={"learning_rates": d["lrs"].tolist(), "steps_t0_T": d["steps"]},
                       plot_ylabel=base.plot_ylabel)


# ---------------------------------------------------------------------------------------------
# training: the scaling collapse of Qiu et al. on a width ladder


def _verify_ladder(settings: Settings):
    """The ladder verify trains: the experiment's (``experiments/collapse.py``), linear decay only."""
    from dataclasses import replace

    from sde_scales.train.ladder import LADDER_FULL, LADDER_QUICK

    return replace(LADDER_QUICK if settings.quick else LADDER_FULL, schedules=("linear",))


@lru_cache(maxsize=2)
def collapse_ladder(settings: Settings) -> dict:
    """Train (or resume) the ladder and analyse it: ``sde_scales.train.ladder.run_ladder``."""
    from sde_scales.train.ladder import run_ladder

    spec = _verify_ladder(settings)
    seed = child_seed(settings, "collapse")
    if settings.train_dir is not None:
        return run_ladder(spec, str(Path(settings.train_dir) / "collapse"), progress=settings.progress, seed=seed)
    with tempfile.TemporaryDirectory(prefix="sde-scales-collapse-") as tmp:
        return run_ladder(spec, tmp, progress=settings.progress, seed=seed)


def supercollapse_training(settings: Settings) -> list[Measurement]:
    r"""Supercollapse on a trained muP ladder (each width to its compute-optimal horizon, linear
    decay): the statistic :math:`R = \max_{x \ge x_0} \Delta(x)/\sigma(x)` with its seed-bootstrap
    interval (:mod:`sde_scales.analysis.collapse`); the frozen-learning-rate and SP ladders are the
    controls. A ``--store`` is not read here: the check needs a ladder trained to horizons."""
    if settings.store is not None:
        return [Measurement(None, "user store", variable="max Delta/sigma", param="mup",
                            inconclusive="supercollapse needs a width ladder trained to its compute-optimal horizons; "
                                         "run experiments/collapse.py (verify without --store trains one)")]
    try:
        out = collapse_ladder(settings)
    except InvalidArgumentError as exc:
        return [Measurement(None, "collapse ladder", variable="max Delta/sigma", param="mup",
                            inconclusive=f"the ladder could not be analysed: {exc}")]
    spec, fit, hz = out["spec"], out["frontier"], out["horizons"]
    desc = (f"muP MLPs on the power-law regression task, widths {list(spec.widths)}, {spec.seeds} seeds, SGD lr "
            f"{spec.lr}; frontier b = {fit.b:.2f}, L0 = {fit.L0:.3g} [{fit.ci['L0'][0]:.3g}, {fit.ci['L0'][1]:.3g}]; "
            f"horizons t* ~ p^{hz.gamma:.2f}")
    rows = []
    for label, e in out["ladders"].items():
        param = label.split("/")[0]
        role = "primary" if param == spec.param else "control"
        r = e["result"]
        if r is None:
            rows.append(Measurement(None, desc, variable=f"max Delta/sigma ({label})", param=param, role=role,
                                    inconclusive=e.get("error", "no result")))
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = r.delta / r.sigma
        win = r.x >= r.x0
        est = ExponentEstimate(r.ratio, tuple(float(v) for v in r.ratio_ci), r.x[win], ratio[win],
                               np.full(int(win.sum()), np.nan), 0.0, "ratio", n_replicas=min(r.n_seeds))
        warn = list(fit.warnings) + list(hz.warnings)
        rows.append(Measurement(est, desc, variable=f"max Delta/sigma ({label})", param=param, role=role,
                                extra={"collapse": r.to_dict(), "frontier": fit.to_dict(), "horizons": hz.to_dict(),
                                       "diverged": {str(k): v for k, v in e["diverged"].items()}},
                                note="; ".join(warn) or None,
                                plot_xlabel=r"compute fraction $x$", plot_ylabel=r"$\Delta(x) / \sigma(x)$"))
    return rows


# ---------------------------------------------------------------------------------------------
# training: the delay of the loss after a learning-rate drop (Theorem 5.1 on networks)

#: Drops to these fractions of the rate: four points, as the verdict's curvature rule needs more
#: than three.
DELAY_FACTORS = (0.5, 0.25, 0.1, 0.05)


@lru_cache(maxsize=2)
def delay_study(settings: Settings) -> dict:
    """Train (or resume) the delay study verify uses and return its ensembles per width:
    ``{"widths", "seeds", "steps", "t_d", "ens": {width: {label: (steps, X, schedule)}}}``
    (:mod:`sde_scales.analysis.delay_width`)."""
    from sde_scales.analysis import delay_width as dw
    from sde_scales.analysis.grid import loss_table
    from sde_scales.train.store import RunStore
    from sde_scales.train.sweep import run_sweep

    widths, n_seeds, steps = ((32, 128), 8, 3000) if settings.quick else ((32, 128, 512), 16, 3000)
    groups = dw.delay_configs(dw.study_base(), widths, n_seeds, steps, drop_at=0.5, factors=DELAY_FACTORS,
                              wsd_fraction=None)

    def load(root):
        run_sweep([c for g in groups.values() for c in g], str(root), device="cpu", progress=settings.progress)
        st = RunStore(root)
        table = loss_table(*st.read(), "eval_loss")
        return {w: {k: dw.ensemble(table, [c for c in g if c.width == w]) for k, g in groups.items()} for w in widths}

    if settings.train_dir is not None:
        ens = load(Path(settings.train_dir) / "delay")
    else:
        with tempfile.TemporaryDirectory(prefix="sde-scales-delay-") as tmp:
            ens = load(tmp)
    return {"widths": widths, "seeds": n_seeds, "steps": steps, "t_d": steps // 2, "ens": ens,
            "lr": dw.study_base().lr}


def delay_training(settings: Settings) -> list[Measurement]:
    r"""Theorem 5.1 on trained muP networks: the model-free mean response time of the loss after
    step drops to 0.5, 0.25, 0.1 and 0.05 of the learning rate, against :math:`1/\eta_{after}`, as an
    exponent with its seed-resample interval (:func:`sde_scales.analysis.delay_width.delay_exponent`).
    Reading: a memory kernel fixed in learning-rate area has the time scale
    :math:`\tau_{area}/\eta_{after}` in steps, so the claim's :math:`\Theta(\tau)` is exponent 1 in
    :math:`1/\eta_{after}`; a kernel fixed in steps would give 0. One row per width (the first is
    judged, the others are additional). A ``--store`` is not read: the check needs the drop runs."""
    from sde_scales.analysis import delay_width as dw

    if settings.store is not None:
        return [Measurement(None, "user store", variable="delay vs 1/eta_after", param="mup",
                            inconclusive="the delay check needs constant and step-drop runs of one configuration; "
                                         "run experiments/close_the_loop.py (verify without --store trains them)")]
    d = delay_study(settings)
    desc = (f"muP MLPs on the power-law regression task, SGD lr {d['lr']}, batch 64, {d['steps']} steps; constant and "
            f"step drops to {list(DELAY_FACTORS)} of the rate at step {d['t_d']}; widths {list(d['widths'])}, "
            f"{d['seeds']} seeds")
    rows = []
    for i, w in enumerate(d["widths"]):
        e = d["ens"][w]
        drops = {d["lr"] * f: e[f"drop{f:g}"] for f in DELAY_FACTORS}
        role = "primary" if i == 0 else "additional"
        var = f"mean response time vs 1/eta_after (width {w})"
        try:
            est = dw.delay_exponent(e["constant"], drops, d["t_d"], seed=child_seed(settings, f"delay-{w}"))
        except InvalidArgumentError as exc:
            rows.append(Measurement(None, desc, variable=var, param="mup", role=role,
                                    inconclusive=f"no delay to measure: {exc}"))
            continue
        rows.append(Measurement(est, desc, variable=var, param="mup", role=role,
                                note="reading: the kernel is fixed in learning-rate area, so its time scale in steps "
                                     "is tau_area / eta_after",
                                plot_xlabel=r"$1/\eta_{after}$", plot_ylabel="mean response time after the drop (steps)"))
    return rows


# ---------------------------------------------------------------------------------------------
# training: the claims of Vlassis et al. (TMLR 2025), muP against SP

#: The coordinate check verify runs: muP and SP MLPs with two hidden layers (so that a
#: hidden-to-hidden layer is checked), SGD, three steps at base rate 0.1 (``sde-scales coordcheck``'s
#: defaults), seeds per width.
COORD_QUICK = dict(widths=(64, 128, 256, 512, 1024), seeds=10, steps=3, lr=0.1, depth=2)
COORD_FULL = dict(widths=(64, 128, 256, 512, 1024, 2048), seeds=16, steps=3, lr=0.1, depth=2)


def coordinate_training(settings: Settings) -> list[Measurement]:
    r"""The coordinate check (:func:`sde_scales.train.coordcheck.coord_check`) of muP (primary) and
    SP (control): per layer, the RMS change of its pre-activations on a probe batch after the first
    SGD steps, its exponent in n with a bootstrap interval over seeds, judged with the check's
    stated floor for next-order terms (:data:`~sde_scales.train.coordcheck.RESOLUTION`)."""
    from sde_scales.parametrization import by_name
    from sde_scales.train.coordcheck import RESOLUTION, RESOLUTION_REASON, coord_check, layer_names

    spec = COORD_QUICK if settings.quick else COORD_FULL
    desc = (f"coordinate check: MLPs with {spec['depth']} hidden layers, SGD, {spec['steps']} steps at base rate "
            f"{spec['lr']} on a teacher-student batch, widths {list(spec['widths'])}, {spec['seeds']} seeds each")
    rows = []
    for param, role in (("mup", "primary"), ("sp", "control")):
        p = by_name(param, L=spec["depth"], optimizer="sgd")
        names = layer_names(p.L + 1)
        try:
            # the child seed reduced below 2**20, a bound with no reason of its own (coord_check takes any
            # seed >= 0; its networks draw from seed * 1000 + k); kept, as the recorded verdicts were made so
            cc = coord_check(p, spec["widths"], steps=spec["steps"], lr=spec["lr"], n_seeds=spec["seeds"],
                             seed=child_seed(settings, f"coordcheck-{param}") % 2**20)
        except InvalidArgumentError as exc:  # a network that diverges has no exponent
            rows.append(Measurement(None, desc, variable="pre-activation change", param=param, role=role,
                                    inconclusive=str(exc)))
            continue
        for layer in cc.layers:
            rows.append(Measurement(cc.delta_exp[layer], desc, variable=f"change of {names[layer]} pre-activations",
                                    param=param, role=role, floor=RESOLUTION, floor_reason=RESOLUTION_REASON,
                                    plot_ylabel="RMS change of pre-activations after the first steps"))
    return rows


#: Training checks that train their own networks whatever ``settings.store`` says: the coordinate
#: check measures the first SGD steps of fresh networks, which a store of finished runs does not
#: keep. ``sde-scales verify --store`` names their claims, so that no row is taken for the store's.
TRAINS_ITS_OWN = (coordinate_training,)


def lr_transfer_training(settings: Settings) -> list[Measurement]:
    r"""The optimal learning rate against width on a run store with a learning-rate grid:
    :math:`\eta^*(T)` from the seed-mean final evaluation loss (the parabola in :math:`\log\eta`
    through the grid's best point, :func:`sde_scales.analysis.width.eta_star_log`), its exponent in
    n with an interval by resampling seeds; muP primary, SP control where the store has it. The
    built-in training uses one learning rate, so without ``--store`` there is no optimum to follow."""
    from sde_scales.analysis.width import final_optimum

    variable = "eta*(T)"
    if settings.store is None:
        return [Measurement(None, "built-in training (one learning rate)", variable=variable, param="mup",
                            inconclusive="the built-in training uses one learning rate, so there is no optimum to "
                                         "follow across widths; judge a sweep over a learning-rate grid: `sde-scales "
                                         "sweep --lrs ... --out S`, then `sde-scales verify --store S` "
                                         "(experiments/lr_transfer.py draws the same for muP and SP)")]
    td = training_data(settings)
    rows = []
    for param, role in (("mup", "primary"), ("sp", "control")):
        if role == "control" and param not in set(td.runs.param):
            continue
        try:
            est, d = _optimum_estimate(td, param, final_optimum, child_seed(settings, f"train-lr-transfer-{param}"))
        except InvalidArgumentError as exc:
            rows.append(Measurement(None, td.description, variable=variable, param=param, role=role,
                                    inconclusive=f"no training evidence: {exc}"))
            continue
        rows.append(Measurement(est, td.description, variable=variable, param=param, role=role,
                                extra={"learning_rates": d["lrs"].tolist()}, plot_ylabel=r"$\eta^*(T)$"))
    return rows
