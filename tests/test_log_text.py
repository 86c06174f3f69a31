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
