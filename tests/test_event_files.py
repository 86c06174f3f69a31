"""Loss curves from TensorBoard event files, written here by PyTorch's SummaryWriter (the real
format): tags at their own cadences, a restarted run, a file cut off, a damaged record, a folder of
runs, and the fit-delay command on a run folder."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("tensorboard")
SummaryWriter = pytest.importorskip("torch.utils.tensorboard").SummaryWriter

from sde_scales.errors import DataFileError  # noqa: E402
from sde_scales.fitting import load_curve  # noqa: E402
from sde_scales.fitting.curves import LossCurve, ScheduleSpec  # noqa: E402
from sde_scales.fitting.event_files import (LogRestartWarning, TruncatedEventFileWarning,  # noqa: E402
                                            read_event_scalars)

SPEC = ScheduleSpec(total=3000, peak=1e-3, warmup=100, decay="cosine", end=1e-4)


def _loss(step):
    return 3.0 + 2.0 * (1.0 + step / 300.0) ** -0.5


def _write_run(folder, steps_loss, steps_lr, loss_tag="train/loss", lr_tag="train/lr"):
    """One writer session: the loss at ``steps_loss`` and the rate of SPEC at ``steps_lr``, in step
    order, as a training loop logs them."""
    eta = SPEC.expand()
    w = SummaryWriter(str(folder))
    for s in sorted(set(steps_loss) | set(steps_lr)):
        if s in steps_lr:
            w.add_scalar(lr_tag, float(eta[s]), s)
        if s in steps_loss:
            w.add_scalar(loss_tag, float(_loss(s)), s)
    w.close()


def _write_restarted_run(folder, shift=0.0):
    """A run logged to step 2,000, then restarted from a checkpoint at step 1,500 (a second writer
    session, a new file) that logs to step 3,000, its losses moved by ``shift``."""
    _write_run(folder, range(20, 2001, 20), range(0, 2001, 20))
    eta = SPEC.expand()
    w = SummaryWriter(str(folder))
    for s in range(1500, 3001, 20):
        w.add_scalar("train/lr", float(eta[s]), s)
        w.add_scalar("train/loss", float(_loss(s) + shift), s)
    w.close()


def _record_starts(data) -> list[int]:
    """Byte offsets of the TFRecord frames of an event file's bytes (each frame: an 8-byte length,
    a 4-byte checksum of it, the data and a 4-byte checksum of the data)."""
    starts, off = [], 0
    while off < len(data):
        starts.append(off)
        off += 16 + int.from_bytes(data[off:off + 8], "little")
    return starts


def test_a_run_with_its_tags_at_their_own_cadences_reads_as_its_log(tmp_path):
    """Loss every 20 steps, rate every 5 (float32 in the file): the curve's steps and losses are the
    logged ones, its rate the logged rate, and its schedule the rate's own events (a per-step-like
    log: rows with a rate and no loss make the schedule)."""
    run = tmp_path / "run_a"
    _write_run(run, range(20, 3001, 20), range(0, 3001, 5))
    c = load_curve(run)
    assert c.name == "run_a" and dict(c.columns) == {"step": "step", "lr": "train/lr", "loss": "train/loss"}
    np.testing.assert_array_equal(c.step, np.arange(20, 3001, 20))
    np.testing.assert_allclose(c.loss, _loss(c.step), rtol=1e-6)  # float32 in the file
    np.testing.assert_allclose(c.lr, SPEC.expand()[c.step], rtol=1e-6)
    assert c.schedule is not None and c.known_from == 0
    # the same curve from one of its files, and a table with one column per tag
    assert np.array_equal(load_curve(next(run.iterdir())).step, c.step)
    df = read_event_scalars(run)
    assert list(df.columns) == ["step", "train/lr", "train/loss"] and df["step"].is_monotonic_increasing


def test_a_restart_replaces_what_was_logged_after_its_step(tmp_path):
    """A run logged to step 2,000, restarted from a checkpoint at step 1,500 with other losses (a
    new file): the curve is the run as it continued, steps 1,500..2,000 from the second session,
    with a warning that counts the replaced events."""
    run = tmp_path / "r"
    _write_restarted_run(run, shift=-0.5)
    with pytest.warns(LogRestartWarning, match="52 earlier events .train/loss: 26, train/lr: 26."):
        c = load_curve(run)
    np.testing.assert_array_equal(c.step, np.arange(20, 3001, 20))
    after = c.step >= 1500
    np.testing.assert_allclose(c.loss[after], _loss(c.step[after]) - 0.5, rtol=1e-6)
    np.testing.assert_allclose(c.loss[~after], _loss(c.step[~after]), rtol=1e-6)


def test_a_cut_off_file_reads_to_its_last_record_and_says_so(tmp_path):
    """A copy taken mid-write ends inside a record: read up to the last complete one, with a warning
    naming the step; the loss event logged after the rate's last event is left out, named."""
    run = tmp_path / "cut"
    _write_run(run, range(20, 3001, 20), range(20, 3001, 20))
    f = next(run.iterdir())
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2 + 7])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = load_curve(run)
    cut = [str(w.message) for w in caught if issubclass(w.category, TruncatedEventFileWarning)]
    assert len(cut) == 1 and "not a complete record" in cut[0]
    last = int(cut[0].rsplit("read up to step ", 1)[1])
    assert 500 < c.step[-1] <= last < 2500
    np.testing.assert_allclose(c.loss, _loss(c.step), rtol=1e-6)


def test_a_damaged_record_in_the_middle_is_refused(tmp_path):
    """One flipped byte in a record's data, complete records after it: TensorBoard's loader would
    stop there without a word; the reader refuses, naming the file and the record."""
    run = tmp_path / "dmg"
    _write_run(run, range(20, 3001, 20), range(20, 3001, 20))
    f = next(run.iterdir())
    data = bytearray(f.read_bytes())
    starts = _record_starts(data)
    mid = starts[len(starts) // 2]
    data[mid + 12] ^= 0xFF  # the first byte of the middle record's data
    f.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match=r"record \d+ of \d+ is damaged"):
        load_curve(run)


def test_a_damaged_last_record_is_refused_not_read_as_the_end(tmp_path):
    """The last record complete in length but damaged (its checksum fails): TensorBoard's loader
    stops there without a word, as at a clean end, and the run's last log is lost. Refused, naming
    the record as the file's last (a record cut short by a run still writing is the warned case
    above, not this one)."""
    run = tmp_path / "dmg"
    _write_run(run, range(20, 3001, 20), range(20, 3001, 20))
    f = next(run.iterdir())
    data = bytearray(f.read_bytes())
    starts = _record_starts(data)
    data[starts[-1] + 12] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match=rf"record {len(starts)} of {len(starts)} is damaged .its checksum fails., "
                                            rf"the last of the file"):
        load_curve(run)


def test_a_restart_from_the_last_logged_step_replaces_it_and_says_so(tmp_path):
    """A run logged to step 2,000 and restarted from a checkpoint at step 2,000 itself (its last log
    is written again, with another value): the curve keeps the second session's value there, and
    the two replaced events (the loss and the rate) are counted in the warning."""
    run = tmp_path / "r"
    _write_run(run, range(20, 2001, 20), range(0, 2001, 20))
    eta = SPEC.expand()
    w = SummaryWriter(str(run))
    for s in range(2000, 3001, 20):
        w.add_scalar("train/lr", float(eta[s]), s)
        w.add_scalar("train/loss", float(_loss(s) - 0.5), s)
    w.close()
    with pytest.warns(LogRestartWarning, match=r"2 earlier events .train/loss: 1, train/lr: 1."):
        c = load_curve(run)
    np.testing.assert_array_equal(c.step, np.arange(20, 3001, 20))
    np.testing.assert_allclose(c.loss[c.step >= 2000], _loss(c.step[c.step >= 2000]) - 0.5, rtol=1e-6)


def test_folders_without_a_run_are_refused_with_the_runs_they_hold(tmp_path):
    for name in ("a", "b"):
        _write_run(tmp_path / "runs" / name, range(20, 401, 20), range(20, 401, 20))
    with pytest.raises(DataFileError, match=r"it has runs in \['a', 'b'\]: give one run's folder"):
        load_curve(tmp_path / "runs")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match="give a curve file"):
        load_curve(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "events.out.tfevents.1.x").write_bytes(b"not an event file")
    with pytest.raises(DataFileError, match="no scalar"), warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedEventFileWarning)
        load_curve(tmp_path / "junk")


def test_a_non_finite_loss_is_refused_not_read_as_unlogged(tmp_path):
    """A loss event of NaN (a run that diverged) must not become an empty cell, which a reader takes
    for a step that was not logged: it is refused with the tag and step. A NaN in a tag no role
    reads (a gradient norm) does not stop the curve."""
    run = tmp_path / "nan"
    _write_run(run, range(20, 3001, 20), range(20, 3001, 20))
    w = SummaryWriter(str(run))
    w.add_scalar("grad_norm", float("inf"), 3000)
    w.close()
    assert load_curve(run).step[-1] == 3000
    w = SummaryWriter(str(run))
    w.add_scalar("train/lr", 1e-4, 3020)
    w.add_scalar("train/loss", float("nan"), 3020)
    w.close()
    with pytest.raises(DataFileError, match=r"column 'train/loss'.*value nan at step 3020 is not finite"):
        load_curve(run)


def test_megatron_tags_and_a_loss_only_run_with_its_spec(tmp_path):
    """Megatron-LM's tags (``lm loss``, ``learning-rate``) are read without --columns; a run that
    logged the loss alone reads with its schedule spec, its rate the spec's at every step."""
    _write_run(tmp_path / "meg", range(20, 3001, 20), range(20, 3001, 20), "lm loss", "learning-rate")
    m = load_curve(tmp_path / "meg")
    assert dict(m.columns)["loss"] == "lm loss" and dict(m.columns)["lr"] == "learning-rate"
    _write_run(tmp_path / "only", range(20, 3001, 20), [])
    with pytest.raises(DataFileError, match="no lr column"):
        load_curve(tmp_path / "only")
    c = load_curve(tmp_path / "only", schedule=SPEC)
    np.testing.assert_array_equal(c.lr, SPEC.expand()[c.step])


def test_fit_delay_reads_a_run_folder_as_its_csv(tmp_path):
    """fit-delay on a TensorBoard run folder fits the same parameters as on a CSV of the same events
    (the losses and rates as float32, which is what the event file holds)."""
    run = tmp_path / "tbrun"
    _write_run(run, range(20, 3001, 20), range(20, 3001, 20))
    c = load_curve(run)
    pd.DataFrame({"step": c.step, "lr": c.lr, "loss": c.loss}).to_csv(tmp_path / "tbrun.csv", index=False)
    assert np.array_equal(LossCurve.from_csv(tmp_path / "tbrun.csv").loss, c.loss)
    docs = []
    for src in (run, tmp_path / "tbrun.csv"):
        out = tmp_path / f"{src.suffix or 'dir'}.json"
        r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(src), "--law",
                            "momentum", "--json", str(out)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        docs.append(json.loads(out.read_text()))
    assert docs[0]["params"] == docs[1]["params"]
    bad = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "give one run's folder" in bad.stderr


def test_what_reading_a_log_assumed_is_in_fit_delays_json(tmp_path):
    """A warning given while a file is read (here: a restarted run's replaced events) is printed by
    fit-delay and kept in its JSON's warnings, as the fits' own are; before, it went to stderr as a
    Python warning and a program reading the JSON never saw it."""
    run = tmp_path / "restarted"
    _write_restarted_run(run)
    out = tmp_path / "fit.json"
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(run), "--law", "momentum",
                        "--json", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "warning: " in r.stdout and "52 earlier events" in r.stdout
    assert any("52 earlier events" in m for m in json.loads(out.read_text())["warnings"])
