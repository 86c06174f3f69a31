"""The text encoding of a log file, from its first bytes.

Tools write logs as UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8" writes one), and
Windows PowerShell 5's ``Out-File`` and ``>`` write UTF-16 with a mark. Read as UTF-8, a UTF-16 file
is refused as no table at all, and a UTF-8 mark turns a JSON log's first line into no JSON.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["file_encoding"]


def file_encoding(path: str | Path) -> str:
    """``"utf-16"`` for a file that starts with a UTF-16 byte-order mark (either byte order; Python's
    codec reads the mark and drops it), else ``"utf-8-sig"`` (UTF-8, a mark dropped where there is
    one). A file that cannot be opened gets ``"utf-8-sig"``: its reader's own error names it."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
    except OSError:
        return "utf-8-sig"
    return "utf-16" if head in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
