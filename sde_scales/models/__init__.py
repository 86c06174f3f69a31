"""Models built on the engine: the width-n macro/micro system, the noisy quadratic model with
width, and the memory-kernel learning-rate-delay model."""

from sde_scales.models.width import Coupling, WidthModel, WidthSample, simulate_widths

__all__ = ["Coupling", "WidthModel", "WidthSample", "simulate_widths"]
