r"""Train a stack of K runs (same width, parametrization, data; own learning rate and seed) and log
the trajectories the theory talks about.

Logged every ``log_every`` steps, per run, as rows ``(run_id, step, epoch, metric, layer, value)``:

==================  =============================================================================
``train_loss``      mean mini-batch loss since the previous log
``test_loss/acc``   on the test split, every ``eval_every`` logs and at the end (where a test split exists;
                    ``eval_every=0``: never)
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
evaluation loss, is recorded as ``diverged`` with its step (the step whose minibatch loss showed it);
its learning rate is set to 0 and the other runs of the stack go on unchanged. The last update has
no minibatch after it: a run whose final evaluation loss fails the same test, or whose weights are
no longer finite, is recorded as diverged at the last step.

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
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from sde_scales import seeds
from sde_scales import schedules
from sde_scales.errors import InvalidArgumentError
from sde_scales.parametrization import by_name
from sde_scales.train.data import DATASET_NAMES
from sde_scales.train.model import StackedMLP
from sde_scales.train.optim import MuOptimizer

__all__ = ["Checkpointing", "RunConfig", "RunOutcome", "check_precision", "train_stack", "resolve_device", "N_MICRO"]

#: Individual weights logged per layer.
N_MICRO = 4
#: A run whose minibatch loss exceeds this multiple of its initial evaluation loss has diverged: a
#: loss 100 times its starting value is no training run making progress, and past it float32
#: arithmetic soon overflows (a run "finished" at a loss of 1e19 is not a result).
DIVERGENCE_FACTOR = 100.0
#: The largest float32: learning rates and weights are float32 in the trainer.
FLOAT32_MAX = float(np.finfo(np.float32).max)


#: Learning-rate shapes by name (each ``f(n_steps, peak, **kw)`` -> per-step array).
SCHEDULES = {"constant": schedules.constant, "cosine": schedules.cosine, "wsd": schedules.wsd,
             "step": schedules.step, "eight_one_one": schedules.eight_one_one}

#: Fields added after stores were first written, with the default that keeps an old run id.
_ADDED_FIELDS = {"data_order": "shared", "lr_width": 0, "base_width": 0, "precision": "fp32", "compile": False}

#: Arithmetic of the GEMMs by name: ``fp32``; ``tf32`` (CUDA matmuls with TF32 inputs, fp32
#: accumulate; refused for runs on the CPU, where it would be fp32); ``bf16`` (GEMM operands cast to bfloat16, fp32 results,
#: weights and updates; runs on the CPU too, slowly). Part of the run id: the numbers differ.
PRECISIONS = ("fp32", "tf32", "bf16")


def check_precision(configs, device) -> None:
    """Refuse ``precision='tf32'`` for runs on a device other than CUDA: it sets CUDA's matmul mode,
    so elsewhere the runs would train in fp32 and be stored as tf32 runs (under another run id)."""
    if not str(device).startswith("cuda") and any(c.precision == "tf32" for c in configs):
        raise InvalidArgumentError(f"precision='tf32' sets CUDA's matmul mode, and these runs train on {device}, where "
                                   f"they would train in fp32 and be stored as tf32 runs; leave --precision out "
                                   f"(fp32), or train on a GPU (--device cuda)")


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
    lr_width: int = 0
    base_width: int = 0
    precision: str = "fp32"
    compile: bool = False

    def __post_init__(self) -> None:
        """Every field checked here, so that what is stored is what runs (a run refused now, not after
        its data loaded in a worker)."""
        ints = ("width", "seed", "depth", "d_in", "n_train", "data_seed", "batch_size", "log_every", "eval_every",
                "lr_width", "base_width")
        for name in ints:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise InvalidArgumentError(f"{name}={v!r}; give a whole number")
        for name in ("lr", "epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v):
                raise InvalidArgumentError(f"{name}={v!r}; give a finite number")
        if self.lr < 0:
            raise InvalidArgumentError(f"lr={self.lr!r}; learning rates must be finite and >= 0")
        if self.lr > FLOAT32_MAX:
            raise InvalidArgumentError(f"lr={self.lr!r} is past the largest float32 ({FLOAT32_MAX:.3g}), the trainer's "
                                       f"arithmetic: it would train at an infinite rate; give a smaller learning rate")
        for name in ("width", "depth", "d_in", "n_train", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise InvalidArgumentError(f"{name}={getattr(self, name)}; it must be at least 1")
        if self.lr_width < 0:
            raise InvalidArgumentError(f"lr_width={self.lr_width}; give the width whose per-layer learning rates to use "
                                       f"at every width, or 0 for each run's own width")
        if self.base_width < 0:
            raise InvalidArgumentError(f"base_width={self.base_width}; give the width of the base model at which the "
                                       f"learning rates are meant (as in mup), or 0 for base width 1")
        if self.seed < 0 or self.data_seed < 0:
            raise InvalidArgumentError(f"seed={self.seed}, data_seed={self.data_seed}; seeds must be >= 0")
        if self.batch_size > self.n_train:
            raise InvalidArgumentError(f"batch_size={self.batch_size} exceeds n_train={self.n_train}; a batch cannot be "
                                       f"larger than the training set: lower batch_size or raise n_train")
        if self.epochs <= 0:
            raise InvalidArgumentError(f"epochs={self.epochs}; it must be positive")
        if self.n_steps() < 1:  # was trained as one step without a word
            raise InvalidArgumentError(f"epochs={self.epochs} of {self.n_train} samples in batches of {self.batch_size} "
                                       f"is {self.epochs * self.n_train / self.batch_size:.3g} steps, which rounds to "
                                       f"none; give epochs >= {self.batch_size / self.n_train:.3g} (one step)")
        if self.eval_every < 0:
            raise InvalidArgumentError(f"eval_every={self.eval_every}; give the number of logs between test-split "
                                       f"evaluations, or 0 for none")
        if self.data_order not in ("shared", "seed"):
            raise InvalidArgumentError(f"data_order={self.data_order!r}; use 'shared' (one minibatch order per stack) "
                                       f"or 'seed' (each run its own order, from its seed)")
        if not isinstance(self.compile, (bool, np.bool_)):
            raise InvalidArgumentError(f"compile={self.compile!r}; give true or false")
        if self.precision not in PRECISIONS:
            raise InvalidArgumentError(f"precision={self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if self.optimizer not in ("sgd", "adam"):
            raise InvalidArgumentError(f"optimizer={self.optimizer!r}; use sgd or adam")
        if self.dataset not in DATASET_NAMES:
            raise InvalidArgumentError(f"dataset={self.dataset!r}; use one of {', '.join(DATASET_NAMES)}")
        if self.schedule not in SCHEDULES:
            raise InvalidArgumentError(f"schedule={self.schedule!r}; use one of {', '.join(SCHEDULES)}")
        if not isinstance(self.schedule_kw, tuple) or any(not (isinstance(kv, tuple) and len(kv) == 2)
                                                          for kv in self.schedule_kw):
            raise InvalidArgumentError(f"schedule_kw={self.schedule_kw!r}; give a tuple of (name, value) pairs")
        by_name(self.param, L=self.depth, optimizer=self.optimizer)  # validates the name
        try:  # the schedule with its arguments, now rather than inside a worker
            self.schedule_factors()
        except TypeError as exc:
            raise InvalidArgumentError(f"schedule {self.schedule!r} with {dict(self.schedule_kw)}: {exc}") from None

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
        return int(round(self.epochs * self.n_train / self.batch_size))

    def schedule_factors(self) -> np.ndarray:
        """The schedule's factor for every update ``0 .. n_steps - 1``: update k uses ``lr * factor[k]``."""
        return SCHEDULES[self.schedule](self.n_steps(), 1.0, **dict(self.schedule_kw))


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
    rng = seeds.rng(int(seed), "train.micro_indices", layer)
    return np.stack([rng.integers(0, shape[0], N_MICRO), rng.integers(0, shape[1], N_MICRO)], axis=1)


#: Elements (members x batch x width) of one chunk of a stack: 2^20 floats (4 MB) keep every
#: temporary in cache on a CPU (3.6x faster than one 134 MB tensor at 128 members, width 4,096,
#: batch 64); a GPU wants large kernels.
CHUNK_ELEMENTS = {"cpu": 1 << 20, "cuda": 1 << 28}


def member_chunks(K: int, batch: int, width: int, device: str = "cpu") -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` cutting K members into chunks of at most ``CHUNK_ELEMENTS`` elements
    per (members x batch x width) tensor; at least one member per chunk."""
    budget = CHUNK_ELEMENTS["cuda" if str(device).startswith("cuda") else "cpu"]
    size = max(1, budget // max(1, batch * width))
    return [(a, min(K, a + size)) for a in range(0, K, size)]


#: Test-set elements (members x test rows x width) evaluated at once: the test split is cut into
#: row chunks of this size, so that evaluation never holds all members' activations on the whole
#: test set (30 members x 10,000 images x width 10,000 would be 12 GB per layer in fp32).
EVAL_ELEMENTS = {"cpu": 1 << 22, "cuda": 1 << 28}


#: Masks of the divergence check on every step without reading them (no host sync): ``None`` means
#: on CUDA only. The tests set it on the CPU to check that both paths give the same numbers.
SYNC_FREE: bool | None = None


@dataclass(frozen=True)
class Checkpointing:
    """Save a stack's state every ``every_steps`` steps (at the first logged step at or after each
    multiple) to ``path``, and resume from it when it exists and belongs to the same runs."""

    path: str
    every_steps: int

    def __post_init__(self) -> None:
        if self.every_steps < 1:
            raise InvalidArgumentError(f"checkpoint every {self.every_steps} steps; give at least 1")


def _load_checkpoint(path, run_ids: list[str]):
    """The state saved at ``path`` for these runs, or None (absent, from other runs, or unreadable:
    such a file is moved aside with a message, never deleted)."""
    import os
    import sys

    if not os.path.exists(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only: no pickled code
    except Exception as exc:  # a truncated or garbage file: torch raises many kinds
        why = f"unreadable ({str(exc)[:80]})"
    else:
        if not isinstance(state, dict) or state.get("version") != 1:
            why = "not a checkpoint of this version"
        elif state.get("run_ids") != run_ids:
            why = "saved for other runs"
        else:
            print(f"checkpoint {path}: resuming from its checkpoint at step {state['step']}", file=sys.stderr)
            return state
    aside = f"{path}.damaged"
    os.replace(path, aside)
    print(f"checkpoint {path}: {why}; moved to {aside}, the stack starts from step 0", file=sys.stderr)
    return None


def _save_checkpoint(path, state: dict) -> None:
    from sde_scales.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train_stack(configs: list[RunConfig], dataset, device: str = "cpu", progress=None,
                checkpoint: Checkpointing | None = None) -> list[RunOutcome]:
    """Train runs that share a ``stack_key`` together; returns one outcome per run.

    With ``checkpoint``, the stack's state (weights, optimizer state, data order, logged rows,
    divergence flags) is saved every ``checkpoint.every_steps`` steps, and a stack that finds its
    checkpoint resumes from it: the outcome is bit-identical to an uninterrupted run (tested).

    On a GPU no step waits for the device: divergence is tracked on the device and the host reads
    it, with the other metrics, only at logged steps. (On the CPU, where reading a value costs no
    wait, a healthy step skips the masking.)"""
    if not configs:
        return []
    check_precision(configs, device)
    with _matmul_precision(configs[0].precision, str(device).startswith("cuda")):  # restored on any exit
        return _train_stack(configs, dataset, device, progress, checkpoint)


def _train_stack(configs, dataset, device, progress, checkpoint) -> list[RunOutcome]:
    key = configs[0].stack_key()
    if any(c.stack_key() != key for c in configs):
        raise InvalidArgumentError("train_stack needs runs that differ only in lr and seed")
    c0 = configs[0]
    started = time.perf_counter()
    p = by_name(c0.param, L=c0.depth, optimizer=c0.optimizer)
    K = len(configs)
    cuda = str(device).startswith("cuda")
    model = StackedMLP(p, K, dataset.d_in, c0.width, dataset.n_classes, [c.seed for c in configs], device=device,
                       lr_width=c0.lr_width or None, base_width=c0.base_width or None,
                       gemm_dtype=torch.bfloat16 if c0.precision == "bf16" else None)
    regression = getattr(dataset, "task", "classification") == "regression"
    loss_fn = model.mse_losses if regression else model.losses
    base_lr = torch.tensor([c.lr for c in configs], dtype=torch.float32, device=device)
    n_steps = c0.n_steps()
    if dataset.n_train != c0.n_train or dataset.d_in != c0.d_in:
        raise InvalidArgumentError(
            f"the data loaded has {dataset.n_train} training samples of dimension {dataset.d_in}, the runs say "
            f"n_train={c0.n_train}, d_in={c0.d_in}: steps and epochs would be wrong and the stored row would not be "
            f"what ran; load the data with the runs' sizes (or set n_train and d_in to the data's)")
    sched = c0.schedule_factors()
    alive = torch.ones(K, dtype=torch.bool, device=device)
    div_t = torch.zeros(K, dtype=torch.int64, device=device)  # step of divergence, 0: none
    opt = MuOptimizer(c0.optimizer, model.weights, model.lr_scale)
    n = dataset.n_train
    per_member = c0.data_order == "seed"
    if per_member:  # each run its own minibatch order, a function of its seed and data_seed only
        gens = [torch.Generator().manual_seed(seeds.int_seed(c.seed, "train.data_order", c0.data_seed)) for c in configs]
    else:
        gens = [torch.Generator().manual_seed(int(c0.data_seed))]
    probe = dataset.x_train[: min(256, n)]
    probe_y = dataset.y_train[: min(256, n)]
    # members in chunks of bounded size: every op then works on tensors that fit in cache, and a
    # member's numbers do not depend on the chunking (batched GEMMs treat members separately)
    chunks = member_chunks(K, max(c0.batch_size, probe.shape[0]), max(c0.width, dataset.n_classes), device)
    views = [model.view(a, b) for a, b in chunks]
    if c0.compile:  # torch.compile the forward and backward passes of every chunk (opt-in: part of the run id,
        # since fused kernels may round differently; the first steps pay the compilation)
        for v in views:
            v.forward = torch.compile(v.forward, dynamic=False)
            v.backward = torch.compile(v.backward, dynamic=False)
    # the evaluation batch seen by each member of a chunk (a view, no copy): the per-member GEMMs then
    # give each member the same numbers whatever the chunking, and contiguous activations
    probes = [probe.expand(b - a, *probe.shape) for a, b in chunks]
    with torch.no_grad():
        pre0 = [v.forward(pb, keep=True)[1] for v, pb in zip(views, probes)]
    micro = [[_micro_indices(s, c.seed, l) for l, s in enumerate(model.shapes)] for c in configs]
    # gather index tensors per layer: member, row, column of each logged coordinate
    kk = torch.arange(K).repeat_interleave(N_MICRO)
    micro_idx = []
    for l in range(model.n_layers):
        ab = np.concatenate([micro[k][l] for k in range(K)])
        micro_idx.append((kk, torch.as_tensor(ab[:, 0]), torch.as_tensor(ab[:, 1])))
    rows = [{"step": [], "epoch": [], "metric": [], "layer": [], "value": []} for _ in range(K)]
    eval_budget = EVAL_ELEMENTS["cuda" if cuda else "cpu"]

    def put(k, step, metric, layer, value):
        r = rows[k]
        r["step"].append(step)
        r["epoch"].append(step * c0.batch_size / n)
        r["metric"].append(metric)
        r["layer"].append(layer)
        r["value"].append(float(value))

    def test_metrics(v, kb):
        """Mean test loss and accuracy per member of a chunk, over row chunks of the test split."""
        xt, yt = dataset.x_test, dataset.y_test
        nt = xt.shape[0]
        rows_at_once = max(1, eval_budget // max(1, kb * max(c0.width, dataset.n_classes)))
        loss_sum = torch.zeros(kb, dtype=torch.float64, device=xt.device)
        correct = torch.zeros(kb, dtype=torch.float64, device=xt.device)
        for r0 in range(0, nt, rows_at_once):
            xs, ys = xt[r0: r0 + rows_at_once], yt[r0: r0 + rows_at_once]
            # each member its own (expanded, not copied) view of the test inputs: per-member
            # GEMMs, so a member's numbers do not depend on the chunk it is in
            lt = v.forward(xs.expand(kb, *xs.shape))
            if regression:
                loss_sum += (lt - ys.view(1, -1, 1)).pow(2).sum(dim=(1, 2)).double()
            else:
                loss_sum += torch.nn.functional.cross_entropy(lt.reshape(-1, lt.shape[-1]), ys.repeat(kb),
                                                              reduction="none").view(kb, -1).double().sum(dim=1)
                correct += (lt.argmax(-1) == ys[None, :]).double().sum(dim=1)
        return (loss_sum / nt).cpu().numpy(), ((correct / nt).cpu().numpy() if not regression else np.full(kb, np.nan))

    def snapshot(step, with_test):
        """Log what is defined at any step, the initialisation included: evaluation-batch metrics,
        distances and activations, tracked weights, and the test split when asked."""
        nl = model.n_layers
        eval_loss, egn, dist, act, dact = (np.empty(K), np.empty((nl, K)), np.empty((nl, K)), np.empty((nl, K)),
                                           np.empty((nl, K)))
        test = (np.empty(K), np.empty(K)) if dataset.x_test is not None and with_test and c0.eval_every else None
        with torch.no_grad():
            for (a, b), v, p0, pb in zip(chunks, views, pre0, probes):
                lp, pre = v.forward(pb, keep=True)
                el, dlp = loss_fn(lp, probe_y)
                eval_loss[a:b] = el.cpu().numpy()
                for l, (g, w, w0, h, h0) in enumerate(zip(v.backward(pb, pre, dlp), v.weights, v.initial, pre, p0)):
                    egn[l, a:b] = g.pow(2).sum(dim=(1, 2)).cpu().numpy()
                    dist[l, a:b] = ((w - w0) ** 2).sum(dim=(1, 2)).cpu().numpy()
                    act[l, a:b] = h.pow(2).mean(dim=(1, 2)).sqrt().cpu().numpy()
                    dact[l, a:b] = (h - h0).pow(2).mean(dim=(1, 2)).sqrt().cpu().numpy()
                if test is not None:
                    test[0][a:b], test[1][a:b] = test_metrics(v, b - a)
            wv = [w[i0.to(w.device), i1.to(w.device), i2.to(w.device)].view(K, N_MICRO).cpu().numpy()
                  for w, (i0, i1, i2) in zip(model.weights, micro_idx)]
        for k in range(K):
            put(k, step, "dist2", -1, dist[:, k].sum())
            put(k, step, "eval_loss", -1, eval_loss[k])
            put(k, step, "eval_grad_norm", -1, math.sqrt(egn[:, k].sum()))
            for l in range(nl):
                put(k, step, "dist2", l, dist[l, k])
                put(k, step, "act_rms", l, act[l, k])
                put(k, step, "act_delta_rms", l, dact[l, k])
                put(k, step, "eval_grad_norm", l, math.sqrt(egn[l, k]))
                for j in range(N_MICRO):
                    put(k, step, "w", l * 1000 + j, wv[l][k, j])
            if test is not None:
                put(k, step, "test_loss", -1, test[0][k])
                if not regression:
                    put(k, step, "test_acc", -1, test[1][k])

    def new_order():
        return torch.stack([torch.randperm(n, generator=g) for g in gens])  # (K or 1, n)

    run_ids = [c.run_id for c in configs]
    state = _load_checkpoint(checkpoint.path, run_ids) if checkpoint is not None else None
    if state is None:
        snapshot(0, with_test=False)  # the initialisation: displacements and progress are measured from it
        perm = new_order()
        pos, n_logs, first = 0, 0, 1
    else:  # resume: everything the loop reads, as it was after the saved step
        with torch.no_grad():
            for w, sw in zip(model.weights, state["weights"]):
                w.copy_(sw)
            if opt.state is not None:
                for (m, v_), (sm, sv) in zip(opt.state, state["opt_state"]):
                    m.copy_(sm)
                    v_.copy_(sv)
        rows = state["rows"]
        alive.copy_(state["alive"])
        div_t.copy_(state["div"])
        for g, gs in zip(gens, state["gens"]):
            g.set_state(gs)
        perm, pos, n_logs, first = state["perm"], state["pos"], state["n_logs"], state["step"] + 1
    loss_limit = torch.as_tensor([DIVERGENCE_FACTOR * max(r["value"][r["metric"].index("eval_loss")], 1e-12)
                                  for r in rows], dtype=torch.float32, device=device)
    loss_acc = torch.zeros(K, device=device)
    loss_cnt = 0
    next_save = ((first - 1) // checkpoint.every_steps + 1) * checkpoint.every_steps if checkpoint else None
    zero = torch.zeros((), dtype=torch.float32, device=device)
    opt_views = [opt.chunk(a, b, v.weights) for (a, b), v in zip(chunks, views)]
    sync_free = cuda if SYNC_FREE is None else bool(SYNC_FREE)
    any_dead = False
    step = first - 1
    for step in range(first, n_steps + 1):
        if pos + c0.batch_size > n:
            perm, pos = new_order(), 0
        idx = perm[:, pos: pos + c0.batch_size].to(dataset.x_train.device)
        pos += c0.batch_size
        if per_member:
            x_all, y_all = dataset.x_train[idx], dataset.y_train[idx]  # (K, B, d_in), (K, B)
        else:
            x_all, y_all = dataset.x_train[idx[0]], dataset.y_train[idx[0]]
        factor = float(sched[step - 1])
        log_now = step % c0.log_every == 0 or step == n_steps
        gn = [] if log_now else None
        losses = torch.empty(K, device=device)
        for ci, ((a, b), v) in enumerate(zip(chunks, views)):
            x = x_all[a:b] if per_member else x_all
            y = y_all[a:b] if per_member else y_all
            logits, pre = v.forward(x, keep=True)
            lc, dlogits = loss_fn(logits, y)
            losses[a:b] = lc
            al = alive[a:b]  # a view: updating it updates alive
            finite = lc < loss_limit[a:b]  # False for NaN, inf and a loss past DIVERGENCE_FACTOR x its start
            # on a GPU the masks below always run on the device (reading `finite` would make the step wait
            # for it); on the CPU a read costs nothing and skips them while every member is healthy
            if sync_free or any_dead or not bool(finite.all()):
                newly = al & ~finite
                div_t[a:b] = torch.where(newly, step, div_t[a:b])
                al &= finite
                any_dead = any_dead or not sync_free  # on the CPU: a member of this chunk is (now) diverged
                # a diverged member gets no gradient and lr 0; its weights may be NaN, which no other
                # member ever reads (members only share inputs), so no clean-up pass is needed
                dlogits = torch.where(al.view(-1, 1, 1), dlogits, zero)
                lr_now = base_lr[a:b] * al.to(base_lr.dtype) * factor
            else:
                lr_now = base_lr[a:b] * factor  # the same numbers: x * 1.0 is exact
            if opt.kind == "sgd" and not log_now:
                v.backward(x, pre, dlogits, step_size=lr_now)  # SGD fused into the input-layer GEMM
                continue
            grads = v.backward(x, pre, dlogits)
            for l, g in enumerate(grads):
                opt_views[ci].step_layer(l, g, lr_now, step)
            if log_now:
                gn.append(torch.stack([g.pow(2).sum(dim=(1, 2)).sqrt() for g in grads]))  # (layers, members)
        loss_acc += torch.where(alive, losses, torch.full_like(losses, float("nan"))) if sync_free or any_dead else losses
        loss_cnt += 1
        if log_now:
            n_logs += 1
            with torch.no_grad():
                mean_loss = (loss_acc / loss_cnt).cpu().numpy()
                gnv = torch.cat(gn, dim=1).cpu().numpy()
            lrv = (base_lr * factor).cpu().numpy()
            for k in range(K):
                put(k, step, "train_loss", -1, mean_loss[k])
                put(k, step, "lr", -1, lrv[k])
                for l in range(model.n_layers):
                    put(k, step, "grad_norm", l, gnv[l, k])
            snapshot(step, with_test=bool(c0.eval_every) and (n_logs % c0.eval_every == 0 or step == n_steps))
            loss_acc.zero_()
            loss_cnt = 0
            if not bool(alive.any()):  # read at logged steps only
                break
            if checkpoint is not None and step >= next_save and step < n_steps:
                _save_checkpoint(checkpoint.path, {
                    "version": 1, "run_ids": run_ids, "step": step, "n_logs": n_logs, "pos": pos,
                    "perm": perm, "gens": [g.get_state() for g in gens], "rows": rows,
                    "alive": alive.cpu(), "div": div_t.cpu(),
                    "weights": [w.cpu() for w in model.weights],
                    "opt_state": None if opt.state is None else [(m.cpu(), v_.cpu()) for m, v_ in opt.state]})
                next_save = (step // checkpoint.every_steps + 1) * checkpoint.every_steps
        if progress is not None:
            progress.update(1)
    # each member's last logged value of every whole-network metric
    finals = [{m: v for m, l_, v in zip(r["metric"], r["layer"], r["value"]) if l_ == -1} for r in rows]
    div_steps = div_t.cpu().tolist()
    if step == n_steps:  # no minibatch loss follows the last update: its evaluation-batch loss and
        # displacement (the snapshot at n_steps) say whether it broke a member that was alive before it
        limits = loss_limit.cpu().tolist()
        for k, last in enumerate(finals):
            if div_steps[k] == 0 and not (math.isfinite(last["dist2"]) and last["eval_loss"] < limits[k]):
                div_steps[k] = n_steps
    secs = time.perf_counter() - started
    out = []
    for k, c in enumerate(configs):
        ds = int(div_steps[k]) or None
        out.append(RunOutcome(c, "diverged" if ds is not None else "finished", ds, rows[k], secs / K, finals[k]))
    return out


@contextmanager
def _matmul_precision(precision: str, cuda: bool):
    """CUDA's TF32 switch set for the stack (on for ``tf32`` runs, off otherwise) and restored after."""
    if not cuda:
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def config_grid(params, widths, lrs, seeds, **common) -> list[RunConfig]:
    """Every combination, as RunConfigs. Widths and seeds are passed as they are (a width of 64.5
    or a seed of 0.7 is refused by :class:`RunConfig`, not truncated)."""
    return [RunConfig(param=p, width=_whole_value(w), lr=float(lr), seed=_whole_value(s), **common)
            for p in params for w in widths for s in seeds for lr in lrs]


def _whole_value(v):
    """``v`` as an int where it is a whole number (numpy integers, 64.0), else as it is, for the
    config's own check to refuse."""
    if isinstance(v, (bool, np.bool_)):
        return v
    try:
        return int(v) if float(v) == int(v) else v
    except (TypeError, ValueError, OverflowError):
        return v

