"""Class-per-folder image trees (the RadImageNet layout): ``root/<class>/**/<image>``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from models.data.labelled import LabelledImages
from models.preprocess import PreprocessSpec, scale_intensities, to_grayscale

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})


class UnreadableFile(ValueError):  # noqa: N818 (mirrors dicom.UnreadableImage)
    """An image file that neither PIL nor tifffile can decode."""


def read_image(path: Path) -> np.ndarray:
    """The file's pixels in their native dtype: (H, W) or (H, W, C)."""
    try:
        with Image.open(path) as opened:
            image: Image.Image = opened
            if image.mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            return np.asarray(image)
    except (OSError, ValueError) as exc:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return np.asarray(tifffile.imread(path))
        raise UnreadableFile(f"cannot read image {path}: {exc}") from exc


def class_folders(root: Path) -> list[Path]:
    """Immediate sub-folders of ``root``, sorted by name (= class index order)."""
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ValueError(f"{root} has no class sub-folders")
    return folders


def iter_image_folder(root: Path) -> Iterator[tuple[np.ndarray, str, dict[str, Any]]]:
    """(pixels, class name, {"path", "label"}) for every image, classes and files sorted."""
    for label, folder in enumerate(class_folders(root)):
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        for path in files:
            meta = {"path": path.relative_to(root).as_posix(), "label": label}
            yield read_image(path), folder.name, meta


def to_uint8_gray(pixels: np.ndarray) -> np.ndarray:
    """uint8 (H, W): 8-bit images keep their values; deeper ones are percentile-scaled."""
    gray = to_grayscale(pixels)
    if pixels.dtype == np.uint8:
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    scaled = scale_intensities(gray, PreprocessSpec(image_size=1))
    return np.rint(scaled * 255).astype(np.uint8)


def _resize(gray: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or gray.shape == (size, size):
        return gray
    image = Image.fromarray(gray, mode="L").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image)


def load_image_folder(root: Path, size: int | None = None) -> LabelledImages:
    """All images as uint8 grayscale [N, H, W]; ``size`` resizes to size×size (needed when the
    images differ in shape)."""
    images, labels, ids = [], [], []
    for pixels, _name, meta in iter_image_folder(root):
        images.append(_resize(to_uint8_gray(pixels), size))
        labels.append(meta["label"])
        ids.append(meta["path"])
    if not images:
        raise ValueError(f"no images ({sorted(IMAGE_SUFFIXES)}) under {root}")
    if len({im.shape for im in images}) > 1:
        raise ValueError("images differ in size; pass size= to resize them")
    names = [folder.name for folder in class_folders(root)]
    return LabelledImages(np.stack(images), np.array(labels), ids, names)
