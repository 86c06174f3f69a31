"""Trainer speed, as ratios measured in one process (interleaved, after a warm-up).

1. Overhead: steps per second of ``train_stack`` (K = 1) against a minimal hand-written torch loop
   (autograd, SGD) of the same muP MLP (3072 -> 256 -> 10, batch 128): the steady per-step time
   (from runs of ``steps`` and ``3 steps`` steps) and, apart, the fixed cost of a run.
2. Stacking: K = 30 learning rates trained as one stack against 30 sequential K = 1 runs, at
   widths 64, 256 and 1,024 (batch 128, input 3072).

    python benchmarks/bench_trainer.py [--steps 200] [--repeats 7] [--stack-repeats 3] [--widths 64,256,1024] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sde_scales.train import RunConfig, make_dataset, train_stack


def minimal_loop(ds, width, steps, lr=0.1, batch=128, seed=0, device="cpu"):
    n = width
    g = torch.Generator().manual_seed(seed)
    W1 = (torch.randn(n, ds.d_in, generator=g) * n**-0.5 / ds.d_in**0.5).to(device).requires_grad_(True)
    W2 = (torch.randn(10, n, generator=g) * n**-0.5).to(device).requires_grad_(True)
    gen = torch.Generator().manual_seed(1)
    perm = torch.randperm(ds.n_train, generator=gen)
    pos = 0
    for _ in range(steps):
        if pos + batch > ds.n_train:
            perm, pos = torch.randperm(ds.n_train, generator=gen), 0
        idx = perm[pos:pos + batch].to(ds.x_train.device)
        pos += batch
        h = ds.x_train[idx] @ W1.T * n**0.5
        out = torch.relu(h) @ W2.T * n**-0.5
        loss = torch.nn.functional.cross_entropy(out, ds.y_train[idx])
        W1.grad = W2.grad = None
        loss.backward()
        with torch.no_grad():
            W1 -= lr * W1.grad
            W2 -= lr * W2.grad
    return float(loss.detach())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=7, help="interleaved rounds of the overhead table (default 7)")
    ap.add_argument("--stack-repeats", type=int, default=3, help="interleaved rounds per width of the stacking table (default 3)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--widths", default="64,256,1024")
    ap.add_argument("--overhead-only", action="store_true", help="skip the stacking table")
    args = ap.parse_args(argv)
    if args.repeats < 3 or args.stack_repeats < 1:
        ap.error(f"--repeats {args.repeats}: the per-step time is the difference of two timings, and with fewer "
                 f"than 3 rounds its noise can make it negative (a negative throughput); give --repeats >= 3")
    dev = args.device
    ds = make_dataset("synthetic", dev, n_train=8192, d_in=3072)
    bs = 128
    print(f"device {dev}, torch threads {torch.get_num_threads()}, {args.steps} steps, batch {bs}, input 3072")

    def cfg(steps, log_every, width=256, lr=0.1):
        return RunConfig(width=width, lr=lr, seed=0, epochs=steps * bs / ds.n_train, batch_size=bs,
                         n_train=ds.n_train, log_every=log_every)

    def iqr(r, digits=3):
        return f"{np.median(r):.{digits}f} ({np.percentile(r, 25):.{digits}f}-{np.percentile(r, 75):.{digits}f})"

    # Overhead. Each contender runs 1, `steps` and 3 x `steps` steps in every round; the difference
    # of the last two gives the steady per-step time (what steps per second means for a long run),
    # the one-step run the fixed cost of a run (model set-up, and for train_stack the probe batches
    # and the test-set evaluation at the last step, which the minimal loop does not do).
    w = 256
    s1, s2 = args.steps, 3 * args.steps
    fns = {"minimal loop": lambda s: minimal_loop(ds, w, s, device=dev),
           "train_stack, logging every 50 steps": lambda s: train_stack([cfg(s, 50)], ds, device=dev),
           "train_stack, logging at the end only": lambda s: train_stack([cfg(s, 10**9)], ds, device=dev)}
    for f in fns.values():
        f(s1)
    T = {(k, s): [] for k in fns for s in (1, s1, s2)}
    for _ in range(args.repeats):  # interleaved
        for k, f in fns.items():
            for s in (1, s1, s2):
                t = time.perf_counter()
                f(s)
                T[k, s].append(time.perf_counter() - t)
    per_step = {k: (np.asarray(T[k, s2]) - np.asarray(T[k, s1])) / (s2 - s1) for k in fns}
    base = "minimal loop"
    print(f"\nwidth {w}; per-step time from runs of {s1} and {s2} steps; ratios paired within a round, "
          f"median (IQR) over {args.repeats} rounds\n")
    print(f"| contender | steps/s (steady) | per-step time / minimal loop | one-step run, ms | whole {s2}-step run / minimal loop |")
    print("|---|---|---|---|---|")
    for k in fns:
        r = per_step[k] / per_step[base]
        whole = np.asarray(T[k, s2]) / np.asarray(T[base, s2])
        med = float(np.median(per_step[k]))
        rate = f"{1 / med:.1f}" if med > 0 else "not resolved (noise exceeds the difference; more --steps)"
        print(f"| {k} | {rate} | {iqr(r)} | {1e3 * np.median(T[k, 1]):.0f} | {iqr(whole)} |")
    if args.overhead_only:
        return
    print("\n| width | 30 sequential runs s (median) | one K=30 stack s (median) | speed-up, paired: median (IQR) |")
    print("|---|---|---|---|")
    lrs = np.geomspace(0.01, 0.3, 30)
    for width in (int(v) for v in args.widths.split(",")):
        cfgs = [cfg(args.steps, 50, width=width, lr=float(lr)) for lr in lrs]
        seq = lambda: [train_stack([c], ds, device=dev) for c in cfgs]  # noqa: E731
        stack = lambda: train_stack(cfgs, ds, device=dev)  # noqa: E731
        stack()  # warm-up
        ts, tk = [], []
        for _ in range(max(1, args.stack_repeats)):  # interleaved
            t = time.perf_counter()
            seq()
            ts.append(time.perf_counter() - t)
            t = time.perf_counter()
            stack()
            tk.append(time.perf_counter() - t)
        r = np.asarray(ts) / np.asarray(tk)
        print(f"| {width} | {np.median(ts):.2f} | {np.median(tk):.2f} | {iqr(r, 2)} |")


if __name__ == "__main__":
    main()
