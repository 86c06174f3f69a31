"""Small predicates that the argument checks across the toolkit share."""

from __future__ import annotations

import numpy as np

from sde_scales.errors import InvalidArgumentError

__all__ = ["MAGNITUDE_LIMITS", "OUT_OF_RANGE", "available_memory", "check_memory", "distinct_columns", "is_integral",
           "is_whole", "non_real_kind", "out_of_range", "real_array", "same_value"]


def is_whole(value, low: int = 0) -> bool:
    """A whole number (a Python or numpy integer, not a bool, not a float such as 64.0) >= ``low``."""
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= low


def is_integral(value, low: int = 0) -> bool:
    """A real number with a whole value >= ``low``, written as an integer or as a float (64 and 64.0;
    not a bool, not 64.5, not NaN): for counts that a float may carry without loss, such as a
    width read from an array of floats."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return bool(np.isfinite(value) and value >= low and float(value) == int(value))


def non_real_kind(value) -> str | None:
    """``"boolean"`` or ``"complex"`` where ``value`` (an array, a number or a nested list) holds
    such values, which numpy reads as numbers (True as 1, a complex number as its real part, with
    a warning); None otherwise. A list such as [True, 2] or [[1.0, 2j]] becomes a number array, so
    its items are looked at too."""
    arr = np.asarray(value)
    items = list(np.asarray(value, dtype=object).flat) if isinstance(value, (list, tuple)) or arr.dtype == object else []
    if arr.dtype.kind == "c" or any(isinstance(v, (complex, np.complexfloating)) for v in items):
        return "complex"
    if arr.dtype.kind == "b" or any(isinstance(v, (bool, np.bool_)) for v in items):
        return "boolean"
    return None


def real_array(value, what: str, error=InvalidArgumentError) -> np.ndarray:
    """``value`` as an array of float64, refusing by ``what`` (with ``error``) what is no real
    number: booleans and complex numbers (:func:`non_real_kind`; numpy would read True as 1 and
    drop an imaginary part with a warning, or raise a bare TypeError), and text or objects that are
    not numbers. Finiteness and shape are the caller's to check."""
    try:
        kind = non_real_kind(value)
        if kind is None:
            return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # text, objects, ragged lists
        raise error(f"{what} is not an array of numbers ({exc}); give real numbers") from None
    raise error(f"{what} holds {kind} values, which numpy would read as "
                f"{'their real parts' if kind == 'complex' else '1.0 and 0.0'}; give real numbers")


def distinct_columns(roles, source: str, columns) -> None:
    """Refuse a table's column named for two roles (``roles``: ``(flag, column)`` pairs, such as
    ``("--width", "width")``), naming both flags and the table's ``columns``: one column read as
    both the width and the replica gives one replica per width, as both the step and the loss a
    step logged twice, with no word of the cause."""
    roles = list(roles)
    for i, (flag, col) in enumerate(roles):
        twice = next((f for f, c in roles[:i] if c == col), None)
        if twice is not None:
            raise InvalidArgumentError(f"{source}: {twice} and {flag} both name column {col!r}; each role needs a "
                                       f"column of its own (the table's columns: {', '.join(map(str, columns))})")


def same_value(values, value) -> np.ndarray:
    """Where ``values`` equal ``value`` up to a relative 1e-6: a learning rate (or any setting)
    looked up in a table read back from Parquet, CSV or TOML, whatever its magnitude. numpy's
    ``isclose`` defaults add an absolute 1e-8, which takes learning rates of 1e-9 and 2e-9 for
    the same rate, and pools their runs as seeds of one."""
    return np.isclose(np.asarray(values, dtype=float), float(value), rtol=1e-6, atol=0.0)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation without swapping: ``MemAvailable`` of
    ``/proc/meminfo`` (Linux), else the physical memory; None where neither can be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def check_memory(nbytes: float, what: str, fix: str) -> None:
    """Refuse an allocation of ``nbytes`` larger than :func:`available_memory` (numpy would raise a
    bare MemoryError, or, with overcommit, the process be killed while writing), naming ``what``
    needs it and how to shrink it (``fix``)."""
    free = available_memory()
    if free is not None and nbytes > free:
        raise InvalidArgumentError(f"{what} need {nbytes / 2**30:.3g} GiB and {free / 2**30:.3g} GiB is available; {fix}")


#: Magnitudes a measured value may have (zero apart): beyond them its square over- or underflows a
#: double (1.8e308, 2.2e-308 normal), and a spread or mean computed from such values is inf or 0.
MAGNITUDE_LIMITS = (1e-150, 1e150)


#: Why a value outside :data:`MAGNITUDE_LIMITS` is refused, for the messages of every reader.
OUT_OF_RANGE = (f"is outside the magnitudes {MAGNITUDE_LIMITS[0]:g} to {MAGNITUDE_LIMITS[1]:g} within which its "
                f"square and the spreads and means computed from it are finite, non-zero doubles")


def out_of_range(v: np.ndarray) -> np.ndarray:
    """Where a finite ``v`` lies outside :data:`MAGNITUDE_LIMITS` in magnitude (zero is in range)."""
    a = np.abs(np.asarray(v, dtype=float))
    return (a > MAGNITUDE_LIMITS[1]) | ((a > 0) & (a < MAGNITUDE_LIMITS[0]))
