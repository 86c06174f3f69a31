"""Weak order (coupled estimator, see ``sde_scales.sde.convergence``).

The default run uses 4,000 paths; ``-m slow`` runs the same checks with 40,000 paths and one
more level. Each check first asserts that its Monte-Carlo tolerance can tell order 1 from 1/2.
"""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from conftest import assert_order
from sde_scales import EulerMaruyama, Milstein, convergence_study
from sde_scales.sde import testproblems as tp

# (id, builder, solver, first level, paths). The general-noise system has a weak bias about
# ten times smaller per unit of strong error, so it starts one level coarser with more paths:
# at its finest default level (2^-6) the bias, about 1.5e-3, is still 3 standard errors out.
CASES = [
    ("gbm-em", lambda: tp.geometric_brownian_motion(mu=1.0, sigma=0.3), EulerMaruyama(), 3, 4000),
    ("gbm-milstein", lambda: tp.geometric_brownian_motion(mu=1.0, sigma=0.3), Milstein(), 3, 4000),
    ("diag2d-em", lambda: tp.diagonal_gbm_2d(mu=(1.0, -1.0), sigma=(0.3, 0.4)), EulerMaruyama(), 3, 4000),
    ("general-em", lambda: tp.commuting_linear_general(), EulerMaruyama(), 2, 16000),
    ("ou-em", lambda: tp.ornstein_uhlenbeck(), EulerMaruyama(), 3, 4000),
]
IDS = [c[0] for c in CASES]


def _run(build, solver, n_paths, levels):
    ex = build()
    st = convergence_study(ex.problem, solver, levels, n_paths, seed=21, exact=ex.exact)
    return ex, st


@pytest.mark.parametrize("case_id,build,solver,k0,n", CASES, ids=IDS)
def test_weak_order(case_id, build, solver, k0, n):
    ex, st = _run(build, solver, n, range(k0, k0 + 5))
    assert_order(st.weak, solver.weak_order_for(ex.problem.noise), case_id)


@pytest.mark.parametrize("build", [lambda: tp.geometric_brownian_motion(), lambda: tp.diagonal_gbm_2d(),
                                   lambda: tp.commuting_linear_general()], ids=["gbm", "diag2d", "general"])
def test_closed_form_moments_agree_with_the_exact_solution_sampled(build):
    """The closed-form E[X_T] and diag E[X_T X_T^T] that convergence studies compare with, against
    the problem's exact solution at 200,000 draws of W_T ~ N(0, T I): within 5 Monte-Carlo standard
    errors (a chance miss about once in 3 million per moment)."""
    ex = build()
    T = float(ex.problem.tspan[1])
    rng = np.random.default_rng(7)
    W = rng.standard_normal((200_000, ex.problem.m)) * np.sqrt(T)
    x = ex.exact(ex.problem.x0, W, T).reshape(W.shape[0], -1)
    for sample, want in ((x, ex.mean(T)), (x * x, ex.second_moment(T))):
        se = sample.std(axis=0, ddof=1) / np.sqrt(sample.shape[0])
        assert np.all(np.abs(sample.mean(axis=0) - want) < 5 * se), (sample.mean(axis=0), want, se)


def test_ornstein_uhlenbeck_moments_solve_their_moment_equations():
    """The OU problem has no strong solution from W_T alone, so its closed-form moments are checked
    against the moment equations integrated numerically: dm/dt = theta (mu - m),
    dS/dt = 2 theta mu m - 2 theta S + sigma^2 (S = E[X^2], from Ito's formula), integrated at rtol
    1e-10 and compared at 1e-7 (the integrator's accumulated error, with room to spare)."""
    theta, mu, sigma, x0 = 2.0, 0.5, 0.8, 1.5
    ex = tp.ornstein_uhlenbeck(theta=theta, mu=mu, sigma=sigma, x0=x0)
    rhs = lambda t, y: [theta * (mu - y[0]), 2 * theta * mu * y[0] - 2 * theta * y[1] + sigma**2]  # noqa: E731
    for T in (0.1, 1.0, 3.0):
        m, S = solve_ivp(rhs, (0.0, T), [x0, x0**2], rtol=1e-10, atol=1e-12).y[:, -1]
        np.testing.assert_allclose([ex.mean(T)[0], ex.second_moment(T)[0]], [m, S], rtol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("case_id,build,solver,k0,n", CASES, ids=IDS)
def test_weak_order_many_paths(case_id, build, solver, k0, n):
    ex, st = _run(build, solver, 10 * n, range(k0, k0 + 6))
    assert_order(st.weak, solver.weak_order_for(ex.problem.noise), case_id)


def test_weak_error_against_closed_form_mean():
    """Uncoupled: the Monte-Carlo mean of EM on OU against the closed-form mean. EM's mean is
    exactly mu + (x0 - mu)(1 - theta h)^N, so the bias is known and the estimate must sit within
    4 standard errors of it at every level."""
    ex = tp.ornstein_uhlenbeck()
    theta, mu, _ = ex.problem.params
    x0 = ex.problem.x0[0]
    st = convergence_study(ex.problem, EulerMaruyama(), range(2, 6), 20000, seed=4,
                           weak_target=float(ex.mean(1.0)[0]))
    for h, e, se in zip(st.dts, st.weak_error, st.weak_se):
        n = round(1.0 / h)
        bias = abs(mu + (x0 - mu) * (1 - theta * h) ** n - ex.mean(1.0)[0])
        assert abs(e - bias) <= 4 * se, (h, e, bias, se)
