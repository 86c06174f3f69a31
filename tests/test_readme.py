"""The README's examples run as written, and the run-store analyses refuse what they cannot read.

A user's first contact with the toolkit is the README: an example that no longer runs (an API
renamed, a store too small for the analysis it shows) is a defect, so the examples are executed
here from the README's own text, not from a copy."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import shell_command
from sde_scales.errors import InvalidArgumentError

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    """The README's text from a heading to the next heading of any level."""
    text = README.read_text()
    start = text.index(title)
    nxt = re.search(r"^#{1,6} ", text[start + len(title):], flags=re.M)
    return text[start: start + len(title) + (nxt.start() if nxt else len(text))]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_the_readme_tour_of_the_api_runs():
    """The first Python block of 'A tour of the API': an OU process solved by both solvers."""
    code = _blocks(_section("## A tour of the API"), "python")[0]
    ns: dict = {}
    exec(compile(code, "README.md (tour)", "exec"), ns)
    sol = ns["sol"]
    assert np.allclose(sol.t, [0.5, 1.0]) and sol.x.shape == (2, 1000, 1)
    # the OU mean at t = 1 is mu + (x0 - mu) e^{-theta}; 1000 paths: standard error sd/sqrt(1000) ~ 0.013,
    # sd = sigma sqrt((1 - e^{-2 theta}) / (2 theta)) = 0.39; 5 standard errors
    mean = 0.5 + 0.5 * np.exp(-2.0)
    assert abs(sol.x[1, :, 0].mean() - mean) < 5 * 0.39 / np.sqrt(1000)


def test_the_readme_run_store_example_runs_on_the_store_its_sweep_makes(tmp_path, monkeypatch):
    """'Reading a run store': its sweep command, then its Python block, in a fresh folder. The
    verdict itself is not asserted (it is the rates module's business); that the example runs to a
    verdict on the store it says to make is."""
    sec = _section("### Reading a run store")
    (sweep,), (code,) = _blocks(sec, "bash"), _blocks(sec, "python")
    cmd = shell_command(sweep)
    assert cmd[:2] == ["sde-scales", "sweep"]
    subprocess.run([sys.executable, "-m", "sde_scales.cli"] + cmd[1:] + ["--no-progress"], cwd=tmp_path,
                   check=True, capture_output=True)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    ns: dict = {}
    with contextlib.redirect_stdout(out), np.errstate(all="ignore"):
        exec(compile(code, "README.md (run store)", "exec"), ns)
    assert "VerdictResult(verdict=" in out.getvalue()
    ws = ns["ws"]
    assert len(ws.widths) >= 3 and ws.n_replicas >= 10  # what the README says the store has
    # the README says the verdict here is INCONCLUSIVE: with three widths no tolerance can be measured
    # (the next-order term needs a fourth), so the interval is widened without bound and cannot PASS
    assert "the verdict is INCONCLUSIVE" in sec and "verdict=<Verdict.INCONCLUSIVE" in out.getvalue()


def test_run_store_analyses_refuse_an_empty_store_and_a_missing_metric(tmp_path):
    """A mistyped store path gives an empty runs table (RunStore creates the folders it is given);
    the analyses used to fail on it with a pandas KeyError, or return empty tables."""
    from sde_scales.analysis import eta_star
    from sde_scales.analysis.collapse import curves_from_store
    from sde_scales.analysis.grid import diverged_counts, loss_table, seed_fluctuation
    from sde_scales.analysis.width import optimum_shift_samples, width_samples
    from sde_scales.train.store import RunStore

    st = RunStore(tmp_path / "nowhere")
    runs, traj = st.runs(), st.trajectories()
    for call in (lambda: eta_star(runs, traj), lambda: diverged_counts(runs),
                 lambda: seed_fluctuation(runs, traj, lr=0.1), lambda: width_samples(runs, traj, "eval_loss"),
                 lambda: optimum_shift_samples(runs, traj), lambda: curves_from_store(runs, traj)):
        with pytest.raises(InvalidArgumentError, match="runs table is empty"):
            call()
    runs = pd.DataFrame({"run_id": ["a"], "param": ["mup"], "width": [8], "lr": [0.1], "seed": [0],
                         "status": ["finished"]})
    traj = pd.DataFrame({"run_id": ["a", "a"], "step": [0, 1], "epoch": [0.0, 1.0], "metric": ["train_loss"] * 2,
                         "layer": [-1, -1], "value": [1.0, 0.5]})
    assert len(loss_table(runs, traj)) == 2
    with pytest.raises(InvalidArgumentError, match=r"metric 'eval_los' is not in .*\['train_loss'\]"):
        loss_table(runs, traj, "eval_los")


def test_every_command_the_readme_shows_parses():
    """Each ``sde-scales`` line of the README's bash blocks (continuations joined, comments,
    ``[optional]`` parts and ``...`` left out) is accepted by the command's own parser: a flag the
    README documents exists, with a value of its type."""
    from sde_scales.cli import build_parser

    text = README.read_text()
    lines = []
    for block in _blocks(text, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("sde-scales "):
                lines.append(line)
    assert len(lines) >= 15
    ap = build_parser()
    for line in lines:
        argv = [a for a in shlex.split(re.sub(r"\[[^\]]*\]", "", line))[1:] if a != "..."]
        try:
            ap.parse_args(argv)
        except SystemExit:
            pytest.fail(f"the README shows a command its parser refuses: {line}")
