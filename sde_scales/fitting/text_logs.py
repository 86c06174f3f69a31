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
* A comma inside a number is a thousands separator (``step 12,000``, as Python's ``f"{step:,}"``
  prints it) or a decimal comma (``loss 2,345`` in some locales), and the line alone does not say
  which. Such a value is kept apart (:func:`comma_values`) and read only where it cannot mean
  anything else (:func:`refuse_commas`): as the step, in groups of three digits (``12,000``, not
  ``0,5`` or ``2,5``; a step is a whole number, which no log prints with three decimals). For the
  loss, the learning rate or any other quantity the curve reads, such a value is refused, naming
  its line. (Reading the digits before the comma, as a number's end, gave steps 1, 2, ... for a log of
  ``step 1,000``, ``step 2,000``, ...: a curve a thousand times too short, with no word said.)
"""

from __future__ import annotations

import re
from pathlib import Path

from sde_scales.errors import DataFileError
from sde_scales.fitting.encodings import file_encoding

__all__ = ["TEXT_LOG_SUFFIXES", "comma_values", "looks_like_text_log", "parse_line", "read_text_log",
           "read_text_log_lines", "refuse_commas", "thousands"]

#: Suffixes read as printed logs whatever they hold.
TEXT_LOG_SUFFIXES = (".log", ".out", ".err")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_WORD = r"[A-Za-z_][\w\-/.]*"
# a number with a comma between digits (a thousands separator or a decimal comma) is one token, kept
# apart by parse_line; any other number ends where no digit, decimal point or comma-digit follows
_COMMA_NUMBER = r"[-+]?\d+(?:,\d+)+(?:\.\d*)?(?:[eE][-+]?\d+)?(?![\d.])"
_NUMBER = (rf"{_COMMA_NUMBER}|[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?!\d|\.\d|,\d)"
           r"|[-+]?(?:nan|NaN|NAN|inf|Inf|INF)(?!\w)")
_THOUSANDS = re.compile(r"[-+]?[1-9]\d{0,2}(?:,\d{3})+")
_SEP = r"(?:\s*[:=]\s*|\s+)"  # a key and its value are apart: "loss 4.2", "loss: 4.2", "loss=4.2", not "gpt2"
# a word, then the separator, then a number (a unit or "%" may follow it: "123.45ms")
_ONE = re.compile(rf"(?<![\w.+\-/])({_WORD}){_SEP}({_NUMBER})")
# in a "|" field: the run of words before the field's first number
_PHRASE = re.compile(rf"(?<![\w.+\-/])({_WORD}(?:[ \t]+{_WORD})*){_SEP}({_NUMBER})")


def thousands(text: str) -> float | None:
    """``text`` read as a whole number with thousands separators (``"12,000"`` -> 12000.0), or None
    where its commas are not between groups of three digits after a first group of one to three
    (``"0,5"``, ``"2,5"``, ``"1,2345"``, ``"1,000.5"``: not a whole number so written).

    >>> thousands("12,000"), thousands("1,234,567"), thousands("2,5"), thousands("0,123")
    (12000.0, 1234567.0, None, None)
    """
    return float(text.replace(",", "")) if _THOUSANDS.fullmatch(text) else None


def _parse(line: str) -> tuple[dict[str, float], dict[str, str]]:
    """The pairs of one line, and the values written with a comma inside (key -> the value's text),
    which the first dict leaves out."""
    line = _ANSI.sub("", line).replace("'", " ").replace('"', " ")
    if "|" in line:
        pairs = []
        for field in line.split("|"):
            m = _PHRASE.search(field)
            if m:
                pairs.append((m.group(1), m.group(2)))
    else:
        found = [(m.start(1), m.group(1), m.group(2)) for m in _ONE.finditer(line)]
        keys = [k for _, k, _ in found]
        pairs = []
        for start, key, val in found:
            if keys.count(key) > 1:  # "train loss 4.1, val loss 4.2": the word before names each
                before = re.search(rf"({_WORD})[ \t]+$", line[:start])
                if before is None:
                    continue
                key = f"{before.group(1)} {key}"
            pairs.append((key, val))
    out: dict[str, float] = {}
    commas: dict[str, str] = {}
    for key, val in pairs:
        if key in out or key in commas:
            continue
        if "," in val:
            commas[key] = val
        else:
            out[key] = float(val)
    return out, commas


def parse_line(line: str) -> dict[str, float]:
    """The ``key: value`` pairs of one printed line, as a dict of floats (empty when it has none).
    A value with a comma inside is not among them (:func:`comma_values`).

    >>> parse_line("iter 100: loss 4.2345, time 123.45ms, mfu 12.34%")
    {'iter': 100.0, 'loss': 4.2345, 'time': 123.45, 'mfu': 12.34}
    >>> parse_line("step 500: train loss 4.1234, val loss 4.2345")
    {'step': 500.0, 'train loss': 4.1234, 'val loss': 4.2345}
    >>> parse_line(" iteration      100/    5000 | learning rate: 1.5E-04 | lm loss: 6.5E+00 |")
    {'iteration': 100.0, 'learning rate': 0.00015, 'lm loss': 6.5}
    >>> parse_line("step 12,000 | loss 2.5")
    {'loss': 2.5}
    """
    return _parse(line)[0]


def comma_values(line: str) -> dict[str, str]:
    """The values of one line written with a comma between digits, as their text, by key.

    >>> comma_values("step 12,000 | loss 2,5 | lr 3e-4")
    {'step': '12,000', 'loss': '2,5'}
    """
    return _parse(line)[1]


def looks_like_text_log(path: str | Path, probe_lines: int = 50) -> bool:
    """True where ``path`` is a printed log rather than a table. Most of its first ``probe_lines``
    non-empty lines that are not comments hold a ``key value`` pair (a table's rows hold numbers
    only, its header names only); a file with a suffix of :data:`TEXT_LOG_SUFFIXES` is one unless it
    is plainly a table (no pair on any line, and a first line split by ``,``, ``;`` or a tab)."""
    p = Path(path)
    lines = []
    try:
        with open(p, encoding=file_encoding(p), errors="replace") as fh:
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
    (:func:`parse_line`), in the file's order. NaN values are kept as NaN (a diverged step). Values
    written with a comma inside are not in these records; :func:`read_text_log_lines` reads them."""
    records, _, commas = read_text_log_lines(path)
    return [{k: v for k, v in rec.items() if k not in com} if com else rec for rec, com in zip(records, commas)]


def read_text_log_lines(path: str | Path) -> tuple[list[dict], list[int], list[dict[str, str]]]:
    """The records of a printed log with the values written with a comma inside put in as whole
    numbers where they are written in thousands (:func:`thousands`) and as None (no value) where
    they are not; the line number (from 1) of each record; and each record's comma-written values as
    their text, by key, for :func:`refuse_commas` to judge once the curve's columns are known."""
    p = Path(path)
    try:
        text = p.read_text(encoding=file_encoding(p), errors="replace")
    except OSError as exc:
        raise DataFileError(f"{p}: cannot read it ({exc.strerror or exc}); check the path") from None
    records, lines, commas = [], [], []
    for k, line in enumerate(text.splitlines(), start=1):
        rec, com = _parse(line)
        if rec or com:
            for key, t in com.items():
                rec[key] = thousands(t)
            records.append(rec)
            lines.append(k)
            commas.append(com)
    if not records:
        raise DataFileError(f"{p}: no line names a value (key: value, key=value or key value); is it the training "
                            f"log? A table needs the suffix .csv or .tsv")
    return records, lines, commas


def refuse_commas(roles: dict[str, str], lines: list[int], commas: list[dict[str, str]], source: str) -> None:
    """Raise a :class:`~sde_scales.errors.DataFileError` naming the line, the value and the fix where
    a column the curve reads (``roles``: role -> key, as ``resolve_columns`` names them) holds a
    value with a comma inside that is not a step written in thousands (:func:`thousands`)."""
    for line, com in zip(lines, commas):
        for role, key in roles.items():
            text = com.get(key)
            if text is None or (role == "step" and thousands(text) is not None):
                continue
            if role == "step":
                why = "a step is a whole number, and this one is not written in groups of three digits"
            else:
                dec = text.replace(",", ".") if text.count(",") == 1 else None
                why = (f"it may be a thousands separator ({text.replace(',', '')})"
                       + (f" or a decimal comma ({dec})" if dec else "") + ", and the log does not say which")
            fix = "as a plain whole number" if role == "step" else "without separators and with a decimal point"
            raise DataFileError(f"{source}, line {line}: {key} {text!r} has a comma inside ({why}); print the {role} "
                                f"{fix}, or replace the commas in the file")
