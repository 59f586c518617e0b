"""Binary hash codes: packing bits to bytes and brute-force Hamming distances.

Bits are packed most-significant-bit first within each byte (``numpy.packbits`` default
order). Hamming distance does not depend on the bit order, but packing and unpacking must
agree, so always go through these two functions.
"""

from __future__ import annotations

import numpy as np

# Cap on the bytes of one XOR block in `hamming_distances`, so evaluation over large
# databases stays within a modest amount of memory.
_BLOCK_BYTES = 64 * 1024 * 1024


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack a bool matrix ``[N, B]`` (B a positive multiple of 8) into uint8 ``[N, B/8]``."""
    if not isinstance(bits, np.ndarray) or bits.dtype != np.bool_:
        raise ValueError(f"bits must be a numpy bool array, got {_describe(bits)}")
    if bits.ndim != 2:
        raise ValueError(f"bits must be 2-D [N, B], got shape {bits.shape}")
    n_bits = bits.shape[1]
    if n_bits == 0 or n_bits % 8:
        raise ValueError(f"code length must be a positive multiple of 8, got {n_bits}")
    return np.ascontiguousarray(np.packbits(bits, axis=1))


def unpack_bits(codes: np.ndarray) -> np.ndarray:
    """Inverse of `pack_bits`: uint8 ``[N, C]`` -> bool ``[N, 8*C]``."""
    check_codes(codes)
    return np.unpackbits(codes, axis=1).astype(np.bool_)


def check_codes(codes: np.ndarray, code_size: int | None = None) -> None:
    """Raise ValueError unless `codes` is uint8 ``[N, C]`` (and C == code_size when given)."""
    if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8:
        raise ValueError(f"codes must be a numpy uint8 array, got {_describe(codes)}")
    if codes.ndim != 2 or codes.shape[1] == 0:
        raise ValueError(f"codes must be 2-D [N, bytes] with bytes > 0, got shape {codes.shape}")
    if code_size is not None and codes.shape[1] != code_size:
        raise ValueError(f"codes must have {code_size} bytes per row, got {codes.shape[1]}")


def hamming_distances(query_codes: np.ndarray, db_codes: np.ndarray) -> np.ndarray:
    """Exact Hamming distances ``int32 [Q, N]`` between packed query and database codes."""
    check_codes(query_codes)
    check_codes(db_codes, query_codes.shape[1])
    n_query, n_db = query_codes.shape[0], db_codes.shape[0]
    out = np.empty((n_query, n_db), dtype=np.int32)
    rows = max(1, _BLOCK_BYTES // max(1, n_db * db_codes.shape[1]))
    for start in range(0, n_query, rows):
        block = query_codes[start : start + rows, None, :] ^ db_codes[None, :, :]
        out[start : start + rows] = np.bitwise_count(block).sum(axis=2, dtype=np.int32)
    return out


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"ndarray(dtype={value.dtype}, shape={value.shape})"
    return type(value).__name__
