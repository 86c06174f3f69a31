"""The step schedules against their formulas written out, and the inputs they refuse."""

import math

import numpy as np
import pytest

from sde_scales import schedules
from sde_scales.errors import InvalidArgumentError


def test_schedules_follow_their_formulas():
    n, p = 1000, 2e-3
    k = np.arange(n)
    # cosine from step 0 to a tenth of the peak: its ends and its midpoint
    cos = schedules.cosine(n, p, final_fraction=0.1)
    assert cos[0] == pytest.approx(p) and cos[-1] == pytest.approx(0.1 * p)
    mid = (n - 1) / 2
    assert np.interp(mid, k, cos) == pytest.approx(0.1 * p + 0.9 * p * 0.5 * (1 + math.cos(math.pi / 2)))
    # WSD: the peak until the last 20%, then linear to 0 (sqrt: 1 - sqrt of the fraction done)
    for decay, g in (("linear", lambda s: s), ("sqrt", np.sqrt)):
        w = schedules.wsd(n, p, fraction=0.2, decay=decay)
        assert np.all(w[:800] == p)
        s = (k[800:] - 800 + 1) / 200
        np.testing.assert_allclose(w[800:], p * (1 - g(s)), rtol=0, atol=1e-15)
    # step decay: a factor per milestone passed; 8-1-1: 80% / 10% / 10% at 1, 1/sqrt(10), 1/10
    st = schedules.step(n, p, [300, 700], factor=0.5)
    assert set(st[:300]) == {p} and set(st[300:700]) == {0.5 * p} and set(st[700:]) == {0.25 * p}
    e = schedules.eight_one_one(n, p)
    assert np.sum(e == p) == 800 and np.allclose(e[800:900], p / math.sqrt(10)) and np.allclose(e[900:], p / 10)
    # the warmup: linear up to the rate it reaches, never above it
    c = schedules.constant(n, p, warmup_steps=100)
    np.testing.assert_allclose(c[:100], p * np.arange(1, 101) / 101)
    assert np.all(c[100:] == p)


@pytest.mark.parametrize("call, match", [
    (lambda: schedules.cosine(100, 1e-3, final_fraction=-1), "final_fraction=-1"),
    (lambda: schedules.cosine(100, 1e-3, final_fraction=2), "final_fraction=2"),
    (lambda: schedules.cosine(100, 1e-3, final_fraction=float("nan")), "final_fraction=nan"),
    (lambda: schedules.wsd(100, 1e-3, final_fraction=-0.5), "final_fraction=-0.5"),
    (lambda: schedules.wsd(100, 1e-3, fraction=0), "fraction=0"),
    (lambda: schedules.wsd(100, 1e-3, decay="cubic"), "decay='cubic'"),
    (lambda: schedules.step(100, 1e-3, [50.5]), r"milestones=\[50.5\]"),
    (lambda: schedules.step(100, 1e-3, [60, 20]), "increasing"),
    (lambda: schedules.step(100, 1e-3, [50], factor=0), "factor=0"),
    (lambda: schedules.constant(100, 1e-3, warmup_steps=2.5), "warmup=2.5"),
    (lambda: schedules.constant(100, 1e-3, warmup_steps=100), "warmup=100"),
    (lambda: schedules.constant(0, 1e-3), "n_steps=0"),
    (lambda: schedules.constant(100, -1e-3), "peak learning rate -0.001"),
    (lambda: schedules.eight_one_one(5, 1e-3), "at least 10 steps"),
    (lambda: schedules.eight_one_one(5.0, 1e-3), "at least 10 steps"),
    (lambda: schedules.wsd(10, 1e-3, fraction=0.04), "rounds to none"),
    (lambda: schedules.wsd(1000, 1e-3, fraction=4e-4), "rounds to none"),
    (lambda: schedules.constant(float("nan"), 1e-3), "n_steps=nan"),
    (lambda: schedules.constant(100, "1e-3"), "peak learning rate '1e-3'"),
    (lambda: schedules.constant(100, 1e-3, warmup_steps=True), "warmup=True"),
    (lambda: schedules.warmup(np.ones(3), 5), "warmup=5"),
    (lambda: schedules.warmup(np.ones(3), -2), "warmup=-2"),
])
def test_schedules_refuse_what_would_give_no_schedule(call, match):
    """A negative final fraction gave negative learning rates and one above 1 a cosine that rose
    past its 'peak'; a fractional warmup or milestone was truncated without a word. A WSD
    cooldown shorter than half a step rounded to none: the run trained at its peak throughout
    under the name WSD. ``warmup`` with a negative count left the rates alone, and with one past
    the end was an IndexError."""
    with pytest.raises(InvalidArgumentError, match=match):
        call()


def test_the_shortest_wsd_cooldown_is_one_step_to_the_final_rate():
    """fraction = 1/n is one cooldown step, at the final rate (the boundary of the refusal above)."""
    w = schedules.wsd(10, 1.0, fraction=0.1, final_fraction=0.25)
    np.testing.assert_array_equal(w, [1.0] * 9 + [0.25])
