"""A resumable Parquet run store: one atomic pair of files per finished run.

Layout under ``root``::

    trajectories/<run_id>.parquet   long table: run_id, step, epoch, metric, layer, value
    runs/<run_id>.parquet           one row: run_id, the RunConfig fields, status, diverged_step, seconds,
                                    final metrics

Each file is written to a temporary name and renamed; the run row is written last, so a run counts
as finished exactly when its row exists. Killing a sweep loses only the runs in flight; running
the same sweep again skips finished runs. Nothing already written is ever overwritten.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from sde_scales.atomic import atomic_path
from sde_scales.errors import DataFileError

__all__ = ["RunStore"]


class RunStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        (self.root / "runs").mkdir(parents=True, exist_ok=True)
        (self.root / "trajectories").mkdir(parents=True, exist_ok=True)

    def _atomic(self, df: pd.DataFrame, path: Path) -> None:
        with atomic_path(path) as tmp:
            df.to_parquet(tmp, index=False)

    def _files(self, sub: str) -> list[Path]:
        """Committed files only: hidden ``.*`` files are temporaries of a writer (maybe killed)."""
        return sorted(p for p in (self.root / sub).glob("*.parquet") if not p.name.startswith("."))

    def finished(self) -> set[str]:
        return {p.stem for p in self._files("runs")}

    def write(self, outcome) -> bool:
        """Write one run; returns False (and writes nothing) when it is already there."""
        rid = outcome.config.run_id
        run_path = self.root / "runs" / f"{rid}.parquet"
        if run_path.exists():
            return False
        self._atomic(outcome.frame(), self.root / "trajectories" / f"{rid}.parquet")
        row = {"run_id": rid, **{k: (str(v) if isinstance(v, tuple) else v) for k, v in asdict(outcome.config).items()},
               "status": outcome.status, "diverged_step": outcome.diverged_step, "seconds": outcome.seconds}
        row.update({f"final_{k}": v for k, v in outcome.final.items()})
        self._atomic(pd.DataFrame([row]), run_path)
        return True

    def runs(self) -> pd.DataFrame:
        files = self._files("runs")
        if not files:
            return pd.DataFrame()
        frames = []
        for f in files:
            try:
                frames.append(pd.read_parquet(f))
            except Exception as exc:  # noqa: BLE001
                raise DataFileError(f"{f}: corrupt run row ({exc}); delete it to re-run that run") from None
        return pd.concat(frames, ignore_index=True)

    def trajectories(self, run_ids=None) -> pd.DataFrame:
        ids = sorted(self.finished()) if run_ids is None else list(run_ids)
        frames = []
        for rid in ids:
            f = self.root / "trajectories" / f"{rid}.parquet"
            try:
                frames.append(pd.read_parquet(f))
            except Exception as exc:  # noqa: BLE001
                raise DataFileError(f"{f}: missing or corrupt trajectory ({exc}); delete runs/{rid}.parquet to re-run it") from None
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["run_id", "step", "epoch", "metric", "layer", "value"])
