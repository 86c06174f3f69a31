"""Does the test suite catch planted bugs? Hand-written mutants of the numerical core.

Each mutant is one small edit that a careless change could make (a factor of 1/2 dropped from a
Milstein correction, a standard deviation read as a variance, a learning-rate exponent moved by one,
a moving average undone with the wrong decay), with the test files that must catch it. For each,
the script copies the tracked files to a temporary tree, applies the edit, runs those tests there
(``pytest -x``, the package imported from the copy through ``PYTHONPATH``; compiled loops cached
apart, so the edited code is compiled afresh) and reports KILLED (some test failed) or SURVIVED
(every test passed: the suite cannot tell the bug from the code).

A survivor is either a gap in the tests (add a test that fails on it) or an equivalent edit
(replace it by one that is not, and say why in a comment beside it, as for m27). The mutants live here as data, so that a later change of the code shows up
as a mutant whose text no longer matches (``tests/test_script_help.py`` checks that each edit
applies to exactly one place).

First a control: the chosen mutants' tests on an unmutated copy, all of which must pass (a test
that fails there would count every mutant as killed; ``--no-control`` skips it).

Run: ``python benchmarks/mutants.py`` (all 183; the first 106 took about 90 minutes on 2 cores), ``--only m7 m11``,
``--list``, ``--json PATH``; ``--strict`` exits 1 when a mutant survives.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SOLVERS = ("tests/test_strong_order.py", "tests/test_weak_order.py", "tests/test_solve.py",
           "tests/test_order_verdicts.py")
RATES = ("tests/test_rates.py", "tests/test_rate_table.py")
FITTING = ("tests/test_fitting.py", "tests/test_compare.py", "tests/test_forecast.py", "tests/test_sparse_logs.py")
COLLAPSE = ("tests/test_collapse.py", "tests/test_collapse_table.py")
TRAINER = ("tests/test_train.py", "tests/test_checkpoints.py")
MODELS_FIT = ("tests/test_models.py", "tests/test_fitting.py")
POWER_FITS = ("tests/test_fitting.py", "tests/test_sparse_logs.py", "tests/test_loss_rises.py", "tests/test_fit_long_logs.py")
INTERVALS = ("tests/test_fitting.py", "tests/test_sparse_logs.py", "tests/test_single_curve_diagnosis.py")
DELAY = ("tests/test_models.py", "tests/test_close_the_loop.py")
NQM = ("tests/test_models.py", "tests/test_nqm_family.py", "tests/test_fit_long_logs.py", "tests/test_theory.py",
       "tests/test_verify.py")
LOOP = ("tests/test_close_the_loop.py",)
AVERAGES = ("tests/test_auto_average.py", "tests/test_time_scale_average.py", "tests/test_forecast.py",
            "tests/test_single_curve_diagnosis.py")
TRAINER_THEORY = ("tests/test_theory.py", "tests/test_train.py", "tests/test_checkpoints.py")
SCHEDULES = ("tests/test_schedules.py", "tests/test_fitting.py", "tests/test_lm_family.py")
COMPARE = ("tests/test_compare.py",)
EVIDENCE = ("tests/test_width_evidence.py", "tests/test_rate_table.py")
ANALYSIS = ("tests/test_analysis.py", "tests/test_lr_transfer.py")
MEANFIELD = ("tests/test_theory.py",)
SPEC = ("tests/test_fitting.py", "tests/test_forecast.py", "tests/test_sparse_logs.py", "tests/test_event_files.py")
SYMBOLIC = ("tests/test_theory.py", "tests/test_verify.py")
TEXT_LOGS = ("tests/test_log_text.py", "tests/test_fitting.py")
# third round: what turns a measurement into an answer a script acts on (verdicts, exit codes,
# strict JSON, atomic writes, the run store, seeds, the engine's blow-up status, exact references)
GATE = ("tests/test_verify.py", "tests/test_theory.py")
ORDERS = ("tests/test_order_verdicts.py",)
COORD = ("tests/test_train.py", "tests/test_train_inputs.py", "tests/test_verify.py")
RATE_TABLE = ("tests/test_rate_table.py",)
COLLAPSE_TABLE = ("tests/test_collapse_table.py",)
STRICT_FIT = ("tests/test_fitting.py", "tests/test_lack_of_fit.py", "tests/test_bands.py", "tests/test_forecast.py")
CLI_INPUTS = ("tests/test_inputs.py", "tests/test_verify.py")
JSON_OUT = ("tests/test_inputs.py", "tests/test_fitting.py", "tests/test_rate_table.py", "tests/test_verify.py")
ATOMIC = ("tests/test_store.py", "tests/test_train.py")
STORE = ("tests/test_store.py", "tests/test_train.py")
SEEDS = ("tests/test_seeds.py",)
ENGINE = ("tests/test_engine_errors.py", "tests/test_solve.py")
INPUTS = ("tests/test_inputs.py", "tests/test_rate_table.py", "tests/test_train_inputs.py", "tests/test_analysis.py")

# fourth round: modules no earlier round touched, and the metrics of every held-out table
SCORE = ("tests/test_fitting.py", "tests/test_compare.py", "tests/test_bands.py", "tests/test_initial_loss.py")
PROTOCOLS = ("tests/test_fitting.py", "tests/test_protocol_cache.py", "tests/test_lm_family.py", "tests/test_nqm_family.py")
PCACHE = ("tests/test_protocol_cache.py",)
STORE_CURVES = ("tests/test_sparse_logs.py", "tests/test_width_evidence.py", "tests/test_checkpoints.py")
TASKS = ("tests/test_fit_long_logs.py", "tests/test_auto_average.py", "tests/test_time_scale_average.py")
EVENTS = ("tests/test_event_files.py", "tests/test_log_text.py")
LM = ("tests/test_lm_family.py",)
TRAINER_LOG = ("tests/test_train.py", "tests/test_theory.py", "tests/test_width_evidence.py", "tests/test_checkpoints.py")
PLOTS = ("tests/test_rates.py", "tests/test_order_verdicts.py", "tests/test_fitting.py", "tests/test_bands.py",
         "tests/test_verify.py")
LOOP_CACHE = ("tests/test_compile_cache.py",)
TABLES = ("tests/test_rate_table.py", "tests/test_collapse_table.py", "tests/test_inputs.py")
FIT_CHECKS = ("tests/test_fitting.py", "tests/test_lack_of_fit.py", "tests/test_loss_spikes.py", "tests/test_bands.py")


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` (found exactly once in ``path``) by ``new``."""

    key: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


_FILTER_LOOP = ("for j in range(n_tau):\n        tau = taus[j]\n        A = 0.0\n        D = 0.0\n        u_now = 0.0\n"
                "        b = 0\n        for i in range(n_eval):\n            while b < n_bin and c[b] {} t[i]:")

MUTANTS = (
    Mutant("m1", "derivative-free Milstein, diagonal noise: correction halved", "sde_scales/sde/solvers/milstein.py",
           "(w2[i] - g[i]) * (dw[o + i] * dw[o + i] - dt) * c",
           "(w2[i] - g[i]) * (dw[o + i] * dw[o + i] - dt) * c * 0.5", SOLVERS),
    Mutant("m2", "derivative-free Milstein, scalar noise: the -dt of (dW^2 - dt) dropped",
           "sde_scales/sde/solvers/milstein.py", "c = 0.5 * (w * w - dt) / sqdt", "c = 0.5 * (w * w) / sqdt", SOLVERS),
    Mutant("m3", "Milstein with gdg, diagonal noise: (dW^2 + dt)", "sde_scales/sde/solvers/milstein.py",
           "0.5 * w2[i] * (dw[o + i] * dw[o + i] - dt)", "0.5 * w2[i] * (dw[o + i] * dw[o + i] + dt)", SOLVERS),
    Mutant("m4", "Milstein, commutative general noise: half the -dt of the diagonal terms",
           "sde_scales/sde/solvers/milstein.py", "ck -= dt", "ck -= 0.5 * dt", SOLVERS),
    Mutant("m5", "Euler-Maruyama, matrix noise: every column driven by the first Brownian motion",
           "sde_scales/sde/solvers/euler_maruyama.py", "acc += g[i, j] * dw[o + j]", "acc += g[i, j] * dw[o]", SOLVERS),
    Mutant("m6", "refinable Brownian path: increments 2% too large", "sde_scales/sde/noise.py",
           "return np.ascontiguousarray(z) * np.sqrt(self.dt(self.levels))",
           "return np.ascontiguousarray(z) * np.sqrt(self.dt(self.levels)) * 1.02", SOLVERS),
    Mutant("m7", "rates: the fluctuation reading takes the variance for the standard deviation", "sde_scales/rates.py",
           "return np.std(s[ix], axis=-1, ddof=1)", "return np.var(s[ix], axis=-1, ddof=1)", RATES),
    Mutant("m8", "rates: no tolerance for next-order terms", "sde_scales/rates.py",
           "tol = float(np.max(np.maximum(g * np.abs(ends), np.abs(next_order_bias(est.x, ends)))))",
           "tol = 0.0 * float(np.max(np.maximum(g * np.abs(ends), np.abs(next_order_bias(est.x, ends)))))", RATES),
    Mutant("m9", "rates: FAIL when the lower end passes the claim minus the tolerance", "sde_scales/rates.py",
           "if lo > p + tol:", "if lo > p - tol:", RATES),
    Mutant("m10", "rates: bootstrap intervals at 50% whatever the confidence asked", "sde_scales/rates.py",
           'confidence_level=confidence, method="percentile"', 'confidence_level=0.5, method="percentile"', RATES),
    Mutant("m11", "fitting: the exponential filter decays with twice its time scale", "sde_scales/fitting/_filters.py",
           "out[i, j] = D - A * np.exp(-du / tau)", "out[i, j] = D - A * np.exp(-du / (2 * tau))", FITTING),
    Mutant("m12", "momentum law: time scale -2/ln(lambda)", "sde_scales/fitting/laws.py",
           "return -1.0 / np.log(self.lam)", "return -2.0 / np.log(self.lam)", FITTING),
    Mutant("m13", "collapse: normalised by the final loss less L0 plus 0.01", "sde_scales/analysis/collapse.py",
           "(row - L0) / (fin - L0)) for row in cv.loss]", "(row - L0) / (fin - L0 + 0.01)) for row in cv.loss]",
           COLLAPSE),
    Mutant("m14", "collapse: the seed means' noise not subtracted from Delta", "sde_scales/analysis/collapse.py",
           "np.sqrt(np.maximum(raw2 - noise_times * noise2, 0.0))", "np.sqrt(np.maximum(raw2 - 0 * noise2, 0.0))",
           COLLAPSE),
    Mutant("m15", "width model: noise eta sigma n^-beta instead of sqrt(eta) sigma n^-beta",
           "sde_scales/models/width.py", "g = np.sqrt(p[0]) * p[1]", "g = p[0] * p[1]",
           ("tests/test_theory.py", "tests/test_models.py")),
    Mutant("m16", "block streams: path_offset ignored (a split ensemble repeats its first paths)",
           "sde_scales/sde/noise.py", "first = path_offset // self.block_size", "first = 0 * path_offset // self.block_size",
           ("tests/test_solve.py", "tests/test_seeds.py")),
    Mutant("m17", "curve files: negative learning rates accepted", "sde_scales/fitting/curves.py",
           'if k == "lr" and np.any(a < 0):', 'if k == "lr" and np.any(a < -1e300):', FITTING + ("tests/test_inputs.py",)),
    Mutant("m18", "multi-power law: the Laplace weights' derivative in beta off by 0.1", "sde_scales/fitting/laws.py",
           "W0 * (z - special.digamma(beta))", "W0 * (z - special.digamma(beta) + 0.1)", FITTING),
    Mutant("m19", "trainer: the backward pass leaves the layer multiplier out of the gradient passed down",
           "sde_scales/train/model.py",
           "delta_below = self._gemm(torch.bmm, delta, w).mul_(self.mult[l]).mul_(h > 0)",
           "delta_below = self._gemm(torch.bmm, delta, w).mul_(h > 0)", TRAINER),
    Mutant("m20", "muP (SGD): the input layer's learning-rate exponent c = 1 instead of 0",
           "sde_scales/parametrization.py",
           "rules = _stack(LayerRule(F(-1, 2), F(1, 2), 0), LayerRule(0, F(1, 2), 0), LayerRule(F(1, 2), F(1, 2), 0), L)",
           "rules = _stack(LayerRule(F(-1, 2), F(1, 2), 1), LayerRule(0, F(1, 2), 0), LayerRule(F(1, 2), F(1, 2), 0), L)",
           ("tests/test_theory.py",) + TRAINER),
    Mutant("m21", "trainer's Adam: first moment m = 0.9 m + 0.2 g", "sde_scales/train/optim.py",
           "m.mul_(0.9).add_(grad, alpha=0.1)", "m.mul_(0.9).add_(grad, alpha=0.2)", TRAINER),
    Mutant("m22", "cosine schedule over 0.9 pi", "sde_scales/schedules.py", "0.5 * (1 + np.cos(np.pi * s))",
           "0.5 * (1 + np.cos(np.pi * s * 0.9))", ("tests/test_schedules.py", "tests/test_train.py")),
    Mutant("m23", "--log-ema undone with decay 0.99 beta", "sde_scales/fitting/curves.py",
           "out[1:] = (y[1:] - decay * y[:-1]) / (1.0 - decay)",
           "out[1:] = (y[1:] - 0.99 * decay * y[:-1]) / (1.0 - 0.99 * decay)",
           ("tests/test_lack_of_fit.py", "tests/test_fitting.py", "tests/test_log_text.py")),
    Mutant("m24", "collapse departures: a 2-sigma band", "sde_scales/analysis/collapse.py",
           "k = float(stats.t.isf(stats.norm.sf(3.0), dof))", "k = float(stats.t.isf(stats.norm.sf(2.0), dof))",
           COLLAPSE),
    Mutant("m25", "rates, differences reading: m_k - 0.95 m_(k+1)", "sde_scales/rates.py",
           "np.abs(m[..., :-1] - m[..., 1:])", "np.abs(m[..., :-1] - 0.95 * m[..., 1:])", RATES),
    Mutant("m26", "delay model: the ramp term of the exact step with 0.9 tau", "sde_scales/models/delay.py",
           "z[k + 1, j] = (1.0 + em1) * z[k, j] - d0 * em1 + m * (h + tau * em1)",
           "z[k + 1, j] = (1.0 + em1) * z[k, j] - d0 * em1 + m * (h + 0.9 * tau * em1)",
           ("tests/test_models.py", "tests/test_close_the_loop.py")),
    # m27 read "c[b] <= t[i]" until stop 63: equivalent, since a drop at the evaluation step adds
    # d (1 - e^0) = 0 there and is counted alike from the next row on
    Mutant("m27", "fitting's exponential filter: a drop a step before a logged row counted a row late",
           "sde_scales/fitting/_filters.py", _FILTER_LOOP.format("<"), _FILTER_LOOP.format("+ 1.0 <"), FITTING),
    Mutant("m28", "symbolic leading exponent halved", "theory/asymptotics.py",
           "p = _limit(sp.log(sp.Abs(f)) / sp.log(var), var, point)",
           "p = _limit(sp.log(sp.Abs(f)) / sp.log(var), var, point) / 2", ("tests/test_theory.py", "tests/test_verify.py")),
    Mutant("m29", "Euler-Maruyama states strong order 1/2 for additive noise too",
           "sde_scales/sde/solvers/euler_maruyama.py",
           "return 1.0 if NoiseKind.coerce(noise) is NoiseKind.ADDITIVE else self.strong_order",
           "return self.strong_order", SOLVERS),
    Mutant("m30", "width model: noise 10% too large", "sde_scales/models/width.py", "g = np.sqrt(p[0]) * p[1]",
           "g = np.sqrt(p[0]) * p[1] * 1.1", ("tests/test_theory.py", "tests/test_models.py")),
    Mutant("m31", "paired comparison of two predictions: the RMSE difference's sd halved",
           "sde_scales/fitting/compare.py", "d_sd = 2.0 * sigma * np.sqrt(kappa)", "d_sd = 1.0 * sigma * np.sqrt(kappa)",
           ("tests/test_compare.py",)),
    Mutant("m32", "comparison over curves: no Bonferroni correction of the final-loss ranges",
           "sde_scales/fitting/compare.py", "zk = float(stats.norm.ppf(1.0 - (1.0 - level) / (2 * k)))",
           "zk = float(stats.norm.ppf(1.0 - (1.0 - level) / 2))", ("tests/test_compare.py",)),
    Mutant("m33", "abc table: the input layer's fan-in term left out of r", "theory/abc.py",
           "term = 2 * rl.a + (1 if i == 0 else 0)", "term = 2 * rl.a", ("tests/test_theory.py", "tests/test_train.py")),
    Mutant("m34", "abc table: output stability needs 2 a_L + c >= 0", "theory/abc.py",
           "out_stab = 2 * last.a + c - 1", "out_stab = 2 * last.a + c", ("tests/test_theory.py", "tests/test_train.py")),
    Mutant("m35", "converge: a slope below the order allowed 0.1 beyond its noise", "sde_scales/sde/convergence.py",
           "dn, dn_fine = z * self.se, z * self.fine_se", "dn, dn_fine = z * self.se + 0.1, z * self.fine_se + 0.1",
           ("tests/test_order_verdicts.py", "tests/test_strong_order.py", "tests/test_weak_order.py")),
    Mutant("m36", "prediction bands: the parameters' variance not inflated by the residuals' correlation",
           "sde_scales/fitting/bands.py",
           "var = self.inflation * self.s2 * np.sum((proj[:, ~small] / self.sv[~small]) ** 2, axis=1)",
           "var = self.s2 * np.sum((proj[:, ~small] / self.sv[~small]) ** 2, axis=1)",
           ("tests/test_bands.py", "tests/test_fitting.py")),
    Mutant("m37", "--law auto: each leave-one-curve-out fold fits its held-out curve too",
           "sde_scales/fitting/report.py", "[(held.name, [c for j, c in enumerate(fit_curves) if j != i], held, None)",
           "[(held.name, [c for j, c in enumerate(fit_curves)], held, None)",
           ("tests/test_auto_average.py", "tests/test_auto_combination.py", "tests/test_fitting.py")),
    Mutant("m38", "--law auto with one curve: rolling origin scores the fitted head as well",
           "sde_scales/fitting/report.py", 'folds.append((f"{c.name}: fit before step {cut}, score after", [head], c, cut))',
           'folds.append((f"{c.name}: fit before step {cut}, score after", [head], c, None))',
           ("tests/test_auto_average.py", "tests/test_auto_combination.py", "tests/test_fitting.py")),
    Mutant("m39", "training evidence: a weight's displacement measured from half its initial value",
           "sde_scales/analysis/width.py", "cur = cur - first.reindex(columns=ids)",
           "cur = cur - 0.5 * first.reindex(columns=ids)", ("tests/test_width_evidence.py", "tests/test_rate_table.py")),
    Mutant("m40", "training evidence: tracked weights read without their layer multiplier",
           "sde_scales/analysis/width.py", "arr = cur.to_numpy(dtype=float) * mult", "arr = cur.to_numpy(dtype=float)",
           ("tests/test_width_evidence.py", "tests/test_rate_table.py")),
    Mutant("m41", "eta*: the parabola's vertex misplaced (d01 / curv for d01 / (2 curv))",
           "sde_scales/analysis/width.py", "vertex = (x0 + x1) / 2 - d01 / (2 * curv)", "vertex = (x0 + x1) / 2 - d01 / curv",
           ("tests/test_analysis.py", "tests/test_lr_transfer.py", "tests/test_width_evidence.py")),
    Mutant("m42", "verify's simulated separation: the two quantities swapped", "theory/checks.py",
           "exponent_difference(s.widths, s.macro, s.micro, seed=settings.seed)",
           "exponent_difference(s.widths, s.micro, s.macro, seed=settings.seed)", ("tests/test_verify.py",)),
    Mutant("m43", "training evidence at the end of training reads the step before the last",
           "sde_scales/analysis/width.py", "stp = int(logged[logged <= fraction * last].max(initial=logged.min()))",
           "stp = int(logged[logged < fraction * last].max(initial=logged.min()))",
           ("tests/test_width_evidence.py", "tests/test_rate_table.py")),
    Mutant("m44", "a logged curve's per-step learning rate read one step late", "sde_scales/fitting/curves.py",
           "lr = np.interp(k, self.step[:-1], self.lr[:-1])", "lr = np.interp(k, self.step[:-1] + 1, self.lr[:-1])",
           FITTING),
    Mutant("m45", "WSD schedule: the cooldown starts one step late", "sde_scales/schedules.py",
           "start = n - int(round(fraction * n))", "start = n - int(round(fraction * n)) + 1",
           ("tests/test_schedules.py", "tests/test_fitting.py")),
    Mutant("m46", "--log-running-mean: the meter's reset one period late", "sde_scales/fitting/curves.py",
           "b = ((t - 1) // period) * period if period > 0 else np.zeros_like(t)",
           "b = ((t - 1) // period) * period - period if period > 0 else np.zeros_like(t)",
           ("tests/test_lack_of_fit.py", "tests/test_fitting.py")),
    Mutant('m47', 'power-law kernel: half response tau0 (2^(1/a) - 1) for tau0 (2^(1/(a-1)) - 1)', 'sde_scales/kernels.py',
           'return self.tau0 * (2 ** (1 / (self.a - 1)) - 1)',
           'return self.tau0 * (2 ** (1 / self.a) - 1)', MODELS_FIT),
    Mutant('m48', 'power-law kernel: step response with exponent -a for 1 - a', 'sde_scales/kernels.py',
           '/ self.tau0) ** (1 - self.a)',
           '/ self.tau0) ** (-self.a)', MODELS_FIT),
    Mutant('m49', "power-law family: the weights' derivative in a with digamma(beta + 1)", 'sde_scales/kernels.py',
           'w * (z - special.digamma(beta))',
           'w * (z - special.digamma(beta + 1.0))', POWER_FITS),
    Mutant('m50', 'sum of exponentials: q without the 1/tau_j of each term', 'sde_scales/kernels.py',
           'v = np.sum(self.weights / self.taus * np.exp(',
           'v = np.sum(self.weights * np.exp(', MODELS_FIT),
    Mutant('m51', 'non-parametric kernel: time scale the arithmetic mean of its grid, not the geometric', 'sde_scales/kernels.py',
           'return float(np.exp(np.sum(w * np.log(self.taus)) / max(w.sum(), 1e-300)))',
           'return float(np.sum(w * self.taus) / max(w.sum(), 1e-300))', INTERVALS),
    Mutant('m52', "delay model noise: the Ornstein-Uhlenbeck transition's sd with e^(-h/tau) for e^(-2h/tau)", 'sde_scales/models/delay.py',
           'c = np.sqrt(-np.expm1(-2.0 * np.diff(times) / tau))',
           'c = np.sqrt(-np.expm1(-np.diff(times) / tau))', DELAY),
    Mutant('m53', 'delay model: loss noise scaled by the peak rate, not the current one', 'sde_scales/models/delay.py',
           '+ self.sigma_L * eta[:, None] * xi)',
           '+ self.sigma_L * self.eta_ref * xi)', DELAY),
    Mutant('m54', 'delay model: S_1 by the left rectangle rule on each linear piece', 'sde_scales/models/delay.py',
           's1[k + 1] = s1[k] + 0.5 * h * (eta_plus[k] + eta_minus[k])',
           's1[k + 1] = s1[k] + h * eta_plus[k]', DELAY),
    Mutant('m55', 'lag read off curves: the first time the response passes 0.45', 'sde_scales/models/delay.py',
           'above = resp >= 0.5',
           'above = resp >= 0.45', DELAY),
    Mutant('m56', 'NQM: gradient noise n^-beta instead of n^-2 beta', 'sde_scales/models/nqm.py',
           'noise = self.sigma**2 * float(self.n) ** (-2 * self.beta)',
           'noise = self.sigma**2 * float(self.n) ** (-self.beta)', NQM),
    Mutant('m57', 'spectral NQM: noise eta sigma^2 h per step for eta^2 sigma^2 h', 'sde_scales/models/nqm.py',
           'm += eta * eta * noise',
           'm += eta * noise', NQM),
    Mutant('m58', 'macro SDE: residual variance over S N_b, not (S - 1) N_b, degrees of freedom', 'sde_scales/analysis/macro_sde.py',
           'nu = (S - 1) * rb.shape[1] - 1',
           'nu = S * rb.shape[1] - 1', LOOP),
    Mutant('m59', 'macro SDE: sigma^2 from the transition variance with kappa h for 2 kappa h', 'sde_scales/analysis/macro_sde.py',
           'x = 2.0 * k * h',
           'x = k * h', LOOP),
    Mutant('m60', 'model-free delay: the right rectangle rule for the trapezoid', 'sde_scales/analysis/delay_width.py',
           'delta = np.sum(0.5 * (f[1:] + f[:-1]) * dt, axis=0)',
           'delta = np.sum(f[1:] * dt, axis=0)', LOOP),
    Mutant('m61', "forecast difference: the two forecasts' misses added once, not twice (sqrt 2 dropped)", 'sde_scales/fitting/forecast.py',
           'model = float(np.sqrt(2.0) * model_error(result))',
           'model = float(model_error(result))', AVERAGES),
    Mutant('m62', "mixture band: the laws' disagreement left out", 'sde_scales/fitting/average.py',
           'return np.sqrt(weighted_mean(sds ** 2, w) + weighted_mean((means - mu) ** 2, w))',
           'return np.sqrt(weighted_mean(sds ** 2, w))', AVERAGES),
    Mutant('m63', 'time-scale average: profile weights with sigma^2 for 2 sigma^2', 'sde_scales/fitting/time_scale_average.py',
           'logw = -(ssr - ssr[b]) / (2.0 * kappa * ssr[b] / best_residuals.size)',
           'logw = -(ssr - ssr[b]) / (kappa * ssr[b] / best_residuals.size)', AVERAGES),
    Mutant('m64', "non-parametric time scale's interval: the delta method's gradient without its - m", 'sde_scales/fitting/fit.py',
           'g[i] = (ln_tau[wi] - m) / (W * np.log(10.0))',
           'g[i] = ln_tau[wi] / (W * np.log(10.0))', INTERVALS),
    Mutant('m65', 'time-scale warning only beyond two decades', 'sde_scales/fitting/fit.py',
           'if 1.96 * sd > 0.5:',
           'if 1.96 * sd > 1.0:', INTERVALS),
    Mutant('m66', 'kernel weight at a grid edge: warned only above 90%', 'sde_scales/fitting/fit.py',
           'if share[edge] > 0.5:',
           'if share[edge] > 0.9:', INTERVALS),
    Mutant('m67', "noise level: the successive differences' MAD not divided by sqrt 2", 'sde_scales/fitting/fit.py',
           'robust = float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2))',
           'robust = float(1.4826 * np.median(np.abs(d - np.median(d))))', FITTING),
    Mutant('m68', 'abc symmetry: c shifted by theta for SGD (2 theta)', 'sde_scales/parametrization.py',
           'new.append(LayerRule(r.a + th, r.b - th, r.c - k * th))',
           'new.append(LayerRule(r.a + th, r.b - th, r.c - th))', TRAINER_THEORY),
    Mutant('m69', 'muP with Adam: hidden learning-rate exponent 1/2 for 1', 'sde_scales/parametrization.py',
           'LayerRule(0, F(1, 2), 1)',
           'LayerRule(0, F(1, 2), F(1, 2))', TRAINER_THEORY),
    Mutant('m70', 'effective number of time scales: inverse Simpson for exp(entropy)', 'sde_scales/fitting/time_scale_average.py',
           'return float(np.exp(-(w * np.log(w)).sum()))',
           'return float(1.0 / (w ** 2).sum())', AVERAGES),
    Mutant('m71', 'sweep resume: a stack with any finished run skipped whole', 'sde_scales/train/sweep.py',
           'if all(c.run_id in finished for c in members):',
           'if any(c.run_id in finished for c in members):', TRAINER),
    Mutant('m72', 'run id: fields added later left out even where set', 'sde_scales/train/trainer.py',
           'if d[k] == default:\n                d.pop(k)',
           'if True:\n                d.pop(k)', TRAINER),
    Mutant('m73', "rates: the quadratic's local slopes b + c u for b + 2 c u", 'sde_scales/rates.py',
           's_min, s_max = b + 2 * c * u.min(), b + 2 * c * u.max()',
           's_min, s_max = b + c * u.min(), b + c * u.max()', RATES),
    Mutant('m74', 'rates: Richardson extrapolation divided by r for r - 1', 'sde_scales/rates.py',
           'return (lambda m: (r * m[..., -1:] - m[..., -2:-1]) / (r - 1))',
           'return (lambda m: (r * m[..., -1:] - m[..., -2:-1]) / r)', RATES),
    Mutant('m75', "rates: a standard deviation's standard error sd / sqrt(R - 1) for sd / sqrt(2 (R - 1))", 'sde_scales/rates.py',
           'return np.array([v / np.sqrt(2 * (s.shape[-1] - 1)) for v, s in zip(sd, samples)])',
           'return np.array([v / np.sqrt(s.shape[-1] - 1) for v, s in zip(sd, samples)])', RATES),
    Mutant('m76', "rates: the widths' replicas resampled together (paired) though independent", 'sde_scales/rates.py',
           'statistic, vectorized=True, paired=False,',
           'statistic, vectorized=True, paired=True,', RATES),
    Mutant('m77', "rates: a mean's standard error sd / R for sd / sqrt(R)", 'sde_scales/rates.py',
           'out.append(r.std(ddof=1) / np.sqrt(r.size))',
           'out.append(r.std(ddof=1) / r.size)', RATES),
    Mutant('m78', "converge: the limit's extrapolation with a next order of 1 for 1/2", 'sde_scales/sde/convergence.py',
           'rj = 2.0 ** (-0.5 * j)',
           'rj = 2.0 ** (-1.0 * j)', SOLVERS),
    Mutant('m79', "converge: the levels' errors resampled apart though they share paths", 'sde_scales/sde/convergence.py',
           'res = stats.bootstrap(data, stat, paired=True,',
           'res = stats.bootstrap(data, stat, paired=False,', SOLVERS),
    Mutant('m80', 'step schedule: each drop one step late', 'sde_scales/schedules.py',
           'np.searchsorted(ms, k, side="right")',
           'np.searchsorted(ms, k, side="left")', SCHEDULES),
    Mutant('m81', 'WSD schedule: the sqrt cooldown as s^2', 'sde_scales/schedules.py',
           'shape = s if decay == "linear" else np.sqrt(s)',
           'shape = s if decay == "linear" else s ** 2', SCHEDULES),
    Mutant('m82', 'warmup from 0 (k / w) instead of (k + 1) / (w + 1)', 'sde_scales/schedules.py',
           'lr[:w] = lr[w] * (np.arange(1, w + 1) / (w + 1))',
           'lr[:w] = lr[w] * (np.arange(0, w) / w)', SCHEDULES),
    Mutant('m83', "trainer's Adam: the second moment not bias-corrected", 'sde_scales/train/optim.py',
           'vh = v / (1 - 0.999**step)',
           'vh = v', TRAINER),
    Mutant('m84', "paired comparison: the block means' second differences' variance over 2 for 6", 'sde_scales/fitting/compare.py',
           '** 2 / 6.0',
           '** 2 / 2.0', COMPARE),
    Mutant('m85', 'training evidence: the fraction of the way to the plateau over L(0) for L(0) - L_inf', 'sde_scales/analysis/width.py',
           'frac = (y[0] - y[-1]) / (y[0] - linf) if y[0] > linf else np.nan',
           'frac = (y[0] - y[-1]) / y[0] if y[0] > linf else np.nan', EVIDENCE),
    Mutant('m86', "eta*: at the grid's edge only at its largest rate", 'sde_scales/analysis/grid.py',
           'best["at_grid_edge"] = (best.eta_star == best.lr_min) | (best.eta_star == best.lr_max)',
           'best["at_grid_edge"] = best.eta_star == best.lr_max', ANALYSIS),
    Mutant('m87', 'eta*: settled from the last step it changed, not the step after', 'sde_scales/analysis/grid.py',
           'first = s[changed[-1] + 1] if changed.size else s[0]',
           'first = s[changed[-1]] if changed.size else s[0]', ANALYSIS),
    Mutant('m88', "collapse: a seed mean's noise variance over S - 1 for S", 'sde_scales/analysis/collapse.py',
           'return e.var(axis=0, ddof=1) / S\n',
           'return e.var(axis=0, ddof=1) / (S - 1)\n', COLLAPSE),
    Mutant('m89', "exact width moments: the coordinates' covariance without its -D/n", 'theory/meanfield.py',
           'cov_ij = var_M - D / n',
           'cov_ij = var_M', MEANFIELD),
    Mutant('m90', 'exact width moments: Var Q with tr(Sigma^2) for 2 tr(Sigma^2)', 'theory/meanfield.py',
           'var_Q = (2 * tr_sigma2 + 4 * mean**2 * one_sigma_one) / n**2',
           'var_Q = (tr_sigma2 + 4 * mean**2 * one_sigma_one) / n**2', MEANFIELD),
    Mutant('m91', 'momentum law: the reported C is C_eff / (1 - lambda) for C_eff (1 - lambda)', 'sde_scales/fitting/laws.py',
           'return {"lambda": lam, "C": float(theta[3] * (1 - lam))}',
           'return {"lambda": lam, "C": float(theta[3] / (1 - lam))}', FITTING),
    Mutant('m92', 'momentum law: half response tau for tau ln 2', 'sde_scales/fitting/laws.py',
           'return float(self._tau(theta) * np.log(2))',
           'return float(self._tau(theta))', FITTING),
    Mutant('m93', 'non-parametric kernel law: amplitude the largest weight, not their sum', 'sde_scales/fitting/laws.py',
           'return float(theta[3]) if self.family.has_amplitude else float(np.sum(self.kernel_params(theta)))',
           'return float(theta[3]) if self.family.has_amplitude else float(np.max(self.kernel_params(theta)))', FITTING),
    Mutant('m94', "moving average: a window's upper row excludes a step exactly half a window on", 'sde_scales/fitting/curves.py',
           'hi = np.searchsorted(self.step, self.step + half, side="right")',
           'hi = np.searchsorted(self.step, self.step + half, side="left")', FITTING),
    Mutant('m95', "a curve's logging interval: the smallest, not the most common", 'sde_scales/fitting/curves.py',
           'return int(vals[np.argmax(counts)])',
           'return int(vals[0])', FITTING),
    Mutant('m96', 'cooldown rows: from the last row at peak, not the row after it', 'sde_scales/fitting/curves.py',
           'mask[last_peak + 1:] = True',
           'mask[last_peak:] = True', FITTING),
    Mutant('m97', 'schedule spec: exponential decay p (e/p)^sqrt(s) for p (e/p)^s', 'sde_scales/fitting/curves.py',
           'd = p * (e / p) ** s',
           'd = p * (e / p) ** np.sqrt(s)', SPEC),
    Mutant('m98', 'schedule spec: the cosine warmup as a quarter sine', 'sde_scales/fitting/curves.py',
           'w = u if self.warmup_shape == "linear" else 0.5 * (1 - np.cos(np.pi * u))',
           'w = u if self.warmup_shape == "linear" else np.sin(0.5 * np.pi * u)', SPEC),
    Mutant('m99', 'symbolic Theta: a zero limit of f/g accepted', 'theory/asymptotics.py',
           'ok = bool(lim.is_finite) and bool(lim != 0)',
           'ok = bool(lim.is_finite)', SYMBOLIC),
    Mutant('m100', 'symbolic O: a zero limit of |f/g| refused', 'theory/asymptotics.py',
           'ok = bool(lim.is_finite)\n    return AsymptoticResult(ok, True, stmt, lim, f"lim |f/g| = {lim}")',
           'ok = bool(lim.is_finite) and bool(lim != 0)\n    return AsymptoticResult(ok, True, stmt, lim, f"lim |f/g| = {lim}")', SYMBOLIC),
    Mutant('m101', 'abc table (SGD): feature learning in every layer read off the last hidden layer alone', 'theory/abc.py',
           'fl_all = stable and all(x == 0 for x in r_l)',
           'fl_all = stable and r_l[-1] == 0', TRAINER_THEORY),
    Mutant('m102', "abc table (Adam): a hidden layer's change without what it receives from below", 'theory/abc.py',
           'feat.append(max(1 - r.a - r.c, HALF - r.a - r.b + feat[-1]))',
           'feat.append(1 - r.a - r.c)', TRAINER_THEORY),
    Mutant('m103', "step-stability probe: the explicit step's bound 4 Re/|lambda|^2 for 2 Re/|lambda|^2", 'sde_scales/sde/probes.py',
           'bound = 2 * np.abs(lam.real) / np.abs(lam) ** 2',
           'bound = 4 * np.abs(lam.real) / np.abs(lam) ** 2', SOLVERS),
    Mutant('m104', 'rate table, mean reading of several components: the first component for their mean', 'sde_scales/rate_table.py',
           'stat = (lambda s: s.mean(axis=-1).mean(axis=0)) if several else (lambda s: s.mean(axis=-1))',
           'stat = (lambda s: s.mean(axis=-1)[0]) if several else (lambda s: s.mean(axis=-1))', RATES),
    Mutant('m105', "printed logs: '1,00' read as a thousands-separated number", 'sde_scales/fitting/text_logs.py',
           '_THOUSANDS = re.compile(r"[-+]?[1-9]\\d{0,2}(?:,\\d{3})+")',
           '_THOUSANDS = re.compile(r"[-+]?[1-9]\\d{0,2}(?:,\\d{2,3})+")', TEXT_LOGS),
    Mutant('m106', 'WSD schedule spec: the sqrt cooldown as linear', 'sde_scales/fitting/curves.py',
           'd = p - (p - e) * np.sqrt(s)',
           'd = p - (p - e) * s', SPEC),
    Mutant('m107', 'verify: a symbolic O(n^p) claim PASSes only below p (an equal exponent FAILs)', 'theory/verify.py',
           'return (Verdict.PASS if bool(e <= p) else Verdict.FAIL), head + sres.detail',
           'return (Verdict.PASS if bool(e < p) else Verdict.FAIL), head + sres.detail', GATE),
    Mutant('m108', 'verify: a derivation that gives only a bound PASSes a Theta claim', 'theory/verify.py',
           'if sres.tight is False:',
           'if sres.tight is None:', GATE),
    Mutant('m109', 'verify: a quantity that is exactly zero PASSes a Theta claim', 'theory/verify.py',
           'ok = claim.kind is RateKind.BIG_O',
           'ok = True', GATE),
    Mutant('m110', "verify: a measurement's own INCONCLUSIVE (a precondition not met) does not override the rate's verdict", 'theory/verify.py',
           'reason = f"{m.inconclusive}; the rate alone would give {v.value}: {reason}"\n        v = Verdict.INCONCLUSIVE',
           'reason = f"{m.inconclusive}; the rate alone would give {v.value}: {reason}"', GATE),
    Mutant('m111', "verify: a measurement's own FAIL (extra_fail) is reported in the reason but not in the verdict", 'theory/verify.py',
           'v, reason = Verdict.FAIL, f"{m.extra_fail}; rate: {reason}"',
           'reason = f"{m.extra_fail}; rate: {reason}"', GATE),
    Mutant('m112', 'verify --strict: exit 1 only when no claim holds', 'theory/verify.py',
           'if args.strict and len(held) < len(claims):',
           'if args.strict and not held:', GATE),
    Mutant('m113', 'verify: a claim holds when any primary row PASSes', 'theory/verify.py',
           'return bool(prim) and all(r.verdict is Verdict.PASS for r in prim)',
           'return bool(prim) and any(r.verdict is Verdict.PASS for r in prim)', GATE),
    Mutant('m114', 'converge --strict: exit 1 only when both orders miss', 'sde_scales/cli.py',
           'return 1 if args.strict and any(v is not Verdict.PASS for v in verdicts) else 0',
           'return 1 if args.strict and all(v is not Verdict.PASS for v in verdicts) else 0', ORDERS),
    Mutant('m115', 'coordcheck --strict: exit 1 only on FAIL (INCONCLUSIVE exits 0)', 'sde_scales/cli.py',
           'return 1 if args.strict and cc.overall is not Verdict.PASS else 0',
           'return 1 if args.strict and cc.overall is Verdict.FAIL else 0', COORD),
    Mutant('m116', 'rate --strict: exit 1 only on FAIL', 'sde_scales/rate_table.py',
           'return 1 if args.strict and check.verdict.verdict is not Verdict.PASS else 0',
           'return 1 if args.strict and check.verdict.verdict is Verdict.FAIL else 0', RATE_TABLE),
    Mutant('m117', 'collapse --strict: exit 1 only on FAIL', 'sde_scales/analysis/collapse_table.py',
           'return 1 if args.strict and res.verdict is not Verdict.PASS else 0',
           'return 1 if args.strict and res.verdict is Verdict.FAIL else 0', COLLAPSE_TABLE),
    Mutant('m118', 'fit-delay --strict: an optimiser stopped at its limit is not a failure', 'sde_scales/fitting/report.py',
           '    if not c["converged"]:\n        out.append(',
           '    if c["converged"] is None:\n        out.append(', STRICT_FIT),
    Mutant('m119', 'fit-delay --strict: a prediction without a band is not a failure (misspelt key)', 'sde_scales/fitting/report.py',
           '    if c["no_band"]:',
           '    if c.get("no_bands"):', STRICT_FIT),
    Mutant('m120', 'cli: bad input exits 1 instead of 2', 'sde_scales/cli.py',
           'print(f"sde-scales: error: {exc}", file=sys.stderr)\n            return 2',
           'print(f"sde-scales: error: {exc}", file=sys.stderr)\n            return 1', CLI_INPUTS),
    Mutant('m121', 'coordcheck: a layer with one FAIL and one PASS is INCONCLUSIVE overall', 'sde_scales/train/coordcheck.py',
           'return Verdict.FAIL if Verdict.FAIL in vs else Verdict.INCONCLUSIVE',
           'return Verdict.INCONCLUSIVE', COORD),
    Mutant('m122', 'coordcheck: a layer PASSes when either its size or its change PASSes', 'sde_scales/train/coordcheck.py',
           'ok = va.verdict is Verdict.PASS and vd.verdict is Verdict.PASS',
           'ok = va.verdict is Verdict.PASS or vd.verdict is Verdict.PASS', COORD),
    Mutant('m123', 'strict JSON: non-finite floats written as they are (json.dumps then refuses them)', 'sde_scales/atomic.py',
           'return obj if math.isfinite(obj) else None',
           'return obj', JSON_OUT),
    Mutant('m124', 'atomic writes: the temporary file left behind when the writer fails', 'sde_scales/atomic.py',
           '    finally:\n        tmp.unlink(missing_ok=True)',
           '    finally:\n        pass', ATOMIC),
    Mutant('m125', "atomic writes: files keep mkstemp's 0o600", 'sde_scales/atomic.py',
           '        os.chmod(tmp, file_mode(path))\n',
           '', ATOMIC),
    Mutant('m126', 'run store: a run that checks out is written again (results overwritten)', 'sde_scales/train/store.py',
           '                self._check_row(rid)\n                return False',
           '                self._check_row(rid)', STORE),
    Mutant('m127', 'run store: the content checksum is not compared', 'sde_scales/train/store.py',
           'if got != want.decode(errors="replace"):',
           'if got is None:', STORE),
    Mutant('m128', 'run store: the run id is not recomputed from the stored configuration', 'sde_scales/train/store.py',
           'if again != rid:',
           'if again is None:', STORE),
    Mutant('m129', 'run store: a missing trajectory file looked for in runs/', 'sde_scales/train/store.py',
           'if not (self.root / "trajectories" / f"{rid}.parquet").exists():\n            raise DataFileError(f"{run_path}: its trajectory file is missing")',
           'if not (self.root / "runs" / f"{rid}.parquet").exists():\n            raise DataFileError(f"{run_path}: its trajectory file is missing")', STORE),
    Mutant('m130', "seeds: a purpose's keys ignored (every width shares one stream)", 'sde_scales/seeds.py',
           'spawn_key=tuple(top.spawn_key) + (PURPOSES[purpose], *extra)',
           'spawn_key=tuple(top.spawn_key) + (PURPOSES[purpose],)', SEEDS),
    Mutant('m131', "seeds: a child of a SeedSequence child drops its parent's spawn key", 'sde_scales/seeds.py',
           'spawn_key=tuple(top.spawn_key) + (PURPOSES[purpose], *extra)',
           'spawn_key=(PURPOSES[purpose], *extra)', SEEDS),
    Mutant('m132', "SDE loop: a NaN state passes the group's blow-up test (acc >= blowup is False for NaN)", 'sde_scales/sde/_loop.py',
           'if not acc < blowup:',
           'if acc >= blowup:', ENGINE),
    Mutant('m133', 'SDE loop: a NaN entry passes the per-path scan', 'sde_scales/sde/_loop.py',
           'if not abs(x[i, c]) < blowup:',
           'if abs(x[i, c]) >= blowup:', ENGINE),
    Mutant('m134', 'solve: BlowUpError only when every path blew up', 'sde_scales/sde/solve.py',
           'if status.any() and on_blowup == "raise":',
           'if status.all() and on_blowup == "raise":', ENGINE),
    Mutant('m135', "SDE loop: a dead path's saved states keep its last values instead of NaN", 'sde_scales/sde/_loop.py',
           'out[s, lo + i, c] = x[i, c] if alive[i] else np.nan',
           'out[s, lo + i, c] = x[i, c]', ENGINE),
    Mutant('m136', 'solve: a dt that does not divide the time span is rounded in silence', 'sde_scales/sde/solve.py',
           'if n_int < 1 or abs(n - n_int) > 1e-9 * max(1.0, n):',
           'if n_int < 1:', ENGINE),
    Mutant('m137', 'test problems: the OU variance relaxes at theta, not 2 theta', 'sde_scales/sde/testproblems.py',
           'return sigma**2 / (2 * theta) * (1 - np.exp(-2 * theta * T_))',
           'return sigma**2 / (2 * theta) * (1 - np.exp(-theta * T_))', SOLVERS),
    Mutant('m138', 'test problems: the GBM second moment with sigma^2 / 2', 'sde_scales/sde/testproblems.py',
           'second_moment=lambda T_: np.array([x0**2 * np.exp((2 * mu + sigma**2) * T_)]),',
           'second_moment=lambda T_: np.array([x0**2 * np.exp((2 * mu + 0.5 * sigma**2) * T_)]),', SOLVERS),
    Mutant('m139', "test problems: the commuting linear system's exact solution with the Ito correction dropped", 'sde_scales/sde/testproblems.py',
           'C = A - 0.5 * (B1 @ B1 + B2 @ B2)',
           'C = A', SOLVERS),
    Mutant('m140', 'validation: a fractional width or count read as whole', 'sde_scales/validation.py',
           'return bool(np.isfinite(value) and value >= low and float(value) == int(value))',
           'return bool(np.isfinite(value) and value >= low)', INPUTS),
    Mutant('m141', "validation: learning rates 1e-9 and 2e-9 looked up as the same (numpy's default atol)", 'sde_scales/validation.py',
           'return np.isclose(np.asarray(values, dtype=float), float(value), rtol=1e-6, atol=0.0)',
           'return np.isclose(np.asarray(values, dtype=float), float(value), rtol=1e-6)', INPUTS),
    Mutant('m142', 'validation: magnitudes below 1e-150 accepted', 'sde_scales/validation.py',
           'return (a > MAGNITUDE_LIMITS[1]) | ((a > 0) & (a < MAGNITUDE_LIMITS[0]))',
           'return a > MAGNITUDE_LIMITS[1]', INPUTS),
    Mutant('m143', 'verify: one unknown claim id is looked up anyway (a KeyError traceback)', 'theory/verify.py',
           '    if missing:\n        raise InvalidArgumentError(f"unknown claim id(s)',
           '    if len(missing) > 1:\n        raise InvalidArgumentError(f"unknown claim id(s)', GATE),
    Mutant('m144', "seeds: a negative seed passed to numpy (its ValueError, not the toolkit's)", 'sde_scales/seeds.py',
           'or not isinstance(seed, (int, np.integer)) or seed < 0:',
           'or not isinstance(seed, (int, np.integer)):', SEEDS),
    Mutant('m145', 'CIFAR-10 reader: a label of 10 accepted (off by one)', 'sde_scales/train/data.py',
           'if y.max() > 9:',
           'if y.max() > 10:', ("tests/test_train.py",)),
    # fourth round: the modules no earlier round touched (held-out protocols and their cache, curves from a run
    # store, worker pools, TensorBoard logs, the language-model trainer, the trainer's logged metrics, the
    # figures, the loop cache, the paper's derivations) and the metrics every held-out table reports
    Mutant('m146', 'score: the final loss averaged over the last 10% of rows, not 5%', 'sde_scales/fitting/fit.py',
           'return max(1, int(round(0.05 * n_rows)))',
           'return max(1, int(round(0.10 * n_rows)))', SCORE),
    Mutant('m147', 'score: the RMSE against the raw loss instead of its centred moving average', 'sde_scales/fitting/fit.py',
           'e = (pred - target)[keep]',
           'e = (pred - curve.loss)[keep]', SCORE),
    Mutant('m148', "score: the stable phase's RMSE takes the cooldown rows too", 'sde_scales/fitting/fit.py',
           '"stable_rmse": _rms((pred - target)[keep & ~cool]) if',
           '"stable_rmse": _rms((pred - target)[keep]) if', SCORE),
    Mutant('m149', "final-loss noise: a rounded tail's standard error q/12 instead of q/sqrt(12)", 'sde_scales/fitting/fit.py',
           'np.sqrt(n_last), loss_resolution(loss) / np.sqrt(12.0)))',
           'np.sqrt(n_last), loss_resolution(loss) / 12.0))', SCORE),
    Mutant('m150', 'score: R^2 as 1 - ratio instead of 1 - ratio^2', 'sde_scales/fitting/fit.py',
           'return float(1 - ratio * ratio) if ratio < 1e150',
           'return float(1 - ratio) if ratio < 1e150', SCORE),
    Mutant('m151', "score: the final error's z over the larger of its two standard deviations, not their root sum of squares",
           'sde_scales/fitting/fit.py',
           'tot = None if sd is None or obs is None else float(np.hypot(sd, obs))',
           'tot = None if sd is None or obs is None else float(max(sd, obs))', SCORE),
    Mutant('m152', "protocols: one fit reused by every split whose fitted curves start with the same curve",
           'sde_scales/fitting/protocols.py',
           'key = tuple(c.name for c in fitted)\n        if key not in fits:',
           'key = tuple(c.name for c in fitted[:1])\n        if key not in fits:', PROTOCOLS),
    Mutant('m153', "protocols: a held-out curve fitted under its own name is let through", 'sde_scales/fitting/protocols.py',
           'if c.name == held.name or (np.array_equal',
           'if c.name == held.name and (np.array_equal', PROTOCOLS),
    Mutant('m154', "protocol table: the mean of the signed final errors reported as the mean |final error|",
           'sde_scales/fitting/protocols.py',
           '"mean_abs_final_err": float(np.mean([abs(p["final_loss_err"]) for p in per])),',
           '"mean_abs_final_err": float(abs(np.mean([p["final_loss_err"] for p in per]))),', PROTOCOLS),
    Mutant('m155', "protocol cache: a curve's key leaves its losses out (an edited curve reads a stale result)",
           'sde_scales/fitting/protocol_cache.py',
           'for a in (c.step, c.lr, c.loss):', 'for a in (c.step, c.lr):', PCACHE),
    Mutant('m156', "protocol cache: the key leaves the held-out curves out", 'sde_scales/fitting/protocol_cache.py',
           'h.update(b"|held:" + _curve_digest(held).encode())', 'h.update(b"|held:")', PCACHE),
    Mutant('m157', "curves from a run store: the per-step rate read one step late", 'sde_scales/fitting/stores.py',
           'return np.concatenate([sched, sched[-1:]])', 'return np.concatenate([sched[:1], sched])', STORE_CURVES),
    Mutant('m158', "curves from a run store: diverged runs averaged in", 'sde_scales/fitting/stores.py',
           'runs = runs[runs.status == "finished"]', 'runs = runs[runs.status != "running"]', STORE_CURVES),
    Mutant('m159', "curves from a run store: the seed-mean curve is the first seed's", 'sde_scales/fitting/stores.py',
           'np.asarray(values).mean(axis=0), name=name,', 'np.asarray(values)[0], name=name,', STORE_CURVES),
    Mutant('m160', "worker pool: results handed back in submission order, not to their own tasks",
           'sde_scales/fitting/tasks.py',
           'return {tasks[i][0]: r for i, r in zip(order, out)}',
           'return {tasks[i][0]: r for i, r in zip(range(len(tasks)), out)}', TASKS),
    Mutant('m161', "TensorBoard logs: an event logged again at the last step is appended, not a restart",
           'sde_scales/fitting/event_files.py',
           'if kept and step <= kept[-1][0]:', 'if kept and step < kept[-1][0]:', EVENTS),
    Mutant('m162', "TensorBoard logs: a damaged last record read as the file's clean end", 'sde_scales/fitting/event_files.py',
           'if n_read < n_frames:', 'if n_read < n_frames - 1:', EVENTS),
    Mutant('m163', "language-model family: every update draws the same windows (the update left out of the seed)",
           'sde_scales/train/lm.py',
           'np.random.SeedSequence([int(seed), int(step)])', 'np.random.SeedSequence([int(seed)])', LM),
    Mutant('m164', "language-model family: a branch leaves the trunk one update late", 'sde_scales/train/lm.py',
           'leave = {k: (int(np.flatnonzero(scheds[k] != trunk)[0])',
           'leave = {k: (int(np.flatnonzero(scheds[k] != trunk)[0]) + 1', LM),
    Mutant('m165', "language-model family: the logged rate is the one of the update after the logged step",
           'sde_scales/train/lm.py',
           '"lr": sched[logged_steps], "schedule": sched,', '"lr": sched[np.minimum(logged_steps + 1, n)], "schedule": sched,',
           LM),
    Mutant('m166', "trainer: the logged train loss averages every update since the start, not since the last log",
           'sde_scales/train/trainer.py', '            loss_acc.zero_()\n', '            loss_acc.mul_(1.0)\n',
           TRAINER_LOG),
    Mutant('m167', "trainer: the activation RMS logged as a mean square", 'sde_scales/train/trainer.py',
           'act[l, a:b] = h.pow(2).mean(dim=(1, 2)).sqrt().cpu().numpy()',
           'act[l, a:b] = h.pow(2).mean(dim=(1, 2)).cpu().numpy()', TRAINER_LOG),
    Mutant('m168', "trainer: the total evaluation gradient norm is its largest layer's", 'sde_scales/train/trainer.py',
           'put(k, step, "eval_grad_norm", -1, math.sqrt(egn[:, k].sum()))',
           'put(k, step, "eval_grad_norm", -1, math.sqrt(egn[:, k].max()))', TRAINER_LOG),
    Mutant('m169', "trainer: a member whose last update broke it is reported finished", 'sde_scales/train/trainer.py',
           'if div_steps[k] == 0 and not (math.isfinite(last["dist2"]) and last["eval_loss"] < limits[k]):',
           'if div_steps[k] == 0 and not math.isfinite(last["dist2"]):', TRAINER_LOG),
    Mutant('m170', "rate plot: the predicted slope drawn with the opposite sign", 'sde_scales/plots.py',
           'ax.plot(xx, np.exp(ly0 + predicted * (np.log(xx) - lx0)), "--",',
           'ax.plot(xx, np.exp(ly0 - predicted * (np.log(xx) - lx0)), "--",', PLOTS),
    Mutant('m171', "convergence plot: the claimed order's line drawn at half the order", 'sde_scales/plots.py',
           'ax.plot(xx, e[k] * (xx / h[k]) ** p, "--",', 'ax.plot(xx, e[k] * (xx / h[k]) ** (p / 2), "--",', PLOTS),
    Mutant('m172', "law comparison figure: the prediction's error bar one standard deviation, labelled 1.96",
           'sde_scales/plots.py',
           'band = 1.96 * float(np.mean(sds)) if sds else 0.0', 'band = float(np.mean(sds)) if sds else 0.0', PLOTS),
    Mutant('m173', "loop cache: a closure's values left out of the fingerprint (a stale loop for new constants)",
           'sde_scales/sde/_cache.py',
           '_fp(cell.cell_contents, h, seen, f"{where} closure variable {name!r}")',
           'h.update(name.encode())', LOOP_CACHE),
    Mutant('m174', "loop cache: an array's bytes left out of the fingerprint (its shape only)", 'sde_scales/sde/_cache.py',
           'h.update(a.tobytes() if a.dtype != object else b"")', 'h.update(b"")', LOOP_CACHE),
    Mutant('m175', "Lemma 4.7's derivation: sqrt(d) sqrt(n) read as sqrt(d) n", 'theory/paper.py',
           'expr = L * sp.sqrt(d) * sp.sqrt(n)', 'expr = L * sp.sqrt(d) * n', GATE),
    Mutant('m176', "the delay claim's derivation: the lag where the response reaches 1/e, not 1/2", 'theory/paper.py',
           'return sp.solve(sp.Eq(1 - sp.exp(-u / tau), HALF), u)[0]',
           'return sp.solve(sp.Eq(1 - sp.exp(-u / tau), 1 - sp.exp(-1)), u)[0]', GATE),
    Mutant('m177', "tables: a row with no run label let through", 'sde_scales/tables.py',
           'missing = df[name].isna().to_numpy()\n    if missing.any():',
           'missing = df[name].isna().to_numpy()\n    if missing.all():', TABLES),
    Mutant('m178', 'noise level: the MAD of successive differences not divided by sqrt 2', 'sde_scales/fitting/fit.py',
           'robust = float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2))',
           'robust = float(1.4826 * np.median(np.abs(d - np.median(d))))', FIT_CHECKS),
    Mutant('m179', 'fits: a parameter within 1e-6 of its upper bound not called on it', 'sde_scales/fitting/bands.py',
           'return v >= hi - 1e-6 * max(unit, abs(hi))', 'return v >= hi', FIT_CHECKS),
    Mutant('m180', "non-parametric kernel: the grid-edge warning only past 90% of the weight", 'sde_scales/fitting/fit.py',
           'if share[edge] > 0.5:', 'if share[edge] > 0.9:', FIT_CHECKS),
    Mutant('m181', 'lack of fit: residuals not clipped at 3 sigma (one spike fails the test)', 'sde_scales/fitting/fit.py',
           'clipped = np.clip(residual, -3 * sigma, 3 * sigma)', 'clipped = residual', FIT_CHECKS),
    Mutant('m182', "lack of fit: one curve's p-value compared with the level, not the level over the curves' number",
           'sde_scales/fitting/fit.py',
           'return pooled < LACK_OF_FIT_P or any(p < LACK_OF_FIT_P / len(done) for p in done)',
           'return pooled < LACK_OF_FIT_P or any(p < LACK_OF_FIT_P for p in done)', FIT_CHECKS),
    Mutant('m183', "lack of fit: the law's misfit RMS keeps the averaged noise's sigma^2 / m", 'sde_scales/fitting/fit.py',
           'misfit_rms=float(np.sqrt(max(0.0, np.mean(bm ** 2) - sigma ** 2 / m))),',
           'misfit_rms=float(np.sqrt(max(0.0, np.mean(bm ** 2)))),', FIT_CHECKS),
)


def check_applies(m: Mutant, root: Path = ROOT) -> None:
    """Raise ValueError unless ``m.old`` occurs exactly once in its file and the tests exist."""
    text = (root / m.path).read_text()
    if text.count(m.old) != 1:
        raise ValueError(f"{m.key}: the text to replace occurs {text.count(m.old)} times in {m.path}; update the "
                         f"mutant to the code")
    missing = [t for t in m.tests if not (root / t).exists()]
    if missing:
        raise ValueError(f"{m.key}: no test file {missing}")


def _copy_tree(dest: Path) -> None:
    """The tracked files under ``dest``, and ``../shared`` beside it as a link: tests that read the
    shared loss curves find them as in the checkout (without it they failed in every copy, and a
    mutant was counted KILLED by a test that fails on the unmutated code too)."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    shared = ROOT.parent / "shared"
    if shared.is_dir() and not (dest.parent / "shared").exists():
        (dest.parent / "shared").symlink_to(shared, target_is_directory=True)


@contextlib.contextmanager
def _copy(prefix: str):
    """A temporary folder holding a copy of the tracked tree (``_copy_tree``): yields (tree, folder)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        tree = Path(tmp) / "tree"
        _copy_tree(tree)
        yield tree, Path(tmp)


def _pytest(tree: Path, tmp: Path, tests, workers: int, timeout: float, stop_first: bool):
    """Run ``tests`` in the copy ``tree`` (imported through PYTHONPATH, compiled loops cached under ``tmp``)."""
    env = dict(os.environ, PYTHONPATH=str(tree), SDE_SCALES_CACHE_DIR=str(tmp / "loops"),
               NUMBA_CACHE_DIR=str(tmp / "numba"))
    cmd = [sys.executable, "-m", "pytest", "-q", *(["-x"] if stop_first else []), "-p", "no:warnings", "-p",
           "no:cacheprovider", "-n", str(workers), *tests]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    lines = r.stdout.splitlines()
    failed = [ln.split(" - ")[0].removeprefix("FAILED ").removeprefix("ERROR ") for ln in lines
              if ln.startswith(("FAILED", "ERROR"))]
    summary = next((ln for ln in reversed(lines) if " in " in ln and ("passed" in ln or "failed" in ln)), "")
    return r.returncode, failed, summary.strip("= "), time.perf_counter() - t0


def run_control(tests, workers: int = 2, timeout: float = 3600.0) -> dict:
    """The control: ``tests`` on an unmutated copy, every one run (no ``-x``). A mutant is judged
    only where its tests pass there; a test that fails on the copy itself would kill every mutant."""
    with _copy("mutant-control-") as (tree, tmp):
        rc, failed, summary, seconds = _pytest(tree, tmp, sorted(set(tests)), workers, timeout, False)
    return {"returncode": rc, "failed": failed, "summary": summary, "seconds": round(seconds, 1)}


def run_mutant(m: Mutant, workers: int = 2, timeout: float = 1800.0) -> dict:
    """Apply ``m`` to a copy of the tracked tree and run its tests there; the outcome as a dict."""
    check_applies(m)
    with _copy(f"mutant-{m.key}-") as (tree, tmp):
        target = tree / m.path
        target.write_text(target.read_text().replace(m.old, m.new))
        rc, failed, summary, seconds = _pytest(tree, tmp, m.tests, workers, timeout, True)
    if rc == 0:
        outcome = "SURVIVED"
    elif failed or rc == 1:  # pytest-xdist ends a -x run as interrupted (2) after the first failure
        outcome = "KILLED"
    else:
        outcome = "ERROR"  # collection errors, a broken copy: not a verdict on the tests
    return {**asdict(m), "outcome": outcome, "caught_by": failed, "summary": summary, "seconds": round(seconds, 1),
            "returncode": rc}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See the module docstring.")
    ap.add_argument("--only", nargs="+", metavar="KEY", help="run these mutants (m1 m7 ...)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--workers", type=int, default=2, help="pytest-xdist workers per run (default 2)")
    ap.add_argument("--json", metavar="PATH", help="write the outcomes as JSON")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a mutant survives")
    ap.add_argument("--no-control", action="store_true",
                    help="skip the control run (the chosen mutants' tests on the unmutated copy, which must pass)")
    args = ap.parse_args(argv)
    known = {m.key: m for m in MUTANTS}
    bad = [k for k in args.only or [] if k not in known]
    if bad:
        print(f"mutants.py: error: unknown mutant(s) {bad}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    chosen = [known[k] for k in args.only] if args.only else list(MUTANTS)
    if args.list:
        for m in chosen:
            print(f"{m.key:4s} {m.what}  [{m.path}; {', '.join(m.tests)}]")
        return 0
    if not args.no_control:
        ctl = run_control([t for m in chosen for t in m.tests], args.workers)
        print(f"control  (unmutated copy) {ctl['summary']}, {ctl['seconds']:.0f} s", flush=True)
        if ctl["returncode"] != 0:
            print(f"mutants.py: the unmutated copy fails {len(ctl['failed'])} test(s) ({', '.join(ctl['failed'][:5])}"
                  f"{', ...' if len(ctl['failed']) > 5 else ''}); no mutant can be judged until they pass",
                  file=sys.stderr)
            return 2
    out = []
    for m in chosen:
        res = run_mutant(m, args.workers)
        out.append(res)
        print(f"{res['outcome']:8s} {m.key:4s} {m.what[:70]:70s} {res['seconds']:6.0f} s  "
              f"{(res['caught_by'] or [''])[0]}", flush=True)
    if args.json:
        from sde_scales.atomic import write_json_atomic
        write_json_atomic(args.json, out)
    survived = [r["key"] for r in out if r["outcome"] != "KILLED"]
    print(f"{len(out) - len(survived)} of {len(out)} mutants killed" + (f"; not killed: {survived}" if survived else ""))
    return 1 if args.strict and survived else 0


if __name__ == "__main__":
    sys.exit(main())
