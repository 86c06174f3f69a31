"""sde-scales: check the width-scaling theory of neural-network training, numerically and symbolically.

The engine (``sde_scales.sde``) is re-exported here; models, rates, fitting, training and plots
live in their own subpackages and are imported from there.
"""

from sde_scales.errors import (
    BlowUpError,
    DataFileError,
    InvalidArgumentError,
    InvalidProblemError,
    SDEScalesError,
    UnstableStepError,
)
from sde_scales.sde import (
    BlockStreams,
    BrownianPath,
    ConvergenceStudy,
    EulerMaruyama,
    Increments,
    Milstein,
    NoiseKind,
    SaveAt,
    SDEProblem,
    Solution,
    convergence_study,
    solve,
)

__version__ = "0.1.0"

__all__ = [
    "BlockStreams",
    "BlowUpError",
    "BrownianPath",
    "ConvergenceStudy",
    "DataFileError",
    "EulerMaruyama",
    "Increments",
    "InvalidArgumentError",
    "InvalidProblemError",
    "Milstein",
    "NoiseKind",
    "SDEProblem",
    "SDEScalesError",
    "SaveAt",
    "UnstableStepError",
    "Solution",
    "convergence_study",
    "solve",
]
