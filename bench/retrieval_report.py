"""Markdown tables from the retrieval benchmark's JSON results (seed means, tests, ablations)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_MODES = {
    "hamming": "",
    "content_guided": " + content-guided ranking",
    "content_ties": " + content tie-break",
    "hash_output": " + re-ranked by hash output",
}


_HASH_OUTPUT_NOTE = (
    "; re-ranked by hash output: the same candidates re-ordered by cosine of the continuous"
    " hash output (the code before the sign)"
)


def _records_hash_output(results: dict[str, Any]) -> bool:
    return any(
        "hash_output" in run["metrics"]
        for entry in results["runs"].values()
        for run in entry["seeds"].values()
    )


def _value(summary: dict[str, Any], mode: str, metric: str) -> str:
    mean = summary["metrics"][mode][metric]
    if len(summary["seeds"]) < 2:
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {summary['sd'][mode][metric]:.4f}"


def _method_rows(results: dict[str, Any]) -> list[str]:
    rows = [
        "| method | bits | seeds | mAP@100 | mAP@all | P@10 | train s "
        "| best epochs (mean val mAP) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, entry in results["runs"].items():
        name, bits = key.split("@")
        summary = entry["summary"]
        seeds = ",".join(str(s) for s in summary["seeds"])
        selection = f"{summary['best_epochs']} ({summary['best_val_map']:.3f})"
        for mode, suffix in _MODES.items():
            if mode not in summary["metrics"]:
                continue
            cells = " | ".join(_value(summary, mode, m) for m in ("map@100", "map@all", "p@10"))
            rows.append(
                f"| {name}{suffix} | {bits} | {seeds} | {cells} "
                f"| {summary['train_seconds']:.0f} | {selection} |"
            )
    for name, entry in results["floats"].items():
        if "metrics" in entry:
            m = entry["metrics"]
            cells = f"{m['map@100']:.4f} | {m['map@all']:.4f} | {m['p@10']:.4f}"
            rows.append(f"| {name} (cosine) | float | – | {cells} | – | – |")
        else:
            rows.append(f"| {name} | float | – | failed: {entry.get('error', '?')} | | | | |")
    return rows


def _deltas(values: list[float]) -> str:
    return ", ".join(f"{v:+.4f}" for v in values)


def _p_and_interval(test: dict[str, Any]) -> str:
    """'p [low, high]' of a t-test and the 95% CI of its difference."""
    low, high = test["delta_ci95"]
    return f"{test['p_value']:.2g} [{low:+.3f}, {high:+.3f}]"


def _seed_level(test: dict[str, Any] | None) -> str:
    """Welch p over seeds and the 95% CI of the difference; '–' where a side has one seed."""
    return _p_and_interval(test) if test else "–"


QUERY_TEST_HEADER = "Wilcoxon p (r) | paired t p [95% CI of Δ]"


def _query_tests(test: dict[str, Any]) -> str:
    """Wilcoxon p (rank-biserial r) and paired-t p [95% CI of Δ], both over queries."""
    wilcoxon = test["wilcoxon"]
    return (
        f"{wilcoxon['p_value']:.2g} ({wilcoxon['rank_biserial']:+.2f}) "
        f"| {_p_and_interval(test['paired_t'])}"
    )


def _comparison_rows(results: dict[str, Any]) -> list[str]:
    rows = [
        "| bits | ACIR ranking | baseline ranking | best baseline (mAP@100) | ACIR mAP@100 "
        f"| ratio | Δ per seed | {QUERY_TEST_HEADER} | seed-level p [95% CI of Δ] "
        "| target ≥1.05×, p<0.05 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for bits, entries in results["comparisons"].items():
        for e in entries:
            best = f"{e['best_baseline']} ({e['best_baseline_map@100']:.4f})"
            met = "met" if e["target_met"] else "**missed**"
            rows.append(
                f"| {bits} | {e['acir_ranking']} | {e['baseline_ranking']} | {best} "
                f"| {e['acir_map@100']:.4f} | {e['ratio']:.3f} | {_deltas(e['per_seed_delta'])} "
                f"| {_query_tests(e)} | {_seed_level(e.get('seed_level'))} | {met} |"
            )
    return rows


def _choice_rows(results: dict[str, Any]) -> list[str]:
    """The ACIR configuration picked on validation mAP at each length, against the best baseline."""
    choices = results.get("validation_choice", {})
    if not choices:
        return []
    rows = [
        "| bits | configurations (mean val mAP) | chosen | best baseline (mAP@100) "
        f"| chosen mAP@100 | ratio | Δ per seed | {QUERY_TEST_HEADER} "
        "| seed-level p [95% CI of Δ] | target ≥1.05×, p<0.05 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for bits, e in choices.items():
        options = ", ".join(f"{k.split('@')[0]} {v:.3f}" for k, v in e["val_map"].items())
        best = f"{e['best_baseline']} ({e['best_baseline_map@100']:.4f})"
        met = "met" if e["target_met"] else "**missed**"
        rows.append(
            f"| {bits} | {options} | {e['chosen'].split('@')[0]} | {best} "
            f"| {e['acir_map@100']:.4f} | {e['ratio']:.3f} | {_deltas(e['per_seed_delta'])} "
            f"| {_query_tests(e)} | {_seed_level(e.get('seed_level'))} | {met} |"
        )
    return rows


def _ablation_rows(results: dict[str, Any]) -> list[str]:
    ablations = results.get("ablations", {})
    if not ablations:
        return []
    rows = [
        "| variant | bits | ranking | mAP@100 without the part | full ACIR | Δ | Δ per seed "
        f"| {QUERY_TEST_HEADER} | seed-level p [95% CI of Δ] | costs measurable mAP |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, effects in ablations.items():
        variant, bits = key.split("@")
        name = variant.removeprefix("acir-")
        for mode, e in effects.items():
            verdict = "yes" if e["costs_measurable_map"] else "**no**"
            rows.append(
                f"| {name} | {bits} | {mode} | {e['ours']:.4f} | {e['theirs']:.4f} "
                f"| {e['delta']:+.4f} "
                f"| {_deltas(e['per_seed_delta'])} | {_query_tests(e)} "
                f"| {_seed_level(e.get('seed_level'))} | {verdict} |"
            )
    rows.extend(_reranking_rows(results))
    return rows


def _reranking_rows(results: dict[str, Any]) -> list[str]:
    """'Without re-ranking' as an ablation: full ACIR's Hamming ranking against content-guided."""
    rows = []
    for bits, entries in results["comparisons"].items():
        if f"acir@{bits}" not in results["runs"] or not entries:
            continue
        summary = results["runs"][f"acir@{bits}"]["summary"]["metrics"]
        ham, cgr = summary["hamming"]["map@100"], summary["content_guided"]["map@100"]
        rows.append(
            f"| no re-ranking | {bits} | hamming vs content-guided | {ham:.4f} | {cgr:.4f} "
            f"| {ham - cgr:+.4f} | | | | | {'yes' if ham < cgr else '**no**'} |"
        )
    return rows


def _ranking_lines(results: dict[str, Any]) -> list[str]:
    det, rob = results.get("determinism"), results.get("robustness")
    if det is None or rob is None:
        return []
    lines = [
        f"Model: {results.get('ranking_checks_model', 'ACIR')}. Insertion-order shuffle, "
        f"{det['queries']} queries, top-{det['k']} lists that differ: "
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


def _machine_line(machine: dict[str, Any]) -> str:
    cpu = machine["cpu"]
    if "cpu_capability" in machine:  # recorded since 2026-12-07
        family = f"family {machine.get('cpu_family', '?')} model {machine.get('cpu_model', '?')}"
        cpu += f" ({family}, {machine['cpu_capability']} kernels)"
    line = f"{cpu}, {machine['cores']} cores, torch {machine['torch']}"
    if "gpu" in machine:
        line += f"; trained on {machine['gpu']} ({machine['device']})"
    return line


def _invocation_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    for i, inv in enumerate(results["invocations"], 1):
        lines.append(
            f"{i}. `{inv['command']}`: {inv['date']}, commit {inv.get('git_commit')}, "
            f"{_machine_line(inv['machine'])}, {inv.get('wall_seconds', 0):.0f} s"
        )
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    budget = results["budget"]
    head = [
        f"## Retrieval quality ({results['dataset']})",
        "",
        "Commands (later ones add runs to the same file with `--resume`):",
        "",
        *_invocation_lines(results),
        "",
        f"- wall time in all: {results['wall_seconds']:.0f} s",
        f"- splits: {results['split_sizes']}",
        f"- budget: {budget['epochs']} epochs, batch {budget['batch_size']},"
        f" warm-up {budget['warmup_epochs']}, lr {budget['lr']}; every method, ablation and seed"
        f" the same; baselines: {results['baseline_trunk']['note']} (ACIR trunk without DaRF,"
        " PiT and KAN)",
        f"- content-guided ranking: top {results['candidates']} Hamming candidates re-ordered by"
        f" cosine of PCA-{results['projection_dim']} blended features, id tie-break"
        + (_HASH_OUTPUT_NOTE if _records_hash_output(results) else ""),
        "- values: mean ± sd over the seeds listed; tests over queries (the verdicts), on"
        " per-query AP@100 averaged over the seeds both sides share: paired Wilcoxon signed-rank"
        " (r: rank-biserial correlation, > 0 when the ranks favour the first side) and paired t"
        " on the mean difference; a verdict needs both at p < 0.05 and r, t and Δ on the claimed"
        " side; and a seed-level Welch t-test on the per-seed mAP@100 (reported beside them)",
        "",
    ]
    sections = [
        ("### Methods (queries vs database)", _method_rows(results)),
        ("### ACIR against the best baseline", _comparison_rows(results)),
        (
            "### The ACIR configuration chosen on validation, against the best baseline (Hamming)",
            _choice_rows(results),
        ),
        ("### Ablations", _ablation_rows(results)),
        ("### Content-guided ranking: determinism and robustness", _ranking_lines(results)),
    ]
    body = [line for title, rows in sections if rows for line in [title, "", *rows, ""]]
    return "\n".join(head + body)


def write_markdown(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(results))
