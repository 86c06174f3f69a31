"""Tables a user brings to the command line (``sde-scales rate``, ``collapse``, schedule files):
reading them and taking a numeric column, with errors that name the file, the column and the row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sde_scales.errors import DataFileError
from sde_scales.validation import OUT_OF_RANGE, out_of_range

__all__ = ["label_column", "numeric_column", "read_table"]


def read_table(path):
    """A CSV (``.csv``; ``.tsv`` tab-separated) or Parquet (``.parquet``, ``.pq``) table as a pandas
    DataFrame; a missing file or one that cannot be read is a :class:`DataFileError` naming it."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"{p}: no such file; give a CSV or Parquet table")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        return pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",")
    except Exception as exc:  # noqa: BLE001 - any reader failure is a corrupt file for the user
        raise DataFileError(f"{p}: cannot be read as a table ({type(exc).__name__}: {exc}); give a complete CSV or "
                            f"Parquet file") from None


def numeric_column(df, name: str, source: str, *, flag: str, what: str, hint: str = "") -> np.ndarray:
    """Column ``name`` of ``df`` as floats. Refused, naming the row and the value: a column the table
    lacks (with its columns and ``flag``, the option that names another), booleans, text that is
    no number, and values that are not finite (``hint`` says what such a value most likely is)."""
    import pandas as pd

    if name not in df.columns:
        raise DataFileError(f"{source}: no column {name!r} for the {what}; the table has columns "
                            f"{[str(c) for c in df.columns]} (name it with {flag})")
    col = df[name]
    if col.dtype == bool:
        raise DataFileError(f"{source}, column {name!r}: booleans, not numbers; give the {what}")
    v = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    text = np.isnan(v) & col.notna().to_numpy()
    if text.any():
        i = int(np.argmax(text))
        raise DataFileError(f"{source}, column {name!r}, row {i}: {str(col.iloc[i])!r} is not a number; fix the row")
    bad = ~np.isfinite(v)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataFileError(f"{source}, column {name!r}, row {i}: {what} {v[i]} is not finite{hint}; fix or drop the "
                            f"row")
    out = out_of_range(v)
    if out.any():
        i = int(np.argmax(out))
        raise DataFileError(f"{source}, column {name!r}, row {i}: {what} {v[i]:.6g} {OUT_OF_RANGE}: a corrupt row "
                            f"(fix or drop it), or a column in a unit that puts it there (rescale the column: an "
                            f"exponent does not depend on the unit)")
    return v


def label_column(df, name: str, source: str, *, flag: str, what: str) -> np.ndarray:
    """Column ``name`` of ``df`` as text labels (a seed number or a run's name alike). Refused,
    naming the row: a column the table lacks (with its columns and ``flag``) and a row without a
    label."""
    if name not in df.columns:
        raise DataFileError(f"{source}: no column {name!r} for the {what}; the table has columns "
                            f"{[str(c) for c in df.columns]} (name it with {flag})")
    missing = df[name].isna().to_numpy()
    if missing.any():
        raise DataFileError(f"{source}, column {name!r}, row {int(np.argmax(missing))}: no {what}; every row names "
                            f"its run")
    return df[name].astype(str).to_numpy()
