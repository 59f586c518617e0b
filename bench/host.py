"""What host a benchmark ran on, as the bench scripts record it beside their numbers."""

from __future__ import annotations

import platform
from pathlib import Path

_CPUINFO_FIELDS = {"model name": "cpu", "cpu family": "cpu_family", "model": "cpu_model"}


def cpu_identity() -> dict[str, str]:
    """The CPU's name, family and model. Hosts sold under one name (e.g. "AMD EPYC") span
    generations whose float kernels differ, so the name alone cannot say two runs are comparable."""
    found = {"cpu": platform.processor() or "unknown CPU"}
    try:
        first_processor = Path("/proc/cpuinfo").read_text().split("\n\n", 1)[0]
    except OSError:
        return found
    for line in first_processor.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in _CPUINFO_FIELDS:
            found[_CPUINFO_FIELDS[key.strip()]] = value.strip()
    return found
