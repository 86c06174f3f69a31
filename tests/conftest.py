import os

import numpy as np
import pytest

from sde_scales.sde.convergence import ORDER_MAX_TOL, ORDER_MODEL_TOL, ORDER_Z

# The order checks' tolerance is the library's (sde_scales.sde.convergence, where each number's
# reason is stated): 3 bootstrap standard errors of the slope + 0.1 for the next-order term, and
# no more than 0.25 in all, half the gap between the orders a check must tell apart.
MODEL_TOL = ORDER_MODEL_TOL
Z = ORDER_Z
MAX_TOL = ORDER_MAX_TOL


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
    # the library's verdict on the same study must not FAIL the order these ladders show
    v = est.judge(expected)
    assert v.verdict.value != "FAIL", f"{what}: judge FAILs the stated order: {v.reason}"


def strict_json(text: str):
    """``text`` parsed as strict JSON: a NaN, Infinity or -Infinity (which Python's json writes and
    reads by default, and other readers refuse) fails the test, naming the constant."""
    import json

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


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


def load_benchmark(name: str):
    """The script ``benchmarks/<name>.py`` as a module (the benchmarks are scripts, not a package),
    for tests of the functions the benchmark tables rest on."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
