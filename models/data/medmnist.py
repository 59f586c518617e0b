"""MedMNIST ``.npz`` files: ``{train,val,test}_images`` and ``{train,val,test}_labels``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.data.labelled import LabelledImages

MEDMNIST_SPLITS = ("train", "val", "test")


def load_medmnist(
    path: Path, split: str = "train", class_names: Sequence[str] | None = None
) -> LabelledImages:
    """One split of a 2-D, single-label MedMNIST file. Images stay as stored: uint8 [N, H, W] or
    [N, H, W, 3]; labels (N or N×1) become int64 [N]. Class names default to "0", "1", …"""
    if split not in MEDMNIST_SPLITS:
        raise ValueError(f"split must be one of {MEDMNIST_SPLITS}, got {split!r}")
    with np.load(path, allow_pickle=False) as data:
        keys = (f"{split}_images", f"{split}_labels")
        missing = [k for k in keys if k not in data.files]
        if missing:
            raise ValueError(f"{path} lacks {missing}; has {sorted(data.files)}")
        images, labels = data[keys[0]], data[keys[1]]
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (3, 4))):
        raise ValueError(f"expected 2-D images [N,H,W] or [N,H,W,3], got {images.shape}")
    if labels.ndim == 2 and labels.shape[1] != 1:
        raise ValueError(f"multi-label files are not supported (labels {labels.shape})")
    labels = labels.reshape(-1).astype(np.int64)
    names = list(class_names) if class_names else [str(c) for c in range(int(labels.max()) + 1)]
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        raise ValueError(f"labels outside 0..{len(names) - 1}")
    ids = [f"{split}-{i:06d}" for i in range(len(labels))]
    return LabelledImages(images, labels, ids, names)
