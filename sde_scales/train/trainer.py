r"""Train a stack of K runs (same width, parametrization, data; own learning rate and seed) and log
the trajectories the theory talks about.

Logged every ``log_every`` steps, per run, as rows ``(run_id, step, epoch, metric, layer, value)``:

==================  =============================================================================
``train_loss``      mean mini-batch loss since the previous log
``test_loss/acc``   on the test split, every ``eval_every`` logs (where a test split exists)
``dist2``           :math:`\lVert w_t - w_0\rVert^2` of the raw weights, per layer and ``layer=-1`` total
``act_rms``         RMS of each layer's pre-activations on a fixed probe batch
``act_delta_rms``   RMS of their change since initialisation on the same probe batch
``grad_norm``       norm of the last step's gradient, per layer
``lr``              the learning rate of that step (before the per-layer width scaling)
``eval_loss``       loss on the fixed evaluation batch (the first 256 training inputs)
``eval_grad_norm``  norm of the gradient of ``eval_loss``, per layer and ``layer=-1`` total
``w``               a fixed set of individual weights per layer (micro-variables), ``layer`` =
                    ``l * 1000 + j`` for the j-th chosen coordinate of layer l, chosen from the seed
==================  =============================================================================

A run whose loss turns NaN or infinite, or exceeds ``DIVERGENCE_FACTOR`` (100) times its initial
evaluation loss, is recorded as ``diverged`` with its step; its learning
rate is set to 0 and the other runs of the stack go on unchanged.

Minibatch order: with ``data_order="shared"`` every member of a stack sees the same batches (drawn
from ``data_seed``); with ``data_order="seed"`` each run draws its own order from its seed (and
``data_seed``), so runs that differ in seed differ in initialisation *and* minibatch order, and a
run's numbers do not depend on which other runs share its stack.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from sde_scales import schedules
from sde_scales.errors import InvalidArgumentError
from sde_scales.parametrization import by_name
from sde_scales.train.model import StackedMLP

__all__ = ["RunConfig", "RunOutcome", "train_stack", "resolve_device", "N_MICRO"]

#: Individual weights logged per layer.
N_MICRO = 4
#: A run whose minibatch loss exceeds this multiple of its initial evaluation loss has diverged: a
#: loss 100 times its starting value is no training run making progress, and past it float32
#: arithmetic soon overflows (a run "finished" at a loss of 1e19 is not a result).
DIVERGENCE_FACTOR = 100.0


#: Fields added after stores were first written, with the default that keeps an old run id.
_ADDED_FIELDS = {"data_order": "shared"}


def resolve_device(device: str = "auto") -> str:
    """``auto``: CUDA when available, else CPU. ``cuda`` without a GPU is a clear error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidArgumentError(f"device={device!r} but no CUDA device is available here; use --device cpu or auto")
    if device != "cpu" and not device.startswith("cuda"):
        raise InvalidArgumentError(f"device={device!r}; use auto, cpu or cuda")
    return device


@dataclass(frozen=True)
class RunConfig:
    """One training run. ``run_id`` is a hash of every field that changes its numbers."""

    param: str = "mup"
    width: int = 128
    lr: float = 0.1
    seed: int = 0
    optimizer: str = "sgd"
    depth: int = 1
    dataset: str = "synthetic"
    d_in: int = 3072
    n_train: int = 8192
    data_seed: int = 0
    batch_size: int = 128
    epochs: float = 1.0
    schedule: str = "constant"
    schedule_kw: tuple = ()
    log_every: int = 10
    eval_every: int = 5
    data_order: str = "shared"

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr >= 0):
            raise InvalidArgumentError(f"lr={self.lr!r}; learning rates must be finite and >= 0")
        if self.width < 1 or self.depth < 1 or self.batch_size < 1:
            raise InvalidArgumentError(f"width={self.width}, depth={self.depth}, batch_size={self.batch_size}; all must be >= 1")
        if self.epochs <= 0 or self.log_every < 1:
            raise InvalidArgumentError(f"epochs={self.epochs}, log_every={self.log_every}; both must be positive")
        if self.data_order not in ("shared", "seed"):
            raise InvalidArgumentError(f"data_order={self.data_order!r}; use 'shared' (one minibatch order per stack) "
                                       f"or 'seed' (each run its own order, from its seed)")
        if self.optimizer not in ("sgd", "adam"):
            raise InvalidArgumentError(f"optimizer={self.optimizer!r}; use sgd or adam")
        by_name(self.param, L=self.depth, optimizer=self.optimizer)  # validates the name

    @property
    def run_id(self) -> str:
        d = asdict(self)
        for k, default in _ADDED_FIELDS.items():  # fields added later: ids of older stores stay valid
            if d[k] == default:
                d.pop(k)
        return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def stack_key(self) -> tuple:
        """Runs with the same key are trained together (they differ in lr and seed only)."""
        d = asdict(self)
        d.pop("lr")
        d.pop("seed")
        return tuple(sorted((k, str(v)) for k, v in d.items()))

    def n_steps(self) -> int:
        return max(1, int(round(self.epochs * self.n_train / self.batch_size)))


@dataclass
class RunOutcome:
    config: RunConfig
    status: str
    diverged_step: int | None
    rows: dict = field(default_factory=dict)
    seconds: float = 0.0
    final: dict = field(default_factory=dict)

    def frame(self):
        import pandas as pd

        df = pd.DataFrame(self.rows)
        df.insert(0, "run_id", self.config.run_id)
        return df


def _micro_indices(shape, seed: int, layer: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x31C, layer]))
    return np.stack([rng.integers(0, shape[0], N_MICRO), rng.integers(0, shape[1], N_MICRO)], axis=1)


def train_stack(configs: list[RunConfig], dataset, device: str = "cpu", progress=None) -> list[RunOutcome]:
    """Train runs that share a ``stack_key`` together; returns one outcome per run."""
    if not configs:
        return []
    key = configs[0].stack_key()
    if any(c.stack_key() != key for c in configs):
        raise InvalidArgumentError("train_stack needs runs that differ only in lr and seed")
    c0 = configs[0]
    started = time.perf_counter()
    p = by_name(c0.param, L=c0.depth, optimizer=c0.optimizer)
    K = len(configs)
    model = StackedMLP(p, K, dataset.d_in, c0.width, dataset.n_classes, [c.seed for c in configs], device=device)
    base_lr = torch.tensor([c.lr for c in configs], dtype=torch.float32, device=device)
    n_steps = c0.n_steps()
    kw = dict(c0.schedule_kw)
    shape = {"constant": schedules.constant, "cosine": schedules.cosine, "wsd": schedules.wsd,
             "step": schedules.step, "eight_one_one": schedules.eight_one_one}
    if c0.schedule not in shape:
        raise InvalidArgumentError(f"schedule={c0.schedule!r}; use one of {', '.join(shape)}")
    sched = shape[c0.schedule](n_steps, 1.0, **kw)
    alive = torch.ones(K, dtype=torch.bool, device=device)
    div_step = [None] * K
    adam = None
    if c0.optimizer == "adam":
        adam = [(torch.zeros_like(w), torch.zeros_like(w)) for w in model.weights]
    n = dataset.n_train
    per_member = c0.data_order == "seed"
    if per_member:  # each run its own minibatch order, a function of its seed and data_seed only
        gens = [torch.Generator().manual_seed(int(np.random.SeedSequence([c.seed, c0.data_seed, 0xDA7A])
                                                   .generate_state(1)[0])) for c in configs]
    else:
        gens = [torch.Generator().manual_seed(int(c0.data_seed))]
    probe = dataset.x_train[: min(256, n)]
    probe_y = dataset.y_train[: min(256, n)]
    with torch.no_grad():
        _, pre0 = model.forward(probe, keep=True)
    micro = [[_micro_indices(s, c.seed, l) for l, s in enumerate(model.shapes)] for c in configs]
    # gather index tensors per layer: member, row, column of each logged coordinate
    kk = torch.arange(K).repeat_interleave(N_MICRO)
    micro_idx = []
    for l in range(model.n_layers):
        ab = np.concatenate([micro[k][l] for k in range(K)])
        micro_idx.append((kk, torch.as_tensor(ab[:, 0]), torch.as_tensor(ab[:, 1])))
    rows = [{"step": [], "epoch": [], "metric": [], "layer": [], "value": []} for _ in range(K)]

    def put(k, step, metric, layer, value):
        r = rows[k]
        r["step"].append(step)
        r["epoch"].append(step * c0.batch_size / n)
        r["metric"].append(metric)
        r["layer"].append(layer)
        r["value"].append(float(value))

    def snapshot(step, with_test):
        """Log what is defined at any step, the initialisation included: evaluation-batch metrics,
        distances and activations, tracked weights, and the test split when asked."""
        with torch.no_grad():
            lp, pre = model.forward(probe, keep=True)
            eval_losses, dlp = model.losses(lp, probe_y)
            egrads = model.backward(probe, pre, dlp)
            eval_loss = eval_losses.cpu().numpy()
            egn = [g.pow(2).sum(dim=(1, 2)).cpu().numpy() for g in egrads]
            dist = [((w - w0) ** 2).sum(dim=(1, 2)).cpu().numpy() for w, w0 in zip(model.weights, model.initial)]
            act = [h.pow(2).mean(dim=(1, 2)).sqrt().cpu().numpy() for h in pre]
            dact = [(h - h0).pow(2).mean(dim=(1, 2)).sqrt().cpu().numpy() for h, h0 in zip(pre, pre0)]
            wv = [w[i0.to(w.device), i1.to(w.device), i2.to(w.device)].view(K, N_MICRO).cpu().numpy()
                  for w, (i0, i1, i2) in zip(model.weights, micro_idx)]
            test = None
            if dataset.x_test is not None and with_test:
                lt = model.forward(dataset.x_test)
                tl = torch.nn.functional.cross_entropy(lt.reshape(-1, lt.shape[-1]), dataset.y_test.repeat(K),
                                                       reduction="none").reshape(K, -1).mean(dim=1)
                acc = (lt.argmax(-1) == dataset.y_test[None, :]).float().mean(dim=1)
                test = (tl.cpu().numpy(), acc.cpu().numpy())
        for k in range(K):
            put(k, step, "dist2", -1, sum(d[k] for d in dist))
            put(k, step, "eval_loss", -1, eval_loss[k])
            put(k, step, "eval_grad_norm", -1, math.sqrt(sum(g[k] for g in egn)))
            for l in range(model.n_layers):
                put(k, step, "dist2", l, dist[l][k])
                put(k, step, "act_rms", l, act[l][k])
                put(k, step, "act_delta_rms", l, dact[l][k])
                put(k, step, "eval_grad_norm", l, math.sqrt(egn[l][k]))
                for j in range(N_MICRO):
                    put(k, step, "w", l * 1000 + j, wv[l][k, j])
            if test is not None:
                put(k, step, "test_loss", -1, test[0][k])
                put(k, step, "test_acc", -1, test[1][k])

    snapshot(0, with_test=False)  # the initialisation: displacements and progress are measured from it
    loss_limit = torch.as_tensor([DIVERGENCE_FACTOR * max(r["value"][r["metric"].index("eval_loss")], 1e-12)
                                  for r in rows], dtype=torch.float32, device=device)
    loss_acc = torch.zeros(K, device=device)
    loss_cnt = 0
    def new_order():
        return torch.stack([torch.randperm(n, generator=g) for g in gens])  # (K or 1, n)

    perm = new_order()
    pos = 0
    n_logs = 0
    any_dead = False
    live_lr = base_lr  # base_lr with 0 for diverged members
    for step in range(1, n_steps + 1):
        if pos + c0.batch_size > n:
            perm, pos = new_order(), 0
        idx = perm[:, pos: pos + c0.batch_size].to(dataset.x_train.device)
        pos += c0.batch_size
        if per_member:
            x, y = dataset.x_train[idx], dataset.y_train[idx]  # (K, B, d_in), (K, B)
        else:
            x, y = dataset.x_train[idx[0]], dataset.y_train[idx[0]]
        logits, pre = model.forward(x, keep=True)
        losses, dlogits = model.losses(logits, y)
        finite = losses < loss_limit  # False for NaN, inf and a loss past DIVERGENCE_FACTOR x its start
        if any_dead or not bool(finite.all()):  # the common case costs two small ops
            newly = alive & ~finite
            if newly.any():
                for k in torch.nonzero(newly).flatten().tolist():
                    div_step[k] = step
                alive &= finite
                any_dead = True
                live_lr = base_lr * alive.to(base_lr.dtype)
            # a diverged member gets no gradient and lr 0; its weights may be NaN, which no other
            # member ever reads (members only share inputs), so no clean-up pass is needed
            dlogits = torch.where(alive.view(K, 1, 1), dlogits, torch.zeros((), dtype=dlogits.dtype, device=device))
        lr_now = live_lr * float(sched[step - 1])
        log_now = step % c0.log_every == 0 or step == n_steps
        if adam is None and not log_now:
            model.backward(x, pre, dlogits, step_size=lr_now)  # SGD fused into the input-layer GEMM
        else:
            grads = model.backward(x, pre, dlogits)
            for l, (w, g) in enumerate(zip(model.weights, grads)):
                scale = (lr_now * model.lr_scale[l]).view(K, 1, 1)
                if adam is None:
                    w.addcmul_(scale, g, value=-1.0)
                else:
                    m, v = adam[l]
                    m.mul_(0.9).add_(g, alpha=0.1)
                    v.mul_(0.999).addcmul_(g, g, value=0.001)
                    mh = m / (1 - 0.9**step)
                    vh = v / (1 - 0.999**step)
                    w -= scale * mh / (vh.sqrt() + 1e-8)
        loss_acc += torch.where(alive, losses, torch.full_like(losses, float("nan"))) if any_dead else losses
        loss_cnt += 1
        if log_now:
            n_logs += 1
            with torch.no_grad():
                mean_loss = (loss_acc / loss_cnt).cpu().numpy()
                gn = [g.pow(2).sum(dim=(1, 2)).sqrt().cpu().numpy() for g in grads]
            lrv = lr_now.cpu().numpy()
            for k in range(K):
                put(k, step, "train_loss", -1, mean_loss[k])
                put(k, step, "lr", -1, lrv[k] if alive[k] else float(base_lr[k]) * float(sched[step - 1]))
                for l in range(model.n_layers):
                    put(k, step, "grad_norm", l, gn[l][k])
            snapshot(step, with_test=n_logs % c0.eval_every == 0 or step == n_steps)
            loss_acc.zero_()
            loss_cnt = 0
        if progress is not None:
            progress.update(1)
        if not alive.any():
            break
    secs = time.perf_counter() - started
    out = []
    for k, c in enumerate(configs):
        r = rows[k]
        last = {m: v for m, l_, v in zip(r["metric"], r["layer"], r["value"]) if l_ == -1}
        status = "diverged" if div_step[k] is not None else "finished"
        out.append(RunOutcome(c, status, div_step[k], r, secs / K, last))
    return out


def config_grid(params, widths, lrs, seeds, **common) -> list[RunConfig]:
    """Every combination, as RunConfigs."""
    return [RunConfig(param=p, width=int(w), lr=float(lr), seed=int(s), **common)
            for p in params for w in widths for s in seeds for lr in lrs]

