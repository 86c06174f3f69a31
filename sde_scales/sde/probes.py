r"""Probes of a problem's functions in pure Python, before anything is compiled.

:func:`probe_states` gives states at which to evaluate them: the initial state, states reached by
a short Euler-Maruyama trial run (a few paths, 16 steps over the time span) and random
perturbations of the initial state, each with its time. The checks below evaluate the diffusion
there by central finite differences (step :math:`\delta = 10^{-5}(1 + |x_l|)`, error
:math:`O(\delta^2)`), so a precondition that holds at x0 but fails elsewhere is caught too.

* :func:`diagonal_violation`: diagonal noise needs :math:`g_i` to depend on :math:`x_i` only
  (Milstein's componentwise correction relies on it; Kloeden & Platen 1992, sec. 10.3).
* :func:`commutativity_violation`: general noise is *commutative* when
  :math:`L^j g_{\cdot k} = L^k g_{\cdot j}` for all j, k, with :math:`L^j = \sum_l g_{lj}\partial_{x_l}`;
  then Milstein needs no Levy areas (Kloeden & Platen 1992, sec. 10.3, eq. 3.13).

Each returns None, or a sentence naming the entry, the state and the size of the violation.

* :func:`step_instability`: an explicit step :math:`x + f(t, x)\,\Delta t` (Euler-Maruyama and
  Milstein alike) follows a decaying mode of the drift, an eigenvalue :math:`\lambda` of its
  Jacobian with :math:`\mathrm{Re}\,\lambda < 0`, only where :math:`|1 + \lambda \Delta t| \le 1`,
  i.e. :math:`\Delta t \le 2 |\mathrm{Re}\,\lambda| / |\lambda|^2` (:math:`2/|\lambda|` for a
  real one); past it the scheme grows geometrically where the solution decays (Kloeden & Platen
  1992, sec. 9.8; Higham 2001, sec. 9), which stays finite, and under the blow-up threshold, over a
  short span: a number with no relation to the SDE. Probed at the initial state at 17 times over
  the span (a stiffness that grows with time); :func:`state_instability` probes a typical path's
  final state after the solve (a stiffness that grows with the state).
"""

from __future__ import annotations

import numpy as np
from sde_scales import seeds

__all__ = ["StabilityNotCheckedWarning", "commutativity_violation", "diagonal_violation", "drift_eigenvalues",
           "probe_states", "state_instability", "step_instability"]


class StabilityNotCheckedWarning(UserWarning):
    """The drift's Jacobian at the initial state could not be computed, so the explicit step's
    stability was not checked: a dt past it would give finite numbers with no relation to the SDE."""


#: Largest state dimension whose drift Jacobian is formed in full (2d drift evaluations of the
#: Python function); above it the eigenvalues of largest modulus come from ARPACK on
#: Jacobian-vector products of the compiled drift.
DENSE_MAX = 32
#: A mode decays (and is checked) when Re(lambda) < -DECAY_RTOL |lambda|: finite differences put an
#: error of about 1e-6 relative on each eigenvalue, so a neutral mode (an undamped oscillation,
#: whose explicit step grows for any dt) is not taken for a decaying one.
DECAY_RTOL = 1e-4
#: Margin on the stability bound for the eigenvalues' error (finite differences about 1e-6
#: relative, ARPACK's tolerance 1e-4): a dt up to 1% above the bound is let through.
STABILITY_MARGIN = 0.01
#: Intervals of the time grid at which the drift is probed at the initial state (so PROBE_TIMES + 1
#: times, the span's ends included): a stiffness that grows with time is found where it peaks to
#: within a sixteenth of the span (a warmup of a tenth of the span is reached by its second point).
PROBE_TIMES = 16
#: After a solve, the final state of median norm among the ensemble's first TYPICAL_PATHS paths is
#: probed (:func:`state_instability`): a typical path, chosen the same way however the ensemble is
#: split into chunks of at least this many paths.
TYPICAL_PATHS = 9

_REL = 1e-6  # a violation is reported above 1e-6 of the diffusion's own scale (finite differences: ~1e-10)


def _py(fn):
    return getattr(fn, "py_func", fn)


def _evaluate(fn, shape, t, x, params):
    """``fn(t, x, params, out)`` in pure Python into a NaN-filled ``out`` of ``shape``; NaN where
    it raises an arithmetic error (``math.log`` of a negative number and the like)."""
    out = np.full(shape, np.nan)
    try:
        with np.errstate(all="ignore"):
            _py(fn)(t, x.copy(), params, out)
    except (ArithmeticError, ValueError):
        out[...] = np.nan
    return out


def _g(problem, t, x):
    out = np.full(problem.diffusion_shape, np.nan)
    _py(problem.diffusion)(t, x.copy(), problem.params, out)
    return out


def probe_states(problem, n_paths: int = 4, n_steps: int = 16, n_random: int = 4, seed: int = 0):
    """``[(t, x), ...]``: x0 at t0, a short EM trial run's states, random perturbations of x0."""
    rng = seeds.rng(seed, "sde.probe_states")
    t0, t1 = problem.tspan
    x0 = problem.x0[0] if problem.per_path_x0 else problem.x0
    states = [(t0, x0.astype(float).copy())]
    dt = (t1 - t0) / n_steps
    drift, m = _py(problem.drift), problem.m
    for _ in range(n_paths):
        x = x0.astype(float).copy()
        for k in range(n_steps):
            t = t0 + k * dt
            f = np.full(problem.d, np.nan)
            drift(t, x.copy(), problem.params, f)
            g = _g(problem, t, x)
            dw = rng.standard_normal(m) * np.sqrt(dt)
            x = x + f * dt + (g @ dw if g.ndim == 2 else g * (dw if m == problem.d else dw[0]))
            if not np.all(np.isfinite(x)):
                break
            if k % 4 == 3:
                states.append((t + dt, x.copy()))
    for _ in range(n_random):
        states.append((float(rng.uniform(t0, t1)), x0 + 0.5 * (1 + np.abs(x0)) * rng.standard_normal(problem.d)))
    return states


def _differences(evaluate, x, rel: float) -> np.ndarray:
    """:math:`\\partial F / \\partial x_l` of ``evaluate(x)`` by central differences with step
    ``rel (1 + |x_l|)``: shape ``F.shape + (d,)``. Where a central difference is not finite (a state
    at the edge of the function's domain, as for :math:`\\log x` or :math:`\\sqrt{x}` near 0) the
    one-sided difference on the finite side is used; NaN is left only where neither side is finite."""
    f0 = None
    cols = []
    for l in range(x.size):
        h = rel * (1.0 + abs(x[l]))
        xp, xm = x.copy(), x.copy()
        xp[l] += h
        xm[l] -= h
        fp, fm = evaluate(xp), evaluate(xm)
        col = (fp - fm) / (2 * h)
        if not np.all(np.isfinite(col)):
            f0 = evaluate(x) if f0 is None else f0
            forward, backward = (fp - f0) / h, (f0 - fm) / h
            col = forward if np.all(np.isfinite(forward)) else backward
        cols.append(col)
    return np.stack(cols, axis=-1)


def _jacobian(problem, t, x):
    """:math:`\\partial g / \\partial x_l`: shape ``diffusion_shape + (d,)``."""
    return _differences(lambda y: _g(problem, t, y), x, 1e-5)


def diagonal_violation(problem, states) -> str | None:
    for t, x in states:
        J = _jacobian(problem, t, x)  # (d, d): dg_i / dx_l
        g = _g(problem, t, x)
        scale = 1.0 + np.max(np.abs(g))
        off = J - np.diag(np.diag(J))
        if np.max(np.abs(off)) > _REL * scale:
            i, l = (int(v) for v in np.unravel_index(np.argmax(np.abs(off)), off.shape))
            return (f"g_{i} depends on x_{l} (dg_{i}/dx_{l} = {off[i, l]:.3g} at t = {t:.3g}, x = "
                    f"{np.array2string(x, precision=3)}), but diagonal noise needs each g_i to depend on x_i only")
    return None


def commutativity_violation(problem, states) -> str | None:
    for t, x in states:
        g = _g(problem, t, x)  # (d, m)
        J = _jacobian(problem, t, x)  # (d, m, d): dg_ik / dx_l
        L = np.einsum("lj,ikl->jki", g, J)  # L[j, k] = L^j g_{.k}, a d-vector
        scale = 1.0 + np.max(np.abs(L))
        gap = np.abs(L - L.transpose(1, 0, 2)).max(axis=-1)  # (m, m)
        if gap.max() > _REL * scale:
            j, k = (int(v) for v in np.unravel_index(np.argmax(gap), gap.shape))
            return (f"the noise does not commute: L^{j} g_{k} != L^{k} g_{j} (difference {gap[j, k]:.3g} at t = "
                    f"{t:.3g}, x = {np.array2string(x, precision=3)})")
    return None


def drift_eigenvalues(problem, t: float, x: np.ndarray) -> np.ndarray:
    r"""Eigenvalues of the drift's Jacobian :math:`\partial f / \partial x` at ``(t, x)`` by central
    differences: all of them for ``d <= DENSE_MAX``; else the two of largest modulus (those bound
    an explicit step unless a smaller, lightly damped oscillation is stiffer: a large system's
    check is that much coarser), from ``scipy.sparse.linalg.eigs`` on Jacobian-vector products.
    Where a central difference is not finite (a state at the edge of the drift's domain, as for
    :math:`\log x` or :math:`\sqrt{x}` near 0) the one-sided difference on the finite side is used.
    Empty where they cannot be computed (a drift that is not finite on either side of ``x``,
    ARPACK failing): :func:`step_instability` then warns that the check was not made."""
    x = np.asarray(x, dtype=float)
    d = problem.d
    if d <= DENSE_MAX:
        J = _differences(lambda y: _evaluate(problem.drift, d, t, y, problem.params), x, 1e-6)
        return np.linalg.eigvals(J) if np.all(np.isfinite(J)) else np.array([])
    from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigs

    drift, params = problem.drift, problem.params  # compiled: d evaluations per product would be slow in Python
    scale = 1.0 + float(np.linalg.norm(x)) / np.sqrt(d)

    def jvp(v):
        v = np.asarray(v, dtype=float).ravel()
        nv = float(np.linalg.norm(v))
        if nv == 0:
            return np.zeros(d)
        h = 1e-6 * scale / nv * np.sqrt(d)
        fp, fm = np.empty(d), np.empty(d)
        drift(t, x + h * v, params, fp)
        drift(t, x - h * v, params, fm)
        return (fp - fm) / (2 * h)

    # a random start: the all-ones vector is in the null space of every drift of differences
    # (x_i - mean x), and a start in the null space makes ARPACK stop ("starting vector is zero")
    v0 = seeds.rng(0, "sde.stability_start", d).standard_normal(d)
    v0 /= np.linalg.norm(v0)
    try:
        # at most 300 restarts (about 4,000 products): a probe, not a solve; what converged by then counts
        vals = eigs(LinearOperator((d, d), matvec=jvp, dtype=float), k=2, which="LM", tol=1e-4,
                    v0=v0, return_eigenvectors=False, maxiter=300)
    except ArpackNoConvergence as exc:
        vals = np.asarray(exc.eigenvalues)
    except (ArpackError, FloatingPointError, ValueError):
        w = jvp(v0)
        if np.all(w == 0):  # a random vector in the Jacobian's null space: the Jacobian is zero (no drift)
            return np.zeros(1)
        return np.array([])
    return vals if np.all(np.isfinite(vals)) else np.array([])


def _probe_times(problem) -> np.ndarray:
    """The times at which the drift is probed at the initial state: :data:`PROBE_TIMES` + 1, evenly
    spaced over the span, its ends included."""
    t0, t1 = (float(v) for v in problem.tspan)
    return np.linspace(t0, t1, PROBE_TIMES + 1)


def _stiffest(lam: np.ndarray) -> tuple[float, complex] | None:
    r"""(bound, eigenvalue): the largest stable explicit step :math:`2|\mathrm{Re}\,\lambda|/|\lambda|^2`
    over the decaying modes among ``lam``, and the mode that sets it; None when none decays."""
    decaying = lam.real < -DECAY_RTOL * np.abs(lam)
    if not decaying.any():
        return None
    lam = lam[decaying]
    bound = 2 * np.abs(lam.real) / np.abs(lam) ** 2  # |1 + lambda dt| <= 1 up to here
    k = int(np.argmin(bound))
    return float(bound[k]), complex(lam[k])


def _refusal(problem, dt: float, bound: float, l: complex, where: str) -> str:
    """The sentence that refuses ``dt`` for the mode ``l`` (stable up to ``bound``) found ``where``."""
    span = float(problem.tspan[1] - problem.tspan[0])
    steps = 2 ** int(np.ceil(np.log2(max(span / bound, 1.0))))  # a power of two: usable in convergence studies
    what = f"{l.real:.4g}"
    if abs(l.imag) > DECAY_RTOL * abs(l):
        what += f" {'+' if l.imag > 0 else '-'} {abs(l.imag):.4g}i"
    return (f"dt={dt:g} is unstable for this problem: its drift has a decaying mode with eigenvalue {what} {where}, "
            f"and the explicit step multiplies it by |1 + lambda dt| = {abs(1 + l * dt):.4g} > 1 per "
            f"step, where the solution shrinks it by exp(Re lambda dt) = {np.exp(l.real * dt):.4g}: the paths would "
            f"grow geometrically, a result with no relation to the SDE. Use dt <= {bound:.4g} "
            f"(2 |Re lambda| / |lambda|^2), e.g. dt={span / steps!r} ({steps} steps): stable there, and accurate "
            f"only where |lambda| dt is well below 1 (dt << {1 / abs(l):.3g})")


def step_instability(problem, dt: float) -> str | None:
    """None, or why an explicit step of ``dt`` is unstable for ``problem`` at its initial state
    (the first path's, where each path has its own), with the largest stable dt. The drift is probed
    there at :data:`PROBE_TIMES` + 1 times over the span, so a drift whose stiffness grows with time
    (a learning rate warmed up from 0, a rate proportional to t) is checked where it is stiffest,
    not only at the start. The eigenvalues are computed once per problem and kept on it."""
    cache = problem.__dict__.setdefault("_step_probe", {})
    if "eigs" not in cache:
        x0 = problem.x0[0] if problem.per_path_x0 else problem.x0
        cache["eigs"] = [(float(t), drift_eigenvalues(problem, float(t), x0)) for t in _probe_times(problem)]
    missing = [t for t, lam in cache["eigs"] if lam.size == 0]
    if missing and not cache.get("warned"):
        cache["warned"] = True
        import warnings

        at = ("the initial state" if len(missing) == len(cache["eigs"]) else
              f"the initial state at t = {', '.join(f'{t:.4g}' for t in missing[:4])}"
              f"{' and more' if len(missing) > 4 else ''}")
        warnings.warn(f"{problem.name}: the step's stability was not checked: the drift's Jacobian at {at} "
                      "could not be computed (the drift is not finite on either side of it, or "
                      "ARPACK failed). A dt past the explicit step's stability bound (2/|lambda| for a real "
                      "decaying mode) would give finite paths with no relation to the SDE; check the drift's "
                      "stiffness by hand", StabilityNotCheckedWarning, stacklevel=3)
    worst = None
    for t, lam in cache["eigs"]:
        found = _stiffest(lam) if lam.size else None
        if found is not None and (worst is None or found[0] < worst[1]):
            worst = (t, *found)
    if worst is None:
        return None
    t, bound, l = worst
    if dt <= bound * (1 + STABILITY_MARGIN):
        return None
    where = ("at the initial state" if t == float(problem.tspan[0]) else
             f"at time t = {t:.4g} (at the initial state; the drift's stiffness grows with time)")
    return _refusal(problem, dt, bound, l, where)


def state_instability(problem, dt: float, t: float, states: np.ndarray, offset: int = 0) -> str | None:
    """None, or why an explicit step of ``dt`` is unstable where the paths went: at ``(t, x)``, ``x``
    the state of median norm among the first :data:`TYPICAL_PATHS` paths of the ensemble (by their
    index among all the paths; finite ones), a typical path.

    Catches a stiffness that grows with the state, which no probe before the solve sees; a rare
    path out in a stiff region is not enough (nonlinear drifts such as :math:`-x^3` are stiff far
    out, and an explicit step that overshoots there need not grow). The paths are chosen by their
    index among all the paths, not among those of this call, so that an ensemble solved in chunks
    (``states`` the rows of paths ``offset, offset + 1, ...``) is judged as it is in one piece:
    the chunk that holds them checks them, the others check nothing."""
    states = np.asarray(states, dtype=float)
    first = states[: max(0, TYPICAL_PATHS - int(offset))]
    ok = np.flatnonzero(np.all(np.isfinite(first), axis=1))
    if ok.size == 0:
        return None
    norms = np.linalg.norm(first[ok], axis=1)
    i = int(ok[np.argsort(norms, kind="stable")[(ok.size - 1) // 2]])
    lam = drift_eigenvalues(problem, float(t), first[i])
    found = _stiffest(lam) if lam.size else None
    if found is None or dt <= found[0] * (1 + STABILITY_MARGIN):
        return None
    return _refusal(problem, dt, found[0], found[1],
                    f"at time t = {t:.4g} in the state of path {i + offset} (of median size among paths 0-"
                    f"{TYPICAL_PATHS - 1}), where the solve went: the drift is stiffer there than at the initial state")
