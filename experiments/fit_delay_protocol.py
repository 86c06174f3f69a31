"""Table: predicting WSD cooldowns from a constant and a cosine run (124M, peak 1e-3).

Protocol: fit on 124m_const_lr1e-3 + 124m_cos10_lr1e-3, predict the seven WSD runs at peak 1e-3,
skip the first 500 steps, score against a centred moving average over 1,000 steps. Every law is
reported without and with the optional shared-noise correction (fitting.shared_noise_offset), and
with the in-sample floor: the same law fitted to each WSD run itself.

    python experiments/fit_delay_protocol.py [--data DIR] [--out DIR] [--quick]

Writes OUT/protocol.json (data first) and OUT/protocol.png (cooldown RMSE and final-loss error per law).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sde_scales.fitting import KernelLaw, MomentumLaw, MultiPowerLaw, fit, load_curve, predict, score, shared_noise_offset
from sde_scales.atomic import write_json_atomic
from sde_scales.cli import output_folder

WSD = [f"124m_wsd-{s}_lr1e-3.csv" for s in ("lin0.1", "lin0.2", "lin0.4", "lin0.6", "lin0.8", "lin0.9", "sqrt0.2")]


def main(argv=None):
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(here.parent / "shared" / "data" / "loss_curves"))
    ap.add_argument("--out", type=output_folder, default="out/fit_delay_protocol")
    ap.add_argument("--quick", action="store_true", help="skip the in-sample floor")
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    fit_curves = [load_curve(data / "124m_const_lr1e-3.csv"), load_curve(data / "124m_cos10_lr1e-3.csv")]
    wsd = [load_curve(data / f) for f in WSD]
    laws = [KernelLaw("nonparametric", "steps"), KernelLaw("power", "steps"), KernelLaw("exp", "steps"),
            KernelLaw("nonparametric", "area"), MomentumLaw(), MultiPowerLaw()]
    rows = []
    for law in laws:
        r = fit(law, fit_curves, skip_steps=500)
        plain = [score(c, predict(r, c), skip_steps=500) for c in wsd]
        corr = [score(c, predict(r, c), skip_steps=500, offset=shared_noise_offset(r, fit_curves, c)) for c in wsd]
        row = {
            "law": law.label, "fit_seconds": r.seconds, "params": r.params,
            "cooldown_rmse": float(np.mean([s["cooldown_rmse"] for s in plain])),
            "abs_final_err": float(np.mean([abs(s["final_loss_err"]) for s in plain])),
            "final_err": [s["final_loss_err"] for s in plain],
            "cooldown_rmse_corrected": float(np.mean([s["cooldown_rmse"] for s in corr])),
            "abs_final_err_corrected": float(np.mean([abs(s["final_loss_err"]) for s in corr])),
        }
        if not args.quick:
            ins = []
            for c in wsd:
                rc = fit(law, [c], skip_steps=500)
                ins.append(score(c, predict(rc, c), skip_steps=500)["cooldown_rmse"])
            row["in_sample_cooldown_rmse"] = float(np.mean(ins))
        rows.append(row)
    write_json_atomic(out / "protocol.json", {"protocol": __doc__.split("\n\n")[1], "rows": rows})

    print("| law | fit s | cooldown RMSE | mean abs final err | with correction: cooldown RMSE | abs final err | in-sample cooldown RMSE |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ins = f"{r['in_sample_cooldown_rmse']:.4f}" if "in_sample_cooldown_rmse" in r else "-"
        print(f"| {r['law']} | {r['fit_seconds']:.2f} | {r['cooldown_rmse']:.4f} | {r['abs_final_err']:.4f} | "
              f"{r['cooldown_rmse_corrected']:.4f} | {r['abs_final_err_corrected']:.4f} | {ins} |")

    import matplotlib.pyplot as plt

    from sde_scales.plots import save_figure

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    x = np.arange(len(rows))
    ax[0].bar(x - 0.2, [r["cooldown_rmse"] for r in rows], 0.4, label="plain")
    ax[0].bar(x + 0.2, [r["cooldown_rmse_corrected"] for r in rows], 0.4, label="shared-noise correction")
    ax[0].axhline(0.018, color="C3", ls="--", lw=1, label="target 0.018")
    ax[1].bar(x - 0.2, [r["abs_final_err"] for r in rows], 0.4)
    ax[1].bar(x + 0.2, [r["abs_final_err_corrected"] for r in rows], 0.4)
    ax[1].axhline(0.01, color="C3", ls="--", lw=1)
    for a, t in zip(ax, ("mean cooldown RMSE", "mean |final-loss error|")):
        a.set_xticks(x, [r["law"] for r in rows], rotation=35, ha="right", fontsize=7)
        a.set_title(t, fontsize=9)
    ax[0].legend(fontsize=7)
    save_figure(fig, out / "protocol.png")


if __name__ == "__main__":
    main()
