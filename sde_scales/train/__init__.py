"""The torch trainer: muP / SP / NTK MLPs from the abc table, stacked runs, run store, sweeps,
coordinate checks. Importing it needs torch (``pip install -e .[train]``).

Importing it sets ``MKL_CBWR=AUTO,STRICT`` where the environment has no value, before it imports
torch: MKL's GEMMs then give the same numbers on any thread count (:mod:`sde_scales.train.reproducible`)."""

from sde_scales.train.reproducible import set_reproducible_blas

set_reproducible_blas()  # before torch is imported below: MKL reads it at its first call

from sde_scales.train.data import Dataset, load_cifar10, make_dataset  # noqa: E402 (after the BLAS setting)
from sde_scales.train.model import StackedMLP  # noqa: E402
from sde_scales.train.trainer import RunConfig, RunOutcome, resolve_device, train_stack  # noqa: E402

__all__ = ["Dataset", "RunConfig", "RunOutcome", "StackedMLP", "load_cifar10", "make_dataset", "resolve_device",
           "train_stack"]
