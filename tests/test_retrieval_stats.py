"""Seed statistics of the retrieval benchmark (bench/retrieval_stats.py) on made-up APs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from retrieval_stats import APStore, ablation_effect, compare_with_best, summarise

RNG = np.random.default_rng(0)
BASE = RNG.uniform(0.2, 0.8, 300)


def _store(shifts: dict[str, float], seeds: dict[str, list[int]]) -> APStore:
    arrays = {}
    for key, shift in shifts.items():
        for seed in seeds[key]:
            noise = np.random.default_rng(seed).normal(0, 0.01, BASE.size)
            arrays[(key, "hamming", seed)] = np.clip(BASE + shift + noise, 0, 1)
    return APStore(arrays)


def _summaries(store: APStore) -> dict[str, dict]:
    out = {}
    for key in {k for k, _, _ in store.arrays}:
        runs = {
            str(s): {
                "metrics": {
                    "hamming": {
                        m: float(store.arrays[(key, "hamming", s)].mean())
                        for m in ("map@100", "map@all", "p@10")
                    }
                },
                "best_val_map": 0.5,
                "best_epoch": 1,
                "train_seconds": 1.0,
            }
            for s in store.seeds(key, "hamming")
        }
        out[key] = summarise(runs)
    return out


def test_summary_is_mean_and_sample_sd_over_seeds() -> None:
    runs = {
        str(seed): {
            "metrics": {"hamming": {"map@100": v, "map@all": v, "p@10": v}},
            "best_val_map": v,
            "best_epoch": seed,
            "train_seconds": 10.0,
        }
        for seed, v in enumerate([0.5, 0.7])
    }
    summary = summarise(runs)
    assert summary["seeds"] == [0, 1]
    assert summary["metrics"]["hamming"]["map@100"] == pytest.approx(0.6)
    assert summary["sd"]["hamming"]["map@100"] == pytest.approx(np.std([0.5, 0.7], ddof=1))


def test_best_baseline_is_picked_by_mean_and_tested_on_common_seeds() -> None:
    seeds = {"acir@64": [0, 1, 2], "csq@64": [0, 1, 2], "dsh@64": [0]}
    store = _store({"acir@64": 0.1, "csq@64": 0.0, "dsh@64": -0.05}, seeds)
    result = compare_with_best(store, _summaries(store), 64, ["csq", "dsh"], "hamming", "hamming")
    assert result is not None
    assert result["best_baseline"] == "csq" and result["seeds"] == [0, 1, 2]
    assert len(result["per_seed_delta"]) == 3
    assert result["ratio"] > 1.05 and result["wilcoxon"]["p_value"] < 1e-6
    assert result["target_met"]


def test_an_equal_baseline_misses_the_target() -> None:
    seeds = {"acir@16": [0, 1], "csq@16": [0, 1]}
    store = _store({"acir@16": 0.0, "csq@16": 0.0}, seeds)
    result = compare_with_best(store, _summaries(store), 16, ["csq"], "hamming", "hamming")
    assert result is not None and not result["target_met"]


def test_ablation_costs_map_only_when_lower_and_significant() -> None:
    seeds = {"acir@64": [0, 1], "acir-no_pit@64": [0, 1], "acir-no_kan@64": [0, 1]}
    store = _store({"acir@64": 0.0, "acir-no_pit@64": -0.03, "acir-no_kan@64": 0.03}, seeds)
    lower = ablation_effect(store, "acir@64", "acir-no_pit@64")["hamming"]
    higher = ablation_effect(store, "acir@64", "acir-no_kan@64")["hamming"]
    assert lower["delta"] < 0 and lower["costs_measurable_map"]
    assert higher["delta"] > 0 and not higher["costs_measurable_map"]
