"""Rekognition DetectLabels as a detector: boto3 against the local emulator (real HTTP, real wire protocol)."""

from __future__ import annotations

import base64
import io

import pytest

pytest.importorskip("boto3")

from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from modchain.backends.aws.rekognition_detector import RekognitionLabelDetector, query_keys  # noqa: E402
from modchain.core.errors import (  # noqa: E402
    BackendThrottledError,
    BackendUnavailableError,
    ConfigurationError,
    InputError,
)
from modchain.testing.clients import local_client  # noqa: E402
from modchain.testing.rekognition_emulator import MAX_BYTES, RekognitionEmulator  # noqa: E402
from modchain.visual_chain.types import Detector  # noqa: E402

SILVER, BLUE = (192, 192, 192), (0, 0, 255)
CARS = [(20, 40, 100, 90), (200, 100, 280, 160)]   # x0, y0, x1, y1 (end exclusive)
PERSON = (150, 20, 170, 80)


def street() -> Image.Image:
    """320x200: two silver "cars" and a blue "person" painted for the emulator's stand-in detector."""
    image = Image.new("RGB", (320, 200), (30, 120, 30))
    draw = ImageDraw.Draw(image)
    for x0, y0, x1, y1 in [*CARS]:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=SILVER)
    draw.rectangle((PERSON[0], PERSON[1], PERSON[2] - 1, PERSON[3] - 1), fill=BLUE)
    return image


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def rekognition():
    with RekognitionEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(rekognition):
    return local_client("rekognition", rekognition.url)


@pytest.fixture
def detector(client):
    return RekognitionLabelDetector(client)


def close(box, expected, tolerance=3.0):
    return all(abs(a - b) <= tolerance for a, b in zip(box, expected))


def test_silver_cars_query_returns_pixel_boxes_of_each_car(detector, rekognition):
    assert isinstance(detector, Detector)
    detections = detector.detect(street(), ["All silver cars"])
    assert len(detections) == 2
    assert {d.label for d in detections} == {"All silver cars"}
    assert all(d.backend == "rekognition-labels" and 0.5 < d.score <= 1.0 for d in detections)
    for expected in CARS:
        assert any(close(d.box, expected) for d in detections)
    [(operation, params)] = rekognition.requests
    assert operation == "DetectLabels" and params["MinConfidence"] == 55.0
    assert base64.b64decode(params["Image"]["Bytes"]).startswith(b"\xff\xd8\xff")  # JPEG


@pytest.mark.parametrize("query, count", [
    ("car", 2), ("Cars", 2), ("automobile", 2),        # name, plural, alias
    ("vehicle", 2), ("transportation", 2),             # parents return their children's boxes
    ("people", 1), ("a person", 1), ("human", 1),
    ("dog", 0), ("carpet", 0),
])
def test_queries_match_names_aliases_plurals_and_parents(detector, query, count):
    assert len(detector.detect(street(), [query])) == count


def test_no_queries_returns_every_instance_under_its_rekognition_name(detector):
    detections = detector.detect(street(), [])
    assert sorted(d.label for d in detections) == ["Car", "Car", "Person"]
    [person] = [d for d in detections if d.label == "Person"]
    assert close(person.box, PERSON)


def test_labels_filter_and_default_queries(client):
    detector = RekognitionLabelDetector(client, labels=["person"])
    assert [d.label for d in detector.detect(street(), ["car", "person"])] == ["person"]
    assert [d.label for d in detector.detect(street())] == ["person"]


def test_min_confidence_and_max_labels_go_to_the_service(client, rekognition):
    assert RekognitionLabelDetector(client, min_confidence=99.95).detect(street(), ["car"]) == []
    top_only = RekognitionLabelDetector(client, max_labels=1)
    assert len({d.label for d in top_only.detect(street(), [])}) == 1
    assert rekognition.requests[-1][1]["MaxLabels"] == 1


def test_large_images_are_reencoded_within_the_limit_and_boxes_keep_their_place(client, rekognition):
    big = street().resize((1280, 800), Image.Resampling.NEAREST)
    detections = RekognitionLabelDetector(client, max_image_bytes=8_000).detect(big, ["car"])
    sent = base64.b64decode(rekognition.requests[-1][1]["Image"]["Bytes"])
    assert len(sent) <= 8_000
    for x0, y0, x1, y1 in CARS:
        assert any(close(d.box, (4 * x0, 4 * y0, 4 * x1, 4 * y1), tolerance=16) for d in detections)


def test_backend_errors_are_mapped(client, rekognition):
    detector = RekognitionLabelDetector(client)
    rekognition.fail_next(1, "ThrottlingException")
    with pytest.raises(BackendThrottledError):
        detector.detect(street(), ["car"])
    rekognition.fail_next(1, "InternalServerError")
    with pytest.raises(BackendUnavailableError):
        detector.detect(street(), ["car"])


def test_bad_inputs(detector):
    with pytest.raises(InputError):
        detector.detect(png(street()), ["car"])
    with pytest.raises(InputError):
        detector.detect(street(), ["car", " "])
    with pytest.raises(ConfigurationError):
        RekognitionLabelDetector(detector.client, min_confidence=101)
    with pytest.raises(ConfigurationError):
        RekognitionLabelDetector(detector.client, max_labels=-1)


def test_query_keys():
    assert query_keys("All silver cars") >= {"silver cars", "silver car", "car"}
    assert "bus" in query_keys("buses") and "person" in query_keys("the people")


# ------------------------------------------------------------------------- the emulator's DetectLabels

def test_emulator_detect_labels_response_shape(client):
    response = client.detect_labels(Image={"Bytes": png(street())}, Features=["GENERAL_LABELS", "IMAGE_PROPERTIES"])
    names = [label["Name"] for label in response["Labels"]]
    assert {"Car", "Person", "Vehicle", "Transportation"} <= set(names)
    car = next(label for label in response["Labels"] if label["Name"] == "Car")
    assert len(car["Instances"]) == 2 and {"Name": "Vehicle"} in car["Parents"]
    for instance in car["Instances"]:
        box = instance["BoundingBox"]
        assert all(0.0 <= box[k] <= 1.0 for k in ("Left", "Top", "Width", "Height"))
        assert 0.0 <= instance["Confidence"] <= 100.0
    vehicle = next(label for label in response["Labels"] if label["Name"] == "Vehicle")
    assert vehicle["Instances"] == []
    assert response["LabelModelVersion"] and "Brightness" in response["ImageProperties"]["Quality"]
    confidences = [label["Confidence"] for label in response["Labels"]]
    assert confidences == sorted(confidences, reverse=True)


def test_emulator_filters_and_limits(client):
    included = client.detect_labels(Image={"Bytes": png(street())},
                                    Settings={"GeneralLabels": {"LabelInclusionFilters": ["Person"]}})
    assert [label["Name"] for label in included["Labels"]] == ["Person"]
    excluded = client.detect_labels(
        Image={"Bytes": png(street())},
        Settings={"GeneralLabels": {"LabelCategoryExclusionFilters": ["Vehicles and Automotive"]}})
    assert [label["Name"] for label in excluded["Labels"]] == ["Person"]
    only_properties = client.detect_labels(Image={"Bytes": png(street())}, Features=["IMAGE_PROPERTIES"])
    assert "Labels" not in only_properties and "ImageProperties" in only_properties


def test_emulator_enforces_the_service_limits(rekognition):
    # Parameter validation off: the emulator itself must refuse what the service refuses.
    import boto3

    raw = boto3.client("rekognition", endpoint_url=rekognition.url, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test",
                       config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))
    cases = [
        ({"Image": {"Bytes": b"\xff\xd8\xff" + b"0" * MAX_BYTES}}, "ImageTooLargeException"),
        ({"Image": {"Bytes": b"GIF89a" + b"0" * 100}}, "InvalidImageFormatException"),
        ({"Image": {"Bytes": png(street())}, "MinConfidence": 150}, "InvalidParameterException"),
        ({"Image": {"Bytes": png(street())}, "MaxLabels": -1}, "InvalidParameterException"),
        ({"Image": {"Bytes": png(street())}, "Features": ["FACES"]}, "InvalidParameterException"),
        ({"Image": {"Bytes": png(street())},
          "Settings": {"GeneralLabels": {"LabelInclusionFilters": ["x"] * 101}}}, "InvalidParameterException"),
        ({"Image": {"S3Object": {"Bucket": "bucket", "Name": "missing.png"}}}, "InvalidS3ObjectException"),
    ]
    for params, code in cases:
        with pytest.raises(ClientError) as info:
            raw.detect_labels(**params)
        assert info.value.response["Error"]["Code"] == code


def test_emulator_reads_s3_objects(client, rekognition):
    rekognition.put_object("bucket", "street.png", png(street()))
    response = client.detect_labels(Image={"S3Object": {"Bucket": "bucket", "Name": "street.png"}})
    assert any(label["Name"] == "Person" for label in response["Labels"])


def test_detect_batch_sends_one_request_per_image_in_order(detector, rekognition):
    empty = Image.new("RGB", (64, 64), (30, 120, 30))
    results = detector.detect_batch([street(), empty, street()], ["car"])
    assert [len(r) for r in results] == [2, 0, 2]
    assert rekognition.count("DetectLabels") == 3
