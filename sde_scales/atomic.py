"""Atomic writes: write to a hidden temporary file beside the target, then rename it over.

A reader never sees a half-written file, and a writer killed mid-write leaves only the hidden
temporary file (``.<stem>.<random>.tmp<suffix>``, created exclusively), which nothing reads. The suffix is kept so that
writers that infer the format from it (``matplotlib.savefig``) keep working.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["STDOUT", "atomic_path", "check_writable", "file_mode", "strict_json", "unwritable", "write_json_atomic",
           "write_text_atomic"]


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (``/proc/self/status``);
    elsewhere set and restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode(path: Path) -> int:
    """The permissions a file written at ``path`` gets: those of the file it replaces, else the
    ones ``open()`` would give (0o666 less the umask). ``mkstemp`` creates its files 0o600, so
    without this every figure, JSON file and run-store file was readable by its owner alone."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it is renamed to ``path``, with the
    permissions of :func:`file_mode`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # created exclusively (O_EXCL, a fresh random name): never an existing file or a planted link
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    except OSError as exc:
        raise unwritable(path, exc) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, file_mode(path))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def unwritable(path: Path, exc: OSError):
    """The error for an output ``path`` that cannot be written (a read-only or virtual file
    system, a folder without write permission): it names the path and the system's reason."""
    from sde_scales.errors import UnwritablePathError

    where = Path(exc.filename).parent if exc.filename else path.parent
    return UnwritablePathError(f"{path}: cannot be written (creating a file in {where} failed: "
                               f"{exc.strerror or type(exc).__name__}); give a path in a folder you can write to")


def check_writable(path: str | Path, *, folder: bool = False) -> None:
    """Refuse, before any work, an output ``path`` whose folder (or the nearest existing folder
    above it, where it is to be created) does not take a new file: a hidden file is created there
    and removed at once. A result computed for an hour was lost to the traceback at its end.
    ``folder``: ``path`` is an output folder, whose files are written in it."""
    path = Path(path)
    where = path if folder else path.parent  # the folder the files go into
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir():
        return  # a file on the way: the caller says so in its own words
    try:
        fd, name = tempfile.mkstemp(dir=where, prefix=f".{path.stem}.", suffix=".probe")
    except OSError as exc:
        raise unwritable(path, exc) from None
    os.close(fd)
    os.unlink(name)


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def strict_json(obj):
    """``obj`` with every non-finite float replaced by None and numpy scalars and arrays turned into
    Python numbers and lists, so that ``json.dumps(..., allow_nan=False)`` writes strict JSON."""
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy arrays and scalars
        return strict_json(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


#: The path that means standard output (``--json -``).
STDOUT = "-"


def write_json_atomic(path: str | Path, obj) -> Path:
    """Write ``obj`` as strict JSON (null for NaN and infinities), atomically; ``"-"``
    (:data:`STDOUT`) writes it to the process's standard output instead (``sys.__stdout__``, the
    one the CLI keeps for it while it prints its table on standard error)."""
    text = json.dumps(strict_json(obj), indent=2, allow_nan=False)
    if str(path) == STDOUT:
        sys.__stdout__.write(text + "\n")
        sys.__stdout__.flush()
        return Path(path)
    return write_text_atomic(path, text)
