"""Validation choice of the re-rank study (bench/rerank_study.py) on made-up codes and features."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from rerank_study import FEATURES, WEIGHTS, Encoded, markdown, study_candidates

BITS = 8


def _split(labels: list[int], rng: np.random.Generator, informative: str) -> Encoded:
    """Codes carry no label signal; only the `informative` feature separates the classes."""
    y = np.array(labels)
    bits = rng.random((len(y), BITS)) < 0.5
    centres = np.eye(4, dtype=np.float32)[y]
    noise = rng.normal(size=(len(y), 4)).astype(np.float32)
    features = {name: noise.copy() for name in FEATURES}
    features[informative] = centres + 0.05 * noise
    return Encoded(bits, features, y)


def test_the_feature_that_separates_the_classes_on_val_is_chosen() -> None:
    rng = np.random.default_rng(0)
    labels = [0, 1, 2, 3] * 10
    val, query, db = (_split(labels, rng, "hash output") for _ in range(3))
    block = study_candidates(val, query, db, c=len(labels), bits=BITS)
    assert len(block["rows"]) == 1 + len(FEATURES) * len(WEIGHTS)
    choice = block["validation_choice"]
    assert choice["feature"] == "hash output" and choice["weight"] == "0.0"
    assert choice["query_map@100"] > 0.95  # pure content ranking with a perfect feature
    assert block["vs_hamming"]["mean_diff"] > 0.5 and block["vs_hamming"]["p_value"] < 1e-3
    text = "\n".join(
        markdown([{"bits": BITS, "checkpoint": "x.pt", "seed": 0, "by_candidates": [block]}])
    )
    assert text.count("**(val choice)**") == 1 and "| hash output **(val choice)** | 0.0 |" in text


def test_plain_hamming_wins_val_ties() -> None:
    rng = np.random.default_rng(1)
    labels = [0, 1] * 8
    val, query, db = (_split(labels, rng, "blended") for _ in range(3))
    for split in (val, query, db):  # codes that are the labels: every ranking is already perfect
        split.bits = np.repeat(split.labels[:, None] == 1, BITS, axis=1)
    block = study_candidates(val, query, db, c=4, bits=BITS)
    assert block["validation_choice"]["feature"] == "hamming"
