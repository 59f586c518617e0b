"""Upload bytes -> numpy pixels. The type is sniffed from magic bytes, never from names or headers.

PNG, JPEG and TIFF go through Pillow, with the pixel count checked from the header before any
pixel is decoded (decompression bombs); DICOM goes through ``models.data.dicom``, which drops
identifying tags.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from app.errors import BadImageError, EmptyFileError, ImageTooLargeError, UnsupportedMediaTypeError

_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}
_KEEP_MODES = {"L", "LA", "RGB", "RGBA", "I", "I;16", "I;16B", "I;16L", "F"}
SUPPORTED = ("png", "jpeg", "tiff", "dicom")


@dataclass(frozen=True)
class DecodedImage:
    """Decoded pixels (2-D or H×W×C) plus what the index stores about the image."""

    pixels: np.ndarray
    width: int
    height: int
    format: str
    modality: str | None = None


def sniff_format(data: bytes) -> str:
    """One of ``SUPPORTED`` from the leading bytes; raises `UnsupportedMediaTypeError` otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data[128:132] == b"DICM":
        return "dicom"
    raise UnsupportedMediaTypeError(
        f"not a supported image; expected one of {', '.join(SUPPORTED)}"
    )


def decode_image(data: bytes, max_pixels: int) -> DecodedImage:
    """Decode one upload; 400/413/415 `ServiceError` for anything that is not a usable image."""
    if not data:
        raise EmptyFileError("the uploaded file is empty")
    kind = sniff_format(data)
    image = _decode_dicom(data) if kind == "dicom" else _decode_pil(data, kind, max_pixels)
    _check_size(image.width, image.height, max_pixels)
    if image.pixels.size == 0 or image.pixels.ndim not in (2, 3):
        raise BadImageError(f"decoded image has unusable shape {image.pixels.shape}")
    return image


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise BadImageError(f"image has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} pixels; the limit is {max_pixels} pixels"
        )


def _decode_pil(data: bytes, kind: str, max_pixels: int) -> DecodedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[kind]]) as img:
                _check_size(img.width, img.height, max_pixels)
                img.load()
                pixels = _to_array(img)
                width, height = img.width, img.height
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"decompression bomb refused: {exc}") from exc
    except ImageTooLargeError:
        raise
    except Exception as exc:  # Pillow's plugins raise many types on hostile input; all mean 400
        raise BadImageError(f"corrupt or truncated {kind.upper()} image: {exc}") from exc
    return DecodedImage(pixels, width, height, kind)


def _to_array(img: Image.Image) -> np.ndarray:
    if img.mode not in _KEEP_MODES:
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    return np.asarray(img)


def _decode_dicom(data: bytes) -> DecodedImage:
    from models.data.dicom import UnreadableImage, read_dicom

    try:
        dicom = read_dicom(data)
    except UnreadableImage as exc:
        raise BadImageError(f"unreadable DICOM: {exc}") from exc
    except Exception as exc:  # pydicom may raise other types on hostile input; still a 400
        raise BadImageError(f"unreadable DICOM: {exc}") from exc
    pixels = np.asarray(dicom.pixels)
    if pixels.ndim < 2:
        raise BadImageError(f"DICOM pixel data has shape {pixels.shape}")
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    modality = dicom.metadata.get("Modality") if isinstance(dicom.metadata, dict) else None
    return DecodedImage(pixels, width, height, "dicom", str(modality) if modality else None)
