"""Where BrainAtlas2D's volumes come from, and loading them onto the AAL grid.

Colin27 (``ch2``, ``ch2bet``) and the AAL atlas ship with Debian ``mricron-data``; the MNI152 2009a
template ships inside the ``nilearn`` wheel. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import map_coordinates

MRICRON_TEMPLATES = Path("/usr/share/mricron/templates")
MNI152_FILE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
MRICRON_INSTALL = "apt-get update && apt-get install -y mricron-data"
NILEARN_INSTALL = "pip install nilearn"


class DataSourceMissing(FileNotFoundError):  # noqa: N818 (public name used by the CLI)
    """A volume BrainAtlas2D needs is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Volume:
    """A 3-D array on some grid; ``affine`` maps voxel indices to RAS millimetres."""

    data: np.ndarray
    affine: np.ndarray


def mricron_file(name: str, templates_dir: Path | None = None) -> Path:
    path = (templates_dir or MRICRON_TEMPLATES) / name
    if not path.is_file():
        raise DataSourceMissing(
            f"{path} not found (it ships with Debian mricron-data). Install it with: "
            f"{MRICRON_INSTALL}"
        )
    return path


def mni152_file(nilearn_data_dir: Path | None = None) -> Path:
    """The MNI152 2009a T1 template inside the installed nilearn package."""
    if nilearn_data_dir is None:
        spec = importlib.util.find_spec("nilearn")
        if spec is None or spec.origin is None:
            raise DataSourceMissing(f"nilearn is not installed. Install it with: {NILEARN_INSTALL}")
        nilearn_data_dir = Path(spec.origin).parent / "datasets" / "data"
    path = nilearn_data_dir / MNI152_FILE
    if not path.is_file():
        raise DataSourceMissing(
            f"{path} not found (it ships in the nilearn wheel). Install it with: {NILEARN_INSTALL}"
        )
    return path


def load_volume(path: Path) -> Volume:
    image = nib.load(str(path))
    data = np.asarray(image.dataobj)  # type: ignore[attr-defined]
    return Volume(data=np.squeeze(data), affine=np.asarray(image.affine, dtype=np.float64))  # type: ignore[attr-defined]


def resample_to(source: Volume, target: Volume) -> Volume:
    """``source`` resampled (order 1) onto ``target``'s grid through both affines; 0 outside."""
    shape = target.data.shape[:3]
    voxel_map = np.linalg.inv(source.affine) @ target.affine
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1)
    coords = voxel_map[:3, :3].astype(np.float32) @ grid + voxel_map[:3, 3:4].astype(np.float32)
    values = map_coordinates(
        source.data.astype(np.float32), coords, order=1, mode="constant", cval=0.0
    )
    return Volume(data=values.reshape(shape), affine=target.affine.copy())


def read_aal_names(path: Path) -> dict[int, str]:
    """{label value: region name} from mricron's ``aal.nii.txt`` (``index name code`` lines)."""
    names: dict[int, str] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            names[int(parts[0])] = parts[1]
    return names
