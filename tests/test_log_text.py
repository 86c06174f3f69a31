"""A log's text as tools and people write it: headers and cells printed with ", ", a spreadsheet's
decimal comma, a header repeated where two logs were written into one file."""

import numpy as np
import pytest

from sde_scales.errors import DataFileError
from sde_scales.fitting.curves import load_curve

STEPS = np.arange(0, 3000, 10)
LR = np.where(STEPS < 2000, 1e-3, 1e-4)
LOSS = 3.0 + 2.0 * (1.0 + STEPS / 100.0) ** -0.5


def _rows(sep=",", fmt=lambda v: repr(float(v))):
    return [f"{s}{sep}{fmt(r)}{sep}{fmt(x)}" for s, r, x in zip(STEPS, LR, LOSS)]


def test_a_header_and_cells_printed_with_comma_space_are_read(tmp_path):
    """``print(f"{step}, {lr}, {loss}")`` writes "step, lr, loss": the columns are step, lr and loss
    (they were " lr" and " loss", and the file was refused for lacking an lr column)."""
    (tmp_path / "spaced.csv").write_text("step, lr, loss\n" + "\n".join(_rows(", ")) + "\n")
    c = load_curve(tmp_path / "spaced.csv")
    assert np.array_equal(c.step, STEPS) and np.array_equal(c.lr, LR) and np.array_equal(c.loss, LOSS)


def test_a_decimal_comma_is_named_as_such(tmp_path):
    (tmp_path / "de.csv").write_text("step;lr;loss\n" + "\n".join(_rows(";", lambda v: repr(float(v)).replace(".", ",")))
                                     + "\n")
    with pytest.raises(DataFileError, match=r"column 'loss', row 0: '5,0' is not a number; a decimal comma"):
        load_curve(tmp_path / "de.csv")


def test_a_repeated_header_is_named_as_two_logs_in_one_file(tmp_path):
    rows = _rows()
    (tmp_path / "twice.csv").write_text("\n".join(["step,lr,loss"] + rows[:150] + ["step,lr,loss"] + rows[150:]) + "\n")
    with pytest.raises(DataFileError, match=r"row 150: 'loss' is not a number; the row repeats the header"):
        load_curve(tmp_path / "twice.csv")


def _same(c):
    return np.array_equal(c.step, STEPS) and np.allclose(c.lr, LR, rtol=1e-15) and np.allclose(c.loss, LOSS, rtol=1e-15)


def test_numpy_savetxt_logs_are_read_with_their_commented_header(tmp_path):
    """``numpy.savetxt(..., header="step,lr,loss")`` writes the header as a comment, "# step,lr,loss",
    and its default delimiter is a space: both read as the log they are (the first was refused for
    its column "# step", the second read as one column named "# step lr loss")."""
    table = np.column_stack([STEPS, LR, LOSS])
    np.savetxt(tmp_path / "comma.csv", table, delimiter=",", header="step,lr,loss")
    np.savetxt(tmp_path / "spaces.txt", table, header="step lr loss")
    assert _same(load_curve(tmp_path / "comma.csv")) and _same(load_curve(tmp_path / "spaces.txt"))


def test_comment_lines_and_a_separator_hint_before_the_table_are_skipped(tmp_path):
    """Comment lines ("# run ...") before the header, and a spreadsheet's first line "sep=;"."""
    (tmp_path / "noted.csv").write_text("# run: cos-1e-3\n# logged every 10 steps\nstep,lr,loss\n"
                                        + "\n".join(_rows()) + "\n")
    (tmp_path / "hint.csv").write_text("sep=;\nstep;lr;loss\n" + "\n".join(_rows(";")) + "\n")
    assert _same(load_curve(tmp_path / "noted.csv")) and _same(load_curve(tmp_path / "hint.csv"))


def test_a_column_named_twice_is_refused_not_read_as_the_first(tmp_path):
    """"step,lr,loss,loss": pandas names the second "loss.1" and the first was read as the loss, in
    silence; which of the two is the loss, the file does not say. A name given twice that is no
    column the fit reads is left alone."""
    rows = [f"{r},{LOSS[i] + 1.0}" for i, r in enumerate(_rows())]
    (tmp_path / "two.csv").write_text("step,lr,loss,loss\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataFileError, match=r"two.csv, column 'loss': the header names 'loss' twice"):
        load_curve(tmp_path / "two.csv")
    (tmp_path / "other.csv").write_text("step,lr,loss,time,time\n" + "\n".join(f"{r},1,2" for r in _rows()) + "\n")
    assert _same(load_curve(tmp_path / "other.csv"))
    text = "# step,lr,loss,loss\n" + "\n".join(rows) + "\n"  # the same, with its header as a comment
    (tmp_path / "two_commented.csv").write_text(text)
    with pytest.raises(DataFileError, match=r"the header names 'loss' twice"):
        load_curve(tmp_path / "two_commented.csv")
