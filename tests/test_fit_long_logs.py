"""Fits of long per-step logs: the coarse start and the fit's independence of BLAS threads.

The curves are the noisy quadratic's expected loss (``SpectralNQM.power_law``, as in
``experiments/fit_nqm_family.py``), which no law fits exactly: fitted to one cosine, the power
term's level, amplitude and exponent are nearly interchangeable and the optimiser walks a long
flat valley, the case where both the coarse start and the thread count matter.
"""

import importlib

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from sde_scales import schedules
from sde_scales.fitting import KernelLaw, LossCurve, MomentumLaw, MultiPowerLaw, ScheduleFeatures, fit
from sde_scales.models.nqm import SpectralNQM

fit_module = importlib.import_module("sde_scales.fitting.fit")


def nqm_curve(steps: int, kind: str = "cosine", seed: int = 0) -> LossCurve:
    """A per-step log of the noisy quadratic under a cosine (to 10%) or a WSD (20% cooldown)
    schedule at peak 0.5, with a 1% warmup and noise 0.1."""
    warm = steps // 100
    lr = (schedules.cosine(steps, 0.5, final_fraction=0.1, warmup_steps=warm) if kind == "cosine"
          else schedules.wsd(steps, 0.5, fraction=0.2, warmup_steps=warm))
    y = SpectralNQM.power_law().expected_loss(lr)[:steps] + 0.1 * np.random.default_rng(seed).standard_normal(steps)
    return LossCurve(np.arange(steps), lr, y, name=f"nqm-{kind}")


def test_coarse_rows_are_even_proportional_and_keep_both_ends():
    rows = fit_module._coarse_rows([30000, 10000, 15], 4000)
    assert [r[0] for r in rows] == [0, 0, 0]
    assert [r[-1] for r in rows] == [29999, 9999, 14]  # every curve's last row is in
    assert abs(rows[0].size - 3000) <= 1 and abs(rows[1].size - 1000) <= 1  # in proportion to the sizes
    assert rows[2].size == 15  # a short curve keeps all its rows
    gaps = np.diff(rows[0])
    assert gaps.max() - gaps.min() <= 1  # evenly spaced
    assert all(np.all(np.diff(r) > 0) for r in rows)


@pytest.mark.parametrize("law", [KernelLaw("nonparametric", "steps"), KernelLaw("power", "area"), MomentumLaw(),
                                 MultiPowerLaw()], ids=["np", "power-area", "momentum", "mpl"])
def test_features_on_a_subset_of_steps_are_the_full_features_there(law):
    """The coarse fit evaluates the law on features built at a subset of the steps; they must be
    the full features' rows exactly (a drop bin or an area counted from the subset, not the
    schedule, would move them)."""
    c = nqm_curve(6000, "wsd")
    full, keep = fit_module._features(c, 100, c.peak_lr, 4)
    (rows,) = fit_module._coarse_rows([full.t.size], 700)
    sub = ScheduleFeatures.build(c, full.t[rows], c.peak_lr, bin_steps=c.drop_bin_steps(4))
    law = law.for_curves([c])
    lo, hi = law.bounds()
    theta = lo + (hi - lo) * np.random.default_rng(1).uniform(0.2, 0.4, lo.size)  # inside the box, not the starts
    np.testing.assert_array_equal(law.predict(theta, sub), law.predict(theta, full)[rows])
    jac = law.jacobian(theta, full)
    if jac is not None:
        np.testing.assert_array_equal(law.jacobian(theta, sub), jac[rows])


def _counting(monkeypatch):
    """Record (points, evaluations) of every least-squares solve of the fit."""
    calls = []
    real = fit_module.optimize.least_squares

    def counting(fun, x0, **kw):
        res = real(fun, x0, **kw)
        calls.append((res.fun.size, res.nfev))
        return res

    monkeypatch.setattr(fit_module.optimize, "least_squares", counting)
    return calls


@pytest.mark.parametrize("first,factor,stages", [(1000, 8, [1000]), (200, 4, [200, 800])])
def test_coarse_start_ends_no_worse_than_the_direct_fit(monkeypatch, first, factor, stages):
    """A 9,000-point cosine (8,900 fitted) with the coarse stages scaled down so the test stays
    short: the stages run smallest first, then the full fit, whose objective at its end is at or
    below the direct fit's. The tolerance, 1e-9 relative, is far above the optimiser's own ftol
    (1e-12) and far below the 4e-7 by which the direct fit stopped short on the 34,000-point curve
    of benchmarks/RESULTS.md."""
    c = nqm_curve(9000)
    law = KernelLaw("nonparametric", "steps")
    monkeypatch.setattr(fit_module, "COARSE_POINTS", 10**9)
    direct = fit(law, [c], skip_steps=100)
    monkeypatch.setattr(fit_module, "COARSE_POINTS", first)
    monkeypatch.setattr(fit_module, "COARSE_FACTOR", factor)
    calls = _counting(monkeypatch)
    coarse = fit(law, [c], skip_steps=100)
    assert coarse.cost <= direct.cost * (1 + 1e-9)
    sizes = [n for n, _ in calls]
    assert sizes[-1] == c.step.size - 100  # the full fit last
    assert all(abs(n - s) <= 1 for n, s in zip(sizes[:-1], stages)) and len(sizes) == len(stages) + 1
    assert coarse.extra["coarse_stages"] == sizes[:-1] and direct.extra["coarse_stages"] == []


def test_the_multi_power_law_is_fitted_without_a_coarse_start(monkeypatch):
    monkeypatch.setattr(fit_module, "COARSE_POINTS", 100)
    calls = _counting(monkeypatch)
    c = nqm_curve(3000)
    fit(MultiPowerLaw(), [c], skip_steps=100, n_starts=1)
    assert calls and {n for n, _ in calls} == {c.step.size - 100}


def test_a_fit_does_not_depend_on_the_number_of_blas_threads():
    """Same data, same fit, whatever the process's BLAS threads. A 34,000-point cosine: large
    enough that OpenBLAS splits the optimiser's products over threads (on two cores, before the
    fit pinned one thread, the same fit ended at costs 156.38625 and 156.38632 with two threads and
    one: bitwise equality is the claim)."""
    c = nqm_curve(34000)
    law = KernelLaw("nonparametric", "steps")
    with threadpool_limits(limits=1, user_api="blas"):
        one = fit(law, [c], skip_steps=500)
    with threadpool_limits(limits=2, user_api="blas"):
        two = fit(law, [c], skip_steps=500)
    np.testing.assert_array_equal(one.theta, two.theta)
    assert one.cost == two.cost


class _Terminal:
    """A standard error that says it is a terminal, so tqdm draws its bar there."""

    def __init__(self):
        self.text = []

    def write(self, s):
        self.text.append(s)

    def flush(self):
        pass

    def isatty(self):
        return True


def test_law_auto_fits_show_progress_on_a_terminal_only(monkeypatch):
    """``--law auto`` runs dozens of fits (minutes on a long log): its tasks tick a progress bar on a
    terminal, none without a label or off a terminal, and the results are the same either way."""
    runner = importlib.import_module("sde_scales.fitting.tasks")
    tasks = [((i,), i) for i in range(5)]
    term = _Terminal()
    monkeypatch.setattr(runner.sys, "stderr", term)
    shown = runner.run_tasks(abs, tasks, 1, "--law auto: fits of the folds")
    text = "".join(term.text)
    assert "--law auto: fits of the folds" in text and "5/5" in text
    term.text.clear()
    assert runner.run_tasks(abs, tasks, 1, None) == shown == {(i,): i for i in range(5)}
    assert "".join(term.text) == ""
    pipe = _Terminal()
    pipe.isatty = lambda: False  # a log file or a pipe: no bar
    monkeypatch.setattr(runner.sys, "stderr", pipe)
    assert runner.run_tasks(abs, tasks, 1, "--law auto: fits of the folds") == shown
    assert "".join(pipe.text) == ""


def test_worker_pools_hand_each_result_to_its_own_task():
    """In a pool the slow laws' tasks start first (``SLOW_FIRST``), so results arrive in another
    order than the tasks were given; each must still come back under its own key. Tasks whose
    arguments name "mpl" or "power" among ordinary ones, run by two spawned workers: every key gets
    the repr of its own arguments, as in one process."""
    runner = importlib.import_module("sde_scales.fitting.tasks")
    tasks = [((i,), (name, i)) for i, name in enumerate(["exp", "mpl", "exp", "power", "np", "mpl"])]
    assert runner.run_tasks(repr, tasks, 2) == {key: repr(args) for key, args in tasks} == runner.run_tasks(repr, tasks, 1)


def test_a_parameter_moved_by_the_coarse_stage_is_not_called_unmoved(monkeypatch):
    """The "never moved from its start" warning compares the fit with the law's start, not with a
    coarse stage's end: on a noiseless curve of the law itself the coarse stage already lands on
    the truth and the full fit does not move from there, which must not read as "the data do not
    determine it"."""
    import warnings

    steps = 5000
    lr = schedules.wsd(steps, 1e-3, fraction=0.3, warmup_steps=50)
    law = KernelLaw("exp", "steps")
    truth = np.array([2.5, 1.5, 0.4, 0.5, np.log10(300.0)])
    c0 = LossCurve(np.arange(steps), lr, np.ones(steps), name="planted")
    f = ScheduleFeatures.build(c0, c0.step, c0.peak_lr)
    c = LossCurve(np.arange(steps), lr, law.predict(truth, f), name="planted")
    monkeypatch.setattr(fit_module, "COARSE_POINTS", 500)
    calls = _counting(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(law, [c], skip_steps=100, n_starts=1)
    assert len(calls) >= 2 and calls[0][0] < 600  # a coarse stage ran
    np.testing.assert_allclose(res.theta, truth, rtol=1e-6)
    unmoved = [str(w.message) for w in caught if "never moved from its start" in str(w.message)]
    assert not unmoved, unmoved


def test_kept_decay_factors_give_the_same_bits_as_factors_computed_afresh(monkeypatch):
    """The recursive filter with its decay factors kept across calls (each time scale's row computed
    once, in any order, with later calls asking for other subsets) equals the filter that computes
    them every time, bit for bit; past the byte budget the factors are computed afresh."""
    from sde_scales.fitting import _filters

    rng = np.random.default_rng(3)
    t = np.sort(rng.choice(5000, 800, replace=False)).astype(float) + 1
    c = np.sort(rng.uniform(0, 5000, 300))
    u_eval, u_bin = 0.7 * t, 0.7 * c - 0.05  # any clock that never decreases with the step
    lattice = np.exp(-0.5 * np.arange(-20, 8))
    factors = _filters.DecayFactors(t, u_eval, c, u_bin)
    for k in range(6):
        taus = rng.permutation(lattice)[: rng.integers(3, lattice.size)]
        W = rng.standard_normal((1 + k % 3, taus.size, c.size))
        kept = _filters.weighted_response(t, u_eval, c, u_bin, W, taus, factors=factors)
        fresh = _filters.weighted_response(t, u_eval, c, u_bin, W, taus)
        assert np.array_equal(kept, fresh)
    assert len(factors.index) <= lattice.size and factors.fb.shape == (len(factors.index), c.size)
    # against the sum written out (the filter's own check is test_recursive_exponential_filter_...)
    W = rng.standard_normal((1, 4, c.size))
    el = np.maximum(u_eval[:, None] - u_bin[None, :], 0.0) * (c[None, :] < t[:, None])
    dense = sum((W[0, j][None, :] * (c[None, :] < t[:, None]) * -np.expm1(-el / lattice[j])).sum(axis=1)
                for j in range(4))
    np.testing.assert_allclose(_filters.weighted_response(t, u_eval, c, u_bin, W, lattice[:4], factors=factors)[0],
                               dense, rtol=1e-10, atol=1e-10)
    # factors of another schedule are refused (the compiled pass would read past their ends)
    other = _filters.DecayFactors(t[:-5], u_eval[:-5], c, u_bin)
    with pytest.raises(ValueError, match="decay factors of 795 points and 300 bins for a schedule of 800 points"):
        _filters.weighted_response(t, u_eval, c, u_bin, W, lattice[:4], factors=other)
    monkeypatch.setattr(_filters, "FACTOR_BYTES", 0)
    small = _filters.DecayFactors(t, u_eval, c, u_bin)
    assert small.rows(lattice) is None
    W = rng.standard_normal((2, lattice.size, c.size))
    assert np.array_equal(_filters.weighted_response(t, u_eval, c, u_bin, W, lattice, factors=small),
                          _filters.weighted_response(t, u_eval, c, u_bin, W, lattice))


def test_multi_power_law_keeps_the_lattice_points_the_full_weights_keep():
    """The multi-power law finds its lattice points from each point's largest weight (two drops per
    point, by the weights' concavity in z); the points and weights equal those of the rule applied
    to every weight, bit for bit, over random parameters within the bounds and on them."""
    from sde_scales import kernels

    def every_weight(theta, f):  # the rule over the full (lattice x drops) array of weights
        C, beta, gamma = float(theta[4]), float(theta[5]), float(theta[6])
        log_s = np.log(C) - gamma * np.log(np.maximum(f.eta_after, 1e-6))
        v = kernels.log_rate_lattice(float(f.S1[-1]), np.log(40.0) + log_s.max())
        w = kernels.laplace_weights(v[:, None] - log_s[None, :], beta)
        keep = w.max(axis=1) > 1e-16 * w.max()
        return v[keep], w[keep]

    law = MultiPowerLaw()
    lo, hi = law.bounds()
    rng = np.random.default_rng(4)
    for kind in ("cosine", "wsd"):
        c = nqm_curve(4000, kind)
        f = ScheduleFeatures.build(c, c.step[40:], c.peak_lr, bin_steps=4)
        for theta in [lo, hi] + [lo + (hi - lo) * rng.random(lo.size) for _ in range(60)]:
            v, _, w, _, _ = law._nodes(theta, f)
            v0, w0 = every_weight(theta, f)
            assert np.array_equal(v, v0) and np.array_equal(w, w0), theta
