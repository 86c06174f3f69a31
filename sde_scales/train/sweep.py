"""Sweeps over widths x learning rates x seeds x parametrizations, resumable, local or on dask.

The grid is cut into *stacks*: runs that differ only in learning rate (one stack per
parametrization, width and seed), or, with ``data_order="seed"``, in learning rate and seed (one
stack per parametrization and width), trained together by :func:`~sde_scales.trainer.train_stack`.
Stacks are a function of the grid alone, and a stack's runs are written together when it
finishes, so an interrupted sweep re-runs whole stacks and every run's numbers are the same
whether the sweep ran in one go, was resumed, or ran on any number of workers.

Executors: ``"local"`` (in this process), ``"process"`` (a process pool; one torch thread per
worker), ``"dask"`` (``dask.distributed``: a scheduler address, or ``"local"`` for a
``LocalCluster``). Every worker writes its finished runs to the store itself.

Faults. Process-pool workers end with the sweep: each asks the kernel for SIGTERM when its parent
dies (``prctl(PR_SET_PDEATHSIG)`` on Linux), so a sweep killed with SIGKILL leaves no worker
training on. The workers of a dask ``LocalCluster`` are ended by dask itself when their parent
dies (its worker processes watch their parent); both are tested by killing a real sweep. SIGTERM
stops a sweep cleanly: the stacks in flight are abandoned (their runs are not written, so they are
trained again on resume, from their last checkpoint with ``checkpoint_every``), the workers are
ended, and the sweep exits with status 143 and a message. Workers of a remote dask cluster are not
the sweep's children: they finish the stacks they hold.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

from sde_scales.errors import InvalidArgumentError, SDEScalesError
from sde_scales.train.store import RunStore
from sde_scales.train.trainer import RunConfig, check_precision, resolve_device, train_stack

__all__ = ["SweepTerminated", "load_grid_toml", "plan", "run_stack", "run_sweep", "unique_runs"]


class SweepTerminated(SystemExit):
    """SIGTERM reached a sweep: finished runs are in the store, the stacks in flight are not."""


def _die_with_parent(parent: int) -> None:
    """Process-pool initializer: SIGTERM this worker when its parent dies (Linux; elsewhere a no-op),
    and exit at once if the parent is already gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except OSError:
            pass
    if os.getppid() != parent:
        os._exit(1)


def _on_sigterm(signum, frame):
    raise SweepTerminated(143)


@dataclass(frozen=True)
class Stack:
    configs: tuple[RunConfig, ...]

    @property
    def label(self) -> str:
        c = self.configs[0]
        if c.data_order == "seed":
            return f"{c.param} n={c.width} ({len(self.configs)} runs)"
        return f"{c.param} n={c.width} seed={c.seed} ({len(self.configs)} lrs)"


def unique_runs(configs: list[RunConfig]) -> list[RunConfig]:
    """``configs`` without repeats of a run (same run id), in their first order."""
    seen: set[str] = set()
    return [c for c in configs if not (c.run_id in seen or seen.add(c.run_id))]


def plan(configs: list[RunConfig], finished: set[str] = frozenset()) -> list[Stack]:
    """Stacks of the grid (same key and seed), minus stacks whose every run is finished. A run listed
    more than once (a value repeated in the grid) is planned once."""
    groups: OrderedDict = OrderedDict()
    for c in unique_runs(configs):
        # with a minibatch order per run, seeds share a stack too (a run's numbers do not depend on
        # its stack); with one shared order, a stack is one seed's learning rates
        groups.setdefault((c.stack_key(),) if c.data_order == "seed" else (c.stack_key(), c.seed), []).append(c)
    stacks = []
    for members in groups.values():
        if all(c.run_id in finished for c in members):
            continue
        stacks.append(Stack(tuple(members)))
    return stacks


_DATA_CACHE: dict = {}


def _dataset_for(c: RunConfig, device: str, data_root: str):
    from sde_scales.train.data import make_dataset

    key = (c.dataset, c.d_in, c.n_train, c.data_seed, device, data_root)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = make_dataset(c.dataset, device, d_in=c.d_in, n_train=c.n_train, seed=c.data_seed,
                                        root=data_root)
    return _DATA_CACHE[key]


def checkpoint_path(store_root: str, stack: Stack) -> str:
    """Where a stack's checkpoint lives: ``<store>/checkpoints/<hash of its run ids>.pt``."""
    import hashlib

    h = hashlib.sha256(",".join(c.run_id for c in stack.configs).encode()).hexdigest()[:20]
    return os.path.join(store_root, "checkpoints", f"{h}.pt")


def run_stack(stack: Stack, store_root: str, device: str = "cpu", data_root: str = "data", threads: int | None = None,
              checkpoint_every: float = 0.0):
    """Train one stack and write its runs. Returns the (run id, status) of the runs it wrote: a run
    already in the store (a grid extended by a learning rate puts new runs in a stack with finished
    ones) is trained again with its stack, since the stack trains its members together, but not
    written and not counted.

    ``checkpoint_every`` (epochs, 0: never): the stack saves its state that often under
    ``<store>/checkpoints/`` and resumes from it; the checkpoint is removed once its runs are written."""
    import torch

    from sde_scales.train.trainer import Checkpointing

    if threads:
        torch.set_num_threads(threads)
    store = RunStore(store_root)
    c0 = stack.configs[0]
    ds = _dataset_for(c0, device, data_root)
    ck = None
    if checkpoint_every > 0:
        every = max(1, int(round(checkpoint_every * c0.n_train / c0.batch_size)))
        ck = Checkpointing(checkpoint_path(store_root, stack), every)  # train_stack says when it resumes
    outcomes = train_stack(list(stack.configs), ds, device=device, checkpoint=ck)
    written = [o for o in outcomes if store.write(o)]
    if ck is not None and os.path.exists(ck.path):
        os.remove(ck.path)  # its runs are in the store now
    return [(o.config.run_id, o.status) for o in written]


def run_sweep(configs: list[RunConfig], store_root: str, *, executor: str = "local", workers: int = 2,
              scheduler: str | None = None, device: str = "auto", data_root: str = "data", progress: bool = True,
              checkpoint_every: float = 0.0) -> dict:
    """Run every unfinished stack; returns counts of finished / diverged / skipped runs.

    ``checkpoint_every``: epochs between checkpoints inside each stack (0: none); see :func:`run_stack`."""
    import math

    if not (isinstance(checkpoint_every, (int, float)) and math.isfinite(checkpoint_every) and checkpoint_every >= 0):
        raise InvalidArgumentError(f"checkpoint_every={checkpoint_every!r}; give epochs >= 0 (0: no checkpoints)")
    runners = {"local": _run_local, "process": _run_pool, "dask": _run_dask}
    if executor not in runners:
        raise InvalidArgumentError(f"executor={executor!r}; use local, process or dask")
    # one SIGTERM handler for every executor, installed before the store is touched or any worker or
    # cluster starts: a SIGTERM at any moment of the sweep stops it cleanly (exit 143)
    # the device is resolved before: a device this machine lacks is an error, not a stopped sweep
    # ("run the same command again to resume" is no advice for it)
    device = resolve_device(device)
    check_precision(configs, device)  # before the store is made (train_stack checks it too)
    old = signal.signal(signal.SIGTERM, _on_sigterm) if _main_thread() else None
    statuses = []
    try:
        return _sweep(runners[executor], configs, store_root, progress,
                      (store_root, device, data_root, checkpoint_every), workers, scheduler, statuses)
    except BaseException as exc:  # SIGTERM, Ctrl-C or a failed stack, at any moment after the handler is in place
        # a refused input before any run finished (a data root, a scheduler) is its own message;
        # "run the same command again" is no advice for it
        if statuses or not isinstance(exc, SDEScalesError):
            print(f"sweep stopped: {len(statuses)} runs of this call finished and are in {store_root}; run the same "
                  f"command again to resume", file=sys.stderr)
        raise
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _sweep(runner, configs, store_root, progress, where, workers, scheduler, statuses: list) -> dict:
    """Plan the stacks of ``configs`` not yet in the store, run them with ``runner``, count them."""
    from tqdm.auto import tqdm

    store = RunStore(store_root)
    done_before = store.finished()
    unique = unique_runs(configs)
    stacks = plan(unique, done_before)
    skipped = sum(1 for c in unique if c.run_id in done_before)
    bar = tqdm(total=len(stacks), desc="stacks", unit="stack", disable=None if progress else True,  # terminal only
               file=sys.stderr)
    try:
        runner(stacks, statuses, bar, where, workers, scheduler)
    finally:
        bar.close()
    return {"ran": len(statuses), "diverged": sum(1 for _, s in statuses if s == "diverged"), "skipped": skipped,
            "stacks": len(stacks), "runs": len(unique), "repeats": len(configs) - len(unique)}


def _run_local(stacks, statuses, bar, where, workers, scheduler) -> None:
    store_root, device, data_root, checkpoint_every = where
    for s in stacks:
        bar.set_postfix_str(s.label)
        statuses += run_stack(s, store_root, device, data_root, None, checkpoint_every)
        bar.update(1)


def _run_pool(stacks, statuses, bar, where, workers, scheduler) -> None:
    import multiprocessing as mp

    store_root, device, data_root, checkpoint_every = where
    ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_die_with_parent, initargs=(os.getpid(),))
    try:
        futs = [ex.submit(run_stack, s, store_root, device, data_root, 1, checkpoint_every) for s in stacks]
        for f in as_completed(futs):
            statuses += f.result()
            bar.update(1)
    except BaseException:
        # a SIGTERM, Ctrl-C or a failed stack: do not wait for the stacks in flight (shutdown with
        # wait=True would train them to the end); end the workers now
        procs = list(getattr(ex, "_processes", {}).values())  # no public way to reach them
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(timeout=10)
        raise
    ex.shutdown(wait=True)


def _run_dask(stacks, statuses, bar, where, workers, scheduler) -> None:
    from dask.distributed import Client, LocalCluster
    from dask.distributed import as_completed as dask_completed

    store_root, device, data_root, checkpoint_every = where
    cluster = client = None
    futs = []
    try:
        if scheduler in (None, "local"):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler)
            except (OSError, ValueError, TypeError) as exc:  # unreachable, refused, or not an address
                raise InvalidArgumentError(
                    f"--scheduler {scheduler}: cannot connect to a dask scheduler there ({type(exc).__name__}: {exc}); "
                    f"give the address a running `dask scheduler` prints (tcp://HOST:8786), or --scheduler local for "
                    f"a cluster on this machine. Nothing was trained") from None
        futs = [client.submit(run_stack, s, store_root, device, data_root, 1, checkpoint_every, pure=False)
                for s in stacks]
        for f in dask_completed(futs):
            statuses += f.result()
            bar.update(1)
    except BaseException:
        # SIGTERM, Ctrl-C or a failed stack: cancel what is queued; a LocalCluster's workers are
        # ended with it below (a remote cluster's stacks in flight finish there and are written)
        if client is not None and futs:
            client.cancel(futs)
        raise
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def load_grid_toml(path: str) -> dict:
    """Read a sweep grid from TOML: the lists ``params``, ``widths``, ``lrs``, ``seeds`` and any
    ``RunConfig`` field; every key and type checked (a string where a list belongs, ``widths = "16"``,
    would otherwise be read character by character)."""
    import tomllib
    from dataclasses import fields

    from sde_scales.errors import DataFileError, InvalidArgumentError

    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise InvalidArgumentError(f"--config {path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"{path}: not valid TOML ({exc})") from None
    lists = {"params": str, "widths": int, "lrs": (int, float), "seeds": int}
    known = set(lists) | {f.name for f in fields(RunConfig)} - {"param", "width", "lr", "seed"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise InvalidArgumentError(f"{path}: unknown key(s) {unknown}; use {', '.join(sorted(known))}")
    for key, typ in lists.items():
        if key in doc:
            v = doc[key]
            if not isinstance(v, list) or not v or any(isinstance(e, bool) or not isinstance(e, typ) for e in v):
                example = {"params": ["mup", "sp"], "widths": [64, 128], "lrs": [0.05, 0.1], "seeds": [0, 1]}[key]
                raise InvalidArgumentError(f"{path}: {key} = {v!r}; give a non-empty list of "
                                           f"{'names' if typ is str else 'whole numbers' if typ is int else 'numbers'}, "
                                           f"e.g. {key} = {example}")
    if "schedule_kw" in doc:
        doc["schedule_kw"] = tuple(sorted(dict(doc["schedule_kw"]).items()))
    return doc
