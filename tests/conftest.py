import os

import numpy as np
import pytest

# Share of the error budget of an order check that is not Monte-Carlo: the next term of the
# error expansion, e(h) = C h^p (1 + D h^q), bends the log-log line over the fitted range of dt.
# For the problems used (noise-led GBM, OU, commuting linear systems) the successive log2 ratios
# measured over dt = 2^-3..2^-10 stay within 0.08 of the asymptotic order, so 0.1 is allowed.
MODEL_TOL = 0.1
# Monte-Carlo part: 3 bootstrap standard errors of the fitted slope (about 99.7% coverage).
Z = 3.0
# Orders that a check must tell apart differ by 0.5 (strong 1/2 vs 1, weak 1 vs 1/2 or 2), so a
# check is only meaningful if its total tolerance stays under half of that.
MAX_TOL = 0.25


def assert_order(est, expected, what=""):
    tol = Z * est.se + MODEL_TOL
    assert tol < MAX_TOL, (
        f"{what}: tolerance {tol:.3f} (se {est.se:.3f}) is too wide to tell orders 0.5 apart; "
        f"use more paths"
    )
    assert abs(est.order - expected) <= tol, (
        f"{what}: measured order {est.order:.3f} +- {est.se:.3f}, expected {expected} "
        f"(tolerance {tol:.3f}); successive ratios {est.ratios}"
    )


def shell_command(text: str) -> list[str]:
    """The first command of a shell snippet (the README's), with its continuation lines, comments
    dropped, split as the shell splits it."""
    import shlex

    cmd = []
    for line in text.splitlines():
        part = line.split("#")[0].rstrip()
        cmd += shlex.split(part.rstrip("\\"))
        if not part.endswith("\\"):
            break
    return cmd


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def has_cuda():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if has_cuda() or os.environ.get("SDE_SCALES_FORCE_GPU"):
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
