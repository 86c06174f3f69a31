"""The run store notices damage: checksums, run ids recomputed from the stored configuration,
damaged runs moved aside (never deleted) and trained again by the next sweep."""

import shutil

import numpy as np
import pytest

pytest.importorskip("torch")

from sde_scales.errors import DataFileError  # noqa: E402
from sde_scales.train.store import RunStore  # noqa: E402
from sde_scales.train.sweep import run_sweep  # noqa: E402
from sde_scales.train.trainer import config_grid  # noqa: E402

CFG = dict(dataset="synthetic", d_in=16, n_train=256, batch_size=32, epochs=1, log_every=4)


@pytest.fixture()
def store(tmp_path):
    cfgs = config_grid(["mup"], [16, 32], [0.1], [0, 1], **CFG)
    run_sweep(cfgs, str(tmp_path / "s"), device="cpu", progress=False)
    return tmp_path / "s", cfgs


def test_clean_store_checks_out_and_leaves_no_temporaries(store):
    root, cfgs = store
    st = RunStore(root, quiet=True)
    assert st.finished() == {c.run_id for c in cfgs}
    assert not list(root.rglob(".*"))  # every temporary renamed or removed
    assert not (root / "damaged").exists()


def test_a_path_that_takes_no_file_is_a_data_file_error_and_the_probe_leaves_nothing(tmp_path):
    """Writing under /proc (no new file there, for any user) ended in mkstemp's FileNotFoundError
    traceback; it is now an error that names the path. The up-front check leaves no file behind
    where the folder is writable, and creates no folder."""
    from sde_scales.atomic import check_writable, write_json_atomic
    from sde_scales.errors import DataFileError

    with pytest.raises(DataFileError, match="/proc/sde-scales/x.json: cannot be written .creating a file in /proc"):
        write_json_atomic("/proc/sde-scales/x.json", {"a": 1})
    with pytest.raises(DataFileError, match="cannot be written"):
        check_writable("/proc/x.json")
    check_writable(tmp_path / "new" / "deeper" / "x.json")
    check_writable(tmp_path / "out", folder=True)
    assert list(tmp_path.iterdir()) == []


def test_a_writer_that_fails_leaves_the_earlier_file_whole_and_no_temporary(tmp_path):
    """A write that raises half-way (a full disk, a value json cannot take, an interrupt) must not
    lose what was written before: the target keeps its earlier content, and the half-written
    temporary beside it is removed rather than left to pile up with every failed write."""
    from sde_scales.atomic import atomic_path, write_json_atomic

    f = tmp_path / "results.json"
    write_json_atomic(f, {"done": 1})
    before = f.read_bytes()
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic_path(f) as tmp:
            tmp.write_text('{"done": ')
            raise RuntimeError("the writer failed half-way")
    assert f.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    with pytest.raises(TypeError):  # json cannot write an object: the same guarantee
        write_json_atomic(f, {"done": object()})
    assert f.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_written_files_get_the_umask_permissions_not_mkstemps(tmp_path):
    """Atomic writes go through mkstemp, which creates files 0o600: every run-store file, figure
    and JSON file was readable by its owner alone, whatever the umask. They now get 0o666 less the
    umask, and a file that is replaced keeps its own permissions."""
    import os

    from sde_scales.atomic import write_text_atomic

    old = os.umask(0o022)
    try:
        cfgs = config_grid(["mup"], [16], [0.1], [0], **CFG)
        run_sweep(cfgs, str(tmp_path / "s"), device="cpu", progress=False)
        files = [p for p in (tmp_path / "s").rglob("*") if p.is_file()]
        assert files and all(p.stat().st_mode & 0o777 == 0o644 for p in files)
        f = tmp_path / "a.json"
        write_text_atomic(f, "{}")
        assert f.stat().st_mode & 0o777 == 0o644
        os.chmod(f, 0o640)
        write_text_atomic(f, "[]")
        assert f.stat().st_mode & 0o777 == 0o640 and f.read_text() == "[]"
        os.umask(0o077)
        write_text_atomic(tmp_path / "b.json", "{}")
        assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_truncated_run_file_is_moved_aside_and_retrained(store, capsys):
    root, cfgs = store
    victim = cfgs[0].run_id
    f = root / "runs" / f"{victim}.parquet"
    f.write_bytes(f.read_bytes()[:40])
    st = RunStore(root)
    assert victim not in st.finished()
    assert "damaged" in capsys.readouterr().err
    moved = list((root / "damaged").glob(f"*{victim}*"))
    notes = (root / "damaged" / "NOTES.txt").read_text().splitlines()
    assert len(moved) == 2 and len(notes) == 1 and victim in notes[0]  # kept, not deleted, with a note
    res = run_sweep(cfgs, str(root), device="cpu", progress=False)
    assert res["ran"] >= 1 and victim in RunStore(root).finished()


def test_every_bit_flip_is_detected_or_harmless(store):
    """Flip single bits across a trajectory file: each read either fails with DataFileError (and the
    run is moved aside) or returns exactly the data that was written."""
    root, cfgs = store
    rid = cfgs[1].run_id
    f = root / "trajectories" / f"{rid}.parquet"
    good = f.read_bytes()
    ref = RunStore(root, quiet=True)._read(f)
    rng = np.random.default_rng(0)
    detected = 0
    for pos in rng.choice(len(good) * 8, size=300, replace=False):
        bad = bytearray(good)
        bad[pos // 8] ^= 1 << (pos % 8)
        f.write_bytes(bytes(bad))
        try:
            df = RunStore(root, quiet=True)._read(f)
        except DataFileError:
            detected += 1
            continue
        assert df.equals(ref), f"bit {pos}: changed data read back as valid"
    f.write_bytes(good)
    assert detected > 150  # most bytes carry data or structure


def test_swapped_run_file_is_caught_by_its_run_id(store):
    root, cfgs = store
    a, b = cfgs[0].run_id, cfgs[1].run_id
    shutil.copy(root / "runs" / f"{a}.parquet", root / "runs" / f"{b}.parquet")
    fin = RunStore(root, quiet=True).finished()
    assert b not in fin and a in fin
    runs = RunStore(root, quiet=True).runs()
    assert runs.run_id.is_unique


def test_a_run_whose_stored_configuration_was_changed_is_moved_aside(store):
    """A run file rewritten with a valid checksum and its own run id, but another learning rate in
    its configuration (a hand edit, or a writer of another version): the id recomputed from the
    stored configuration differs, so the run no longer counts and is moved aside, not read as a
    run at a rate it was not trained at."""
    root, cfgs = store
    st = RunStore(root, quiet=True)
    rid = cfgs[0].run_id
    path = root / "runs" / f"{rid}.parquet"
    row = st._read(path)
    st._atomic(row.assign(lr=0.2), path)
    fresh = RunStore(root, quiet=True)
    assert rid not in fresh.finished() and {c.run_id for c in cfgs[1:]} <= fresh.finished()
    assert list((root / "damaged").glob(f"runs-{rid}-*.parquet"))
    assert "its stored configuration has run id" in (root / "damaged" / "NOTES.txt").read_text()


def test_a_run_whose_trajectory_file_is_missing_does_not_count(store):
    """The run row is written last, so a row without its trajectory is a run whose trajectory
    was lost afterwards: it is not finished, and the next sweep trains it again."""
    root, cfgs = store
    rid = cfgs[1].run_id
    (root / "trajectories" / f"{rid}.parquet").unlink()
    assert rid not in RunStore(root, quiet=True).finished()
    run_sweep(cfgs, str(root), device="cpu", progress=False)
    assert RunStore(root, quiet=True).finished() == {c.run_id for c in cfgs}


def test_damaged_trajectory_found_when_read(store):
    root, cfgs = store
    rid = cfgs[2].run_id
    f = root / "trajectories" / f"{rid}.parquet"
    f.write_bytes(b"garbage")
    st = RunStore(root, quiet=True)
    traj = st.trajectories()
    assert rid not in set(traj.run_id) and rid not in st.finished()


def test_read_gives_the_same_runs_in_both_tables_when_a_trajectory_is_damaged(store):
    """``runs()`` then ``trajectories()`` disagree when the second read finds a damaged trajectory:
    the runs table holds a run the long table lacks, and a program that pairs them by position
    (or counts replicas from the runs table) is off by one. ``read()`` leaves the run out of
    both, and the run is moved aside to be trained again."""
    root, cfgs = store
    rid = cfgs[1].run_id
    f = root / "trajectories" / f"{rid}.parquet"
    good = f.read_bytes()
    f.write_bytes(good[: len(good) // 2])
    st = RunStore(root, quiet=True)
    runs_first, traj_after = st.runs(), st.trajectories()
    assert rid in set(runs_first.run_id) and rid not in set(traj_after.run_id)  # what read() is for
    # put the run back (its row from damaged/), with its trajectory damaged as before
    (root / "runs" / f"{rid}.parquet").write_bytes(next((root / "damaged").glob(f"runs-{rid}-*.parquet")).read_bytes())
    f.write_bytes(good[: len(good) // 2])
    runs, traj = RunStore(root, quiet=True).read()
    assert set(runs.run_id) == set(traj.run_id) == {c.run_id for c in cfgs} - {rid}
    assert list(runs.run_id) == sorted(runs.run_id) and runs.run_id.is_unique
    clean = RunStore(root, quiet=True).read()  # a clean store reads as runs() and trajectories() do
    assert clean[0].equals(RunStore(root, quiet=True).runs())
    assert clean[1].equals(RunStore(root, quiet=True).trajectories())


def test_reading_a_store_that_is_not_there_creates_nothing(tmp_path, store):
    """``RunStore.existing`` (what rate, verify and fit-delay open a --store with) refuses a path
    without a store, leaving no folder behind (the constructor creates them, for writing), and with
    ``need_runs`` a store without finished runs; a store with runs opens."""
    from sde_scales.errors import InvalidArgumentError

    missing = tmp_path / "typo"
    with pytest.raises(InvalidArgumentError, match="no run store there"):
        RunStore.existing(missing)
    assert not missing.exists()
    RunStore(tmp_path / "empty")  # the folders, no run
    assert RunStore.existing(tmp_path / "empty").runs().empty
    with pytest.raises(InvalidArgumentError, match="no finished runs"):
        RunStore.existing(tmp_path / "empty", need_runs=True)
    assert not RunStore.existing(store[0], need_runs=True).runs().empty
