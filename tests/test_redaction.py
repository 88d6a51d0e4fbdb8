"""Redaction: only the (dilated) masks or boxes of the chosen labels change; fill covers every pixel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from modchain.core.errors import ConfigurationError, InputError
from modchain.visual_chain.masks import encode_mask
from modchain.visual_chain.redaction import Redactor, apply_redaction, redact, redaction_mask
from modchain.visual_chain.results import ImageChainResult
from modchain.visual_chain.types import Detection, Segment


def noisy_image(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def result_with(masks: dict[str, np.ndarray], size: tuple[int, int], boxes: dict[str, tuple] | None = None):
    segments = tuple(Segment(mask=encode_mask(m), score=0.9, prompt_index=i, label=label)
                     for i, (label, m) in enumerate(masks.items()))
    detections = tuple(Detection(label=label, score=0.8, box=box) for label, box in (boxes or {}).items())
    return ImageChainResult(query=". ".join(masks), image_size=size, segments=segments, detections=detections)


def square_dilation(mask: np.ndarray, px: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    for y, x in zip(*np.nonzero(mask)):
        out[max(0, y - px):min(h, y + px + 1), max(0, x - px):min(w, x + px + 1)] = True
    return out


masks_strategy = st.tuples(st.integers(4, 24), st.integers(4, 24)).flatmap(
    lambda hw: st.tuples(st.just(hw), st.lists(st.booleans(), min_size=hw[0] * hw[1], max_size=hw[0] * hw[1]),
                         st.lists(st.booleans(), min_size=hw[0] * hw[1], max_size=hw[0] * hw[1])))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masks_strategy, st.integers(0, 3), st.sampled_from(["blur", "pixelate", "fill"]))
def test_only_pixels_inside_the_dilated_masks_of_chosen_labels_change(data, dilate, method):
    (h, w), face_bits, plate_bits = data
    face = np.array(face_bits).reshape(h, w)
    plate = np.array(plate_bits).reshape(h, w)
    image = noisy_image(w, h)
    result = result_with({"face": face, "screen": plate}, (w, h))
    out = np.asarray(redact(image, result, labels=["Face"], method=method, dilate=dilate, fill=(1, 2, 3)))
    original = np.asarray(image)
    region = square_dilation(face, dilate)
    assert (redaction_mask(result, labels="face", dilate=dilate) == region).all()
    changed = (out != original).any(axis=2)
    assert not changed[~region].any()  # nothing outside the (dilated) face masks; the screen mask is untouched
    if method == "fill":
        assert (out[region] == (1, 2, 3)).all()  # every masked pixel is covered


def test_blur_and_pixelate_are_the_composite_of_the_transformed_image():
    image = noisy_image(64, 48, seed=1)
    mask = np.zeros((48, 64), dtype=bool)
    mask[10:30, 20:50] = True
    result = result_with({"face": mask}, (64, 48))
    blurred = np.asarray(redact(image, result, method="blur", blur_radius=3))
    expected = np.asarray(image.filter(ImageFilter.GaussianBlur(3)))
    assert (blurred[mask] == expected[mask]).all() and (blurred[~mask] == np.asarray(image)[~mask]).all()
    assert (blurred[mask] != np.asarray(image)[mask]).any(axis=1).mean() > 0.9  # noise is destroyed
    pixelated = np.asarray(redact(image, result, method="pixelate", pixel_size=8))
    block = pixelated[16:24, 24:32]
    assert (block == block[0, 0]).all()  # one color per 8x8 block inside the mask


def test_boxes_cover_every_touched_pixel_and_fall_back_to_mask_boxes():
    mask = np.zeros((20, 30), dtype=bool)
    mask[5:8, 4:9] = True
    result = result_with({"plate": mask}, (30, 20), boxes={"plate": (2.5, 3.2, 10.1, 12.0)})
    region = redaction_mask(result, use="boxes")
    assert region.sum() == (12 - 3) * (11 - 2) and region[3, 2] and region[11, 10] and not region[12, 10]
    no_detections = result_with({"plate": mask}, (30, 20))
    assert (redaction_mask(no_detections, use="boxes") == mask).all()  # the mask's own tight box
    assert not redaction_mask(result, labels=["face"], use="boxes").any()


def test_nothing_to_redact_returns_an_equal_copy():
    image = noisy_image(10, 10)
    result = result_with({}, (10, 10))
    out = redact(image, result, labels=["face"])
    assert out is not image and (np.asarray(out) == np.asarray(image)).all()


def test_bad_arguments_are_typed():
    image = noisy_image(10, 10)
    result = result_with({"face": np.ones((10, 10), bool)}, (10, 10))
    with pytest.raises(ConfigurationError):
        redact(image, result, method="smudge")
    with pytest.raises(ConfigurationError):
        redact(image, result, use="polygons")
    with pytest.raises(ConfigurationError):
        redact(image, result, dilate=-1)
    with pytest.raises(InputError):
        redact(noisy_image(12, 10), result)
    with pytest.raises(InputError):
        apply_redaction(image, np.ones((3, 3), bool))
    with pytest.raises(ConfigurationError):
        Redactor(labels=[])


def test_redactor_runnable_with_a_precomputed_result_and_with_a_chain():
    image = noisy_image(40, 30, seed=3)
    face = np.zeros((30, 40), dtype=bool)
    face[5:15, 5:15] = True
    result = result_with({"face": face}, (40, 30))
    redactor = Redactor(labels=["face", "license plate"], method="fill", dilate=0)
    assert redactor.query == "face. license plate."
    out = redactor.invoke({"image": image, "result": result})
    assert out.redacted == 1 and out.redacted_pixels == 100
    assert (np.asarray(out.image)[face] == 0).all()

    class FixedChain:  # any Runnable-like chain: records the query it was asked
        def __init__(self):
            self.inputs = []

        def invoke(self, value, config=None):
            self.inputs.append(value)
            return result

    chain = FixedChain()
    out = Redactor(chain, labels=["face", "license plate"], method="pixelate").invoke(image)
    assert chain.inputs[0]["query"] == "face. license plate." and out.redacted == 1
    assert (np.asarray(out.image)[~square_dilation(face, 2)] == np.asarray(image)[~square_dilation(face, 2)]).all()


def test_overlay_blends_masks_draws_boxes_and_saves_a_png(tmp_path):
    from modchain.visual_chain.visualize import label_color, overlay, save_overlay

    image = Image.new("RGB", (80, 60), (0, 0, 0))
    mask = np.zeros((60, 80), dtype=bool)
    mask[30:50, 40:70] = True
    result = result_with({"car": mask}, (80, 60), boxes={"car": (40, 30, 70, 50)})
    masked_only = np.asarray(overlay(image, result, alpha=0.5, boxes=False, labels=False)).astype(int)
    expected = np.round(np.array(label_color("car")) * 0.5).astype(int)
    assert (masked_only[mask] == expected).all() and (masked_only[~mask] == 0).all()
    drawn = np.asarray(overlay(image, result, alpha=0.0))
    assert (drawn[30, 40:70] == label_color("car")).all()  # the box's top edge
    assert (drawn[5:25, 0:35] == 0).all()  # far from the box and its tag: untouched
    path = save_overlay(image, result, tmp_path / "out" / "car.png")
    with Image.open(path) as saved:
        assert saved.format == "PNG" and saved.size == (80, 60)
    with pytest.raises(InputError):
        overlay(Image.new("RGB", (10, 10)), result)


def test_boxes_cover_masks_from_explicit_prompts_even_when_other_labels_were_detected():
    face = np.zeros((30, 40), dtype=bool)
    face[5:10, 6:12] = True  # a mask from an explicit prompt: no detection of its own
    result = result_with({"face": face}, (40, 30), boxes={"car": (20, 15, 35, 28)})
    region = redaction_mask(result, labels=["face"], use="boxes")
    assert (region == face).all()  # before: nothing, because the result had (other) detections
    out = Redactor(labels=["face"], method="fill", use="boxes", dilate=0).invoke({"image": noisy_image(40, 30),
                                                                                  "result": result})
    assert out.redacted == 1 and out.redacted_pixels == 30


def test_redactor_loads_the_image_with_the_chains_store():
    import io

    from modchain.visual_chain.image_store import ImageStore

    buffer = io.BytesIO()
    noisy_image(40, 30, seed=4).save(buffer, format="PNG")
    fetched = []

    def fetch_s3(bucket, key, **options):
        fetched.append((bucket, key))
        return buffer.getvalue()

    face = np.zeros((30, 40), dtype=bool)
    face[5:15, 5:15] = True
    result = result_with({"face": face}, (40, 30))

    class StoreChain:  # a chain whose image store reads s3:// sources through its own fetcher
        image_store = ImageStore(fetch_s3=fetch_s3)

        def invoke(self, value, config=None):
            return result

    out = Redactor(StoreChain(), labels=["face"], method="fill", dilate=0).invoke({"image": "s3://cams/f/1.png"})
    assert fetched == [("cams", "f/1.png")] and out.redacted_pixels == 100
    assert (np.asarray(out.image)[face] == 0).all()


def test_overlay_boxes_end_where_the_box_ends():
    from modchain.visual_chain.visualize import label_color, overlay

    image = Image.new("RGB", (80, 60), (0, 0, 0))
    result = result_with({}, (80, 60), boxes={"car": (40, 30, 70, 50)})
    drawn = np.asarray(overlay(image, result, alpha=0.0, labels=False, line_width=1))
    color = label_color("car")
    assert (drawn[30, 40:70] == color).all() and (drawn[49, 40:70] == color).all()  # top and bottom rows
    assert (drawn[30:50, 69] == color).all()  # the last column inside the box
    assert (drawn[:, 70] == 0).all() and (drawn[50, :] == 0).all()  # one past the end: not the box's
