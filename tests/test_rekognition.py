"""Rekognition DetectModerationLabels: boto3 against the local emulator (real HTTP, real wire protocol)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

pytest.importorskip("boto3")
np = pytest.importorskip("numpy")

from botocore.exceptions import ClientError  # noqa: E402
from PIL import Image  # noqa: E402

from modchain.backends.aws.rekognition_moderation import (  # noqa: E402
    MAX_IMAGE_BYTES,
    RekognitionModerationLabeler,
    encode_jpeg_within,
)
from modchain.core.errors import BackendThrottledError, BackendUnavailableError, ConfigurationError  # noqa: E402
from modchain.image_moderation.errors import (  # noqa: E402
    CorruptImageError,
    ImageInputError,
    ImageTooLargeError,
)
from modchain.image_moderation.results import REKOGNITION_TOP_LEVEL_CATEGORIES, ImageFinding  # noqa: E402
from modchain.testing.clients import local_client  # noqa: E402
from modchain.testing.rekognition_emulator import MAX_BYTES, RekognitionEmulator  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "images"
ROCKET = FIXTURES / "skimage_rocket.jpg"
CAT = FIXTURES / "skimage_chelsea.png"


def _encode(image, fmt, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


RED_JPEG = _encode(Image.new("RGB", (64, 64), (250, 10, 10)), "JPEG")


@pytest.fixture
def rekognition():
    with RekognitionEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(rekognition):
    return local_client("rekognition", rekognition.url)


@pytest.fixture
def labeler(client):
    return RekognitionModerationLabeler(client)


def _sent_bytes(emulator) -> list[bytes]:
    return [base64.b64decode(params["Image"]["Bytes"]) for op, params in emulator.requests
            if op == "DetectModerationLabels" and "Bytes" in params["Image"]]


def test_bytes_path_maps_labels_into_image_findings(labeler, rekognition):
    findings = labeler.label(RED_JPEG)
    assert len(findings) == 1
    finding = findings[0]
    assert isinstance(finding, ImageFinding)
    assert finding.filter == "image" and finding.backend == "rekognition"
    assert finding.label == "Explicit" and finding.label in REKOGNITION_TOP_LEVEL_CATEGORIES
    assert finding.category == "Exposed Female Nipple"
    assert finding.explanation == "Explicit > Explicit Nudity > Exposed Female Nipple"
    assert 0.9 < finding.score <= 1.0 and finding.box is None
    assert _sent_bytes(rekognition) == [RED_JPEG]  # a JPEG within the limit is sent as it is
    assert rekognition.requests[0][1]["MinConfidence"] == 50.0


def test_benign_photos_and_every_source_kind(labeler, rekognition):
    assert labeler.label(ROCKET) == []
    assert labeler.label(str(CAT)) == []
    assert _sent_bytes(rekognition) == [ROCKET.read_bytes(), CAT.read_bytes()]
    red = Image.new("RGB", (64, 64), (250, 10, 10))
    for source in (red, np.asarray(red), base64.b64encode(_encode(red, "WEBP")).decode(), _encode(red, "GIF")):
        assert [f.label for f in labeler.label(source)] == ["Explicit"]
    for data in _sent_bytes(rekognition)[2:]:
        assert data[:3] == b"\xff\xd8\xff"  # PIL, numpy, WebP and GIF go as JPEG


def test_min_confidence_filters_the_leaf(client):
    findings = RekognitionModerationLabeler(client, min_confidence=95).label(RED_JPEG)
    assert [(f.label, f.category, f.explanation) for f in findings] == [
        ("Explicit", "Explicit Nudity", "Explicit > Explicit Nudity")]


def test_image_over_5mb_is_reencoded_to_fit(labeler, rekognition):
    noise = np.random.default_rng(0).integers(0, 256, size=(1800, 1800, 3), dtype=np.uint8)
    noise[..., 0] = 255  # red-dominated so the stand-in labeler fires
    noise[..., 1:] //= 4
    png = _encode(Image.fromarray(noise), "PNG")
    assert len(png) > MAX_BYTES
    # The service itself refuses it (boto3 straight to the emulator) ...
    with pytest.raises(ClientError) as info:
        labeler.client.detect_moderation_labels(Image={"Bytes": png})
    assert info.value.response["Error"]["Code"] == "ImageTooLargeException"
    # ... and the labeler sends a JPEG under the limit instead.
    findings = labeler.label(png)
    assert [f.label for f in findings] == ["Explicit"]
    sent = _sent_bytes(rekognition)[-1]
    assert len(sent) <= MAX_IMAGE_BYTES and sent[:3] == b"\xff\xd8\xff"
    assert Image.open(io.BytesIO(sent)).size == (1800, 1800)


def test_encode_jpeg_within_downscales_when_quality_is_not_enough():
    noise = np.random.default_rng(1).integers(0, 256, size=(800, 800, 3), dtype=np.uint8)
    data = encode_jpeg_within(Image.fromarray(noise), 60_000)
    assert len(data) <= 60_000
    assert Image.open(io.BytesIO(data)).size[0] < 800


def test_image_rejected_by_the_service_maps_to_input_error(client):
    too_generous = RekognitionModerationLabeler(client, max_image_bytes=10 * MAX_BYTES)
    noise = np.random.default_rng(2).integers(0, 256, size=(1500, 1500, 3), dtype=np.uint8)
    with pytest.raises(ImageTooLargeError) as info:
        too_generous.label(_encode(Image.fromarray(noise), "PNG"))
    assert "ImageTooLargeException" in str(info.value)


def test_emulator_rejects_formats_other_than_jpeg_and_png(client):
    for data in (_encode(Image.new("RGB", (8, 8)), "GIF"), b"\xff\xd8\xff\xe0 not really a jpeg"):
        with pytest.raises(ClientError) as info:
            client.detect_moderation_labels(Image={"Bytes": data})
        assert info.value.response["Error"]["Code"] == "InvalidImageFormatException"


def test_corrupt_input_is_rejected_locally(labeler, rekognition):
    with pytest.raises(CorruptImageError):
        labeler.label(RED_JPEG[:100])
    assert rekognition.count() == 0


def test_s3_path(labeler, rekognition):
    uri = rekognition.put_object("uploads", "2024/red.jpg", RED_JPEG)
    findings = labeler.label(uri)
    assert [f.label for f in findings] == ["Explicit"]
    assert rekognition.requests[-1][1]["Image"] == {"S3Object": {"Bucket": "uploads", "Name": "2024/red.jpg"}}
    with pytest.raises(ImageInputError):
        labeler.label("s3://uploads/missing.jpg")


def test_throttling_and_server_errors_are_mapped(labeler, rekognition):
    rekognition.fail_next(1, "ThrottlingException")
    with pytest.raises(BackendThrottledError) as info:
        labeler.label(RED_JPEG)
    assert info.value.aws_error_code == "ThrottlingException" and info.value.backend == "rekognition"
    rekognition.fail_next(1, "InternalServerError")
    with pytest.raises(BackendUnavailableError):
        labeler.label(RED_JPEG)
    assert [f.label for f in labeler.label(RED_JPEG)] == ["Explicit"]  # recovers


def test_batch_keeps_order(labeler):
    results = labeler.label_batch([RED_JPEG, ROCKET, RED_JPEG, CAT])
    assert [[f.label for f in r] for r in results] == [["Explicit"], [], ["Explicit"], []]


async def test_async_batch(labeler):
    results = await labeler.alabel_batch([ROCKET, RED_JPEG])
    assert [[f.label for f in r] for r in results] == [[], ["Explicit"]]


def test_to_findings_legacy_and_multiple_categories(labeler):
    response = {"ModerationLabels": [
        {"Name": "Suggestive", "ParentName": "", "Confidence": 80.0, "TaxonomyLevel": 1},
        {"Name": "Female Swimwear Or Underwear", "ParentName": "Suggestive", "Confidence": 79.0,
         "TaxonomyLevel": 2},
        {"Name": "Violence", "ParentName": "", "Confidence": 91.5, "TaxonomyLevel": 1},
        {"Name": "Drugs", "ParentName": "", "Confidence": 60.0, "TaxonomyLevel": 1},
    ]}
    findings = labeler.to_findings(response)
    assert [(f.label, f.category, f.score) for f in findings] == [
        ("Violence", None, 0.915),
        ("Non-Explicit Nudity of Intimate parts and Kissing", "Female Swimwear Or Underwear", 0.79),
        ("Drugs & Tobacco", None, 0.6),
    ]
    assert findings[1].explanation == "Suggestive > Female Swimwear Or Underwear"


def test_client_from_endpoint_and_config_errors(rekognition, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    labeler = RekognitionModerationLabeler(region_name="us-east-1", endpoint_url=rekognition.url, max_retries=0)
    assert [f.label for f in labeler.label(RED_JPEG)] == ["Explicit"]
    with pytest.raises(ConfigurationError):
        RekognitionModerationLabeler(labeler.client, min_confidence=150)
