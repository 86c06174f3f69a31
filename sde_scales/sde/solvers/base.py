r"""The solver base class: a fixed-step Ito scheme as a small frozen object that states its orders
and what it needs.

Each solver knows its strong and weak order for every noise kind it supports
(:meth:`Solver.strong_order_for`, :meth:`Solver.weak_order_for`); the convergence tests read those
numbers back and assert them against measured slopes. It also says what it needs from a problem
(:meth:`Solver.check`: the noise kinds and preconditions; :meth:`Solver.uses_gdg`: whether the
loop passes the problem's ``gdg``) and hands the loop its jitted step function
(:meth:`Solver.step_function`). A new solver is one file in this package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sde_scales.errors import InvalidProblemError
from sde_scales.sde.problem import NoiseKind, SDEProblem

__all__ = ["Solver"]


@dataclass(frozen=True)
class Solver:
    """Base class: a fixed-step scheme for Ito SDEs."""

    strong_order: ClassVar[float]
    weak_order: ClassVar[float]
    supported_noise: ClassVar[tuple[NoiseKind, ...]]
    #: The drift enters as x + f(t, x) dt: ``solve`` refuses a dt outside that step's stability
    #: region for the drift at the initial state (:func:`sde_scales.sde.probes.step_instability`).
    explicit_drift: ClassVar[bool] = True

    def strong_order_for(self, noise: NoiseKind | str) -> float:
        """Strong order of convergence for the given noise kind."""
        return self.strong_order

    def weak_order_for(self, noise: NoiseKind | str) -> float:
        """Weak order of convergence for the given noise kind."""
        return self.weak_order

    def check(self, problem: SDEProblem) -> None:
        if problem.noise not in self.supported_noise:
            names = ", ".join(k.value for k in self.supported_noise)
            raise InvalidProblemError(
                f"{type(self).__name__} does not handle noise={problem.noise.value!r} "
                f"(it handles {names}); use EulerMaruyama()"
            )

    def uses_gdg(self, problem: SDEProblem) -> bool:
        """Whether the step function calls the problem's ``gdg`` (else the loop passes a no-op)."""
        return False

    def step_function(self, problem: SDEProblem) -> Any:  # pragma: no cover - abstract
        """The jitted step (signature in :mod:`sde_scales.sde._loop`) for this problem, after
        :meth:`check`."""
        raise NotImplementedError
