"""``sde-scales rate``: verdicts on planted rates from tables in the layout users keep them in."""

import json

import numpy as np
import pandas as pd
import pytest

from sde_scales.errors import InvalidArgumentError
from sde_scales.rate_table import RateClaim, check_rate
from sde_scales.rates import RateKind
from sde_scales.verdicts import Verdict

WIDTHS = (64, 128, 256, 512, 1024, 2048, 4096)
R = 1600  # replicas per width: in 10 seeds of these data a true claim PASSed 39 times in 40 (once INCONCLUSIVE; 400 replicas: 7-10 of 10), a false one FAILed in all


def planted(seed=0):
    """Per replica at width n: ``x`` with sd 2 n^-1/2 (fluctuation -1/2); ``y`` with sd 1 (0);
    ``m`` with mean 1 + 3/n and sd 0.0005 (bias -1 from the limit 1; at n = 4096 the bias, 7.3e-4,
    is 29 standard errors of the mean); ``a``, |N(0, 1/n)|, whose mean is sqrt(2 / (pi n)) (mean
    -1/2)."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in WIDTHS:
        rows.append(pd.DataFrame({"width": n, "x": 2 * n ** -0.5 * rng.standard_normal(R),
                                  "y": rng.standard_normal(R), "m": 1 + 3 / n + 0.0005 * rng.standard_normal(R),
                                  "a": np.abs(rng.standard_normal(R)) / np.sqrt(n)}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def table():
    return planted()


@pytest.mark.parametrize("claim, kw, expected", [
    ("Theta:-1/2", {"value": "x"}, Verdict.PASS),
    ("Theta:-1", {"value": "x"}, Verdict.FAIL),
    ("Theta:0", {"value": "x"}, Verdict.FAIL),
    ("O:-1", {"value": "x"}, Verdict.FAIL),
    ("O:0", {"value": "x"}, Verdict.PASS),  # n^-1/2 is O(1)
    ("Theta:-1", {"value": "m", "reading": "bias", "reference": 1.0}, Verdict.PASS),
    ("Theta:-1/2", {"value": "m", "reading": "bias", "reference": 1.0}, Verdict.FAIL),
    # no limit given: the differences of successive means, 1.5/n (7.3e-4 at 2048, 53 standard errors)
    ("O:-1/2", {"value": "m", "reading": "bias", "reference": "differences"}, Verdict.PASS),
    ("Theta:-1/2", {"value": "m", "reading": "bias", "reference": "differences"}, Verdict.FAIL),
    ("Theta:-1/2", {"value": "a", "reading": "mean"}, Verdict.PASS),
    ("Theta:-1", {"value": "a", "reading": "mean"}, Verdict.FAIL),
    ("separation:0", {"value": "x", "minus": "y"}, Verdict.FAIL),
    ("separation:-1", {"value": "x", "minus": "y"}, Verdict.FAIL),
    ("separation:1/2", {"value": "x", "minus": "y"}, Verdict.FAIL),  # p_y - p_x: the columns the wrong way round
])
def test_planted_rates_get_their_verdicts(table, claim, kw, expected):
    got = check_rate(table, claim, **kw)
    assert got.verdict.verdict is expected, got.verdict.reason


def test_a_bias_without_its_limit_passes_its_true_rate_on_most_tables():
    """The differences reading of ``m`` (no limit given) over four seeds of the planted table: the
    true claim Theta(n^-1) is never FAILed and PASSes on at least three. Each difference is a
    difference of two means, so its noise is sqrt(2) that of the bias from the known limit, and a
    curvature test at 95% reads a chance curvature in about one table in twenty; over ten seeds it
    PASSed in nine (seed 0: a chance curvature, INCONCLUSIVE)."""
    got = [check_rate(planted(s), "Theta:-1", value="m", reading="bias", reference="differences",
                      n_resamples=1000).verdict.verdict for s in range(4)]
    assert Verdict.FAIL not in got and got.count(Verdict.PASS) >= 3


def test_a_true_separation_passes(table):
    """sd(x)/sd(y) falls like n^-1/2: PASS at this seed (8 of 10 seeds measured, the others
    INCONCLUSIVE: the ratio of two spreads is noisier than one)."""
    got = check_rate(table, "separation:-1/2", value="x", minus="y")
    assert got.verdict.verdict is Verdict.PASS, got.verdict.reason


def test_the_exponent_and_its_interval_cover_the_planted_one(table):
    got = check_rate(table, "Theta:-1/2", value="x")
    lo, hi = got.estimate.ci
    assert lo < -0.5 < hi and hi - lo < 0.05  # 1,600 replicas: an interval about 0.02 wide
    assert got.replicas == {float(n): R for n in WIDTHS}


def test_exact_values_one_per_width():
    n = np.array([32, 64, 128, 256, 512, 1024], float)
    df = pd.DataFrame({"n": n, "gap": 5 / n * (1 + 1e-9 * np.sin(n))})
    assert check_rate(df, "Theta:-1", reading="values", width="n", value="gap").verdict.verdict is Verdict.PASS
    assert check_rate(df, "O:-2", reading="values", width="n", value="gap").verdict.verdict is Verdict.FAIL


def test_claims_parse_fractions_and_refuse_nonsense():
    c = RateClaim.parse("theta:-1/2")
    assert c.kind is RateKind.THETA and c.exponent == -0.5 and c.statement == "Theta(n^-1/2)"
    assert RateClaim.parse("O: -1").exponent == -1.0
    for bad, said in (("-1/2", "KIND:EXPONENT"), ("Omega:-1", "kind 'Omega'"), ("Theta:half", "'half' is not a number"),
                      ("Theta:1/0", "is not a number")):
        with pytest.raises(InvalidArgumentError, match=said):
            RateClaim.parse(bad)


def _cli(*args):
    from sde_scales.cli import main

    return main(["rate", *map(str, args)])


def test_rate_command_prints_writes_strict_json_and_gates(tmp_path, table, capsys):
    f = tmp_path / "runs.csv"
    table.to_csv(f, index=False)
    out = tmp_path / "v.json"
    assert _cli(f, "--claim", "Theta:-1/2", "--value", "x", "--json", out, "--plot", tmp_path / "r.png",
                "--strict") == 0
    text = capsys.readouterr().out
    assert "claim Theta(n^-1/2): PASS" in text and "95% interval" in text
    doc = json.loads(out.read_text())
    assert doc["verdict"] == "PASS" and doc["claim"]["exponent"] == -0.5 and len(doc["estimate"]["x"]) == 7
    assert doc["estimate"]["ci"][0] < -0.5 < doc["estimate"]["ci"][1]
    assert (tmp_path / "r.png").stat().st_size > 0
    assert _cli(f, "--claim", "Theta:-1", "--value", "x", "--strict") == 1  # FAIL gates
    assert _cli(f, "--claim", "Theta:-1", "--value", "x") == 0
    # INCONCLUSIVE gates too ("exit 1 unless the verdict is PASS"): the true claim on 8 replicas per
    # width, too few for the bootstrap to be trusted
    few = tmp_path / "few.csv"
    table.groupby("width").head(8).to_csv(few, index=False)
    assert _cli(few, "--claim", "Theta:-1/2", "--value", "x", "--json", out, "--strict") == 1
    assert json.loads(out.read_text())["verdict"] == "INCONCLUSIVE"
    assert _cli(few, "--claim", "Theta:-1/2", "--value", "x") == 0
    # values are the estimate's, not NaN: the values reading has no standard errors, written as null
    p = tmp_path / "vals.csv"
    pd.DataFrame({"width": [32, 64, 128, 256, 512], "value": [1.0, 0.5, 0.25, 0.125, 0.0625]}).to_csv(p, index=False)
    assert _cli(p, "--claim", "Theta:-1", "--reading", "values", "--json", out) == 0
    assert "NaN" not in out.read_text() and json.loads(out.read_text())["estimate"]["errors"] == [0.0] * 5
    # a bias with no limit given: the table and the plot name the differences, the JSON the reference
    assert _cli(f, "--claim", "Theta:-1/2", "--value", "m", "--reading", "bias", "--reference", "differences",
                "--json", out, "--plot", tmp_path / "d.png") == 0
    text = capsys.readouterr().out
    assert "|replica mean at n - at the next width| of 'm'" in text and "claim Theta(n^-1/2): FAIL" in text
    doc = json.loads(out.read_text())
    assert doc["reference"] == "differences" and doc["estimate"]["x"] == list(map(float, WIDTHS[:-1]))


@pytest.mark.parametrize("edit, extra, said", [
    (lambda d: d.assign(x=d["x"].where(d.index != 9, np.nan)), [], "row 9: value nan is not finite"),
    (lambda d: d.assign(x=d["x"].astype(object).where(d.index != 5, "oops")), [], "row 5: 'oops' is not a number"),
    (lambda d: d[d["width"] <= 128], [], "2 distinct width(s)"),
    (lambda d: d.groupby("width").head(2), [], "has 2 row(s)"),
    (lambda d: d.assign(width=d["width"].where(d.index != 0, -64)), [], "width -64 is not positive"),
    (lambda d: d, ["--value", "loss"], "no column 'loss'"),
    (lambda d: d, ["--claim", "separation:-1/2", "--minus", "z"], "no column 'z' for the value; the table has "
     "columns ['width', 'x', 'y', 'm', 'a'] (name it with --minus)"),
    (lambda d: d, ["--claim", "separation:-1/2"], "--minus COLUMN"),
    (lambda d: d, ["--minus", "y"], "is for a separation claim"),
    (lambda d: d, ["--reading", "bias"], "needs --reference"),
    (lambda d: d, ["--reference", "1.0"], "--reference is for the bias reading"),
    (lambda d: d, ["--reading", "bias", "--reference", "zero"], "--reference 'zero'"),
    (lambda d: d[d["width"] != 256], ["--reading", "bias", "--reference", "differences"],
     "the ratios of successive widths here are 2, 4, 2"),
    (lambda d: d, ["--reading", "values"], "one exact value per width"),
    (lambda d: d.assign(x=-d["a"]), ["--reading", "mean"], "needs a positive quantity"),
    (lambda d: d.assign(x=d["x"].where(d.index != 3, 1e300)), [], "row 3: value 1e+300 is outside the magnitudes"),
    (lambda d: d.assign(x=d["x"] * 1e-200), [], "row 0: value"),
    (lambda d: d.assign(x=0.0), ["--reading", "bias", "--reference", "0"], "equals the reference exactly"),
    # exact values have no bootstrap: --seed and --resamples were ignored
    (lambda d: d.groupby("width").head(1).assign(x=lambda e: e["width"] ** -0.5), ["--reading", "values", "--seed", "3"],
     "--seed sets the bootstrap, and the values reading has none"),
    (lambda d: d.assign(y=1.0), ["--claim", "separation:-1/2", "--minus", "y"],
     "runs.csv: width 64 has zero spread over its replicas"),
    (lambda d: d, ["--confidence", "1.5"], "confidence"),
    # one column in two roles: "zero spread" or "1 replica(s) of column 'width'", which named no cause
    (lambda d: d, ["--replica", "width"], "--width and --replica both name column 'width'"),
    (lambda d: d, ["--claim", "separation:-1/2", "--minus", "x"], "--value and --minus both name column 'x'"),
])
def test_bad_tables_and_options_are_refused_by_name_and_write_nothing(tmp_path, table, capsys, edit, extra, said):
    f = tmp_path / "runs.csv"
    edit(table.copy()).to_csv(f, index=False)
    out = tmp_path / "v.json"
    args = ["--claim", "Theta:-1/2", "--value", "x", *extra]
    if "--claim" in extra:
        args = args[2:]
    assert _cli(f, *args, "--json", out) == 2
    assert said in capsys.readouterr().err
    assert not out.exists()


def test_a_corrupt_or_missing_file_is_refused(tmp_path, capsys):
    bad = tmp_path / "runs.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    assert _cli(bad, "--claim", "Theta:-1/2") == 2
    assert "cannot be read as a table" in capsys.readouterr().err
    assert _cli(tmp_path / "absent.csv", "--claim", "Theta:-1/2") == 2
    assert "no such file" in capsys.readouterr().err


def components_table(R=400, J=4, seed=0):
    """Per replica (column ``seed``) at width n, J rows that share the replica's draw
    z ~ N(0, 4/n) plus their own 0.05 n^-1/2 N(0, 1): rows of one run, strongly correlated."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in WIDTHS:
        z = 2 * n ** -0.5 * rng.standard_normal(R)
        for j in range(J):
            rows.append(pd.DataFrame({"width": n, "seed": np.arange(R), "component": j,
                                      "w": z + 0.05 * n ** -0.5 * rng.standard_normal(R),
                                      "a": np.abs(z) + 0.05 * n ** -0.5 * rng.standard_normal(R) ** 2}))
    return pd.concat(rows, ignore_index=True)


def test_rows_of_one_run_are_components_of_one_replica_not_more_replicas():
    """Four rows per run that move together: read by run (the seed column, found by name) there are
    400 replicas and the interval is that of 400 runs; read as 1,600 independent rows it comes out
    about half as wide (sqrt(4)), which overstates what the runs show."""
    df = components_table()
    by_run = check_rate(df, "Theta:-1/2", value="w")
    by_row = check_rate(df, "Theta:-1/2", value="w", replica=None)
    assert by_run.replica_column == "seed" and set(by_run.components.values()) == {4}
    assert set(by_run.replicas.values()) == {400} and set(by_row.replicas.values()) == {1600}
    assert by_run.estimate.exponent == pytest.approx(-0.5, abs=0.05)
    assert by_run.estimate.ci_width > 1.5 * by_row.estimate.ci_width
    # the mean reading pools the components as well: E|z| = 2 sqrt(2 / (pi n)), exponent -1/2
    mean = check_rate(df, "Theta:-1/2", value="a", reading="mean")
    assert mean.estimate.exponent == pytest.approx(-0.5, abs=0.05) and set(mean.replicas.values()) == {400}
    # its value at each width is the mean over every row (every run has all four), not one component's
    np.testing.assert_allclose(mean.estimate.values, df.groupby("width")["a"].mean().sort_index().to_numpy(),
                               rtol=1e-12)


def test_replicas_with_different_numbers_of_rows_are_refused(tmp_path, capsys):
    df = components_table(R=20)
    df = df.drop(index=df[(df.width == 256) & (df.seed == 3)].index[:1])
    with pytest.raises(InvalidArgumentError, match=r"at width 256 the replicas of column 'seed' hold different "
                                                   r"numbers of rows \(seed 3: 3 row\(s\), seed \d+: 4 row"):
        check_rate(df, "Theta:-1/2", value="w")
    f = tmp_path / "runs.csv"
    components_table(R=20).to_csv(f, index=False)
    assert _cli(f, "--claim", "Theta:-1/2", "--value", "w", "--replica", "run_id") == 2
    assert "no column 'run_id' for the replica" in capsys.readouterr().err
    assert _cli(f, "--claim", "Theta:-1/2", "--value", "w", "--json", str(tmp_path / "r.json")) == 0
    assert "replicas: the runs of column 'seed', 4 rows (components) each, pooled" in capsys.readouterr().out
    doc = json.loads((tmp_path / "r.json").read_text())  # widths as a program looks them up: "64", not "64.0"
    assert doc["replicas"] == {str(n): 20 for n in WIDTHS} and doc["components"] == {str(n): 4 for n in WIDTHS}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A run store of sde-scales sweep: muP MLPs at widths 32..256, 12 seeds each, a few steps."""
    pytest.importorskip("torch")
    from sde_scales.cli import main

    root = tmp_path_factory.mktemp("rate_store") / "store"
    assert main(["sweep", "--param", "mup", "--widths", "32,64,128,256", "--lrs", "0.1", "--seeds",
                 ",".join(map(str, range(12))), "--epochs", "0.25", "--n-train", "1024", "--d-in", "64", "--out",
                 str(root), "--no-progress"]) == 0
    return root


def _independent_table(root, metric, layer):
    """The store's table read without the toolkit's width module: per run, the metric's raw value
    at its last logged step (``layer`` -1: a macro-variable; else the tracked weights of that layer,
    less their value at step 0), one row per run (and tracked weight)."""
    runs = pd.concat([pd.read_parquet(p) for p in sorted((root / "runs").glob("*.parquet"))])
    traj = pd.concat([pd.read_parquet(p) for p in sorted((root / "trajectories").glob("*.parquet"))])
    rows = []
    for rid, width, seed in runs[["run_id", "width", "seed"]].itertuples(index=False):
        t = traj[(traj.run_id == rid) & (traj.metric == (metric if layer == -1 else "w"))]
        t = t[t.layer == -1] if layer == -1 else t[t.layer // 1000 == layer]
        last = t[t.step == t.step.max()].set_index("layer")["value"]
        if layer != -1:
            last = last - t[t.step == 0].set_index("layer")["value"]
        rows += [{"width": width, "seed": seed, "v": v} for v in last.to_numpy()]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("variable, metric, layer", [("eval_loss", "eval_loss", -1), ("w1_disp_raw", "w", 1)])
def test_a_run_store_gives_the_verdict_of_its_table_read_independently(tmp_path, store, capsys, variable, metric,
                                                                        layer):
    """``rate --store`` reads the same replicas as a table built from the store's Parquet files by
    hand (each run a replica, its tracked weights pooled), so the estimate and the verdict are the
    table's to the last digit."""
    f = tmp_path / "hand.csv"
    _independent_table(store, metric, layer).to_csv(f, index=False)
    a, b = tmp_path / "store.json", tmp_path / "table.json"
    assert _cli("--store", store, "--variable", variable, "--claim", "Theta:-1/2", "--json", a) == 0
    said = capsys.readouterr().out
    assert f"run store {store}" in said and "0 diverged run(s) left out" in said
    assert _cli(f, "--value", "v", "--replica", "seed", "--claim", "Theta:-1/2", "--json", b) == 0
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    assert da["estimate"] == db["estimate"] and da["verdict"] == db["verdict"]
    assert da["store"]["variable"] == variable and da["store"]["param"] == "mup" and da["file"] is None
    assert len(da["estimate"]["x"]) == 4


@pytest.mark.parametrize("args, said", [
    (["{table}", "--variable", "eval_loss"], "needs --store DIR"),
    (["--store", "{store}"], "--store needs --variable"),
    (["{table}", "--store", "{store}", "--variable", "eval_loss"], "not both"),
    (["--store", "{store}", "--variable", "loss"], "variable 'loss'"),
    (["--store", "{store}", "--variable", "eval_loss", "--param", "sp"], "no runs with param='sp'"),
    (["--store", "{store}", "--variable", "eval_loss", "--lr", "0.2"], "no mup runs at lr=0.2"),
    (["--store", "{store}", "--variable", "eval_loss", "--fraction", "1.5"], "fraction=1.5; give a fraction"),
    (["--store", "{store}", "--variable", "w7_disp"], "the runs have layers 0..1"),
    (["--store", "{store}", "--variable", "eval_loss", "--minus", "x"], "a store gives one variable"),
    (["--store", "{missing}", "--variable", "eval_loss"], "no run store there"),
    (["--store", "{store}", "--variable", "eval_loss", "--value", "loss"], "--value loss names a column of a table"),
    ([], "give a TABLE"),
])
def test_store_options_are_refused_by_name(tmp_path, store, capsys, args, said):
    table = tmp_path / "t.csv"
    pd.DataFrame({"width": [1, 2], "value": [1.0, 2.0]}).to_csv(table, index=False)
    missing = tmp_path / "no_store"
    filled = [a.format(store=store, table=table, missing=missing) for a in args]
    assert _cli(*filled, "--claim", "Theta:-1/2", "--json", tmp_path / "v.json") == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "v.json").exists() and not missing.exists()  # a mistyped store is not created


@pytest.mark.parametrize("kw", [{"value": "x"}, {"value": "x", "minus": "y", "claim": "separation:-1/2"},
                                {"value": "w", "replica": "seed"}])
def test_the_same_rows_in_another_order_give_the_same_interval(kw):
    """The bootstrap draws rows by position: the table's row order (a user's sort, a join, a
    parallel writer) changed the interval. Same rows, same numbers."""
    kw = dict(kw)
    claim = kw.pop("claim", "Theta:-1/2")
    t = components_table(R=40) if kw["value"] == "w" else planted().groupby("width").head(200)
    if "replica" in kw:  # a run's rows in their order (which says which component is which), runs interleaved
        key = t[kw["replica"]].map(dict(zip(range(40), np.random.default_rng(3).permutation(40))))
        shuffled = t.assign(key=key).sort_values(["key"], kind="stable").drop(columns="key").reset_index(drop=True)
        assert not shuffled[kw["value"]].equals(t[kw["value"]])
    else:
        shuffled = t.sample(frac=1.0, random_state=3).reset_index(drop=True)
    a = check_rate(t, claim, n_resamples=400, **kw)
    b = check_rate(shuffled, claim, n_resamples=400, **kw)
    assert json.dumps(a.estimate.to_dict()) == json.dumps(b.estimate.to_dict())  # NaN errors of a separation too


def test_components_are_compared_across_replicas_as_the_table_orders_them():
    """The spread of a run's components is pooled over components, each compared across the runs:
    component j of every run (the table's j-th row of each run, here also its ``component``
    column). Computed independently per width: the root mean over components of their variance
    over runs. (Sorted by value within each run, the components would be order statistics, whose
    spread is not the variable's.)"""
    t = components_table(R=40)
    check = check_rate(t, "Theta:-1/2", value="w", replica="seed", n_resamples=200)
    want = [np.sqrt(g.groupby("component")["w"].var(ddof=1).mean()) for _, g in t.groupby("width")]
    np.testing.assert_allclose(check.estimate.values, want, rtol=1e-12)


def test_renamed_runs_give_the_same_interval():
    """Runs were put in order by their labels, so renaming them (seed k called 39 - k, or a name)
    changed which run a bootstrap draw took, and the interval. Ordered by their values, the same
    runs give the same numbers under any names."""
    t = components_table(R=40)
    renamed = t.assign(seed=t.seed.map(lambda k: f"run-{39 - k}"))
    a = check_rate(t, "Theta:-1/2", value="w", replica="seed", n_resamples=400)
    b = check_rate(renamed, "Theta:-1/2", value="w", replica="seed", n_resamples=400)
    assert json.dumps(a.estimate.to_dict()) == json.dumps(b.estimate.to_dict())
