"""The out-of-distribution gate: higher scores are more anomalous; NaN is never accepted."""

from __future__ import annotations

import math


def accepts(score: float, threshold: float) -> bool:
    return not math.isnan(score) and score <= threshold
