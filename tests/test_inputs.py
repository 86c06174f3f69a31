"""Every bad input gets an error that names the value and the fix."""

import numba
import numpy as np
import pytest

from sde_scales import EulerMaruyama, InvalidArgumentError, InvalidProblemError, Milstein, SaveAt, SDEProblem, solve
from sde_scales.sde import BlockStreams, BrownianPath, Increments, testproblems as tp


@numba.njit
def f1(t, x, p, out):
    out[0] = -x[0]


@numba.njit
def g1(t, x, p, out):
    out[0] = 1.0


@numba.njit
def g_writes_two(t, x, p, out):
    out[0] = 1.0
    out[1] = 1.0


@numba.njit
def g_matrix_state(t, x, p, out):
    out[0, 0] = x[0]


@numba.njit
def g_forgets(t, x, p, out):
    pass


def test_unknown_noise_kind():
    with pytest.raises(InvalidProblemError, match="noise='diag'.*'diagonal'"):
        SDEProblem(f1, g1, x0=[0.0], tspan=(0, 1), noise="diag")


def test_general_noise_needs_m():
    with pytest.raises(InvalidProblemError, match="needs m"):
        SDEProblem(f1, g_matrix_state, x0=[0.0], tspan=(0, 1), noise="general")


def test_m_contradicting_noise_kind():
    with pytest.raises(InvalidProblemError, match="m=3 contradicts"):
        SDEProblem(f1, g1, x0=[0.0], tspan=(0, 1), noise="diagonal", m=3)


def test_diffusion_writing_outside_its_shape():
    with pytest.raises(InvalidProblemError, match=r"indexes outside its output.*out has shape \(1,\)"):
        SDEProblem(f1, g_writes_two, x0=[0.0], tspan=(0, 1), noise="diagonal")


def test_diffusion_leaving_entries_unset():
    with pytest.raises(InvalidProblemError, match="left out"):
        SDEProblem(f1, g_forgets, x0=[0.0], tspan=(0, 1), noise="diagonal")


def test_additive_noise_that_depends_on_state():
    with pytest.raises(InvalidProblemError, match="changes with x.*'general'"):
        SDEProblem(f1, g_matrix_state, x0=[0.0], tspan=(0, 1), noise="additive", m=1)


# [True] was read as 1.0; a complex x0 ended in a bare TypeError
@pytest.mark.parametrize("x0", [[np.nan], [1.0, np.inf], np.zeros((2, 0)), [True], [1 + 1j], [0.5, False]])
def test_bad_x0(x0):
    with pytest.raises(InvalidProblemError, match="x0"):
        SDEProblem(f1, g1, x0=x0, tspan=(0, 1), noise="scalar")


@pytest.mark.parametrize("tspan", [(1, 0), (0, np.inf), (0, 0), ("a", 1), (False, True)])
def test_bad_tspan(tspan):
    with pytest.raises(InvalidProblemError, match="tspan"):
        SDEProblem(f1, g1, x0=[0.0], tspan=tspan, noise="scalar")


def test_nan_params():
    with pytest.raises(InvalidProblemError, match="params"):
        SDEProblem(f1, g1, x0=[0.0], tspan=(0, 1), noise="scalar", params=[1.0, np.nan])
    with pytest.raises(InvalidProblemError, match="params holds complex values"):
        SDEProblem(f1, g1, x0=[0.0], tspan=(0, 1), noise="scalar", params=[1.0 + 0j, 2.0])


def test_plain_python_function_is_jitted():
    def drift(t, x, p, out):
        out[0] = -x[0]

    prob = SDEProblem(drift, g1, x0=[1.0], tspan=(0, 1), noise="scalar")
    assert solve(prob, EulerMaruyama(), 0.5, n_paths=2, noise=0).x.shape == (1, 2, 1)


def test_non_callable_drift():
    with pytest.raises(InvalidProblemError, match="not callable"):
        SDEProblem(3.0, g1, x0=[0.0], tspan=(0, 1), noise="scalar")


@numba.njit
def _decay(t, x, p, out):
    out[0] = -x[0]
    out[1] = -x[1]


@numba.njit
def _cross_diagonal(t, x, p, out):  # g_1 depends on x_0: not diagonal noise in Milstein's sense
    out[0] = 0.5 * x[0]
    out[1] = 0.3 * x[0] + 0.2 * x[1]


@numba.njit
def _late_cross(t, x, p, out):  # g_1 = x_1 + 0.1 (x_0 - 1)^2: depends on x_0 except at x_0 = 1
    out[0] = 0.5 * x[0]
    out[1] = x[1] + 0.1 * (x[0] - 1.0) ** 2


@numba.njit
def _non_commuting(t, x, p, out):
    out[0, 0] = x[1]
    out[0, 1] = 0.0
    out[1, 0] = 0.0
    out[1, 1] = x[0]


def test_milstein_refuses_a_diagonal_label_on_coupled_noise():
    prob = SDEProblem(_decay, _cross_diagonal, x0=[1.0, 1.0], tspan=(0.0, 1.0), noise="diagonal")
    with pytest.raises(InvalidProblemError, match=r"g_1 depends on x_0.*noise='general'.*EulerMaruyama"):
        solve(prob, Milstein(), 0.1, n_paths=2, noise=0)
    solve(prob, EulerMaruyama(), 0.1, n_paths=2, noise=0)  # Euler-Maruyama needs no such condition


def test_precondition_probed_away_from_x0():
    """dg_1/dx_0 = 0.2 (x_0 - 1) vanishes at x0 = (1, 1); the trial run and random states find it."""
    prob = SDEProblem(_decay, _late_cross, x0=[1.0, 1.0], tspan=(0.0, 1.0), noise="diagonal")
    with pytest.raises(InvalidProblemError, match="g_1 depends on x_0"):
        solve(prob, Milstein(), 0.1, n_paths=2, noise=0)


def test_milstein_handles_commuting_general_noise_and_refuses_non_commuting():
    ex = tp.commuting_linear_general()
    assert np.isfinite(solve(ex.problem, Milstein(), 0.1, n_paths=2, noise=0).x).all()
    prob = SDEProblem(_decay, _non_commuting, x0=[1.0, 1.0], tspan=(0.0, 1.0), noise="general", m=2)
    with pytest.raises(InvalidProblemError, match="does not commute.*Levy areas.*EulerMaruyama"):
        solve(prob, Milstein(), 0.1, n_paths=2, noise=0)


@pytest.mark.parametrize("dt,msg", [(0.3, "does not divide"), (-0.1, "positive"), (np.nan, "positive"), (0.0, "positive")])
def test_bad_dt(dt, msg):
    ex = tp.ornstein_uhlenbeck()
    with pytest.raises(InvalidArgumentError, match=msg):
        solve(ex.problem, EulerMaruyama(), dt, n_paths=2, noise=0)


def test_dt_suggestion_is_usable():
    ex = tp.ornstein_uhlenbeck()
    with pytest.raises(InvalidArgumentError, match=r"use dt=0\.25 \(4 steps\)"):
        solve(ex.problem, EulerMaruyama(), 0.3, n_paths=2, noise=0)


def test_dt_longer_than_the_span_suggests_one_usable_dt():
    ex = tp.ornstein_uhlenbeck()  # tspan (0, 1)
    with pytest.raises(InvalidArgumentError, match=r"longer than the time span.*dt=1\.0 is one step") as err:
        solve(ex.problem, EulerMaruyama(), 2.5, n_paths=2, noise=0)
    assert str(err.value).count("dt=") == 2  # the bad value and one suggestion, not the same one twice


def test_noise_is_one_object_and_anything_else_is_refused():
    ex = tp.ornstein_uhlenbeck()
    dW = np.zeros((10, 2, 1))
    sol = solve(ex.problem, EulerMaruyama(), 0.1, noise=dW)
    assert sol.seed is None and isinstance(sol.noise, Increments) and sol.x.shape == (1, 2, 1)
    assert isinstance(solve(ex.problem, EulerMaruyama(), 0.1, 2, noise=3).noise, BlockStreams)
    with pytest.raises(InvalidArgumentError, match="noise is missing; pass noise=<int seed>"):
        solve(ex.problem, EulerMaruyama(), 0.1, n_paths=2)
    with pytest.raises(InvalidArgumentError, match="noise='zero'"):
        solve(ex.problem, EulerMaruyama(), 0.1, n_paths=2, noise="zero")
    with pytest.raises(InvalidArgumentError, match="n_paths=3 but noise holds 2 paths"):
        solve(ex.problem, EulerMaruyama(), 0.1, n_paths=3, noise=dW)
    with pytest.raises(InvalidArgumentError, match="m=2 motions but .* needs m=1"):
        solve(ex.problem, EulerMaruyama(), 0.1, n_paths=2, noise=BrownianPath(0, 0.0, 1.0, 4, m=2))
    with pytest.raises(InvalidArgumentError, match=r"dt=0\.1 is not \(t1 - t0\) / 2\*\*k"):
        solve(ex.problem, EulerMaruyama(), 0.1, n_paths=2, noise=BrownianPath(0, 0.0, 1.0, 4))


def test_a_brownian_path_over_a_short_span_is_refused_for_another_span():
    """Spans compared with np.isclose's absolute 1e-8: a path over [0, 1e-9] gave its increments
    (of variance 1e-9 / 2**k) to a problem over [0, 2e-9], whose steps are twice as long."""
    bp = BrownianPath(0, 0.0, 1e-9, 2)
    with pytest.raises(InvalidArgumentError, match="covers"):
        bp.increments((0.0, 2e-9), 5e-10, 2)
    same = bp.increments((0.0, 1e-9 * (1 + 1e-13)), 2.5e-10, 2)  # rounding in the last digits: the same span
    np.testing.assert_array_equal(same, bp.increments((0.0, 1e-9), 2.5e-10, 2))


@pytest.mark.parametrize("seed", [None, -1, 1.5, True])
def test_bad_seed(seed):
    ex = tp.ornstein_uhlenbeck()
    with pytest.raises(InvalidArgumentError, match="seed"):
        solve(ex.problem, EulerMaruyama(), 0.1, n_paths=2, noise=seed)


@pytest.mark.parametrize("n", [0, -3, 2.5, None])
def test_bad_n_paths(n):
    ex = tp.ornstein_uhlenbeck()
    with pytest.raises(InvalidArgumentError, match="n_paths"):
        solve(ex.problem, EulerMaruyama(), 0.1, n_paths=n, noise=0)


def test_n_paths_disagreeing_with_per_path_x0():
    ex = tp.ornstein_uhlenbeck()
    with pytest.raises(InvalidArgumentError, match="n_paths=5 but x0 holds 3"):
        solve(ex.problem.with_x0(np.zeros((3, 1))), EulerMaruyama(), 0.1, n_paths=5, noise=0)


def test_save_at_off_grid_and_unsorted():
    ex = tp.ornstein_uhlenbeck()
    with pytest.raises(InvalidArgumentError, match="not on the step grid"):
        solve(ex.problem, EulerMaruyama(), 0.1, n_paths=2, noise=0, save_at=SaveAt(t=[0.55]))
    with pytest.raises(InvalidArgumentError, match="increase strictly"):
        SaveAt(t=[0.5, 0.2])
    with pytest.raises(InvalidArgumentError, match=r"SaveAt\(t\) holds boolean values"):
        SaveAt(t=[True])  # read as t = 1.0
    with pytest.raises(InvalidArgumentError, match="not on the step grid"):
        solve(ex.problem, EulerMaruyama(), 0.1, n_paths=2, noise=0, save_at=SaveAt(t=[2.0]))


def test_dW_of_wrong_shape_or_not_finite():
    ex = tp.ornstein_uhlenbeck()
    with pytest.raises(InvalidArgumentError, match=r"expected \(n_steps, n_paths, m\) = \(10, n_paths, 1\)"):
        solve(ex.problem, EulerMaruyama(), 0.1, noise=np.zeros((9, 4, 1)))
    bad = np.zeros((10, 4, 1))
    bad[2, 1, 0] = np.nan
    with pytest.raises(InvalidArgumentError, match=r"dW\[2, 1, 0\]"):
        solve(ex.problem, EulerMaruyama(), 0.1, noise=bad)


def test_path_offset_must_align_with_blocks():
    ex = tp.ornstein_uhlenbeck()
    with pytest.raises(InvalidArgumentError, match="multiple of block_size"):
        solve(ex.problem, EulerMaruyama(), 0.1, n_paths=4, noise=BlockStreams(0, block_size=256, path_offset=100))


def test_block_size_must_be_multiple_of_group():
    ex = tp.ornstein_uhlenbeck()
    with pytest.raises(InvalidArgumentError, match="multiple of the group size 8"):
        solve(ex.problem, EulerMaruyama(), 0.1, n_paths=4, noise=BlockStreams(0, block_size=12))


def test_on_blowup_value():
    ex = tp.ornstein_uhlenbeck()
    with pytest.raises(InvalidArgumentError, match="on_blowup"):
        solve(ex.problem, EulerMaruyama(), 0.1, n_paths=4, noise=0, on_blowup="ignore")


def test_convergence_study_levels():
    from sde_scales import convergence_study

    ex = tp.ornstein_uhlenbeck()
    with pytest.raises(InvalidArgumentError, match="levels"):
        convergence_study(ex.problem, EulerMaruyama(), [3, 2, 4], 10, seed=0)


def test_brownian_path_levels():
    with pytest.raises(InvalidArgumentError, match="levels"):
        BrownianPath(0, 0.0, 1.0, 40)
    # a time span given as one tuple: numpy's "truth value of an array is ambiguous"
    with pytest.raises(InvalidArgumentError, match=r"t0=\(0.0, 1.0\), t1=10; give each as one number"):
        BrownianPath(0, (0.0, 1.0), 10, 4)
    with pytest.raises(InvalidArgumentError, match="t1 holds boolean values"):
        BrownianPath(0, 0.0, True, 4)
    assert BrownianPath(0, 0, 1, 4).dt(2) == 0.25  # whole numbers are times too


def test_fractional_counts_are_refused_not_truncated():
    """Each of these was truncated to an integer (a level 2.5 studied dt = T/4, n_bins=2.5 made
    two bins) or ended in a TypeError."""
    from sde_scales import convergence_study
    from sde_scales.analysis import macro_sde

    ex = tp.geometric_brownian_motion()
    with pytest.raises(InvalidArgumentError, match=r"levels \[2.5\]"):
        convergence_study(ex.problem, EulerMaruyama(), [2.5, 3, 4], 10, seed=0, exact=ex.exact)
    with pytest.raises(InvalidArgumentError, match="n_paths=10.5"):
        convergence_study(ex.problem, EulerMaruyama(), [2, 3, 4], 10.5, seed=0, exact=ex.exact)
    with pytest.raises(InvalidArgumentError, match="levels=3.5"):
        BrownianPath(0, 0.0, 1.0, 3.5)
    with pytest.raises(InvalidArgumentError, match="m=1.5"):
        BrownianPath(0, 0.0, 1.0, 3, m=1.5)
    with pytest.raises(InvalidArgumentError, match="n_paths=2.5"):
        next(BrownianPath(0, 0.0, 1.0, 3).chunks(2.5))
    t = np.arange(50.0)
    X = np.random.default_rng(0).normal(size=(8, 50)).cumsum(axis=1)
    with pytest.raises(InvalidArgumentError, match="n_bins=2.5"):
        macro_sde.calibrate(t, X, n_bins=2.5)


_EXPERIMENTS = sorted((__import__("pathlib").Path(__file__).parents[1] / "experiments").glob("*.py"))


@pytest.mark.parametrize("script", _EXPERIMENTS, ids=lambda p: p.name)
def test_experiments_refuse_an_output_folder_that_is_a_file(tmp_path, script):
    """``--out`` naming a file (or a folder under one) ended each experiment in a NotADirectoryError
    traceback, after its training or fits had run; now argparse refuses it first (exit 2)."""
    import subprocess
    import sys

    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        r = subprocess.run([sys.executable, str(script), "--out", str(out)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2 and "argument --out" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_an_output_folder_that_takes_no_file_is_refused_by_the_experiments_type(tmp_path):
    """``--out /proc/x`` passed argparse and ended the experiment, after its work, in mkstemp's
    traceback; the type now tries a file in the nearest existing folder first."""
    import argparse

    from sde_scales.cli import output_folder

    with pytest.raises(argparse.ArgumentTypeError, match="/proc/sde-scales: cannot be written"):
        output_folder("/proc/sde-scales")
    assert output_folder(str(tmp_path / "new")) == str(tmp_path / "new")
    assert list(tmp_path.iterdir()) == []  # the probe left nothing and created no folder
