"""Logs of runs that diverged: a loss that ends in NaN values is refused by row, in every format
the readers take, while an empty cell (or a NaN that only spells "not logged") stays a row without
a loss."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sde_scales.errors import DataFileError
from sde_scales.fitting.curves import load_curve

STEPS = np.arange(0, 3001, 10)
LR = np.where(STEPS < 2000, 1e-3, 1e-4)
LOSS = 3.0 + 2.0 * (1.0 + STEPS / 100.0) ** -0.5 - 0.1 * (LR < 1e-3)
#: the row from which the planted run diverged: every later loss is NaN
BLOWN = 250


def _f_string_csv(path, loss):
    """A CSV as a training loop's own f-string writes it: ``nan`` for a NaN loss."""
    lines = ["step,lr,loss"] + [f"{s},{r},{x}" for s, r, x in zip(STEPS, LR, loss)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _diverged():
    loss = LOSS.copy()
    loss[BLOWN:] = np.nan
    return loss


def test_a_csv_whose_loss_ends_in_nan_is_refused_at_the_first_nan_row(tmp_path):
    """Read before, the NaN rows were taken for rows without a loss and the run was fitted as if it
    had stopped at step 2490."""
    with pytest.raises(DataFileError, match=r"column 'loss', row 250 \(line 252\): the loss is NaN from step 2500 to the end.*"
                                            r"51 NaN row\(s\) after the last finite loss, at step 2490.*diverged"):
        load_curve(_f_string_csv(tmp_path / "run.csv", _diverged()))


def test_fit_delay_exits_2_on_a_diverged_log_and_keeps_what_it_wrote_before(tmp_path):
    out = tmp_path / "fit.json"
    out.write_text('{"previous": true}')
    bad = _f_string_csv(tmp_path / "run.csv", _diverged())
    r = subprocess.run([sys.executable, "-m", "sde_scales.cli", "fit-delay", "--fit", str(bad), "--law", "momentum",
                        "--json", str(out)], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "run.csv, column 'loss', row 250" in r.stderr and "diverged" in r.stderr and "Traceback" not in r.stderr
    assert json.loads(out.read_text()) == {"previous": True}


def test_nan_as_numpy_spells_a_row_without_a_loss_is_still_read_so(tmp_path):
    """``np.savetxt`` writes every missing loss of a per-step table as ``nan``: NaN values between
    logged losses, and a tail no longer than the log's own gaps, are rows without a loss, read
    exactly as the same table with empty cells."""
    s = np.arange(0, 2996)
    lr = np.where(s < 2000, 1e-3, 1e-4)
    loss = np.full(s.size, np.nan)
    loss[::10] = 3.0 + 2.0 * (1.0 + s[::10] / 100.0) ** -0.5  # logged every 10 steps; 5 rows after the last
    np.savetxt(tmp_path / "np.csv", np.c_[s, lr, loss], delimiter=",", header="step,lr,loss", comments="",
               fmt=["%d", "%.17g", "%.17g"])
    assert "nan" in (tmp_path / "np.csv").read_text()
    pd.DataFrame({"step": s, "lr": lr, "loss": loss}).to_csv(tmp_path / "empty.csv", index=False, float_format="%.17g")
    a, b = load_curve(tmp_path / "np.csv"), load_curve(tmp_path / "empty.csv")
    assert a.step.size == 300 and np.array_equal(a.step, b.step)
    assert np.array_equal(a.loss, b.loss) and np.array_equal(a.per_step_lr(), b.per_step_lr())
    # the same table of a run that diverged at step 2500: 496 NaN rows after the last logged loss,
    # far beyond the log's 9-row gaps
    loss[2500:] = np.nan
    np.savetxt(tmp_path / "np_div.csv", np.c_[s, lr, loss], delimiter=",", header="step,lr,loss", comments="",
               fmt=["%d", "%.17g", "%.17g"])
    with pytest.raises(DataFileError, match=r"row 2491 \(line 2493\): the loss is NaN from step 2491.*at step 2490.*diverged"):
        load_curve(tmp_path / "np_div.csv")


def test_missing_cells_are_not_nan_values(tmp_path):
    """Empty cells and the usual missing-value spellings (NA, null) after the last loss are rows
    without a loss, as before: nothing in them says the run diverged."""
    loss = _diverged()
    for token in ("", "NA", "null"):
        p = tmp_path / f"miss_{token or 'empty'}.csv"
        lines = ["step,lr,loss"] + [f"{s},{r},{token if np.isnan(x) else x}" for s, r, x in zip(STEPS, LR, loss)]
        p.write_text("\n".join(lines) + "\n")
        c = load_curve(p)
        assert c.step[-1] == 2490 and c.rows_without_loss == 51, token
        assert c.steps_without_loss == (2500, 2510, 2520, 2530, 2540)  # the fit's warning names them


def test_the_warning_of_rows_without_a_loss_names_their_steps(tmp_path):
    """It said "1 row(s) of F have a learning rate and no loss" and not which: a printed 'loss nan'
    (a step whose loss overflowed) mid-run is such a row."""
    import warnings

    from sde_scales.fitting.curves import ScheduleFeatures, StepGapWarning

    loss = LOSS.copy()
    loss[[40, 77]] = np.nan
    p = tmp_path / "two_missing.csv"
    pd.DataFrame({"step": STEPS, "lr": LR, "loss": loss}).to_csv(p, index=False)
    c = load_curve(p)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        ScheduleFeatures.build(c, c.step[c.step >= 100], 1e-3)
    said = [str(w.message) for w in got if issubclass(w.category, StepGapWarning) and "no loss" in str(w.message)]
    assert len(said) == 1 and "2 row(s)" in said[0] and "(steps 400, 770)" in said[0], said


def test_json_lines_with_a_nan_loss_tail_are_refused_and_absent_keys_are_not(tmp_path):
    recs = [{"step": int(s), "lr": float(r), "loss": float(x)} for s, r, x in zip(STEPS, LR, _diverged())]
    (tmp_path / "div.jsonl").write_text("\n".join(json.dumps(r) for r in recs))  # json writes NaN
    with pytest.raises(DataFileError, match=r"row 250: the loss is NaN from step 2500.*diverged"):
        load_curve(tmp_path / "div.jsonl")
    for r in recs[BLOWN:]:
        del r["loss"]  # the same steps with the rate logged and no loss at all
    (tmp_path / "ok.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
    c = load_curve(tmp_path / "ok.jsonl")
    assert c.step[-1] == 2490 and c.step.size == BLOWN


def test_parquet_nan_tail_is_refused_and_nulls_are_not(tmp_path):
    div = pa.array(list(LOSS[:BLOWN]) + [float("nan")] * (STEPS.size - BLOWN), type=pa.float64())
    pq.write_table(pa.table({"step": STEPS, "lr": LR, "loss": div}), tmp_path / "div.parquet")
    with pytest.raises(DataFileError, match=r"row 250: the loss is NaN from step 2500.*diverged"):
        load_curve(tmp_path / "div.parquet")
    null = pa.array(list(LOSS[:BLOWN]) + [None] * (STEPS.size - BLOWN), type=pa.float64())
    pq.write_table(pa.table({"step": STEPS, "lr": LR, "loss": null}), tmp_path / "null.parquet")
    assert load_curve(tmp_path / "null.parquet").step[-1] == 2490


def test_one_run_of_a_panel_export_that_diverged(tmp_path):
    """A Weights & Biases export of two runs, run B spelled NaN from row 250 on: ``#B`` is refused,
    ``#A`` (its own column) is read."""
    pd.DataFrame({"Step": STEPS, "A - loss": LOSS, "A - lr": LR, "B - loss": _diverged(), "B - lr": LR}).to_csv(
        tmp_path / "panel.csv", index=False, na_rep="NaN")
    with pytest.raises(DataFileError, match=r"row 250 \(line 252\): the loss is NaN from step 2500.*diverged"):
        load_curve(f"{tmp_path / 'panel.csv'}#B")
    assert load_curve(f"{tmp_path / 'panel.csv'}#A").step.size == STEPS.size


def test_a_csv_error_names_the_file_line_where_rows_are_lines(tmp_path):
    """CSV errors said "row 20", counted from 0 after the header: line 22 in an editor. The line
    is added where each row is one line; with a blank line (which pandas skips) it is left out
    rather than guessed."""
    lr = LR.copy()
    lr[20] = -1.0
    p = tmp_path / "neg.csv"
    pd.DataFrame({"step": STEPS, "lr": lr, "loss": LOSS}).to_csv(p, index=False)
    with pytest.raises(DataFileError, match=r"neg.csv, column 'lr', row 20 \(line 22\): learning rate -1"):
        load_curve(p)
    assert p.read_text().splitlines()[21].startswith("200,-1")  # line 22, counted from 1
    text = p.read_text().splitlines()
    q = tmp_path / "blank.csv"
    q.write_text("\n".join(text[:5] + [""] + text[5:]) + "\n")
    with pytest.raises(DataFileError, match=r"blank.csv, column 'lr', row 20: learning rate -1"):
        load_curve(q)
    # one run of a Weights & Biases export (FILE#RUN): its columns are selected, every row kept
    wb = tmp_path / "export.csv"
    pd.DataFrame({"Step": STEPS, "a - lr": lr, "a - loss": LOSS, "b - lr": LR, "b - loss": LOSS}).to_csv(wb, index=False)
    with pytest.raises(DataFileError, match=r"export.csv, column 'lr', row 20 \(line 22\): learning rate -1"):
        load_curve(f"{wb}#a")
    assert load_curve(f"{wb}#b").name == "b"
