"""Held-out prediction on a family of language-model loss curves trained here: another model and data
set than the shared curves', with the optimiser and schedules language models use.

The shared curves are GPT-style models on web text. A law, bound or default that only works there is
not a result, and the MLP family of ``fit_trained_family.py`` (SGD, squared error) is far from them.
This script trains a small byte-level transformer (:mod:`sde_scales.train.lm`: 2 pre-norm blocks of
width 96, context 64 bytes, batch 16, AdamW with weight decay 0.1 and clipping, standard PyTorch
initialisation) on the Python standard library's source files (about 12 MB of text, present wherever
Python is; ``--corpus`` for other files), under every schedule of the shared protocols that a CPU
can afford: constant; cosine to 10% of the peak; WSD with linear cooldowns over the last 10, 20 and
40% of the steps and a square-root one over 20%. Warmup over the first 1% of steps, peak 3e-3. Each
seed is one initialisation and one data order shared by its schedules; the WSD runs start from the
constant run's state at their cooldown (:func:`sde_scales.train.lm.train_family`, the same numbers
as training them from scratch). The loss is the mean next-byte cross-entropy (nats) of the updates
since the previous log, logged every 10 updates, written as ``step,lr,loss`` CSV files (the shared
curves' format) and read back with :func:`sde_scales.fitting.load_curve`, the schedule attached.

Protocols, per seed, as in ``fit_trained_family.py`` (every law of ``fit_generalisation.py``, and
``--law auto`` on ``single-cosine``, with ``--auto-loso`` on ``loso`` too):

* ``single-cosine``: fit the cosine run alone, predict each WSD run;
* ``loso``: leave one schedule out over the six runs, every run in turn.

Skip the first 2.5% of steps (as ``fit_trained_family.py``); RMSE against the centred moving average
over 1,000 steps per 34,000 of the run (the shared curves' window in a run of the issue's length, as
``fit_nqm_family.py``); final-loss error against the mean of the last 5% of logged points.

    python experiments/fit_lm_family.py --out out/fit_lm_family          # 2 seeds x 12,000 steps: ~20 min
                                                                          # of training, then the fits
    python experiments/fit_lm_family.py --quick --out out/flf_quick       # 1 seed x 3,000 steps at width 32

The curves of a seed are written once, with the configuration and the corpus's SHA-256 in a
manifest beside them (``curves/manifest_seed<k>_<tag>.json``, written after the curves; the tag
holds the corpus's hash, the steps, the width, the peak and a hash of every setting); a later run
reads them back when both match (it trains nothing), and trains afresh, into new files, when any
setting differs; curves of other settings stay as they are. The thread count is a setting
(``--threads``, default 2): the losses depend on it at float rounding. So is the device
(``--device cuda``; the CPU's curves keep the tags they had before the device was a setting).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from sde_scales.cli import output_folder

FULL = dict(steps=12000, seeds=2, d_model=96)
QUICK = dict(steps=3000, seeds=1, d_model=32)
PEAK = 3e-3
SCHEDULES = {  # the trunk (constant) first: every WSD run leaves it at its cooldown
    "constant": ("constant", {}),
    "cos10": ("cosine", {"final_fraction": 0.1}),
    **{f"wsd-lin{f:g}": ("wsd", {"decay": "linear", "fraction": f}) for f in (0.1, 0.2, 0.4)},
    "wsd-sqrt0.2": ("wsd", {"decay": "sqrt", "fraction": 0.2}),
}


def family_schedules(steps: int, peak: float) -> dict:
    """The learning rate of every update of each schedule of the family (warmup over 1% of steps)."""
    from sde_scales import schedules

    warm = max(1, steps // 100)
    return {k: getattr(schedules, kind)(steps, peak, warmup_steps=warm, **kw) for k, (kind, kw) in SCHEDULES.items()}


def config_record(config) -> dict:
    """The settings of ``config`` that name its curves (their tag's digest and the manifest): all of
    them, but the device where it is the CPU, so that curves trained before the device was a setting
    are still found (a GPU's curves get their own tag)."""
    rec = asdict(config)
    if rec.get("device") == "cpu":
        del rec["device"]
    return rec


def family_scoring(steps: int) -> tuple[int, int]:
    """(skip, moving-average window), in steps, with which this family's protocols score runs of
    ``steps`` updates: skip the first 2.5% (as ``fit_trained_family.py``), and a window of 1,000
    steps per 34,000 (the shared curves' window in a run of the issue's length)."""
    return int(0.025 * steps), int(round(1000 * steps / 34000))


def family_protocols(curves: dict, seeds) -> dict:
    """The protocols' splits (fitted curves, held-out curve) of a family's ``curves`` ((seed,
    schedule) -> curve): ``single-cosine``, the cosine run alone predicting each WSD run of its
    seed; ``loso``, each run of a seed predicted from the seed's other runs."""
    wsd = [k for k in SCHEDULES if k.startswith("wsd")]
    return {
        "single-cosine": [([curves[(s, "cos10")]], curves[(s, k)]) for s in seeds for k in wsd],
        "loso": [([curves[(s, o)] for o in SCHEDULES if o != k], curves[(s, k)]) for s in seeds for k in SCHEDULES],
    }


def read_curves(paths: dict, scheds: dict, seed_label: str) -> dict:
    """The curves of ``paths`` (schedule name -> CSV file in the shared ``step,lr,loss`` format), each
    with its per-step schedule from ``scheds`` attached (the rate at step n repeats the last
    update's) and named ``<schedule>_<seed_label>``. A file that does not read raises
    :class:`~sde_scales.errors.DataFileError` naming it."""
    from sde_scales.fitting import load_curve

    out = {}
    for k, p in paths.items():
        sched = np.concatenate([scheds[k], scheds[k][-1:]])
        out[k] = replace(load_curve(p).with_schedule(sched), name=f"{k}_{seed_label}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=output_folder, default="out/fit_lm_family", help="output folder (curves and JSON)")
    ap.add_argument("--quick", action="store_true", help="1 seed x 3,000 steps at width 32 (default 2 x 12,000 at 96)")
    ap.add_argument("--steps", type=int, default=None, help="updates per run (overrides the preset; at least 100)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds (overrides the preset)")
    ap.add_argument("--lr", type=float, default=PEAK, help=f"peak learning rate (default {PEAK:g})")
    ap.add_argument("--corpus", nargs="+", default=None, metavar="FILE",
                    help="text files to train on (default: the Python standard library's .py files)")
    ap.add_argument("--skip-steps", type=int, default=None, help="rows before this step are ignored (default 2.5%% "
                    "of the run)")
    ap.add_argument("--smooth-steps", type=int, default=None, help="moving-average window of the RMSE target "
                    "(default 1,000 steps per 34,000)")
    ap.add_argument("--laws", default=None, help="comma-separated laws to measure (short names of "
                    "sde_scales.fitting.protocols.PROTOCOL_LAWS; default: all but np-steps-drops)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads while training (default 2; the losses "
                    "depend on the count at float rounding, so it is fixed and recorded; 1 beside other jobs)")
    ap.add_argument("--device", default="cpu", help="where the models train: cpu, cuda, cuda:<k> or mps (default "
                    "cpu; a GPU's losses differ from the CPU's at float rounding, so its curves are kept apart)")
    ap.add_argument("--train-only", action="store_true", help="write the curves and stop (no fits)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar while training")
    ap.add_argument("--auto-pick", action="store_true",
                    help="also the row of --law auto's least-error pick alone")
    ap.add_argument("--auto-loso", action="store_true",
                    help="--law auto on loso too (leave one fitted curve out, every candidate in every fold: "
                         "about 15 minutes more); by default only on single-cosine")
    ap.add_argument("--workers", type=int, default=1, help="processes for --law auto's fits (the same numbers for "
                    "any count)")
    ap.add_argument("--no-cache", action="store_true",
                    help="compute every (protocol, law) result afresh; by default each finished one is kept in "
                         "OUT/cache and read back by a later run on the same curves with the same code")
    args = ap.parse_args(argv)
    spec = dict(QUICK if args.quick else FULL)
    for key, least in (("steps", 100), ("seeds", 1)):
        v = getattr(args, key)
        if v is not None:
            if v < least:
                print(f"error: --{key} {v}; give at least {least}", file=sys.stderr)
                return 2
            spec[key] = v
    for flag, v in (("--workers", args.workers), ("--threads", args.threads)):
        if v < 1:
            print(f"error: {flag} {v}; give at least 1", file=sys.stderr)
            return 2
    if not (np.isfinite(args.lr) and args.lr > 0):
        print(f"error: --lr {args.lr}; give a positive finite learning rate", file=sys.stderr)
        return 2
    steps = spec["steps"]
    skip, smooth = family_scoring(steps)
    skip = skip if args.skip_steps is None else args.skip_steps
    smooth = smooth if args.smooth_steps is None else args.smooth_steps
    if skip < 0 or smooth < 1:
        print(f"error: --skip-steps {skip} / --smooth-steps {smooth}; give skip >= 0 and a window >= 1", file=sys.stderr)
        return 2

    from sde_scales.atomic import write_json_atomic
    from sde_scales.errors import DataFileError, InvalidArgumentError
    from sde_scales.fitting.protocols import protocol_laws
    from sde_scales.train.lm import LMConfig, file_corpus, stdlib_corpus

    laws = None if args.laws is None else args.laws.split(",")
    try:
        if laws is not None:
            protocol_laws(laws)  # refused here, before any training, when a name is not a law
        LMConfig(device=args.device)  # a device name that is none: refused before the corpus is read
        corpus = stdlib_corpus() if args.corpus is None else file_corpus(args.corpus)
    except (DataFileError, InvalidArgumentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    started = time.perf_counter()
    scheds = family_schedules(steps, args.lr)
    print(f"corpus: {corpus.source}, {corpus.n_bytes / 1e6:.1f} MB, sha256 {corpus.sha256[:16]}", flush=True)
    curves = {}
    for seed in range(spec["seeds"]):
        config = LMConfig(d_model=spec["d_model"], seed=seed, threads=args.threads, device=args.device)
        try:
            got = _seed_curves(out / "curves", corpus, scheds, config, args.lr, progress=not args.no_progress)
        except FloatingPointError as exc:
            print(f"error: seed {seed}: {exc}", file=sys.stderr)
            return 1
        except (DataFileError, InvalidArgumentError) as exc:  # a curve written earlier that no longer reads (left
            print(f"error: seed {seed}: {exc}", file=sys.stderr)  # as it is), a device torch cannot use
            return 2
        curves.update({(seed, k): c for k, c in got.items()})
    print(f"{len(curves)} curves in {out / 'curves'} ({time.perf_counter() - started:.0f} s so far)", flush=True)
    if args.train_only:
        return 0

    from fit_trained_family import measure_protocols  # this folder's script: the same table and comparisons

    protocols = family_protocols(curves, range(spec["seeds"]))
    shape = _shape(curves, spec["seeds"])
    print(f"family shape (means over seeds of the last 5% of rows): constant {shape['constant_final']:.4f}, "
          f"cos10 {shape['cos10_final']:.4f}, wsd-lin0.2 {shape['wsd-lin0.2_final']:.4f} nats")
    rows, comparisons, floor = measure_protocols(protocols, out, skip=skip, smooth=smooth, auto_pick=args.auto_pick,
                                                 cache=not args.no_cache, laws=laws, auto_everywhere=args.auto_loso,
                                                 workers=args.workers)
    doc = {"family": {**spec, "peak_lr": args.lr, "schedules": list(SCHEDULES), "model": asdict(LMConfig(
               d_model=spec["d_model"], threads=args.threads, device=args.device)) | {"seed": "0 .. seeds - 1"}, "corpus": corpus.source,
               "corpus_sha256": corpus.sha256, "task": "byte-level transformer LM, AdamW", **shape},
           "skip_steps": skip, "smooth_steps": smooth, "target_noise_floor": floor, "rows": rows,
           "comparisons": comparisons, "seconds": time.perf_counter() - started}
    print(f"JSON: {write_json_atomic(out / 'lm_family.json', doc)}")
    return 0


def _seed_curves(folder: Path, corpus, scheds: dict, config, peak: float, progress: bool) -> dict:
    """The curves of one seed: read back when the manifest beside them matches this configuration and
    corpus, else trained and written (CSV files first, the manifest last, each atomically)."""
    import pandas as pd

    from sde_scales.atomic import write_json_atomic, write_text_atomic
    from sde_scales.errors import DataFileError
    from sde_scales.train.lm import train_family

    n = next(iter(scheds.values())).size
    want = {"config": config_record(config), "corpus_sha256": corpus.sha256, "steps": int(n), "peak_lr": peak,
            "schedules": {k: [kind, kw] for k, (kind, kw) in SCHEDULES.items()}}
    digest = hashlib.sha256(json.dumps(want, sort_keys=True).encode()).hexdigest()[:8]  # every setting: new files
    tag = f"{want['corpus_sha256'][:8]}_n{n}_d{config.d_model}_lr{peak:g}_{digest}"
    manifest = folder / f"manifest_seed{config.seed}_{tag}.json"
    paths = {k: folder / f"{k}_seed{config.seed}_{tag}.csv" for k in scheds}
    have = None
    if manifest.is_file() and all(p.is_file() for p in paths.values()):
        try:
            have = json.loads(manifest.read_text())
        except (OSError, ValueError):
            have = None
    if have != want:
        print(f"training seed {config.seed}: {len(scheds)} schedules x {n} updates", flush=True)
        runs = train_family(corpus, scheds, config, progress=progress)
        for k, r in runs.items():
            df = pd.DataFrame({"step": r["step"], "lr": r["lr"], "loss": r["loss"]})
            write_text_atomic(paths[k], df.to_csv(index=False))
        write_json_atomic(manifest, want)
    try:
        return read_curves(paths, scheds, f"seed{config.seed}")
    except DataFileError as exc:
        raise DataFileError(f"{exc}; it was written by an earlier run with these settings: delete {manifest} to "
                            f"train the seed again") from exc


def _shape(curves: dict, n_seeds: int) -> dict:
    """Mean over seeds of each schedule's last 5% of logged losses (the family's final losses)."""
    from sde_scales.fitting.fit import final_rows

    return {f"{k}_final": float(np.mean([np.mean(curves[(s, k)].loss[-final_rows(curves[(s, k)].step.size):])
                                         for s in range(n_seeds)])) for k in SCHEDULES}


if __name__ == "__main__":
    sys.exit(main())
