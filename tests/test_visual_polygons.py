"""COCO polygons drawn pixel for pixel as pycocotools draws them (golden file), and what follows from the rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modchain.visual_chain.masks import EncodedMask, decode_mask
from modchain.visual_chain.polygons import polygon_mask

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "coco_polygon_golden.json").read_text())


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda case: case["name"])
def test_masks_equal_pycocotools(case):
    height, width = case["size"]
    expected = decode_mask(EncodedMask.from_coco({"size": [height, width], "counts": case["counts"]}))
    drawn = np.zeros((height, width), dtype=bool)
    for polygon in case["polygons"]:
        drawn |= polygon_mask(polygon, height, width)
    assert int(expected.sum()) == case["area"]
    assert (drawn == expected).all(), f"{int((drawn != expected).sum())} pixels differ"


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 20), st.integers(0, 20), st.integers(1, 20), st.integers(1, 20), st.integers(1, 45),
       st.integers(1, 45))
def test_an_integer_rectangle_covers_exactly_its_pixels(x0, y0, w, h, height, width):
    drawn = polygon_mask([x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h], height, width)
    expected = np.zeros((height, width), dtype=bool)
    expected[y0:y0 + h, x0:x0 + w] = True
    assert (drawn == expected).all()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(-5, 45, allow_nan=False), min_size=6, max_size=24).filter(lambda v: len(v) % 2 == 0),
       st.integers(1, 40), st.integers(1, 40))
def test_a_mask_stays_inside_the_polygons_bounding_box(coords, height, width):
    drawn = polygon_mask(coords, height, width)
    assert drawn.shape == (height, width)
    if drawn.any():
        rows, cols = np.nonzero(drawn)
        xs, ys = coords[0::2], coords[1::2]
        assert cols.min() >= min(xs) - 0.5 and cols.max() <= max(xs) and rows.min() >= min(ys) - 0.5
        assert rows.max() <= max(ys)
