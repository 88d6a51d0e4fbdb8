"""Amazon Rekognition DetectLabels as a managed detector of common objects (cars, people, license plates, ...).

Rekognition knows a fixed taxonomy of labels, not free text, so each query is matched to labels: by the
label's name, one of its aliases or one of its parents, compared case-insensitively with the query, the
query without a leading determiner ("all silver cars" -> "silver cars"), its plural made singular
("silver car"), and its head noun, the last word ("car"). A parent match ("vehicle") returns the boxes of
its children (Car, Bus, ...): Rekognition puts boxes only on the labels that have ``Instances``. Adjectives
are not checked (every car matches "silver cars"); chain a segmenter or an open-vocabulary detector for
attributes. With no queries, every instance is returned under its Rekognition label name.

Boxes come back as ratios of the image (``Left``, ``Top``, ``Width``, ``Height``) and become pixel corners
of the image as given. Images are sent as JPEG within the 5 MB request limit (re-encoded, downscaled if
needed: ratios do not change). SDK errors are mapped by :mod:`modchain.backends.aws.common`; the service's
image errors become :mod:`modchain.image_moderation.errors` input errors. boto3 is imported only when no client is given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from modchain.backends.aws.common import FanOut, call_aws, make_client
from modchain.backends.aws.rekognition_moderation import MAX_IMAGE_BYTES, encode_jpeg_within
from modchain.backends.detection import check_queries, clip_box
from modchain.core.errors import (
    BackendError,
    ConfigurationError,
    ImageInputError,
    ImageTooLargeError,
    InputError,
    UnsupportedImageFormatError,
)
from modchain.core.regions import Detection

BACKEND = "rekognition-labels"
_IMAGE_ERRORS: dict[str, type[ImageInputError]] = {
    "ImageTooLargeException": ImageTooLargeError,
    "InvalidImageFormatException": UnsupportedImageFormatError,
    "InvalidS3ObjectException": ImageInputError,
}
_DETERMINERS = {"a", "an", "the", "all", "any", "some", "every", "each", "my", "this", "that", "these", "those"}
_IRREGULAR = {"people": "person", "men": "man", "women": "woman", "children": "child", "persons": "person",
              "mice": "mouse", "geese": "goose", "teeth": "tooth", "feet": "foot"}


class RekognitionLabelDetector:
    """Rekognition DetectLabels as a :class:`~modchain.visual_chain.types.Detector`.

    ``min_confidence`` (0-100, the service's default 55) and ``max_labels`` go to the request; ``labels``
    (optional) keeps only detections whose label is one of them and is the default query list. Pass a boto3
    ``client`` (tests point one at :class:`~modchain.testing.rekognition_emulator.RekognitionEmulator`) or
    let it be made from ``region_name`` / ``profile_name`` / ``endpoint_url``.
    """

    name = BACKEND

    def __init__(self, client: Any = None, *, region_name: str | None = None, profile_name: str | None = None,
                 endpoint_url: str | None = None, min_confidence: float = 55.0, max_labels: int | None = None,
                 labels: Sequence[str] | None = None, timeout_s: float = 10.0, max_retries: int = 3,
                 max_concurrency: int = 16, max_image_bytes: int = MAX_IMAGE_BYTES) -> None:
        if not 0.0 <= min_confidence <= 100.0:
            raise ConfigurationError("min_confidence must be between 0 and 100")
        if max_labels is not None and max_labels < 0:
            raise ConfigurationError("max_labels must be >= 0")
        self.min_confidence = float(min_confidence)
        self.max_labels = max_labels
        self.labels = None if labels is None else check_queries(list(labels), BACKEND)
        self.max_image_bytes = int(max_image_bytes)
        self.client = client or make_client("rekognition", region_name=region_name, profile_name=profile_name,
                                            endpoint_url=endpoint_url, timeout_s=timeout_s,
                                            max_retries=max_retries, max_concurrency=max_concurrency)
        self._fanout = FanOut(max_concurrency)

    def detect(self, image: Any, queries: Sequence[str] = ()) -> list[Detection]:
        """Boxes of the labels matching ``queries`` (all labeled instances when none), best first."""
        from PIL import Image

        if not isinstance(image, Image.Image):
            raise InputError(f"{BACKEND}: expected a PIL image, got {type(image).__name__} "
                             "(use modchain.image_moderation.image_input.load_image for paths, bytes and arrays)")
        if not queries and self.labels:
            queries = self.labels
        wanted = check_queries(queries, BACKEND) if queries else []
        response = self.detect_raw(image)
        return self.to_detections(response, wanted, image.size)

    def detect_batch(self, images: Sequence[Any], queries: Sequence[str] = ()) -> list[list[Detection]]:
        """One request per image, sent concurrently; results in input order."""
        return self._fanout.map(lambda image: self.detect(image, queries), list(images))

    def detect_raw(self, image: Any) -> dict:
        """The raw DetectLabels response for a PIL ``image``."""
        params: dict[str, Any] = {"Image": {"Bytes": encode_jpeg_within(image, self.max_image_bytes)},
                                  "MinConfidence": self.min_confidence}
        if self.max_labels is not None:
            params["MaxLabels"] = int(self.max_labels)
        try:
            return call_aws(BACKEND, "DetectLabels", self.client.detect_labels, **params)
        except BackendError as exc:
            mapped = _IMAGE_ERRORS.get(getattr(exc, "aws_error_code", None) or "")
            if mapped is not None:
                raise mapped(f"rekognition rejected the image: {exc.aws_error_code}") from None  # type: ignore[attr-defined]
            raise

    def to_detections(self, response: Mapping[str, Any], queries: Sequence[str],
                      size: tuple[int, int]) -> list[Detection]:
        width, height = size
        labels = list(response.get("Labels") or [])
        children: dict[str, list[Mapping[str, Any]]] = {}
        for label in labels:
            for parent in label.get("Parents") or []:
                children.setdefault(_norm(str(parent.get("Name", ""))), []).append(label)
        detections: list[Detection] = []
        for query in queries or [None]:
            matched = labels if query is None else _matching(labels, children, query)
            for label in matched:
                for instance in label.get("Instances") or []:
                    box = _pixel_box(instance.get("BoundingBox") or {}, width, height)
                    if box is None:
                        continue
                    score = min(1.0, max(0.0, float(instance.get("Confidence", label.get("Confidence", 0.0))) / 100))
                    detections.append(Detection(label=query or str(label.get("Name")), score=score, box=box,
                                                backend=BACKEND))
        if self.labels is not None:
            allowed = {_norm(label) for label in self.labels}
            detections = [d for d in detections if _norm(d.label) in allowed]
        detections.sort(key=lambda d: -d.score)
        return detections


def query_keys(query: str) -> set[str]:
    """The forms of a query a label name may equal (see the module docstring)."""
    words = _norm(query).split()
    while len(words) > 1 and words[0] in _DETERMINERS:
        words = words[1:]
    keys = {" ".join(words)}
    if words:
        for last in _singulars(words[-1]):
            keys |= {" ".join(words[:-1] + [last]), last}
    return keys


def _matching(labels: list[Mapping[str, Any]], children: dict[str, list[Mapping[str, Any]]],
              query: str) -> list[Mapping[str, Any]]:
    keys = query_keys(query)
    found: dict[str, Mapping[str, Any]] = {}
    for label in labels:
        names = [label.get("Name", "")] + [a.get("Name", "") for a in label.get("Aliases") or []]
        if any(_norm(str(n)) in keys for n in names):
            found[str(label.get("Name"))] = label
            for child in children.get(_norm(str(label.get("Name"))), []):
                found[str(child.get("Name"))] = child
    return list(found.values())


def _pixel_box(box: Mapping[str, Any], width: int, height: int) -> tuple[float, float, float, float] | None:
    try:
        left, top = float(box["Left"]), float(box["Top"])
        w, h = float(box["Width"]), float(box["Height"])
    except (KeyError, TypeError, ValueError):
        return None
    return clip_box((left * width, top * height, (left + w) * width, (top + h) * height), width, height)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def _singulars(word: str) -> set[str]:
    """The word and its possible singular forms ("buses" -> bus/buse/buses; "houses" -> house/hous/houses):
    a label name equal to any of them matches, so the wrong guesses cost nothing."""
    if word in _IRREGULAR:
        return {word, _IRREGULAR[word]}
    forms = {word}
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        forms.add(word[:-1])
        if word.endswith("es"):
            forms.add(word[:-2])
        if word.endswith("ies"):
            forms.add(word[:-3] + "y")
    return forms
