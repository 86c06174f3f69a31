"""Analyses of training grids: eta*(t), loss ratios, transfer curves, seed fluctuations (``grid``),
width samples for the rate claims (``width``), and the scaling collapse of Qiu et al. (``collapse``)."""

from sde_scales.analysis.grid import (
    diverged_counts,
    eta_star,
    loss_ratio,
    loss_table,
    seed_fluctuation,
    settle_step,
    transfer_curves,
)

__all__ = ["diverged_counts", "eta_star", "loss_ratio", "loss_table", "seed_fluctuation", "settle_step",
           "transfer_curves"]
