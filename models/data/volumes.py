"""BrainAtlas2D's volumes on the AAL grid: class map, uint8 intensity flavours, hemisphere masks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.data.aal_classes import class_lookup
from models.data.sources import (
    load_volume,
    mni152_file,
    mricron_file,
    read_aal_names,
    resample_to,
)

# Colin27 flavours: ch2 keeps skull and scalp, ch2bet is brain-extracted like the MNI152 template.
COLIN_FLAVOURS: dict[str, str] = {"ch2": "colin27", "ch2bet": "colin27_bet"}
MNI_VOLUME = "mni152"
LOW_PERCENTILE = 1.0
HIGH_PERCENTILE = 99.5


@dataclass
class AtlasVolumes:
    """Everything patches are cut from, on the AAL grid (181×217×181, 1 mm, RAS)."""

    affine: np.ndarray
    colin_classes: np.ndarray  # uint8 class index + 1, 0 = none
    mni_classes: np.ndarray  # same, restricted to the MNI152 brain
    intensities: dict[str, np.ndarray]  # manifest volume name -> uint8 volume
    sources: dict[str, str]


def to_uint8(volume: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Scale between the 1st and 99.5th percentile of the voxels in ``mask`` to uint8."""
    low, high = np.percentile(volume[mask], [LOW_PERCENTILE, HIGH_PERCENTILE])
    scaled = (volume.astype(np.float32) - low) * (255.0 / max(float(high - low), 1e-6))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def check_sources(
    templates_dir: Path | None, nilearn_data_dir: Path | None, flavours: Sequence[str]
) -> dict[str, Path]:
    """Paths of every file the build needs; raises DataSourceMissing before any loading."""
    paths = {name: mricron_file(f"{name}.nii.gz", templates_dir) for name in ("aal", *flavours)}
    paths["aal_names"] = mricron_file("aal.nii.txt", templates_dir)
    if "ch2bet" not in paths:  # brain mask for intensity scaling
        paths["ch2bet"] = mricron_file("ch2bet.nii.gz", templates_dir)
    paths["mni152"] = mni152_file(nilearn_data_dir)
    return paths


def load_atlas_volumes(
    templates_dir: Path | None = None,
    nilearn_data_dir: Path | None = None,
    flavours: Sequence[str] = ("ch2", "ch2bet"),
) -> AtlasVolumes:
    unknown = set(flavours) - set(COLIN_FLAVOURS)
    if unknown or not flavours:
        raise ValueError(f"Colin27 flavours must be a non-empty subset of {list(COLIN_FLAVOURS)}")
    paths = check_sources(templates_dir, nilearn_data_dir, flavours)
    aal = load_volume(paths["aal"])
    classes = class_lookup(read_aal_names(paths["aal_names"]))[aal.data.astype(np.intp)]
    colin_brain = load_volume(paths["ch2bet"]).data > 0
    intensities = {}
    for flavour in flavours:
        data = load_volume(paths[flavour]).data
        intensities[COLIN_FLAVOURS[flavour]] = to_uint8(data, colin_brain)
    mni = resample_to(load_volume(paths["mni152"]), aal).data
    mni_brain = mni > 0
    intensities[MNI_VOLUME] = to_uint8(mni, mni_brain)
    return AtlasVolumes(
        affine=aal.affine,
        colin_classes=classes,
        mni_classes=np.where(mni_brain, classes, 0).astype(np.uint8),
        intensities=intensities,
        sources={key: path.name for key, path in sorted(paths.items())},
    )


def world_x(affine: np.ndarray, voxels: np.ndarray) -> np.ndarray:
    """RAS x (mm) of voxel indices [n, 3]."""
    return voxels @ affine[0, :3] + affine[0, 3]


def class_candidates(
    classes: np.ndarray, num_classes: int, affine: np.ndarray, hemisphere: str | None
) -> list[np.ndarray]:
    """Voxel indices [n, 3] per class; ``hemisphere`` "left" keeps x < 0, "right" x > 0."""
    voxels = np.argwhere(classes > 0)  # one scan of the volume, then grouped by class
    if hemisphere is not None:
        x = world_x(affine, voxels.astype(np.float64))
        voxels = voxels[x < 0] if hemisphere == "left" else voxels[x > 0]
    values = classes[voxels[:, 0], voxels[:, 1], voxels[:, 2]]
    return [voxels[values == c + 1] for c in range(num_classes)]
