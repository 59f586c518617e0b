"""Per-class view of the retrieval benchmark (bench/retrieval_classes.py) on made-up APs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from retrieval_classes import best_baseline, oracle_line, per_class, seed_mean_ap

LABELS = np.array([0, 0, 1, 1, 1, 2])


def test_per_class_means_follow_the_query_labels() -> None:
    ap = np.array([0.2, 0.4, 1.0, 0.5, 0.0, 0.9])
    means = per_class(ap, LABELS, 4)
    assert means[:3] == pytest.approx([0.3, 0.5, 0.9])
    assert np.isnan(means[3])  # a class without queries


def test_seeds_are_averaged_and_the_best_baseline_is_picked_among_all_saved() -> None:
    arrays = {
        "acir@16|hamming|0": np.full(6, 0.8),
        "acir@16|hamming|1": np.full(6, 0.6),
        "csq@16|hamming|0": np.full(6, 0.5),
        "dsh@16|hamming|0": np.full(6, 0.65),
        "dsh@32|hamming|0": np.full(6, 0.99),
    }
    assert seed_mean_ap(arrays, "acir@16", "hamming") == pytest.approx(np.full(6, 0.7))
    assert seed_mean_ap(arrays, "hashnet@16", "hamming") is None
    assert best_baseline(arrays, 16, "hamming") == ("dsh", pytest.approx(0.65))


def test_the_oracle_takes_each_class_from_the_method_best_at_it() -> None:
    per_method = {"acir": np.array([0.9, 0.4]), "csq": np.array([0.5, 0.8])}
    counts = np.array([3.0, 1.0])
    line = oracle_line(per_method, counts, acir=0.775, best=("csq", 0.575))
    # (0.9·3 + 0.8·1) / 4 = 0.875, against CSQ's 0.575
    assert "0.8750" in line and f"{0.875 / 0.575:.3f}x" in line and f"{0.775 / 0.575:.3f}x" in line
