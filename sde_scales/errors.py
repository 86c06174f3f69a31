"""Errors raised by sde-scales.

Every error is a ``ValueError`` subclass whose message shows the offending value and says how
to fix it, so that ``except ValueError`` in user code keeps working.
"""

from __future__ import annotations

__all__ = [
    "SDEScalesError",
    "InvalidProblemError",
    "InvalidArgumentError",
    "BlowUpError",
    "DataFileError",
    "UnstableStepError",
    "UnwritablePathError",
]


class SDEScalesError(ValueError):
    """Base class of every error raised on purpose by sde-scales."""


class InvalidProblemError(SDEScalesError):
    """An ``SDEProblem`` (or a model that builds one) was given inconsistent pieces."""


class InvalidArgumentError(SDEScalesError):
    """A function argument is out of range, of the wrong shape, or not finite."""


class UnstableStepError(InvalidArgumentError):
    """The step size is outside the stability region of an explicit scheme for the problem's drift:
    the paths would grow where the solution decays (:func:`sde_scales.sde.probes.step_instability`)."""


class BlowUpError(SDEScalesError):
    """A path became NaN or infinite during a solve.

    Attributes
    ----------
    path : int
        Global index of the first path (earliest step, then lowest index) that blew up.
    step : int
        Step (1-based) after which the state was first non-finite.
    time : float
        Time at the end of that step.
    n_diverged : int
        How many paths blew up in total.
    """

    def __init__(self, message: str, *, path: int, step: int, time: float, n_diverged: int):
        super().__init__(message)
        self.path = path
        self.step = step
        self.time = time
        self.n_diverged = n_diverged


class DataFileError(SDEScalesError):
    """A data file is missing, corrupt or fails validation; the message names file, column, row."""


class UnwritablePathError(DataFileError, OSError):
    """An output path that cannot be written (a read-only or virtual file system, a folder without
    write permission). An ``OSError`` as well, so that code which falls back on a failed write (the
    compiled-loop cache compiles in memory instead) keeps doing so."""
