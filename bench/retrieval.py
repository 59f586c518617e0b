"""Retrieval-quality benchmark: ACIR against hashing and float baselines, ablations, and what
content-guided ranking buys (issue 5; method.md §5-6).

Every hashing method trains with the same budget: same input (the compact preset's
preprocessing), same epochs, optimiser, learning-rate schedule, batch size and seed, and model
selection on the validation split only. ACIR trains the full compact network with SCH; the
baselines (HashNet, DPSH, DSH, CSQ) train the same ACIR trunk with DaRF, PiT and KAN switched off
(plain CNN trunk + MLP hash head). Queries are touched only for the final evaluation.

    python bench/retrieval.py --quick                    # smoke run, a few minutes
    python bench/retrieval.py --out /tmp/r.json --markdown /tmp/r.md   # ~40 min, 2 cores
    python bench/retrieval.py --epochs 30 --max-train 0 --batch-size 128 --warmup-epochs 2 \
        --jobs 2 --threads 1 --seeds 0 1 2 --resume       # full budget (the committed results),
                                                          # hours on 2 cores
    EPOCHS=30 bench/device_retrieval.sh                  # full budget on a GPU machine, ~5 min

The default budget (2 epochs on 1,600 training patches, batch 64) is what a 2-core CPU affords
for 19 trainings in about 40 minutes; raise --epochs / --max-train where more compute exists.
--jobs N trains N models at once in separate processes (--device cuda: they share the GPU).

--seeds trains every selected method once per seed (the data split stays fixed, --data-seed).
Results are saved after every training; --resume keeps the runs already in --out and trains
only the missing (method, seed) pairs, so a long run survives interruption, and a later call
with other --methods/--seeds adds to the same file. An existing --out is never replaced without
--overwrite, and --quick writes bench/results/retrieval-quick.json unless told otherwise, so a
smoke run cannot clobber the committed results. Comparisons and ablation tests are made over
every run in the file (retrieval_stats.py).

Rankings per run: Hamming (ties by id), content-guided and content tie-break (the PCA blended
feature over --candidates), and, since 2026-12-07, ``hash_output`` (the candidates re-ranked by
the continuous hash output); runs from before lack it and are compared without it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import multiprocessing
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from host import cpu_identity
from retrieval_data import Splits, load_splits
from retrieval_eval import (
    add_noise,
    determinism_check,
    evaluate_ranking,
    hashing_rankings,
    jpeg_reencode,
    robustness,
)
from retrieval_report import write_markdown
from retrieval_stats import (
    APStore,
    ablation_effect,
    compare_with_best,
    summarise,
    validation_choice,
    validation_scores,
)

from models.baselines import BASELINE_NAMES, BASELINE_TRUNK, make_objective
from models.checkpoint import default_preprocess
from models.config import ModelConfig, preset
from models.float_baselines import (
    efficientnet_features,
    load_efficientnet_lite0,
    raw_pixel_features,
)
from models.metrics import cosine_ranking
from models.network import ACIRNet
from models.preprocess import PreprocessSpec
from models.projection import FeatureProjection, fit_projection
from models.training import (
    TrainingData,
    TrainSettings,
    codes_of,
    encode_images,
    encode_outputs,
    train_hashing,
)

logger = logging.getLogger("bench.retrieval")

METHODS = ("acir", *BASELINE_NAMES)
# ACIR ablations: (config overrides, training-settings overrides).
# no_darf keeps both maps but pools and concatenates them (the cross-attention removed);
# no_fusion drops the shallow map altogether (deep features only, as the baselines' papers use).
ABLATIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "no_darf": ({"fusion": "concat"}, {}),
    "no_fusion": ({"fusion": "deep"}, {}),
    "no_pit": ({"use_pit": False}, {}),
    "no_fingerprint": ({}, {"fingerprint_weighting": False}),
    "mlp_head": ({"kan_head": False}, {}),
}
FULL_DEFAULTS: dict[str, Any] = {
    "bits": [64, 32, 16],
    "epochs": 2,
    "methods": list(METHODS),
    "ablations": list(ABLATIONS),
    "ablation_bits": [64],
    "float_baselines": ["raw", "effnet"],
    "max_train": 1600,
    "max_db": 0,
    "max_query": 0,
    "out": Path("bench/results/retrieval.json"),
}
QUICK_DEFAULTS: dict[str, Any] = {
    **FULL_DEFAULTS,
    "bits": [16],
    "epochs": 1,
    "methods": ["acir", "csq"],
    "ablations": ["no_fingerprint"],
    "ablation_bits": [16],
    "float_baselines": ["raw"],
    "max_train": 1024,
    "max_db": 600,
    "max_query": 150,
    "out": Path("bench/results/retrieval-quick.json"),  # never the committed results
}
PROJECTION_DIM = 128  # the service stores PCA-128 re-ranking features (models/pipeline.py)


@dataclass
class Encoded:
    """Codes, projected (re-ranking) features and continuous hash outputs of the query and
    database splits."""

    q_bits: np.ndarray
    db_bits: np.ndarray
    q_feats: np.ndarray
    db_feats: np.ndarray
    q_outputs: np.ndarray
    db_outputs: np.ndarray


@dataclass(frozen=True)
class Job:
    """One training run: a method at a bit length, possibly with ablation overrides."""

    key: str  # e.g. "acir@64", "csq@32", "acir-no_pit@64"
    method: str  # "acir" or a baseline name
    bits: int
    seed: int
    config_overrides: dict[str, Any] = field(default_factory=dict)
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    ranking_checks: bool = False  # the reference model: determinism and robustness checks


@dataclass
class Bench:
    args: argparse.Namespace
    splits: Splits
    spec: PreprocessSpec
    results: dict[str, Any]
    jobs: list[Job] = field(default_factory=list)
    ap100: APStore = field(default_factory=lambda: APStore({}))
    started: float = field(default_factory=time.perf_counter)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("data/brain-atlas"), help="BrainAtlas2D dir")
    p.add_argument("--dataset", choices=("brain-atlas", "fashion-mnist"), default="brain-atlas")
    p.add_argument("--bits", type=int, nargs="+")
    p.add_argument("--epochs", type=int)
    p.add_argument("--methods", nargs="+", choices=METHODS)
    p.add_argument("--ablations", nargs="*", choices=tuple(ABLATIONS))
    p.add_argument(
        "--ablation-bits", type=int, nargs="+", help="code lengths the ablations train at"
    )
    p.add_argument("--float-baselines", nargs="*", choices=("raw", "effnet"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--candidates", type=int, default=1000, help="Hamming candidates re-ranked")
    p.add_argument("--max-train", type=int, help="subsample the split (0: all)")
    p.add_argument("--max-db", type=int)
    p.add_argument("--max-query", type=int)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the data subsamples")
    p.add_argument("--resume", action="store_true", help="keep the runs in --out, add the rest")
    p.add_argument("--threads", type=int, default=2, help="torch threads per training process")
    p.add_argument("--device", default="cpu", help="torch device of training, e.g. cuda")
    p.add_argument("--jobs", type=int, default=1, help="trainings run at once (processes)")
    p.add_argument("--quick", action="store_true", help="smoke run: 16 bits, ACIR+CSQ, 1 epoch")
    p.epilog = f"defaults: {FULL_DEFAULTS}; with --quick: {QUICK_DEFAULTS}"
    p.add_argument("--floats-from", type=Path, help="copy float-baseline results from a JSON")
    p.add_argument("--out", type=Path, help="results JSON (per-query APs beside it)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out instead of refusing"
    )
    p.add_argument("--markdown", type=Path, default=None)
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: recompute the tests of --out from its saved per-query APs, rewrite "
        "it and --markdown",
    )
    args = p.parse_args(argv)
    for name, value in (QUICK_DEFAULTS if args.quick else FULL_DEFAULTS).items():
        if getattr(args, name) is None:  # explicit options win over the mode's defaults
            setattr(args, name, value)
    if args.out.exists() and not (args.resume or args.overwrite or args.report_only):
        p.error(f"{args.out} exists: --resume adds runs to it, --overwrite replaces it")
    return args


def _machine(device: str) -> dict[str, Any]:
    machine: dict[str, Any] = {
        **cpu_identity(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        # The SIMD level torch's CPU kernels dispatch to (e.g. AVX2, AVX512): runs reproduce
        # bit for bit only between hosts where it (and the CPU family) match.
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        machine["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return machine


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _load_splits(args: argparse.Namespace) -> Splits:
    return load_splits(
        args.dataset, args.data, args.data_seed, args.max_train, args.max_db, args.max_query
    )


def _settings(args: argparse.Namespace, seed: int, **overrides: Any) -> TrainSettings:
    base = TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        warmup_epochs=args.warmup_epochs,
        seed=seed,
        threads=args.threads,
        device=args.device,
    )
    return TrainSettings(**{**asdict(base), **overrides})


def _job_list(args: argparse.Namespace) -> list[Job]:
    """Every training of the run: per seed, methods per bit length, then the ablations."""
    jobs: list[Job] = []
    for seed in args.seeds:
        for bits in args.bits:
            for method in args.methods:
                trunk = {} if method == "acir" else dict(BASELINE_TRUNK)
                # The ranking checks run on one model: ACIR at the first ablation length and seed.
                reference = (
                    method == "acir" and bits == args.ablation_bits[0] and seed == args.seeds[0]
                )
                jobs.append(Job(f"{method}@{bits}", method, bits, seed, trunk, {}, reference))
            if bits in args.ablation_bits and "acir" in args.methods:
                for name in args.ablations:
                    config_over, settings_over = ABLATIONS[name]
                    key = f"acir-{name}@{bits}"
                    jobs.append(Job(key, "acir", bits, seed, config_over, settings_over))
    return jobs


# ------------------------------------------------------------------ one training (any process)
def _encode(
    splits: Splits, spec: PreprocessSpec, network: ACIRNet
) -> tuple[Encoded, FeatureProjection]:
    """Codes + re-ranking features; PCA fitted on training features, as the service does."""
    _, train_feats = encode_images(network, splits.train, spec)
    projection = fit_projection(train_feats, PROJECTION_DIM)
    q_out, q_feats = encode_outputs(network, splits.query, spec)
    db_out, db_feats = encode_outputs(network, splits.db, spec)
    q_proj, db_proj = projection.apply(q_feats), projection.apply(db_feats)
    enc = Encoded(codes_of(q_out), codes_of(db_out), q_proj, db_proj, q_out, db_out)
    return enc, projection


def _run_job(args: argparse.Namespace, splits: Splits, spec: PreprocessSpec, job: Job) -> dict:
    """Train one model and evaluate it on query vs db: {run, ap100 per ranking, checks}."""
    config = preset("compact", bits=job.bits, **job.config_overrides)
    settings = _settings(args, job.seed, **job.settings_overrides)
    objective = None
    if job.method != "acir":
        objective = make_objective(job.method, job.bits, len(splits.train.class_names))
    logger.info(
        "training %s seed %d (%d epochs on %s)", job.key, job.seed, settings.epochs, settings.device
    )
    started = time.perf_counter()
    data = TrainingData(splits.train, splits.val, splits.db, spec)
    result = train_hashing(config, data, settings, objective=objective, progress=False)
    train_seconds = time.perf_counter() - started
    enc, projection = _encode(splits, spec, result.network)
    rankings = hashing_rankings(
        enc.q_bits,
        enc.db_bits,
        enc.q_feats,
        enc.db_feats,
        args.candidates,
        outputs=(enc.q_outputs, enc.db_outputs),
    )
    metrics: dict[str, dict[str, float]] = {}
    ap100: dict[str, np.ndarray] = {}
    for mode, ranking in rankings.items():
        metrics[mode], ap100[mode] = evaluate_ranking(
            ranking, splits.query.labels, splits.db.labels
        )
    run = {
        "seed": job.seed,
        "config_overrides": _overrides(config),
        "train_seconds": round(train_seconds, 1),
        "best_epoch": result.best_epoch,
        "best_val_map": result.best_val_map,
        "history": result.history,
        "metrics": metrics,
    }
    logger.info("%s seed %d: %s (%.0f s)", job.key, job.seed, metrics, train_seconds)
    checks = None
    if job.ranking_checks:
        checks = _ranking_checks(args, job.seed, splits, spec, enc, (result.network, projection))
    return {"run": run, "ap100": ap100, "checks": checks}


def _overrides(config: ModelConfig) -> dict[str, Any]:
    reference = preset("compact", bits=config.bits).to_dict()
    return {k: v for k, v in config.to_dict().items() if reference[k] != v}


def _ranking_checks(
    args: argparse.Namespace,
    seed: int,
    splits: Splits,
    spec: PreprocessSpec,
    enc: Encoded,
    model: tuple[ACIRNet, FeatureProjection],
) -> dict[str, Any]:
    """Insertion-order determinism and top-10 overlap under noise / JPEG of one model's queries."""
    network, projection = model

    def encode(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bits, feats = encode_images(network, images, spec)
        return bits, projection.apply(feats)

    images = splits.query.images
    perturbed = {
        "gaussian_noise_sigma4": add_noise(images, 4.0, seed),
        "jpeg_q75": jpeg_reencode(images, 75),
    }
    checks = {
        "determinism": determinism_check(
            enc.q_bits, enc.q_feats, enc.db_bits, enc.db_feats, seed=seed
        ),
        "robustness": robustness(
            (enc.q_bits, enc.q_feats),
            {name: encode(imgs) for name, imgs in perturbed.items()},
            enc.db_bits,
            enc.db_feats,
        ),
    }
    logger.info("ranking checks %s", checks)
    return checks


# Worker processes load the splits once each (spawned, so CUDA starts clean in every one).
_WORKER_SPLITS: dict[str, tuple[Splits, PreprocessSpec]] = {}


def _worker(args: argparse.Namespace, job: Job) -> dict:
    if "splits" not in _WORKER_SPLITS:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        torch.set_num_threads(args.threads)
        _WORKER_SPLITS["splits"] = (_load_splits(args), default_preprocess(preset("compact")))
    splits, spec = _WORKER_SPLITS["splits"]
    return _run_job(args, splits, spec, job)


# ---------------------------------------------------------------------- orchestration
def _run_all(bench: Bench) -> None:
    """Run every job not already in the results, in this process or `--jobs` at once."""
    todo = [job for job in bench.jobs if not _done(bench, job)]
    skipped = len(bench.jobs) - len(todo)
    if skipped:
        logger.info(
            "resume: %d of %d trainings already in %s", skipped, len(bench.jobs), bench.args.out
        )
    if bench.args.jobs <= 1:
        for job in todo:
            _absorb(bench, job, _run_job(bench.args, bench.splits, bench.spec, job))
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=bench.args.jobs, mp_context=context) as pool:
        pending = {pool.submit(_worker, bench.args, job): job for job in todo}
        for future in as_completed(pending):
            _absorb(bench, pending[future], future.result())


def _done(bench: Bench, job: Job) -> bool:
    return str(job.seed) in bench.results["runs"].get(job.key, {}).get("seeds", {})


def _absorb(bench: Bench, job: Job, outcome: dict) -> None:
    entry = bench.results["runs"].setdefault(job.key, {"seeds": {}})
    entry["seeds"][str(job.seed)] = outcome["run"]
    entry["seeds"] = dict(sorted(entry["seeds"].items(), key=lambda item: int(item[0])))
    for mode, values in outcome["ap100"].items():
        bench.ap100.arrays[(job.key, mode, job.seed)] = values
    if outcome["checks"] is not None:
        bench.results.update(outcome["checks"])
        bench.results["ranking_checks_model"] = f"{job.key} seed {job.seed}"
    _update_statistics(bench.results, bench.ap100)
    _save(bench)


# (ACIR ranking, baseline ranking): like for like, and the deployed ACIR against plain baselines.
PAIRINGS = (
    ("hamming", "hamming"),
    ("content_guided", "content_guided"),
    ("content_ties", "content_ties"),
    ("content_guided", "hamming"),
)
# Rankings only newer runs record (2026-12-07): compared where both sides have them.
OPTIONAL_PAIRINGS = (("hash_output", "hash_output"),)


def _report_order(key: str) -> tuple[int, bool, int, str]:
    """Longest codes first; per length ACIR, the baselines in METHODS order, then ablations."""
    name, bits = key.split("@")
    method = name.split("-")[0]
    rank = METHODS.index(method) if method in METHODS else len(METHODS)
    return (-int(bits), name != method, rank, name)


def _update_statistics(results: dict[str, Any], store: APStore) -> None:
    """Seed summaries, ACIR against the best baseline per bit length, and ablation effects,
    over every run in the results (earlier calls' runs included)."""
    runs = dict(sorted(results["runs"].items(), key=lambda item: _report_order(item[0])))
    results["runs"] = runs
    for entry in runs.values():
        entry["summary"] = summarise(entry["seeds"])
    summaries = {key: entry["summary"] for key, entry in runs.items()}
    bits_seen = sorted({int(key.split("@")[1]) for key in runs}, reverse=True)
    baselines = sorted({key.split("@")[0] for key in runs} & set(BASELINE_NAMES))
    comparisons: dict[str, list[dict[str, Any]]] = {}
    for bits in bits_seen:
        entries = [
            compare_with_best(store, summaries, bits, baselines, ours, theirs)
            for ours, theirs in PAIRINGS
        ]
        if all(e is not None for e in entries):
            optional = [
                compare_with_best(store, summaries, bits, baselines, ours, theirs)
                for ours, theirs in OPTIONAL_PAIRINGS
            ]
            comparisons[str(bits)] = [e for e in entries + optional if e is not None]
    results["comparisons"] = comparisons
    results["validation_choice"] = _validation_choices(store, runs, summaries, bits_seen, baselines)
    ablations: dict[str, Any] = {}
    for key in runs:
        name, bits = key.split("@")
        if name.startswith("acir-") and f"acir@{bits}" in runs:
            ablations[key] = ablation_effect(store, f"acir@{bits}", key)
    results["ablations"] = ablations


def _validation_choices(
    store: APStore,
    runs: dict[str, Any],
    summaries: dict[str, Any],
    bits_seen: list[int],
    baselines: list[str],
) -> dict[str, dict[str, Any]]:
    """Per length, the ACIR configuration with the best validation mAP (full or an ablation)
    against the best baseline, Hamming ranking: model selection that never sees the queries."""
    choices: dict[str, dict[str, Any]] = {}
    for bits in bits_seen:
        scores = validation_scores(runs, bits)
        key = validation_choice(scores)
        if key is None:
            continue
        entry = compare_with_best(store, summaries, bits, baselines, "hamming", "hamming", key)
        if entry is None:
            continue
        entry["chosen"] = key
        entry["val_map"] = scores
        choices[str(bits)] = entry
    return choices


def _float_baselines(bench: Bench) -> None:
    s, spec = bench.splits, bench.spec
    extractors: dict[str, Any] = {}
    if "raw" in bench.args.float_baselines:
        extractors["raw_pixel"] = lambda images: raw_pixel_features(images, spec)
    if "effnet" in bench.args.float_baselines:
        try:
            model = load_efficientnet_lite0()
            extractors["efficientnet_lite0"] = lambda images: efficientnet_features(
                model, images, spec
            )
        except ImportError as error:
            bench.results["floats"]["efficientnet_lite0"] = {"error": str(error)}
    for name, extract in extractors.items():
        started = time.perf_counter()
        ranking = cosine_ranking(extract(s.query.images), extract(s.db.images))
        metrics, ap = evaluate_ranking(ranking, s.query.labels, s.db.labels)
        bench.ap100.arrays[(name, "cosine", 0)] = ap
        bench.results["floats"][name] = {
            "metrics": metrics,
            "seconds": round(time.perf_counter() - started, 1),
        }
        logger.info("%s: %s", name, metrics)
    _save(bench)


def _save(bench: Bench) -> None:
    invocation = bench.results["invocations"][-1]
    invocation["wall_seconds"] = round(time.perf_counter() - bench.started, 1)
    bench.results["wall_seconds"] = sum(i["wall_seconds"] for i in bench.results["invocations"])
    bench.args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = bench.args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(bench.results, indent=2, default=_json_default))
    tmp.replace(bench.args.out)
    _save_per_query_ap(bench)


def _ap_path(out: Path) -> Path:
    return out.with_suffix(".ap.npz")


def _save_per_query_ap(bench: Bench) -> None:
    """Per-query AP@100 of every run, ranking and seed beside the JSON (``<out>.ap.npz``, keys
    like ``acir@64|hamming|0``): what --resume reloads, and what lets the tests be recomputed or
    a later session's runs at the same budget be compared without retraining."""
    path = _ap_path(bench.args.out)
    arrays = {f"{key}|{mode}|{seed}": ap for (key, mode, seed), ap in bench.ap100.arrays.items()}
    with open(path.with_suffix(".tmp"), "wb") as handle:
        np.savez_compressed(handle, **arrays)
    path.with_suffix(".tmp").replace(path)


def _load_previous(out: Path) -> tuple[dict[str, Any], APStore]:
    """The results and per-query APs an earlier call saved at ``out`` (for --resume)."""
    results = json.loads(out.read_text())
    if "invocations" not in results:
        raise SystemExit(f"{out} was written by an older version of this script; cannot resume")
    arrays: dict[tuple[str, str, int], np.ndarray] = {}
    with np.load(_ap_path(out)) as saved:
        for name in saved.files:
            key, mode, seed = name.split("|")
            arrays[(key, mode, int(seed))] = saved[name]
    return results, APStore(arrays)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def _invocation(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    return {
        "command": " ".join(shlex.quote(a) for a in ["python", "bench/retrieval.py", *argv]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": _machine(args.device),
        "git_commit": _git_commit(),
        "seeds": args.seeds,
        "methods": args.methods,
        "bits": args.bits,
        "ablations": args.ablations,
    }


def _budget(args: argparse.Namespace) -> dict[str, Any]:
    """What every training shares; a resumed file must have been written with the same."""
    settings = asdict(_settings(args, seed=0))
    for name in ("seed", "threads", "device"):  # vary per run or machine, not the budget
        settings.pop(name)
    return {
        **settings,
        "preset": "compact",
        "dataset": args.dataset,
        "data_seed": args.data_seed,
        "max_train": args.max_train,
        "max_db": args.max_db,
        "max_query": args.max_query,
        "candidates": args.candidates,
    }


def _new_results(args: argparse.Namespace, splits: Splits) -> dict[str, Any]:
    return {
        "dataset": args.dataset,
        "split_sizes": splits.sizes(),
        "classes": list(splits.train.class_names),
        "budget": _budget(args),
        "baseline_trunk": {
            **BASELINE_TRUNK,
            "note": "same trunk, same input, same epochs/optimiser/seeds",
        },
        "candidates": args.candidates,
        "projection_dim": PROJECTION_DIM,
        "invocations": [],
        "runs": {},
        "comparisons": {},
        "ablations": {},
        "floats": {},
    }


def _start(args: argparse.Namespace, splits: Splits, argv: list[str]) -> Bench:
    spec = default_preprocess(preset("compact"))
    if args.resume and args.out.exists():
        results, store = _load_previous(args.out)
        if results["budget"] != _budget(args):
            raise SystemExit(
                f"--resume: {args.out} was trained with another budget:\n"
                f"  file: {results['budget']}\n  now:  {_budget(args)}"
            )
    else:
        results, store = _new_results(args, splits), APStore({})
    results["invocations"].append(_invocation(args, argv))
    return Bench(args, splits, spec, results, ap100=store)


def _rewrite_report(args: argparse.Namespace) -> int:
    """Statistics and tables of --out recomputed from its runs and per-query APs (no training,
    no new invocation recorded): for a change of the statistics or the report only."""
    results, store = _load_previous(args.out)
    _update_statistics(results, store)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=_json_default))
    tmp.replace(args.out)
    if args.markdown is not None:
        write_markdown(results, args.markdown)
    logger.info("statistics of %s recomputed", args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = _parse(argv)
    if args.report_only:
        return _rewrite_report(args)
    torch.set_num_threads(args.threads)
    splits = _load_splits(args)
    bench = _start(args, splits, argv)
    logger.info("splits %s", splits.sizes())
    if args.floats_from is not None:  # float baselines do not train: reuse an earlier result
        bench.results["floats"] = json.loads(args.floats_from.read_text())["floats"]
        bench.results["floats_from"] = str(args.floats_from)
    elif not bench.results["floats"]:
        _float_baselines(bench)
    bench.jobs = _job_list(args)
    _run_all(bench)
    _update_statistics(bench.results, bench.ap100)
    _save(bench)
    if args.markdown is not None:
        write_markdown(bench.results, args.markdown)
    logger.info("done in %.0f s; results in %s", bench.results["wall_seconds"], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
