"""Grounding DINO and OWLv2 detectors on tiny random checkpoints of the real architectures (from_pretrained)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from modchain.backends.detection import box_iou, check_queries, nms  # noqa: E402
from modchain.backends.hf.grounding_dino import GroundingDino, _phrase_text  # noqa: E402
from modchain.backends.hf.owlv2 import Owlv2  # noqa: E402
from modchain.core.errors import ConfigurationError, InputError  # noqa: E402
from modchain.testing.tiny_visual_models import WORDS, save_tiny_grounding_dino, save_tiny_owlv2  # noqa: E402
from modchain.visual_chain.types import Detection, Detector  # noqa: E402

HEIGHT, WIDTH = 60, 100
QUERIES = ["a cat", "silver cars", "Person"]


@pytest.fixture(scope="module")
def gd_dir(tmp_path_factory):
    return save_tiny_grounding_dino(tmp_path_factory.mktemp("gdino"))


@pytest.fixture(scope="module")
def owl_dir(tmp_path_factory):
    return save_tiny_owlv2(tmp_path_factory.mktemp("owlv2"))


@pytest.fixture(scope="module")
def image():
    return Image.fromarray(np.random.default_rng(1).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8))


def assert_valid(detections: list[Detection], queries, backend: str) -> None:
    assert [d.score for d in detections] == sorted((d.score for d in detections), reverse=True)
    for d in detections:
        assert d.label in queries and d.backend == backend
        assert 0.0 <= d.score <= 1.0
        x0, y0, x1, y1 = d.box
        assert 0.0 <= x0 <= x1 <= WIDTH and 0.0 <= y0 <= y1 <= HEIGHT


# ------------------------------------------------------------------------------------------ Grounding DINO

def test_tiny_grounding_dino_tokenizer_keeps_bert_ids_for_phrase_splitting(gd_dir):
    tokenizer = transformers.AutoTokenizer.from_pretrained(gd_dir)
    ids = tokenizer("a cat. a dog?").input_ids
    assert ids[0] == 101 and ids[-1] == 102 and 1012 in ids and 1029 in ids
    config = transformers.AutoConfig.from_pretrained(gd_dir)
    assert config.model_type == "grounding-dino"


def test_phrase_text_is_grounding_dino_style_with_spans():
    text, spans = _phrase_text(["A Cat", "silver cars"])
    assert text == "a cat. silver cars."
    assert [text[s:e] for s, e in spans] == ["a cat", "silver cars"]


def test_grounding_dino_boxes_are_pixels_inside_the_image(gd_dir, image):
    detector = GroundingDino.local(gd_dir, device="cpu", box_threshold=0.0, text_threshold=0.0, nms_threshold=None)
    assert isinstance(detector, Detector) and gd_dir in detector.name
    detections = detector.detect(image, QUERIES)
    assert len(detections) == 30  # every query slot of the tiny model (num_queries=30) scores above 0
    assert_valid(detections, QUERIES, "grounding-dino")
    assert len({d.label for d in detections}) > 1
    assert detector.detect(image, QUERIES) == detections  # deterministic


@pytest.mark.parametrize("size", [(64, 64), (512, 512), (300, 40), (40, 300)])
def test_grounding_dino_takes_square_and_extreme_aspect_images(gd_dir, size):
    # A square image once left the tiny model's extra feature level at 1x1, which GroupNorm refuses.
    image = Image.fromarray(np.random.default_rng(2).integers(0, 255, (*size[::-1], 3), dtype=np.uint8))
    detector = GroundingDino.local(gd_dir, device="cpu", box_threshold=0.0, text_threshold=0.0)
    detections = detector.detect(image, QUERIES)
    assert detections
    for d in detections:
        x0, y0, x1, y1 = d.box
        assert 0.0 <= x0 <= x1 <= size[0] and 0.0 <= y0 <= y1 <= size[1]


def test_grounding_dino_thresholds_keep_a_subset(gd_dir, image):
    loose = GroundingDino.local(gd_dir, device="cpu", box_threshold=0.0, text_threshold=0.0,
                                nms_threshold=None).detect(image, QUERIES)
    strict = GroundingDino.local(gd_dir, device="cpu", box_threshold=0.9, text_threshold=0.0,
                                 nms_threshold=None).detect(image, QUERIES)
    text_strict = GroundingDino.local(gd_dir, device="cpu", box_threshold=0.0, text_threshold=0.9,
                                      nms_threshold=None).detect(image, QUERIES)
    assert 0 < len(strict) < len(loose) and all(d.score > 0.9 for d in strict)
    assert set(strict) <= set(loose)
    assert len(text_strict) < len(loose) and set(text_strict) <= set(loose)


def test_grounding_dino_label_filter_and_default_queries(gd_dir, image):
    detector = GroundingDino.local(gd_dir, device="cpu", box_threshold=0.0, text_threshold=0.0,
                                   labels=["a cat"], nms_threshold=None)
    filtered = detector.detect(image, QUERIES)
    assert filtered and {d.label for d in filtered} == {"a cat"}
    assert {d.label for d in detector.detect(image, [])} == {"a cat"}  # labels are the default queries


def test_grounding_dino_nms_removes_overlaps_within_a_label(gd_dir, image):
    detections = GroundingDino.local(gd_dir, device="cpu", box_threshold=0.0, text_threshold=0.0,
                                     nms_threshold=0.1).detect(image, QUERIES)
    for a in detections:
        for b in detections:
            if a is not b and a.label == b.label:
                assert box_iou(a.box, b.box) <= 0.1


def test_grounding_dino_splits_queries_longer_than_the_text_encoder(gd_dir, image):
    queries = [f"{w} {v}" for w in WORDS[:12] for v in ("car", "dog")]  # ~72 tokens > max_text_len 64
    detector = GroundingDino.local(gd_dir, device="cpu", box_threshold=0.0, text_threshold=0.0)
    tokenizer = detector._lazy.get()[1]
    assert len(detector._chunks(tokenizer, queries, 64)) == 2
    assert_valid(detector.detect(image, queries), queries, "grounding-dino")


def test_grounding_dino_bad_inputs(gd_dir, owl_dir, image):
    detector = GroundingDino.local(gd_dir, device="cpu")
    with pytest.raises(InputError):
        detector.detect(np.zeros((4, 4, 3)), QUERIES)
    with pytest.raises(InputError):
        detector.detect(image, [])
    with pytest.raises(InputError):
        detector.detect(image, "a cat")  # a bare string is not a list of queries
    with pytest.raises(InputError):
        detector.detect(image, ["...", "a cat"])
    with pytest.raises(InputError):
        detector.detect(image, ["a cat", ""])
    with pytest.raises(ConfigurationError):
        GroundingDino.local(gd_dir, box_threshold=1.5)
    with pytest.raises(ConfigurationError, match="not Grounding DINO"):
        GroundingDino.local(owl_dir, device="cpu").load()


# ------------------------------------------------------------------------------------------------- OWLv2

def test_owlv2_boxes_are_pixels_inside_a_non_square_image(owl_dir, image):
    detector = Owlv2.local(owl_dir, device="cpu", score_threshold=0.0, nms_threshold=None)
    assert isinstance(detector, Detector)
    detections = detector.detect(image, QUERIES)
    assert len(detections) == 64  # one box per patch of the tiny 8x8 grid
    assert_valid(detections, QUERIES, "owlv2")
    # OWLv2 pads to a square: the image covers the top 60% of it, so box centers stay in the image.
    assert max((d.box[1] + d.box[3]) / 2 for d in detections) <= HEIGHT


def test_owlv2_threshold_labels_and_nms(owl_dir, image):
    loose = Owlv2.local(owl_dir, device="cpu", score_threshold=0.0, nms_threshold=None).detect(image, QUERIES)
    strict = Owlv2.local(owl_dir, device="cpu", score_threshold=0.6, nms_threshold=None).detect(image, QUERIES)
    assert 0 < len(strict) < len(loose) and all(d.score > 0.6 for d in strict) and set(strict) <= set(loose)
    only = Owlv2.local(owl_dir, device="cpu", score_threshold=0.0, labels=["person"]).detect(image, QUERIES)
    assert only and {d.label for d in only} == {"Person"}
    suppressed = Owlv2.local(owl_dir, device="cpu", score_threshold=0.0, nms_threshold=0.0).detect(image, QUERIES)
    for a in suppressed:
        for b in suppressed:
            if a is not b and a.label == b.label:
                assert box_iou(a.box, b.box) == 0.0


def test_owlv2_bad_inputs(owl_dir, gd_dir, image):
    detector = Owlv2.local(owl_dir, device="cpu")
    with pytest.raises(InputError):
        detector.detect(b"png bytes", QUERIES)
    with pytest.raises(InputError):
        detector.detect(image, [None])
    with pytest.raises(ConfigurationError):
        Owlv2.local(owl_dir, score_threshold=-0.1)
    with pytest.raises(ConfigurationError, match="not OWLv2"):
        Owlv2.local(gd_dir, device="cpu").load()


# ------------------------------------------------------------------------------------------------ helpers

def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = [(0, 0, 10, 10), (1, 1, 11, 11), (20, 20, 30, 30), (0, 0, 10, 10)]
    assert nms(boxes, [0.5, 0.9, 0.3, 0.4], 0.5) == [1, 2]
    assert nms(boxes, [0.5, 0.9, 0.3, 0.4], 1.0) == [1, 0, 3, 2]


def test_check_queries_normalizes_and_dedupes():
    assert check_queries(["  a   cat ", "a cat", "dog"], "x") == ["a cat", "dog"]


def test_grounding_dino_takes_loaded_objects(gd_dir, image):
    model = transformers.GroundingDinoForObjectDetection.from_pretrained(gd_dir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(gd_dir)
    image_processor = transformers.GroundingDinoImageProcessorPil.from_pretrained(gd_dir)
    given = GroundingDino(model_obj=model, tokenizer_obj=tokenizer, image_processor_obj=image_processor,
                          device="cpu", box_threshold=0.0, text_threshold=0.0)
    loaded = GroundingDino.local(gd_dir, device="cpu", box_threshold=0.0, text_threshold=0.0)
    assert given.detect(image, QUERIES) == loaded.detect(image, QUERIES)
    with pytest.raises(ConfigurationError):
        GroundingDino(model_obj=model)
