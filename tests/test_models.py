"""Width model, NQM and the learning-rate-delay model against closed forms."""

import numpy as np
import pytest

from sde_scales.errors import InvalidArgumentError
from sde_scales.models import Coupling, WidthModel
from sde_scales.models.delay import (
    DelayModel,
    Exponential,
    Instantaneous,
    PowerLaw,
    SumOfExponentials,
    direct_convolution,
    half_response_time,
    lag_from_curves,
)
from sde_scales.models.nqm import NoisyQuadraticModel
from sde_scales.schedules import PiecewiseLinear


def test_linear_width_model_mean_matches_mean_field_ode():
    """Linear coupling: E theta_i solves the mean-field ODE exactly (Gaussian, linear), so the
    replica mean equals the discrete limit up to Monte-Carlo error (4 standard errors)."""
    m = WidthModel(n=256, coupling=Coupling.LINEAR, q=[1.0, 0.5, 0.2], c=1.0, T=1.0)
    x = m.simulate(400, 0.01, seed=3)
    lim = m.mean_field_limit(0.01)
    cm = x.mean(axis=1)
    assert abs(cm.mean() - lim) <= 4 * cm.std(ddof=1) / np.sqrt(cm.size)
    # and the discrete limit is the EM map of theta' = -(a - k) theta + b
    a, k, b = 1.0, 0.5, 0.2
    th = 1.0
    for _ in range(100):
        th = th + 0.01 * (-(a - k) * th + b)
    assert lim == pytest.approx(th, rel=1e-12)


def test_width_model_custom_coupling_matches_builtin():
    import numba

    @numba.njit
    def F(theta, M, q):
        th = np.tanh(theta)
        return (q[0] - M) * (1.0 - th * th)

    @numba.njit
    def phi(theta, q):
        return np.tanh(theta)

    a = WidthModel(n=32, q=[0.8]).simulate(10, 0.05, seed=1)
    b = WidthModel(n=32, coupling=None, F=F, phi=phi, q=[0.8]).simulate(10, 0.05, seed=1)
    np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(WidthModel(n=32, q=[0.8]).macro(a), WidthModel(n=32, coupling=None, F=F, phi=phi, q=[0.8]).macro(a))


def test_width_model_bad_inputs():
    with pytest.raises(InvalidArgumentError, match="width"):
        WidthModel(n=0)
    from sde_scales.models import simulate_widths

    base = WidthModel(n=8, q=[0.8])
    for widths in ([8.5, 16, 32], [8, float("nan"), 32]):  # 8.5 was simulated as width 8
        with pytest.raises(InvalidArgumentError, match="whole numbers"):
            simulate_widths(base, widths, 3, 0.1, seed=0)
    assert simulate_widths(base, [8.0, 16.0], 3, 0.1, seed=0).widths.tolist() == [8, 16]
    with pytest.raises(InvalidArgumentError, match="eta"):
        WidthModel(n=4, eta=-0.1)
    with pytest.raises(InvalidArgumentError, match="q="):
        WidthModel(n=4, coupling=Coupling.LINEAR, q=[1.0])
    with pytest.raises(InvalidArgumentError, match="seed=1.5"):
        base.simulate(3, 0.1, seed=1.5)  # simulated with seed 1 before
    with pytest.raises(InvalidArgumentError, match="n_replicas=2.5"):
        base.simulate(2.5, 0.1, seed=0)


def test_nqm_deterministic_optimum_is_time_invariant_and_noise_moves_it():
    inf = NoisyQuadraticModel(4096, sigma=0.0)
    for t in (1, 3, 20, 50):
        assert inf.optimal_lr(t) == pytest.approx(inf.eta_deterministic, rel=1e-6)
    noisy = NoisyQuadraticModel(64)
    assert noisy.optimal_lr(20) < noisy.optimal_lr(3) < noisy.eta_deterministic


def test_nqm_expected_loss_matches_monte_carlo():
    """Closed-form E L(t) against a direct simulation of SGD with the stated noise (4 SE)."""
    m = NoisyQuadraticModel(16, sigma=0.5)
    eta, T, R = 0.06, 10, 20000
    rng = np.random.default_rng(0)
    h = np.repeat(np.array(m.h), 8)
    theta = np.tile(1 / h, (R, 1))
    for _ in range(T):
        xi = rng.standard_normal(theta.shape) * np.sqrt(m.sigma**2 * h / m.n)
        theta = theta - eta * (h * theta + xi)
    L = (0.5 * h * theta**2).mean(axis=1)
    assert abs(L.mean() - m.expected_loss(eta, T)) <= 4 * L.std(ddof=1) / np.sqrt(R)


def test_nqm_gap_under_sp_noise_does_not_shrink():
    gaps = [NoisyQuadraticModel(n, beta=0.0).early_late_gap(3, 20) for n in (64, 1024)]
    assert gaps[0] == pytest.approx(gaps[1])


# ----------------------------------------------------------------------------- delay model
def test_exponential_lag_closed_form():
    for tau in (0.01, 0.3, 2.0):
        assert half_response_time(Exponential(tau)) == pytest.approx(tau * np.log(2), rel=1e-10)
    assert PowerLaw(0.2, 3.0).lag == pytest.approx(half_response_time(PowerLaw(0.2, 3.0)), rel=1e-10)


SCHED = PiecewiseLinear([0, 0.5, 1.0, 1.0, 2.0], [1.0, 1.0, 0.6, 0.4, 0.1])


@pytest.mark.parametrize("kernel, dt", [
    (SumOfExponentials([0.05, 0.3, 1.0], [0.2, 0.5, 0.3]), 1e-2),
    (Exponential(0.004), 0.01),   # dt 2.5x the time scale: explicit Euler's error was 2.85e17 here
    (Exponential(0.004), 0.04),   # dt 10x the time scale
    (PowerLaw(0.02, 2.0), 0.01),  # embedding's smallest scale 0.002: dt 5x it
    (PowerLaw(0.02, 2.0), 0.02),  # 10x
])
def test_delay_model_matches_direct_convolution_at_any_dt(kernel, dt):
    """The kernel term against adaptive quadrature of the convolution (which never sees the
    embedding): exact sums of exponentials to rounding (1e-12, quad's own tolerance); a power law
    within the stated bound (kernel error times the schedule's total variation) plus that."""
    m = DelayModel(SCHED, kernel, sigma_L=0.0)
    r = m.simulate(3.0, dt, 2, seed=0)
    direct = direct_convolution(kernel, SCHED, r.t, eta_ref=m.eta_ref)
    assert np.max(np.abs(r.y - direct)) <= r.y_error_bound + 1e-10
    if isinstance(kernel, SumOfExponentials):
        assert r.kernel_error == 0.0 and r.y_error_bound == 0.0
    assert np.all(np.isfinite(r.loss)) and np.max(np.abs(r.y)) <= 1.0  # y never exceeds the drop


def test_delay_model_numbers_do_not_depend_on_dt_or_n_paths():
    m = DelayModel(SCHED, Exponential(0.1))
    fine = m.simulate(3.0, 0.01, 5, seed=3, save_every=10)  # saved every 0.1
    coarse = m.simulate(3.0, 0.1, 5, seed=3)
    np.testing.assert_allclose(fine.t, coarse.t, atol=1e-12)
    np.testing.assert_allclose(fine.y, coarse.y, atol=1e-12)  # the deterministic part is exact on any grid
    more = m.simulate(3.0, 0.1, 12, seed=3)
    np.testing.assert_array_equal(more.loss[:, :5], coarse.loss)  # path i does not depend on n_paths


@pytest.mark.parametrize("ratio", [0.1, 1.0, 10.0])
def test_loss_noise_has_unit_variance_and_its_correlation_at_every_dt(ratio):
    """xi at the last saved time over 40,000 paths: Var = 1 within 5 standard errors of a sample
    variance (sqrt(2/R) = 0.007); the lag-one correlation is exp(-dt/tau_xi) within 5 standard
    errors (about (1 - rho^2)/sqrt(R))."""
    tau_xi, R = 0.01, 40_000
    m = DelayModel(PiecewiseLinear([0.0], [1.0]), Instantaneous(), L_inf=0.0, sigma_L=1.0, tau_xi=tau_xi)
    r = m.simulate(20 * ratio * tau_xi, ratio * tau_xi, R, seed=5)
    xi = r.loss  # eta = 1, y = 0, A = 0: the loss is the noise
    assert abs(xi[-1].var() - 1.0) <= 5 * np.sqrt(2 / R)
    rho = np.exp(-ratio)
    got = np.corrcoef(xi[-2], xi[-1])[0, 1]
    assert abs(got - rho) <= 5 * max(1 - rho**2, 1e-3) / np.sqrt(R) + 1e-3


def test_loss_noise_follows_the_learning_rate_at_each_time():
    """The model's noise term is sigma_L eta(t) xi(t): after a drop of the rate from 1 to 1/4, the
    loss's variance over paths falls from sigma_L^2 to sigma_L^2 / 16. Each sample variance of
    R = 20,000 paths is within 5 of its standard errors (relative sqrt(2/R) = 0.01) of that; a
    noise scaled by the peak rate would keep 1 after the drop (60 standard errors away)."""
    R, sigma_L = 20_000, 0.5
    sched = PiecewiseLinear([0.0, 1.0, 1.0, 3.0], [1.0, 1.0, 0.25, 0.25])
    m = DelayModel(sched, Instantaneous(), L_inf=0.0, A=0.0, C=0.0, sigma_L=sigma_L, tau_xi=0.01)
    r = m.simulate(3.0, 0.5, R, seed=11)
    for t, eta in ((0.5, 1.0), (3.0, 0.25)):
        k = int(np.argmin(np.abs(r.t - t)))
        want = (sigma_L * eta) ** 2
        assert abs(r.loss[k].var() / want - 1.0) <= 5 * np.sqrt(2 / R), (t, r.loss[k].var(), want)


def test_delay_model_bad_inputs():
    m = DelayModel(SCHED, Exponential(0.1))
    with pytest.raises(InvalidArgumentError, match="dt"):
        m.simulate(1.0, -0.1, 2, seed=0)
    with pytest.raises(InvalidArgumentError, match="exceeds T"):
        m.simulate(1.0, 0.6, 2, seed=0, save_every=2)
    with pytest.raises(InvalidArgumentError, match="n_paths"):
        m.simulate(1.0, 0.1, 0, seed=0)


def test_power_law_embedding_error_is_reported_and_small():
    k = PowerLaw(0.1, 2.5)
    soe, err = k.embedding(t_max=5.0)
    grid = np.linspace(0, 5, 2001)
    assert np.max(np.abs(soe.Q(grid) - k.Q(grid))) <= err * 1.5 + 1e-9
    assert err < 1e-2
    for bad in ({"t_max": 0.0}, {"t_max": float("nan")}, {"n_terms": 2.5}):
        with pytest.raises(InvalidArgumentError, match="t_max="):  # numpy errors before
            k.embedding(**bad)


def test_simulated_lag_matches_closed_form_and_vanishes_without_memory():
    """Lag read off 128 noisy loss curves: tau ln 2 within 5 save intervals (the crossing is
    interpolated linearly between saved points) and the noise (0.05 eta xi over 128 replicas moves
    the half-crossing by less than 0.01 tau here)."""
    sched = PiecewiseLinear.step_drop(1.0, 0.3, 1.0)
    tau = 0.2
    r = DelayModel(sched, Exponential(tau)).simulate(3.0, 1e-3, 128, seed=2, save_every=2)
    lag = float(lag_from_curves(r.t, r.loss, 1.0, 0.7))
    assert abs(lag - tau * np.log(2)) <= 5 * 0.002 + 0.01 * tau
    z = DelayModel(sched, Instantaneous()).simulate(2.0, 1e-3, 32, seed=2, save_every=2)
    assert float(lag_from_curves(z.t, z.loss, 1.0, 0.7)) <= 0.002


def test_kernel_and_schedule_bad_inputs():
    with pytest.raises(InvalidArgumentError, match="time scales"):
        SumOfExponentials([0.0], [1.0])
    with pytest.raises(InvalidArgumentError, match="a > 1"):
        PowerLaw(1.0, 0.5)
    with pytest.raises(InvalidArgumentError, match="learning rate nan"):
        PiecewiseLinear([0, 1], [1.0, np.nan])
    with pytest.raises(InvalidArgumentError, match="learning rate -0.1"):
        PiecewiseLinear([0, 1], [1.0, -0.1])
    with pytest.raises(InvalidArgumentError, match="sort"):
        PiecewiseLinear([1, 0], [1.0, 1.0])


def test_exact_states_start_at_zero_whatever_the_first_reported_time():
    """S_1(t) = int_0^t eta and z(t) for a constant rate eta = 1 with a drop to 0.25 at t = 1 and
    eta_ref = 1: S_1 = t before the drop and 1 + 0.25 (t - 1) after; z = 0.75 (1 - e^{-(t-1)/tau})
    after it. Reported at times that do not start at 0, the states must still be integrated from 0
    (S_1(0.5) = 0.5, not 0)."""
    from sde_scales.models.delay import exact_states

    sched = PiecewiseLinear.step_drop(1.0, 0.25, 1.0)
    tau = 0.3
    times = np.array([0.5, 1.0, 1.5, 3.0])
    s1, z = exact_states(sched, 1.0, [tau], times)
    expected_s1 = np.where(times <= 1.0, times, 1.0 + 0.25 * (times - 1.0))
    expected_z = np.where(times <= 1.0, 0.0, 0.75 * -np.expm1(-(times - 1.0) / tau))
    np.testing.assert_allclose(s1, expected_s1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(z[:, 0], expected_z, rtol=1e-12, atol=1e-14)
    # ramps: a linear warmup 0 -> 1 over [0, 2], the plateau to t = 5, a linear decay to 0 by t = 7;
    # S_1 is t^2/4, then 1 + (t - 2), then 4 + (t - 5) - (t - 5)^2/4, then 5
    ramp = PiecewiseLinear([0.0, 2.0, 5.0, 7.0], [0.0, 1.0, 1.0, 0.0])
    t = np.array([1.0, 2.0, 3.5, 6.0, 7.0, 8.0])
    s1, _ = exact_states(ramp, 1.0, [tau], t)
    np.testing.assert_allclose(s1, [0.25, 1.0, 2.5, 4.75, 5.0, 5.0], rtol=1e-12)


def test_delay_model_pieces_refuse_what_they_cannot_compute():
    """Each of these returned NaN, a wrong number or an unrelated numpy error before."""
    from sde_scales.models.delay import exact_states, ou_paths

    t = np.linspace(0.0, 2.0, 21)
    with pytest.raises(InvalidArgumentError, match="tau=-1"):
        ou_paths(t, -1.0, 3, 0)  # NaN paths before
    with pytest.raises(InvalidArgumentError, match="sort"):
        ou_paths(t[::-1], 1.0, 3, 0)
    with pytest.raises(InvalidArgumentError, match="n_paths=0"):
        ou_paths(t, 1.0, 0, 0)
    with pytest.raises(InvalidArgumentError, match="seed=1.5"):
        ou_paths(t, 1.0, 3, 1.5)  # truncated to seed 1 before
    with pytest.raises(InvalidArgumentError, match="seed=1.5"):
        DelayModel(SCHED, Exponential(0.1)).simulate(1.0, 0.1, 2, seed=1.5)
    with pytest.raises(InvalidArgumentError, match="sort"):
        exact_states(SCHED, 1.0, [0.1], [0.9, 0.2])  # S_1(0.2) came out as 0 before
    with pytest.raises(InvalidArgumentError, match="eta_ref=nan"):
        DelayModel(SCHED, Exponential(0.1), eta_ref=float("nan"))
    with pytest.raises(InvalidArgumentError, match="eta_ref=-1"):
        DelayModel(SCHED, Exponential(0.1), eta_ref=-1.0)
    with pytest.raises(InvalidArgumentError, match="A=-1"):
        DelayModel(SCHED, Exponential(0.1), A=-1.0)
    loss = np.ones((t.size, 4))
    with pytest.raises(InvalidArgumentError, match="expected_gain=0"):
        lag_from_curves(t, loss, 1.0, 0.0)  # a lag of 0 before
    with pytest.raises(InvalidArgumentError, match="for 10 times"):
        lag_from_curves(t[:10], loss, 0.5, 0.1)  # NaN before
    with pytest.raises(InvalidArgumentError, match="t_drop=5"):
        lag_from_curves(t, loss, 5.0, 0.1)
    with pytest.raises(InvalidArgumentError, match="times >= 0"):
        direct_convolution(Exponential(0.1), SCHED, [-1.0, 0.5])


def test_nqm_refuses_a_fractional_width_and_a_one_point_grid():
    with pytest.raises(InvalidArgumentError, match="n=2.5"):
        NoisyQuadraticModel(n=2.5)
    with pytest.raises(InvalidArgumentError, match="beta=nan"):
        NoisyQuadraticModel(n=16, beta=float("nan"))
    with pytest.raises(InvalidArgumentError, match="grid=1"):
        NoisyQuadraticModel(n=16).optimal_lr(10, grid=1)  # returned the grid's lower end before


def test_delay_model_refuses_paths_larger_than_the_memory(monkeypatch):
    """Loss, noise and normals (3 x n_times x n_paths doubles) are checked before they are drawn
    (the available memory set to 1 MiB, so that the check runs on any machine)."""
    import sde_scales.validation

    monkeypatch.setattr(sde_scales.validation, "available_memory", lambda: 2**20)
    m = DelayModel(SCHED, Exponential(0.1))
    with pytest.raises(InvalidArgumentError, match=r"1001 times x 100 paths.*larger save_every"):
        m.simulate(1.0, 1e-3, 100, seed=0)  # 2.4 MB
    assert m.simulate(1.0, 1e-2, 100, seed=0).loss.shape == (101, 100)  # 0.24 MB


@pytest.mark.parametrize("sched", [PiecewiseLinear.step_drop(1.0, 0.1, 0.0), PiecewiseLinear.step_drop(1.0, 0.1, -5.0),
                                   PiecewiseLinear([-1.0, 2.0], [1.0, 0.0]), PiecewiseLinear.step_drop(1.0, 0.1, 1.0)])
def test_direct_convolution_counts_changes_before_zero_once(sched):
    """y(t) = int_0^t q(t - s) (eta_ref - eta(s)) ds by plain quadrature of the definition (an
    independent implementation: the kernel's q, not its Q, and no pieces) against
    direct_convolution and the exact states. A drop at or before t = 0 was counted twice by
    direct_convolution (once in eta(0), once as a jump or a piece), which gave twice the response;
    the delay model's exact states were right."""
    from scipy import integrate

    from sde_scales.models.delay import exact_states

    k = Exponential(0.5)
    times = np.array([0.5, 1.5, 3.0])
    ref = [integrate.quad(lambda s: float(k.q(t - s)) * (1.0 - float(sched(s))), 0.0, t, points=[1.0, 2.0],
                          epsabs=1e-12, epsrel=1e-10, limit=200)[0] for t in times]
    _, z = exact_states(sched, 1.0, k.taus, times)
    # quadrature tolerance 1e-10 relative; the exact states are exact to rounding
    np.testing.assert_allclose(direct_convolution(k, sched, times, eta_ref=1.0), ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(z @ k.weights, ref, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("kernel", [Exponential(0.5), PowerLaw(0.1, 2.5), SumOfExponentials([0.1, 1.0], [0.3, 0.7])])
def test_kernels_are_zero_at_negative_lags(kernel):
    """A response follows its cause: q and Q are 0 at negative lags, as Instantaneous's Q was
    already (the exponentials gave e^{|tau|/tau_j}, the power law NaN below -tau0); NaN stays NaN."""
    lags = np.array([-5.0, -0.05, np.nan, 0.0, 0.3])
    q, Q = kernel.q(lags), kernel.Q(lags)
    assert np.all(q[:2] == 0) and np.all(Q[:2] == 0) and np.isnan(q[2]) and np.isnan(Q[2])
    assert Q[3] == 0 and q[3] > 0 and 0 < Q[4] < 1
    assert np.all(Instantaneous().Q(lags[:2]) == 0)
