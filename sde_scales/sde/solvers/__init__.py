"""Fixed-step Ito solvers, one file each: the class (orders, needs, checks) and its step functions."""

from sde_scales.sde.solvers.base import Solver
from sde_scales.sde.solvers.euler_maruyama import EulerMaruyama
from sde_scales.sde.solvers.milstein import Milstein

__all__ = ["EulerMaruyama", "Milstein", "Solver"]
