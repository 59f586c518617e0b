"""Data sets of the retrieval benchmark: BrainAtlas2D (primary) and Fashion-MNIST (secondary).

Both come as four :class:`LabelledImages` splits: train (fit), val (model selection only),
db (the indexed database) and query (final evaluation only).
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from models.data import LabelledImages, build_brain_atlas, load_split

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "db", "query")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
]


@dataclass
class Splits:
    train: LabelledImages
    val: LabelledImages
    db: LabelledImages
    query: LabelledImages

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name).labels) for name in SPLITS}


def subsample(split: LabelledImages, limit: int, seed: int) -> LabelledImages:
    """A seeded random subset of ``limit`` images in original order (``limit <= 0``: all)."""
    n = len(split.labels)
    if limit <= 0 or limit >= n:
        return split
    keep = np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
    ids = split.ids[keep] if isinstance(split.ids, np.ndarray) else [split.ids[i] for i in keep]
    return replace(split, images=split.images[keep], labels=split.labels[keep], ids=ids)


def brain_atlas(data_dir: Path, seed: int) -> Splits:
    """The cross-volume BrainAtlas2D splits; builds the data set when its manifest is missing."""
    if not (data_dir / "manifest.csv").exists():
        logger.info("building BrainAtlas2D in %s", data_dir)
        build_brain_atlas(data_dir, seed)
    return Splits(*(load_split(data_dir, name) for name in SPLITS))


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _fashion_split(images: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> LabelledImages:
    return LabelledImages(
        images=images[idx].copy(),
        labels=labels[idx].astype(np.int64),
        ids=[f"fmnist-{i}" for i in idx],
        class_names=list(FASHION_CLASSES),
    )


def fashion_mnist(seed: int, n_train: int = 5000, n_val: int = 500) -> Splits:
    """Fashion-MNIST from the Debian package: train/val from its training file, db/query from
    disjoint halves of its test file (subsampled further by the benchmark's limits)."""
    tr_x = _read_idx(FASHION_DIR / "train-images-idx3-ubyte.gz")
    tr_y = _read_idx(FASHION_DIR / "train-labels-idx1-ubyte.gz")
    te_x = _read_idx(FASHION_DIR / "t10k-images-idx3-ubyte.gz")
    te_y = _read_idx(FASHION_DIR / "t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(seed)
    train_order = rng.permutation(len(tr_y))
    test_order = rng.permutation(len(te_y))
    half = len(te_y) // 2
    return Splits(
        train=_fashion_split(tr_x, tr_y, np.sort(train_order[:n_train])),
        val=_fashion_split(tr_x, tr_y, np.sort(train_order[n_train : n_train + n_val])),
        db=_fashion_split(te_x, te_y, np.sort(test_order[:half])),
        query=_fashion_split(te_x, te_y, np.sort(test_order[half:])),
    )


def load_splits(
    dataset: str, data_dir: Path, data_seed: int, max_train: int, max_db: int, max_query: int
) -> Splits:
    """The benchmark's splits, each subsampled with its own seed (``max_*`` <= 0: all)."""
    splits = (
        fashion_mnist(data_seed) if dataset == "fashion-mnist" else brain_atlas(data_dir, data_seed)
    )
    return Splits(
        train=subsample(splits.train, max_train, data_seed),
        val=splits.val,
        db=subsample(splits.db, max_db, data_seed + 1),
        query=subsample(splits.query, max_query, data_seed + 2),
    )
