"""Time to read a printed training log (``load_curve`` on a ``.log``) against the same curve as a CSV
table, both in the same process.

    python benchmarks/bench_text_logs.py [--lines 200000] [--repeats 3]

Two printed forms of one 1,000-step-cosine curve, a line per logged step: Megatron-LM's
(``iteration N/ T | consumed samples: ... | learning rate: ... | lm loss: ... |``, fields split by
``|``) and a nanoGPT-style ``step N: lr ..., loss ..., time ...ms`` line. The ratio to the CSV's
read time is what to compare between versions of the reader (the machine's speed cancels).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from sde_scales.fitting import load_curve


def best_of(fn, repeats: int) -> float:
    """The fastest of ``repeats`` calls, after one untimed call (imports, caches)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=200_000, help="logged steps (lines) per file (default 200,000)")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many reads (default 3)")
    args = ap.parse_args(argv)
    if args.lines < 100 or args.repeats < 1:
        ap.error(f"--lines {args.lines} --repeats {args.repeats}: give at least 100 lines and 1 repeat")
    steps = np.arange(1, args.lines + 1) * 10
    lr = 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + np.cos(np.pi * steps / steps[-1]))
    loss = 3.0 + 2.0 * (1.0 + steps / 1000.0) ** -0.5
    rows = list(zip(steps.tolist(), lr.tolist(), loss.tolist()))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "run.csv").write_text("step,lr,loss\n" + "".join(f"{s},{r!r},{x!r}\n" for s, r, x in rows))
        (tmp / "megatron.log").write_text("".join(
            f" iteration {s:8d}/ {steps[-1]} | consumed samples: {s * 512:10d} | learning rate: {r:.6E} | "
            f"lm loss: {x:.6E} | loss scale: 1.0 |\n" for s, r, x in rows))
        (tmp / "nanogpt.log").write_text("".join(f"step {s}: lr {r:.6e}, loss {x:.4f}, time 123.45ms\n"
                                                 for s, r, x in rows))
        csv = best_of(lambda: load_curve(tmp / "run.csv"), args.repeats)
        print(f"{args.lines:,} logged steps, best of {args.repeats}")
        print(f"  csv table      {csv:8.3f} s   1.0")
        for name in ("megatron.log", "nanogpt.log"):
            t = best_of(lambda: load_curve(tmp / name), args.repeats)
            print(f"  {name:14s} {t:8.3f} s   {t / csv:.1f} x the CSV")


if __name__ == "__main__":
    main()
