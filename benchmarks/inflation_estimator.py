"""Scatter and bias of the residual autocorrelation inflation, overlapping against disjoint batches.

Every fit's parameter covariance, every prediction band, the time-scale intervals and the weights
of the time-scale average are scaled by :math:`\\kappa`, the residuals' long-run variance over
their variance (:func:`sde_scales.fitting.fit.autocorrelation_inflation`). This draws AR(1)
series of unit variance, as many rows as a fitted curve has, and compares the library's estimate
(overlapping means of 1,000-step batches) with the estimator it replaced (the variance of disjoint
1,000-step block means times the block length, dropping the rows after the last whole block), both
run here on the same series. The true inflation of AR(1) noise with coefficient phi is
(1 + phi) / (1 - phi); what batches of B rows can see of it, their expectation, is
(1 + phi) / (1 - phi) - 2 phi (1 - phi^B) / (B (1 - phi)^2).

    python benchmarks/inflation_estimator.py                   # 1,171 rows at 10 steps, 2,000 series
    python benchmarks/inflation_estimator.py --rows 3400 --log-every 10
    python benchmarks/inflation_estimator.py --lengths  # batch length B, 2B, and 2 k(2B) - k(B)

``--lengths`` weighs the batch length instead: the library's estimate at B and at 2B rows, and
their combination 2 k(2B) - k(B), which cancels the 1/B term of the bias (at least 1), each with
its relative root-mean-square error against the true inflation.
"""

from __future__ import annotations

import argparse

import numpy as np


def disjoint_blocks(res: np.ndarray, log_every: int) -> float:
    """The estimator before overlapping batches: ``B`` times the variance (ddof 1) of the means of
    disjoint blocks of ``B`` rows (1,000 steps), over the residuals' variance; at least 1, and 1
    with fewer than three blocks."""
    block = max(2, int(1000 / max(1, log_every)))
    nb = res.size // block
    if nb <= 2:
        return 1.0
    bm = res[: nb * block].reshape(nb, block).mean(axis=1)
    return max(1.0, block * bm.var(ddof=1) / max(res.var(ddof=1), 1e-300))


def ar1(rng: np.random.Generator, phi: float, n: int, burn: int = 2000) -> np.ndarray:
    """An AR(1) series of unit variance, past its start-up."""
    from scipy.signal import lfilter

    e = rng.standard_normal(n + burn) * np.sqrt(1.0 - phi**2)
    return lfilter([1.0], [1.0, -phi], e)[burn:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1171, help="rows per series (default 1171: a 12,000-step "
                    "cosine logged every 10 steps, less its start)")
    ap.add_argument("--log-every", type=int, default=10, help="steps per row (default 10)")
    ap.add_argument("--series", type=int, default=2000, help="series per coefficient (default 2000)")
    ap.add_argument("--phis", default="0,0.5,0.9,0.97", help="AR(1) coefficients per row (default 0,0.5,0.9,0.97)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the draws (default 1)")
    ap.add_argument("--lengths", action="store_true", help="compare batch lengths B and 2B and their "
                    "bias-cancelling combination instead of the two estimators")
    args = ap.parse_args(argv)
    if args.rows < 3 or args.series < 2 or args.log_every < 1:
        ap.error("--rows >= 3, --series >= 2 and --log-every >= 1")
    from sde_scales.fitting.fit import INFLATION_BATCH_STEPS, autocorrelation_inflation

    b = max(2, int(INFLATION_BATCH_STEPS / args.log_every))
    if args.lengths:
        return _lengths(args, b)
    print(f"{args.series} AR(1) series of {args.rows} rows at {args.log_every} steps per row; batches of {b} rows")
    print(f"{'phi':>5} {'true':>6} {'batch exp.':>10} | {'disjoint: mean':>14} {'rel sd':>6} {'5-95%':>13} | "
          f"{'overlapping: mean':>17} {'rel sd':>6} {'5-95%':>13}")
    for phi in (float(p) for p in args.phis.split(",")):
        rng = np.random.default_rng(args.seed)
        draws = [ar1(rng, phi, args.rows) for _ in range(args.series)]
        old = np.array([disjoint_blocks(e, args.log_every) for e in draws])
        new = np.array([autocorrelation_inflation(e, args.log_every) for e in draws])
        true = (1 + phi) / (1 - phi)
        seen = true - (2 * phi * (1 - phi**b) / (b * (1 - phi) ** 2) if phi > 0 else 0.0)
        cols = []
        for k, w in ((old, 14), (new, 17)):
            q = np.quantile(k, [0.05, 0.95])
            cols.append(f"{k.mean():{w}.2f} {k.std() / k.mean():6.3f} {q[0]:6.2f}-{q[1]:6.2f}")
        print(f"{phi:5.2f} {true:6.1f} {seen:10.1f} | {cols[0]} | {cols[1]}")
    return 0


def _lengths(args, b: int) -> int:
    """The ``--lengths`` table: relative RMSE of the estimate at B, at 2B and combined."""
    from sde_scales.fitting.fit import autocorrelation_inflation

    print(f"{args.series} AR(1) series of {args.rows} rows; batches of {b} and {2 * b} rows; mean / rel sd / "
          f"rel RMSE against the truth")
    print(f"{'phi':>5} {'true':>6} | {'B':>22} | {'2B':>22} | {'2 k(2B) - k(B)':>22}")
    for phi in (float(p) for p in args.phis.split(",")):
        rng = np.random.default_rng(args.seed)
        draws = [ar1(rng, phi, args.rows) for _ in range(args.series)]
        k1 = np.array([autocorrelation_inflation(e, args.log_every) for e in draws])
        k2 = np.array([autocorrelation_inflation(e, args.log_every / 2) for e in draws])  # batches of 2B rows
        true = (1 + phi) / (1 - phi)
        cols = [f"{k.mean():7.2f} {k.std() / k.mean():6.3f} {np.sqrt(np.mean((k - true) ** 2)) / true:7.3f}"
                for k in (k1, k2, np.maximum(1.0, 2 * k2 - k1))]
        print(f"{phi:5.2f} {true:6.1f} | {cols[0]:>22} | {cols[1]:>22} | {cols[2]:>22}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
