r"""Training logs as printed: lines of ``key value`` pairs, read into records.

Many runs leave no table, only what the training loop printed: nanoGPT's
``iter 100: loss 4.2345, time 123.45ms, mfu 12.34%``, Megatron-LM's
``iteration 100/ 5000 | learning rate: 1.5E-04 | lm loss: 6.5E+00 |``, a hand-written
``step=100 lr=3e-4 loss=4.2``, torchtitan's coloured ``step: 10  loss: 9.1``. Each line becomes a
record of the numbers it names, and the records are read as a JSON log's
(:meth:`~sde_scales.fitting.curves.LossCurve.from_text_log`): columns by their names and the
common aliases, records without the loss are other events.

The rules, chosen so that a line is never read as something it does not say:

* A value is a number (``12``, ``-3.5``, ``1.5E-04``, ``.5``; a unit or ``%`` may follow it) or
  ``nan`` / ``inf`` (a diverged step), preceded by its key and an optional ``:`` or ``=``.
* In a line split into fields by ``|`` (Megatron-LM), a key is the run of words just before the
  value (``learning rate``, ``lm loss``); a field's first value is its own, so ``100/ 5000`` is
  100.
* Elsewhere a key is the one word just before the value (``iter``, ``loss``, ``lr``); where two
  values of one line would share a key (``train loss 4.1, val loss 4.2``), each takes the word
  before it too (``train loss``, ``val loss``).
* A word is letters, digits, ``_``, ``-``, ``/`` and ``.``, starting with a letter; a number inside
  a word (``gpt2``, ``1.0e+01``) is not a value. ANSI colour codes and quotes are removed first.
* Numbers with thousands separators (``1,234``) are not read as one number: the part before the
  comma is taken, which a step column then refuses (steps that do not increase) rather than
  misread.
"""

from __future__ import annotations

import re
from pathlib import Path

from sde_scales.errors import DataFileError

__all__ = ["TEXT_LOG_SUFFIXES", "looks_like_text_log", "parse_line", "read_text_log"]

#: Suffixes read as printed logs whatever they hold.
TEXT_LOG_SUFFIXES = (".log", ".out", ".err")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_WORD = r"[A-Za-z_][\w\-/.]*"
_NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?!\d|\.\d)|[-+]?(?:nan|NaN|NAN|inf|Inf|INF)(?!\w)"
_SEP = r"(?:\s*[:=]\s*|\s+)"  # a key and its value are apart: "loss 4.2", "loss: 4.2", "loss=4.2", not "gpt2"
# a word, then the separator, then a number (a unit or "%" may follow it: "123.45ms")
_ONE = re.compile(rf"(?<![\w.+\-/])({_WORD}){_SEP}({_NUMBER})")
# in a "|" field: the run of words before the field's first number
_PHRASE = re.compile(rf"(?<![\w.+\-/])({_WORD}(?:[ \t]+{_WORD})*){_SEP}({_NUMBER})")


def parse_line(line: str) -> dict[str, float]:
    """The ``key: value`` pairs of one printed line, as a dict of floats (empty when it has none).

    >>> parse_line("iter 100: loss 4.2345, time 123.45ms, mfu 12.34%")
    {'iter': 100.0, 'loss': 4.2345, 'time': 123.45, 'mfu': 12.34}
    >>> parse_line("step 500: train loss 4.1234, val loss 4.2345")
    {'step': 500.0, 'train loss': 4.1234, 'val loss': 4.2345}
    >>> parse_line(" iteration      100/    5000 | learning rate: 1.5E-04 | lm loss: 6.5E+00 |")
    {'iteration': 100.0, 'learning rate': 0.00015, 'lm loss': 6.5}
    """
    line = _ANSI.sub("", line).replace("'", " ").replace('"', " ")
    if "|" in line:
        out = {}
        for field in line.split("|"):
            m = _PHRASE.search(field)
            if m and m.group(1) not in out:
                out[m.group(1)] = float(m.group(2))
        return out
    pairs = [(m.start(1), m.group(1), m.group(2)) for m in _ONE.finditer(line)]
    keys = [k for _, k, _ in pairs]
    out = {}
    for start, key, val in pairs:
        if keys.count(key) > 1:  # "train loss 4.1, val loss 4.2": the word before names each
            before = re.search(rf"({_WORD})[ \t]+$", line[:start])
            if before is None:
                continue
            key = f"{before.group(1)} {key}"
        if key not in out:
            out[key] = float(val)
    return out


def looks_like_text_log(path: str | Path, probe_lines: int = 50) -> bool:
    """True where ``path`` is a printed log rather than a table. Most of its first ``probe_lines``
    non-empty lines that are not comments hold a ``key value`` pair (a table's rows hold numbers
    only, its header names only); a file with a suffix of :data:`TEXT_LOG_SUFFIXES` is one unless it
    is plainly a table (no pair on any line, and a first line split by ``,``, ``;`` or a tab)."""
    p = Path(path)
    lines = []
    try:
        with open(p, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                s = line.strip()
                if s and not s.startswith("#"):
                    lines.append(s)
                if len(lines) >= probe_lines:
                    break
    except OSError:
        return False
    with_pairs = sum(1 for s in lines[1:] if parse_line(s))  # the first line may be a table's header
    if p.suffix.lower() in TEXT_LOG_SUFFIXES:
        table = bool(lines) and with_pairs == 0 and any(len(lines[0].split(c)) > 1 for c in (",", ";", "\t"))
        return not table
    return len(lines) >= 2 and with_pairs > (len(lines) - 1) / 2


def read_text_log(path: str | Path) -> list[dict]:
    """The records of a printed log: one dict per line that names at least one value
    (:func:`parse_line`), in the file's order. NaN values are kept as NaN (a diverged step)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataFileError(f"{p}: cannot read it ({exc.strerror or exc}); check the path") from None
    records = []
    for line in text.splitlines():
        rec = parse_line(line)
        if rec:
            records.append(rec)
    if not records:
        raise DataFileError(f"{p}: no line names a value (key: value, key=value or key value); is it the training "
                            f"log? A table needs the suffix .csv or .tsv")
    return records
