"""Cutting 2-D patches out of 3-D volumes on the AAL grid, and choosing their centres.

Grid axes are RAS (x: left→right, y: posterior→anterior, z: inferior→superior). Patches are shown
with anterior (axial) or superior (coronal, sagittal) at the top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")


@dataclass(frozen=True)
class PatchSite:
    """Where a patch is cut: voxel centre (i, j, k) on the unpadded grid and the plane."""

    label: int  # class index (0-based)
    centre: tuple[int, int, int]
    plane: str


class PaddedVolume:
    """A volume zero-padded by half a patch on every side, so any centre yields a full patch."""

    def __init__(self, data: np.ndarray, patch_size: int) -> None:
        self.patch_size = patch_size
        self.pad = patch_size // 2
        self.data = np.pad(data, self.pad, mode="constant", constant_values=0)

    def patch(self, centre: tuple[int, int, int], plane: str) -> np.ndarray:
        """(patch_size, patch_size) view-derived array for ``centre`` in ``plane``."""
        i, j, k = centre  # padded start index = centre - pad + pad = centre
        p = self.patch_size
        if plane == "axial":
            cut = self.data[i : i + p, j : j + p, k + self.pad]
        elif plane == "coronal":
            cut = self.data[i : i + p, j + self.pad, k : k + p]
        elif plane == "sagittal":
            cut = self.data[i + self.pad, j : j + p, k : k + p]
        else:
            raise ValueError(f"unknown plane {plane!r}; expected one of {PLANES}")
        return np.flipud(cut.T)


def sample_sites(
    classes: PaddedVolume,
    candidates: list[np.ndarray],
    per_class: list[int],
    rng: np.random.Generator,
    min_fraction: float,
    max_tries_factor: int = 200,
) -> list[PatchSite]:
    """Patch sites per class: centre drawn from ``candidates[c]`` (voxel index arrays [n, 3]),
    plane at random, kept when ≥ ``min_fraction`` of the patch carries class c (no repeats).

    A class that cannot reach its count within ``max_tries_factor`` × count draws keeps fewer.
    """
    sites: list[PatchSite] = []
    for label, (voxels, wanted) in enumerate(zip(candidates, per_class, strict=True)):
        sites.extend(
            _sample_class(classes, label, voxels, wanted, rng, min_fraction, max_tries_factor)
        )
    return sites


def _sample_class(
    classes: PaddedVolume,
    label: int,
    voxels: np.ndarray,
    wanted: int,
    rng: np.random.Generator,
    min_fraction: float,
    max_tries_factor: int,
) -> list[PatchSite]:
    kept: dict[tuple[tuple[int, int, int], str], PatchSite] = {}
    if len(voxels) == 0 or wanted <= 0:
        return []
    need = min_fraction * classes.patch_size**2
    for _ in range(wanted * max_tries_factor):
        i, j, k = voxels[rng.integers(len(voxels))]
        centre = (int(i), int(j), int(k))
        plane = PLANES[int(rng.integers(len(PLANES)))]
        key = (centre, plane)
        if key in kept:
            continue
        if np.count_nonzero(classes.patch(centre, plane) == label + 1) >= need:
            kept[key] = PatchSite(label, centre, plane)
            if len(kept) == wanted:
                break
    return list(kept.values())
