"""Mask encoding: RLE and bit-packing round trips (hypothesis) and COCO's reference encodings (golden file)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modchain.visual_chain.masks import (
    EncodedMask,
    compress_counts,
    decode_mask,
    decompress_counts,
    encode_mask,
    pack_bits,
    unpack_bits,
)

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "coco_rle_golden.json").read_text())

masks = st.tuples(st.integers(0, 40), st.integers(0, 40)).flatmap(lambda hw: arrays(bool, hw))
# Runs rather than independent pixels: masks that look like objects (long runs, big counts).
blocky = st.tuples(st.integers(1, 300), st.integers(1, 300), st.integers(0, 2**32 - 1)).map(
    lambda t: np.random.default_rng(t[2]).random((t[0] // 10 + 1, t[1] // 10 + 1)).repeat(10, 0).repeat(10, 1)
    [: t[0], : t[1]] > 0.5)


@settings(max_examples=200, deadline=None)
@given(st.one_of(masks, blocky))
def test_rle_round_trips_and_summaries(mask):
    encoded = encode_mask(mask)
    assert encoded.size == mask.shape
    assert (decode_mask(encoded) == mask).all()
    assert encoded.area == int(mask.sum())
    assert sum(encoded.counts) == mask.size
    assert all(c > 0 for c in encoded.counts[1:])  # runs are maximal: no empty run after the first
    again = EncodedMask.from_coco(encoded.to_coco())  # compressed string
    assert again == encoded == EncodedMask.from_coco(json.loads(json.dumps(encoded.to_coco(compressed=False))))
    if mask.any():
        rows, cols = np.nonzero(mask)
        assert encoded.bbox == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    else:
        assert encoded.bbox is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**7), max_size=40))
def test_compressed_counts_round_trip_any_counts(counts):
    assert decompress_counts(compress_counts(counts)) == counts


@settings(max_examples=100, deadline=None)
@given(masks)
def test_bit_packing_round_trips(mask):
    data = pack_bits(mask)
    assert len(data) == (mask.size + 7) // 8
    assert (unpack_bits(data, mask.shape) == mask).all()


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: f"{c['size'][0]}x{c['size'][1]}-{c['area']}")
def test_matches_pycocotools_reference(case):
    mask = np.array([[ch == "1" for ch in row] for row in case["mask_rows"]], dtype=bool).reshape(case["size"])
    encoded = encode_mask(mask)
    assert encoded.to_coco()["counts"] == case["counts"]
    assert encoded.area == case["area"]
    decoded = EncodedMask.from_coco({"size": case["size"], "counts": case["counts"]})
    assert (decode_mask(decoded) == mask).all()
    if case["area"]:
        x0, y0, x1, y1 = encoded.bbox
        assert [x0, y0, x1 - x0, y1 - y0] == case["bbox_xywh"]


def test_bad_encodings_are_refused():
    with pytest.raises(ValueError):
        EncodedMask(size=(2, 2), counts=(1, 2))
    with pytest.raises(ValueError):
        EncodedMask.from_coco({"size": [2, 2], "counts": "\x7f"})
    with pytest.raises(ValueError):
        EncodedMask.from_coco({"counts": [4]})
    with pytest.raises(ValueError):
        encode_mask(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        unpack_bits(b"\x00", (3, 3))
