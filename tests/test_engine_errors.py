"""The engine refuses what it cannot solve correctly, with the library's errors naming the right
argument: checks beyond (t0, x0), bounds checks on demand, numba's typing errors and exceptions in
user code."""

import numba
import pytest

from sde_scales import EulerMaruyama, InvalidProblemError, SDEProblem, solve


@numba.njit
def _zero(t, x, p, out):
    out[0] = 0.0


@numba.njit
def _unit(t, x, p, out):
    out[0] = 1.0


@numba.njit
def _late_read(t, x, p, out):  # reads x[1] (past d = 1) once t >= 0.5
    out[0] = -x[int(2.0 * t)]


@numba.njit
def _reads_p(t, x, p, out):
    out[0] = -p[0] * x[0] - p[3]


@numba.njit
def _writes_past_out(t, x, p, out):
    out[0] = 1.0
    out[1] = 1.0


def test_out_of_range_read_after_t0_is_caught_before_compiling():
    """x0 at t0 reads x[0] only; the check at later times finds the read of x[1] and names x."""
    with pytest.raises(InvalidProblemError, match=r"reads the state x outside its 1 entries at t = "):
        SDEProblem(_late_read, _unit, x0=[1.0], tspan=(0.0, 1.0), noise="diagonal")


def test_index_errors_blame_the_right_argument():
    with pytest.raises(InvalidProblemError, match=r"reads the parameters p outside their 1 entries"):
        SDEProblem(_reads_p, _unit, x0=[1.0], tspan=(0.0, 1.0), noise="diagonal", params=[2.0])
    with pytest.raises(InvalidProblemError, match=r"indexes outside its output.*out\[0\.\.0\]"):
        SDEProblem(_zero, _writes_past_out, x0=[1.0], tspan=(0.0, 1.0), noise="diagonal")


@numba.njit
def _row_broadcast(t, x, p, out):  # out[i] = value fills the whole row of the (2, 2) matrix
    out[0] = 0.3 * x[0]
    out[1] = 0.2 * x[1]


@numba.njit
def _decay2(t, x, p, out):
    out[0] = -x[0]
    out[1] = -x[1]


def test_general_diffusion_written_as_a_vector_is_refused():
    with pytest.raises(InvalidProblemError, match=r"broadcasts over row i.*noise='scalar'"):
        SDEProblem(_decay2, _row_broadcast, x0=[1.0, 1.0], tspan=(0.0, 1.0), noise="general", m=2)


def _plain_python_helper(v):
    return -v


def _untypable(t, x, p, out):  # fine in Python, not in numba (it calls a function numba cannot see into)
    out[0] = _plain_python_helper(x[0])


def test_numba_typing_error_becomes_the_library_error_naming_the_function():
    prob = SDEProblem(_untypable, _unit, x0=[1.0], tspan=(0.0, 1.0), noise="diagonal", name="bad")
    with pytest.raises(InvalidProblemError, match=r"numba cannot compile the drift of problem 'bad'") as err:
        solve(prob, EulerMaruyama(), 0.1, n_paths=2, noise=0)
    assert err.value.__cause__ is not None  # numba's own error is chained


@numba.njit
def _push(t, x, p, out):
    if x[0] > 5.0:
        raise ValueError("state left the model's range")
    out[0] = 20.0


def test_exception_in_user_code_is_the_library_error_with_the_original_chained():
    """The drift raises once x passes 5, which the probes (x near x0 = 0) never reach."""
    prob = SDEProblem(_push, _zero, x0=[0.0], tspan=(0.0, 1.0), noise="diagonal", name="push")
    with pytest.raises(InvalidProblemError, match=r"problem 'push' raised") as err:
        solve(prob, EulerMaruyama(), 0.01, n_paths=4, noise=0)
    assert "left the model's range" in str(err.value) or err.value.__cause__ is not None


@numba.njit
def _far_read(t, x, p, out):  # reads x[1] (past d = 1) only where |x| > 3: never at the probes
    out[0] = 1.0 + (x[1] if x[0] > 3.0 else 0.0)


def test_debug_turns_bounds_checks_on():
    prob = SDEProblem(_far_read, _zero, x0=[0.0], tspan=(0.0, 5.0), noise="diagonal", name="far")
    with pytest.raises(InvalidProblemError, match=r"IndexError|index"):
        solve(prob, EulerMaruyama(), 0.01, n_paths=2, noise=0, debug=True)
