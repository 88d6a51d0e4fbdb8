"""NudeNet with its real bundled ONNX model on public-domain fixture photos (offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("nudenet")
pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")
np = pytest.importorskip("numpy")

from PIL import Image  # noqa: E402

from modchain.backends.local.nudenet import NUDENET_CATEGORIES, NudeNetLabeler  # noqa: E402
from modchain.core.errors import ConfigurationError  # noqa: E402
from modchain.image_moderation.errors import CorruptImageError, ImageTooLargeError  # noqa: E402
from modchain.image_moderation.results import REKOGNITION_TOP_LEVEL_CATEGORIES, ImageFinding  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "images"
PHOTOS = sorted(FIXTURES.glob("skimage_*"))


@pytest.fixture(scope="module")
def labeler():
    return NudeNetLabeler(threshold=0.3)


@pytest.fixture(scope="module")
def low_labeler():
    # Threshold 0 and every NudeNet class kept (faces mapped to a category) to exercise the mechanics.
    categories = {name: mapped or ("Swimwear or Underwear", name) for name, mapped in NUDENET_CATEGORIES.items()}
    return NudeNetLabeler(threshold=0.0, categories=categories)


def test_fixture_photos_present():
    assert len(PHOTOS) >= 4


def test_benign_photos_have_no_explicit_finding(labeler):
    results = labeler.label_batch(PHOTOS)
    assert len(results) == len(PHOTOS)
    for findings in results:
        assert all(f.label != "Explicit" for f in findings)


def test_findings_mechanics_boxes_scores_determinism(low_labeler):
    astronaut = FIXTURES / "skimage_astronaut.png"
    first = low_labeler.label(astronaut)
    assert first, "the astronaut portrait has a face NudeNet detects"
    assert any("FACE_FEMALE" in f.explanation for f in first)
    for finding in first:
        assert isinstance(finding, ImageFinding)
        assert finding.filter == "image" and finding.backend == "nudenet"
        assert finding.label in REKOGNITION_TOP_LEVEL_CATEGORIES
        assert 0.0 <= finding.score <= 1.0
        x, y, w, h = finding.box
        assert 0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1 and x + w <= 1 and y + h <= 1
    assert [f.score for f in first] == sorted((f.score for f in first), reverse=True)
    assert low_labeler.label(astronaut) == first  # deterministic
    # Same image through other sources gives the same findings.
    assert low_labeler.label(astronaut.read_bytes()) == first
    assert low_labeler.label(np.asarray(Image.open(astronaut).convert("RGB"))) == first


def test_face_is_dropped_by_default(labeler):
    findings = labeler.label(FIXTURES / "skimage_astronaut.png")
    assert all("FACE" not in f.explanation for f in findings)


def test_batch_matches_single(low_labeler):
    batch = low_labeler.label_batch(PHOTOS, batch_size=3)
    assert batch == [low_labeler.label(p) for p in PHOTOS]


def test_mapping_to_taxonomy():
    labeler = NudeNetLabeler(threshold=0.5)
    detections = [
        {"class": "FEMALE_BREAST_EXPOSED", "score": 0.9, "box": [10, 20, 30, 40]},
        {"class": "BUTTOCKS_COVERED", "score": 0.7, "box": [0, 0, 100, 200]},
        {"class": "FEMALE_GENITALIA_COVERED", "score": 0.6, "box": [50, 50, 10, 10]},
        {"class": "FACE_MALE", "score": 0.99, "box": [0, 0, 5, 5]},
        {"class": "ANUS_EXPOSED", "score": 0.4, "box": [0, 0, 5, 5]},  # under threshold
    ]
    findings = labeler.to_findings(detections, (100, 200))
    assert [(f.label, f.category) for f in findings] == [
        ("Explicit", "Explicit Nudity"),
        ("Swimwear or Underwear", "Swimwear or Underwear"),
        ("Non-Explicit Nudity of Intimate parts and Kissing", "Obstructed Intimate Parts"),
    ]
    assert findings[0].box == pytest.approx((0.1, 0.1, 0.3, 0.2))
    assert findings[1].box == (0.0, 0.0, 1.0, 1.0)


def test_input_errors_and_config_errors(labeler):
    with pytest.raises(CorruptImageError):
        labeler.label(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    small = NudeNetLabeler(load_options={"max_bytes": 100})
    with pytest.raises(ImageTooLargeError):
        small.label(FIXTURES / "skimage_rocket.jpg")
    with pytest.raises(ConfigurationError):
        NudeNetLabeler(threshold=2)
    with pytest.raises(ConfigurationError):
        NudeNetLabeler(categories={"FACE_MALE": ("Not A Category", "x")})
    with pytest.raises(ConfigurationError):
        NudeNetLabeler(model_path="/no/such/model.onnx").label(FIXTURES / "skimage_rocket.jpg")


def test_single_threaded_session_gives_the_same_findings(low_labeler):
    categories = low_labeler.categories
    single = NudeNetLabeler(threshold=0.0, categories=categories, intra_op_threads=1)
    astronaut = FIXTURES / "skimage_astronaut.png"
    found = single.label(astronaut)
    assert single._get_detector().onnx_session.get_session_options().intra_op_num_threads == 1
    expected = low_labeler.label(astronaut)
    assert [(f.category, f.box) for f in found] == [(f.category, f.box) for f in expected]
    assert [f.score for f in found] == pytest.approx([f.score for f in expected], abs=1e-5)
    with pytest.raises(ConfigurationError):
        NudeNetLabeler(intra_op_threads=0)
