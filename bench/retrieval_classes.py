"""Where the retrieval benchmark's mAP@100 comes from: per-class means and a per-class oracle.

Reads a results file of bench/retrieval.py and its per-query APs (no training, no model): for
each bit length, the mAP@100 of each query class for the chosen methods (averaged over the seeds
each has), and the "best of the methods per class" oracle: every class scored by whichever
method does best on it. The oracle's ratio to the best baseline bounds what any mix of the
methods' per-class strengths could reach, which tells how far a target like 1.05x lies.

    python bench/retrieval_classes.py --results bench/results/retrieval.json \\
        --methods acir csq dsh --markdown /tmp/classes.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from retrieval_data import load_splits

from models.baselines import BASELINE_NAMES


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--results", type=Path, default=Path("bench/results/retrieval.json"))
    p.add_argument("--data", type=Path, default=Path("data/brain-atlas"), help="BrainAtlas2D dir")
    p.add_argument("--methods", nargs="+", default=["acir", "csq", "dsh"])
    p.add_argument("--ranking", default="hamming")
    p.add_argument("--markdown", type=Path, help="write the tables here too")
    return p.parse_args(argv)


def seed_mean_ap(arrays: dict[str, np.ndarray], key: str, ranking: str) -> np.ndarray | None:
    """Per-query AP@100 of ``key`` averaged over every seed saved for it (None: no run)."""
    runs = [ap for name, ap in arrays.items() if name.startswith(f"{key}|{ranking}|")]
    return np.mean(runs, axis=0) if runs else None


def per_class(ap: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """Mean AP of the queries of each class (NaN for a class without queries)."""
    return np.array(
        [ap[labels == k].mean() if np.any(labels == k) else np.nan for k in range(classes)]
    )


def bits_table(
    per_method: dict[str, np.ndarray], names: list[str], overall: dict[str, float]
) -> list[str]:
    """Markdown rows: one per class, then the overall mAP@100 and the per-class oracle."""
    methods = list(per_method)
    rows = [f"| class | {' | '.join(methods)} |", "|---|" + "---:|" * len(methods)]
    for k, name in enumerate(names):
        rows.append(f"| {name} | " + " | ".join(f"{per_method[m][k]:.3f}" for m in methods) + " |")
    rows.append("| **all queries** | " + " | ".join(f"{overall[m]:.4f}" for m in methods) + " |")
    return rows


def oracle_line(
    per_method: dict[str, np.ndarray], counts: np.ndarray, acir: float, best: tuple[str, float]
) -> str:
    """The best-of-methods-per-class mAP@100 against the best baseline's (name, mAP@100)."""
    best_per_class = np.nanmax(np.stack(list(per_method.values())), axis=0)
    oracle = float(np.nansum(best_per_class * counts) / counts.sum())
    name, value = best
    return (
        f"best of {', '.join(per_method)} per class: {oracle:.4f} = {oracle / value:.3f}x the best "
        f"baseline ({name}, {value:.4f}); ACIR alone: {acir / value:.3f}x"
    )


def best_baseline(arrays: dict[str, np.ndarray], bits: int, ranking: str) -> tuple[str, float]:
    """The baseline with the highest seed-mean mAP@100 at ``bits``, whichever were passed."""
    means = {}
    for name in BASELINE_NAMES:
        ap = seed_mean_ap(arrays, f"{name}@{bits}", ranking)
        if ap is not None:
            means[name] = float(ap.mean())
    best = max(means, key=lambda name: means[name])
    return best, means[best]


def report(
    results: dict[str, Any],
    arrays: dict[str, np.ndarray],
    labels: np.ndarray,
    names: list[str],
    methods: list[str],
    ranking: str,
) -> list[str]:
    counts = np.bincount(labels, minlength=len(names)).astype(float)
    bits_seen = sorted({int(k.split("@")[1]) for k in results["runs"]}, reverse=True)
    lines: list[str] = []
    for bits in bits_seen:
        per_method: dict[str, np.ndarray] = {}
        overall: dict[str, float] = {}
        for method in methods:
            ap = seed_mean_ap(arrays, f"{method}@{bits}", ranking)
            if ap is not None:
                per_method[method] = per_class(ap, labels, len(names))
                overall[method] = float(ap.mean())
        if not per_method:
            continue
        lines += [f"#### {bits} bits ({ranking} ranking, mean over each method's seeds)", ""]
        lines += bits_table(per_method, names, overall)
        if "acir" in overall:
            best = best_baseline(arrays, bits, ranking)
            lines += ["", oracle_line(per_method, counts, overall["acir"], best)]
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    results = json.loads(args.results.read_text())
    b = results["budget"]
    splits = load_splits(
        b["dataset"], args.data, b["data_seed"], b["max_train"], b["max_db"], b["max_query"]
    )
    with np.load(args.results.with_suffix(".ap.npz")) as saved:
        arrays = {name: saved[name] for name in saved.files}
    names = list(splits.train.class_names)
    lines = report(results, arrays, splits.query.labels, names, args.methods, args.ranking)
    text = "\n".join(lines)
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
