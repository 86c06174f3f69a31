"""Compiled loops are reused (in the process and from disk) only for functions that compile to the
same code: an edited constant, closure value or helper gets its own loop, so a cached loop never
gives another function's numbers."""

import ctypes
import ctypes.util
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from sde_scales import EulerMaruyama, SDEProblem, solve
from sde_scales.sde import _cache

SCRIPT = textwrap.dedent("""
    import json, sys
    import numba, numpy as np
    import helpers
    from sde_scales import EulerMaruyama, SDEProblem, solve

    RATE = {rate}

    @numba.njit
    def drift(t, x, p, out):
        out[0] = -RATE * helpers.scale() * x[0]

    @numba.njit
    def diffusion(t, x, p, out):
        out[0] = 0.5

    dW = np.random.default_rng(1).standard_normal((64, 8, 1)) / 8.0
    sol = solve(SDEProblem(drift, diffusion, x0=[1.0], tspan=(0.0, 1.0), noise="scalar"), EulerMaruyama(),
                1 / 64, noise=dW)
    json.dump({{"x": sol.x[-1, :, 0].tolist(), "how": sol.info["loop_compile"], "file": sol.info["loop"]}},
              sys.stdout)
""")


def _euler(rate: float, scale: float) -> np.ndarray:
    """The same Euler-Maruyama sums in numpy: the reference a stale loop would miss."""
    dW = np.random.default_rng(1).standard_normal((64, 8, 1)) / 8.0
    x = np.ones(8)
    for k in range(64):
        x = x - rate * scale * x / 64 + 0.5 * dW[k, :, 0]
    return x


def _env(cache, numba_dir=None) -> dict:
    """The environment of a script run: the loop cache in ``cache``; Numba's own files in
    ``numba_dir`` ($NUMBA_CACHE_DIR), or beside the loops where None (the variable unset, whatever
    the environment running the tests says)."""
    env = dict(os.environ, SDE_SCALES_CACHE_DIR=str(cache), PYTHONDONTWRITEBYTECODE="1")
    env.pop("NUMBA_CACHE_DIR", None)
    if numba_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(numba_dir)
    return env


def _run(folder, rate, scale, cache, numba_dir=None):
    import json

    (folder / "helpers.py").write_text(f"import numba\n\n@numba.njit\ndef scale():\n    return {scale}\n")
    (folder / "script.py").write_text(SCRIPT.format(rate=rate))
    env = _env(cache, numba_dir)
    res = subprocess.run([sys.executable, "script.py"], cwd=folder, env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(res.stdout)


def test_disk_cache_is_reused_by_a_second_process_and_never_for_edited_code(tmp_path):
    cache = tmp_path / "cache"
    first = _run(tmp_path, 1.0, 1.0, cache)
    again = _run(tmp_path, 1.0, 1.0, cache)
    assert first["how"] == "compiled" and again["how"] == "loaded from the disk cache"
    assert again["file"] == first["file"] and again["file"].startswith(str(cache))
    np.testing.assert_allclose(first["x"], _euler(1.0, 1.0), rtol=1e-12)
    assert again["x"] == first["x"]
    # an edited module constant and an edited helper in another module: new loops, new numbers
    rate2 = _run(tmp_path, 2.0, 1.0, cache)
    helper2 = _run(tmp_path, 1.0, 3.0, cache)
    assert rate2["how"] == "compiled" and helper2["how"] == "compiled"
    assert len({first["file"], rate2["file"], helper2["file"]}) == 3
    np.testing.assert_allclose(rate2["x"], _euler(2.0, 1.0), rtol=1e-12)
    np.testing.assert_allclose(helper2["x"], _euler(1.0, 3.0), rtol=1e-12)


@pytest.mark.parametrize("numba_dir", [None, "numba"], ids=["beside the loops", "NUMBA_CACHE_DIR"])
@pytest.mark.parametrize("damage", ["data", "index", "empty index"])
def test_damaged_cache_files_are_deleted_and_the_loop_compiled_again(tmp_path, damage, numba_dir):
    """Numba's files of a cached loop, damaged (a process killed while writing them, a full disk):
    every later solve of the problem failed, with an UnpicklingError traceback (damaged data) or an
    InvalidProblemError that blamed the drift (damaged index). Now the files are deleted, the loop
    is compiled again with a warning, and the numbers are those of the first run. Also where
    $NUMBA_CACHE_DIR puts Numba's files in a folder of their own (they were looked for beside the
    loops only, so a damaged file there failed every solve)."""
    import json

    cache = tmp_path / "cache"
    numba_dir = None if numba_dir is None else tmp_path / numba_dir
    first = _run(tmp_path, 1.0, 1.0, cache, numba_dir)
    pyc = cache / "__pycache__" if numba_dir is None else numba_dir
    pattern = {"data": "*.nbc", "index": "*.nbi", "empty index": "*.nbi"}[damage]
    files = sorted(pyc.rglob(pattern))
    assert files
    for f in files:
        f.write_bytes({"data": os.urandom(100), "index": b"garbage\n", "empty index": b""}[damage])
    env = _env(cache, numba_dir)
    res = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert "LoopCacheWarning" in res.stderr and "its files were deleted and the loop compiled again" in res.stderr
    assert out["how"] == "compiled" and out["x"] == first["x"]
    again = _run(tmp_path, 1.0, 1.0, cache, numba_dir)  # the files written by the recompilation load
    assert again["how"] == "loaded from the disk cache" and again["x"] == first["x"]


def test_purge_deletes_only_cached_loops(tmp_path, monkeypatch):
    monkeypatch.setenv(_cache.ENV, str(tmp_path))
    other = tmp_path / "notes.py"
    other.write_text("x = 1\n")
    assert _cache.purge(str(other)) == [] and other.exists()
    assert _cache.purge("memory (disk cache off)") == []
    loop = tmp_path / "loop_0123.py"
    loop.write_text("x = 1\n")
    assert not _cache.has_compiled(str(loop))  # no index: a failure there is no damaged cache
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "loop_0123.run_generated-10.py311.nbi").write_bytes(b"")
    assert _cache.has_compiled(str(loop)) and not _cache.has_compiled(str(other))
    assert len(_cache.purge(str(loop))) == 2 and not loop.exists()


def _make(rate):
    @numba.njit
    def drift(t, x, p, out):
        out[0] = -rate * x[0]
    return drift


@numba.njit
def _half(t, x, p, out):
    out[0] = 0.5


def _problem(drift):
    return SDEProblem(drift, _half, x0=[1.0], tspan=(0.0, 1.0), noise="scalar")


def test_recreated_closures_reuse_the_loop_in_the_process_but_new_values_do_not():
    a = solve(_problem(_make(0.25)), EulerMaruyama(), 0.05, 16, noise=3)
    b = solve(_problem(_make(0.25)), EulerMaruyama(), 0.05, 16, noise=3)  # new objects, same code and value
    c = solve(_problem(_make(0.75)), EulerMaruyama(), 0.05, 16, noise=3)
    assert b.info["loop_compile"] == "reused in this process" and b.info["loop"] == a.info["loop"]
    np.testing.assert_array_equal(a.x, b.x)
    assert c.info["loop"] != a.info["loop"] and c.info["loop_compile"] != "reused in this process"
    assert not np.allclose(a.x, c.x)


def test_an_array_of_constants_with_new_values_gets_a_loop_of_its_own():
    """Numba compiles a closure's array into the code as constants, so two arrays of one shape
    and other values are two loops: the second solve must not reuse the first's loop (whose numbers
    would be the first array's), and its paths are Euler-Maruyama's with the new rate."""

    def made(rates):
        @numba.njit
        def drift(t, x, p, out):
            out[0] = -rates[0] * x[0]
        return drift

    dW = np.random.default_rng(1).standard_normal((64, 8, 1)) / 8.0
    a = solve(_problem(made(np.array([1.0]))), EulerMaruyama(), 1 / 64, noise=dW)
    b = solve(_problem(made(np.array([2.0]))), EulerMaruyama(), 1 / 64, noise=dW)
    assert b.info["loop"] != a.info["loop"]
    np.testing.assert_allclose(a.x[-1, :, 0], _euler(1.0, 1.0), rtol=1e-12)
    np.testing.assert_allclose(b.x[-1, :, 0], _euler(2.0, 1.0), rtol=1e-12)


def test_a_value_the_fingerprint_cannot_describe_turns_the_disk_cache_off_for_that_solve():
    """A ctypes function pointer in a closure (numba calls it; its address differs per process):
    the solve compiles in memory and says why; the fingerprint names the variable."""
    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    cos = libm.cos
    cos.restype, cos.argtypes = ctypes.c_double, (ctypes.c_double,)

    @numba.njit
    def drift(t, x, p, out):
        out[0] = -cos(t) * x[0]

    sol = solve(_problem(drift), EulerMaruyama(), 0.05, 8, noise=0)
    assert sol.info["loop"].startswith("memory") and "not cached on disk" in sol.info["loop"]
    assert "closure variable 'cos'" in sol.info["loop"]
    with pytest.raises(_cache.Uncacheable, match="closure variable 'cos' is a"):
        _cache.fingerprint(("k",), {"drift": drift})


def test_cache_off_by_environment(monkeypatch):
    monkeypatch.setenv(_cache.ENV, "off")
    assert _cache.cache_dir() is None
    sol = solve(_problem(_make(0.125)), EulerMaruyama(), 0.05, 8, noise=0)
    assert sol.info["loop"].startswith("memory")


def test_a_cache_folder_that_cannot_be_written_is_warned_once_and_the_numbers_are_the_same(tmp_path, monkeypatch):
    """The loops were compiled in memory with nothing said but a line in Solution.info."""
    import warnings

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv(_cache.ENV, str(blocker / "loops"))  # a folder under a file: never writable
    monkeypatch.setattr(_cache, "_UNWRITABLE_WARNED", set())
    with pytest.warns(_cache.LoopCacheWarning, match="cannot be written") as caught:
        a = solve(_problem(_make(0.3125)), EulerMaruyama(), 0.05, 8, noise=5)
        b = solve(_problem(_make(0.4375)), EulerMaruyama(), 0.05, 8, noise=5)
    assert sum(issubclass(w.category, _cache.LoopCacheWarning) for w in caught) == 1  # once per folder
    assert a.info["loop"].startswith("memory (cannot write") and b.info["loop"].startswith("memory (cannot write")
    monkeypatch.setenv(_cache.ENV, "off")
    with warnings.catch_warnings():
        warnings.simplefilter("error", _cache.LoopCacheWarning)  # 'off' is a choice, not a fault
        ref = solve(_problem(_make(0.3125)), EulerMaruyama(), 0.05, 8, noise=5)
    np.testing.assert_array_equal(a.x, ref.x)


TWO_LOOPS = textwrap.dedent("""
    import json, sys
    import numba, numpy as np
    from sde_scales import EulerMaruyama, SDEProblem, solve

    @numba.njit
    def drift_a(t, x, p, out):
        out[0] = -p[0] * x[0]

    @numba.njit
    def drift_b(t, x, p, out):
        out[0] = -p[1] * x[0]

    @numba.njit
    def diffusion(t, x, p, out):
        out[0] = 0.1

    def run(drift):
        prob = SDEProblem(drift, diffusion, x0=[1.0], tspan=(0.0, 1.0), noise="scalar", params=[50.0, 0.5])
        return solve(prob, EulerMaruyama(), 1 / 64, 8, noise=3)

    if sys.argv[1] == "a-then-b":
        run(drift_a)
    sol = run(drift_b)
    json.dump({"x": sol.x[-1, :, 0].tolist(), "how": sol.info["loop_compile"]}, sys.stdout)
""")


def test_a_loop_loaded_from_disk_never_links_to_a_function_compiled_in_the_process(tmp_path):
    """Process 1 compiles and caches the loop of drift_b. Process 2 first compiles drift_a's loop,
    then loads drift_b's from disk: its numbers must be process 1's. (Numba names compiled
    functions with a per-process counter; before the counter got a random start, the loaded loop
    was linked to drift_a's closure of the same name and its paths blew up.)"""
    import json

    (tmp_path / "two.py").write_text(TWO_LOOPS)
    env = dict(os.environ, SDE_SCALES_CACHE_DIR=str(tmp_path / "cache"), PYTHONDONTWRITEBYTECODE="1")

    def run(mode):
        r = subprocess.run([sys.executable, "two.py", mode], cwd=tmp_path, env=env, capture_output=True, text=True,
                           check=True)
        return json.loads(r.stdout)

    first = run("b")
    second = run("a-then-b")
    assert first["how"] == "compiled" and second["how"] == "loaded from the disk cache"
    assert second["x"] == first["x"]
