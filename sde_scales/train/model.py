r"""K MLPs of one width trained as one stacked model, built from the abc table.

Layer l of member k has a raw weight :math:`w^l_k` of shape ``(fan_out, fan_in)``, initialised
:math:`N(0, \sigma_l^2)` with :math:`\sigma_l = n^{-b_l}` (times :math:`1/\sqrt{d_{in}}` for the
input layer, whose fan-in does not grow with n), used through the multiplier :math:`n^{-a_l}`, and
updated with learning rate :math:`\eta_k n^{-c_l}`; the exponents come from
:class:`sde_scales.parametrization.Parametrization`, the table ``theory/`` derives its predictions
from. There are no biases (as in the abc analysis). Every member draws its initial weights from
its own ``torch.Generator`` seeded by its seed, on the CPU, so a member's numbers do not depend on
which other members share its stack or on the device.

Members share the data batches. Gradients are written out by hand (``backward``) rather than
by autograd: for pre-activations :math:`h_l = m_l\, a_{l-1} w_l^\top` (with :math:`a_{-1} = x`,
:math:`a_l = \mathrm{relu}(h_l)`) and an upstream gradient :math:`\delta_l = \partial L/\partial h_l`,

.. math::

    \partial L/\partial w_l = m_l\, \delta_l^\top a_{l-1}, \qquad
    \delta_{l-1} = m_l\, (\delta_l w_l) \odot 1[h_{l-1} > 0].

That lets plain SGD fold each member's step size into :math:`\delta_0` and add
:math:`-\eta\,\partial L/\partial w_0` into the input-layer weights inside the GEMM that computes
it (``addmm_``), so the gradient of the K-member input layer (K n d_in floats, the bulk of the
model) is never written to memory. Every GEMM is laid out so that its result does not depend on
the thread count where the BLAS does not split its reduction, and MKL is put in its strict
reproducible mode so that it does not (:mod:`sde_scales.train.reproducible`; a CPU model checks it
and falls back to one thread with a warning where the products still differ; checked in the
tests). ``tests/test_train.py`` checks these gradients against autograd.
"""

from __future__ import annotations

import math

import torch

from sde_scales.errors import InvalidArgumentError
from sde_scales.parametrization import Parametrization
from sde_scales.train.reproducible import ensure_thread_invariance
from sde_scales.validation import check_memory

__all__ = ["StackedMLP", "check_room"]


def check_room(host_bytes: int, device_bytes: int, device, what: str, fix: str) -> None:
    """Refuse, before anything is allocated, work that needs ``host_bytes`` in host memory and
    ``device_bytes`` on ``device``: on CUDA each against its own free memory, elsewhere (the CPU,
    or Apple's MPS, which shares the host's memory) their sum against the host's
    (:func:`~sde_scales.validation.check_memory`). ``what`` names what needs it, ``fix`` how to
    shrink it. Shared by the MLP stacks and the language model."""
    dev = torch.device(device)
    if dev.type != "cuda":
        check_memory(host_bytes + device_bytes, what, fix)
        return
    check_memory(host_bytes, what, fix)
    free = torch.cuda.mem_get_info(dev)[0]
    if device_bytes > free:
        raise InvalidArgumentError(f"{what} need {device_bytes / 2**30:.3g} GiB on {device} and {free / 2**30:.3g} "
                                   f"GiB is free there; {fix}")


def _check_room(shapes, K: int, width: int, device, dtype) -> None:
    """Refuse a stack whose weights cannot be held, before any is drawn (torch's allocator failed
    with a RuntimeError traceback, after the weights of the layers before had been drawn): the
    weights, their initial copy and their gradients on the device, and on the host the float64
    draw of the largest layer (the per-member draw and the stack of them)."""
    n_w = K * sum(a * b for a, b in shapes)
    big = K * max(a * b for a, b in shapes)
    check_room(16 * big, 3 * n_w * torch.finfo(dtype).bits // 8, device,
               f"{K} network(s) of width {width} ({n_w:,} weights)",
               "train narrower networks, or fewer learning rates and seeds per stack")


class StackedMLP:
    """``K`` ReLU MLPs ``d_in -> width (x L hidden layers) -> d_out``, batched along a leading axis."""

    def __init__(self, param: Parametrization, K: int, d_in: int, width: int, d_out: int, seeds, *,
                 device="cpu", dtype=torch.float32, lr_width: int | None = None, base_width: int | None = None,
                 gemm_dtype: torch.dtype | None = None):
        r"""``gemm_dtype``: ``torch.bfloat16`` runs every GEMM of the forward and backward passes on
        bf16 copies of its operands, with fp32 results (weights, optimizer state and updates stay
        fp32); ``None``: fp32 throughout.

        ``base_width`` :math:`n_0`: multipliers, init scales and learning rates relative to a base
        model of width :math:`n_0` (``mup``'s convention; see
        :meth:`~sde_scales.parametrization.Parametrization.factors`): at width :math:`n_0` the network
        is the SP network, so a learning rate means what it means in ``mup``. ``None``: base width 1.

        ``lr_width`` :math:`n_0`: per-layer learning rates frozen at their values at width
        :math:`n_0` (the mis-scaled control of a width ladder). They are frozen in the form of the
        parametrization without multipliers (the abc symmetry with :math:`\theta_l = -a_l`, where the
        learning-rate exponent is :math:`c'_l = c_l + k a_l`, k = 2 for SGD and 1 for Adam; muP's
        SGD learning rates there scale as n, 1 and 1/n), so the layer's step is off by
        :math:`(n / n_0)^{c'_l}`. Freezing :math:`n^{-c_l}` itself would change nothing in a
        parametrization written with multipliers and constant learning rates, as muP is here."""
        if len(seeds) != K:
            raise ValueError(f"{len(seeds)} seeds for K={K} members; give one seed per member")
        if torch.device(device).type == "cpu":
            ensure_thread_invariance()  # the same numbers on any thread count, or one thread and a warning
        self.param, self.K, self.width, self.d_in, self.d_out = param, K, width, d_in, d_out
        self.gemm_dtype = None if gemm_dtype in (None, dtype) else gemm_dtype
        dims = [d_in] + [width] * param.L + [d_out]
        self.shapes = [(dims[i + 1], dims[i]) for i in range(param.L + 1)]
        _check_room(self.shapes, K, width, device, dtype)
        f = [param.factors(l, width, base_width) for l in range(param.L + 1)]
        self.base_width = base_width
        self.mult = [m for m, _, _ in f]
        self.lr_scale = [s for _, _, s in f]
        if lr_width:
            for l, rule in enumerate(param.layers):
                c_free = param.shifted(-rule.a, layer=l).layers[l].c  # the layer written without multiplier
                self.lr_scale[l] *= (width / lr_width) ** float(c_free)
        stds = [sd for _, sd, _ in f]
        stds[0] /= math.sqrt(d_in)
        self.init_std = stds
        self.weights = []
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        for shape, std in zip(self.shapes, stds):
            w = torch.stack([torch.randn(shape, generator=g, dtype=torch.float64) * std for g in gens])
            self.weights.append(w.to(device=device, dtype=dtype))
        self.initial = [w.clone() for w in self.weights]

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def forward(self, x: torch.Tensor, keep: bool = False):
        """Logits ``(K, B, d_out)`` for inputs ``(B, d_in)`` shared by all members, or ``(K, B, d_in)``
        with a batch of its own per member; with ``keep`` also the pre-activations of every layer
        (the readout's are the logits)."""
        w0 = self.weights[0]
        K, nout, nin = w0.shape
        if x.dim() == 3:  # a batch per member: one batched GEMM
            if x.shape[0] != K:
                raise ValueError(f"inputs of shape {tuple(x.shape)} for K={K} members; give (B, d_in) or (K, B, d_in)")
            h = self._gemm(torch.bmm, x, w0.transpose(1, 2)) * self.mult[0]
        elif K == 1:  # the plain layout, so that later layers are plain GEMMs
            h = self._gemm(torch.mm, x, w0[0].T).unsqueeze(0) * self.mult[0]
        else:  # the input layer of all K members as one GEMM: (K n, d_in) x (d_in, B), seen as (K, B, n):
            # 10-15% faster than (x w^T) here
            h = self._gemm(torch.mm, w0.view(K * nout, nin), x.T).view(K, nout, x.shape[0]).transpose(1, 2) * self.mult[0]
        pre = [h]
        for l in range(1, self.n_layers):
            h = self._gemm(torch.bmm, torch.relu(h), self.weights[l].transpose(1, 2)) * self.mult[l]
            pre.append(h)
        return (h, pre) if keep else h

    def _gemm(self, op, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``op(a, b)`` (``torch.bmm`` or ``torch.mm``), on ``gemm_dtype`` copies of the operands when
        one is set (with a result in the operands' own dtype)."""
        if self.gemm_dtype is None:
            return op(a, b)
        return op(a.to(self.gemm_dtype), b.to(self.gemm_dtype)).to(a.dtype)

    @staticmethod
    def losses(logits: torch.Tensor, y: torch.Tensor):
        r"""Per-member mean cross-entropy ``(K,)`` of logits ``(K, B, C)`` against labels ``(B,)`` (shared)
        or ``(K, B)`` (a batch per member), and :math:`\partial L_k / \partial \mathrm{logits}_k = (\mathrm{softmax} - \mathrm{onehot}(y)) / B`."""
        K, B, C = logits.shape
        logp = torch.log_softmax(logits, dim=-1)
        yk = y.view(K, B, 1) if y.dim() == 2 else y.view(1, B, 1).expand(K, B, 1)
        losses = -logp.gather(2, yk).squeeze(2).mean(dim=1)
        dlogits = logp.exp_()
        dlogits.scatter_add_(2, yk, torch.full((K, B, 1), -1.0, dtype=logits.dtype, device=logits.device))
        return losses, dlogits.div_(B)

    @staticmethod
    def mse_losses(out: torch.Tensor, y: torch.Tensor):
        r"""Per-member mean squared error ``(K,)`` of outputs ``(K, B, 1)`` against targets ``(B,)``
        (shared) or ``(K, B)``, :math:`L_k = B^{-1} \sum_b (f_{kb} - y_b)^2`, and
        :math:`\partial L_k / \partial f_k = 2 (f_k - y) / B`."""
        K, B, _ = out.shape
        yk = y.view(K, B, 1) if y.dim() == 2 else y.view(1, B, 1)
        r = out - yk
        return r.pow(2).mean(dim=(1, 2)), r.mul_(2.0 / B)

    def backward(self, x: torch.Tensor, pre: list, dlogits: torch.Tensor, step_size: torch.Tensor | None = None):
        r"""Gradients of :math:`\sum_k L_k` given the inputs ``x`` (shared or per member, as in
        :meth:`forward`), the forward pass ``pre`` (from ``forward(x, keep=True)``) and ``dlogits``
        (``(K, B, d_out)``; zero rows for members to leave alone).

        With ``step_size=None``: returns the per-layer gradients ``(K, fan_out, fan_in)``. With a
        ``(K,)`` tensor of learning rates: applies SGD, :math:`w_l \leftarrow w_l - \eta_k\,
        c_l\, \partial L/\partial w_l` (``c_l`` the layer's width scaling ``lr_scale``) in place,
        inside the gradient GEMM for the input layer, and returns ``None``.
        """
        K = self.K
        grads = [None] * self.n_layers
        delta = dlogits
        for l in range(self.n_layers - 1, -1, -1):
            w = self.weights[l]
            if step_size is None:
                scaled = delta * self.mult[l]
            else:
                scaled = delta * (step_size * (self.mult[l] * self.lr_scale[l])).view(K, 1, 1)
            if l > 0:
                h = pre[l - 1]
                # the gradient passed down uses the weights before this step's update
                delta_below = self._gemm(torch.bmm, delta, w).mul_(self.mult[l]).mul_(h > 0)
                # (a^T delta)^T, not delta^T a: the latter's result changes with the thread count
                # for some shapes (the reduction over the batch is split), this one's does not
                g = self._gemm(torch.bmm, torch.relu(h).transpose(1, 2), scaled).transpose(1, 2)
                if step_size is None:
                    grads[l] = g
                else:
                    w.sub_(g)
                delta = delta_below
            elif x.dim() == 3:  # a batch per member: (delta^T x) per member, (K, n, d_in)
                g = self._gemm(torch.bmm, scaled.transpose(1, 2), x)
                if step_size is None:
                    grads[0] = g
                else:
                    w.sub_(g)
            else:
                # the input layer of all K members as one GEMM over the (K n, d_in) view of the stack
                B, n = x.shape[0], w.shape[1]
                flat = scaled.transpose(0, 1).reshape(B, K * n)
                if step_size is None:
                    grads[0] = self._gemm(torch.mm, flat.T, x).view(K, n, w.shape[2])
                elif self.gemm_dtype is not None:  # the step from a low-precision GEMM, added in fp32
                    w.view(K * n, w.shape[2]).sub_(self._gemm(torch.mm, flat.T, x))
                else:
                    w.view(K * n, w.shape[2]).addmm_(flat.T, x, alpha=-1.0)
        return grads if step_size is None else None

    def view(self, start: int, stop: int) -> "StackedMLP":
        """Members ``start:stop`` as a model whose weights are *views* of this one's: updating them
        updates this stack (used to train a stack in chunks of members)."""
        new = object.__new__(StackedMLP)
        new.__dict__.update(self.__dict__)
        new.weights = [w[start:stop] for w in self.weights]
        new.initial = [w[start:stop] for w in self.initial]
        new.K = stop - start
        return new

    def select(self, members) -> "StackedMLP":
        """A view of some members (used by tests to compare with separate runs)."""
        new = object.__new__(StackedMLP)
        new.__dict__.update(self.__dict__)
        idx = torch.as_tensor(list(members))
        new.weights = [w[idx].clone() for w in self.weights]
        new.initial = [w[idx].clone() for w in self.initial]
        new.K = len(idx)
        return new
