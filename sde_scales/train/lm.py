r"""A small byte-level language model, trained under several learning-rate schedules: loss curves of
another model and data set, made on a CPU, for testing delay-law fits on curves they were not
written for.

The model is a pre-norm causal transformer (learned positions, ``n_layer`` blocks of multi-head
attention and a GELU MLP of width :math:`4d`, a final LayerNorm and an untied read-out over the 256
byte values), in PyTorch's standard parametrisation, trained with AdamW (:math:`\beta = (0.9,
0.95)`, weight decay 0.1, gradients clipped at norm 1), as small GPT-style language models are. The
training loss is the mean next-byte cross-entropy in nats.

A family is one initialisation and one data order trained under every schedule: update :math:`k`
of every schedule sees the same minibatch (windows drawn from ``SeedSequence([seed, k])``) and uses
the rate ``lr[k]`` of its own schedule. Runs whose schedules agree up to step :math:`d` agree
exactly up to it, so :func:`train_family` trains the first schedule (the trunk) once and starts
every other run from the trunk's state at the step where its schedule leaves the trunk's (a WSD
run from the start of its cooldown), as the stitched WSD curves of language-model studies are
made. The result is the same as training each run from scratch (asserted in the tests), for a
fraction of the work: a constant run and WSD cooldowns over 10, 20 and 40% of the steps cost 1.7
runs, not four.

Corpora: :func:`stdlib_corpus` reads the Python standard library's own source files (present
wherever Python is, so nothing is downloaded; its SHA-256 is reported, since it differs between
Python versions), :func:`file_corpus` any text files.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sde_scales.errors import DataFileError, InvalidArgumentError
from sde_scales.validation import is_integral

__all__ = ["Corpus", "LMConfig", "tiny_lm", "batch_starts", "file_corpus", "stdlib_corpus", "train_family"]

#: Folders of the standard library left out of :func:`stdlib_corpus`: installed packages (not the
#: standard library, and different on every machine) and test suites (large generated data).
SKIPPED_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test"})


@dataclass(frozen=True, eq=False)
class Corpus:
    """A byte corpus: ``data`` (uint8), where it came from and its SHA-256."""

    data: np.ndarray
    source: str
    sha256: str

    def __post_init__(self) -> None:
        if self.data.dtype != np.uint8 or self.data.ndim != 1:
            raise InvalidArgumentError(f"Corpus data of dtype {self.data.dtype} and shape {self.data.shape}; give a "
                                       f"1-d uint8 array of bytes")

    @property
    def n_bytes(self) -> int:
        return int(self.data.size)


def _corpus(chunks: list[bytes], source: str) -> Corpus:
    blob = b"\n".join(chunks)
    return Corpus(np.frombuffer(blob, dtype=np.uint8).copy(), source, hashlib.sha256(blob).hexdigest())


def file_corpus(paths) -> Corpus:
    """The bytes of ``paths`` (in the order given), joined by newlines.

    Raises
    ------
    DataFileError
        A path that cannot be read, or a corpus of under 4,096 bytes (too short to draw windows from).
    """
    chunks = []
    for p in map(Path, paths):
        try:
            chunks.append(p.read_bytes())
        except OSError as e:
            raise DataFileError(f"{p}: cannot read it as a corpus file ({e.strerror}); give readable text files") from e
    c = _corpus(chunks, ", ".join(str(p) for p in paths))
    if c.n_bytes < 4096:
        raise DataFileError(f"{c.source}: {c.n_bytes} bytes; a corpus needs at least 4,096 (give more or longer files)")
    return c


def stdlib_corpus(root: str | Path | None = None) -> Corpus:
    """The ``.py`` files of the Python standard library (``root``, default this interpreter's), sorted
    by their path relative to it, without :data:`SKIPPED_DIRS`: about 20 MB of real text that needs no
    download."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    files = sorted((p for p in root.rglob("*.py") if not (set(p.relative_to(root).parts[:-1]) & SKIPPED_DIRS)),
                   key=lambda p: p.relative_to(root).as_posix())
    if not files:
        raise DataFileError(f"{root}: no .py files there; give the standard library's folder or use file_corpus")
    c = file_corpus(files)
    return Corpus(c.data, f"Python standard library at {root} ({len(files)} files)", c.sha256)


@dataclass(frozen=True)
class LMConfig:
    """The model and its training, apart from the schedule.

    ``d_model`` (divisible by ``n_head``), ``n_layer``, ``n_head``, ``context`` (bytes per window),
    ``batch`` (windows per update), ``weight_decay``, ``clip`` (gradient norm; 0 for none),
    ``seed`` (initialisation and data order), ``log_every`` (updates per logged mean loss),
    ``threads`` (torch's CPU threads while training: pinned, since the attention's and the
    normalisations' reductions are split by thread count, and 1 and 2 threads give losses 4.8e-8
    apart after 60 updates, which training then grows; with the count pinned the numbers do not
    depend on the machine's or the caller's thread setting; None leaves torch's count), ``device``
    (``"cpu"``, ``"cuda"``, ``"cuda:<k>"`` or ``"mps"``: where the model trains; the initialisation
    and the data order are drawn on the CPU, so a GPU run starts from the same weights and sees the
    same windows, and its losses differ from the CPU's at float rounding, which training grows)."""

    d_model: int = 96
    n_layer: int = 2
    n_head: int = 4
    context: int = 64
    batch: int = 16
    weight_decay: float = 0.1
    clip: float = 1.0
    seed: int = 0
    log_every: int = 10
    threads: int | None = 2
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layer", "n_head", "context", "batch", "log_every"):
            v = getattr(self, name)
            if not is_integral(v, 1):
                raise InvalidArgumentError(f"LMConfig {name}={v!r}; give a positive integer")
        if self.d_model % self.n_head:
            raise InvalidArgumentError(f"LMConfig d_model={self.d_model} is not divisible by n_head={self.n_head}; "
                                       f"give a multiple of it")
        for name in ("weight_decay", "clip"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise InvalidArgumentError(f"LMConfig {name}={v!r}; give a finite number >= 0")
        if self.threads is not None and not is_integral(self.threads, 1):
            raise InvalidArgumentError(f"LMConfig threads={self.threads!r}; give a positive integer or None")
        if not (isinstance(self.device, str) and re.fullmatch(r"cpu|cuda(:\d+)?|mps", self.device)):
            raise InvalidArgumentError(f"LMConfig device={self.device!r}; give 'cpu', 'cuda', 'cuda:<k>' or 'mps'")
        if not is_integral(self.seed):
            raise InvalidArgumentError(f"LMConfig seed={self.seed!r}; give an integer >= 0")


def batch_starts(seed: int, step: int, n_windows: int, batch: int) -> np.ndarray:
    """The first byte of each window of update ``step``: ``batch`` draws from ``[0, n_windows)`` by a
    generator seeded with ``SeedSequence([seed, step])``, so every schedule's update ``step`` sees
    the same data whatever ran before it."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(step)])).integers(0, n_windows, size=batch)


def _torch():
    import torch  # the trainer's dependency (pip install -e .[train])
    return torch


def tiny_lm(config: LMConfig):
    """The model of ``config``, initialised from ``torch.manual_seed(config.seed)`` (in a forked random
    state: torch's global one is untouched): a module whose call maps byte indices
    ``(batch, T <= context)`` to next-byte logits ``(batch, T, 256)``."""
    torch = _torch()
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.att = nn.MultiheadAttention(d, h, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x, mask):
            h = self.ln1(x)
            x = x + self.att(h, h, h, attn_mask=mask, need_weights=False)[0]
            return x + self.mlp(self.ln2(x))

    class Model(nn.Module):
        def __init__(self, c: LMConfig):
            super().__init__()
            self.emb = nn.Embedding(256, c.d_model)
            self.pos = nn.Parameter(0.02 * torch.randn(c.context, c.d_model))
            self.blocks = nn.ModuleList([Block(c.d_model, c.n_head) for _ in range(c.n_layer)])
            self.ln = nn.LayerNorm(c.d_model)
            self.out = nn.Linear(c.d_model, 256)

        def forward(self, idx):
            t = idx.shape[1]
            mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=idx.device), 1)
            x = self.emb(idx) + self.pos[:t]
            for b in self.blocks:
                x = b(x, mask)
            return self.out(self.ln(x))

    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(int(config.seed))
        return Model(config)


def _device(torch, name: str):
    """``torch.device(name)`` where torch can use it, else InvalidArgumentError naming the device and
    what torch sees."""
    if name.startswith("cuda"):
        k = int(name.split(":")[1]) if ":" in name else 0
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if k >= have:
            raise InvalidArgumentError(f"LMConfig device={name!r}, but torch sees {have} CUDA device(s); use "
                                       f"device='cpu'{'' if not have else f' or cuda:0 .. cuda:{have - 1}'}")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InvalidArgumentError("LMConfig device='mps', but torch's MPS backend is not available; use device='cpu'")
    return torch.device(name)


def lm_parameters(config: LMConfig) -> int:
    r"""Number of parameters of :func:`tiny_lm` of ``config``, counted without building it: with
    :math:`d` = ``d_model``, :math:`L` = ``n_layer``, :math:`T` = ``context`` and 256 byte values,
    :math:`256 d` (embedding) :math:`+ T d` (positions) :math:`+ L (12 d^2 + 13 d)` (per block:
    attention :math:`4 d^2 + 4 d`, MLP :math:`8 d^2 + 5 d`, two layer norms :math:`4 d`)
    :math:`+ 2 d` (final norm) :math:`+ 256 d + 256` (readout)."""
    d = int(config.d_model)
    return 256 * d + config.context * d + config.n_layer * (12 * d * d + 13 * d) + 2 * d + 256 * d + 256


def lm_memory_bytes(config: LMConfig, corpus_bytes: int, snapshots: int) -> int:
    r"""Bytes :func:`train_family` holds at least, in float32 (a floor: the allocator's slack and
    torch's workspaces come on top).

    - the parameters :math:`P` (:func:`lm_parameters`) four times (weights, gradients, AdamW's two
      moments) and three times per kept snapshot (weights and moments): :math:`4 P (4 + 3 s)`;
    - activations kept for the backward pass, per block about :math:`16 B T d` values (two norms'
      inputs, queries, keys, values, the attention's output, the MLP's :math:`4 d` input and output
      and two residual streams) and :math:`2 B h T^2` (attention weights and their softmax), with
      :math:`B` = ``batch``, :math:`h` = ``n_head``, plus :math:`3 \cdot 256 B T` for the logits,
      their softmax and its gradient;
    - the corpus on the device as int64: :math:`8 N`."""
    B, T, d, h = config.batch, config.context, config.d_model, config.n_head
    act = config.n_layer * (16 * B * T * d + 2 * B * h * T * T) + 3 * 256 * B * T
    return 4 * lm_parameters(config) * (4 + 3 * snapshots) + 4 * act + 8 * int(corpus_bytes)


def _check_room(config: LMConfig, device, corpus_bytes: int, snapshots: int) -> None:
    """Refuse a model and run that cannot be held (:func:`lm_memory_bytes`, all of it on the
    device), before any weight is drawn (:func:`sde_scales.train.model.check_room`)."""
    from sde_scales.train.model import check_room  # with torch, which this module imports late

    check_room(0, lm_memory_bytes(config, corpus_bytes, snapshots), device,
               f"the language model of d_model={config.d_model}, n_layer={config.n_layer}, context={config.context}, "
               f"batch={config.batch} ({lm_parameters(config):,} parameters, {snapshots} snapshot(s) kept)",
               "give a smaller d_model, n_layer, context or batch (LMConfig)")


def _check_schedules(schedules: dict) -> tuple[dict, int]:
    if not schedules:
        raise InvalidArgumentError("no schedules; give {name: learning rate per update}")
    out, n = {}, None
    for name, lr in schedules.items():
        a = np.asarray(lr, dtype=float)
        if a.ndim != 1 or a.size < 1:
            raise InvalidArgumentError(f"schedule {name!r} of shape {a.shape}; give one learning rate per update")
        bad = np.flatnonzero(~(np.isfinite(a) & (a >= 0)))
        if bad.size:
            raise InvalidArgumentError(f"schedule {name!r}: learning rate {float(a[bad[0]])!r} at update {bad[0]}; give "
                                       f"finite rates >= 0")
        if n is not None and a.size != n:
            raise InvalidArgumentError(f"schedule {name!r} has {a.size} updates and the first has {n}; give schedules "
                                       f"of one length")
        n = a.size
        out[str(name)] = a
    return out, int(n)


def train_family(corpus: Corpus, schedules: dict, config: LMConfig = LMConfig(), *, branch: bool = True,
                 progress: bool = False) -> dict:
    r"""Train one model per schedule from one initialisation and one data order.

    Parameters
    ----------
    corpus : Corpus
    schedules : dict of str -> array
        The learning rate of every update ``0 .. n - 1``, one length for all; the first is the trunk.
    config : LMConfig
    branch : bool
        Start each later run from the trunk's state at the first update where its rate differs
        from the trunk's (default); False trains every run from the start (the same numbers, at the
        full cost: for tests).
    progress : bool
        A tqdm bar over all updates trained.

    Returns
    -------
    dict of str -> dict
        Per schedule: ``step`` (logged steps :math:`s = L, 2L, \dots` up to :math:`n`, :math:`L` =
        ``log_every``; the row at :math:`s` is the mean minibatch loss of updates
        :math:`s - L .. s - 1`), ``loss``, ``lr`` (the rate at each logged step, the last one
        repeated at :math:`n`), ``schedule`` (the rate at every step :math:`0..n`), and
        ``branched_at`` (the update it left the trunk at: 0 for the trunk and with
        ``branch=False``, :math:`n` for a schedule equal to the trunk's, whose run is the trunk's).

    Raises
    ------
    InvalidArgumentError
        Schedules of different lengths, a negative or non-finite rate, a corpus shorter than two
        windows, ``n`` below ``log_every``, a device torch cannot use here, or a model and run that
        do not fit in its memory (:func:`lm_memory_bytes`).
    FloatingPointError
        A run whose loss is not finite (diverged): the schedule's name, the update and the loss.
    """
    torch = _torch()
    scheds, n = _check_schedules(schedules)
    if corpus.n_bytes < 2 * (config.context + 1):
        raise InvalidArgumentError(f"corpus of {corpus.n_bytes} bytes; give at least {2 * (config.context + 1)} "
                                   f"(two windows of context + 1)")
    if n < config.log_every:
        raise InvalidArgumentError(f"{n} updates, fewer than log_every={config.log_every}; give longer schedules")
    device = _device(torch, config.device)
    names = list(scheds)
    trunk = scheds[names[0]]
    leave = {k: (int(np.flatnonzero(scheds[k] != trunk)[0]) if np.any(scheds[k] != trunk) else n) if branch else 0
             for k in names[1:]}
    snap_at = sorted({d for d in leave.values() if 0 < d < n})
    _check_room(config, device, corpus.n_bytes, len(snap_at))  # before the corpus or a weight is on it
    data = torch.from_numpy(corpus.data.astype(np.int64)).to(device)
    n_windows = corpus.n_bytes - config.context
    offsets = torch.arange(config.context + 1, device=device)
    total = n + sum(n - d for d in leave.values())
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, desc="training", unit="upd")
    logged_steps = np.arange(config.log_every, n + 1, config.log_every)

    def run(name, lr, state, start, snapshots=()):
        model = tiny_lm(config).to(device)  # initialised on the CPU: the same weights on every device
        opt = torch.optim.AdamW(model.parameters(), lr=float(lr[0]), betas=(0.9, 0.95), eps=1e-8,
                                weight_decay=config.weight_decay)
        losses = np.full(n, np.nan)
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            losses[:start] = state["losses"][:start]
        kept = {}
        # Blocks end at every logged step and snapshot. Within a block the losses stay on the
        # device and the windows of all its updates go over in one copy, so a GPU is not made to
        # wait for the host at every update (a float() of the loss, or a copy from host memory,
        # each synchronise); the losses come back, and are checked, once per block.
        cuts = sorted({start, n, *(int(s) for s in logged_steps if start < s < n),
                       *(s for s in snapshots if start < s < n)})
        for a, b in zip(cuts[:-1], cuts[1:]):
            if a in snapshots:
                kept[a] = copy.deepcopy({"model": model.state_dict(), "opt": opt.state_dict(), "losses": losses})
            starts = torch.from_numpy(np.stack([batch_starts(config.seed, k, n_windows, config.batch)
                                                for k in range(a, b)])).to(device)
            block = []
            for j, k in enumerate(range(a, b)):
                win = data[starts[j, :, None] + offsets]
                logits = model(win[:, :-1])
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), win[:, 1:].reshape(-1))
                block.append(loss.detach())
                for g in opt.param_groups:
                    g["lr"] = float(lr[k])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
                opt.step()
            losses[a:b] = torch.stack(block).cpu().numpy()
            bad = np.flatnonzero(~np.isfinite(losses[a:b]))
            if bad.size:
                k = a + int(bad[0])
                raise FloatingPointError(f"schedule {name!r}: loss {losses[k]} at update {k} (lr {lr[k]:.3g}); the "
                                         f"run diverged: lower the peak learning rate")
            if bar is not None:
                bar.update(b - a)
        return losses, kept

    out = {}
    before = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(int(config.threads))
    try:
        trunk_losses, snaps = run(names[0], trunk, None, 0, set(snap_at))
        out[names[0]] = (trunk_losses, 0)
        for k in names[1:]:
            d = leave[k]
            if d >= n:  # the trunk's own schedule
                out[k] = (trunk_losses.copy(), n)
                continue
            state = snaps.get(d) if d > 0 else None
            out[k] = (run(k, scheds[k], state, d)[0], d)
    finally:
        torch.set_num_threads(before)
        if bar is not None:
            bar.close()
    result = {}
    for k, (losses, d) in out.items():
        sched = np.concatenate([scheds[k], scheds[k][-1:]])
        mean = losses[:logged_steps[-1]].reshape(-1, config.log_every).mean(axis=1)
        result[k] = {"step": logged_steps.copy(), "loss": mean, "lr": sched[logged_steps], "schedule": sched,
                     "branched_at": d}
    return result
