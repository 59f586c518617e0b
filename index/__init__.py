"""Binary hash codes, a FAISS binary index with stable ids, and content-guided re-ranking.

Depends on numpy, faiss and the standard library only.
"""

from index.binary_index import BinaryIndex
from index.codes import hamming_distances, pack_bits, unpack_bits
from index.errors import (
    BinaryIndexError,
    DuplicateIdError,
    IndexCorrupt,
    IndexMismatch,
    IndexMissing,
)
from index.rerank import RankedList, rerank, rerank_batch
from index.storage import IndexManifest, id_set_sha256

__all__ = [
    "BinaryIndex",
    "BinaryIndexError",
    "DuplicateIdError",
    "IndexCorrupt",
    "IndexManifest",
    "IndexMismatch",
    "IndexMissing",
    "RankedList",
    "hamming_distances",
    "id_set_sha256",
    "pack_bits",
    "rerank",
    "rerank_batch",
    "unpack_bits",
]
