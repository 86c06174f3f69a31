r"""Theorem 5.1 on trained networks: the delay of the loss after a learning-rate drop, per width,
and the stochastic delay model's bands against the seeds.

A *delay study* trains every width of a ladder, for every seed, under a constant learning rate,
step drops of several sizes at one step :math:`t_d`, and a WSD cooldown
(:func:`delay_configs`). For each width and drop:

* **fitted delay**: the kernel law with an exponential kernel in steps
  (:class:`~sde_scales.fitting.laws.KernelLaw`) fitted to the seed-mean curves of the constant
  run and the drop run together; the delay is the half-response :math:`\tau\ln 2` (and the mean
  response time :math:`\tau`), its 95% interval from the time scale's (curvature of the fit,
  residual autocorrelation included);
* **model-free delay**: from the seed means alone, :math:`D(t) = \bar L_{const}(t) - \bar
  L_{drop}(t)` after the drop; its eventual gain :math:`G` is the mean of :math:`D` over the last
  fifth of the run, and the delay the mean response time :math:`\delta = \int (1 - D/G)\,dt`
  over a window :math:`W` after the drop (an eighth of the steps after it; a delay above
  :math:`W/5` is flagged as possibly truncated) (the mean of the kernel: :math:`\tau` for an exponential one, whose
  half-response is :math:`\tau\ln 2`). Linear in the data, it has none of the first-passage bias
  that noise gives a "first time D reaches G/2" (which a resample's noisier mean reaches early).
  95% interval over seed resamples (seeds of both runs resampled). A gain whose interval reaches
  0 leaves the delay undetermined (reported as such). :math:`D` also carries the drop run's slower
  progress afterwards (less learning-rate area): the mean response time is the kernel's mean only
  where that part is flat over the window, and it grows with the drop (on the kernel law with
  its area term on, it lifts the exponent against :math:`1/\eta_{after}` from 1 to about 1.2).

**Stochastic delay model against the seeds** (:func:`delay_bands`): the model's loss is its
deterministic law plus :math:`\sigma_L\,\eta(t)\,\xi(t)` with :math:`\xi` a unit
Ornstein-Uhlenbeck process of correlation time :math:`\tau_\xi`
(:mod:`sde_scales.models.delay`). Calibrated before the drop only: :math:`\sigma_L` is the seeds'
standard deviation around their mean divided by :math:`\eta`, :math:`\tau_\xi` the lag at which
the seeds' deviations' autocorrelation falls to :math:`1/e`. After the drop the model predicts a
spread :math:`\sigma_L\eta_{after}`; simulated bands are held against the observed seeds with
:func:`sde_scales.analysis.macro_sde.compare`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sde_scales import seeds
from sde_scales.errors import InvalidArgumentError
from sde_scales.rates import check_resamples
from sde_scales.validation import is_whole

__all__ = ["delay_bands", "delay_configs", "delay_exponent", "ensemble", "fitted_delay", "model_free_delay",
           "study_base"]


def study_base():
    """The run every delay study varies (:func:`delay_configs`): muP MLPs, one hidden layer, on the
    synthetic power-law regression task (32 inputs), SGD at learning rate 0.3 with batch 64, each
    seed its own minibatch order, the evaluation loss logged every 2 steps. At 0.3 the constant-rate
    loss sits on its SGD noise floor by mid-run, so a drop lowers it (at 0.03 it is still falling,
    and a drop only slows it: there is no delay to measure); the delays are a few to a few tens of
    steps, hence the logging interval."""
    from sde_scales.train.trainer import RunConfig

    return RunConfig(param="mup", dataset="powerlaw", d_in=32, n_train=65536, batch_size=64, lr=0.3,
                     data_order="seed", eval_every=0, log_every=2, depth=1)


def delay_configs(base, widths, n_seeds: int, steps: int, drop_at: float = 0.5, factors=(0.5, 0.25, 0.1, 0.05),
                  wsd_fraction: float | None = 0.3) -> dict:
    """``{label: [RunConfig, ...]}`` for labels ``constant``, ``drop<f>`` per factor and ``wsd``
    (unless ``wsd_fraction`` is None), every width and seed. ``base`` is a RunConfig whose width, seed and schedule are replaced; its
    epochs are set so that the run has ``steps`` updates."""
    if not 0 < drop_at < 1:
        raise InvalidArgumentError(f"drop_at={drop_at}; give the drop's place as a fraction in (0, 1)")
    if not is_whole(n_seeds, 1) or len(widths) == 0:
        raise InvalidArgumentError(f"n_seeds={n_seeds!r}, widths={list(widths)}; give at least one width and a whole "
                                   f"number of seeds >= 1")
    epochs = steps * base.batch_size / base.n_train
    t_d = int(round(drop_at * steps))
    scheds = {"constant": ("constant", ())}
    for f in factors:
        scheds[f"drop{f:g}"] = ("step", (("milestones", (t_d,)), ("factor", float(f))))
    if wsd_fraction is not None:
        scheds["wsd"] = ("wsd", (("fraction", float(wsd_fraction)), ("decay", "linear")))
    return {label: [replace(base, width=int(w), seed=s, schedule=name, schedule_kw=kw, epochs=epochs)
                    for w in widths for s in range(n_seeds)] for label, (name, kw) in scheds.items()}


def ensemble(table, configs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, seed matrix ``(seeds, steps)`` and the per-step learning rate of one group of runs
    (same config up to the seed) from a :func:`~sde_scales.analysis.grid.loss_table`."""
    from sde_scales.analysis.grid import seed_matrix

    ids = [c.run_id for c in configs]
    steps, X, _ = seed_matrix(table, ids)
    if X.shape[0] < 4:
        raise InvalidArgumentError(f"{X.shape[0]} finished seeds of {configs[0].schedule} at width {configs[0].width}; "
                                   f"need at least 4 (train more seeds, or see the diverged runs)")
    from sde_scales.fitting.stores import run_schedule

    return steps, X, run_schedule(configs[0])


def fitted_delay(const, drop, name: str = "drop") -> dict:
    """Kernel law (exponential kernel, steps) on the seed-mean constant and drop curves together;
    ``const`` and ``drop`` are :func:`ensemble` triples. The delay and its interval are
    ``ln 2`` times the time scale's."""
    import warnings

    from sde_scales.fitting.fit import fit, predict
    from sde_scales.fitting.laws import KernelLaw
    from sde_scales.fitting.stores import mean_curve

    curves = [mean_curve(*const, "constant"), mean_curve(*drop, name)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(KernelLaw(kernel="exp", time="steps"), curves)
        pred = predict(res, curves[1])
    ts = res.extra.get("time_scale_interval") or {}
    ci = ts.get("ci") or [None, None]
    ln2 = float(np.log(2))
    listed = list(res.extra.get("warnings", []))
    return {"delay": float(res.law.half_response(res.theta)),
            "delay_ci": [None if v is None else ln2 * v for v in ci],
            "time_scale": float(res.law.time_scale(res.theta)), "time_scale_ci": ci, "amplitude_B": res.law.amplitude(res.theta),
            "rmse_drop_run": float(np.sqrt(np.mean((pred - curves[1].loss) ** 2))),
            "prediction": pred,
            "warnings": listed + [str(w.message) for w in caught if str(w.message) not in listed]}


#: The mean response time integrates over this fraction of the steps after the drop: long enough
#: for responses up to a fifth of it (flagged beyond), short enough that the integrated noise of
#: D/G stays small (its variance grows with the window).
WINDOW_FRACTION = 0.125


def _window(steps, t_d, window=None):
    return float(WINDOW_FRACTION * (steps[-1] - t_d)) if window is None else float(window)


def _mean_delay(steps, d, t_d, tail, window=None):
    r"""Mean response time after ``t_d`` and the eventual gain, over leading batch axes (``d`` has
    time first, ``(T, *batch)``): :math:`G` the mean of ``d`` over ``tail``, and
    :math:`\delta = \int_{t_d}^{t_d + W} (1 - D(t)/G)\,dt` by the trapezoid rule with
    :math:`D(t_d) = 0`, :math:`W` = ``window`` steps (default :data:`WINDOW_FRACTION` of the steps
    after the drop). NaN where the gain is not positive."""
    gain = d[tail].mean(axis=0)
    W = _window(steps, t_d, window)
    win = (steps > t_d) & (steps <= t_d + W)
    tt = np.concatenate([[float(t_d)], steps[win]])
    dd = np.concatenate([np.zeros((1,) + d.shape[1:]), d[win]], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = 1.0 - dd / gain
        dt = np.diff(tt).reshape((-1,) + (1,) * (d.ndim - 1))
        delta = np.sum(0.5 * (f[1:] + f[:-1]) * dt, axis=0)
    return np.where(gain > 0, delta, np.nan), gain


def _aligned(const, drop):
    s1, X1, _ = const
    s2, X2, _ = drop
    common = np.intersect1d(s1, s2)
    if common.size < 4:
        raise InvalidArgumentError(f"the constant and the drop runs share {common.size} logged steps; log them at the "
                                   f"same steps (at least 4 in common)")
    a, b = X1[:, np.searchsorted(s1, common)], X2[:, np.searchsorted(s2, common)]
    for name, X in (("constant", a), ("drop", b)):
        if not np.all(np.isfinite(X)):
            seed, k = (int(v) for v in np.argwhere(~np.isfinite(X))[0])
            raise InvalidArgumentError(f"the {name} run's seed row {seed} is {X[seed, k]} at step {common[k]:g} (a "
                                       f"diverged seed?); drop that seed")
    return common, a, b


def _check_drop_step(steps, t_d) -> None:
    if not (np.isfinite(t_d) and steps[0] < t_d < steps[-1]):
        raise InvalidArgumentError(f"t_d={t_d!r} is not inside the logged steps ({steps[0]:g}, {steps[-1]:g}); give the "
                                   f"step of the drop")


def model_free_delay(const, drop, t_d: float, n_boot: int = 500, seed: int = 0, window: float | None = None) -> dict:
    """The mean response time read off the seed means (module docstring) with a seed-resample
    interval; ``window``: steps after the drop that the integral covers (default an eighth of them)."""
    steps, X1, X2 = _aligned(const, drop)
    _check_drop_step(steps, t_d)
    check_resamples(n_boot, "n_boot")
    tail = steps >= steps[-1] - 0.2 * (steps[-1] - t_d)
    if window is not None and not 0 < window <= 0.8 * (steps[-1] - t_d):
        raise InvalidArgumentError(f"window={window}; give 0 < window <= {0.8 * (steps[-1] - t_d):g} (the last fifth "
                                   f"after the drop measures the eventual gain)")
    delta, gain = _mean_delay(steps, X1.mean(0) - X2.mean(0), t_d, tail, window)
    rng = seeds.rng(seed, "analysis.delay_boot")
    i1 = rng.integers(0, X1.shape[0], (int(n_boot), X1.shape[0]))
    i2 = rng.integers(0, X2.shape[0], (int(n_boot), X2.shape[0]))
    d = (X1[i1].mean(axis=1) - X2[i2].mean(axis=1)).T  # (T, n_boot)
    ds, gs = _mean_delay(steps, d, t_d, tail, window)
    gain_ci = np.percentile(gs, [2.5, 97.5]).tolist()
    resolved = bool(gain_ci[0] > 0 and np.isfinite(delta))
    ci = np.percentile(ds[np.isfinite(ds)], [2.5, 97.5]).tolist() if resolved else [None, None]
    W = _window(steps, t_d, window)
    truncated = bool(resolved and delta > W / 5)
    return {"gain": float(gain), "gain_ci": gain_ci, "resolved": resolved,
            "delay_after_drop": float(delta) if resolved else None, "delay_after_drop_ci": ci,
            "window": W, "possibly_truncated": truncated,
            "warning": (f"the mean response time {delta:.3g} exceeds a fifth of its window ({W:.3g} steps): the response "
                        f"may not be complete inside it; run longer after the drop") if truncated else None,
            "definition": "mean response time: integral of 1 - D(t)/G over a window after the drop"}


def delay_bands(const, drop, law_curve, t_d: float, n_paths: int = 400, seed: int = 0) -> dict:
    """The stochastic delay model's bands through a drop against the observed seeds.

    ``law_curve``: the fitted law's prediction of the drop run's mean at the drop run's logged
    steps (the deterministic part). Noise calibrated on the drop run before ``t_d`` (module
    docstring); compared after ``t_d``."""
    from sde_scales.analysis.macro_sde import compare
    from sde_scales.models.delay import ou_paths

    steps, X, sched = drop
    _check_drop_step(steps, t_d)
    if not is_whole(n_paths, 2):
        raise InvalidArgumentError(f"n_paths={n_paths!r}; give a whole number of simulated paths >= 2")
    if np.shape(law_curve) != steps.shape:
        raise InvalidArgumentError(f"law_curve of shape {np.shape(law_curve)} for {steps.size} logged steps; give the "
                                   f"law's prediction at every logged step of the drop run")
    before = (steps < t_d) & (steps >= 0.25 * t_d)
    if before.sum() < 5:
        raise InvalidArgumentError("fewer than 5 logged steps before the drop to calibrate the noise on; log more often")
    dev = X - X.mean(axis=0)
    eta = sched[steps.astype(int)]
    sigma_L = float(np.sqrt(np.mean(dev[:, before] ** 2) * X.shape[0] / (X.shape[0] - 1)) / np.mean(eta[before]))
    # autocorrelation of the deviations over the calibration window, lag where it falls to 1/e
    d = dev[:, before]
    ac = [1.0]
    for k in range(1, d.shape[1] - 1):
        ac.append(float(np.sum(d[:, k:] * d[:, :-k]) / np.sqrt(np.sum(d[:, k:] ** 2) * np.sum(d[:, :-k] ** 2))))
        if ac[-1] < np.exp(-1):
            break
    dstep = float(steps[1] - steps[0])
    below = [i for i, a in enumerate(ac) if a < np.exp(-1)]
    tau_xi = dstep * (below[0] if below else len(ac))  # a lower bound when the window is too short
    tau_capped = not below
    xi = ou_paths(steps.astype(float), tau_xi, int(n_paths), seeds.int_seed(seed, "analysis.delay_noise"))
    sim = np.asarray(law_curve)[None, :] + sigma_L * eta[None, :] * xi.T
    after = steps > t_d
    cmp = compare(steps[after], sim[:, after], X[:, after], seed=seed)
    obs_sd_after = float(np.mean(np.std(X[:, after], axis=0, ddof=1)))
    return {"sigma_L": sigma_L, "tau_xi": tau_xi, "tau_xi_is_lower_bound": tau_capped,
            "predicted_sd_after": float(sigma_L * np.mean(eta[after])), "observed_sd_after": obs_sd_after,
            "comparison_after_drop": cmp}


def delay_exponent(const, drops: dict, t_d: float, seed: int = 0, window: float | None = None):
    r"""Theorem 5.1 read on a network: the model-free delay (mean response time) after drops to
    several learning rates,
    against :math:`1/\eta_{after}` (the kernel's time scale in steps when the kernel is fixed in
    learning-rate area, :math:`\tau_{steps} = \tau_{area}/\eta_{after}`), as an exponent with its
    seed-resample interval (:func:`sde_scales.rates.statistic_exponent`; the constant and the drop
    run of one seed index are resampled together).

    ``const``: an :func:`ensemble` triple; ``drops``: ``{eta_after: triple}``, at least three."""
    from sde_scales.rates import statistic_exponent

    if len(drops) < 3:
        raise InvalidArgumentError(f"{len(drops)} drop sizes; an exponent needs at least three")
    xs, samples, grids = [], [], []
    bad = [e for e in drops if not (np.isfinite(e) and e > 0)]
    if bad:
        raise InvalidArgumentError(f"learning rates after the drop {bad}; each must be finite and > 0")
    for eta_after, drop in sorted(drops.items(), reverse=True):
        steps, a, b = _aligned(const, drop)
        R = min(a.shape[0], b.shape[0])
        samples.append(np.stack([a[:R].T, b[:R].T]))  # (2, T, R): replicas last
        grids.append(steps)
        xs.append(1.0 / float(eta_after))
    steps = grids[0]
    if any(g.size != steps.size or np.any(g != steps) for g in grids):
        raise InvalidArgumentError("the drop runs were logged at different steps; log them alike")
    tail = steps >= steps[-1] - 0.2 * (steps[-1] - t_d)

    def delay_and_gain(s):
        m = s.mean(axis=-1)  # (2, T, *batch)
        return _mean_delay(steps, m[0] - m[1], t_d, tail, window)

    def stat(s):
        return delay_and_gain(s)[0]

    # the seed means' own delays: where one is not positive, say why before the exponent refuses
    whole = [(x, *map(float, delay_and_gain(smp))) for x, smp in zip(xs, samples)]
    no_gain = [(x, g) for x, _, g in whole if not g > 0]
    early = [(x, dl) for x, dl, g in whole if g > 0 and not dl > 0]
    if no_gain or early:
        why = []
        if no_gain:
            why.append("no lasting gain at 1/eta_after = " + ", ".join(f"{x:.4g} (late gap {g:.3g})" for x, g in no_gain)
                       + ": over the last fifth of the run the drop run's loss is not below the constant run's")
        if early:
            why.append("a mean response time <= 0 at 1/eta_after = " + ", ".join(f"{x:.4g} ({dl:.3g} steps)"
                                                                            for x, dl in early)
                       + ": the gap between the constant and the drop run is larger, on average over the window "
                         "after the drop, than its late level (the constant run's faster progress at the higher "
                         "rate narrows it later), so the gap's rise is faster than the window resolves and the "
                         "integral of 1 - D/G is negative")
        raise InvalidArgumentError("; ".join(why) + "; no delay can be read from these runs (a drop from a rate at "
                                   "which the loss has reached its noise floor, or a longer run, separates them)")

    return statistic_exponent(np.array(xs), samples, stat, reading="delay after a drop against 1/eta_after",
                              seed=seed)
