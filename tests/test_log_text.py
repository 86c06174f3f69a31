"""A log's text as tools and people write it: headers and cells printed with ", ", a spreadsheet's
decimal comma, a header repeated where two logs were written into one file."""

import re
import warnings

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
    with pytest.raises(DataFileError, match=r"column 'loss', row 0 \(line 2\): '5,0' is not a number; a decimal comma"):
        load_curve(tmp_path / "de.csv")


def test_a_repeated_header_is_named_as_two_logs_in_one_file(tmp_path):
    rows = _rows()
    (tmp_path / "twice.csv").write_text("\n".join(["step,lr,loss"] + rows[:150] + ["step,lr,loss"] + rows[150:]) + "\n")
    with pytest.raises(DataFileError, match=r"row 150 \(line 152\): 'loss' is not a number; the row repeats the header"):
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


# --------------------------------------------------------------------------- printed logs

@pytest.mark.parametrize("line, pairs", [
    ("iter 100: loss 4.2345, time 123.45ms, mfu 12.34%", {"iter": 100, "loss": 4.2345, "time": 123.45, "mfu": 12.34}),
    ("step 500: train loss 4.1234, val loss 4.2345", {"step": 500, "train loss": 4.1234, "val loss": 4.2345}),
    (" [2024-05-01 12:00:00] iteration      100/    5000 | consumed samples:  3200 | learning rate: 1.500000E-04 "
     "| lm loss: 6.543210E+00 | loss scale: 1.0 |",
     {"iteration": 100, "consumed samples": 3200, "learning rate": 1.5e-4, "lm loss": 6.54321, "loss scale": 1.0}),
    ("step=100 lr=3e-4 loss=4.2", {"step": 100, "lr": 3e-4, "loss": 4.2}),
    ("\x1b[31mstep:  1  \x1b[32mloss: 12.0315  \x1b[33mmemory: 23.42GiB(29.65%)",
     {"step": 1, "loss": 12.0315, "memory": 23.42}),
    ("{'loss': 2.3456, 'learning_rate': 4.9e-05, 'epoch': 0.01}", {"loss": 2.3456, "learning_rate": 4.9e-5,
                                                                    "epoch": 0.01}),
    ("2024-05-01 12:00:00 INFO step 10 loss 2.3 lr 1e-4", {"step": 10, "loss": 2.3, "lr": 1e-4}),
    ("gpt2 loss 3.1", {"loss": 3.1}),  # a digit inside a word is not a value
    ("1.0e+01 1.0e-03 3.0e+00", {}),  # a table's row: numbers only
    ("level info 3", {"info": 3}),  # "inf" inside a word is not infinity
    ("number of parameters: 123.59M", {"parameters": 123.59}),  # one word before the value, outside "|" fields
])
def test_a_printed_line_gives_the_values_it_names(line, pairs):
    from sde_scales.fitting.text_logs import parse_line

    assert parse_line(line) == pytest.approx(pairs, rel=1e-15)


def test_a_nan_in_a_printed_line_is_a_value():
    from sde_scales.fitting.text_logs import parse_line

    got = parse_line("iter 7: loss nan, time 3ms")
    assert set(got) == {"iter", "loss", "time"} and np.isnan(got["loss"]) and got["time"] == 3.0


def test_megatron_and_hand_written_printed_logs_are_read_as_their_tables(tmp_path):
    """A Megatron-LM log (fields split by "|", keys of several words, ``iteration 100/ 5000``, an
    evaluation line of its own) and a ``key=value`` log written to a ``.txt``: the same curve as the
    table they print."""
    lines = [" > number of parameters on (tensor, pipeline) model parallel rank (0, 0): 124439808"]
    for i, (s, r, x) in enumerate(zip(STEPS, LR.tolist(), LOSS.tolist())):
        lines.append(f" [2024-05-01 12:00:{i % 60:02d}] iteration {s:8d}/    3000 | consumed samples: {s * 512:10d} | "
                     f"learning rate: {r!r} | global batch size:   512 | lm loss: {x!r} | loss scale: 1.0 | "
                     f"number of nan iterations:   0 |")
        if i % 100 == 99:
            lines.append(f" validation loss at iteration {s} | lm loss value: {x - 0.1!r} | lm loss PPL: 30.1 |")
    (tmp_path / "megatron.log").write_text("\n".join(lines) + "\n")
    c = load_curve(tmp_path / "megatron.log")
    assert _same(c)
    assert dict(c.columns) == {"step": "iteration", "lr": "learning rate", "loss": "lm loss"}
    (tmp_path / "run.txt").write_text("".join(f"step={s} lr={r!r} loss={x!r}\n"
                                                  for s, r, x in zip(STEPS, LR.tolist(), LOSS.tolist())))
    assert _same(load_curve(tmp_path / "run.txt"))


def test_nanogpts_log_is_read_from_its_training_lines_with_the_schedule_given(tmp_path):
    """nanoGPT prints ``iter N: loss ...`` for training and ``step N: train loss ..., val loss ...`` for
    evaluations, and no learning rate. Its evaluations' ``step`` is not the training lines' step
    (keys never on a line with the loss are left out), and the missing rate is asked for by name."""
    lines = ["tokens per iteration will be: 491,520", "number of parameters: 123.59M"]
    for i, (s, x) in enumerate(zip(STEPS, LOSS)):
        if i % 50 == 0:
            lines.append(f"step {s}: train loss {x:.4f}, val loss {x + 0.01:.4f}")
        lines.append(f"iter {s}: loss {x:.4f}, time {100 + i % 7:.2f}ms, mfu {30 + i % 3:.2f}%")
    (tmp_path / "train.log").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError, match=r"train.log, column 'lr': no lr column .*--schedule NAME:SPEC.*"
                                            r"the file has columns \[.*'iter', 'loss', 'time', 'mfu'\]") as err:
        load_curve(tmp_path / "train.log")
    assert "'step'" not in str(err.value)  # the evaluations' step: never on a line with the loss
    c = load_curve(tmp_path / "train.log", schedule="peak=1e-3,decay=step,decay_start=2000,end=1e-4,total=3000")
    assert np.array_equal(c.step, STEPS) and dict(c.columns)["step"] == "iter"
    np.testing.assert_allclose(c.loss, LOSS, atol=5e-5)  # printed to 4 decimals


def test_a_printed_log_without_values_is_refused_and_a_table_stays_a_table(tmp_path):
    from sde_scales.fitting.text_logs import looks_like_text_log

    (tmp_path / "notes.log").write_text("starting the run\nfinished\n")
    with pytest.raises(DataFileError, match=r"notes.log: no line names a value"):
        load_curve(tmp_path / "notes.log")
    np.savetxt(tmp_path / "table.txt", np.column_stack([STEPS, LR, LOSS]), header="step lr loss", comments="")
    assert not looks_like_text_log(tmp_path / "table.txt") and _same(load_curve(tmp_path / "table.txt"))
    # a logger that writes a CSV table into train.log: a table, whatever its suffix
    (tmp_path / "table.log").write_text("step,lr,loss\n" + "\n".join(_rows()) + "\n")
    assert not looks_like_text_log(tmp_path / "table.log") and _same(load_curve(tmp_path / "table.log"))


def test_a_run_resumed_into_the_same_printed_log_is_read_as_it_continued(tmp_path):
    """``python train.py >> train.log`` after a crash: the run resumes from its checkpoint at step 1200
    (the last printed step was 1500) and prints 1200.. again, with other values. As TensorBoard
    shows such a run, the lines printed after the restart replace those before it from its step on,
    with a warning that counts them (31 lines, steps 1200..1500). A restart at the last printed step
    itself (its loss printed twice) is one too; a step's rate and loss on lines of their own is not."""
    from sde_scales.fitting.event_files import LogRestartWarning

    def line(s, r, x):
        return f"step={s} lr={r!r} loss={x!r}"

    rows = list(zip(STEPS.tolist(), LR.tolist(), LOSS.tolist()))
    first = [line(s, r, x + 0.5) for s, r, x in rows if s <= 1500]
    resumed = [line(s, r, x) for s, r, x in rows if s >= 1200]
    text = [line(s, r, x) for s, r, x in rows if s < 1200] + first[120:] + ["resuming from step 1200"] + resumed
    (tmp_path / "train.log").write_text("\n".join(text) + "\n")
    with pytest.warns(LogRestartWarning, match=r"resumed 1 time\(s\).*1500 -> 1200\); 31 earlier record"):
        c = load_curve(tmp_path / "train.log")
    assert _same(c)
    same = [line(s, r, x) for s, r, x in rows if s < 1500] + [line(1500, 1e-3, 9.0)] + [line(s, r, x) for s, r, x in rows
                                                                                         if s >= 1500]
    (tmp_path / "same.log").write_text("\n".join(same) + "\n")
    with pytest.warns(LogRestartWarning, match=r"1500 -> 1500\); 1 earlier record"):
        assert _same(load_curve(tmp_path / "same.log"))
    split = [t for s, r, x in rows for t in (f"step={s} lr={r!r}", f"step={s} loss={x!r}")]
    (tmp_path / "split.log").write_text("\n".join(split) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LogRestartWarning)
        assert _same(load_curve(tmp_path / "split.log"))


def test_steps_printed_with_thousands_separators_are_read_whole(tmp_path):
    """``print(f"step {step:,} | lr {lr} | loss {loss}")`` writes ``step 1,000``, ``step 12,500``.
    Read up to the comma, these were steps 1, 12, ...: logged every 1,000 steps, a curve a thousand
    times too short with no word said; logged every 500, "resumed" runs and half the rows dropped.
    Both logs now read as the table they print, whatever other comma-written values stand beside
    (tokens in thousands, a perplexity with a decimal comma: not read, so not judged)."""
    steps = np.arange(500, 60_001, 500)
    lr = np.where(steps < 48_000, 1e-3, 1e-4)
    loss = 3.0 + 2.0 * (1.0 + steps / 100.0) ** -0.5
    rows = list(zip(steps.tolist(), lr.tolist(), loss.tolist()))
    (tmp_path / "every500.log").write_text("".join(f"step {s:,} | lr {r!r} | loss {x!r}\n" for s, r, x in rows))
    (tmp_path / "every1000.log").write_text("".join(
        f"step {s:,}: lr={r!r}, loss={x!r}, tokens {s * 1024:,}, ppl " + f"{np.exp(x):.2f}\n".replace(".", ",")
        for s, r, x in rows if s % 1000 == 0))
    assert re.search(r"tokens 61,440,000, ppl \d+,\d\d$", (tmp_path / "every1000.log").read_text().splitlines()[-1])
    c = load_curve(tmp_path / "every500.log")
    assert np.array_equal(c.step, steps) and np.array_equal(c.lr, lr) and np.array_equal(c.loss, loss)
    c = load_curve(tmp_path / "every1000.log")
    keep = steps % 1000 == 0
    assert np.array_equal(c.step, steps[keep]) and np.array_equal(c.loss, loss[keep])


@pytest.mark.parametrize("bad, line, what", [
    ("loss 2,345", 7, r"loss '2,345' has a comma inside \(it may be a thousands separator \(2345\) or a decimal "
                      r"comma \(2.345\)"),
    ("lr 1,5e-04", 7, r"lr '1,5e-04' has a comma inside"),
    ("step 0,5", 7, r"step '0,5' has a comma inside \(a step is a whole number"),
    ("step 1,50", 7, r"step '1,50' has a comma inside"),
])
def test_a_comma_inside_a_read_value_is_refused_naming_its_line(tmp_path, bad, line, what):
    """A decimal comma, or a thousands separator where a loss or a rate cannot say which it is, is
    refused with the line, the value and the fix; read up to the comma, ``loss 2,345`` was 2 and
    ``step 0,5`` was 0."""
    from sde_scales.cli import main

    rows = [f"step {s} | lr {r!r} | loss {x!r}" for s, r, x in zip(STEPS.tolist(), LR.tolist(), LOSS.tolist())]
    key = bad.split()[0]
    rows[line - 1] = " | ".join(bad if part.startswith(key + " ") else part for part in rows[line - 1].split(" | "))
    (tmp_path / "run.log").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataFileError, match=rf"run.log, line {line}: {what}.*print the {key} "):
        load_curve(tmp_path / "run.log")
    assert main(["fit-delay", "--fit", str(tmp_path / "run.log"), "--no-progress"]) == 2


def test_thousands_reads_groups_of_three_only():
    from sde_scales.fitting.text_logs import comma_values, parse_line, thousands

    assert [thousands(t) for t in ("1,000", "12,500", "999,999,999", "-1,000")] == [1e3, 12500.0, 999999999.0, -1e3]
    assert [thousands(t) for t in ("0,5", "2,5", "1,50", "1,0000", "1,000.5", "01,000", "1,000,00")] == [None] * 7
    line = "step 12,000 | loss 2,5 | lr 3e-4 | tokens 1,024,000"
    assert parse_line(line) == {"lr": 3e-4} and comma_values(line) == {"step": "12,000", "loss": "2,5",
                                                                       "tokens": "1,024,000"}
    # a number followed by a comma and a space ends there: "loss 4.2, time 3ms"
    assert parse_line("iter 100: loss 4.2345, time 12ms") == {"iter": 100.0, "loss": 4.2345, "time": 12.0}


def test_hugging_faces_printed_records_are_refused_pointing_at_trainer_state(tmp_path):
    """The Trainer prints ``{'loss': 2.3, 'grad_norm': 1.2, 'learning_rate': 5e-05, 'epoch': 0.01}``:
    no step. The refusal points at the file that has it (trainer_state.json), rather than asking for
    a step column the log cannot give."""
    lines = [str({"loss": float(x), "grad_norm": 1.2, "learning_rate": float(r), "epoch": round(i / 300, 4)})
             for i, (r, x) in enumerate(zip(LR, LOSS))]
    (tmp_path / "stdout.log").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError, match=r"stdout.log, column 'step': no line gives a step\. Hugging Face's Trainer.*"
                                            r"trainer_state\.json"):
        load_curve(tmp_path / "stdout.log")


def test_a_table_cell_written_in_thousands_is_named_as_ambiguous(tmp_path):
    """A spreadsheet that quotes ``"1,000"`` in the step column: refused as a thousands separator or a
    decimal comma, not called a decimal comma (which 1,000 as a step is not likely to be)."""
    (tmp_path / "quoted.csv").write_text("step,lr,loss\n" + "\n".join(
        f'"{s:,}",{r!r},{x!r}' for s, r, x in zip(STEPS.tolist(), LR.tolist(), LOSS.tolist())) + "\n")
    with pytest.raises(DataFileError, match=r"column 'step', row 100: '1,000' is not a number; a thousands separator, "
                                            r"or a decimal comma"):
        load_curve(tmp_path / "quoted.csv")


def _jsonl(path, value_of):
    import json

    path.write_text("\n".join(json.dumps({"step": int(s), **value_of(r, x)})
                              for s, r, x in zip(STEPS.tolist(), LR.tolist(), LOSS.tolist())) + "\n")
    return path


def test_a_rate_logged_per_parameter_group_is_one_column_per_group(tmp_path):
    """``{"lr": [0.001, 0.0001]}``, a rate per parameter group: columns lr/0 and lr/1, the refusal names
    them, and --columns picks one (it was refused as a cell that is not a number, "a file cut off while
    it was written"). A list of one rate is that rate."""
    two = _jsonl(tmp_path / "groups.jsonl", lambda r, x: {"lr": [r, r / 10], "loss": x})
    with pytest.raises(DataFileError, match=r"no lr column \(columns that look like one: \['lr/0', 'lr/1'\]"):
        load_curve(two)
    c = load_curve(two, columns={"lr": "lr/1"})
    assert np.array_equal(c.lr, LR / 10) and np.array_equal(c.loss, LOSS)
    assert _same(load_curve(_jsonl(tmp_path / "one.jsonl", lambda r, x: {"lr": [r], "loss": x})))


def test_a_boolean_where_a_number_belongs_is_refused(tmp_path):
    """pandas reads JSON's true as 1.0: a loss of true was fitted as a loss of 1."""
    with pytest.raises(DataFileError, match=r"column 'loss', row 0: 'true' is not a number; a boolean"):
        load_curve(_jsonl(tmp_path / "flag.jsonl", lambda r, x: {"lr": r, "loss": True}))
    # a boolean in a column the curve does not read is no matter
    assert _same(load_curve(_jsonl(tmp_path / "eval.jsonl", lambda r, x: {"lr": r, "loss": x, "is_eval": False})))


def test_a_parquet_column_of_booleans_is_refused_as_the_loss(tmp_path):
    """A Parquet column of booleans named as the loss read as losses of 0.0 and 1.0."""
    import pandas as pd

    pd.DataFrame({"step": STEPS, "lr": LR, "loss": LOSS, "is_eval": STEPS % 500 == 0}).to_parquet(tmp_path / "r.parquet")
    assert _same(load_curve(tmp_path / "r.parquet"))
    with pytest.raises(DataFileError, match=r"column 'is_eval': a column of booleans, not numbers"):
        load_curve(tmp_path / "r.parquet", columns={"loss": "is_eval"})


def test_weights_and_biases_step_counter_is_read_with_a_warning(tmp_path):
    """W&B's ``_step`` counts wandb.log calls: a run that logged the rate and the loss in two calls per
    logged update has _step 0, 2, 4, ... where the update was 10, 20, 30, ... Read as the step (the
    only candidate) it now warns, unless named; beside the global step, the refusal says which is
    which."""
    import pandas as pd

    frame = pd.DataFrame({"_step": np.arange(STEPS.size) * 2, "train/loss": LOSS, "train/learning_rate": LR})
    frame.to_csv(tmp_path / "wb.csv", index=False)
    with pytest.warns(UserWarning, match=r"the step is read from '_step', Weights & Biases' count of wandb.log calls"):
        load_curve(tmp_path / "wb.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(load_curve(tmp_path / "wb.csv", columns={"step": "_step"}).step, np.arange(STEPS.size) * 2)
    frame.assign(**{"trainer/global_step": STEPS}).to_csv(tmp_path / "both.csv", index=False)
    with pytest.raises(DataFileError, match=r"step could be any of \['trainer/global_step', '_step'\] \('_step' is "
                                            r"Weights & Biases' count of wandb.log calls"):
        load_curve(tmp_path / "both.csv")
    # fit-delay prints the warning and keeps it in its JSON
    import json

    from sde_scales.cli import main

    assert main(["fit-delay", "--fit", str(tmp_path / "wb.csv"), "--no-progress", "--json", str(tmp_path / "o.json")]) == 0
    got = json.loads((tmp_path / "o.json").read_text())
    assert any("Weights & Biases' count of wandb.log calls" in w for w in got["warnings"])


def test_an_iteration_counter_that_restarts_each_epoch_is_refused_not_read_as_resumed_runs(tmp_path):
    """``epoch 1 iter 0 ...`` after ``epoch 0 iter 380``: the step column counts updates within an
    epoch. Read as a run resumed at each epoch, the curve was the last epoch alone (20 of 100 lines),
    with a warning that spoke of restarts. A restart within an epoch (the epoch does not go on) is
    still one."""
    from sde_scales.fitting.event_files import LogRestartWarning

    def text(epochs):
        return "\n".join(f"epoch {e} iter {i} lr {float(LR[k])!r} loss {float(LOSS[k])!r}" for e, i, k in epochs) + "\n"

    per_epoch = [(k // 20, (k % 20) * 20, k) for k in range(100)]
    (tmp_path / "epochs.log").write_text(text(per_epoch))
    with pytest.raises(DataFileError, match=r"epochs.log, column 'iter': line 21: iter goes back from 380 to 0 where "
                                            r"epoch goes on from 0 to 1: 'iter' counts the updates within an epoch"):
        load_curve(tmp_path / "epochs.log")
    # the epoch printed on a line of its own, before its updates
    (tmp_path / "headed.log").write_text("".join(
        (f"Epoch {k // 20}/5\n" if k % 20 == 0 else "")
        + f"iter {(k % 20) * 20} lr {float(LR[k])!r} loss {float(LOSS[k])!r}\n" for k in range(100)))
    with pytest.raises(DataFileError, match=r"headed.log, column 'iter': line 23: iter goes back from 380 to 0 where "
                                            r"Epoch goes on from 0 to 1"):
        load_curve(tmp_path / "headed.log")
    # one epoch of 100 logged updates, resumed at iter 1200 after printing up to 1500: a restart
    one = [(0, int(STEPS[k]), k) for k in range(160)]
    resumed = one[:151] + [(0, int(STEPS[k]), k) for k in range(120, 160)]
    (tmp_path / "resumed.log").write_text(text(resumed))
    with pytest.warns(LogRestartWarning, match=r"resumed 1 time"):
        c = load_curve(tmp_path / "resumed.log")
    assert np.array_equal(c.step, STEPS[:160]) and np.array_equal(c.loss, LOSS[:160])


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16-le-bom", "utf-16-be-bom"])
@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl", "log"])
def test_logs_written_with_a_byte_order_mark_or_in_utf16_read_as_the_same_curve(tmp_path, encoding, kind):
    """Excel's "CSV UTF-8" starts the file with a byte-order mark, which made a JSON Lines log's first
    line no JSON; Windows PowerShell 5 (``> file``, ``Out-File``) writes UTF-16, which was refused as
    no table ("cannot be read as csv") or read as a log with no values."""
    import json

    rows = list(zip(STEPS.tolist(), LR.tolist(), LOSS.tolist()))
    text = {"csv": "step,lr,loss\n" + "".join(f"{s},{r!r},{x!r}\n" for s, r, x in rows),
            "tsv": "step\tlr\tloss\n" + "".join(f"{s}\t{r!r}\t{x!r}\n" for s, r, x in rows),
            "jsonl": "".join(json.dumps({"step": s, "lr": r, "loss": x}) + "\n" for s, r, x in rows),
            "log": "".join(f"step {s} lr {r!r} loss {x!r}\n" for s, r, x in rows)}[kind]
    data = (text.encode("utf-8-sig") if encoding == "utf-8-sig" else
            b"\xff\xfe" + text.encode("utf-16-le") if encoding == "utf-16-le-bom" else
            b"\xfe\xff" + text.encode("utf-16-be"))
    (tmp_path / f"run.{kind}").write_bytes(data)
    assert _same(load_curve(tmp_path / f"run.{kind}"))


@pytest.mark.parametrize("bad, key, what", [("lr -1e-3", "lr", "learning rate -0.001 at step 120 is negative"),
                                            ("lr 1e400", "lr", "value inf at step 120 is not finite"),
                                            ("loss 1e400", "loss", "value inf at step 120 is not finite")])
def test_a_bad_value_in_a_printed_log_is_named_by_its_line_in_the_file(tmp_path, bad, key, what):
    """A printed log's rows are not its lines (a header, evaluation lines between): the error names
    the line a user opens the file at, not the curve's row (12 here, which is line 17)."""
    lines = ["starting run"]
    for i in range(30):
        loss, lr = f"loss {5 - 0.05 * i:.3f}", "lr 1e-3"
        if i == 12:
            loss, lr = (bad, lr) if key == "loss" else (loss, bad)
        lines.append(f"iter {i * 10}: {loss}, {lr}")
        if i % 5 == 0:
            lines.append(f"eval step {i * 10} val 4.1")
    p = tmp_path / "run.log"
    p.write_text("\n".join(lines) + "\n")
    assert lines[16].startswith("iter 120:")  # line 17 of the file, counted from 1
    with pytest.raises(DataFileError, match=rf"run.log, column '{key}', line 17: {what}"):
        load_curve(p)


@pytest.mark.parametrize("suffix, where", [(".jsonl", "line 17"), (".json", "record 15")])
def test_a_bad_value_in_a_json_log_is_named_by_its_line_or_its_record(tmp_path, suffix, where):
    """A JSON log's records are not the curve's rows (evaluation records between, a blank line): a
    JSON Lines log names the line, a JSON list the record's index in it (the curve's row is 12)."""
    import json

    lines = []
    for i in range(30):
        lines.append(json.dumps({"step": i * 10, "lr": -1e-3 if i == 12 else 1e-3, "loss": 5 - 0.05 * i}))
        if i % 5 == 0:
            lines.append(json.dumps({"step": i * 10, "eval_loss": 4.0}))
        if i == 3:
            lines.append("")
    p = tmp_path / f"run{suffix}"
    if suffix == ".jsonl":
        p.write_text("\n".join(lines) + "\n")
        assert '"step": 120, "lr": -0.001' in lines[16]  # line 17, counted from 1
    else:
        records = [json.loads(s) for s in lines if s]
        assert records[15]["lr"] == -1e-3  # record 15 of the list, counted from 0
        p.write_text(json.dumps(records))
    with pytest.raises(DataFileError, match=rf"run{suffix}, column 'lr', {where}: learning rate -0.001 at step 120 "
                                            r"is negative"):
        load_curve(p)
