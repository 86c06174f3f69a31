r"""The muP optimizer: per-layer updates that read the abc table, as ``mup``'s MuSGD and MuAdam do.

Layer :math:`l` of a :class:`~sde_scales.train.model.StackedMLP` moves by its own learning rate
:math:`\eta\,s_l`, where :math:`s_l` is the layer's width factor from the parametrization's abc
table (``model.lr_scale[l]``: :math:`n^{-c_l}` for the layer's learning-rate exponent
:math:`c_l`, which depends on the optimizer: SGD and Adam scale differently under muP):

* SGD: :math:`W_l \leftarrow W_l - \eta s_l\, g_l`;
* Adam (Kingma & Ba 2015, bias-corrected, :math:`\beta = (0.9, 0.999)`, :math:`\epsilon = 10^{-8}`):
  :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`, :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`,
  :math:`W_l \leftarrow W_l - \eta s_l\, \hat m / (\sqrt{\hat v} + \epsilon)`.

The trainer and the coordinate check both step through this object, so the update a coordinate
check certifies is the one training runs. The learning rate may differ per stacked member (a
tensor of shape ``(members,)``), and the state may be viewed in member chunks (:meth:`chunk`).
"""

from __future__ import annotations

import torch

from sde_scales.errors import InvalidArgumentError

__all__ = ["MuOptimizer"]

ADAM_EPS = 1e-8


class MuOptimizer:
    """Per-layer SGD or Adam on a stack of weight tensors ``(members, fan_out, fan_in)``.

    Parameters
    ----------
    kind : {"sgd", "adam"}
        Must be the optimizer the parametrization's table was derived for.
    weights : list of torch.Tensor
        The model's weights (Adam allocates its moments like them).
    lr_scale : sequence of float
        Per-layer width factors from the abc table (``model.lr_scale``).
    """

    def __init__(self, kind: str, weights, lr_scale, _state=None):
        if kind not in ("sgd", "adam"):
            raise InvalidArgumentError(f"optimizer={kind!r}; use 'sgd' or 'adam'")
        if len(lr_scale) != len(weights):
            raise InvalidArgumentError(f"{len(lr_scale)} layer scales for {len(weights)} weight tensors")
        self.kind = kind
        self.weights = list(weights)
        self.lr_scale = list(lr_scale)
        if _state is not None:
            self.state = _state
        elif kind == "adam":
            self.state = [(torch.zeros_like(w), torch.zeros_like(w)) for w in self.weights]
        else:
            self.state = None

    def chunk(self, a: int, b: int, weights) -> "MuOptimizer":
        """The same optimizer on members ``a:b`` (views of its state), stepping ``weights`` (the
        model's views of those members)."""
        state = None if self.state is None else [(m[a:b], v[a:b]) for m, v in self.state]
        return MuOptimizer(self.kind, weights, self.lr_scale, _state=state)

    def step_layer(self, l: int, grad: torch.Tensor, lr, step: int) -> None:
        """Move layer ``l`` by its update for gradient ``grad`` at learning rate ``lr`` (a float or
        a per-member tensor); ``step`` counts from 1 (Adam's bias correction)."""
        w = self.weights[l]
        if torch.is_tensor(lr):
            scale = (lr * self.lr_scale[l]).view(-1, 1, 1)
        else:
            scale = float(lr) * self.lr_scale[l]
        if self.state is None:
            if torch.is_tensor(scale):
                w.addcmul_(scale, grad, value=-1.0)
            else:
                w.add_(grad, alpha=-scale)
            return
        m, v = self.state[l]
        m.mul_(0.9).add_(grad, alpha=0.1)  # beta = (0.9, 0.999), written out as literals
        v.mul_(0.999).addcmul_(grad, grad, value=0.001)
        mh = m / (1 - 0.9**step)
        vh = v / (1 - 0.999**step)
        w -= scale * mh / (vh.sqrt() + ADAM_EPS)

    def step(self, grads, lr, step: int) -> None:
        """Every layer's update (see :meth:`step_layer`)."""
        for l, g in enumerate(grads):
            self.step_layer(l, g, lr, step)
