"""Fit learning-rate-response laws to loss curves and predict unseen schedules."""

from sde_scales.fitting.average import AveragedFit
from sde_scales.fitting.compare import compare_over_curves, compare_predictions
from sde_scales.fitting.curves import LateStartWarning, LossCurve, ScheduleFeatures, ScheduleSpec, load_curve
from sde_scales.fitting.fit import (
    FitResult,
    FitWarning,
    IdentifiabilityWarning,
    PeakLRWarning,
    WindowWarning,
    fit,
    lack_of_fit,
    predict,
    predict_sd,
    score,
    score_prediction,
    shared_noise_offset,
    time_scale_profile,
)
from sde_scales.fitting.forecast import Forecast, forecast
from sde_scales.fitting.laws import KernelLaw, Law, MomentumLaw, MultiPowerLaw

__all__ = [
    "AveragedFit",
    "FitResult",
    "FitWarning",
    "Forecast",
    "IdentifiabilityWarning",
    "KernelLaw",
    "LateStartWarning",
    "Law",
    "LossCurve",
    "MomentumLaw",
    "MultiPowerLaw",
    "PeakLRWarning",
    "ScheduleFeatures",
    "ScheduleSpec",
    "WindowWarning",
    "compare_over_curves",
    "compare_predictions",
    "fit",
    "forecast",
    "lack_of_fit",
    "load_curve",
    "predict",
    "predict_sd",
    "score",
    "score_prediction",
    "shared_noise_offset",
    "time_scale_profile",
]
