"""solve(): moments, saving, supplied increments, reproducibility, blow-up."""

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from sde_scales import BlowUpError, EulerMaruyama, InvalidArgumentError, Milstein, SaveAt, SDEProblem, solve
from sde_scales.sde import BlockStreams, BrownianPath, Increments, testproblems as tp


def test_ou_moments_match_closed_form():
    """EM on OU at dt = 1/1000: mean and variance against the closed form. Tolerance: 4 Monte-Carlo
    standard errors plus EM's own bias, which is O(dt) with a constant below 1 here (|bias| of the
    mean is (x0 - mu) |e^{-theta} - (1 - theta dt)^N| < 4e-4; of the variance < 1e-3)."""
    ex = tp.ornstein_uhlenbeck()
    n = 100_000
    sol = solve(ex.problem, EulerMaruyama(), 1e-3, n_paths=n, noise=7, save_at=SaveAt(t=[0.25, 0.5, 1.0]))
    theta, mu, sigma = ex.problem.params
    x0 = ex.problem.x0[0]
    for i, t in enumerate(sol.t):
        x = sol.x[i, :, 0]
        mean = mu + (x0 - mu) * np.exp(-theta * t)
        var = sigma**2 / (2 * theta) * (1 - np.exp(-2 * theta * t))
        se_mean = np.sqrt(var / n)
        se_var = var * np.sqrt(2 / (n - 1))
        assert abs(x.mean() - mean) <= 4 * se_mean + 4e-4
        assert abs(x.var(ddof=1) - var) <= 4 * se_var + 1e-3


def test_em_matches_a_plain_numpy_loop_on_the_same_increments():
    """An independent implementation: a numpy loop of X += f dt + g dW on the same dW."""
    ex = tp.commuting_linear_general()
    dt, n = 1 / 64, 50
    dW = next(BrownianPath(3, 0.0, 1.0, 6, m=2).chunks(n))[1]
    sol = solve(ex.problem, EulerMaruyama(), dt, noise=dW, save_at=SaveAt(every=16))
    a0, a1, b10, b11, b20, b21 = ex.problem.params
    A = np.array([[a0, a1], [a1, a0]])
    B1 = np.array([[b10, b11], [b11, b10]])
    B2 = np.array([[b20, b21], [b21, b20]])
    x = np.tile(ex.problem.x0, (n, 1))
    saved = [x.copy()]
    for k in range(64):
        x = x + x @ A.T * dt + (x @ B1.T) * dW[k, :, 0:1] + (x @ B2.T) * dW[k, :, 1:2]
        if (k + 1) % 16 == 0:
            saved.append(x.copy())
    np.testing.assert_allclose(sol.x, np.array(saved), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sol.t, np.arange(0, 65, 16) / 64)


def test_milstein_matches_formula_on_scalar_gbm():
    ex = tp.geometric_brownian_motion(with_gdg=True)
    mu, s = ex.problem.params
    dW = next(BrownianPath(1, 0.0, 1.0, 5).chunks(20))[1]
    sol = solve(ex.problem, Milstein(), 1 / 32, noise=dW)
    x = np.ones(20)
    for k in range(32):
        w = dW[k, :, 0]
        x = x + mu * x / 32 + s * x * w + 0.5 * s * s * x * (w * w - 1 / 32)
    np.testing.assert_allclose(sol.x[-1, :, 0], x, rtol=1e-12)


def test_default_saves_only_final_state():
    ex = tp.ornstein_uhlenbeck()
    sol = solve(ex.problem, EulerMaruyama(), 1e-3, n_paths=10, noise=0)
    assert sol.x.shape == (1, 10, 1)
    assert sol.t.tolist() == [1.0]


def test_save_at_includes_initial_state():
    ex = tp.ornstein_uhlenbeck()
    sol = solve(ex.problem, EulerMaruyama(), 0.1, n_paths=3, noise=0, save_at=SaveAt(t=[0.0, 0.5]))
    np.testing.assert_array_equal(sol.x[0, :, 0], ex.problem.x0[0])


def test_per_path_x0():
    ex = tp.ornstein_uhlenbeck()
    x0 = np.linspace(-1, 1, 7)[:, None]
    sol = solve(ex.problem.with_x0(x0), EulerMaruyama(), 0.5, noise=0, save_at=SaveAt(t0=True))
    np.testing.assert_array_equal(sol.x[0], x0)
    assert sol.x.shape == (2, 7, 1)


def test_same_seed_same_numbers_and_other_seed_differs():
    ex = tp.diagonal_gbm_2d()
    a = solve(ex.problem, EulerMaruyama(), 0.01, n_paths=1000, noise=3)
    b = solve(ex.problem, EulerMaruyama(), 0.01, n_paths=1000, noise=3)
    c = solve(ex.problem, EulerMaruyama(), 0.01, n_paths=1000, noise=4)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)


def test_brownian_path_as_noise_is_its_summed_increments_at_every_dyadic_dt():
    """One Brownian path drives solves at dt = T/4 and T/16: each equals the solve on the fine
    increments summed by hand, and the path's W(T) is the same at both."""
    ex = tp.geometric_brownian_motion()
    T = ex.problem.tspan[1] - ex.problem.tspan[0]
    bp = BrownianPath(5, *ex.problem.tspan, levels=6, chunk=16)
    fine = np.concatenate([f for _, f in bp.chunks(40)], axis=1)
    for k in (2, 4):
        by_hand = fine.reshape(2**k, 2 ** (6 - k), 40, 1).sum(axis=1)
        np.testing.assert_allclose(by_hand.sum(axis=0), fine.sum(axis=0), rtol=1e-12, atol=1e-12)
        a = solve(ex.problem, Milstein(), T / 2**k, 40, noise=bp)
        b = solve(ex.problem, Milstein(), T / 2**k, noise=Increments(by_hand))
        np.testing.assert_array_equal(a.x, b.x)


def test_split_ensemble_gives_the_same_paths():
    """Paths depend on (seed, global index) only: one call of 1,000 paths equals calls over
    paths 0..512 and 512..1000 (path_offset), and a 10-path run equals the first 10 paths."""
    ex = tp.geometric_brownian_motion()
    full = solve(ex.problem, Milstein(), 0.01, n_paths=1000, noise=BlockStreams(9, block_size=256))
    first = solve(ex.problem, Milstein(), 0.01, n_paths=512, noise=BlockStreams(9, block_size=256))
    second = solve(ex.problem, Milstein(), 0.01, n_paths=488, noise=BlockStreams(9, block_size=256, path_offset=512))
    few = solve(ex.problem, Milstein(), 0.01, n_paths=10, noise=BlockStreams(9, block_size=256))
    np.testing.assert_array_equal(full.x[:, :512], first.x)
    np.testing.assert_array_equal(full.x[:, 512:], second.x)
    np.testing.assert_array_equal(full.x[:, :10], few.x)


def test_thread_count_does_not_change_results_in_process():
    ex = tp.commuting_linear_general()
    before = numba.get_num_threads()
    try:
        out = []
        for k in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(k)
            out.append(solve(ex.problem, EulerMaruyama(), 0.01, n_paths=3000, noise=1).x)
    finally:
        numba.set_num_threads(before)
    for x in out[1:]:
        np.testing.assert_array_equal(out[0], x)


SCRIPT = textwrap.dedent(
    """
    import hashlib, numba, numpy as np
    from sde_scales import solve, EulerMaruyama
    from sde_scales.sde import testproblems as tp
    ex = tp.geometric_brownian_motion()
    x = solve(ex.problem, EulerMaruyama(), 0.01, n_paths=5000, noise=2).x
    print(numba.get_num_threads(), hashlib.sha256(x.tobytes()).hexdigest())
    """
)


def test_reproducible_across_numba_num_threads():
    """NUMBA_NUM_THREADS=1 and =2 in fresh processes give bit-identical results."""
    digests = {}
    for n in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=n)
        res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
        threads, digest = res.stdout.split()
        assert threads == n
        digests[n] = digest
    assert digests["1"] == digests["2"]


# ----------------------------------------------------------------------------- blow-up
@numba.njit
def _explode_drift(t, x, p, out):
    out[0] = x[0] * x[0] * x[0]


@numba.njit
def _small_noise(t, x, p, out):
    out[0] = p[0]


def _exploding(x0):
    return SDEProblem(_explode_drift, _small_noise, x0=x0, tspan=(0.0, 1.0), noise="diagonal",
                      params=[0.01], name="cubic")


def test_blowup_raises_with_path_step_and_time():
    x0 = np.full((5, 1), 0.1)
    x0[3] = 3.0  # dx/dt = x^3 from 3 explodes at t = 1/18; EM at dt = 0.01 overflows soon after
    with pytest.raises(BlowUpError) as err:
        solve(_exploding(x0), EulerMaruyama(), 0.01, noise=0)
    e = err.value
    assert e.path == 3 and e.n_diverged == 1
    assert 1 <= e.step <= 20 and e.time == pytest.approx(e.step * 0.01)
    assert "path 3" in str(e) and f"step {e.step}" in str(e) and "on_blowup='mask'" in str(e)


@numba.njit
def _sqrt_drift(t, x, p, out):
    out[0] = np.sqrt(x[0])  # NaN once the path goes below 0: no overflow, no threshold passed


@numba.njit
def _unit_noise(t, x, p, out):
    out[0] = 1.0


def test_a_state_that_becomes_nan_is_a_blowup_not_a_finite_result():
    """A drift that is NaN below 0 (the square root of a negative number) turns a path NaN without
    passing the threshold in size: the loop's test must read NaN as a blow-up, else the solve
    returns NaN states as a finite result. Every path that crosses 0 is named with its step,
    and the masked solve keeps the others."""
    x0 = np.full((16, 1), 0.5)
    prob = SDEProblem(_sqrt_drift, _unit_noise, x0=x0, tspan=(0.0, 1.0), noise="diagonal", name="sqrt")
    with pytest.raises(BlowUpError, match="became NaN/inf") as err:
        solve(prob, EulerMaruyama(), 0.01, noise=3)
    sol = solve(prob, EulerMaruyama(), 0.01, noise=3, on_blowup="mask", save_at=SaveAt(every=1))
    assert err.value.n_diverged == sol.n_diverged >= 1
    assert np.isnan(sol.x[-1, sol.diverged]).all() and np.isfinite(sol.x[-1, sol.valid]).all()
    # each blow-up step is the first step whose state is NaN
    for p in np.flatnonzero(sol.diverged):
        k = int(sol.blowup_step[p])
        assert np.isfinite(sol.x[k - 1, p]).all() and np.isnan(sol.x[k, p]).all()


def test_a_step_that_does_not_divide_the_time_span_is_refused_not_rounded():
    """dt = 0.3 on [0, 1] is 3.33 steps: rounding to 3 steps would end the solve at t = 0.9 (or
    silently use dt = 1/3), a different problem; the error names both step sizes that divide the span."""
    prob = SDEProblem(_sqrt_drift, _unit_noise, x0=np.array([0.5]), tspan=(0.0, 1.0), noise="diagonal")
    with pytest.raises(InvalidArgumentError, match=r"dt=0.3 does not divide the time span .* use dt=0.25 \(4 steps\) "
                                                    r"or dt=0.333"):
        solve(prob, EulerMaruyama(), 0.3, n_paths=2, noise=0)


def test_blowup_mask_keeps_finite_paths_and_their_numbers():
    x0 = np.full((5, 1), 0.1)
    x0[3] = 3.0
    sol = solve(_exploding(x0), EulerMaruyama(), 0.01, noise=0, on_blowup="mask")
    assert sol.n_diverged == 1 and sol.diverged.tolist() == [False, False, False, True, False]
    assert np.isnan(sol.x[-1, 3, 0]) and np.isfinite(sol.final).all() and sol.final.shape == (4, 1)
    # the finite paths see the same numbers as in a run where nothing blows up
    calm = x0.copy()
    calm[3] = 0.1
    ref = solve(_exploding(calm), EulerMaruyama(), 0.01, noise=0)
    np.testing.assert_array_equal(sol.x[-1, sol.valid], ref.x[-1, sol.valid])


def test_masked_path_is_finite_before_and_nan_after_its_blowup_step():
    x0 = np.full((9, 1), 0.1)  # 9 paths: a full group of 8 and a partly filled one
    x0[8] = 3.0
    sol = solve(_exploding(x0), EulerMaruyama(), 0.01, noise=0, on_blowup="mask", save_at=SaveAt(every=5))
    k = int(sol.blowup_step[8])
    assert sol.diverged.tolist() == [False] * 8 + [True] and k > 0
    saved_steps = np.rint((sol.t - sol.t[0]) / 0.01).astype(int)
    assert np.isfinite(sol.x[saved_steps < k, 8, 0]).all()
    assert np.isnan(sol.x[saved_steps >= k, 8, 0]).all()
    assert np.isfinite(sol.x[:, :8]).all()


@numba.njit
def _big_linear_drift(t, x, p, out):
    for i in range(x.shape[0]):
        out[i] = p[i] * x[i]


@numba.njit
def _big_linear_diffusion(t, x, p, out):
    for i in range(x.shape[0]):
        out[i] = p[x.shape[0] + i] * x[i]


@pytest.mark.parametrize("d", [3, 12])
def test_large_systems_and_long_parameter_lists_match_a_numpy_loop(d):
    """d = 3 with 6 parameters runs the kernel with frozen sizes and parameters copied to the
    stack; d = 12 with 24 parameters the run-time-size kernel reading them in place: both equal
    a numpy loop on the same increments (11 paths: one group of 8 and a partly filled one)."""
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 0.5, d), rng.uniform(0.1, 0.6, d)
    x0 = rng.uniform(0.5, 1.5, (11, d))
    prob = SDEProblem(_big_linear_drift, _big_linear_diffusion, x0=x0, tspan=(0.0, 1.0), noise="diagonal",
                      params=np.concatenate([a, b]), name=f"linear-{d}")
    dW = next(BrownianPath(5, 0.0, 1.0, 5, m=d).chunks(11))[1]
    sol = solve(prob, EulerMaruyama(), 1 / 32, noise=dW, save_at=SaveAt(every=8))
    x = x0.copy()
    saved = [x.copy()]
    for k in range(32):
        x = x + a * x / 32 + b * x * dW[k]
        if (k + 1) % 8 == 0:
            saved.append(x.copy())
    np.testing.assert_allclose(sol.x, np.array(saved), rtol=1e-12, atol=1e-14)


@numba.njit
def _grow_drift(t, x, p, out):
    out[0] = p[0] * x[0]  # linear growth: finite forever, enormous soon


@numba.njit
def _no_noise(t, x, p, out):
    out[0] = 0.0


def test_values_past_the_threshold_are_a_blowup_in_both_modes():
    """dx = 600 x dt from x0 = 1: Euler-Maruyama at dt = 0.001 gives x_k = 1.6^k, past 1e100 at step
    490 and about 1e102 at t = 0.5: finite, yet no result. Path 1 (x0 = 0) stays at 0."""
    from sde_scales.sde.solve import BLOWUP_THRESHOLD

    prob = SDEProblem(_grow_drift, _no_noise, x0=np.array([[1.0], [0.0]]), tspan=(0.0, 0.5), noise="diagonal",
                      params=[600.0], name="growth")
    with pytest.raises(BlowUpError) as err:
        solve(prob, EulerMaruyama(), 0.001, noise=0)
    assert err.value.path == 0 and "1e+100" in str(err.value)
    sol = solve(prob, EulerMaruyama(), 0.001, noise=0, on_blowup="mask", save_at=SaveAt(every=10))
    assert sol.diverged.tolist() == [True, False] and np.isnan(sol.x[-1, 0, 0]) and sol.x[-1, 1, 0] == 0.0
    k = int(sol.blowup_step[0])
    # the step it is flagged at is the first at which |x| >= threshold: (1 + 0.6)^k crosses it there
    assert 1.6 ** (k - 1) < BLOWUP_THRESHOLD <= 1.6**k * (1 + 1e-12)
    # a threshold of inf flags only NaN and infinite values: this run then counts as finite
    free = solve(prob, EulerMaruyama(), 0.001, noise=0, blowup_threshold=np.inf)
    assert np.isfinite(free.x[-1, 0, 0]) and free.x[-1, 0, 0] > 1e100
    with pytest.raises(InvalidArgumentError, match="blowup_threshold"):
        solve(prob, EulerMaruyama(), 0.001, noise=0, blowup_threshold=-1.0)


# ----------------------------------------------------------------------------- unstable steps
@numba.njit
def _stiff_drift(t, x, p, out):
    for i in range(x.shape[0]):
        out[i] = -p[i] * x[i]


@numba.njit
def _stiff_noise(t, x, p, out):
    for i in range(x.shape[0]):
        out[i] = 0.1


@numba.njit
def _oscillator_drift(t, x, p, out):
    out[0] = x[1]
    out[1] = -p[0] * p[0] * x[0] - 2 * p[1] * p[0] * x[1]


def test_a_step_outside_the_explicit_stability_region_is_refused_with_a_usable_dt():
    """dx = -1000 x dt + 0.1 dW: Euler-Maruyama at dt = 1/100 multiplies x by |1 - 1000/100| = 9 per
    step, and its 100 steps take x0 = 1 to 2.7e95, under the blow-up threshold (1e100): a result was
    returned with no error. At dt = 1/256 (2.9 per step) the paths passed 1e100 and the error was a
    blow-up, with no word of the step. Such a dt is refused, naming the eigenvalue, the bound 2/1000
    and a dt that divides the span. That dt
    runs stably: its paths have the scheme's own stationary spread, sqrt(sigma^2 dt / (1 - (1 -
    1000 dt)^2)) = 0.0146 (within 20%; 400 paths: the sample sd's standard error is 3.5%), which is
    not the SDE's 0.1/sqrt(2000) = 0.0022 (the message says accuracy needs |lambda| dt << 1)."""
    import re

    from sde_scales import UnstableStepError

    prob = SDEProblem(_stiff_drift, _stiff_noise, x0=[1.0], tspan=(0.0, 1.0), noise="diagonal", params=[1000.0])
    for dt in (1 / 100, 1 / 256):
        with pytest.raises(UnstableStepError, match=r"eigenvalue -1000 .*Use dt <= 0\.002 ") as err:
            solve(prob, EulerMaruyama(), dt, n_paths=4, noise=0)
        assert isinstance(err.value, InvalidArgumentError)
    good = float(re.search(r"e\.g\. dt=([0-9.e-]+) \(", str(err.value)).group(1))
    assert good == 1 / 512
    sol = solve(prob, EulerMaruyama(), good, n_paths=400, noise=1)
    assert np.std(sol.final[:, 0]) == pytest.approx(np.sqrt(0.01 * good / (1 - (1 - 1000 * good) ** 2)), rel=0.2)
    assert "accurate only where |lambda| dt is well below 1" in str(err.value)
    with pytest.raises(UnstableStepError):  # Milstein's drift step is the same explicit one
        solve(prob, Milstein(), 1 / 256, n_paths=4, noise=0)


def test_stability_is_checked_for_every_mode_of_a_large_system_and_for_oscillations():
    """100 decoupled modes with rates 1..1000 (ARPACK on Jacobian-vector products: the stiffest
    mode sets the bound 2/1000), and a damped oscillator (omega 10, damping ratio 0.1: eigenvalues
    -1 +- 9.95i, explicit bound 2 zeta / omega = 0.02, although dt |lambda| = 0.31 < 2 at 1/32).
    A growing mode (the blow-up tests above) and an undamped oscillation are not refused: their
    solutions grow or persist too."""
    from sde_scales import UnstableStepError

    big = SDEProblem(_stiff_drift, _stiff_noise, x0=np.ones(100), tspan=(0.0, 1.0), noise="diagonal",
                     params=np.geomspace(1.0, 1000.0, 100))
    with pytest.raises(UnstableStepError, match=r"eigenvalue -1000 "):
        solve(big, EulerMaruyama(), 1 / 256, n_paths=2, noise=0)
    solve(big, EulerMaruyama(), 1 / 512, n_paths=2, noise=0)
    osc = SDEProblem(_oscillator_drift, _stiff_noise, x0=[1.0, 0.0], tspan=(0.0, 1.0), noise="diagonal",
                     params=[10.0, 0.1])
    with pytest.raises(UnstableStepError, match=r"eigenvalue -1 [+-] 9\.95\d*i.*Use dt <= 0\.02 "):
        solve(osc, EulerMaruyama(), 1 / 32, n_paths=2, noise=0)
    solve(osc, EulerMaruyama(), 1 / 64, n_paths=2, noise=0)
    undamped = SDEProblem(_oscillator_drift, _stiff_noise, x0=[1.0, 0.0], tspan=(0.0, 1.0), noise="diagonal",
                          params=[10.0, 0.0])
    solve(undamped, EulerMaruyama(), 1 / 32, n_paths=2, noise=0)


@numba.njit
def _log_space_drift(t, x, p, out):
    out[0] = -p[0] * np.exp(np.log(x[0]))  # a positive process written in log space: -p x for x > 0


@numba.njit
def _pointwise_drift(t, x, p, out):
    out[0] = -p[0] * x[0] if x[0] == 1.0 else np.nan  # fault injection: finite at x0 only


def test_stability_is_checked_at_the_edge_of_the_drifts_domain_and_a_skipped_check_warns():
    """x0 = 1e-7 lies closer to 0 than the difference step (1e-6), where log x is not finite: the
    central difference is NaN and the check used to be skipped, so dt = 1/100 at rate 1000 ran into
    a blow-up error that said nothing of the step. The one-sided difference on the finite side gives
    lambda = -1000 and the step is refused. Where the drift is not finite on either side, the check
    cannot be made, and solve warns once per problem instead of saying nothing."""
    import warnings

    from sde_scales import UnstableStepError
    from sde_scales.sde.probes import StabilityNotCheckedWarning

    prob = SDEProblem(_log_space_drift, _stiff_noise, x0=[1e-7], tspan=(0.0, 1.0), noise="diagonal",
                      params=[1000.0])
    with pytest.raises(UnstableStepError, match=r"eigenvalue -1000 "):
        solve(prob, EulerMaruyama(), 1 / 100, n_paths=2, noise=0)
    odd = SDEProblem(_pointwise_drift, _stiff_noise, x0=[1.0], tspan=(0.0, 0.01), noise="diagonal", params=[1.0])
    with pytest.warns(StabilityNotCheckedWarning, match="stability was not checked"):
        solve(odd, EulerMaruyama(), 1 / 100, n_paths=1, noise=0, on_blowup="mask")
    with warnings.catch_warnings():
        warnings.simplefilter("error", StabilityNotCheckedWarning)  # once per problem, not per solve
        solve(odd, EulerMaruyama(), 1 / 100, n_paths=1, noise=0, on_blowup="mask")


@numba.njit
def _centring_drift(t, x, p, out):
    m = x.mean()
    for i in range(x.shape[0]):
        out[i] = -p[0] * (x[i] - m)


@numba.njit
def _zero_drift(t, x, p, out):
    out[:] = 0.0


def test_stability_of_a_large_drift_of_differences_and_no_warning_without_drift():
    """64 coordinates pulled to their mean at rate 1000: the Jacobian sends the all-ones vector to
    zero (up to rounding), so the probe's ARPACK iteration starts from a random vector; the mode
    -1000 is found and dt = 1/100 refused. A drift that is exactly zero (the width model's "drift
    off" mutation) stopped ARPACK ("starting vector is zero") and drew a warning that the check was
    not made, although there is nothing to check: no refusal and no warning now."""
    import warnings

    from sde_scales import UnstableStepError

    x0 = np.linspace(-1.0, 1.0, 64)
    prob = SDEProblem(_centring_drift, _stiff_noise, x0=x0, tspan=(0.0, 1.0), noise="diagonal", params=[1000.0])
    with pytest.raises(UnstableStepError, match=r"eigenvalue -1000 "):
        solve(prob, EulerMaruyama(), 1 / 100, n_paths=2, noise=0)
    flat = SDEProblem(_zero_drift, _stiff_noise, x0=x0, tspan=(0.0, 1.0), noise="diagonal", params=[0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        solve(flat, EulerMaruyama(), 1 / 4, n_paths=2, noise=0)


@numba.njit
def _ramped_drift(t, x, p, out):
    for i in range(x.shape[0]):
        out[i] = -p[0] * min(t / p[1], 1.0) * x[i]  # a rate warmed up from 0 over p[1], as a learning rate is


@numba.njit
def _state_stiff_drift(t, x, p, out):
    out[0] = 1.0                    # x1 runs from 0 to 1 over the span ...
    out[1] = -p[0] * x[0] * x[1]    # ... and sets the rate at which x2 decays: 0 at the initial state


def test_a_stiffness_that_grows_with_time_or_with_the_state_is_refused():
    """The probe at the initial state saw no stiffness where it grows later. dx = -1000 min(t/0.1, 1)
    x dt + 0.1 dW (a rate warmed up from 0, as a learning rate is): at dt = 1/100 Euler-Maruyama
    returned final states of about 1e48 where the SDE's spread is 0.0022, with no error (and 1e32 at
    dt = 1/256). The drift is now probed at 17 times over the span, and the refusal names the time.
    A stiffness that grows with the state (x2 decaying at rate 1000 x1, x1 running from 0 to 1) is
    invisible at the initial state at any time: the final state of a typical path is probed after
    the solve. A stable dt passes both, with the SDE's stationary spread (400 paths: the sample sd's
    standard error is 3.5%, asserted within 20%)."""
    from sde_scales import UnstableStepError

    ramp = SDEProblem(_ramped_drift, _stiff_noise, x0=[1.0], tspan=(0.0, 1.0), noise="diagonal",
                      params=[1000.0, 0.1])
    for dt in (1 / 100, 1 / 256):
        with pytest.raises(UnstableStepError, match=r"eigenvalue -1000 at time t = 0\.125 .*Use dt <= 0\.002 "):
            solve(ramp, EulerMaruyama(), dt, n_paths=4, noise=0)
    sol = solve(ramp, EulerMaruyama(), 1 / 16384, n_paths=400, noise=1)  # the scheme's spread is 1.5% above the SDE's here
    assert np.std(sol.final[:, 0]) == pytest.approx(0.1 / np.sqrt(2000.0), rel=0.2)

    late = SDEProblem(_state_stiff_drift, _stiff_noise, x0=[0.0, 1.0], tspan=(0.0, 1.0), noise="diagonal",
                      params=[1000.0])
    with pytest.raises(UnstableStepError, match=r"in the state of path \d+ \(of median size.*Use dt <= 0\.00"):
        solve(late, EulerMaruyama(), 1 / 100, n_paths=8, noise=0)
    with pytest.raises(UnstableStepError, match=r"in the state of path"):  # and where it is saved along the way
        solve(late, Milstein(), 1 / 100, n_paths=8, noise=0, save_at=SaveAt(t=[0.5, 1.0]))
    solve(late, EulerMaruyama(), 1 / 1024, n_paths=8, noise=0)
    # the path probed is chosen among the ensemble's first paths by their global index, so an
    # ensemble solved in chunks is refused with the same words as in one piece
    said = []
    for n, offset in ((32, 0), (16, 0)):
        with pytest.raises(UnstableStepError) as err:
            solve(late, EulerMaruyama(), 1 / 100, n_paths=n, noise=BlockStreams(3, block_size=8, path_offset=offset))
        said.append(str(err.value))
    assert said[0] == said[1]


def test_a_convergence_study_does_not_depend_on_its_batch_size():
    """The batch of paths integrated at once bounds memory only: the Brownian path's numbers come
    from streams of ``chunk`` paths, and a batch inside a stream draws that stream's normals in the
    same order. Lowering the memory of a study used to change its numbers (the batch was the
    stream)."""
    from sde_scales import convergence_study

    bp = BrownianPath(3, 0.0, 1.0, 4, m=2, chunk=7)
    whole = np.concatenate([f for _, f in bp.chunks(20)], axis=1)
    for batch in (1, 3, 7, 9, 25):
        assert np.array_equal(np.concatenate([f for _, f in bp.chunks(20, batch)], axis=1), whole), batch
    ex = tp.geometric_brownian_motion()
    a = convergence_study(ex.problem, EulerMaruyama(), range(3, 7), 300, seed=1, exact=ex.exact, chunk=128)
    b = convergence_study(ex.problem, EulerMaruyama(), range(3, 7), 300, seed=1, exact=ex.exact, chunk=128, batch=50)
    assert np.array_equal(a.strong_error, b.strong_error) and np.array_equal(a.weak_error, b.weak_error)
    assert a.strong.order == b.strong.order and a.weak.se == b.weak.se
    for bad in (0, 2.5, True):
        with pytest.raises(InvalidArgumentError, match="positive whole number of paths"):
            next(bp.chunks(20, bad))


@numba.njit
def _sqrt_coupled_diffusion(t, x, p, out):
    out[0] = 0.1
    out[1] = np.sqrt(x[0]) * x[1]  # g_1 depends on x_0: not diagonal noise


def test_the_diagonal_noise_check_sees_a_violation_at_the_edge_of_the_diffusions_domain():
    """At x_0 = 1e-7, closer to 0 than the difference step (1e-5), sqrt(x_0 - h) is NaN: the central
    difference dg_1/dx_0 was NaN, NaN compared False with the threshold, and the state passed as
    diagonal. The diffusion's Jacobian now shares the drift probe's differences, which take the
    finite side there: dg_1/dx_0 = x_1 / (2 sqrt(x_0)) is about 1,600 (the forward difference over
    h = 1e-5, about 290, is what is reported) and the violation is named."""
    from sde_scales.sde.probes import diagonal_violation

    prob = SDEProblem(_stiff_drift, _sqrt_coupled_diffusion, x0=[1e-7, 1.0], tspan=(0.0, 1.0), noise="diagonal",
                      params=[1.0, 1.0])
    with np.errstate(invalid="ignore"):
        found = diagonal_violation(prob, [(0.0, np.array([1e-7, 1.0]))])
    assert found is not None and "g_1 depends on x_0" in found


def test_arrays_larger_than_the_memory_are_refused_before_the_solve(monkeypatch):
    """The saved states (n_save x n_paths x d doubles) and a Brownian path's summed increments
    (n_steps x n_paths x m) are checked against the available memory before they are allocated:
    numpy raised a bare MemoryError, or (with overcommit) the process was killed while writing.
    The available memory is set to 1 MiB here so that the check is exercised on any machine."""
    import sde_scales.validation

    monkeypatch.setattr(sde_scales.validation, "available_memory", lambda: 2**20)
    prob = tp.geometric_brownian_motion().problem
    with pytest.raises(InvalidArgumentError, match=r"saved states \(1 times x 200000 paths x 1 dimensions\) need "
                                                   r"0.00149 GiB .*path_offset"):
        solve(prob, EulerMaruyama(), 0.25, n_paths=200_000, noise=0)  # 1.6 MB of final states
    with pytest.raises(InvalidArgumentError, match="save fewer times"):
        solve(prob, EulerMaruyama(), 2**-10, n_paths=200, noise=0, save_at=SaveAt(every=1))  # 1025 x 200 x 8 B
    with pytest.raises(InvalidArgumentError, match=r"Brownian increments \(1024 steps x 200 paths"):
        solve(prob, EulerMaruyama(), 2**-10, noise=BrownianPath(0, 0.0, 1.0, 10), n_paths=200)
    assert solve(prob, EulerMaruyama(), 0.25, n_paths=1000, noise=0).x.shape == (1, 1000, 1)  # 8 kB: solved


def test_save_every_must_be_a_whole_number_of_steps():
    with pytest.raises(InvalidArgumentError, match=r"every=1.5"):
        SaveAt(every=1.5)  # kept every step (int(1.5)) before
