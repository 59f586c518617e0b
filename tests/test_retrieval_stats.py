"""Seed statistics of the retrieval benchmark (bench/retrieval_stats.py) on made-up APs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from retrieval_eval import paired_wilcoxon, rank_biserial
from retrieval_stats import (
    APStore,
    ablation_effect,
    compare_with_best,
    paired_t,
    seed_level_welch,
    summarise,
    validation_choice,
    validation_scores,
)

RNG = np.random.default_rng(0)
BASE = RNG.uniform(0.2, 0.8, 300)


def _store(shifts: dict[str, float], seeds: dict[str, list[int]]) -> APStore:
    arrays = {}
    for key, shift in shifts.items():
        for seed in seeds[key]:
            noise = np.random.default_rng([seed, *key.encode()]).normal(0, 0.01, BASE.size)
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


def test_best_baseline_is_judged_on_the_seeds_it_shares_with_acir() -> None:
    seeds = {"acir@64": [0, 1], "csq@64": [0, 1], "dsh@64": [0, 1, 2]}
    arrays = {}
    for key, shift in {"acir@64": 0.1, "csq@64": 0.0, "dsh@64": -0.02}.items():
        for seed in seeds[key]:
            # dsh's extra seed (one ACIR lacks) is far better; it must not make dsh the best
            lift = 0.3 if (key, seed) == ("dsh@64", 2) else shift
            arrays[(key, "hamming", seed)] = np.clip(BASE + lift, 0, 1)
    store = APStore(arrays)
    summaries = _summaries(store)
    assert (
        summaries["dsh@64"]["metrics"]["hamming"]["map@100"]
        > summaries["csq@64"]["metrics"]["hamming"]["map@100"]
    )
    result = compare_with_best(store, summaries, 64, ["csq", "dsh"], "hamming", "hamming")
    assert result is not None and result["best_baseline"] == "csq"


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


def _seed_shifted_store(shifts: dict[str, list[float]]) -> APStore:
    """Every seed of a key moves all its queries by that seed's shift (retraining noise)."""
    return APStore(
        {
            (key, "hamming", seed): np.clip(BASE + shift, 0, 1)
            for key, per_seed in shifts.items()
            for seed, shift in enumerate(per_seed)
        }
    )


def test_seed_noise_is_seen_by_the_seed_level_test_not_by_wilcoxon() -> None:
    # ACIR ahead by 0.01 on average, but its seeds scatter by ±0.03: every query agrees on the
    # direction (Wilcoxon p tiny), while three seeds cannot tell the means apart.
    shifts = {"acir@32": [0.04, -0.02, 0.01], "csq@32": [0.0, 0.002, -0.002]}
    store = _seed_shifted_store(shifts)
    result = compare_with_best(store, _summaries(store), 32, ["csq"], "hamming", "hamming")
    assert result is not None and result["wilcoxon"]["p_value"] < 1e-6
    seed_level = result["seed_level"]
    assert seed_level["p_value"] > 0.3
    low, high = seed_level["delta_ci95"]
    assert low < 0 < high and low < result["acir_map@100"] - result["best_baseline_map@100"] < high


def test_a_consistent_lead_over_seeds_is_significant_at_the_seed_level() -> None:
    test = seed_level_welch([0.85, 0.86, 0.855], [0.80, 0.805, 0.81])
    assert test is not None and test["p_value"] < 0.01
    assert 0 < test["delta_ci95"][0] < 0.05 < test["delta_ci95"][1]


def test_seed_level_test_needs_two_seeds_a_side() -> None:
    assert seed_level_welch([0.8], [0.7, 0.71]) is None
    assert seed_level_welch([0.8, 0.8], [0.7, 0.7]) is None  # no spread: t is undefined


def _val_run(by_seed: dict[int, float]) -> dict[str, Any]:
    return {"seeds": {str(s): {"best_val_map": v} for s, v in by_seed.items()}}


def test_validation_choice_picks_the_acir_configuration_best_on_validation() -> None:
    runs = {
        "acir@32": _val_run({0: 0.80}),
        "acir-no_pit@32": _val_run({0: 0.84}),
        "csq@32": _val_run({0: 0.90}),  # a baseline is never a candidate
        "acir-no_darf@64": _val_run({0: 0.95}),  # another length is never a candidate
    }
    assert validation_choice(validation_scores(runs, 32)) == "acir-no_pit@32"
    assert validation_choice(validation_scores(runs, 16)) is None


def test_validation_compares_configurations_on_full_acirs_seeds_only() -> None:
    runs = {
        "acir@64": _val_run({0: 0.80, 1: 0.70, 2: 0.72}),
        # best on seed 0 alone, but not yet trained on seeds 1 and 2: not a candidate
        "acir-no_darf@64": _val_run({0: 0.85}),
        # an extra seed full ACIR lacks does not count towards the score
        "acir-no_pit@64": _val_run({0: 0.79, 1: 0.72, 2: 0.74, 3: 0.20}),
    }
    scores = validation_scores(runs, 64)
    assert set(scores) == {"acir@64", "acir-no_pit@64"}
    assert scores["acir-no_pit@64"] == pytest.approx(0.75)
    assert validation_choice(scores) == "acir-no_pit@64"


def test_a_chosen_variant_is_compared_in_place_of_full_acir() -> None:
    seeds = {"acir@64": [0, 1], "acir-no_pit@64": [0, 1], "csq@64": [0, 1]}
    store = _store({"acir@64": 0.0, "acir-no_pit@64": 0.08, "csq@64": 0.0}, seeds)
    summaries = _summaries(store)
    full = compare_with_best(store, summaries, 64, ["csq"], "hamming", "hamming")
    chosen = compare_with_best(
        store, summaries, 64, ["csq"], "hamming", "hamming", "acir-no_pit@64"
    )
    assert full is not None and chosen is not None
    assert chosen["acir_map@100"] > full["acir_map@100"] + 0.05
    assert chosen["best_baseline_map@100"] == full["best_baseline_map@100"]


def _skewed_pair() -> tuple[np.ndarray, np.ndarray]:
    """Ablated APs a little higher on 80% of queries and much lower on the rest: the ranks favour
    the ablation, the mean favours the full model."""
    full = np.clip(BASE, 0.15, 0.85)
    step = np.where(np.arange(BASE.size) % 5 == 0, -0.1, 0.01)
    noise = np.random.default_rng(7).normal(0, 0.001, BASE.size)
    return full + step + noise, full


def test_rank_biserial_is_signed_by_the_winning_side() -> None:
    assert rank_biserial(np.array([0.1, 0.2, 0.3])) == pytest.approx(1.0)
    assert rank_biserial(np.array([-0.1, -0.2, 0.0])) == pytest.approx(-1.0)
    assert rank_biserial(np.zeros(4)) == 0.0
    ablated, full = _skewed_pair()
    assert ablated.mean() < full.mean() and rank_biserial(ablated - full) > 0


def test_paired_t_interval_holds_the_mean_difference() -> None:
    ablated, full = _skewed_pair()
    test = paired_t(ablated, full)
    low, high = test["delta_ci95"]
    assert test["p_value"] < 1e-4 and test["t"] < 0
    assert low < (ablated - full).mean() < high < 0
    assert paired_t(full + 0.01, full)["p_value"] == 1.0  # a constant shift has no variance


def test_an_ablation_the_ranks_and_the_mean_disagree_on_is_not_measured() -> None:
    ablated, full = _skewed_pair()
    assert paired_wilcoxon(ablated, full)["p_value"] < 0.05  # ranks: ablation ahead
    store = APStore({("acir@64", "hamming", 0): full, ("acir-no_kan@64", "hamming", 0): ablated})
    effect = ablation_effect(store, "acir@64", "acir-no_kan@64")["hamming"]
    assert effect["delta"] < 0 and effect["paired_t"]["p_value"] < 0.05
    assert not effect["costs_measurable_map"]
