"""The three verdicts every check of the toolkit gives.

PASS: the data agree with the claim within the stated tolerance, and the tolerance is narrow enough
to tell the claim from its neighbours. FAIL: the data disagree beyond the tolerance.
INCONCLUSIVE: the data cannot decide (too few samples, too wide an interval, a series not yet in
its asymptotic range); the reason says which, and what would decide it.

Kept apart from :mod:`sde_scales.rates` so that light modules (the SDE engine's convergence
studies) can judge without importing scipy.stats.
"""

from __future__ import annotations

import enum

__all__ = ["Verdict"]


class Verdict(enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
