"""Markdown tables from the retrieval benchmark's JSON results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_MODES = {"hamming": "", "content_guided": " + content-guided ranking"}


def _metric_cells(metrics: dict[str, float]) -> str:
    return f"{metrics['map@100']:.4f} | {metrics['map@all']:.4f} | {metrics['p@10']:.4f}"


def _method_rows(results: dict[str, Any]) -> list[str]:
    rows = [
        "| method | bits | mAP@100 | mAP@all | P@10 | train s | best epoch (val mAP) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, run in results["runs"].items():
        name, bits = key.split("@")
        for mode, suffix in _MODES.items():
            if mode not in run["metrics"]:
                continue
            cells = _metric_cells(run["metrics"][mode])
            selection = f"{run['best_epoch']} ({run['best_val_map']:.3f})"
            rows.append(
                f"| {name}{suffix} | {bits} | {cells} | {run['train_seconds']:.0f} | {selection} |"
            )
    for name, entry in results["floats"].items():
        if "metrics" in entry:
            rows.append(f"| {name} (cosine) | float | {_metric_cells(entry['metrics'])} | – | – |")
        else:
            rows.append(f"| {name} | float | failed: {entry.get('error', '?')} | | | | |")
    return rows


def _comparison_rows(results: dict[str, Any]) -> list[str]:
    rows = [
        "| bits | ACIR ranking | baseline ranking | best baseline (mAP@100) | ACIR mAP@100 "
        "| ratio | Wilcoxon p | target ≥1.05×, p<0.05 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for bits, entries in results["comparisons"].items():
        for e in entries:
            best = f"{e['best_baseline']} ({e['best_baseline_map@100']:.4f})"
            met = "met" if e["target_met"] else "**missed**"
            rows.append(
                f"| {bits} | {e['acir_ranking']} | {e['baseline_ranking']} | {best} "
                f"| {e['acir_map@100']:.4f} | {e['ratio']:.3f} "
                f"| {e['wilcoxon']['p_value']:.2g} | {met} |"
            )
    return rows


def _ablation_rows(results: dict[str, Any]) -> list[str]:
    runs = results["runs"]
    ablated = [k for k in runs if k.startswith("acir-")]
    if not ablated:
        return []
    bits = ablated[0].split("@")[1]
    full = runs.get(f"acir@{bits}")
    if full is None:
        return []
    ref = full["metrics"]["content_guided"]["map@100"]
    rows = [
        f"| variant ({bits} bits) | mAP@100 Hamming | mAP@100 content-guided | Δ vs full |",
        "|---|---|---|---|",
        f"| full ACIR | {full['metrics']['hamming']['map@100']:.4f} | {ref:.4f} | – |",
    ]
    for key in ablated:
        m = runs[key]["metrics"]
        cg = m["content_guided"]["map@100"]
        name = key.split("@")[0].removeprefix("acir-")
        rows.append(f"| {name} | {m['hamming']['map@100']:.4f} | {cg:.4f} | {cg - ref:+.4f} |")
    no_rerank = full["metrics"]["hamming"]["map@100"]
    rows.append(f"| no re-ranking | {no_rerank:.4f} | – | {no_rerank - ref:+.4f} |")
    return rows


def _ranking_lines(results: dict[str, Any]) -> list[str]:
    det, rob = results.get("determinism"), results.get("robustness")
    if det is None or rob is None:
        return []
    lines = [
        f"Insertion-order shuffle, {det['queries']} queries, top-{det['k']} lists that differ: "
        f"content-guided {det['content_guided_differing']}, service Hamming (id tie-break) "
        f"{det['service_hamming_differing']}, Hamming with insertion-order ties "
        f"{det['insertion_order_hamming_differing']}.",
        "",
        f"| perturbation | top-{rob['k']} overlap, content-guided "
        f"| top-{rob['k']} overlap, Hamming |",
        "|---|---|---|",
    ]
    for name in rob["content_guided"]:
        lines.append(f"| {name} | {rob['content_guided'][name]:.3f} | {rob['hamming'][name]:.3f} |")
    return lines


def _machine_line(machine: dict[str, Any], settings: dict[str, Any]) -> str:
    line = f"{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}"
    if "gpu" in machine:
        line += f"; trained on {machine['gpu']} ({machine['device']})"
    jobs = settings.get("jobs", 1)
    return line + (f"; {jobs} trainings at once" if jobs > 1 else "")


def render_markdown(results: dict[str, Any]) -> str:
    machine, settings = results["machine"], results["settings"]
    head = [
        f"## Retrieval quality ({results['dataset']})",
        "",
        f"- command: `{results['command']}`",
        f"- date: {results['date']}; commit {results.get('git_commit')}",
        f"- machine: {_machine_line(machine, settings)}",
        f"- wall time: {results['wall_seconds']:.0f} s",
        f"- splits: {results['split_sizes']}",
        f"- budget: {settings['epochs']} epochs, batch {settings['batch_size']},"
        f" warm-up {settings['warmup_epochs']},"
        f" lr {settings['lr']}, seed {settings['seed']}; baselines: "
        f"{results['baseline_trunk']['note']} (ACIR trunk without DaRF, PiT and KAN)",
        f"- content-guided ranking: top {results['candidates']} Hamming candidates re-ordered by"
        f" cosine of PCA-{results['projection_dim']} blended features, id tie-break",
        "",
    ]
    sections = [
        ("### Methods (queries vs database)", _method_rows(results)),
        ("### ACIR against the best baseline", _comparison_rows(results)),
        ("### Ablations", _ablation_rows(results)),
        ("### Content-guided ranking: determinism and robustness", _ranking_lines(results)),
    ]
    body = [line for title, rows in sections if rows for line in [title, "", *rows, ""]]
    return "\n".join(head + body)


def write_markdown(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(results))
