"""The torch trainer: muP / SP / NTK MLPs from the abc table, stacked runs, run store, sweeps,
coordinate checks. Importing it needs torch (``pip install -e .[train]``)."""

from sde_scales.train.data import Dataset, load_cifar10, make_dataset
from sde_scales.train.model import StackedMLP
from sde_scales.train.trainer import RunConfig, RunOutcome, resolve_device, train_stack

__all__ = ["Dataset", "RunConfig", "RunOutcome", "StackedMLP", "load_cifar10", "make_dataset", "resolve_device",
           "train_stack"]
