"""Strong order of Euler-Maruyama and Milstein on problems with exact solutions.

Each case: one call of ``convergence_study`` and the measured slope compared with the order
the solver states for that noise kind (``solver.strong_order_for``), within a tolerance built
from the bootstrap standard error (see ``conftest.assert_order``).
"""

import pytest

from conftest import assert_order
from sde_scales import EulerMaruyama, Milstein, convergence_study
from sde_scales.sde import testproblems as tp

CASES = [
    # (id, builder, solver, exact available)
    ("gbm-em", lambda: tp.geometric_brownian_motion(), EulerMaruyama()),
    ("gbm-milstein-df", lambda: tp.geometric_brownian_motion(), Milstein()),
    ("gbm-milstein-gdg", lambda: tp.geometric_brownian_motion(with_gdg=True), Milstein()),
    ("diag2d-em", lambda: tp.diagonal_gbm_2d(), EulerMaruyama()),
    ("diag2d-milstein-df", lambda: tp.diagonal_gbm_2d(), Milstein()),
    ("diag2d-milstein-gdg", lambda: tp.diagonal_gbm_2d(with_gdg=True), Milstein()),
    ("general-em", lambda: tp.commuting_linear_general(), EulerMaruyama()),
    ("general-milstein-df", lambda: tp.commuting_linear_general(), Milstein()),
    ("ou-em-additive", lambda: tp.ornstein_uhlenbeck(), EulerMaruyama()),
]


@pytest.mark.parametrize("case_id,build,solver", CASES, ids=[c[0] for c in CASES])
def test_strong_order(case_id, build, solver):
    ex = build()
    st = convergence_study(ex.problem, solver, levels=range(4, 10), n_paths=2000, seed=11, exact=ex.exact)
    expected = solver.strong_order_for(ex.problem.noise)
    assert_order(st.strong, expected, case_id)


def test_milstein_gdg_and_derivative_free_agree_to_first_order():
    """Both Milstein forms converge to the same solution at rate h: their difference is O(h)."""
    ex = tp.geometric_brownian_motion(with_gdg=True)
    a = convergence_study(ex.problem, Milstein(), range(4, 8), 1000, seed=2, exact=ex.exact)
    b = convergence_study(ex.problem, Milstein(derivative_free=True), range(4, 8), 1000, seed=2, exact=ex.exact)
    assert (a.strong_error != b.strong_error).any()  # they really are different schemes
    assert_order(b.strong, 1.0, "derivative-free")


def test_em_is_not_strong_order_one_on_multiplicative_noise():
    """The order check can fail: EM on GBM must be rejected as a strong-order-1 method."""
    ex = tp.geometric_brownian_motion()
    st = convergence_study(ex.problem, EulerMaruyama(), range(4, 10), 2000, seed=5, exact=ex.exact)
    from conftest import MODEL_TOL, Z

    assert abs(st.strong.order - 1.0) > Z * st.strong.se + MODEL_TOL


def test_stated_orders_are_data():
    assert EulerMaruyama().strong_order_for("general") == 0.5
    assert EulerMaruyama().strong_order_for("additive") == 1.0
    assert EulerMaruyama().weak_order_for("scalar") == 1.0
    assert Milstein().strong_order_for("diagonal") == 1.0
    assert Milstein().strong_order_for("general") == 1.0  # commutative noise; non-commuting is refused


def test_too_few_paths_give_an_order_without_an_interval():
    """Below MIN_PATHS the bootstrap is not trusted: the order is given, its standard error and
    interval are NaN, the table says why, and agrees_with is False even for the stated order
    (with 2 paths the percentile interval used to end at the estimate itself). From MIN_PATHS on,
    the interval is finite and holds the estimate."""
    import math

    from sde_scales.sde.convergence import MIN_PATHS

    ex = tp.geometric_brownian_motion()
    few = convergence_study(ex.problem, EulerMaruyama(), range(4, 8), 2, seed=1, exact=ex.exact)
    assert math.isfinite(few.strong.order) and math.isnan(few.strong.se)
    assert all(math.isnan(v) for v in few.strong.ci + few.weak.ci)
    assert not few.strong.agrees_with(few.strong.order, 0.0)
    assert f"no interval: 2 paths, fewer than {MIN_PATHS}" in few.table()
    enough = convergence_study(ex.problem, EulerMaruyama(), range(4, 8), MIN_PATHS, seed=1, exact=ex.exact)
    lo, hi = enough.strong.ci
    assert lo < enough.strong.order < hi and enough.strong.se > 0


def test_successive_ratios_and_slopes_of_a_planted_power_law():
    """``fit_order`` on errors that are exactly C h^p (every path alike): the successive log2
    ratios are p at every level and the slopes are p, for strong (per-path) and weak (signed
    mean) errors."""
    import numpy as np

    from sde_scales.sde.convergence import fit_order

    h = 2.0 ** -np.arange(3, 9)
    for p, signed, sign in ((0.5, False, 1.0), (1.0, True, -1.0), (1.5, False, 1.0)):
        per_path = np.repeat((sign * 0.3 * h**p)[:, None], 40, axis=1)
        per_path = per_path * (1 + 1e-9 * np.arange(40))[None, :]  # a spread, so the bootstrap has one
        est = fit_order(h, per_path, signed=signed, n_resamples=100)
        np.testing.assert_allclose(est.ratios, p, rtol=1e-6)
        assert est.order == pytest.approx(p, rel=1e-6)
