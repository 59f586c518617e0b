"""The retrieval benchmark's command line: where results go, and --report-only (no training)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import retrieval
import retrieval_report

QUERIES = 50
MACHINE = {"cpu": "test cpu", "cores": 2, "torch": "2.13.0", "device": "cpu"}
MODES = ("hamming", "content_guided", "content_ties")
# Per-seed mAP@100 shifts: ACIR ahead of CSQ on every seed, DSH behind both.
SHIFTS = {"acir@16": [0.06, 0.05, 0.07], "csq@16": [0.0, 0.01, -0.01], "dsh@16": [-0.05]}


def _run(ap: np.ndarray, modes: tuple[str, ...] = MODES) -> dict[str, Any]:
    value = float(ap.mean())
    metrics = {"map@100": value, "map@all": value, "p@10": value}
    return {
        "metrics": {mode: metrics for mode in modes},
        "best_val_map": value,
        "best_epoch": 1,
        "train_seconds": 1.0,
    }


def _saved_results(out: Path, modes: tuple[str, ...] = MODES) -> dict[str, Any]:
    """A results file as a finished run leaves it, statistics not yet computed."""
    base = np.random.default_rng(0).uniform(0.3, 0.7, QUERIES)
    arrays, runs = {}, {}
    for key, shifts in SHIFTS.items():
        runs[key] = {"seeds": {}}
        for seed, shift in enumerate(shifts):
            noise = np.random.default_rng([seed, *key.encode()]).normal(0, 0.02, QUERIES)
            ap = np.clip(base + shift + noise, 0, 1)
            arrays.update({f"{key}|{mode}|{seed}": ap for mode in modes})
            runs[key]["seeds"][str(seed)] = _run(ap, modes)
    results = {
        "dataset": "brain-atlas",
        "split_sizes": {"train": 10, "val": 5, "db": 20, "query": QUERIES},
        "budget": {"epochs": 1, "batch_size": 8, "warmup_epochs": 1, "lr": 0.002},
        "baseline_trunk": {"note": "same trunk"},
        "candidates": 10,
        "projection_dim": 8,
        "invocations": [{"command": "python bench/retrieval.py", "date": "d", "machine": MACHINE}],
        "wall_seconds": 5.0,
        "runs": runs,
        "comparisons": {},
        "ablations": {},
        "floats": {},
    }
    out.write_text(json.dumps(results))
    np.savez(out.with_suffix(".ap.npz"), **arrays)
    return results


def test_quick_runs_never_write_the_committed_results() -> None:
    assert retrieval._parse(["--quick"]).out == Path("bench/results/retrieval-quick.json")
    assert retrieval._parse(["--out", "elsewhere.json"]).out == Path("elsewhere.json")


def test_an_existing_results_file_is_not_replaced_without_asking(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("{}")
    with pytest.raises(SystemExit):
        retrieval._parse(["--out", str(out)])
    for flag in ("--resume", "--overwrite", "--report-only"):
        assert retrieval._parse(["--out", str(out), flag]).out == out


def test_report_only_recomputes_the_tests_without_training(tmp_path: Path) -> None:
    out, markdown = tmp_path / "r.json", tmp_path / "r.md"
    saved = _saved_results(out)
    assert retrieval.main(["--report-only", "--out", str(out), "--markdown", str(markdown)]) == 0
    results = json.loads(out.read_text())
    assert results["invocations"] == saved["invocations"]  # nothing ran, nothing recorded
    hamming = results["comparisons"]["16"][0]
    assert hamming["best_baseline"] == "csq" and hamming["seeds"] == [0, 1, 2]
    assert hamming["ratio"] > 1.05 and hamming["target_met"]
    assert hamming["seed_level"]["p_value"] < 0.05
    assert results["runs"]["acir@16"]["summary"]["seeds"] == [0, 1, 2]
    assert hamming["paired_t"]["p_value"] < 0.05 and hamming["wilcoxon"]["rank_biserial"] > 0
    assert "seed-level p" in markdown.read_text() and "paired t p" in markdown.read_text()


@pytest.mark.parametrize("with_hash_output", [False, True])
def test_the_hash_output_ranking_is_compared_only_where_it_was_recorded(
    tmp_path: Path, with_hash_output: bool
) -> None:
    out, markdown = tmp_path / "r.json", tmp_path / "r.md"
    _saved_results(out, (*MODES, "hash_output") if with_hash_output else MODES)
    assert retrieval.main(["--report-only", "--out", str(out), "--markdown", str(markdown)]) == 0
    rankings = [e["acir_ranking"] for e in json.loads(out.read_text())["comparisons"]["16"]]
    expected = ["hamming", "content_guided", "content_ties", "content_guided"]
    if with_hash_output:
        expected.append("hash_output")
    assert rankings == expected
    assert ("acir + re-ranked by hash output" in markdown.read_text()) == with_hash_output


def test_the_machine_record_names_the_cpu_generation_and_kernel_level() -> None:
    machine = retrieval._machine("cpu")
    assert machine["cpu_capability"] and machine["cpu"]
    line = retrieval_report._machine_line(machine)
    assert f"{machine['cpu_capability']} kernels" in line
    # Records from before the field existed render as they always did.
    assert retrieval_report._machine_line(MACHINE) == "test cpu, 2 cores, torch 2.13.0"
