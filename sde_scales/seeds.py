r"""One seed tree with named purposes: every random number the toolkit draws comes from it.

A user gives one integer seed. Each use of randomness is a *purpose* with a fixed place in the
tree: the child ``SeedSequence(entropy=seed, spawn_key=(index, *keys))``, where ``index`` is the
purpose's entry in :data:`PURPOSES` and ``keys`` are further integers that the purpose needs (a
width, a layer, a run's seed). Children of different purposes, or of the same purpose with
different keys, are independent streams (numpy's ``SeedSequence`` guarantees it for distinct spawn
keys), and a purpose's numbers never change when another purpose is added.

Rules: the indices are append-only (changing one changes the numbers of every result that used
it); a purpose not in the table is refused, so a typo cannot silently share a stream.
Generated SDE noise is the one exception in form, not in kind: :class:`~sde_scales.sde.noise.BlockStreams`
spawns one child per block of paths from the seed it is given, which a model passes as
``child(seed, "<model>.noise", ...)``.
"""

from __future__ import annotations

import zlib

import numpy as np

from sde_scales.errors import InvalidArgumentError
from sde_scales.validation import is_whole

__all__ = ["PURPOSES", "child", "int_seed", "named", "rng", "root"]

#: purpose -> its index in the tree (append only)
PURPOSES: dict[str, int] = {
    "sde.probe_points": 1,       # SDEProblem: states and times where drift and diffusion are checked
    "sde.probe_states": 2,       # Milstein preconditions: random states along a short trial run
    "width.initial_spread": 3,   # WidthModel: initial micro-variables (key: width)
    "width.noise": 4,            # WidthModel: Brownian streams (key: width)
    "delay.noise": 5,            # DelayModel: loss-noise increments
    "data.teacher_student": 6,   # synthetic classification task
    "data.gaussian_mixture": 7,  # synthetic classification task
    "data.powerlaw_features": 8, # synthetic regression task
    "train.micro_indices": 9,    # which weights the trainer logs as micro-variables (key: layer)
    "train.data_order": 10,      # per-run minibatch order (keys: run seed, data seed)
    "collapse.frontier_boot": 11,
    "collapse.horizon_boot": 12,
    "collapse.stats_boot": 13,
    "theory.check": 14,          # claim checks (key: crc32 of the check's name)
    "analysis.compare_boot": 15,     # seed resamples of observed bands (macro SDE, delay model)
    "analysis.macro_sde_start": 16,  # initial values of simulated macro-SDE paths
    "analysis.macro_sde_noise": 17,  # Brownian streams of simulated macro-SDE paths
    "analysis.delay_boot": 18,       # seed resamples of the model-free delay
    "analysis.delay_noise": 19,      # the stochastic delay model's noise against a network
    "sde.stability_start": 20,   # the starting vector of the step-stability probe's ARPACK iteration
}


def root(seed) -> np.random.SeedSequence:
    """A ``SeedSequence`` from an int (or one passed through). ``None`` is refused: the toolkit
    never draws unseeded numbers, so every result can be reproduced."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        raise InvalidArgumentError("seed=None; pass an integer seed (e.g. seed=0) so results can be reproduced")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgumentError(f"seed={seed!r}; pass a non-negative integer or a numpy SeedSequence")
    return np.random.SeedSequence(int(seed))


def child(seed, purpose: str, *keys: int) -> np.random.SeedSequence:
    """The ``SeedSequence`` of ``purpose`` (with integer ``keys``) under ``seed``."""
    if purpose not in PURPOSES:
        raise InvalidArgumentError(f"unknown seed purpose {purpose!r}; add it to sde_scales.seeds.PURPOSES "
                                   f"(known: {', '.join(PURPOSES)})")
    top = root(seed)
    extra = []
    for k in keys:
        if not is_whole(k, 0):
            raise InvalidArgumentError(f"seed key {k!r} for {purpose!r}; keys are non-negative integers")
        extra.append(int(k))
    return np.random.SeedSequence(top.entropy, spawn_key=tuple(top.spawn_key) + (PURPOSES[purpose], *extra),
                                  pool_size=top.pool_size)


def rng(seed, purpose: str, *keys: int) -> np.random.Generator:
    """``numpy.random.default_rng`` of :func:`child`."""
    return np.random.default_rng(child(seed, purpose, *keys))


def int_seed(seed, purpose: str, *keys: int) -> int:
    """A 32-bit integer from :func:`child`, for libraries that take an int (torch generators)."""
    return int(child(seed, purpose, *keys).generate_state(1)[0])


def named(name: str) -> int:
    """A stable integer key for a free-form name (a check's name): its CRC-32."""
    return zlib.crc32(name.encode())
