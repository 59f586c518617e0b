"""NIfTI volumes sliced into 2-D images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

AXIS_NAMES = {0: "sagittal", 1: "coronal", 2: "axial"}


def read_nifti(path: Path, canonical: bool = True) -> np.ndarray:
    """float32 3-D volume (first volume of a 4-D file); ``canonical`` reorients to RAS so axis 0,
    1, 2 are sagittal, coronal, axial."""
    image = nib.load(str(path))
    if canonical:
        image = nib.as_closest_canonical(image)
    data = np.asarray(image.dataobj, dtype=np.float32)  # type: ignore[attr-defined]
    while data.ndim > 3:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path} is not a 3-D volume (shape {data.shape})")
    return data


def slice_volume(
    volume: np.ndarray, axis: int = 2, min_foreground: float = 0.0, step: int = 1
) -> Iterator[tuple[int, np.ndarray]]:
    """(index, 2-D slice) along ``axis``, skipping empty slices: constant ones, and those whose
    fraction of non-background voxels is ≤ ``min_foreground``. Slices are shown with the higher
    index of the remaining second axis at the top."""
    if volume.ndim != 3 or axis not in (0, 1, 2):
        raise ValueError("need a 3-D volume and axis in 0, 1, 2")
    for index in range(0, volume.shape[axis], step):
        plane = np.take(volume, index, axis=axis)
        background = plane.min()
        if plane.max() == background:
            continue
        if np.count_nonzero(plane != background) / plane.size <= min_foreground:
            continue
        yield index, np.flipud(plane.T).copy()


def iter_nifti_slices(
    path: Path, axis: int = 2, min_foreground: float = 0.0, step: int = 1
) -> Iterator[tuple[np.ndarray, str, dict[str, Any]]]:
    """(slice, volume name, {"path", "axis", "plane", "index"}) for the non-empty slices."""
    path = Path(path)
    name = path.name.removesuffix(".gz").removesuffix(".nii")
    for index, plane in slice_volume(read_nifti(path), axis, min_foreground, step):
        meta = {"path": str(path), "axis": axis, "plane": AXIS_NAMES[axis], "index": index}
        yield plane, name, meta
