"""The in-memory form every loader returns: images, integer labels, ids and class names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LabelledImages:
    """``images``: uint8 [N, H, W] (or any [N, ...] array for loaders of other formats);
    ``labels``: int64 [N] indexing ``class_names``; ``ids``: one string per image."""

    images: np.ndarray
    labels: np.ndarray
    ids: list[str]
    class_names: list[str]

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if not len(self.images) == len(self.labels) == len(self.ids):
            raise ValueError(
                f"images ({len(self.images)}), labels ({len(self.labels)}) and ids "
                f"({len(self.ids)}) differ in length"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
