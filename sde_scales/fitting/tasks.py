"""Independent fits run in this process or in a pool of worker processes, with a progress bar.

Every task is a pure function of its arguments, so the results do not depend on the number of
workers or on the order in which they finish (``--law auto``'s cross-validation, the time-scale
average's held fits).
"""

from __future__ import annotations

import os
import sys

__all__ = ["SLOW_FIRST", "run_tasks"]


#: Laws and kernels whose fits cost the most, started first when fits run in parallel (the
#: multi-power law and the power-law kernels take 5-15 times the others on the shared 124M curves):
#: a task whose first two arguments name one of them.
SLOW_FIRST = ("mpl", "power")


def run_tasks(func, tasks: list, workers: int, progress: str | None = None) -> dict:
    """``{key: func(args)}`` for ``tasks`` of (key, args): in this process, or in a pool of
    ``workers`` fresh (spawned) processes, the slow laws first. Every task is a pure function of its
    arguments, so the results do not depend on the number of workers or the order they finish in.
    ``progress``: the label of a progress bar on standard error, one tick a task (shown on a
    terminal only); None for none."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc=progress, unit="fit", disable=None if progress else True, file=sys.stderr)
    try:
        return _run_tasks_with(func, tasks, workers, bar)
    finally:
        bar.close()


def _run_tasks_with(func, tasks: list, workers: int, bar) -> dict:
    if workers <= 1 or len(tasks) <= 1:
        out = {}
        for key, args in tasks:
            out[key] = func(args)
            bar.update(1)
        return out
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    order = sorted(range(len(tasks)), key=lambda i: not any(w in tasks[i][1][:2] for w in SLOW_FIRST))
    # one BLAS thread per worker: the workers already fill the cores, and threads on top of them
    # made two workers slower than one process on two cores (the fits' SVDs fought for them)
    keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})  # read by each worker as it starts, before it imports numpy
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=mp.get_context("spawn")) as ex:
            out = []
            for r in ex.map(func, [tasks[i][1] for i in order], chunksize=1):  # in order: the same results
                out.append(r)
                bar.update(1)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {tasks[i][0]: r for i, r in zip(order, out)}
