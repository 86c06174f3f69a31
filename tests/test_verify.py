"""The claims registry and `sde-scales verify`: JSON schema, selection, planted claims."""

import json
import subprocess
import sys


from sde_scales.rates import RateKind, Verdict
from theory import checks
from theory.claims import Claim
from theory.paper import CLAIMS
from theory.verify import judge, run_claims

REQUIRED = {"id", "statement", "predicted_exponent", "measured_exponent", "ci", "verdict", "reason",
            "symbolic_exponent", "symbolic_agrees_with_measurement"}


def test_claims_are_complete_records():
    ids = [c.id for c in CLAIMS]
    assert len(ids) == len(set(ids))
    for c in CLAIMS:
        assert c.limit_point in ("oo", "0") and c.variable and c.source
        assert c.measure is not None or c.derive is not None  # every claim has a check
        assert c.predicted.endswith(f"{c.variable} -> {c.limit_point}")
    readings = {(c.id.rsplit("-", 1)[0], c.reading) for c in CLAIMS if c.id.startswith("thm4.1-m")}
    assert {r for _, r in readings} == {"fluctuation", "bias"}


def test_planted_false_claim_on_the_width_model_fails():
    """Claim Theta(1/n) for the single-weight spread, which is Theta(1/sqrt n): FAIL."""
    settings = checks.Settings(quick=True, seed=0)
    planted = Claim(id="planted", source="test", statement="", quantity="std theta_1", variable="n",
                    limit_point="oo", exponent=-1.0, kind=RateKind.THETA, reading="fluctuation",
                    checks=("simulation",), measure=checks.micro_fluctuation)
    true = Claim(id="true", source="test", statement="", quantity="std theta_1", variable="n",
                 limit_point="oo", exponent=-0.5, kind=RateKind.THETA, reading="fluctuation",
                 checks=("simulation",), measure=checks.micro_fluctuation)
    res = {r.claim.id: r for r in run_claims([planted, true], settings, progress=False)}
    assert res["planted"].verdict is Verdict.FAIL
    assert res["true"].verdict is Verdict.PASS


def test_verify_cli_json_schema(tmp_path):
    out = tmp_path / "v.json"
    plots = tmp_path / "plots"
    cmd = [sys.executable, "-m", "sde_scales.cli", "verify", "--quick", "--no-progress", "--claims",
           "thm3.1-early-optimum", "thm4.1-macro-fluct", "--json", str(out), "--plots", str(plots)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "thm3.1-early-optimum" in res.stdout and "verdict" in res.stdout
    doc = json.loads(out.read_text())
    assert isinstance(doc["seconds"], float) and doc["quick"] is True
    assert [c["id"] for c in doc["claims"]] == ["thm3.1-early-optimum", "thm4.1-macro-fluct"]
    for c in doc["claims"]:
        assert REQUIRED <= set(c)
        assert c["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE")
        assert len(c["ci"]) == 2 and c["ci"][0] <= c["ci"][1]
    assert sorted(p.name for p in plots.iterdir()) == ["thm3.1-early-optimum.png", "thm4.1-macro-fluct.png"]


def test_verify_unknown_claim_is_a_clear_error():
    res = subprocess.run([sys.executable, "-m", "sde_scales.cli", "verify", "--claims", "nope"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "unknown claim id" in res.stderr and "--list" in res.stderr


def test_extra_condition_overrides_pass():
    m = checks.delay_lag(checks.Settings(quick=True))
    broken = checks.Measurement(m.estimate, m.model, extra_fail="lag at zero memory is 0.3")
    claim = next(c for c in CLAIMS if c.id == "thm5.1-delay")
    assert judge(claim, m)[0] is Verdict.PASS
    assert judge(claim, broken)[0] is Verdict.FAIL
