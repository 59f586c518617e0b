"""Reading DICOM images for indexing and search, without patient-identifying data.

Pixels go through the modality LUT (rescale slope/intercept), then the VOI LUT or window, then
MONOCHROME1 images are inverted so that higher always means brighter. Only the technical tags in
:data:`SAFE_TAGS` are returned: names, IDs, dates, UIDs, institutions and free text never leave.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from models.preprocess import to_grayscale

SAFE_TAGS: tuple[str, ...] = (
    "Modality",
    "BodyPartExamined",
    "Rows",
    "Columns",
    "PhotometricInterpretation",
    "SamplesPerPixel",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "NumberOfFrames",
    "PixelSpacing",
    "SliceThickness",
    "RescaleSlope",
    "RescaleIntercept",
    "WindowCenter",
    "WindowWidth",
    "ViewPosition",
    "ImageLaterality",
)
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


class UnreadableImage(ValueError):  # noqa: N818 (public name used by app/decode.py)
    """The input is not a DICOM file, or carries no decodable image."""


@dataclass
class DicomImage:
    pixels: np.ndarray  # float32 (H, W), display-ready orientation of intensities
    metadata: dict[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    """JSON-friendly Python value of a DICOM element value."""
    if isinstance(value, MultiValue | list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, int | float):
        return int(value) if isinstance(value, int) else float(value)
    return str(value)


def safe_metadata(ds: Dataset) -> dict[str, Any]:
    """The allow-listed, non-identifying tags present in ``ds``."""
    return {tag: _plain(ds.get(tag)) for tag in SAFE_TAGS if ds.get(tag) not in (None, "")}


_READ_ERRORS = (
    InvalidDicomError,
    EOFError,
    OSError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
)


def _read(source: bytes | str | Path | BinaryIO, force: bool) -> Dataset:
    if isinstance(source, bytes | bytearray):
        return pydicom.dcmread(io.BytesIO(source), force=force)
    if hasattr(source, "seek"):
        source.seek(0)
    return pydicom.dcmread(source, force=force)


def _open(source: bytes | str | Path | BinaryIO | Dataset) -> Dataset:
    """Parse strictly; files without the 128-byte preamble are retried leniently, and kept only
    when the lenient parse finds pixel data (so random bytes are still rejected)."""
    if isinstance(source, Dataset):
        return source
    try:
        return _read(source, force=False)
    except InvalidDicomError:
        pass
    except _READ_ERRORS as exc:
        raise UnreadableImage(f"not a readable DICOM file: {exc}") from exc
    try:
        ds = _read(source, force=True)
        if any(keyword in ds for keyword in _PIXEL_KEYWORDS) and "Rows" in ds:
            return ds
    except _READ_ERRORS:
        pass
    raise UnreadableImage("not a DICOM file (no DICM header and no image elements)")


def _first_frame(ds: Dataset) -> np.ndarray:
    try:
        array = ds.pixel_array
    except Exception as exc:  # decoders raise many types (missing plugin, corrupt stream)
        raise UnreadableImage(f"DICOM pixel data cannot be decoded: {exc}") from exc
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return array[0] if frames > 1 else array


def read_dicom(source: bytes | str | Path | BinaryIO | Dataset) -> DicomImage:
    """Pixels (float32 2-D) and non-identifying metadata of DICOM bytes, a file, a stream or an
    already parsed pydicom Dataset. Raises :class:`UnreadableImage` for anything else."""
    ds = _open(source)
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise UnreadableImage("DICOM file has no pixel data")
    frame = _first_frame(ds)
    if frame.ndim == 3:  # colour: pydicom returns RGB; reduce to luminance
        pixels = to_grayscale(frame)
    else:
        pixels = apply_voi_lut(apply_modality_lut(frame, ds), ds, index=0)
        if ds.get("PhotometricInterpretation") == "MONOCHROME1":
            pixels = pixels.max() + pixels.min() - pixels  # low values are shown white
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim != 2 or pixels.size == 0:
        raise UnreadableImage(f"unsupported DICOM pixel array shape {pixels.shape}")
    return DicomImage(pixels=pixels, metadata=safe_metadata(ds))


def iter_dicom_folder(folder: Path) -> list[tuple[Path, DicomImage]]:
    """Every readable DICOM under ``folder`` (recursively, sorted by path); others are skipped."""
    found = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        try:
            found.append((path, read_dicom(path)))
        except UnreadableImage:
            continue
    return found
