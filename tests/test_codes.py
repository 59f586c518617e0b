"""Tests for index.codes: packing and brute-force Hamming distances."""

from __future__ import annotations

import numpy as np
import pytest

from index.codes import hamming_distances, pack_bits, unpack_bits


@pytest.mark.parametrize("n_bits", [8, 16, 64, 128])
def test_pack_unpack_round_trip(n_bits: int) -> None:
    bits = np.random.default_rng(n_bits).random((7, n_bits)) < 0.5
    codes = pack_bits(bits)
    assert codes.dtype == np.uint8 and codes.shape == (7, n_bits // 8)
    np.testing.assert_array_equal(unpack_bits(codes), bits)


def test_pack_bit_order_is_msb_first() -> None:
    bits = np.zeros((1, 16), dtype=bool)
    bits[0, 0] = bits[0, 15] = True
    np.testing.assert_array_equal(pack_bits(bits), np.array([[0x80, 0x01]], dtype=np.uint8))


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 64), dtype=np.uint8),  # not bool
        np.zeros(64, dtype=bool),  # not 2-D
        np.zeros((2, 12), dtype=bool),  # not a multiple of 8
        np.zeros((2, 0), dtype=bool),  # empty code
    ],
)
def test_pack_bits_rejects_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        pack_bits(bad)


def test_unpack_rejects_non_uint8() -> None:
    with pytest.raises(ValueError, match="uint8"):
        unpack_bits(np.zeros((2, 8), dtype=np.int8))


def test_hamming_distances_match_bit_count() -> None:
    rng = np.random.default_rng(0)
    q_bits, db_bits = rng.random((5, 64)) < 0.5, rng.random((11, 64)) < 0.5
    expected = (q_bits[:, None, :] != db_bits[None, :, :]).sum(axis=2)
    got = hamming_distances(pack_bits(q_bits), pack_bits(db_bits))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)


def test_hamming_distances_hand_example() -> None:
    query = np.array([[0b00000000, 0b11111111]], dtype=np.uint8)
    db = np.array([[0, 0xFF], [1, 0xFF], [0xFF, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(hamming_distances(query, db), [[0, 1, 16]])


def test_hamming_distances_rejects_mismatched_code_sizes() -> None:
    with pytest.raises(ValueError, match="bytes per row"):
        hamming_distances(np.zeros((1, 8), np.uint8), np.zeros((3, 16), np.uint8))
