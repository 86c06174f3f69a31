"""The trainer's numbers do not depend on the CPU thread count: MKL's strict reproducible mode is
set on import, and where the products still depend on the count the trainer runs on one thread
and says so. The end-to-end check (the README's sweep on one and two threads, bit-identical) is
``tests/test_checkpoints.py::test_the_readme_sweep_gives_the_same_numbers_on_every_executor_and_thread_count``;
on a machine with AVX-512 it failed before MKL's mode was set (differences up to 1e-4 relative)."""

import os
import subprocess
import sys
import pytest

torch = pytest.importorskip("torch")

from sde_scales.train import reproducible  # noqa: E402
from sde_scales.train.model import StackedMLP  # noqa: E402
from sde_scales.parametrization import mup  # noqa: E402


def _python(code: str, **env) -> str:
    full = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    full.update(env)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_importing_the_trainer_sets_mkls_reproducible_mode_unless_the_user_set_one():
    code = "import os, sde_scales.train; print(os.environ.get('MKL_CBWR'))"
    assert _python(code) == reproducible.MKL_CBWR
    assert _python(code, MKL_CBWR="COMPATIBLE") == "COMPATIBLE"


def test_in_a_fresh_process_the_products_are_thread_invariant_and_two_threads_are_kept():
    """torch's products after ``import sde_scales.train`` (MKL in its strict mode) give the same bits
    on one and two threads, so a CPU model keeps two threads and does not warn. Without the mode the
    probe's products differed on an AVX-512 machine (tested there: 2 of its 3 shapes)."""
    code = ("import warnings, torch, sde_scales.train as t; from sde_scales.parametrization import mup\n"
            "torch.set_num_threads(2); warnings.simplefilter('error')\n"
            "t.StackedMLP(mup(L=1), 2, 8, 16, 3, [0, 1]); print(torch.get_num_threads())")
    assert _python(code) == "2"


def test_products_that_depend_on_the_thread_count_put_the_trainer_on_one_thread(monkeypatch):
    """Fault injection: a matrix product whose result moves with the thread count (as a BLAS that
    splits its reduction gives) is found by the probe, and a CPU model then trains on one thread
    with a warning."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr(reproducible, "_strict_from_start", False)  # as when torch ran before the import
        real_mm = torch.mm
        monkeypatch.setattr(torch, "mm", lambda a, b: real_mm(a, b) + 1e-7 * (torch.get_num_threads() - 1))
        monkeypatch.setattr(reproducible, "_checked", {})
        assert not reproducible.gemms_thread_invariant()
        with pytest.warns(reproducible.ThreadCountWarning, match="other numbers on 2 threads than on one"):
            StackedMLP(mup(L=1), 2, 8, 16, 3, [0, 1])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_where_the_strict_mode_came_before_torch_nothing_is_probed(monkeypatch):
    """The probe sets torch's thread count, and any such call slowed `sde-scales verify --quick` by
    15-25 s (torch's and Numba's OpenMP threads): with MKL's strict mode in place before torch was
    imported it is not run. In a fresh process that imports the trainer first, that is the case."""
    if not torch.backends.mkl.is_available():
        pytest.skip("torch's BLAS is not MKL here: the probe is always run")
    monkeypatch.setattr(reproducible, "_strict_from_start", True)

    def probe():
        raise AssertionError("probed")

    monkeypatch.setattr(reproducible, "gemms_thread_invariant", probe)
    reproducible.ensure_thread_invariance()
    code = "import sde_scales.train.reproducible as r, torch; print(r._strict_from_start)"
    assert _python(code) == "True"
    assert _python("import torch, sde_scales.train.reproducible as r; print(r._strict_from_start)") == "False"
    assert _python(code, MKL_CBWR="AVX2,STRICT") == "True"


def test_the_first_softmax_of_a_stack_is_the_same_in_every_process():
    """The step-0 softmax of a two-member stack on two threads, in 16 fresh processes: bit-identical.
    Before :func:`~sde_scales.train.reproducible.warm_up_vml` the first ``exp_`` (MKL's VML, split
    over torch's threads) gave other values in the second member's rows in 7 of 48 processes, which
    showed as a sweep's step-0 ``eval_grad_norm`` that differed from another sweep's of the same
    seed. With a rate of 7/48, 16 processes show it with probability 1 - (41/48)^16 = 0.92 (against
    the old code, 12 processes showed it in one of two runs of this test)."""
    code = ("import hashlib, torch, sde_scales.train as t; from sde_scales.parametrization import mup\n"
            "torch.set_num_threads(2); g = torch.Generator().manual_seed(0)\n"
            "m = t.StackedMLP(mup(L=1), 2, 64, 32, 10, [0, 0])\n"
            "x = torch.randn(256, 64, generator=g); y = torch.randint(0, 10, (256,), generator=g)\n"
            "with torch.no_grad():\n"
            "    lp, _ = m.forward(x.expand(2, 256, 64), keep=True); _, d = m.losses(lp, y)\n"
            "print(hashlib.sha256(d.numpy().tobytes()).hexdigest())")
    assert len({_python(code) for _ in range(16)}) == 1
