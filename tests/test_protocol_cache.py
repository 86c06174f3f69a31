"""Resumable held-out experiments: a (protocol, law) result is read back only when everything it
depends on is unchanged, is read back exactly, and a damaged entry is recomputed, not trusted."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import strict_json

from sde_scales.fitting import LossCurve, MomentumLaw
from sde_scales.fitting import protocol_cache as PC

ROOT = Path(__file__).resolve().parents[1]


def _splits(shift=0.0):
    step = np.arange(0, 4001, 50)
    rng = np.random.default_rng(2)
    lr_fit = np.where(step < 3000, 1e-3, 1e-4)
    lr_held = np.where(step < 3500, 1e-3, 3e-4)
    fit_c = LossCurve(step, lr_fit, 3 + 2 * (1 + step / 1000) ** -0.5 + 0.02 * rng.standard_normal(step.size), name="a")
    loss_h = 3 + 2 * (1 + step / 1000) ** -0.5 + 0.02 * rng.standard_normal(step.size)
    loss_h[40] += shift
    return [([fit_c], LossCurve(step, lr_held, loss_h, name="b"))]


def test_a_result_is_read_back_exactly_and_only_for_the_same_inputs(tmp_path):
    law = MomentumLaw(lam=0.99)
    cache = PC.ProtocolCache(tmp_path / "cache")
    row, preds = PC.cached_protocol(cache, "p", law, _splits(), skip_steps=200, smooth_steps=500)
    assert not row["read_back"] and len(row["splits"]) == len(preds) == 1
    # the same inputs: read back (nothing is fitted: the protocol function would raise), equal to the bit
    monkey = pytest.MonkeyPatch()
    from sde_scales.fitting import protocols

    monkey.setattr(protocols, "run_protocol", lambda *a, **k: (_ for _ in ()).throw(AssertionError("refitted")))
    try:
        row2, preds2 = PC.cached_protocol(cache, "p", law, _splits(), skip_steps=200, smooth_steps=500)
    finally:
        monkey.undo()
    assert row2["read_back"] and row2["seconds"] == row["seconds"] and row2["splits"] == row["splits"]
    assert {k: v for k, v in row2.items() if k != "read_back"} == {k: v for k, v in row.items() if k != "read_back"}
    np.testing.assert_array_equal(preds2[0], preds[0])
    # one logged loss moved by 1e-12, another skip, another law, another protocol name: each computed afresh
    for kw in (dict(splits=_splits(shift=1e-12)), dict(skip_steps=300), dict(law=MomentumLaw(lam=0.999)),
               dict(protocol="q")):
        args = dict(protocol="p", law=law, splits=_splits(), skip_steps=200)
        args.update(kw)
        row3, _ = PC.cached_protocol(cache, args["protocol"], args["law"], args["splits"],
                                     skip_steps=args["skip_steps"], smooth_steps=500)
        assert not row3["read_back"], kw
    assert cache.hits == 1 and cache.misses == 5
    # no cache: computed, nothing written
    off = PC.ProtocolCache(tmp_path / "off", enabled=False)
    row4, _ = PC.cached_protocol(off, "p", law, _splits(), skip_steps=200, smooth_steps=500)
    assert not row4["read_back"] and not (tmp_path / "off").exists()


def test_nan_tuples_and_numpy_numbers_survive_the_round_trip_in_strict_json(tmp_path):
    """A row with a NaN (strict JSON would turn it into null, and a mean over rows would then
    differ), a tuple and numpy numbers reads back equal; the file holds no NaN token."""
    def compute():
        return ([{"a": float("nan"), "t": (1, "x"), "n": np.float64(3.5), "i": np.int64(4), "w": ["w1"]}],
                [np.array([1.0, np.nan])], {"e": float("-inf"), "k": [(1, 2)]})

    splits = _splits()
    first = PC.ProtocolCache(tmp_path).run("lab", splits, {}, compute)
    rows, preds, extra, _, hit = PC.ProtocolCache(tmp_path).run("lab", splits, {},
                                                                lambda: (_ for _ in ()).throw(AssertionError))
    assert hit and not first[4]
    assert np.isnan(rows[0]["a"]) and rows[0]["t"] == (1, "x") and rows[0]["n"] == 3.5 and rows[0]["i"] == 4
    assert extra == {"e": float("-inf"), "k": [(1, 2)]}
    np.testing.assert_array_equal(preds[0], [1.0, np.nan])
    for f in tmp_path.glob("*.json"):
        strict_json(f.read_text())


def test_the_key_includes_the_code(tmp_path, monkeypatch):
    """A change to the toolkit's code makes every earlier result stale."""
    cache = PC.ProtocolCache(tmp_path)
    k1 = cache.key("p", _splits(), {"s": 1})
    monkeypatch.setattr(PC, "_FINGERPRINT", "another version of the code")
    assert cache.key("p", _splits(), {"s": 1}) != k1
    monkeypatch.setattr(PC, "_FINGERPRINT", None)
    assert cache.key("p", _splits(), {"s": 1}) == k1
    assert cache.key("p", _splits(), {"s": np.array([1.0, 2.0])}) != cache.key("p", _splits(), {"s": np.array([1.0, 2.5])})


@pytest.mark.parametrize("damage", ["json", "npz", "missing npz", "short"])
def test_a_damaged_entry_is_moved_aside_and_recomputed(tmp_path, damage):
    law = MomentumLaw(lam=0.99)
    cache = PC.ProtocolCache(tmp_path / "cache")
    _, preds = PC.cached_protocol(cache, "p", law, _splits(), skip_steps=200, smooth_steps=500)
    stem = cache.key("p " + law.label, _splits(), {"law": repr(law), "skip_steps": 200, "smooth_steps": 500,
                                                    "truth": None})
    j, z = tmp_path / "cache" / f"{stem}.json", tmp_path / "cache" / f"{stem}.npz"
    assert j.exists() and z.exists()
    if damage == "json":
        j.write_text(j.read_text()[:50])
    elif damage == "npz":
        z.write_bytes(b"not an npz file")
    elif damage == "missing npz":
        z.unlink()
    else:  # a complete-looking entry with fewer predictions than splits
        doc = json.loads(j.read_text())
        doc["n_predictions"] = 0
        j.write_text(json.dumps(doc))
    again = PC.ProtocolCache(tmp_path / "cache")
    row2, preds2 = PC.cached_protocol(again, "p", law, _splits(), skip_steps=200, smooth_steps=500)
    assert not row2["read_back"] and len(again.damaged) == 1 and "damaged" in again.summary()
    assert (tmp_path / "cache" / "damaged" / j.name).exists()
    np.testing.assert_array_equal(preds2[0], preds[0])
    assert j.exists() and z.exists()  # written again
    row3, _ = PC.cached_protocol(PC.ProtocolCache(tmp_path / "cache"), "p", law, _splits(), skip_steps=200,
                                 smooth_steps=500)
    assert row3["read_back"]


def test_a_stopped_experiment_resumes_with_the_same_table(tmp_path):
    """The NQM experiment run again with one more law: the two laws it had are read back, the third
    computed, and the rows of the first two equal those of a run without the cache."""
    script = str(ROOT / "experiments" / "fit_nqm_family.py")
    base = ["--steps", "2000", "--seeds", "1"]
    first = subprocess.run([sys.executable, script, *base, "--laws", "momentum0.99", "--out", str(tmp_path / "a")],
                           capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([sys.executable, script, *base, "--laws", "momentum0.99,momentum0.999", "--out",
                             str(tmp_path / "a")], capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert "2 result(s) read back" in second.stdout and "2 computed" in second.stdout
    fresh = subprocess.run([sys.executable, script, *base, "--laws", "momentum0.99,momentum0.999", "--no-cache",
                            "--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr
    assert not (tmp_path / "b" / "cache").exists()
    rows = [json.loads((tmp_path / d / "nqm_family.json").read_text())["rows"] for d in ("a", "b")]
    assert [r["read_back"] for r in rows[0]] == [True, False, True, False]
    for ra, rb in zip(*rows):
        strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "read_back")}  # noqa: E731
        assert strip(ra) == strip(rb)
