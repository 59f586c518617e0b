"""What content-guided ranking can buy a trained ACIR checkpoint: which re-rank feature and which
Hamming weight, chosen on the validation split and reported on the queries.

No training. For each checkpoint: encode the val, query and db splits; rank val and query against
db by plain Hamming (ties by id), and by the service's re-rank (index.rerank) of the top C Hamming
candidates for each candidate count C, Hamming weight w (score = similarity - w x hamming / bits;
a w above the code length leaves content only to break Hamming ties) and re-rank feature:

- ``blended``: the PCA-128 blended feature the service stores (the checkpoint's own projection);
- ``hash output``: the network's continuous hash output u, the code before the sign.

Per (checkpoint, C) the setting with the best val mAP@100 is the validation choice; its per-query
AP@100 on the queries is compared by paired Wilcoxon tests with plain Hamming's and with the
service default's (blended feature, weight 0).

    python bench/rerank_study.py --checkpoints checkpoints/acir-compact-64.pt \\
        --json /tmp/rerank.json --markdown /tmp/rerank.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from retrieval_eval import evaluate_ranking, paired_wilcoxon

from app.evaluation import content_guided_ranking
from models.checkpoint import load_checkpoint
from models.data.manifest import load_split
from models.metrics import hamming_ranking
from models.training import codes_of, encode_outputs

WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, "ties")
FEATURES = ("blended", "hash output")
SERVICE_DEFAULT = ("blended", "0.0")  # app/settings.py: hamming_weight 0


@dataclass
class Encoded:
    """One split as the study needs it."""

    bits: np.ndarray
    features: dict[str, np.ndarray]  # re-rank feature name -> [n, d]
    labels: np.ndarray


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoints", type=Path, nargs="+", required=True)
    p.add_argument("--data", type=Path, default=Path("data/brain-atlas"), help="BrainAtlas2D dir")
    p.add_argument("--candidates", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--markdown", type=Path, help="write the tables here")
    return p.parse_args(argv)


def encode_split(checkpoint: Any, data: Path, split: str) -> Encoded:
    images = load_split(data, split)
    outputs, raw = encode_outputs(checkpoint.network, images, checkpoint.preprocess)
    features = {"blended": checkpoint.projection.apply(raw), "hash output": outputs}
    return Encoded(codes_of(outputs), features, images.labels)


def _weight_value(weight: float | str, bits: int) -> float:
    return float(bits + 1) if weight == "ties" else float(weight)


def rank_all(
    queries: Encoded, db: Encoded, candidates: int, bits: int
) -> dict[tuple[str, str], np.ndarray]:
    """(feature, weight label) -> full rankings [Q, N]; ("hamming", "-") is plain Hamming."""
    rankings = {("hamming", "-"): hamming_ranking(queries.bits, db.bits)}
    for feature in FEATURES:
        for weight in WEIGHTS:
            rankings[(feature, str(weight))] = content_guided_ranking(
                queries.bits,
                db.bits,
                queries.features[feature],
                db.features[feature],
                candidates,
                hamming_weight=_weight_value(weight, bits),
            )
    return rankings


def study_candidates(val: Encoded, query: Encoded, db: Encoded, c: int, bits: int) -> dict:
    """Rows for one candidate count, the validation choice and its test against Hamming."""
    val_rankings = rank_all(val, db, c, bits)
    query_rankings = rank_all(query, db, c, bits)
    rows, query_ap = [], {}
    for key, ranking in query_rankings.items():
        val_metrics, _ = evaluate_ranking(val_rankings[key], val.labels, db.labels)
        metrics, query_ap[key] = evaluate_ranking(ranking, query.labels, db.labels)
        rows.append(
            {
                "feature": key[0],
                "weight": key[1],
                "val_map@100": val_metrics["map@100"],
                "query_map@100": metrics["map@100"],
                "query_p@10": metrics["p@10"],
            }
        )
    # the earliest row wins a tie on val: plain Hamming first, then the smaller weight
    best = max(rows, key=lambda r: r["val_map@100"])
    chosen = (best["feature"], best["weight"])
    return {
        "candidates": c,
        "rows": rows,
        "validation_choice": best,
        "vs_hamming": paired_wilcoxon(query_ap[chosen], query_ap[("hamming", "-")]),
        "vs_service_default": paired_wilcoxon(query_ap[chosen], query_ap[SERVICE_DEFAULT]),
    }


def study_checkpoint(path: Path, data: Path, candidates: list[int]) -> dict[str, Any]:
    ckpt = load_checkpoint(path)
    started = time.perf_counter()
    val, query, db = (encode_split(ckpt, data, s) for s in ("val", "query", "db"))
    bits = int(ckpt.bits)
    return {
        "checkpoint": str(path),
        "checkpoint_sha256": ckpt.sha256,
        "bits": bits,
        "seed": (ckpt.training or {}).get("settings", {}).get("seed"),
        "by_candidates": [study_candidates(val, query, db, c, bits) for c in candidates],
        "seconds": round(time.perf_counter() - started, 1),
    }


def markdown(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for res in results:
        for block in res["by_candidates"]:
            choice = block["validation_choice"]
            lines += [
                f"### {res['bits']} bits, {block['candidates']} candidates "
                f"(`{res['checkpoint']}`, seed {res['seed']})",
                "",
                "| re-rank feature | Hamming weight | val mAP@100 | query mAP@100 | query P@10 |",
                "|---|---|---:|---:|---:|",
            ]
            for r in block["rows"]:
                mark = " **(val choice)**" if r is choice else ""
                lines.append(
                    f"| {r['feature']}{mark} | {r['weight']} | {r['val_map@100']:.4f} "
                    f"| {r['query_map@100']:.4f} | {r['query_p@10']:.4f} |"
                )
            lines.append("")
            for label, key in (
                ("plain Hamming", "vs_hamming"),
                ("the service default", "vs_service_default"),
            ):
                test = block[key]
                lines.append(
                    f"Validation choice against {label} on the queries: mAP@100 "
                    f"{test['mean_diff']:+.4f}, Wilcoxon p {test['p_value']:.2g} "
                    f"(rank-biserial {test['rank_biserial']:+.2f})."
                )
            lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    results = [study_checkpoint(p, args.data, args.candidates) for p in args.checkpoints]
    text = "\n".join(markdown(results))
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if args.markdown is not None:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
