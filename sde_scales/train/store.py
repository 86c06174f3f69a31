"""A resumable Parquet run store that notices damage: one atomic pair of files per finished run.

Layout under ``root``::

    trajectories/<run_id>.parquet   long table: run_id, step, epoch, metric, layer, value
    runs/<run_id>.parquet           one row: run_id, the RunConfig fields, status, diverged_step, seconds,
                                    final metrics
    damaged/                        files found damaged, moved here (never deleted), with a note

Each file is written to an exclusively created temporary name and renamed; the run row is written
last, so a run counts as finished exactly when its row exists *and checks out*. Every file carries,
in its Parquet metadata, the SHA-256 of its content (``pandas.util.hash_pandas_object`` of the
table, which a flipped bit, a truncation or a swapped file changes); when read, the digest is
recomputed and the run id is recomputed from the stored configuration, and both must match the file
name. A run that fails a check is moved to ``damaged/`` with a message and no longer counts as
finished, so the next sweep trains it again. Nothing that checks out is ever overwritten.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sde_scales.atomic import atomic_path
from sde_scales.errors import DataFileError

__all__ = ["RunStore", "content_digest"]

_KEY = b"sde_scales_sha256"


def content_digest(df: pd.DataFrame) -> str:
    """SHA-256 of a table's content: its column names and the row hashes of every column."""
    h = hashlib.sha256(json.dumps(list(map(str, df.columns))).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


class RunStore:
    def __init__(self, root: str | Path, *, quiet: bool = False):
        self.root = Path(root)
        self.quiet = quiet
        self._rows: dict = {}  # run id -> ((mtime, size), checked run row)
        self._legacy_warned = False
        (self.root / "runs").mkdir(parents=True, exist_ok=True)
        (self.root / "trajectories").mkdir(parents=True, exist_ok=True)

    @classmethod
    def existing(cls, root: str | Path, *, need_runs: bool = False, quiet: bool = False) -> "RunStore":
        """The store at ``root`` for reading, refused by name where there is none (no ``runs/``
        folder: a mistyped path, which the constructor would create) and, with ``need_runs``, where
        it has no finished run."""
        from sde_scales.errors import InvalidArgumentError

        root = Path(root)
        if not (root / "runs").is_dir():
            raise InvalidArgumentError(f"--store {root}: no run store there (expected {root}/runs); make one with "
                                       f"`sde-scales sweep --out {root}`")
        store = cls(root, quiet=quiet)
        if need_runs and not store.finished():  # checked runs, not yet read into one table
            raise InvalidArgumentError(f"--store {root}: the store has no finished runs")
        return store

    # ------------------------------------------------------------------ writing
    def _atomic(self, df: pd.DataFrame, path: Path) -> None:
        table = pa.Table.from_pandas(df, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _KEY: content_digest(df).encode()})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)

    def write(self, outcome) -> bool:
        """Write one run; returns False (and writes nothing) when a run that checks out is there."""
        rid = outcome.config.run_id
        run_path = self.root / "runs" / f"{rid}.parquet"
        if run_path.exists():
            try:
                self._check_row(rid)
                return False
            except DataFileError as exc:  # a damaged earlier copy: keep it aside, write the new one
                self._move_aside(rid, str(exc))
        self._atomic(outcome.frame(), self.root / "trajectories" / f"{rid}.parquet")
        row = {"run_id": rid, **{k: (str(v) if isinstance(v, tuple) else v) for k, v in asdict(outcome.config).items()},
               "status": outcome.status, "diverged_step": outcome.diverged_step, "seconds": outcome.seconds}
        row.update({f"final_{k}": v for k, v in outcome.final.items()})
        self._atomic(pd.DataFrame([row]), run_path)
        return True

    # ------------------------------------------------------------------ reading and checking
    def _read(self, path: Path) -> pd.DataFrame:
        """The table of one file, after checking its digest; DataFileError says what is wrong. A file
        without a digest (written before checksums existed) is read as it is, with one warning."""
        try:
            table = pq.read_table(path)
            want = (table.schema.metadata or {}).get(_KEY)
            df = table.to_pandas()  # parses the embedded pandas metadata, which a flipped bit can break
            got = content_digest(df) if want is not None else None  # decodes every string (UTF-8 checked)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is damaged
            raise DataFileError(f"{path}: unreadable Parquet ({type(exc).__name__}: {exc})") from None
        if want is None:
            if not self._legacy_warned and not self.quiet:
                print(f"run store {self.root}: files without content checksums (written by an older version); "
                      f"their run ids are still checked", file=sys.stderr)
            self._legacy_warned = True
            return df
        if got != want.decode(errors="replace"):
            raise DataFileError(f"{path}: content checksum {got[:12]}.. differs from the stored "
                                f"{want.decode(errors='replace')[:12]}.."
                                f" (the file was changed after it was written)")
        return df

    def _check_row(self, rid: str) -> pd.DataFrame:
        """The run row of ``rid`` after every check: digest, one row naming ``rid``, the run id
        recomputed from the stored configuration, a trajectory file present."""
        run_path = self.root / "runs" / f"{rid}.parquet"
        row = self._read(run_path)
        if len(row) != 1 or row.run_id.iloc[0] != rid:
            raise DataFileError(f"{run_path}: holds run(s) {list(row.run_id)[:3]}, not {rid}")
        try:
            again = config_from_row(row.iloc[0]).run_id
        except (ValueError, TypeError) as exc:
            raise DataFileError(f"{run_path}: its stored configuration is not valid ({exc})") from None
        if again != rid:
            raise DataFileError(f"{run_path}: its stored configuration has run id {again}, not {rid}")
        if not (self.root / "trajectories" / f"{rid}.parquet").exists():
            raise DataFileError(f"{run_path}: its trajectory file is missing")
        return row

    def _move_aside(self, rid: str, why: str) -> None:
        dest = self.root / "damaged"
        dest.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for sub in ("runs", "trajectories"):
            f = self.root / sub / f"{rid}.parquet"
            if f.exists():
                f.replace(dest / f"{sub}-{rid}-{stamp}.parquet")
        with open(dest / "NOTES.txt", "a") as fh:
            fh.write(f"{stamp} {rid}: {why}\n")
        self._rows.pop(rid, None)
        if not self.quiet:
            print(f"run store {self.root}: run {rid} is damaged ({why}); moved to {dest} and trained again by the "
                  f"next sweep", file=sys.stderr)

    def _files(self, sub: str) -> list[Path]:
        """Committed files only: hidden ``.*`` files are temporaries of a writer (maybe killed)."""
        return sorted(p for p in (self.root / sub).glob("*.parquet") if not p.name.startswith("."))

    def _verified(self) -> dict[str, pd.DataFrame]:
        """Run rows that check out (cached by file size and time); damaged runs are moved aside."""
        seen = set()
        for p in self._files("runs"):
            rid = p.stem
            st = p.stat()
            key = (st.st_mtime_ns, st.st_size)
            seen.add(rid)
            if rid in self._rows and self._rows[rid][0] == key:
                continue
            try:
                self._rows[rid] = (key, self._check_row(rid))
            except DataFileError as exc:
                self._move_aside(rid, str(exc))
                seen.discard(rid)
        for rid in set(self._rows) - seen:
            self._rows.pop(rid)
        return {rid: row for rid, (_, row) in self._rows.items()}

    def finished(self) -> set[str]:
        """Ids of the runs that check out; damaged ones are moved aside (and so trained again)."""
        return set(self._verified())

    def runs(self) -> pd.DataFrame:
        rows = self._verified()
        if not rows:
            return pd.DataFrame()
        return pd.concat([rows[rid] for rid in sorted(rows)], ignore_index=True)

    def read(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The finished runs and their trajectories, read so that the two tables hold the same runs.

        Reading :meth:`runs` and then :meth:`trajectories` can disagree: a trajectory found damaged
        by the second read is moved aside with its run, which the first table already holds (and a
        sweep writing beside the reader can finish a run between the two). Here the trajectories
        are read first, and the runs table keeps exactly the runs whose trajectory checked out.
        Returns ``(runs, trajectories)``: one row per run (sorted by run id) and the long table."""
        frames, kept = self._trajectory_frames(sorted(self.finished()))
        rows = self._verified()
        both = [(rid, f) for rid, f in zip(kept, frames) if rid in rows]  # not moved aside meanwhile
        if not both:
            return pd.DataFrame(), self._empty_trajectories()
        return (pd.concat([rows[rid] for rid, _ in both], ignore_index=True),
                pd.concat([f for _, f in both], ignore_index=True))

    @staticmethod
    def _empty_trajectories() -> pd.DataFrame:
        return pd.DataFrame(columns=["run_id", "step", "epoch", "metric", "layer", "value"])

    def trajectories(self, run_ids=None) -> pd.DataFrame:
        """Long table of the runs' trajectories (default: every finished run). A trajectory whose
        checksum or run id fails is moved aside with its run and left out, with a message. To pair
        it with the runs table, use :meth:`read`, which leaves such a run out of both."""
        ids = sorted(self.finished()) if run_ids is None else list(run_ids)
        frames, _ = self._trajectory_frames(ids)
        return pd.concat(frames, ignore_index=True) if frames else self._empty_trajectories()

    def _trajectory_frames(self, ids) -> tuple[list[pd.DataFrame], list[str]]:
        """The checked trajectory table of each run of ``ids`` and the ids whose table checked out
        (the others moved aside with their runs)."""
        frames, kept = [], []
        for rid in ids:
            f = self.root / "trajectories" / f"{rid}.parquet"
            if not f.exists():
                raise DataFileError(f"{f}: missing trajectory of run {rid}; run the sweep again to retrain it")
            try:
                df = self._read(f)
                if set(df.run_id.unique()) != {rid}:
                    raise DataFileError(f"{f}: holds runs {sorted(set(df.run_id))[:3]}, not {rid}")
            except DataFileError as exc:
                self._move_aside(rid, str(exc))
                continue
            frames.append(df)
            kept.append(rid)
        return frames, kept


def config_from_row(row):
    """The :class:`RunConfig` a stored run row (a pandas Series of the runs table) describes: cells
    as Python values, ``schedule_kw`` parsed, fields added since the row was written at their
    defaults. Raises what RunConfig raises for an invalid configuration."""
    from sde_scales.train.trainer import RunConfig

    from sde_scales.train.trainer import _ADDED_FIELDS

    cfg = {f.name: _from_cell(row[f.name]) for f in fields(RunConfig) if f.name in row.index}
    for k in _ADDED_FIELDS:  # a table mixing older files has NaN where a later field was not yet stored
        if isinstance(cfg.get(k), float) and cfg[k] != cfg[k]:
            cfg.pop(k)
    if isinstance(cfg.get("schedule_kw"), str):
        cfg["schedule_kw"] = _parse_kw(cfg["schedule_kw"])
    return RunConfig(**cfg)


def _from_cell(v):
    """A Parquet cell as the Python value RunConfig holds (numpy scalars to int/float)."""
    if hasattr(v, "item"):
        v = v.item()
    return v


def _parse_kw(text: str) -> tuple:
    """``schedule_kw`` is stored as the string of its tuple of pairs."""
    import ast

    try:
        kw = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise DataFileError(f"schedule_kw {text!r} is not a tuple of (name, value) pairs") from None
    return tuple(tuple(kv) for kv in kw)
