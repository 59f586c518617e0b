"""Errors raised by the binary index package."""

from __future__ import annotations


class BinaryIndexError(Exception):
    """Base class for every error raised by `index`."""


class IndexMissing(BinaryIndexError):  # noqa: N818 (name fixed by the architecture)
    """The index directory or one of its files does not exist."""


class IndexMismatch(BinaryIndexError):  # noqa: N818 (name fixed by the architecture)
    """The stored index does not match what the caller expects (bits, checkpoint, count, ids)."""


class IndexCorrupt(IndexMismatch):
    """The stored files are unreadable or disagree with their own manifest.

    A subclass of `IndexMismatch` because the remedy is the same: rebuild from the database.
    """


class DuplicateIdError(BinaryIndexError, ValueError):
    """`add` was given an id that is already in the index (or twice in one batch)."""
