"""Cost of the training evidence of `sde-scales verify`, and of `verify` itself.

1. Seconds per trained member: the built-in training experiment's stacks (32 seeds of one width,
   each with its own minibatch order, trained as one stacked model) against the same 32 seeds
   trained as 32 separate single-member models, interleaved in rounds after a warm-up; the ratio
   is taken within each round (median and interquartile range over rounds).
2. Wall time of ``sde-scales verify --symbolic-only``, ``--quick`` and (with ``--full``) the full run,
   each in a fresh process (what a user waits for, compile and start-up included).

    python benchmarks/bench_verify.py [--widths 256,1024] [--rounds 3] [--steps 100] [--full]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np


def stack_vs_separate(width: int, seeds: int, steps: int, rounds: int):
    from sde_scales.train import make_dataset, train_stack
    from theory.checks import TRAINING_QUICK, training_configs

    spec = dict(TRAINING_QUICK, widths=(width,), seeds=seeds, steps=steps, params=("mup",))
    configs = training_configs(spec)
    ds = make_dataset("synthetic", n_train=spec["n_train"], d_in=spec["d_in"])
    train_stack(configs[:2], ds)  # warm-up
    stacked, separate, ratio = [], [], []
    for _ in range(rounds):
        t = time.perf_counter()
        train_stack(configs, ds)
        a = (time.perf_counter() - t) / len(configs)
        t = time.perf_counter()
        for c in configs:
            train_stack([c], ds)
        b = (time.perf_counter() - t) / len(configs)
        stacked.append(a)
        separate.append(b)
        ratio.append(b / a)
    return np.array(stacked), np.array(separate), np.array(ratio)


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="256,1024", help="widths of the stacking table (default 256,1024)")
    ap.add_argument("--seeds", type=int, default=32, help="members per stack (default 32, as verify --quick)")
    ap.add_argument("--steps", type=int, default=100, help="training steps per run (default 100)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--full", action="store_true", help="also time the full verify run (about 10 minutes)")
    ap.add_argument("--skip-verify", action="store_true", help="only the stacking table")
    args = ap.parse_args(argv)
    import torch

    print(f"torch threads {torch.get_num_threads()}; {args.seeds} seeds x {args.steps} steps per width\n")
    print("| width | stacked s/member | separate s/member | separate / stacked (median, IQR) |")
    print("|---|---|---|---|")
    for w in (int(v) for v in args.widths.split(",")):
        a, b, r = stack_vs_separate(w, args.seeds, args.steps, args.rounds)
        q1, q3 = np.percentile(r, [25, 75])
        print(f"| {w} | {np.median(a):.4f} | {np.median(b):.4f} | {np.median(r):.2f} ({q1:.2f}-{q3:.2f}) |")
    if args.skip_verify:
        return 0
    base = [sys.executable, "-m", "sde_scales.cli", "verify", "--no-progress"]
    runs = [("--symbolic-only", base + ["--symbolic-only"]), ("--quick", base + ["--quick"])]
    if args.full:
        runs.append(("full", base))
    print("\n| verify run | wall s |\n|---|---|")
    for name, cmd in runs:
        print(f"| {name} | {wall(cmd):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
