"""The SDE engine: problems, solvers, noise sources, ``solve`` and convergence studies."""

from sde_scales.sde.convergence import ConvergenceStudy, convergence_study
from sde_scales.sde.noise import BlockStreams, BrownianPath, Increments, Noise, as_noise, auto_block_size
from sde_scales.sde.problem import NoiseKind, SDEProblem
from sde_scales.sde.solve import SaveAt, Solution, solve
from sde_scales.sde.solvers import EulerMaruyama, Milstein, Solver

__all__ = [
    "BlockStreams",
    "BrownianPath",
    "ConvergenceStudy",
    "EulerMaruyama",
    "Increments",
    "Milstein",
    "Noise",
    "NoiseKind",
    "SDEProblem",
    "SaveAt",
    "Solution",
    "Solver",
    "as_noise",
    "auto_block_size",
    "convergence_study",
    "solve",
]
