"""Analyses of training grids: eta*(t), loss ratios, transfer curves, seed fluctuations, collapse."""

from sde_scales.analysis.grid import (
    collapse,
    diverged_counts,
    eta_star,
    loss_ratio,
    loss_table,
    seed_fluctuation,
    settle_step,
    transfer_curves,
)

__all__ = ["collapse", "diverged_counts", "eta_star", "loss_ratio", "loss_table", "seed_fluctuation", "settle_step", "transfer_curves"]
