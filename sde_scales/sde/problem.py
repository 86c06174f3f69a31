r"""The SDE problem: drift, diffusion, noise kind, initial state, time span and parameters.

An Ito SDE

.. math::

    dX_t = f(t, X_t; p)\,dt + g(t, X_t; p)\,dW_t, \qquad X_{t_0} = x_0 \in \mathbb{R}^d,

is described by two Numba-jitted functions that *write into an output array* (so that no
memory is allocated per step)::

    @numba.njit
    def drift(t, x, p, out):       # out has shape (d,)
        out[0] = -p[0] * x[0]

    @numba.njit
    def diffusion(t, x, p, out):   # out has shape (d,) or (d, m), see NoiseKind
        out[0] = p[1]

The noise kind fixes the shape of ``g`` and the number ``m`` of Brownian motions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable

import numba
import numpy as np

from sde_scales import seeds
from sde_scales.errors import InvalidProblemError
from sde_scales.validation import real_array

__all__ = ["NoiseKind", "SDEProblem"]


class NoiseKind(enum.Enum):
    """How the diffusion multiplies the Brownian increments.

    ``SCALAR``
        One Brownian motion (m = 1); ``g`` has shape ``(d,)``; :math:`dX_i = \\dots + g_i\\,dW`.
    ``DIAGONAL``
        m = d independent Brownian motions; ``g`` has shape ``(d,)``;
        :math:`dX_i = \\dots + g_i(t, X_i)\\,dW_i`. As in Kloeden & Platen (1992, sec. 10.3),
        ``g_i`` may depend on ``t`` and ``x_i`` only; Milstein relies on it.
    ``ADDITIVE``
        ``g(t)`` of shape ``(d, m)`` that does not depend on ``x``; Euler-Maruyama then has
        strong order 1.
    ``GENERAL``
        ``g(t, x)`` of shape ``(d, m)``; :math:`dX_i = \\dots + \\sum_j g_{ij}\\,dW_j`.
    """

    SCALAR = "scalar"
    DIAGONAL = "diagonal"
    ADDITIVE = "additive"
    GENERAL = "general"

    @classmethod
    def coerce(cls, value: "NoiseKind | str") -> "NoiseKind":
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            allowed = ", ".join(repr(k.value) for k in cls)
            raise InvalidProblemError(
                f"noise={value!r} is not a noise kind; use one of {allowed} "
                f"(or sde_scales.NoiseKind.<NAME>)"
            ) from None

    @property
    def matrix_diffusion(self) -> bool:
        """True when ``g`` is a ``(d, m)`` matrix, False when it is a ``(d,)`` vector."""
        return self in (NoiseKind.ADDITIVE, NoiseKind.GENERAL)


def _as_jitted(fn: Callable | None, name: str) -> Any:
    if fn is None:
        return None
    if isinstance(fn, numba.core.registry.CPUDispatcher):
        return fn
    if not callable(fn):
        raise InvalidProblemError(
            f"{name}={fn!r} is not callable; pass a function f(t, x, p, out) decorated with @numba.njit"
        )
    return numba.njit(fn)


def _pure_python(fn: Any) -> Callable:
    return getattr(fn, "py_func", fn)


@dataclass(frozen=True)
class SDEProblem:
    """An Ito SDE with its initial state, time span and parameters; validates itself.

    Parameters
    ----------
    drift : callable
        ``drift(t, x, p, out)`` writing :math:`f(t, x; p)` into ``out`` of shape ``(d,)``.
        Should be ``@numba.njit``; a plain function is jitted for you.
    diffusion : callable
        ``diffusion(t, x, p, out)`` writing :math:`g(t, x; p)` into ``out`` of shape ``(d,)``
        (scalar, diagonal noise) or ``(d, m)`` (additive, general noise).
    x0 : array_like
        Initial state, shape ``(d,)`` shared by all paths, or ``(n_paths, d)`` one per path.
        A scalar means d = 1.
    tspan : tuple of float
        ``(t0, t1)`` with ``t1 > t0``.
    noise : NoiseKind or str
        ``"scalar"``, ``"diagonal"``, ``"additive"`` or ``"general"``.
    m : int, optional
        Number of Brownian motions; required for additive and general noise, implied otherwise
        (1 for scalar, d for diagonal).
    params : array_like, optional
        1-d float array passed to every call as ``p``.
    gdg : callable, optional
        The Milstein term :math:`(g\\cdot\\nabla) g`, i.e. ``out[i] = sum_j g_j dg_i/dx_j`` for
        scalar noise and ``out[i] = g_i dg_i/dx_i`` for diagonal noise. Without it, Milstein
        uses its derivative-free form.
    name : str
        Used in messages and reports.

    Raises
    ------
    InvalidProblemError
        On any inconsistency, with the value and the fix in the message. The functions are
        called in pure Python at (t0, x0) and at random times and states of the span
        (:meth:`probe_points`), so that an index out of range (of ``out``, ``x`` or ``p``, named in
        the message) is caught as an ``IndexError`` rather than read or written silently inside
        Numba, whose bounds checks are off (``solve(..., debug=True)`` turns them on).
    """

    drift: Any
    diffusion: Any
    x0: np.ndarray
    tspan: tuple[float, float]
    noise: NoiseKind = NoiseKind.DIAGONAL
    m: int | None = None
    params: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gdg: Any = None
    name: str = "sde"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "noise", NoiseKind.coerce(self.noise))
        set_(self, "drift", _as_jitted(self.drift, "drift"))
        set_(self, "diffusion", _as_jitted(self.diffusion, "diffusion"))
        set_(self, "gdg", _as_jitted(self.gdg, "gdg"))

        x0 = real_array(self.x0, "x0", InvalidProblemError)
        if x0.ndim == 0:
            x0 = x0.reshape(1)
        if x0.ndim not in (1, 2) or x0.shape[-1] == 0:
            raise InvalidProblemError(
                f"x0 has shape {x0.shape}; give shape (d,) shared by all paths or (n_paths, d)"
            )
        if not np.all(np.isfinite(x0)):
            bad = np.argwhere(~np.isfinite(x0))[0]
            raise InvalidProblemError(
                f"x0 is not finite at index {tuple(int(i) for i in bad)} (value {x0[tuple(bad)]}); "
                f"give a finite initial state"
            )
        set_(self, "x0", np.ascontiguousarray(x0))

        ts = real_array(self.tspan, "tspan", InvalidProblemError)  # its own error, not swallowed below
        if ts.shape != (2,):
            raise InvalidProblemError(f"tspan={self.tspan!r}; give two numbers (t0, t1)")
        t0, t1 = float(ts[0]), float(ts[1])
        if not (np.isfinite(t0) and np.isfinite(t1) and t1 > t0):
            raise InvalidProblemError(
                f"tspan=({t0}, {t1}) is not a finite interval with t1 > t0; e.g. tspan=(0.0, 1.0)"
            )
        set_(self, "tspan", (t0, t1))

        params = np.ascontiguousarray(real_array(self.params, "params", InvalidProblemError).reshape(-1))
        if not np.all(np.isfinite(params)):
            raise InvalidProblemError(
                f"params contains non-finite values {params[~np.isfinite(params)]}; give finite numbers"
            )
        set_(self, "params", params)

        d = self.d
        if self.noise is NoiseKind.SCALAR:
            m = 1
        elif self.noise is NoiseKind.DIAGONAL:
            m = d
        else:
            if self.m is None:
                raise InvalidProblemError(
                    f"noise={self.noise.value!r} needs m, the number of Brownian motions "
                    f"(the diffusion writes a ({d}, m) matrix); pass m=..."
                )
            m = int(self.m)
        if self.m is not None and int(self.m) != m:
            raise InvalidProblemError(
                f"m={self.m} contradicts noise={self.noise.value!r} with d={d}, which implies m={m}; "
                f"drop m or change the noise kind"
            )
        if m < 1:
            raise InvalidProblemError(f"m={m}; the number of Brownian motions must be at least 1")
        set_(self, "m", m)
        self._check_functions()

    # ------------------------------------------------------------------ derived shape
    @property
    def d(self) -> int:
        """State dimension."""
        return int(self.x0.shape[-1])

    @property
    def per_path_x0(self) -> bool:
        """True when ``x0`` gives one initial state per path."""
        return self.x0.ndim == 2

    @property
    def diffusion_shape(self) -> tuple[int, ...]:
        """Shape of the array the diffusion writes."""
        return (self.d, self.m) if self.noise.matrix_diffusion else (self.d,)

    # ------------------------------------------------------------------ validation
    def _call(self, name: str, fn: Any, x: np.ndarray, shape: tuple[int, ...], t: float | None = None,
              strict: bool = True) -> np.ndarray:
        """Call ``fn`` in pure Python. ``strict=False`` (random states, which may leave the function's
        domain): only an index out of range is an error; NaN results and other exceptions (a
        ``math.sqrt`` of a negative number raises in Python, gives NaN in Numba) are tolerated."""
        t = self.tspan[0] if t is None else float(t)
        out = np.full(shape, np.nan)
        py = _pure_python(fn)
        try:
            py(t, x.copy(), self.params, out)
        except IndexError as exc:
            raise InvalidProblemError(self._blame_index(name, py, t, x, shape, exc)) from None
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            if not strict:
                return out
            raise InvalidProblemError(
                f"{name} of problem {self.name!r} failed when called as {name}(t, x, params, out) at t = {t:.6g}, "
                f"x = {np.array2string(x, precision=4)} with out.shape={shape}: {type(exc).__name__}: {exc}"
            ) from exc
        if strict and np.isnan(out).any():
            idx = tuple(int(i) for i in np.argwhere(np.isnan(out))[0])
            raise InvalidProblemError(
                f"{name} of problem {self.name!r} left out{list(idx)} unset (or NaN) at t = {t:.6g}, x = "
                f"{np.array2string(x, precision=4)}; it must write every entry of an output of shape {shape}"
            )
        return out

    def _blame_index(self, name, py, t, x, shape, exc) -> str:
        """Which argument an IndexError came from: retry with each of out, x, p padded in turn."""
        where = f"at t = {t:.6g}, x = {np.array2string(x, precision=4)}"
        pad = 4
        tries = (
            ("out", lambda: py(t, x.copy(), self.params, np.zeros(tuple(s + pad for s in shape)))),
            ("x", lambda: py(t, np.concatenate([x, np.zeros(pad)]), self.params, np.zeros(shape))),
            ("p", lambda: py(t, x.copy(), np.concatenate([self.params, np.zeros(pad)]), np.zeros(shape))),
        )
        for arg, call in tries:
            try:
                call()
            except Exception:  # noqa: BLE001 - still failing: not this argument
                continue
            if arg == "out":
                return (f"{name} of problem {self.name!r} indexes outside its output {where}: out has shape {shape} for "
                        f"d={self.d}, noise={self.noise.value!r}, m={self.m} ({exc}); write only out[0..{shape[0] - 1}]"
                        + (f", [0..{shape[1] - 1}]" if len(shape) > 1 else ""))
            if arg == "x":
                return (f"{name} of problem {self.name!r} reads the state x outside its {self.d} entries {where} "
                        f"({exc}); x0 fixes d = {self.d}")
            return (f"{name} of problem {self.name!r} reads the parameters p outside their {self.params.size} entries "
                    f"{where} ({exc}); pass params with every entry it reads")
        return f"{name} of problem {self.name!r} raised IndexError {where}: {exc}"

    def probe_points(self, n: int = 6, seed: int = 0) -> list[tuple[float, np.ndarray]]:
        """Times and states at which the functions are checked: (t0, x0), (t1, x0) and ``n`` random
        times in the span with states x0 + N(0, 1)(1 + |x0|)/2 (a fixed seed: reproducible checks)."""
        rng = seeds.rng(seed, "sde.probe_points")
        x = self.x0[0] if self.per_path_x0 else self.x0
        t0, t1 = self.tspan
        pts = [(t0, x), (t1, x)]
        for _ in range(n):
            pts.append((float(rng.uniform(t0, t1)), x + 0.5 * (1 + np.abs(x)) * rng.standard_normal(x.size)))
        return pts

    def _check_functions(self) -> None:
        """Call every function in pure Python at (t0, x0) and at random times and states of the span
        (so an out-of-range read that happens only later is caught here, not read silently from
        another path's memory inside Numba), with the output filled with NaN so that unset entries
        show."""
        pts = self.probe_points()
        x = pts[0][1]
        gs = []
        for i, (t, xs) in enumerate(pts):
            strict = i < 2  # x0 at t0 and t1: every entry written and finite; random states: indices only
            self._call("drift", self.drift, xs, (self.d,), t, strict)
            gs.append(self._call("diffusion", self.diffusion, xs, self.diffusion_shape, t, strict))
        g0 = gs[0]
        if self.noise is NoiseKind.ADDITIVE:
            g1 = self._call("diffusion", self.diffusion, x + 1.0, self.diffusion_shape)
            if not np.array_equal(g0, g1):
                raise InvalidProblemError(
                    f"noise='additive' but the diffusion of problem {self.name!r} changes with x "
                    f"(g(x0) != g(x0 + 1)); use noise='general'"
                )
        if self.noise is NoiseKind.GENERAL and self.m > 1 and all(
                np.all(g == g[:, :1]) and np.any(g != 0) for g in gs):
            raise InvalidProblemError(
                f"the diffusion of problem {self.name!r} writes the same value into every column of each row of "
                f"its ({self.d}, {self.m}) output at every probed state: out[i] = value broadcasts over row i. "
                f"Write out[i, j] for each column; if all {self.m} noises really load equally, use noise='scalar' "
                f"with the diffusion times sqrt({self.m})"
            )
        if self.gdg is not None:
            if self.noise not in (NoiseKind.SCALAR, NoiseKind.DIAGONAL):
                raise InvalidProblemError(
                    f"gdg is given for noise={self.noise.value!r}; the Milstein term (g.grad)g is only "
                    f"used for scalar or diagonal noise. Drop gdg"
                )
            for i, (t, xs) in enumerate(pts):
                self._call("gdg", self.gdg, xs, (self.d,), t, i < 2)

    def with_x0(self, x0: Any) -> "SDEProblem":
        """A copy with another initial state (shared ``(d,)`` or per path ``(n_paths, d)``)."""
        from dataclasses import replace

        return replace(self, x0=x0, m=self.m if self.noise.matrix_diffusion else None)

    def with_params(self, params: Any) -> "SDEProblem":
        """A copy with another parameter array."""
        from dataclasses import replace

        return replace(self, params=params, m=self.m if self.noise.matrix_diffusion else None)
