"""Speed of the paper's Appendix B grid on one GPU: a short slice, measured, and the full grid projected.

The full grid is 30 learning rates x width 10,000 x CIFAR-10 (50,000 images of 3,072 values), batch
128, 300 epochs (117,300 steps), trained as one 30-member stack by ``train_stack`` with the
experiment's own logging (``experiments/appendix_b.py``: a log per epoch with the test split).
This script trains ``--steps`` steps of that stack (after ``--warmup`` steps that are not timed),
on CIFAR-10 when it is under ``--data-root`` and on synthetic CIFAR-shaped data otherwise, and
prints steps/s, images/s (members x batch per step), peak device memory and the projected time
of the 300-epoch grid (steps of the grid / measured steps per second, plus the measured cost of
one epoch's evaluation times 300).

    python benchmarks/gpu_appendix_b.py                       # CUDA, the paper's sizes, fp32
    python benchmarks/gpu_appendix_b.py --precision tf32      # or bf16; --compile for torch.compile
    python benchmarks/gpu_appendix_b.py --tiny                # a CPU-sized run of the same code (tests)

Goal on one H100-class GPU: the 300-epoch grid in under 15 minutes. Results go to
``benchmarks/RESULTS.md`` with the command line; ``--json PATH`` writes them as strict JSON.
"""

from __future__ import annotations

import argparse
import sys
import time

#: The paper's Appendix B grid.
FULL = dict(members=30, width=10_000, n_train=50_000, batch=128, epochs=300, d_in=3072)
#: The same code at CPU size: a few seconds on 2 cores.
TINY = dict(members=4, width=64, n_train=1024, batch=64, epochs=300, d_in=3072)


def measure(*, members, width, n_train, batch, epochs, d_in, steps, warmup, device, precision, data_root,
            compile=False) -> dict:
    """Train ``warmup`` then ``steps`` steps of one stack; returns the timings and projections."""
    import numpy as np
    import torch

    from sde_scales.train.data import make_dataset
    from sde_scales.train.trainer import RunConfig, train_stack

    cuda = device.startswith("cuda")
    try:  # CIFAR-10 when present, never a download here
        ds = make_dataset("cifar10", device, n_train=n_train, root=data_root, download=False)
        data = "cifar10"
    except Exception:
        ds = make_dataset("synthetic", device, d_in=d_in, n_train=n_train, seed=0)
        data = "synthetic (CIFAR-shaped)"
    lrs = np.round(np.linspace(0.01, 0.30, members), 4)
    steps_per_epoch = n_train / batch

    def stack(n_steps, eval_every):
        ep = n_steps / steps_per_epoch
        return [RunConfig(param="mup", width=width, lr=float(lr), seed=0, dataset="synthetic" if "synthetic" in data
                          else "cifar10", d_in=ds.d_in, n_train=n_train, batch_size=batch, epochs=ep,
                          log_every=max(1, n_steps), eval_every=eval_every, precision=precision, compile=compile)
                for lr in lrs]

    def timed(n_steps, eval_every):
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = train_stack(stack(n_steps, eval_every), ds, device=device)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t, out

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timed(warmup, 0)
    # the per-step cost from two slices (their difference removes the fixed cost of a run: the
    # initial snapshot and the final log); the evaluation cost from one slice with the test split
    t_short, _ = timed(steps, 0)
    t_long, out = timed(2 * steps, 0)
    per_step = max((t_long - t_short) / steps, 1e-12)
    t_eval, _ = timed(steps, 1)
    eval_cost = max(t_eval - t_short, 0.0)  # one evaluation of every member on the test split
    grid_steps = int(round(epochs * steps_per_epoch))
    projected = grid_steps * per_step + epochs * eval_cost
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    finite = all(np.isfinite(o.final.get("train_loss", np.nan)) or o.status == "diverged" for o in out)
    return {"device": torch.cuda.get_device_name() if cuda else "cpu", "data": data, "precision": precision,
            "compile": compile,
            "members": members, "width": width, "n_train": n_train, "batch": batch, "steps_timed": steps,
            "seconds_per_step": per_step, "steps_per_s": 1.0 / per_step,
            "images_per_s": members * batch / per_step, "eval_seconds": eval_cost,
            "peak_memory_gib": peak, "grid_steps": grid_steps, "projected_grid_minutes": projected / 60.0,
            "losses_finite": bool(finite)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="CPU-sized run of the same code (4 members, width 64)")
    ap.add_argument("--device", default=None, help="cuda (default) or cpu (default with --tiny)")
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32",
                    help="GEMM arithmetic (see sde-scales sweep --precision; default fp32)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the passes (see sde-scales sweep --compile)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per slice (default 200; 20 with --tiny)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 20; 5 with --tiny)")
    ap.add_argument("--data-root", default="data", help="where CIFAR-10 may be (never downloaded here; default data)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as strict JSON")
    args = ap.parse_args(argv)
    import torch

    from sde_scales.atomic import write_json_atomic

    sizes = TINY if args.tiny else FULL
    device = args.device or ("cpu" if args.tiny else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_appendix_b: no CUDA device here; run it on a GPU machine, or use --tiny for the CPU mode",
              file=sys.stderr)
        return 2
    steps = args.steps or (20 if args.tiny else 200)
    warmup = args.warmup or (5 if args.tiny else 20)
    if steps < 1 or warmup < 1:
        ap.error(f"--steps {steps}, --warmup {warmup}: give at least 1 of each")
    res = measure(**sizes, steps=steps, warmup=warmup, device=device, precision=args.precision,
                  data_root=args.data_root, compile=args.compile)
    mem = "-" if res["peak_memory_gib"] is None else f"{res['peak_memory_gib']:.1f} GiB"
    print(f"Appendix B stack on {res['device']} ({res['data']}, {res['precision']}): {res['members']} members x width "
          f"{res['width']}, batch {res['batch']}, {res['n_train']} images")
    print(f"  {res['steps_per_s']:.1f} steps/s, {res['images_per_s']:.0f} images/s (members x batch), peak memory {mem}, "
          f"evaluation {res['eval_seconds']:.2f} s per epoch")
    print(f"  projected 300-epoch grid ({res['grid_steps']} steps): {res['projected_grid_minutes']:.1f} min"
          f"{'' if res['losses_finite'] else '  (WARNING: a loss was not finite)'}")
    if args.json:
        write_json_atomic(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
