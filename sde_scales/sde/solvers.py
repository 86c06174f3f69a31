r"""Fixed-step Ito solvers as small frozen objects that state their orders.

Each solver knows its strong and weak order for every noise kind it supports
(:meth:`strong_order_for`, :meth:`weak_order_for`); the convergence tests read those numbers
back and assert them against measured slopes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sde_scales.errors import InvalidProblemError
from sde_scales.sde import _kernels as K
from sde_scales.sde import probes
from sde_scales.sde.problem import NoiseKind, SDEProblem

__all__ = ["EulerMaruyama", "Milstein", "Solver"]


@dataclass(frozen=True)
class Solver:
    """Base class: a fixed-step scheme for Ito SDEs."""

    strong_order: ClassVar[float]
    weak_order: ClassVar[float]
    supported_noise: ClassVar[tuple[NoiseKind, ...]]

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

    def step_function(self, problem: SDEProblem) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class EulerMaruyama(Solver):
    r"""Euler-Maruyama: :math:`X_{k+1} = X_k + f(t_k, X_k)\,h + g(t_k, X_k)\,\Delta W_k`.

    Orders
        strong 1/2 (strong 1 for additive noise), weak 1.
    Noise
        scalar, diagonal, additive, general.
    Calculus
        Ito.
    Reference
        Kloeden & Platen (1992), *Numerical Solution of SDEs*, sec. 10.2 and 14.1.
    """

    strong_order: ClassVar[float] = 0.5
    weak_order: ClassVar[float] = 1.0
    supported_noise: ClassVar[tuple[NoiseKind, ...]] = tuple(NoiseKind)

    def strong_order_for(self, noise: NoiseKind | str) -> float:
        return 1.0 if NoiseKind.coerce(noise) is NoiseKind.ADDITIVE else self.strong_order

    def step_function(self, problem: SDEProblem) -> Any:
        self.check(problem)
        if problem.noise.matrix_diffusion:
            return K.em_matrix
        if problem.noise is NoiseKind.SCALAR:
            return K.em_vector_scalar
        return K.em_vector_diagonal


@dataclass(frozen=True)
class Milstein(Solver):
    r"""Milstein for scalar, diagonal and commutative general noise.

    .. math::

        X_{k+1} = X_k + f\,h + g\,\Delta W_k
            + \tfrac12 \sum_{j,k} (L^j g_{\cdot k})\,(\Delta W_{k,j} \Delta W_{k,k} - \delta_{jk} h),
        \qquad L^j = \sum_l g_{lj}\,\partial_{x_l}.

    Scalar and diagonal noise: with ``problem.gdg`` given, :math:`(g\cdot\nabla)g` is that function;
    otherwise the derivative-free form replaces it by :math:`(g(\hat X) - g(X_k))/\sqrt h` at the
    support value :math:`\hat X = X_k + f h + g \sqrt h` (Kloeden & Platen 1992, eq. 11.1.5). Set
    ``derivative_free=True`` to force that form even when ``gdg`` exists. General noise: always
    derivative-free, :math:`L^j g_{\cdot k} \approx (g_{\cdot k}(X_k + \sqrt h\, g_{\cdot j}) -
    g_{\cdot k}(X_k))/\sqrt h` (m extra diffusion evaluations per step).

    Preconditions, probed before the solve (:mod:`sde_scales.sde.probes`, finite differences at
    x0 and along a short trial run) and refused with a clear error when violated: diagonal noise
    must have each :math:`g_i` depend on :math:`x_i` only; general noise must commute
    (:math:`L^j g_{\cdot k} = L^k g_{\cdot j}`). Non-commuting noise needs Levy areas, which this
    solver does not approximate: use ``EulerMaruyama()`` (strong order 1/2) there.

    Orders
        strong 1, weak 1.
    Noise
        scalar; diagonal (``g_i`` depending on ``x_i`` only); general when commutative; additive,
        where the correction vanishes and the scheme is Euler-Maruyama.
    Calculus
        Ito.
    Reference
        Kloeden & Platen (1992), sec. 10.3 and 11.1.
    """

    derivative_free: bool = False
    strong_order: ClassVar[float] = 1.0
    weak_order: ClassVar[float] = 1.0
    supported_noise: ClassVar[tuple[NoiseKind, ...]] = (NoiseKind.SCALAR, NoiseKind.DIAGONAL, NoiseKind.ADDITIVE,
                                                        NoiseKind.GENERAL)

    def uses_gdg(self, problem: SDEProblem) -> bool:
        return problem.gdg is not None and not self.derivative_free

    def check(self, problem: SDEProblem) -> None:
        super().check(problem)
        if problem.noise not in (NoiseKind.DIAGONAL, NoiseKind.GENERAL):
            return
        cache = problem.__dict__.setdefault("_milstein_probe", {})
        key = problem.noise
        if key not in cache:
            states = probes.probe_states(problem)
            if problem.noise is NoiseKind.DIAGONAL:
                cache[key] = probes.diagonal_violation(problem, states)
            else:
                cache[key] = probes.commutativity_violation(problem, states)
        why = cache[key]
        if why is None:
            return
        if problem.noise is NoiseKind.DIAGONAL:
            raise InvalidProblemError(
                f"Milstein on problem {problem.name!r}: {why}. Its componentwise correction would then be "
                f"wrong (strong order 1/2, not 1). Write the noise as noise='general' with m={problem.d} and a "
                f"({problem.d}, {problem.d}) diagonal matrix (Milstein handles it if the noise commutes), or use "
                f"EulerMaruyama()")
        raise InvalidProblemError(
            f"Milstein on problem {problem.name!r}: {why}. Non-commuting noise needs Levy areas, which this "
            f"solver does not approximate; use EulerMaruyama() (strong order 1/2)")

    def step_function(self, problem: SDEProblem) -> Any:
        self.check(problem)
        if problem.noise is NoiseKind.ADDITIVE:
            return K.em_matrix
        if problem.noise is NoiseKind.GENERAL:
            return K.milstein_df_general
        scalar = problem.noise is NoiseKind.SCALAR
        if self.uses_gdg(problem):
            return K.milstein_gdg_scalar if scalar else K.milstein_gdg_diagonal
        return K.milstein_df_scalar if scalar else K.milstein_df_diagonal
