"""BrainAtlas2D's ``manifest.csv`` + ``classes.json``: writing and reading them back."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np
from PIL import Image

from models.data.labelled import LabelledImages
from models.preprocess import PreprocessSpec

MANIFEST_FILE = "manifest.csv"
CLASSES_FILE = "classes.json"
SPLITS: tuple[str, ...] = ("train", "db", "val", "query")


@dataclass(frozen=True)
class ManifestRow:
    """One patch. ``path`` is relative to the data set directory; ``cx, cy, cz`` are the patch
    centre in RAS millimetres (x < 0: left hemisphere)."""

    id: str
    path: str
    label: int
    label_name: str
    volume: str
    plane: str
    split: str
    cx: int
    cy: int
    cz: int


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ManifestRow))
_INT_COLUMNS = {"label", "cx", "cy", "cz"}


@dataclass
class Manifest:
    root: Path
    rows: list[ManifestRow]
    class_names: list[str]

    def split(self, name: str) -> list[ManifestRow]:
        return [row for row in self.rows if row.split == name]


def write_manifest(out_dir: Path, rows: Sequence[ManifestRow], class_names: Sequence[str]) -> Path:
    path = out_dir / MANIFEST_FILE
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(astuple(row) for row in rows)
    (out_dir / CLASSES_FILE).write_text(json.dumps(list(class_names), indent=2) + "\n")
    return path


def _row(record: dict[str, str]) -> ManifestRow:
    values = {k: int(v) if k in _INT_COLUMNS else v for k, v in record.items() if k in COLUMNS}
    return ManifestRow(**values)  # type: ignore[arg-type]


def load_manifest(data_dir: Path | str) -> Manifest:
    """Read ``manifest.csv`` and ``classes.json`` from a BrainAtlas2D directory."""
    root = Path(data_dir)
    path = root / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; build it with `acir data brain-atlas`")
    with path.open(newline="") as handle:
        rows = [_row(record) for record in csv.DictReader(handle)]
    class_names = json.loads((root / CLASSES_FILE).read_text())
    return Manifest(root=root, rows=rows, class_names=[str(name) for name in class_names])


def _read_png(path: Path, size: int | None) -> np.ndarray:
    with Image.open(path) as image:
        gray = image.convert("L")
        if size is not None and gray.size != (size, size):
            gray = gray.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(gray, dtype=np.uint8)


def load_split(
    data_dir: Path | str, split: str, spec: PreprocessSpec | None = None
) -> LabelledImages:
    """One split as uint8 [N, H, W] images with labels, in manifest order.

    With ``spec`` the images are resized (bilinear, still uint8) to ``spec.image_size``;
    intensity scaling is left to :func:`models.preprocess.to_model_input`.
    """
    manifest = load_manifest(data_dir)
    rows = manifest.split(split)
    if not rows:
        raise ValueError(f"split {split!r} is empty or unknown; splits are {SPLITS}")
    size = spec.image_size if spec is not None else None
    images = np.stack([_read_png(manifest.root / row.path, size) for row in rows])
    return LabelledImages(
        images=images,
        labels=np.array([row.label for row in rows], dtype=np.int64),
        ids=[row.id for row in rows],
        class_names=manifest.class_names,
    )
