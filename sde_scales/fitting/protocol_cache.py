"""Resumable protocol results: each (protocol, law) result kept on disk, keyed by all it depends on.

The held-out experiments (``experiments/fit_*.py``) fit every law on every split of a family of
curves: 10 to 45 minutes on two cores. A :class:`ProtocolCache` keeps each finished (protocol, law)
result under ``<out>/cache/``, so that a run that is stopped, or run again with one more law,
redoes only what is missing. An entry is used only when everything its numbers depend on is the
same:

* the protocol's splits: each curve's name and the bytes of its steps, rates and losses (a changed
  loss value or a rounding of the file gives another key);
* the settings passed (skip, window, the noise-free loss of a model family, ...);
* the toolkit's code: the bytes of every module of ``sde_scales`` and the versions of numpy and
  scipy, so that after any change to a law or the fit nothing computed before it is reused.

An entry is two files written atomically: ``<key>.npz`` (the predictions) first, then
``<key>.json`` (the rows, the extra result and the seconds the computation took), whose presence
marks the entry complete. A damaged entry (unreadable JSON or arrays, or arrays that do not match
the rows) is moved to ``cache/damaged/`` and computed again; nothing else is ever overwritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from sde_scales.atomic import atomic_path, write_json_atomic
from sde_scales.fitting.curves import LossCurve

__all__ = ["ProtocolCache", "cached_auto_protocol", "cached_protocol", "code_fingerprint"]

_FINGERPRINT: str | None = None


def code_fingerprint() -> str:
    """SHA-256 of every ``sde_scales`` module's source and of the numpy and scipy versions: what a
    cached result's numbers depend on besides its inputs (computed once per process)."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        import scipy

        root = Path(__file__).resolve().parents[1]
        h = hashlib.sha256(f"numpy {np.__version__} scipy {scipy.__version__}".encode())
        for p in sorted(root.rglob("*.py")):
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
        _FINGERPRINT = h.hexdigest()
    return _FINGERPRINT


def _curve_digest(c: LossCurve) -> str:
    h = hashlib.sha256(c.name.encode())
    for a in (c.step, c.lr, c.loss):
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _settings_digest(value) -> str:
    """A digest of JSON-like settings whose arrays count by their bytes."""
    h = hashlib.sha256()

    def feed(v):
        if isinstance(v, dict):
            h.update(b"{")
            for k in sorted(v):
                h.update(repr(k).encode())
                feed(v[k])
            h.update(b"}")
        elif isinstance(v, (list, tuple)):
            h.update(b"[")
            for x in v:
                feed(x)
            h.update(b"]")
        elif isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v)
            h.update(f"array {a.dtype} {a.shape}".encode())
            h.update(a.tobytes())
        else:
            h.update(repr(v).encode())

    feed(value)
    return h.hexdigest()


def _encode(obj):
    """``obj`` as strict JSON that :func:`_decode` turns back into an equal object: a non-finite
    float as ``{"__float__": "nan"}`` (or ``"inf"``, ``"-inf"``), a tuple as ``{"__tuple__": [...]}``,
    numpy scalars and arrays as Python numbers and lists. A read-back result then equals the one
    computed, NaN included (strict JSON's null would turn a NaN into None)."""
    if isinstance(obj, dict):
        return {str(k): _encode(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_encode(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        return _encode(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return {"__float__": repr(obj)}
    return obj


def _decode(obj):
    """The inverse of :func:`_encode`."""
    if isinstance(obj, dict):
        if set(obj) == {"__float__"}:
            return float(obj["__float__"])
        if set(obj) == {"__tuple__"}:
            return tuple(_decode(v) for v in obj["__tuple__"])
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


class ProtocolCache:
    """Finished (protocol, law) results of a held-out experiment in ``directory``.

    Parameters
    ----------
    directory : path
        Where the entries live (created when the first one is written).
    enabled : bool
        False: compute everything and write nothing (an experiment's ``--no-cache``).
    """

    def __init__(self, directory, enabled: bool = True):
        self.directory = Path(directory)
        self.enabled = bool(enabled)
        self.hits = 0
        self.misses = 0
        self.damaged: list[str] = []

    def key(self, label: str, splits: list[tuple[list[LossCurve], LossCurve]], settings: dict) -> str:
        """The entry's file stem: a readable slug of ``label`` and a digest of the splits' curves,
        the settings and :func:`code_fingerprint`."""
        h = hashlib.sha256(code_fingerprint().encode())
        h.update(label.encode())
        for fitted, held in splits:
            h.update(b"|fit:" + ",".join(_curve_digest(c) for c in fitted).encode())
            h.update(b"|held:" + _curve_digest(held).encode())
        h.update(_settings_digest(settings).encode())
        slug = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in label)[:80]
        return f"{slug}-{h.hexdigest()[:20]}"

    def run(self, label: str, splits: list[tuple[list[LossCurve], LossCurve]], settings: dict,
            compute: Callable[[], tuple[list[dict], list[np.ndarray], object]]
            ) -> tuple[list[dict], list[np.ndarray], object, float, bool]:
        """``compute()`` -> (rows, predictions, extra), or the stored result of an earlier call with
        the same label, curves, settings and code, equal to it (:func:`_encode`: NaN and tuples
        survive the round trip; numpy scalars come back as Python numbers). ``rows`` and ``extra``:
        dicts, lists, tuples, strings, numbers, None; ``predictions`` one array per split. Returns
        (rows, predictions, extra, seconds the computation took, whether it was read back)."""
        stem = self.key(label, splits, settings)
        if self.enabled:
            got = self._load(stem, len(splits))
            if got is not None:
                self.hits += 1
                return (*got, True)
        t0 = time.perf_counter()
        rows, preds, extra = compute()
        seconds = time.perf_counter() - t0
        self.misses += 1
        if self.enabled:
            self._store(stem, label, rows, preds, extra, seconds)
        return rows, preds, extra, seconds, False

    def _load(self, stem: str, n_splits: int):
        jpath, npath = self.directory / f"{stem}.json", self.directory / f"{stem}.npz"
        if not jpath.exists():
            return None
        try:
            doc = json.loads(jpath.read_text())
            with np.load(npath, allow_pickle=False) as z:
                preds = [np.array(z[f"p{i}"]) for i in range(int(doc["n_predictions"]))]
            rows, extra, seconds = _decode(doc["rows"]), _decode(doc["extra"]), float(doc["seconds"])
            if len(rows) != n_splits or len(preds) != n_splits:
                raise ValueError(f"{len(rows)} rows and {len(preds)} predictions for {n_splits} splits")
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            dest = self.directory / "damaged"
            dest.mkdir(parents=True, exist_ok=True)
            for p in (jpath, npath):
                if p.exists():
                    p.replace(dest / p.name)
            self.damaged.append(f"{stem}: {type(exc).__name__}: {exc}")
            return None
        return rows, preds, extra, seconds

    def _store(self, stem, label, rows, preds, extra, seconds) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, **{f"p{i}": np.asarray(p, dtype=float) for i, p in enumerate(preds)})
        with atomic_path(self.directory / f"{stem}.npz") as tmp:
            tmp.write_bytes(buf.getvalue())
        write_json_atomic(self.directory / f"{stem}.json",
                          {"label": label, "rows": _encode(rows), "extra": _encode(extra), "seconds": seconds,
                           "n_predictions": len(preds)})

    def summary(self) -> str:
        """One line: how many results were read back, computed, and found damaged."""
        if not self.enabled:
            return "cache off: every result computed"
        text = (f"{self.hits} result(s) read back from {self.directory}, {self.misses} computed "
                f"(delete the folder, or pass --no-cache, to compute all)")
        if self.damaged:
            text += f"; {len(self.damaged)} damaged entr{'y' if len(self.damaged) == 1 else 'ies'} moved to " \
                    f"{self.directory / 'damaged'} and computed again"
        return text


def cached_protocol(cache: ProtocolCache, protocol: str, law, splits, *, skip_steps: int, smooth_steps: int = 1000,
                    truth: dict | None = None) -> tuple[dict, list[np.ndarray]]:
    """:func:`~sde_scales.fitting.protocols.run_protocol` through ``cache``: the law's table row
    (:func:`~sde_scales.fitting.protocols.protocol_row`, its ``seconds`` those of the fits, with
    ``read_back``: whether they were read from the cache) and the predictions of the held-out
    curves."""
    from sde_scales.fitting.protocols import run_protocol

    settings = {"law": repr(law), "skip_steps": skip_steps, "smooth_steps": smooth_steps,
                "truth": _truth_of(truth, splits)}

    def compute():
        per, preds = run_protocol(law, splits, skip_steps=skip_steps, smooth_steps=smooth_steps, truth=truth)
        return per, preds, None

    per, preds, _, seconds, hit = cache.run(f"{protocol} {law.label}", splits, settings, compute)
    return _row(protocol, law.label, per, seconds, hit), preds


def cached_auto_protocol(cache: ProtocolCache, protocol: str, splits, *, skip_steps: int, smooth_steps: int = 1000,
                         workers: int = 1, truth: dict | None = None, label: str = "auto", average: bool = True,
                         choices: dict | None = None) -> tuple[dict, list[np.ndarray], dict]:
    """:func:`~sde_scales.fitting.protocols.run_auto_protocol` through ``cache``: the table row
    called ``label`` (as :func:`cached_protocol`'s), the predictions, and the choices: each fitted
    set (a tuple of curve names) mapped to (the choice of
    :func:`~sde_scales.fitting.report.choose_law`, None), the fits themselves not kept. ``workers``
    does not change the numbers, so it is not part of the key; ``average`` (the mean of the laws the
    folds do not separate, or the least-error pick) is. ``choices``: the third value of an earlier
    call with the same splits and settings, whose choices are reused (not run again) where this
    row is computed; they are what the same settings would choose, so they are not part of the key."""
    from sde_scales.fitting.protocols import run_auto_protocol
    from sde_scales.fitting.report import AUTO_CANDIDATES

    settings = {"law": "auto", "candidates": [list(map(str, c)) for c in AUTO_CANDIDATES], "skip_steps": skip_steps,
                "smooth_steps": smooth_steps, "truth": _truth_of(truth, splits), "average": bool(average)}

    def compute():
        per, preds, made = run_auto_protocol(splits, skip_steps=skip_steps, smooth_steps=smooth_steps,
                                             workers=workers, truth=truth, average=average,
                                             choices=None if choices is None else {k: a for k, (a, _) in choices.items()})
        return per, preds, [{"fitted": list(k), "choice": a} for k, (a, _) in made.items()]

    per, preds, extra, seconds, hit = cache.run(f"{protocol} {label}", splits, settings, compute)
    return (_row(protocol, label, per, seconds, hit), preds,
            {tuple(e["fitted"]): (e["choice"], None) for e in extra})


def _row(protocol: str, label: str, per: list[dict], seconds: float, hit: bool) -> dict:
    """The protocol table's row, saying whether its numbers were read back."""
    from sde_scales.fitting.protocols import protocol_row

    return {**protocol_row(protocol, label, per, seconds), "read_back": hit}


def _truth_of(truth: dict | None, splits) -> dict | None:
    """The noise-free losses of the held-out curves that have one (what the rows depend on)."""
    if truth is None:
        return None
    return {h.name: np.asarray(truth[h.name], dtype=float) for _, h in splits if h.name in truth}
