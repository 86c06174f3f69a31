r"""Loss-curve laws: the loss as a function of the learning-rate schedule.

All laws share the power-law term of the learning-rate area :math:`S_1(t) = \sum_{k<t}\eta_k`
(warmup included) and differ in how learning-rate drops :math:`d_k = \eta_{k-1} - \eta_k` lower
the loss. Learning rates are measured in units of ``lr_scale`` (the largest peak of the fitted
curves) so that every parameter is of order one.

Momentum law (Tissue et al. 2024)
    :math:`L = L_0 + A S_1^{-\alpha} - C S_2`, :math:`S_2(t) = \sum_{i<t} m_i`,
    :math:`m_i = \lambda m_{i-1} + d_i`, so :math:`S_2 = \sum_k d_k (1-\lambda^{t-k})/(1-\lambda)`.
    Fitted as :math:`C_{eff} = C/(1-\lambda)` and :math:`\tau = -1/\ln\lambda` (steps); ``lam``
    fixes :math:`\lambda`.
Multi-power law (Luo et al. 2025)
    :math:`L = L_0 + A (S_1 + S_W)^{-\alpha} - B\sum_k d_k\,G(\eta_k^{-\gamma} S_k(t))`,
    :math:`G(x) = 1 - (Cx + 1)^{-\beta}`, :math:`S_k(t) = \sum_{k \le \tau < t} \eta_\tau`
    (:math:`S_W`, the warmup area, is part of :math:`S_1` here).
Kernel law (Theorem 5.1 of Hong & Wang, this toolkit's)
    :math:`L = L_0 + A S_1^{-\alpha} + B\,(\tilde\eta(t) - 1)`, :math:`\tilde\eta(t) = \eta_{peak}
    - \sum_k d_k\,Q(u(t) - u(k))`: the learning rate's noise term, proportional to the rate
    filtered by a memory kernel :math:`q \ge 0` (step response :math:`Q(\tau) = \int_0^\tau q`,
    time :math:`u` in steps or in learning-rate area), the drops after the warmup convolved with
    it. Rates are in units of the largest fitted peak, so :math:`L_0` is the level a long constant
    run at that peak tends to, and a curve of peak :math:`\eta_{peak} < 1` sits
    :math:`B(1 - \eta_{peak})` lower: this level term is what lets curves with different peak
    learning rates share one fit, and it is zero for curves of one peak. The warmup's rise is taken
    as complete: its response overlaps the early curve, which the power law describes worst
    (filtering it as well was tried and moved the kernel to fit the early curve;
    ``benchmarks/RESULTS.md``). ``level=False`` leaves the level term out (the drops alone), the
    form of the momentum and multi-power laws, where the peak reaches the loss through the area
    alone. Kernels are the families of
    :mod:`sde_scales.kernels`: ``"exp"`` (:math:`Q = 1 - e^{-\tau/\tau_c}`), ``"power"``
    (:math:`Q = 1 - (1 + \tau/\tau_0)^{1-a}`), ``"nonparametric"`` (a non-negative combination of
    exponentials on a fixed log grid of time scales: :math:`q` completely monotone, hence
    monotone) and ``"instant"`` (no delay), fitted with the other parameters.

Drops are binned (:class:`~sde_scales.fitting.curves.ScheduleFeatures`). The momentum law and every
kernel law sum them with a recursive filter in O(points + bins) per exponential
(:mod:`sde_scales.fitting._filters`); the power-law kernel through its sum-of-exponentials form
with a stated error (:class:`~sde_scales.kernels.PowerLawFamily`). The multi-power law is not a
convolution (each drop's response depends on its own learning rate), but the same form with
drop-dependent weights on one lattice of rates sums it by a weighted filter
(:class:`MultiPowerLaw`): no law builds an (evaluation point x drop bin) array.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import special

from sde_scales import kernels
from sde_scales.errors import InvalidArgumentError
from sde_scales.fitting.curves import ScheduleFeatures

__all__ = ["GRID_POINTS", "GRID_RATIO", "KernelLaw", "Law", "MomentumLaw", "MultiPowerLaw"]

#: Fewest time scales of the non-parametric kernel's grid when it follows the data
#: (:meth:`KernelLaw.for_curves`).
GRID_POINTS = 10
#: Largest factor between neighbouring time scales of that grid (2.15 in the fixed default grid,
#: :data:`sde_scales.kernels.NONPARAMETRIC_TAUS`): at a factor of 3 the step responses of
#: neighbours overlap, so a completely monotone kernel between them is a mixture of the two.
GRID_RATIO = 3.0


@dataclass(frozen=True)
class Law:
    """Base class. ``names``, ``lower``, ``upper``: parameter names and bounds."""

    @property
    def names(self) -> tuple[str, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def label(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def starts(self) -> list[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, theta: np.ndarray, f: ScheduleFeatures) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def for_curves(self, curves, bin_factor: int = 4) -> "Law":
        """The law to fit to ``curves``: this one, unless its shape follows the data
        (:meth:`KernelLaw.for_curves`)."""
        return self

    def jacobian(self, theta: np.ndarray, f: ScheduleFeatures) -> np.ndarray | None:
        """d predict / d theta, shape (n_points, n_params), where the law has it in closed form;
        None lets the fit use finite differences."""
        return None

    #: Whether a fit of many points starts from fits to subsets of them
    #: (:data:`~sde_scales.fitting.fit.COARSE_POINTS`): worth it where an evaluation's cost is in the
    #: points (the optimiser's SVD, a filter of a few time scales).
    coarse_start = True

    def time_scale(self, theta: np.ndarray) -> float | None:
        """The response time scale (steps or area units) where the law has one, else None."""
        return None

    @property
    def loss_unit_names(self) -> tuple[str, ...]:
        """Parameters in units of the loss (the law is linear in them): a fit scales their starts
        and bounds with the loss, so that the same curves in other units (bits, a loss times 100)
        give the same fit in those units."""
        return ("L0", "A")

    @property
    def clock(self) -> str | None:
        """``"steps"`` or ``"area"``: the time the law's time-scale parameters are measured in (the
        ``log10_*`` ones, whose upper bounds a fit widens to the length of the fitted curves, and
        the rates of :attr:`rate_names`); None where it has none."""
        return None

    @property
    def rate_names(self) -> tuple[str, ...]:
        """Parameters in units of 1 / time (:attr:`clock`)."""
        return ()

    def half_response(self, theta: np.ndarray) -> float | None:
        """Time to half response of the drop term (the delay), where defined."""
        return None


def _power_term(theta, f, s0: float = 0.0):
    return theta[0] + theta[1] * np.power(np.maximum(f.S1 + s0, 1e-12), -theta[2])


def _power_jac(theta, f, s0: float = 0.0):
    """Columns d/dL0, d/dA, d/dalpha of L0 + A (S1 + s0)^-alpha."""
    s = np.maximum(f.S1 + s0, 1e-12)
    sp = np.power(s, -theta[2])
    return np.stack([np.ones_like(s), sp, -theta[1] * sp * np.log(s)], axis=1)


def _offset_column(theta, f, s0: float) -> np.ndarray:
    r""":math:`\partial/\partial \log_{10} S_0` of :math:`A (S_1 + S_0)^{-\alpha}`:
    :math:`-\alpha A (S_1 + S_0)^{-\alpha - 1} S_0 \ln 10`."""
    s = np.maximum(f.S1 + s0, 1e-12)
    return -theta[2] * theta[1] * np.power(s, -theta[2] - 1.0) * s0 * np.log(10.0)


_BASE_NAMES = ("L0", "A", "alpha")
_BASE_LO = [0.0, 0.0, 0.01]
_BASE_HI = [20.0, 100.0, 3.0]

#: Bounds of the kernel law's ``log10_S0`` (:attr:`KernelLaw.offset`): from a hundredth of a step at
#: the peak rate (the plain power law, in effect) to 10^5, which a fit widens to twice the longest
#: curve's area as it does every ``log10_`` parameter.
OFFSET_BOUNDS = [-2.0, 5.0]
#: Its starts: 1 and 100 steps at the peak rate, each with every start of the rest.
OFFSET_STARTS = ((0.0,), (2.0,))


@dataclass(frozen=True)
class MomentumLaw(Law):
    """Tissue et al. (2024). ``lam``: fixed momentum decay, or None to fit it."""

    lam: float | None = None

    def __post_init__(self) -> None:
        if self.lam is not None and not (0 < self.lam < 1):
            raise InvalidArgumentError(f"lam={self.lam}; the momentum decay must be in (0, 1), e.g. 0.999")

    @property
    def label(self) -> str:
        return "momentum" if self.lam is None else f"momentum(lambda={self.lam})"

    @property
    def names(self):
        return _BASE_NAMES + (("C_eff",) if self.lam is not None else ("C_eff", "log10_tau"))

    def bounds(self):
        lo = _BASE_LO + [0.0] + ([] if self.lam is not None else [0.0])
        hi = _BASE_HI + [20.0] + ([] if self.lam is not None else [5.0])
        return np.array(lo), np.array(hi)

    def starts(self):
        base = [3.0, 2.0, 0.5, 0.3]
        if self.lam is not None:
            return [np.array(base)]
        return [np.array(base + [lt]) for lt in (2.5, 3.5)]

    def _tau(self, theta):
        return -1.0 / np.log(self.lam) if self.lam is not None else 10.0 ** theta[4]

    def predict(self, theta, f):
        # (1 - lam^el) / (1 - lam) * (1 - lam) = 1 - lam^el = 1 - exp(-el / tau): C_eff absorbs
        # 1/(1 - lam), and the sum over drops is an exponential filter in steps (linear time)
        resp = f.exp_response([self._tau(theta)], "steps", cache=self.lam is not None)[:, 0]
        return _power_term(theta, f) - theta[3] * resp

    def time_scale(self, theta):
        return float(self._tau(theta))

    def half_response(self, theta):
        return float(self._tau(theta) * np.log(2))

    @property
    def loss_unit_names(self):
        return ("L0", "A", "C_eff")

    @property
    def clock(self):
        return "steps" if self.lam is None else None

    def reported(self, theta) -> dict:
        tau = self._tau(theta)
        lam = float(np.exp(-1 / tau))
        return {"lambda": lam, "C": float(theta[3] * (1 - lam))}


@dataclass(frozen=True)
class MultiPowerLaw(Law):
    r"""Luo et al. (2025), in linear time.

    Each drop's :math:`(1 + s_b x)^{-\beta}`, :math:`s_b = C\eta_b^{-\gamma}`, is written by the
    Laplace form as in :class:`~sde_scales.kernels.PowerLawFamily`: a trapezoid sum over one
    lattice of log rates :math:`v_j = jh` shared by all drops, with drop-dependent weights
    :math:`w_{jb} = h\,e^{\beta(v_j - \ln s_b) - e^{v_j - \ln s_b}}/\Gamma(\beta)`. The drops
    then reach the loss through exponentials of fixed rates :math:`e^{v_j}` in the learning-rate
    area, summed by the recursive filter (:func:`~sde_scales.fitting._filters.weighted_response`)
    in O(rates x (points + bins)); the Jacobian's four columns run through the same pass. The
    lattice is fixed, so a fit meets the same rates at every evaluation: the filter's decay factors
    are computed once per rate and schedule (:meth:`ScheduleFeatures.decay_factors`), and the
    weights only at the lattice points kept. :meth:`embedding_error` states the error of the form
    over the data.
    """

    #: No coarse start: its evaluations cost about 50 filter passes over the schedule's drop bins,
    #: which a subset of the points does not shrink, and its path through its flat (C, beta, gamma)
    #: directions is as long on the subset (on a 34,000-point cosine logged at every step: 99 s
    #: with the coarse start, one of whose two starts ran to the evaluation limit, 57 s without).
    coarse_start = False

    @property
    def label(self) -> str:
        return "mpl"

    @property
    def names(self):
        return _BASE_NAMES + ("B", "C", "beta", "gamma")

    def bounds(self):
        return np.array(_BASE_LO + [0.0, 1e-4, 0.01, 0.0]), np.array(_BASE_HI + [20.0, 1e3, 5.0, 2.0])

    def starts(self):
        return [np.array([3.0, 2.0, 0.5, 0.4, c, 0.6, 0.5]) for c in (0.5, 5.0)]

    @property
    def loss_unit_names(self):
        return ("L0", "A", "B")

    @property
    def clock(self):
        return "area"

    @property
    def rate_names(self):
        return ("C",)  # C eta^-gamma S_k(t): C is per unit of learning-rate area

    def _nodes(self, theta, f):
        r"""Sum-of-exponentials form of every drop's response (see the class docstring): the log
        rates ``v`` (a lattice of step h, the same for every drop) and the weights ``w[j, b]`` of
        :math:`(1 + s_b x)^{-\beta} \approx \sum_j w_{jb} e^{-e^{v_j} x}`, with
        :math:`s_b = C\eta_b^{-\gamma}`. Lattice points whose weight is below 1e-16 of the largest
        for every drop are left out."""
        C, beta, gamma = float(theta[4]), float(theta[5]), float(theta[6])
        log_eta = np.log(np.maximum(f.eta_after, 1e-6))
        log_s = np.log(C) - gamma * log_eta
        t_max = float(f.S1[-1]) if f.S1.size else 1.0
        v = kernels.log_rate_lattice(t_max, np.log(40.0) + (log_s.max() if log_s.size else 0.0))
        if v.size and log_s.size:
            # which lattice points to keep, from each point's largest weight over the drops alone:
            # w is exp(const + g(z)), g(z) = beta z - e^z strictly concave (peak at z = ln beta), so
            # over the drops' z = v_j - ln s_b it peaks at one of the two ln s_b nearest v_j - ln beta.
            # Weights are then computed for the kept points only (they were for every point, at
            # 2-3 times the cost, and the same values to the last bit)
            ls = np.sort(log_s)
            k = np.searchsorted(ls, v - np.log(beta))
            near = np.stack([ls[np.clip(k - 1, 0, ls.size - 1)], ls[np.clip(k, 0, ls.size - 1)]], axis=1)
            wmax = kernels.laplace_weights(v[:, None] - near, beta).max(axis=1)
            keep = wmax > 1e-16 * wmax.max()
            v = v[keep]
        z = v[:, None] - log_s[None, :]
        w = kernels.laplace_weights(z, beta)
        return v, z, w, log_eta, (C, beta)

    def _response(self, theta, f, derivs: bool):
        from sde_scales.fitting._filters import weighted_response

        v, z, w, log_eta, (C, beta) = self._nodes(theta, f)
        W0 = w * f.drop[None, :]
        if derivs:  # d ln w / d ln s = e^z - beta;  ln s = ln C - gamma ln eta
            a = np.exp(np.minimum(z, 700.0)) - beta
            W = np.stack([W0, W0 * a / C, W0 * (z - special.digamma(beta)), W0 * a * (-log_eta)[None, :]])
        else:
            W = W0[None]
        return weighted_response(f.t.astype(float), f.S1, f.center, f.area, W, np.exp(-v),
                                 factors=f.decay_factors("area"))

    def predict(self, theta, f):
        return _power_term(theta, f) - theta[3] * self._response(theta, f, derivs=False)[0]

    def jacobian(self, theta, f):
        B = theta[3]
        r = self._response(theta, f, derivs=True)
        # G = 1 - (1 + s x)^-beta: d/dtheta of sum_b d_b G is minus that of the (1 + s x)^-beta part,
        # which the response R = sum_j sum_b W (1 - e^{-rate x}) already carries with its sign
        cols = [-r[0], -B * r[1], -B * r[2], -B * r[3]]
        return np.concatenate([_power_jac(theta, f), np.stack(cols, axis=1)], axis=1)

    def embedding_error(self, theta, f) -> float:
        """Largest error of the sum-of-exponentials form of :math:`G(s x) = 1 - (1 + s x)^{-\beta}`
        over the data, for the drops with the smallest and largest s (400 log-spaced area values up
        to the curve's total area)."""
        v, z, w, log_eta, (C, beta) = self._nodes(theta, f)
        if w.size == 0:
            return 0.0
        s_max = max(float(f.S1[-1]), 1.0)
        x = np.concatenate([[0.0], np.geomspace(1e-4, s_max, 399)])
        worst = 0.0
        for b in (int(np.argmin(z[0])), int(np.argmax(z[0]))):  # z = v - ln s: extremes of s
            s_b = np.exp(v[0] - z[0, b])
            # G itself: the mass of rates below the lattice never responds within the data, so it
            # is in neither the form nor (to e^-10 of it) the exact G over this range
            approx = (w[:, b][None, :] * -np.expm1(-np.exp(v)[None, :] * x[:, None])).sum(axis=1)
            worst = max(worst, float(np.max(np.abs(approx - (1 - (1 + s_b * x) ** -beta)))))
        return worst


@dataclass(frozen=True)
class KernelLaw(Law):
    r"""Drops convolved with a memory kernel from :mod:`sde_scales.kernels`.

    ``kernel``: a :class:`~sde_scales.kernels.KernelFamily` or its name (``"exp"``, ``"power"``,
    ``"nonparametric"``, ``"instant"``); ``time``: ``"steps"`` or ``"area"`` (learning-rate area);
    ``taus``: the grid of the non-parametric family (None: when fitted, one that follows the fitted
    curves, :meth:`for_curves`; used directly, :data:`~sde_scales.kernels.NONPARAMETRIC_TAUS`);
    ``level``: include the level term
    :math:`B(\eta_{peak} - 1)` (default; see the module docstring) or fit the drops alone;
    ``offset``: ``True`` for the progress term :math:`A (S_1 + S_0)^{-\alpha}` with the area offset
    :math:`S_0` fitted (``log10_S0``, in the law's area units: steps at the peak rate) instead of
    :math:`A S_1^{-\alpha}`; ``"test"`` (``fit-delay``'s default) to fit both and keep the offset
    only where the fitted curves reject the plain term (:func:`~sde_scales.fitting.fit.offset_test`),
    the law being the plain one until then. The plain term is its limit :math:`S_0 \to 0`, its lower bound
    :math:`10^{-2}` (a hundredth of a step at the peak rate, below what a logged curve resolves), so
    a fit whose offset lands there is the plain law's and is not warned about as a bound
    (:attr:`nested_at_lower_bound`). The offset bends the power law on log-log axes: its local
    exponent :math:`\alpha S_1/(S_1 + S_0)` grows along the run, where the plain term's is constant.
    That is the shape of a run whose early fall is steeper than a power law of the area predicts
    from its later course, which the plain term can follow only by moving its exponent, and with
    it the level :math:`L_0` and the share of a schedule's late fall it leaves to the drops
    (``benchmarks/RESULTS.md``, "the offset of the progress term"). The same
    kernel objects serve the delay model and the Theorem 5.1 check: :meth:`kernel_of` returns
    the fitted one.

    Cost: the family's response terms are exponentials, convolved with the drops by the recursive
    filter (:meth:`ScheduleFeatures.exp_response`) in O(points + bins) each. Their time scales are
    fixed for a fit (all families but ``"exp"``, whose one time scale is filtered afresh at every
    evaluation), so the filter runs once per fit and each evaluation is a small matrix product;
    the Jacobian is then in closed form.
    """

    kernel: object = "nonparametric"
    time: str = "area"
    taus: np.ndarray | None = None
    level: bool = True
    offset: bool | str = False
    #: Set by :func:`~sde_scales.fitting.fit.fit` on the law it returns for ``offset="test"``
    #: (``offset`` then says what the test kept): the label stays the tested law's, so that tables
    #: and averages keyed by it find the fit.
    tested: bool = False

    #: Parameters whose lower bound is a nested law, not a limit of the data: the offset's is the
    #: plain power law (see the class docstring).
    nested_at_lower_bound = ("log10_S0",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid_given", self.taus is not None)
        fam = kernels.family(self.kernel, self.taus)
        if self.time not in ("steps", "area"):
            raise InvalidArgumentError(f"time={self.time!r}; use 'steps' or 'area' (learning-rate area)")
        object.__setattr__(self, "family", fam)
        object.__setattr__(self, "kernel", fam.name)
        object.__setattr__(self, "taus", getattr(fam, "taus", None))
        if not isinstance(self.offset, str) and self.offset in (False, True):
            object.__setattr__(self, "offset", bool(self.offset))  # 0 / 1 / numpy bools as the bools they mean
        if self.offset not in (False, True, "test"):
            raise InvalidArgumentError(f"offset={self.offset!r}; use True (fit the progress term's area offset), "
                                       f"False (the plain term) or 'test' (fit both and keep the offset where the "
                                       f"curves reject the plain term, sde_scales.fitting.fit.offset_test)")

    @property
    def label(self) -> str:
        off = ", offset tested" if self.tested or self.offset == "test" else ", offset" if self.offset else ""
        return f"kernel({self.kernel}, {self.time}{'' if self.level else ', drops only'}{off})"

    def with_offset(self, offset, **changes) -> "KernelLaw":
        """This law with ``offset`` (and ``changes``, other fields) set, its non-parametric grid still
        following the curves where it did: a plain ``dataclasses.replace`` passes the default grid on
        as a given one, which fixes it."""
        return replace(self, offset=offset, taus=self.taus if self.grid_given else None, **changes)

    @property
    def _off(self) -> bool:
        """Whether ``log10_S0`` is a parameter: ``offset=True`` (``"test"`` is the plain law until
        :func:`~sde_scales.fitting.fit.fit` decides)."""
        return self.offset is True

    def for_curves(self, curves, bin_factor: int = 4) -> "KernelLaw":
        r"""The law to fit to ``curves``: for the non-parametric kernel without a given grid, the grid
        follows the data: log-spaced time scales from one step (one area unit, a step at the peak
        rate: a response within one update) to twice the longest curve (its steps, or its total
        learning-rate area), :data:`GRID_POINTS` of them or more, so that neighbours differ by at
        most :data:`GRID_RATIO`. Any other law is returned as it is.

        The grid starts below what the curves resolve (their logging interval or drop bins): a
        response faster than that is still a response, and a grid that began at the resolution
        forced one on it (on the model family of ``experiments/fit_nqm_family.py``, whose drops
        act within about 20 steps, a half response of 139 steps at the grid's first point, 200,
        and a cooldown missed by 0.013 instead of 0.010). How much faster than the resolution the
        curves cannot say; the fit warns where its delay falls below it."""
        if self.kernel != "nonparametric" or self.grid_given or not curves:
            return self
        lo = 1.0
        scale = max(c.peak_lr for c in curves)
        if self.time == "steps":
            hi = 2.0 * max(float(c.step[-1]) for c in curves)
        else:
            hi = 2.0 * max(float(c.per_step_lr().sum()) / scale for c in curves)
        hi = max(hi, 10.0 * lo)
        n = max(GRID_POINTS, int(np.ceil(np.log(hi / lo) / np.log(GRID_RATIO) - 1e-9)) + 1)
        return replace(self, taus=np.geomspace(lo, hi, n))

    @property
    def _k0(self) -> int:  # index of the family's parameters in theta
        return 4 if self.family.has_amplitude else 3

    @property
    def names(self):
        return (_BASE_NAMES + (("B",) if self.family.has_amplitude else ()) + tuple(self.family.names)
                + (("log10_S0",) if self._off else ()))

    def bounds(self):
        lo, hi = self.family.bounds()
        amp_lo, amp_hi = ([0.0], [20.0]) if self.family.has_amplitude else ([], [])
        off_lo, off_hi = (OFFSET_BOUNDS[:1], OFFSET_BOUNDS[1:]) if self._off else ([], [])
        return (np.array(_BASE_LO + amp_lo + list(lo) + off_lo), np.array(_BASE_HI + amp_hi + list(hi) + off_hi))

    def starts(self):
        amp = [0.4] if self.family.has_amplitude else []
        offs = OFFSET_STARTS if self._off else ((),)
        return [np.array([3.0, 2.0, 0.5] + amp + list(p) + list(o)) for p in self.family.starts() for o in offs]

    @property
    def loss_unit_names(self):
        return ("L0", "A") + (("B",) if self.family.has_amplitude else tuple(self.family.names))

    @property
    def clock(self):
        return self.time if any(n.startswith("log10_") for n in self.family.names) else None

    def kernel_params(self, theta) -> np.ndarray:
        return np.asarray(theta[self._k0:self._k0 + len(self.family.names)], dtype=float)

    def s0(self, theta) -> float:
        """The progress term's area offset :math:`S_0` (0 without ``offset``)."""
        return float(10.0 ** theta[-1]) if self._off else 0.0

    def kernel_of(self, theta):
        """The fitted kernel as a :mod:`sde_scales.kernels` object (``q``, ``Q``, ``lag``)."""
        return self.family.build(self.kernel_params(theta))

    def elapsed(self, f: ScheduleFeatures) -> np.ndarray:
        return f.elapsed_steps if self.time == "steps" else f.elapsed_area

    def _t_max(self, f: ScheduleFeatures) -> float:
        return float(f.t[-1] if self.time == "steps" else f.S1[-1]) if f.t.size else 1.0

    def terms(self, theta, f: ScheduleFeatures) -> "kernels.ResponseTerms":
        return self.family.response_terms(self.kernel_params(theta), self._t_max(f))

    def basis(self, f: ScheduleFeatures, taus=None) -> np.ndarray:
        """``Y[:, j] = sum_b drop_b (1 - exp(-el / tau_j))`` by the recursive filter (linear time,
        cached), minus ``peak - 1`` when ``level`` (then ``1 - Y[:, j]`` is the rate filtered by the
        j-th exponential: the non-parametric law's schedule term is ``-Y @ weights``); default
        ``taus``: the non-parametric grid."""
        Y = f.exp_response(self.taus if taus is None else taus, self.time)
        return Y - (f.peak - 1.0) if self.level else Y

    def Q(self, theta, tau) -> np.ndarray:
        """Step response of the fitted kernel, normalised to Q(oo) = 1."""
        return np.asarray(self.kernel_of(theta).Q(np.asarray(tau, dtype=float)), dtype=float)

    def q(self, theta, tau) -> np.ndarray:
        """The fitted kernel (impulse response), normalised to integrate to 1."""
        return np.asarray(self.kernel_of(theta).q(np.asarray(tau, dtype=float)), dtype=float)

    def amplitude(self, theta) -> float:
        """B: the loss gained per unit drop once the response is complete."""
        return float(theta[3]) if self.family.has_amplitude else float(np.sum(self.kernel_params(theta)))

    def _response(self, theta, f):
        t = self.terms(theta, f)
        fixed = not isinstance(self.family, kernels.ExponentialFamily)
        R = f.exp_response(t.taus, self.time, cache=fixed)
        return t, R

    def predict(self, theta, f):
        t, R = self._response(theta, f)
        scale = theta[3] if self.family.has_amplitude else 1.0
        out = _power_term(theta, f, self.s0(theta)) - scale * (R @ t.weights)
        if self.level:  # B (eta_peak - 1) with the exact Q(oo) = 1 (not the embedding's, which ends with the data)
            out = out + self.amplitude(theta) * (f.peak - 1.0)
        return out

    def jacobian(self, theta, f):
        if isinstance(self.family, kernels.ExponentialFamily):
            return None  # its time scale moves the filter itself: finite differences
        t, R = self._response(theta, f)
        lv = f.peak - 1.0 if self.level else 0.0  # d(B (eta_peak - 1))/dB; B is the weights' sum without an amplitude
        scale = theta[3] if self.family.has_amplitude else 1.0
        # every kernel parameter's column at once: one product with the (parameters x terms)
        # derivative matrix instead of a product per parameter
        kcols = R @ np.asarray(t.dweights, dtype=float).T
        kcols *= -scale
        if not self.family.has_amplitude:
            kcols += lv
        s0 = self.s0(theta)
        parts = [_power_jac(theta, f, s0)]
        if self.family.has_amplitude:
            parts.append((lv - (R @ t.weights))[:, None])
        parts.append(kcols)
        if self._off:
            parts.append(_offset_column(theta, f, s0)[:, None])
        return np.concatenate(parts, axis=1)

    def embedding_error(self, theta, f: ScheduleFeatures) -> float:
        """Bound on |Q_approx - Q| of the response terms over the data (0 where exact)."""
        return self.terms(theta, f).error

    def time_scale(self, theta):
        return self.family.time_scale(self.kernel_params(theta))

    def half_response(self, theta):
        return float(self.kernel_of(theta).lag)
