"""Fit time of every law on a 2,000-point curve pair (124m const + cos10 at 1e-3), against a plain
Adam loop on the same multi-power-law objective (torch, run in the same process).

    python benchmarks/bench_fitting.py [--repeats 3] [--adam-steps 3000]

The Adam baseline minimises the mean squared error of the multi-power law from the same start with
learning rate 0.01 for a fixed number of steps; its final cost is reported next to ours so that
the time is read together with how far it got.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sde_scales.fitting import KernelLaw, MomentumLaw, MultiPowerLaw, ScheduleFeatures, fit, load_curve


def adam_mpl(curves, steps, lr=0.01):
    import torch

    feats = [ScheduleFeatures.build(c, c.step[c.step >= 500], 1e-3) for c in curves]
    ys = [torch.tensor(c.loss[c.step >= 500]) for c in curves]
    T = [(torch.tensor(f.S1), torch.tensor(f.elapsed_area), torch.tensor(np.maximum(f.eta_after, 1e-6)),
          torch.tensor(f.drop)) for f in feats]
    p = torch.tensor([3.0, 2.0, 0.5, 0.4, 0.5, 0.6, 0.5], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = 0.0
        for (S1, el, eta, drop), y in zip(T, ys):
            L0, A, al, B, C, be, ga = p
            x = eta.pow(-ga)[None, :] * el
            G = 1 - (C.clamp(min=1e-4) * x + 1).pow(-be)
            pred = L0 + A * S1.pow(-al) - B * (G @ drop)
            loss = loss + ((pred - y) ** 2).sum()
        loss.backward()
        opt.step()
    return float(loss.detach()) / 2


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "loss_curves"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--adam-steps", type=int, default=3000)
    args = ap.parse_args(argv)
    d = Path(args.data)
    curves = [load_curve(d / "124m_const_lr1e-3.csv"), load_curve(d / "124m_cos10_lr1e-3.csv")]
    n = sum(int((c.step >= 500).sum()) for c in curves)
    laws = [KernelLaw("nonparametric", "steps"), KernelLaw("exp", "steps"), KernelLaw("power", "steps"), MomentumLaw(),
            MultiPowerLaw()]
    print(f"{n} points (two curves, steps >= 500)")
    print("| law | median s | min s | least-squares cost (Huber) | sum sq. residuals / 2 |")
    print("|---|---|---|---|---|")
    base = None
    for law in laws:
        ts, r = [], None
        for _ in range(args.repeats):
            t = time.perf_counter()
            r = fit(law, curves, skip_steps=500)
            ts.append(time.perf_counter() - t)
        from sde_scales.fitting import predict

        sse = sum(float(np.sum((predict(r, c) - c.loss)[c.step >= 500] ** 2)) for c in curves) / 2
        print(f"| {law.label} | {np.median(ts):.2f} | {min(ts):.2f} | {r.cost:.3f} | {sse:.3f} |")
        if isinstance(law, MultiPowerLaw):
            base = (np.median(ts), sse)
    try:
        t = time.perf_counter()
        cost = adam_mpl(curves, args.adam_steps)
        ta = time.perf_counter() - t
        print(f"| mpl, plain Adam ({args.adam_steps} steps, torch) | {ta:.2f} | - | - | {cost:.3f} |")
        print(f"\nAdam / least_squares time for the multi-power law: {ta / base[0]:.1f}x "
              f"(sum sq. residuals / 2: Adam {cost:.3f}, least_squares {base[1]:.3f})")
    except ImportError:
        print("torch not installed: Adam baseline skipped")


if __name__ == "__main__":
    main()
