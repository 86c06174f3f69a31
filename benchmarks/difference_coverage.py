"""Do the bands of ``forecast_difference`` hold the observed differences of runs never fitted?

Each family's constant and cosine runs are fitted (per seed), and every pair of its WSD runs is
forecast from the fit as a schedule with no loss; the forecast difference of their final losses
(the mean of the last 5% of rows) is set against the observed one. z = (observed - forecast) /
sqrt(sd^2 + the two observed final losses' standard errors^2), the observed ones as if independent
(the language-model WSD runs branch from one constant run, so this is the wide side). Two bands:
the parameters' part alone (what ``forecast_difference`` gave before the law's miss was added) and
the band with each forecast's miss as if independent (what it gives now). Counted: pairs within
1.96, pairs decided (95% interval off zero), and decided pairs whose sign the observation
contradicts.

    python benchmarks/difference_coverage.py                 # the shared 124M runs only
    python benchmarks/difference_coverage.py --lm            # and the language-model families of
                                                             # experiments/fit_lm_family.py (trained)
"""

from __future__ import annotations

import argparse
import itertools
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
LAWS = (("kernel", "nonparametric", "steps"), ("kernel", "exp", "area"), ("mpl", None, None))


def families(shared: Path, lm: bool):
    """(name, fitted curves, predicted curves, skip) per family and seed."""
    from sde_scales.fitting import load_curve

    c = {p.stem: load_curve(p) for p in sorted(shared.glob("124m_*_lr1e-3.csv"))}
    yield "shared 124M", [c["124m_const_lr1e-3"], c["124m_cos10_lr1e-3"]], [v for k, v in c.items() if "wsd" in k], 500
    if not lm:
        return
    sys.path.insert(0, str(HERE.parents[1] / "experiments"))
    from auto_combination import family_splits

    for fam in ("lm3e-3", "lm1e-3"):
        splits, skip, _ = family_splits(fam, "loso", None, shared)
        curves = {h.name: h for _, h in splits}
        for s in (0, 1):
            yield (f"LM {fam[2:]} seed {s}", [curves[f"constant_seed{s}"], curves[f"cos10_seed{s}"]],
                   [v for k, v in curves.items() if k.startswith("wsd") and k.endswith(f"seed{s}")], skip)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(HERE.parents[2] / "shared" / "data" / "loss_curves"))
    ap.add_argument("--lm", action="store_true", help="also the language-model families (their curves must exist)")
    args = ap.parse_args(argv)
    from sde_scales.fitting.fit import final_loss_noise, final_rows, fit, model_error
    from sde_scales.fitting.forecast import forecast, forecast_difference
    from sde_scales.fitting.report import make_law

    print(f"{'family':16s} {'law':30s} {'pairs':>5s} {'delta':>7s}   params only: {'in 1.96':>7s} {'decided':>7s} "
          f"{'wrong':>5s}   with the misses: {'in 1.96':>7s} {'decided':>7s} {'wrong':>5s}")
    total = np.zeros(6, int)
    for name, fitted, held, skip in families(Path(args.shared), args.lm):
        for cand in LAWS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the fits' and forecasts' warnings are not measured here
                res = fit(make_law(*cand), fitted, skip_steps=skip)
                bare = replace(res, extra={**res.extra, "lack_of_fit": {}})  # the parameters' part alone
                every = int(np.median(np.diff(held[0].step)))  # rows where the runs logged
                fc = {h.name: forecast(res, h.per_step_lr(), every=every, name=h.name) for h in held}
                counts = np.zeros(6, int)
                pairs = list(itertools.combinations(held, 2))
                for a, b in pairs:
                    obs = float(np.mean(a.loss[-final_rows(a.step.size):]) - np.mean(b.loss[-final_rows(b.step.size):]))
                    noise = np.hypot(final_loss_noise(a.loss), final_loss_noise(b.loss))
                    for k, r in enumerate((bare, res)):
                        d = forecast_difference(r, fc[a.name], fc[b.name])
                        decided = abs(d.difference) > 1.96 * d.sd
                        counts[3 * k:3 * k + 3] += [abs(obs - d.difference) <= 1.96 * np.hypot(d.sd, noise), decided,
                                                    decided and np.sign(d.difference) != np.sign(obs)]
            total += counts
            print(f"{name:16s} {res.law.label:30s} {len(pairs):5d} {model_error(res):7.4f}   {'':13s}"
                  f"{counts[0]:7d} {counts[1]:7d} {counts[2]:5d}   {'':16s}{counts[3]:7d} {counts[4]:7d} {counts[5]:5d}")
    print(f"{'all':47s} {'':7s}   {'':13s}{total[0]:7d} {total[1]:7d} {total[2]:5d}   {'':16s}{total[3]:7d} "
          f"{total[4]:7d} {total[5]:5d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
