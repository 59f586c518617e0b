"""Bulk ingestion sources for `acir index add`: a data-set manifest or a folder of images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from app.services.uploads import ImageMeta
from models.data.manifest import MANIFEST_FILE, load_manifest

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".bmp"}


def manifest_items(root: Path, split: str | None) -> list[tuple[Path, ImageMeta]]:
    """Rows of a BrainAtlas2D-style manifest (optionally one split), with their metadata."""
    manifest = load_manifest(root)
    rows = manifest.rows if split is None else manifest.split(split)
    return [
        (
            root / row.path,
            ImageMeta(
                external_id=row.id,
                label=row.label_name,
                collection=root.name,
                tags={"volume": row.volume, "plane": row.plane, "split": row.split},
            ),
        )
        for row in rows
    ]


def folder_items(root: Path, collection: str | None) -> list[tuple[Path, ImageMeta]]:
    """Image files below `root`; a file's parent folder is its label (class-per-folder layout)."""
    items = []
    for path in sorted(_image_files(root)):
        relative = path.relative_to(root)
        label = relative.parts[0] if len(relative.parts) > 1 else None
        meta = ImageMeta(external_id=str(relative), label=label, collection=collection)
        items.append((path, meta))
    return items


def _image_files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            yield path


def collect_items(
    root: Path, split: str | None, collection: str | None
) -> list[tuple[Path, ImageMeta]]:
    if (root / MANIFEST_FILE).is_file():
        return manifest_items(root, split)
    return folder_items(root, collection or root.name)
