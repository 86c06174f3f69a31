r"""The numeric checks behind the claims: each runs an experiment and returns a :class:`Measurement`.

Settings (:class:`Settings`) fix the experiment size; ``quick`` is the small version that
``sde-scales verify --quick`` runs in under two minutes on two cores. Simulations of the width
model are shared by the claims that read them (one run per settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from sde_scales.models.delay import DelayModel, Exponential, Instantaneous, lag_from_curves
from sde_scales.models.nqm import NoisyQuadraticModel
from sde_scales.models.width import Coupling, WidthModel, WidthSample, simulate_widths
from sde_scales.rates import (
    ExponentEstimate,
    bias_exponent,
    exponent_difference,
    exponent_from_values,
    fluctuation_exponent,
)
from sde_scales.schedules import PiecewiseLinear

__all__ = ["Measurement", "Settings", "width_sample", "WIDTH_BASE"]


@dataclass(frozen=True)
class Settings:
    """Size of the experiments. ``quick``: fewer widths and replicas."""

    quick: bool = False
    seed: int = 0

    @property
    def widths(self) -> tuple[int, ...]:
        return (64, 128, 256, 512, 1024) if self.quick else (64, 128, 256, 512, 1024, 2048, 4096)

    @property
    def replicas(self) -> int:
        return 400 if self.quick else 3000

    @property
    def dt(self) -> float:
        return 0.01


@dataclass(frozen=True)
class Measurement:
    """What a check returns: the exponent estimate and anything the verdict or the report needs.

    ``extra_fail`` is a reason that overrides a PASS (a second condition of the claim failed).
    """

    estimate: ExponentEstimate
    model: str
    extra: dict = field(default_factory=dict)
    extra_fail: str | None = None
    plot_xlabel: str = "width n"
    plot_ylabel: str = ""


#: The width model used for Theorem 4.1: the mean-field two-layer tanh network fitting a
#: teacher value, at the muP coordinate scale beta = 1/2.
WIDTH_BASE = WidthModel(n=1, coupling=Coupling.TANH_TEACHER, q=[0.8], beta=0.5, sigma=1.0, c=0.5, s=1.0,
                        eta=1.0, T=1.0)
WIDTH_MODEL_TEXT = ("width-n system, tanh teacher: dtheta_i = (y - M)(1 - tanh^2 theta_i) dt + n^-1/2 dW_i, "
                    "M = mean tanh(theta_i), theta_i(0) = 0.5 + n^-1/2 xi_i, y = 0.8, T = 1")


@lru_cache(maxsize=4)
def width_sample(settings: Settings) -> WidthSample:
    return simulate_widths(WIDTH_BASE, settings.widths, settings.replicas, settings.dt, settings.seed)


def _model(settings: Settings) -> str:
    return f"{WIDTH_MODEL_TEXT}; widths {list(settings.widths)}, {settings.replicas} replicas, EM dt={settings.dt}"


def macro_fluctuation(settings: Settings) -> Measurement:
    s = width_sample(settings)
    est = fluctuation_exponent(s.widths, s.macro, seed=settings.seed)
    return Measurement(est, _model(settings), plot_ylabel="std over replicas of M_n(T)")


def micro_fluctuation(settings: Settings) -> Measurement:
    s = width_sample(settings)
    est = fluctuation_exponent(s.widths, s.micro, seed=settings.seed)
    return Measurement(est, _model(settings), plot_ylabel="std over replicas of theta_1(T)")


def macro_bias(settings: Settings) -> Measurement:
    s = width_sample(settings)
    est = bias_exponent(s.widths, s.macro, s.macro_limit, seed=settings.seed)
    return Measurement(est, _model(settings) + "; reference: mean-field limit of the same scheme",
                       plot_ylabel="|E M_n(T) - M_oo(T)|")


def micro_bias(settings: Settings) -> Measurement:
    s = width_sample(settings)
    # E theta_1 = E mean_i theta_i by exchangeability; the coordinate mean has far less noise
    est = bias_exponent(s.widths, s.coord_mean, s.micro_limit, seed=settings.seed)
    return Measurement(est, _model(settings) + "; reference: mean-field limit; E theta_1 estimated by the "
                       "coordinate mean (exchangeable coordinates)", plot_ylabel="|E theta_1(T) - theta_oo(T)|")


def separation(settings: Settings) -> Measurement:
    s = width_sample(settings)
    est = exponent_difference(s.widths, s.macro, s.micro, seed=settings.seed)
    return Measurement(est, _model(settings), plot_ylabel="std(M_n) / std(theta_1)")


def early_optimum(settings: Settings) -> Measurement:
    widths = (64, 256, 1024, 4096) if settings.quick else (64, 256, 1024, 4096, 16384, 65536)
    t0, T = 3, 20
    gaps = [NoisyQuadraticModel(n).early_late_gap(t0, T) for n in widths]
    est = exponent_from_values(widths, gaps)
    m = NoisyQuadraticModel(widths[0])
    return Measurement(
        est,
        f"NQM: two halves with curvatures (1, 20), SGD noise variance 0.01 h / n, t0 = {t0}, T = {T} steps; "
        f"eta*(t) exact (closed-form expected loss), interval from the least-squares fit",
        extra={"eta_star_t0_smallest_width": m.optimal_lr(t0), "eta_star_T_smallest_width": m.optimal_lr(T),
               "eta_deterministic": m.eta_deterministic},
        plot_ylabel="|log eta*(t0) - log eta*(T)|",
    )


def delay_lag(settings: Settings) -> Measurement:
    """Lag of the loss after a learning-rate drop against the kernel time scale, and at zero memory."""
    taus = (0.05, 0.1, 0.2, 0.4)
    R = 64 if settings.quick else 256
    dt, t_drop, eta0, eta1, C = 1e-3, 1.0, 1.0, 0.3, 1.0
    sched = PiecewiseLinear.step_drop(eta0, eta1, t_drop)
    curves = []
    t_axis = None
    for i, tau in enumerate(taus):
        res = DelayModel(sched, Exponential(tau), C=C).simulate(t_drop + 8 * max(taus), dt, R,
                                                                seed=settings.seed + 101 * i, save_every=2)
        t_axis = res.t
        curves.append(res.loss)  # (n_save, R)
    zero = DelayModel(sched, Instantaneous(), C=C).simulate(t_drop + 1.0, dt, R, seed=settings.seed + 7, save_every=2)
    lag0 = float(lag_from_curves(zero.t, zero.loss, t_drop, C * (eta0 - eta1)))
    from scipy import stats

    gain = C * (eta0 - eta1)
    lx = np.log(np.asarray(taus))

    def stat(*idx, axis=-1):
        # bootstrap over replica indices (1-d samples): idx[i] is ([batch,] R)
        lags = np.stack([lag_from_curves(t_axis, c[:, ix], t_drop, gain, axis=-1) for c, ix in zip(curves, idx)],
                        axis=-1)
        ly = np.log(np.maximum(lags, 1e-12))
        xm = lx - lx.mean()
        return ((ly - ly.mean(axis=-1, keepdims=True)) * xm).sum(axis=-1) / (xm**2).sum()

    index_samples = tuple(np.arange(c.shape[1]) for c in curves)
    point_lags = np.array([float(lag_from_curves(t_axis, c, t_drop, gain)) for c in curves])
    res = stats.bootstrap(index_samples, stat, vectorized=True, paired=False, n_resamples=500, batch=16,
                          method="percentile", random_state=np.random.default_rng(settings.seed))
    fit = exponent_from_values(taus, point_lags)
    save_dt = float(t_axis[1] - t_axis[0])
    est = ExponentEstimate(float(stat(*index_samples)), (float(res.confidence_interval.low), float(res.confidence_interval.high)),
                           np.asarray(taus), point_lags, np.full(len(taus), np.nan), fit.intercept, "values",
                           0.95, R)
    extra_fail = None
    if not (abs(lag0) <= save_dt):
        extra_fail = f"lag with the zero-memory kernel is {lag0:.4g}, not within one save interval {save_dt:g} of 0"
    return Measurement(
        est,
        f"delay model: eta drops {eta0} -> {eta1} at t = {t_drop}, exponential kernels tau in {list(taus)}, "
        f"loss noise 0.05 eta(t) xi(t), {R} replicas, EM dt = {dt}; lag = half-response time of the mean loss",
        extra={"lags": point_lags.tolist(), "closed_form_lags": (np.asarray(taus) * np.log(2)).tolist(),
               "lag_zero_kernel": lag0},
        extra_fail=extra_fail, plot_xlabel="kernel time scale tau", plot_ylabel="lag (time to half response)",
    )
