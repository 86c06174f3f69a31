"""Small predicates that the argument checks across the toolkit share."""

from __future__ import annotations

import numpy as np

__all__ = ["is_whole"]


def is_whole(value, low: int = 0) -> bool:
    """A whole number (a Python or numpy integer, not a bool, not a float such as 64.0) >= ``low``."""
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= low
