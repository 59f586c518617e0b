"""Statistics of the retrieval benchmark over training seeds (numpy/scipy; no training here).

Runs are stored per (method key, seed); every run keeps its per-query AP@100 for each ranking.
From those, this module derives:

* the seed summary of a key: mean and standard deviation of each metric over its seeds;
* ACIR against the best baseline at one bit length: the baseline with the highest mean mAP@100,
  the ratio of means, and a paired Wilcoxon test on per-query AP averaged over the seeds both
  were trained with (a query's AP is averaged first, so the test is over queries, not seeds);
* each ablation against the full model, the same way, with the per-seed differences beside it;
* beside every Wilcoxon test, a seed-level Welch t-test on the per-seed mAP@100 of each side, with
  a 95% confidence interval of the difference. The Wilcoxon test pairs queries, so it sees only
  query-to-query noise; retraining with another seed moves mAP@100 by more than most effects
  measured here, and only the seed-level test accounts for that (with few seeds it has little
  power, and it is reported, not used for the verdicts).

* beside the Wilcoxon test, a paired t-test on the same per-query APs: it tests the mean
  difference, which is what mAP and the 1.05x ratio are about. The Wilcoxon test looks at ranks,
  and on skewed AP differences the two can point in opposite directions (many queries slightly
  better, a few much worse).

A verdict needs both paired tests at p < 0.05 and all three directions (mean difference, t, and
the Wilcoxon rank-biserial correlation) on the claimed side: a part "costs measurable mAP" when
removing it lowers the mean mAP@100 that way, and the target is met when, in addition, the ratio
of means is at least 1.05.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from retrieval_eval import paired_wilcoxon
from scipy.stats import ttest_ind, ttest_rel

RATIO_TARGET = 1.05
P_TARGET = 0.05
METRICS = ("map@100", "map@all", "p@10")


@dataclass
class APStore:
    """Per-query AP@100 arrays keyed by (method key, ranking mode, seed)."""

    arrays: dict[tuple[str, str, int], np.ndarray]

    def seeds(self, key: str, mode: str) -> list[int]:
        return sorted(s for k, m, s in self.arrays if k == key and m == mode)

    def mean_over(self, key: str, mode: str, seeds: list[int]) -> np.ndarray:
        """Per-query AP averaged over ``seeds`` (each must be present)."""
        return np.mean([self.arrays[(key, mode, s)] for s in seeds], axis=0)


def summarise(seed_runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean and sd of every metric over the seeds of one method key."""
    runs = list(seed_runs.values())
    modes = sorted(set.intersection(*(set(r["metrics"]) for r in runs)))
    metrics: dict[str, dict[str, float]] = {}
    spread: dict[str, dict[str, float]] = {}
    for mode in modes:
        values = {m: [float(r["metrics"][mode][m]) for r in runs] for m in METRICS}
        metrics[mode] = {m: float(np.mean(v)) for m, v in values.items()}
        spread[mode] = {
            m: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for m, v in values.items()
        }
    return {
        "seeds": sorted(int(s) for s in seed_runs),
        "metrics": metrics,
        "sd": spread,
        "best_val_map": float(np.mean([r["best_val_map"] for r in runs])),
        "best_epochs": [int(r["best_epoch"]) for r in runs],
        "train_seconds": float(np.mean([r["train_seconds"] for r in runs])),
    }


def _common_seeds(store: APStore, a: tuple[str, str], b: tuple[str, str]) -> list[int]:
    return sorted(set(store.seeds(*a)) & set(store.seeds(*b)))


def _per_seed_map(store: APStore, key: str, mode: str, seeds: list[int]) -> list[float]:
    return [float(store.arrays[(key, mode, s)].mean()) for s in seeds]


def seed_level_welch(ours: list[float], theirs: list[float]) -> dict[str, Any] | None:
    """Welch t-test of per-seed mAP@100, ours against theirs, and the 95% CI of the difference of
    means; None with fewer than two seeds on either side (no variance to estimate)."""
    if len(ours) < 2 or len(theirs) < 2:
        return None
    if np.ptp(ours) == 0 and np.ptp(theirs) == 0:  # no spread at all: the t statistic is undefined
        return None
    result = ttest_ind(ours, theirs, equal_var=False)
    interval = result.confidence_interval(confidence_level=0.95)
    return {
        "t": float(result.statistic),
        "df": float(result.df),
        "p_value": float(result.pvalue),
        "delta_ci95": [float(interval.low), float(interval.high)],
    }


def paired_t(ours: np.ndarray, theirs: np.ndarray) -> dict[str, Any]:
    """Paired t-test of per-query AP, ours against theirs, with the 95% CI of the mean
    difference; p = 1 and a zero-width interval when every difference is the same up to rounding
    (no variance: t is undefined)."""
    diff = np.asarray(ours, np.float64) - np.asarray(theirs, np.float64)
    if diff.size < 2 or np.ptp(diff) <= 1e-12:
        mean = float(diff.mean()) if diff.size else 0.0
        return {"t": 0.0, "p_value": 1.0, "delta_ci95": [mean, mean]}
    result = ttest_rel(ours, theirs)
    interval = result.confidence_interval(confidence_level=0.95)
    return {
        "t": float(result.statistic),
        "p_value": float(result.pvalue),
        "delta_ci95": [float(interval.low), float(interval.high)],
    }


def significant_in_direction(test: dict[str, Any], direction: int) -> bool:
    """Both paired tests at p < P_TARGET, with the mean difference and the Wilcoxon ranks on the
    side of ``direction`` (+1: ours higher, -1: ours lower)."""
    wilcoxon, t_test = test["wilcoxon"], test["paired_t"]
    return bool(
        wilcoxon["p_value"] < P_TARGET
        and t_test["p_value"] < P_TARGET
        and np.sign(test["delta"]) == direction
        and np.sign(wilcoxon["rank_biserial"]) == direction
    )


def paired(store: APStore, ours: tuple[str, str], theirs: tuple[str, str]) -> dict[str, Any]:
    """Ours against theirs over their common seeds: means, ratio, per-seed values, the paired
    tests over queries and the Welch test over seeds."""
    seeds = _common_seeds(store, ours, theirs)
    if not seeds:
        raise ValueError(f"no common seeds for {ours} and {theirs}")
    a, b = store.mean_over(*ours, seeds), store.mean_over(*theirs, seeds)
    per_a, per_b = _per_seed_map(store, *ours, seeds), _per_seed_map(store, *theirs, seeds)
    mean_a, mean_b = float(a.mean()), float(b.mean())
    return {
        "seeds": seeds,
        "ours": mean_a,
        "theirs": mean_b,
        "ratio": mean_a / mean_b if mean_b > 0 else float("inf"),
        "delta": mean_a - mean_b,
        "per_seed_delta": [x - y for x, y in zip(per_a, per_b, strict=True)],
        "wilcoxon": paired_wilcoxon(a, b),
        "paired_t": paired_t(a, b),
        "seed_level": seed_level_welch(per_a, per_b),
    }


def compare_with_best(
    store: APStore,
    summaries: dict[str, dict[str, Any]],
    bits: int,
    baselines: list[str],
    ours_mode: str,
    theirs_mode: str,
    ours_key: str | None = None,
) -> dict[str, Any] | None:
    """ACIR at ``bits`` (or the variant ``ours_key``) against the baseline with the best
    mAP@100 under ``theirs_mode``, each baseline averaged over the seeds it shares with ours."""
    ours_key = ours_key or f"acir@{bits}"
    if ours_key not in summaries:
        return None
    shared = {
        m: _common_seeds(store, (ours_key, ours_mode), (f"{m}@{bits}", theirs_mode))
        for m in baselines
        if f"{m}@{bits}" in summaries
    }
    candidates = {m: seeds for m, seeds in shared.items() if seeds}
    if not candidates:
        return None

    def mean_map(method: str) -> float:
        return float(store.mean_over(f"{method}@{bits}", theirs_mode, candidates[method]).mean())

    best = max(candidates, key=mean_map)
    test = paired(store, (ours_key, ours_mode), (f"{best}@{bits}", theirs_mode))
    return {
        "acir_ranking": ours_mode,
        "baseline_ranking": theirs_mode,
        "best_baseline": best,
        "best_baseline_map@100": test["theirs"],
        "acir_map@100": test["ours"],
        "ratio": test["ratio"],
        "per_seed_delta": test["per_seed_delta"],
        "seeds": test["seeds"],
        "wilcoxon": test["wilcoxon"],
        "paired_t": test["paired_t"],
        "seed_level": test["seed_level"],
        "target_met": bool(test["ratio"] >= RATIO_TARGET and significant_in_direction(test, 1)),
    }


def validation_scores(runs: dict[str, dict[str, Any]], bits: int) -> dict[str, float]:
    """Mean validation mAP of each ACIR configuration (full or an ablation) trained at ``bits``,
    over the seeds full ACIR was trained on. A configuration not yet trained on all of them is
    left out: means over different seeds would compare seed luck, not configurations."""
    full = runs.get(f"acir@{bits}")
    if full is None:
        return {}
    scores: dict[str, float] = {}
    for key, run in runs.items():
        if not (_is_acir(key) and key.endswith(f"@{bits}")):
            continue
        if all(seed in run["seeds"] for seed in full["seeds"]):
            values = [run["seeds"][seed]["best_val_map"] for seed in full["seeds"]]
            scores[key] = float(np.mean(values))
    return scores


def validation_choice(scores: dict[str, float]) -> str | None:
    """The configuration with the best validation score (``validation_scores``): what a
    practitioner would ship if picking on validation only."""
    return max(scores, key=scores.__getitem__) if scores else None


def _is_acir(key: str) -> bool:
    return key.split("@")[0].split("-")[0] == "acir"


def ablation_effect(store: APStore, full_key: str, ablated_key: str) -> dict[str, Any]:
    """What removing a part does, under each ranking; measured when it lowers mAP by both paired
    tests (see ``significant_in_direction``)."""
    out: dict[str, Any] = {}
    for mode in ("hamming", "content_guided", "content_ties", "hash_output"):
        if not store.seeds(ablated_key, mode):
            continue
        test = paired(store, (ablated_key, mode), (full_key, mode))
        test["costs_measurable_map"] = significant_in_direction(test, -1)
        out[mode] = test
    return out
