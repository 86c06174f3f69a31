r"""Loss curves from TensorBoard event files (``events.out.tfevents.*``).

Many training stacks (PyTorch's ``SummaryWriter``, Hugging Face's Trainer, Lightning, Megatron-LM,
torchtitan) log their scalars to TensorBoard. :func:`read_event_scalars` reads one run (a folder of
event files, or one file) with TensorBoard's own loader (``tensorboard`` is an optional dependency:
``pip install tensorboard``) into a table with a ``step`` column and one column per scalar tag,
which :meth:`~sde_scales.fitting.curves.LossCurve.from_tensorboard` then reads as any log, its
columns named by tag (``train/loss``, ``lm loss``, ``learning-rate``, ... are among the aliases).

Two things a log of a real run has, handled as TensorBoard itself does and said in a warning:

* **restarts.** A run resumed from a checkpoint logs the steps after it again, in a new file. For
  each tag, an event whose step is not past the last one kept replaces every kept event at or after
  its step (TensorBoard's "purge orphaned data"), so the curve is the run as it continued;
* **a file cut off at its end** (a run still writing, or a copy taken mid-write) reads up to its
  last complete record.

A record damaged in the middle of a file (its checksum fails with complete records after it), or a
last record complete in length whose checksum fails, would make TensorBoard's loader stop there
without a word and drop the rest of the run: it is refused with the file, the record and the step
it follows.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np

from sde_scales.errors import DataFileError, InvalidArgumentError

__all__ = ["EVENT_FILE_PREFIX", "LogRestartWarning", "TruncatedEventFileWarning", "event_files", "is_event_log",
           "read_event_scalars", "run_folder"]

#: The name every TensorBoard event file starts with.
EVENT_FILE_PREFIX = "events.out.tfevents"


class LogRestartWarning(UserWarning):
    """Events before a restart were replaced by the ones logged after it."""


class TruncatedEventFileWarning(UserWarning):
    """An event file ends in an incomplete record (a run still writing, or a copy cut off)."""


def is_event_log(path) -> bool:
    """Whether ``path`` is a TensorBoard event file, or a folder that holds event files."""
    p = Path(path)
    if p.is_dir():
        return any(p.glob(EVENT_FILE_PREFIX + "*"))
    return p.name.startswith(EVENT_FILE_PREFIX)


def run_folder(path) -> Path:
    """The folder of the run ``path`` names (the folder itself, or an event file's folder), with a
    name of its own (``.`` resolved): what the run's curve is called."""
    p = Path(path)
    run = p if p.is_dir() else p.parent
    return run.resolve() if run.name in ("", ".") else run


def event_files(path) -> list[Path]:
    """The event files of one run: ``path`` itself, or the event files in the folder ``path``, in
    the order TensorBoard reads them (by name: their names start with the time they were created).
    A folder without event files of its own but with runs below it is refused, naming them."""
    p = Path(path)
    if not p.exists():
        raise DataFileError(f"{p}: no such file or folder")
    if p.is_file():
        return [p]
    files = sorted(f for f in p.glob(EVENT_FILE_PREFIX + "*") if f.is_file())
    if not files:
        below = [f for pattern in ("*/", "*/*/") for f in p.glob(pattern + EVENT_FILE_PREFIX + "*")]
        runs = sorted({str(f.parent.relative_to(p)) for f in below})
        hint = (f"; it has runs in {runs[:8]}{' ...' if len(runs) > 8 else ''}: give one run's folder"
                if runs else "; give a curve file (CSV, Parquet, JSON) or a TensorBoard run's folder")
        raise DataFileError(f"{p}: no TensorBoard event files ({EVENT_FILE_PREFIX}.*) in this folder{hint}")
    return files


def _complete_records(path: Path) -> tuple[int, int]:
    """(complete TFRecord frames, bytes after the last one) from the frames' length fields alone:
    a frame is an 8-byte length, a 4-byte checksum of it, the data and a 4-byte checksum of the data."""
    size = path.stat().st_size
    n, off = 0, 0
    with open(path, "rb") as fh:  # the length fields alone: a file of images is not read whole
        while off + 12 <= size:
            fh.seek(off)
            (length,) = struct.unpack("<Q", fh.read(8))
            end = off + 12 + length + 4
            if end > size:
                break
            n, off = n + 1, end
    return n, size - off


def _scalar(value) -> float | None:
    """A summary value's number, where it is a scalar (a tensor of one element or a simple value)."""
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor"):
        from tensorboard.util import tensor_util

        a = tensor_util.make_ndarray(value.tensor)
        if a.size == 1 and np.issubdtype(a.dtype, np.number):
            return float(a.reshape(-1)[0])
    return None


def read_event_scalars(path):
    """One run's scalars as a table: a ``step`` column and one column per tag (empty where a tag
    was not logged at a step), sorted by step; restarts and a cut-off end handled as the module
    says. A NaN or infinite value is not put in the table (where an empty cell means "not logged"):
    ``df.attrs["nonfinite"]`` maps each such tag to its first (step, value), for the reader of the
    tags to refuse. Refused with a :class:`~sde_scales.errors.DataFileError`: no event files, no scalars, a
    damaged record (in the middle of a file, or its last one complete in length), a step that is not a whole number >= 0."""
    import pandas as pd

    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    except ImportError:
        raise InvalidArgumentError(f"{path}: reading TensorBoard event files needs the tensorboard package; install it "
                                   f"(pip install tensorboard) or export the scalars to CSV") from None
    series: dict[str, list[tuple[int, float]]] = {}
    replaced: dict[str, int] = {}
    nonfinite: dict[str, tuple[int, float]] = {}
    for f in event_files(path):
        n_frames, tail = _complete_records(f)
        n_read = 0
        last_step = None
        for event in EventFileLoader(str(f)).Load():
            n_read += 1
            if not event.HasField("summary"):
                continue
            step = int(event.step)
            if step < 0:
                raise DataFileError(f"{f}: an event at step {step}; steps are whole numbers >= 0")
            for v in event.summary.value:
                x = _scalar(v)
                if x is None:
                    continue
                if not np.isfinite(x):  # kept out of the table (an empty cell is "not logged"), named below
                    nonfinite.setdefault(v.tag, (step, x))
                    continue
                kept = series.setdefault(v.tag, [])
                if kept and step <= kept[-1][0]:  # a restart: what was logged from this step on is replaced
                    cut = next(i for i, (s, _) in enumerate(kept) if s >= step)
                    replaced[v.tag] = replaced.get(v.tag, 0) + len(kept) - cut
                    del kept[cut:]
                kept.append((step, x))
                last_step = step
        if n_read < n_frames:
            after = ("the last of the file" if n_read + 1 == n_frames else "with complete records after it")
            raise DataFileError(f"{f}: record {n_read + 1} of {n_frames} is damaged (its checksum fails), {after}"
                                + (f" (the last step read is {last_step})" if last_step is not None else "")
                                + "; TensorBoard would stop reading there. Restore the file, or export the scalars "
                                  "to CSV from a copy that reads")
        if tail:
            where = f"read up to step {last_step}" if last_step is not None else "no scalar before them"
            warnings.warn(f"{f}: the last {tail} bytes are not a complete record (a run still writing, or a copy cut "
                          f"off); {where}", TruncatedEventFileWarning, stacklevel=3)
    if not series:
        raise DataFileError(f"{path}: no scalar in its event files; is this the training run's log folder?")
    if replaced:
        warnings.warn(f"{path}: a restart logged steps again; {sum(replaced.values())} earlier events "
                      f"({', '.join(f'{t}: {n}' for t, n in sorted(replaced.items()))}) were replaced by those logged "
                      f"after it, as TensorBoard shows them", LogRestartWarning, stacklevel=3)
    if "step" in series:
        raise DataFileError(f"{path}: a scalar tag is called 'step', the name of the events' own step column; export "
                            f"the scalars to CSV and name the columns there")
    frames = [pd.Series(dict(v), name=tag, dtype=float) for tag, v in series.items()]
    df = pd.concat(frames, axis=1).sort_index()
    df.index.name = "step"
    df = df.reset_index()
    df.attrs["nonfinite"] = nonfinite
    return df
