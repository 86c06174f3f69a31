r"""Data sets for the trainer, held on the device and batched by index.

CIFAR-10 from its binary distribution (``cifar-10-batches-bin``): each record is one label byte
and 3,072 pixel bytes (3 x 32 x 32, channel-major). :func:`load_cifar10` reads the extracted
files, or downloads the archive when it is missing and a network is there, checks the published
MD5 of the archive, and extracts it. With no files and no network it raises a
:class:`DataFileError` that says where to put them.

Synthetic tasks need no download: a teacher-student task (labels from a fixed random two-layer
teacher) and a Gaussian mixture, any input size (3,072 by default, the CIFAR-10 size), both
classification; and a regression task with power-law features (:func:`powerlaw_features`),
on which loss falls as a power law in both width and steps (the kind of task scaling-collapse
studies use), trained with the squared error.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sde_scales import seeds
from sde_scales.atomic import file_mode
from sde_scales.errors import DataFileError, InvalidArgumentError
from sde_scales.validation import is_integral

__all__ = ["Dataset", "load_cifar10", "teacher_student", "gaussian_mixture", "make_dataset", "powerlaw_features",
           "write_cifar_bin"]

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR_DIR = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
RECORD = 1 + 3072
# per-channel mean and std of the CIFAR-10 training set (standard values)
CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465])
CIFAR_STD = np.array([0.2470, 0.2435, 0.2616])


@dataclass
class Dataset:
    """Training and (optional) test split as torch tensors on one device.

    ``task``: ``"classification"`` (integer labels, cross-entropy, ``n_classes`` logits) or
    ``"regression"`` (float targets of shape ``(N,)``, squared error, one output: ``n_classes`` is 1)."""

    x_train: object
    y_train: object
    x_test: object | None
    y_test: object | None
    name: str
    n_classes: int = 10
    task: str = "classification"

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def d_in(self) -> int:
        return int(self.x_train.shape[1])

    def to(self, device) -> "Dataset":
        f = (lambda t: None if t is None else t.to(device))
        return Dataset(f(self.x_train), f(self.y_train), f(self.x_test), f(self.y_test), self.name, self.n_classes,
                       self.task)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Records of one ``.bin`` file: ``(x uint8 (N, 3072), y uint8 (N,))``."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise DataFileError(f"{path}: {raw.size} bytes is not a whole number of {RECORD}-byte CIFAR-10 records; "
                            f"the file is truncated or corrupt: delete it and download again")
    rec = raw.reshape(-1, RECORD)
    y = rec[:, 0]
    if y.max() > 9:
        i = int(np.argmax(y > 9))
        raise DataFileError(f"{path}: record {i} has label {int(y[i])}; CIFAR-10 labels are 0..9 (corrupt file)")
    return rec[:, 1:], y


def write_cifar_bin(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """Write records in the CIFAR-10 binary format (used by tests to build small files)."""
    x = np.asarray(x, dtype=np.uint8).reshape(-1, 3072)
    y = np.asarray(y, dtype=np.uint8).reshape(-1, 1)
    np.concatenate([y, x], axis=1).tofile(path)


#: The names :func:`make_dataset` takes ("teacher-student" is "synthetic" by its other name).
DATASET_NAMES = ("synthetic", "teacher-student", "mixture", "powerlaw", "cifar10")

#: Records in each CIFAR-10 binary file (5 training batches and the test batch).
RECORDS_PER_FILE = 10_000


def download_cifar10(root: Path, url: str = CIFAR_URL, md5: str = CIFAR_MD5, timeout: float = 60.0) -> Path:
    """Download the archive (a temporary file of this process, so that processes downloading at once
    do not share one), check its published MD5, and extract it into a temporary folder that is then
    renamed into place (a reader never sees a half-extracted folder). ``timeout``: seconds without
    data before the download is given up."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:  # a file where the folder belongs
        raise DataFileError(f"the data root {root} cannot be a folder ({exc.strerror}: a file is in its place); give "
                            f"--data-root a folder for CIFAR-10 (created where it does not exist)") from None
    archive = root / "cifar-10-binary.tar.gz"
    if not archive.exists():
        fd, name = tempfile.mkstemp(dir=root, prefix=".cifar-10-binary.", suffix=".part")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
                shutil.copyfileobj(resp, out, 1 << 20)
            os.chmod(tmp, file_mode(archive))  # mkstemp's 0o600 would keep others on a shared data root out
            os.replace(tmp, archive)
        except Exception as exc:  # noqa: BLE001 - any network failure
            raise DataFileError(
                f"CIFAR-10 is not in {root / CIFAR_DIR} and could not be downloaded from {url} ({exc}). "
                f"Download cifar-10-binary.tar.gz by hand and extract it into {root}, or use --dataset synthetic"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)
    got = _md5(archive)
    if got != md5:
        raise DataFileError(f"{archive}: MD5 {got} differs from the published {md5}; delete it and download again")
    dest = root / CIFAR_DIR
    if not dest.exists():
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".extract-"))
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(staging, filter="data")
            try:
                os.rename(staging / CIFAR_DIR, dest)
            except OSError:  # another process put it there first: keep theirs
                if not dest.exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dest


def load_cifar10(root: str | Path, download: bool = True, n_train: int | None = None,
                 records: int | None = RECORDS_PER_FILE) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)`` as float32 (normalised per channel, float32 throughout)
    and int64. Every file must hold ``records`` records (10,000 in CIFAR-10): a truncated file, or
    another data set in its place, is refused. ``n_train``: the first this many training records
    (all 50,000 when None)."""
    if n_train is not None:
        _check_sizes("load_cifar10", n_train=n_train)
        n_train = int(n_train)
    root = Path(root)
    d = root / CIFAR_DIR
    missing = [f for f in TRAIN_FILES + (TEST_FILE,) if not (d / f).exists()]
    if missing:
        if not download:
            raise DataFileError(f"{d}: missing {missing}; extract cifar-10-binary.tar.gz there or allow download")
        d = download_cifar10(root)

    def read(f):
        x, y = read_cifar_bin(d / f)
        if records is not None and y.size != records:
            raise DataFileError(f"{d / f}: {y.size} records where CIFAR-10 files hold {records}; the file is truncated "
                                f"or not CIFAR-10: delete {d} and download again")
        return x, y

    xs, ys = zip(*(read(f) for f in TRAIN_FILES))
    xt, yt = read(TEST_FILE)
    x_train, y_train = np.concatenate(xs), np.concatenate(ys)
    if n_train is not None:
        x_train, y_train = x_train[:n_train], y_train[:n_train]
    mean = CIFAR_MEAN.astype(np.float32)[None, :, None]
    std = CIFAR_STD.astype(np.float32)[None, :, None]

    def norm(x):  # float32 throughout: 50,000 images take 0.6 GB, not the 1.2 GB of float64 copies
        x = x.reshape(-1, 3, 1024).astype(np.float32)
        x /= np.float32(255.0)
        x -= mean
        x /= std
        return x.reshape(-1, 3072)

    return norm(x_train), y_train.astype(np.int64), norm(xt), yt.astype(np.int64)


def _check_sizes(task: str, **sizes) -> None:
    """Each size a whole number at or above its least value (``n_test`` 0: no test split;
    ``n_classes`` 2: one class has nothing to learn). Negative counts used to trim the split from
    the end without a word, and ``d_in = 0`` gave inputs with no coordinates."""
    least = {"n_test": 0, "n_classes": 2}
    for name, v in sizes.items():
        low = least.get(name, 1)
        if not is_integral(v, low):
            raise InvalidArgumentError(f"{task}: {name}={v!r}; give a whole number >= {low}")


def teacher_student(n_train: int = 8192, n_test: int = 2048, d_in: int = 3072, n_classes: int = 10,
                    teacher_width: int = 256, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Gaussian inputs labelled by the argmax of a fixed random two-layer ReLU teacher."""
    _check_sizes("teacher_student", n_train=n_train, n_test=n_test, d_in=d_in, n_classes=n_classes,
                 teacher_width=teacher_width)
    n_train, n_test, d_in = int(n_train), int(n_test), int(d_in)
    rng = seeds.rng(seed, "data.teacher_student")
    W1 = rng.standard_normal((teacher_width, d_in)) / np.sqrt(d_in)
    W2 = rng.standard_normal((n_classes, teacher_width)) / np.sqrt(teacher_width)
    x = rng.standard_normal((n_train + n_test, d_in)).astype(np.float32)
    y = np.argmax(np.maximum(x @ W1.T, 0) @ W2.T, axis=1).astype(np.int64)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def gaussian_mixture(n_train: int = 8192, n_test: int = 2048, d_in: int = 3072, n_classes: int = 10,
                     separation: float = 1.0, seed: int = 0) -> tuple[np.ndarray, ...]:
    """One isotropic Gaussian per class with means of norm ``separation`` (unit noise per coordinate,
    scaled by 1/sqrt(d_in) so inputs have norm about one)."""
    _check_sizes("gaussian_mixture", n_train=n_train, n_test=n_test, d_in=d_in, n_classes=n_classes)
    if not (np.isfinite(separation) and separation > 0):
        raise InvalidArgumentError(f"gaussian_mixture: separation={separation!r}; give a finite norm > 0 for the "
                                   f"class means (0 makes the classes indistinguishable)")
    n_train, n_test, d_in = int(n_train), int(n_test), int(d_in)
    rng = seeds.rng(seed, "data.gaussian_mixture")
    means = rng.standard_normal((n_classes, d_in))
    means *= separation / np.linalg.norm(means, axis=1, keepdims=True)
    y = rng.integers(0, n_classes, n_train + n_test)
    x = (means[y] + rng.standard_normal((y.size, d_in)) / np.sqrt(d_in)).astype(np.float32) * np.sqrt(d_in) / 2
    return x[:n_train].astype(np.float32), y[:n_train], x[n_train:].astype(np.float32), y[n_train:]


#: Power-law feature task: the amplitude exponent (feature k carries amplitude k^-alpha).
POWERLAW_ALPHA = 1.0


def powerlaw_features(n_train: int = 8192, n_test: int = 2048, d_in: int = 32, seed: int = 0, *,
                      n_features: int | None = None, alpha: float = POWERLAW_ALPHA) -> tuple[np.ndarray, ...]:
    r"""Regression with power-law features: inputs :math:`x = (g, 1)`, :math:`g \sim N(0, I_{d-1})`,
    and the target

    .. math::

        y(x) = \sum_{k=1}^{P} a_k\, \frac{(u_k \cdot x)^2 - 1}{\sqrt 2}, \qquad
        a_k = \frac{k^{-\alpha}}{(\sum_{j \le P} j^{-2\alpha})^{1/2}},

    with orthonormal directions :math:`u_k` (orthogonal to the constant coordinate; ``P =
    n_features <= d - 1``, all of them by default). The features are orthonormal in
    :math:`L^2` (second Hermite polynomials of independent coordinates), so
    :math:`\mathrm{Var}\, y = 1` and a network that has learned the first m features has loss
    :math:`\sum_{k>m} a_k^2 \propto m^{1-2\alpha}`. Each feature takes a few hidden units and SGD
    learns them in order of amplitude: the loss falls as a power law in width and in steps, which
    gives a loss-compute Pareto frontier with a compute-optimal width at each budget (the setting
    of scaling-collapse studies). The constant coordinate gives the first layer a bias: the
    trainer's networks have none, and a bias-free ReLU network is positively homogeneous,
    :math:`f(cx) = c f(x)`, so it could not fit a quadratic along a ray. Targets are float32 of
    shape ``(N,)``."""
    _check_sizes("powerlaw_features", n_train=n_train, n_test=n_test)
    if not is_integral(d_in, 2):
        raise InvalidArgumentError(f"d_in={d_in!r}; the power-law task needs a whole d_in >= 2 (one coordinate is "
                                   f"constant)")
    if n_features is not None and not is_integral(n_features, 1):
        raise InvalidArgumentError(f"n_features={n_features!r}; give a whole number of features (1 .. d_in - 1)")
    n_train, n_test, d_in = int(n_train), int(n_test), int(d_in)
    P = d_in - 1 if n_features is None else int(n_features)
    if not 1 <= P <= d_in - 1 or not np.isfinite(alpha) or alpha <= 0.5:
        raise InvalidArgumentError(f"n_features={n_features}, alpha={alpha} for d_in={d_in}; give 1 <= n_features <= "
                                   f"d_in - 1 and alpha > 1/2 (a finite total power)")
    rng = seeds.rng(seed, "data.powerlaw_features")
    q, _ = np.linalg.qr(rng.standard_normal((d_in - 1, d_in - 1)))
    u = q[:, :P].T  # (P, d - 1), orthonormal rows
    k = np.arange(1, P + 1, dtype=float)
    amp = k ** -alpha / np.sqrt(np.sum(k ** (-2 * alpha)))
    g = rng.standard_normal((n_train + n_test, d_in - 1))
    y = ((g @ u.T) ** 2 - 1) / np.sqrt(2) @ amp
    x = np.concatenate([g, np.ones((g.shape[0], 1))], axis=1)
    x, y = x.astype(np.float32), y.astype(np.float32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def make_dataset(name: str, device="cpu", *, d_in: int = 3072, n_train: int | None = None, seed: int = 0,
                 root: str | Path = "data", download: bool = True) -> Dataset:
    """``name``: ``"synthetic"`` (teacher-student), ``"mixture"`` (Gaussian mixture), ``"powerlaw"``
    (regression on power-law features) or ``"cifar10"``. ``n_train``: training samples, or None for
    the task's default (8,192; all 50,000 for CIFAR-10)."""
    import torch

    if name not in DATASET_NAMES:
        raise InvalidArgumentError(f"dataset {name!r}; use one of {', '.join(DATASET_NAMES)}")
    if n_train is not None:  # 0 used to mean the default, and a negative count trimmed CIFAR-10's end
        _check_sizes(name, n_train=n_train)
        n_train = int(n_train)

    if name == "cifar10":
        arrs = load_cifar10(root, download=download, n_train=n_train)
    else:
        build = {"synthetic": teacher_student, "teacher-student": teacher_student, "mixture": gaussian_mixture,
                 "powerlaw": powerlaw_features}[name]
        arrs = build(n_train=8192 if n_train is None else n_train, d_in=d_in, seed=seed)
    if name == "powerlaw":
        xt, yt, xs, ys = (torch.as_tensor(a) for a in arrs)
        return Dataset(xt, yt, xs, ys, name, n_classes=1, task="regression").to(device)
    xt, yt, xs, ys = (torch.as_tensor(a) for a in arrs)
    return Dataset(xt, yt, xs, ys, name).to(device)
