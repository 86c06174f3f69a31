r"""K MLPs of one width trained as one stacked model, built from the abc table.

Layer l of member k has a raw weight :math:`w^l_k` of shape ``(fan_out, fan_in)``, initialised
:math:`N(0, \sigma_l^2)` with :math:`\sigma_l = n^{-b_l}` (times :math:`1/\sqrt{d_{in}}` for the
input layer, whose fan-in does not grow with n), used through the multiplier :math:`n^{-a_l}`, and
updated with learning rate :math:`\eta_k n^{-c_l}`; the exponents come from
:class:`sde_scales.parametrization.Parametrization`, the table ``theory/`` derives its predictions
from. There are no biases (as in the abc analysis). Every member draws its initial weights from
its own ``torch.Generator`` seeded by its seed, on the CPU, so a member's numbers do not depend on
which other members share its stack or on the device.

Members share the data batches; their losses are summed before ``backward`` so each member's
gradient is exactly its own.
"""

from __future__ import annotations

import math

import torch

from sde_scales.parametrization import Parametrization

__all__ = ["StackedMLP"]


class StackedMLP:
    """``K`` ReLU MLPs ``d_in -> width (x L hidden layers) -> d_out``, batched along a leading axis."""

    def __init__(self, param: Parametrization, K: int, d_in: int, width: int, d_out: int, seeds, *,
                 device="cpu", dtype=torch.float32):
        if len(seeds) != K:
            raise ValueError(f"{len(seeds)} seeds for K={K} members; give one seed per member")
        self.param, self.K, self.width, self.d_in, self.d_out = param, K, width, d_in, d_out
        dims = [d_in] + [width] * param.L + [d_out]
        self.shapes = [(dims[i + 1], dims[i]) for i in range(param.L + 1)]
        self.mult = [param.multiplier(l, width) for l in range(param.L + 1)]
        self.lr_scale = [param.lr_scale(l, width) for l in range(param.L + 1)]
        stds = [param.init_std(l, width) for l in range(param.L + 1)]
        stds[0] /= math.sqrt(d_in)
        self.init_std = stds
        self.weights = []
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        for shape, std in zip(self.shapes, stds):
            w = torch.stack([torch.randn(shape, generator=g, dtype=torch.float64) * std for g in gens])
            self.weights.append(w.to(device=device, dtype=dtype).requires_grad_(True))
        self.initial = [w.detach().clone() for w in self.weights]

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def forward(self, x: torch.Tensor, keep: bool = False):
        """Logits ``(K, B, d_out)`` for inputs ``(B, d_in)``; with ``keep`` also the pre-activations
        of every layer (the readout's are the logits)."""
        # the input layer of all K members as one GEMM: (B, d_in) x (d_in, K n), a view of the stack
        w0 = self.weights[0]
        K, nout, nin = w0.shape
        h = (x @ w0.reshape(K * nout, nin).T).reshape(x.shape[0], K, nout).transpose(0, 1) * self.mult[0]
        h = h if K > 1 else h.contiguous()  # one member: keep the plain layout so later layers are plain GEMMs
        pre = [h]
        for l in range(1, self.n_layers):
            h = torch.bmm(torch.relu(h), self.weights[l].transpose(1, 2)) * self.mult[l]
            pre.append(h)
        return (h, pre) if keep else h

    def select(self, members) -> "StackedMLP":
        """A view of some members (used by tests to compare with separate runs)."""
        new = object.__new__(StackedMLP)
        new.__dict__.update(self.__dict__)
        idx = torch.as_tensor(list(members))
        new.weights = [w.detach()[idx].clone().requires_grad_(True) for w in self.weights]
        new.initial = [w[idx].clone() for w in self.initial]
        new.K = len(idx)
        return new
