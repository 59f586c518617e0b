"""Offline out-of-distribution image sets for evaluating the ACIR gate (all deterministic).

- far: natural photos (scikit-image, scikit-learn bundled images, LFW faces) and Fashion-MNIST;
- near: other medical modalities (pydicom / pydicom-data DICOMs, ITK example slices, scikit-image
  fundus / histology / microscopy), each source image given whole plus a fixed grid of crops;
- macaque: the same modality (T1 MRI) from another species, sliced like the human volumes;
- benign: mild, label-preserving changes of in-distribution images that must NOT be rejected.

Every loader returns a list of numpy arrays (2-D grayscale or H×W×C) that
``models.preprocess.to_model_input`` accepts.
"""

from __future__ import annotations

import gzip
import io
import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from models.data.dicom import read_dicom
from models.data.sources import load_volume

logger = logging.getLogger(__name__)

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
ITK_DATA_DIR = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
MACAQUE_VOLUME = Path("/usr/share/mricron/templates/inia19-t1-brain.nii.gz")

SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "cat", "clock", "coffee", "coins", "colorwheel",
    "grass", "gravel", "hubble_deep_field", "logo", "moon", "page", "rocket", "text",
)  # fmt: skip
SKIMAGE_MEDICAL = ("retina", "immunohistochemistry", "cell", "microaneurysms")
# Human brain T1 slices (BrainT1Slice*, BrainMidSagittalSlice) are left out on purpose: they are
# the in-distribution modality and organ, not a near-OOD example. Proton-density brain slices stay
# (another MR contrast), as do the fat MRI, cryosection and ventricle-model slices.
ITK_SLICES = (
    "BrainProtonDensitySlice.png", "FatMRISlice.png", "VisibleWomanEyeSlice.png",
    "VisibleWomanHeadSlice.png", "VentricleModel.png",
)  # fmt: skip
# Radiographs (chest, leg), ultrasound (two), head CT, shoulder MR, liver CT, nuclear medicine,
# plus pydicom's own CT_small / MR_small. The head MR (emri_small) is left out like the T1 slices.
PYDICOM_FILES = (
    "RG1_UNCR.dcm", "RG3_UNCR.dcm", "US1_UNCR.dcm", "OBXXXX1A.dcm", "693_UNCR.dcm",
    "MR2_UNCR.dcm", "liver.dcm", "JPEG2000_UNC.dcm", "CT_small.dcm", "MR_small.dcm",
)  # fmt: skip
BENIGN_KINDS: tuple[str, ...] = ("noise", "jpeg", "rotation", "intensity")
OOD_SET_NAMES: tuple[str, ...] = ("far", "near", "macaque")


def _gray(image: np.ndarray) -> np.ndarray:
    """float32 2-D view of any image (RGB/RGBA → mean of the colour channels)."""
    array = np.asarray(image)
    if array.ndim == 3:
        array = array[..., :3].mean(axis=-1)
    return array.astype(np.float32)


# ---------------------------------------------------------------- far


def skimage_photos() -> list[np.ndarray]:
    """scikit-image's bundled natural / everyday photos (colour kept where present)."""
    import skimage.data

    return [np.asarray(getattr(skimage.data, name)()) for name in SKIMAGE_PHOTOS]


def lfw_faces() -> list[np.ndarray]:
    """``skimage.data.lfw_subset()``: 200 small face / non-face crops (float in [0,1])."""
    import skimage.data

    return [face.astype(np.float32) for face in skimage.data.lfw_subset()]


def sklearn_photos() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    return [np.asarray(image) for image in load_sample_images().images]


def read_idx_images(path: Path) -> np.ndarray:
    """uint8 [N,rows,cols] from an IDX3 file (gzip or plain), as Fashion-MNIST ships it."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    magic, count, rows, cols = (int.from_bytes(data[i : i + 4], "big") for i in range(0, 16, 4))
    if magic != 2051:
        raise ValueError(f"{path} is not an IDX3 image file (magic {magic})")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def fashion_mnist(
    count: int = 300, seed: int = 0, root: Path = FASHION_MNIST_DIR
) -> list[np.ndarray]:
    """A seeded sample of Fashion-MNIST test images (28×28 grayscale)."""
    images = read_idx_images(Path(root) / "t10k-images-idx3-ubyte.gz")
    pick = np.sort(np.random.default_rng(seed).choice(len(images), min(count, len(images)), False))
    return [images[i].copy() for i in pick]


def far_ood_images(fashion_count: int = 300, seed: int = 0) -> list[np.ndarray]:
    """Natural photos, faces and clothing: nothing like a brain MRI."""
    return skimage_photos() + sklearn_photos() + lfw_faces() + fashion_mnist(fashion_count, seed)


# ---------------------------------------------------------------- near


def grid_crops(
    image: np.ndarray, fractions: Sequence[float] = (0.5, 0.33), steps: int = 3
) -> list[np.ndarray]:
    """The whole image plus square crops of each side fraction on a ``steps×steps`` grid.

    Crops whose intensity range is under 5% of the image's (empty background) are dropped, so a
    source gives at most ``1 + len(fractions)·steps²`` images, always in the same order.
    """
    gray = _gray(image)
    full_range = float(np.ptp(gray)) or 1.0
    crops = [gray]
    for fraction in fractions:
        side = max(8, int(min(gray.shape) * fraction))
        for top in np.linspace(0, gray.shape[0] - side, steps).astype(int):
            for left in np.linspace(0, gray.shape[1] - side, steps).astype(int):
                crop = gray[top : top + side, left : left + side]
                if np.ptp(crop) >= 0.05 * full_range:
                    crops.append(crop.copy())
    return crops


def pydicom_images() -> list[np.ndarray]:
    """The bundled / pydicom-data DICOMs listed in :data:`PYDICOM_FILES` that are installed."""
    from pydicom.data import get_testdata_file

    images = []
    for name in PYDICOM_FILES:
        with warnings.catch_warnings():  # pydicom warns that it cannot download extra files
            warnings.simplefilter("ignore")
            path = get_testdata_file(name)
        if path is None:
            logger.warning("pydicom test file %s is not installed; skipped", name)
            continue
        images.append(read_dicom(str(path)).pixels)
    return images


def itk_slices(root: Path = ITK_DATA_DIR) -> list[np.ndarray]:
    return [
        np.asarray(Image.open(Path(root) / name))
        for name in ITK_SLICES
        if (Path(root) / name).is_file()
    ]


def skimage_medical() -> list[np.ndarray]:
    import skimage.data

    return [np.asarray(getattr(skimage.data, name)()) for name in SKIMAGE_MEDICAL]


def near_ood_images() -> list[np.ndarray]:
    """Other medical modalities: every source whole plus its grid crops."""
    sources = pydicom_images() + itk_slices() + skimage_medical()
    return [crop for source in sources for crop in grid_crops(source)]


# ---------------------------------------------------------------- other species


def _plane_patch(volume: np.ndarray, centre: np.ndarray, axis: int, half: int) -> np.ndarray:
    slab = np.take(volume, int(centre[axis]), axis=axis)
    rest = [int(c) for i, c in enumerate(centre) if i != axis]
    cut = np.pad(slab, half)[rest[0] : rest[0] + 2 * half, rest[1] : rest[1] + 2 * half]
    return np.flipud(cut.T)  # same display orientation as the BrainAtlas2D patches


def macaque_images(
    count: int = 300, seed: int = 0, path: Path = MACAQUE_VOLUME, patch_mm: float = 64.0
) -> list[np.ndarray]:
    """Seeded ``patch_mm`` square patches of the macaque T1 brain in all three planes.

    Patches are centred on random brain voxels, kept when at least 30% of them is brain, and
    block-averaged to about 1 mm per pixel like the human BrainAtlas2D patches.
    """
    source = load_volume(path)
    volume = source.data.astype(np.float32)
    voxel = float(np.abs(source.affine[0, 0]))
    half, factor = round(patch_mm / voxel / 2), max(1, round(1.0 / voxel))
    brain = np.argwhere(volume > 0)
    rng, patches = np.random.default_rng(seed), list[np.ndarray]()
    for attempt in range(count * 20):
        if len(patches) >= count:
            break
        patch = _plane_patch(volume, brain[rng.integers(len(brain))], attempt % 3, half)
        if (patch > 0).mean() >= 0.3:
            patches.append(_block_mean(patch, factor))
    return patches


def _block_mean(patch: np.ndarray, factor: int) -> np.ndarray:
    h, w = (s // factor * factor for s in patch.shape)
    return patch[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


# ---------------------------------------------------------------- benign perturbations


def _unit(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    gray = _gray(image)
    low, high = float(gray.min()), float(gray.max())
    return (gray - low) / max(high - low, 1e-8), low, high


def add_noise(image: np.ndarray, rng: np.random.Generator, sigma: float = 0.02) -> np.ndarray:
    """Gaussian noise with ``sigma`` times the image's intensity range."""
    unit, low, high = _unit(image)
    noisy = unit + rng.normal(0.0, sigma, unit.shape)
    return (noisy * (high - low) + low).astype(np.float32)


def jpeg_roundtrip(image: np.ndarray, rng: np.random.Generator, quality: int = 75) -> np.ndarray:
    """Re-encode as 8-bit JPEG at ``quality`` and decode (uint8 result)."""
    unit, _, _ = _unit(image)
    buffer = io.BytesIO()
    Image.fromarray(np.round(unit * 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())))


def small_rotation(
    image: np.ndarray, rng: np.random.Generator, max_degrees: float = 5.0
) -> np.ndarray:
    angle = float(rng.uniform(-max_degrees, max_degrees))
    return ndimage.rotate(_gray(image), angle, reshape=False, order=1, mode="nearest")


def intensity_scale(
    image: np.ndarray, rng: np.random.Generator, low: float = 0.8, high: float = 1.2
) -> np.ndarray:
    return (_gray(image) * float(rng.uniform(low, high))).astype(np.float32)


_BENIGN: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "noise": add_noise,
    "jpeg": jpeg_roundtrip,
    "rotation": small_rotation,
    "intensity": intensity_scale,
}


def benign_perturbations(
    images: Sequence[np.ndarray], kind: str, seed: int = 0
) -> list[np.ndarray]:
    """Apply one benign change (see :data:`BENIGN_KINDS`) to each image, seeded."""
    if kind not in _BENIGN:
        raise ValueError(f"unknown perturbation {kind!r}; valid: {', '.join(BENIGN_KINDS)}")
    rng = np.random.default_rng(seed)
    return [_BENIGN[kind](image, rng) for image in images]


def load_ood_sets(max_per_set: int | None = None, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """far / near / macaque sets, each cut to ``max_per_set`` by a seeded subsample."""
    sets = {
        "far": far_ood_images(seed=seed),
        "near": near_ood_images(),
        "macaque": macaque_images(seed=seed),
    }
    return {name: _subsample(images, max_per_set, seed) for name, images in sets.items()}


def _subsample(images: list[np.ndarray], limit: int | None, seed: int) -> list[np.ndarray]:
    if limit is None or len(images) <= limit:
        return images
    pick = np.sort(np.random.default_rng(seed).choice(len(images), limit, replace=False))
    return [images[i] for i in pick]
