"""Every script of experiments/ and benchmarks/ answers --help: it imports, builds its parser and
exits 0 without running anything. Most scripts are run only by hand (minutes to hours), so an import
that a refactor broke, or a parser that argparse rejects (a '%' in a help text), would otherwise
first show when a user runs them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# one process for all scripts (each in a fresh namespace, as `python script.py --help` runs it): a
# process per script would cost a second or more each for the imports alone
_RUNNER = """
import runpy, sys
failed = []
for path in sys.argv[1:]:
    sys.argv = [path, "--help"]
    try:
        runpy.run_path(path, run_name="__main__")
        failed.append(f"{path}: ran without exiting (no argument parser?)")
    except SystemExit as e:
        if e.code not in (0, None):
            failed.append(f"{path}: exit {e.code}")
    except BaseException as e:
        failed.append(f"{path}: {type(e).__name__}: {e}")
print("\\n".join(failed) or "ALL OK")
"""


def test_every_script_answers_help():
    scripts = sorted(str(p) for d in ("experiments", "benchmarks") for p in (ROOT / d).glob("*.py"))
    assert len(scripts) >= 30  # the glob found the folders
    r = subprocess.run([sys.executable, "-c", _RUNNER, *scripts], capture_output=True, text=True, timeout=300,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "ALL OK", r.stdout[-4000:]


def test_every_mutant_of_benchmarks_mutants_applies_to_one_place():
    """benchmarks/mutants.py plants each bug by replacing one text; a refactor that moves or
    rewrites that text would leave the mutant unapplied (an error) or applied twice (another bug
    than the one named). Each text must occur exactly once, and its tests must exist."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import mutants
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert len(mutants.MUTANTS) >= 30 and len({m.key for m in mutants.MUTANTS}) == len(mutants.MUTANTS)
    for m in mutants.MUTANTS:
        mutants.check_applies(m)
        assert m.old != m.new, m.key
