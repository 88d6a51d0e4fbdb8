"""A local Amazon Rekognition emulator (DetectModerationLabels, DetectLabels) speaking the real wire protocol.

Protocol: botocore's model for Rekognition is awsJson1_1 only: ``POST /`` with
``X-Amz-Target: RekognitionService.<Op>``, JSON bodies, blobs (``Image.Bytes``) base64-encoded.

Enforced like the service:

* exactly one of ``Image.Bytes`` / ``Image.S3Object`` (``InvalidParameterException``);
* ``Bytes`` at most 5 MiB decoded (``ImageTooLargeException``), S3 objects at most 15 MiB;
* only JPEG and PNG (``InvalidImageFormatException``, also for undecodable data);
* S3 objects served from an in-memory dict (:meth:`RekognitionEmulator.put_object`); a missing one is
  ``InvalidS3ObjectException``;
* ``MinConfidence`` in [0, 100], default 50, filters the labels returned.

Labeling is pluggable: ``labeler(image_bytes) -> [{"Name", "ParentName", "Confidence", "TaxonomyLevel"}]``
(every level of the taxonomy path, as the service returns them). The default,
:func:`red_explicit_labeler`, is a **test stand-in, not a moderation model**: it reports ``Explicit >
Explicit Nudity > Exposed Female Nipple`` when the image is dominated by red (mean red > 180 and at least 80
above mean green and blue), nothing otherwise. It decodes with Pillow (imported lazily).

DetectLabels (objects with boxes) takes the same ``Image`` rules plus ``MaxLabels`` (>= 0; labels sorted by
confidence and cut), ``MinConfidence`` (default 55, as the service), ``Features`` (``GENERAL_LABELS``,
``IMAGE_PROPERTIES``) and ``Settings.GeneralLabels`` inclusion/exclusion filters (at most 100 names each).
The response has the service's shape: ``Labels[]`` with ``Name``, ``Confidence`` (0-100), ``Instances[]``
(``BoundingBox`` of ratios ``Left``/``Top``/``Width``/``Height``, ``Confidence``), ``Parents``, ``Aliases``,
``Categories``; and ``LabelModelVersion``. Detection is pluggable, ``object_detector(image_bytes) -> labels
in that shape``; the default, :func:`color_region_detector`, is again a **test stand-in**: every connected
region of a fixed "paint" color is one instance (silver (192,192,192) = Car, pure blue = Person, pure yellow
= License Plate), with the parent labels the service also returns (Vehicle, Transportation).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Callable
from typing import Any, ClassVar

from modchain.testing._http import ApiError, Call, EmulatorServer

TARGET_PREFIX = "RekognitionService"
MAX_BYTES = 5 * 1024 * 1024
MAX_S3_BYTES = 15 * 1024 * 1024
MODEL_VERSION = "7.0"
LABEL_MODEL_VERSION = "3.0"
DETECT_LABELS_FEATURES = ("GENERAL_LABELS", "IMAGE_PROPERTIES")
MAX_LABEL_FILTERS = 100

Labeler = Callable[[bytes], list[dict]]
ObjectDetector = Callable[[bytes], list[dict]]

#: The stand-in detector's paint colors: label -> (RGB, parents, aliases, categories).
PAINT_LABELS: dict[str, tuple[tuple[int, int, int], list[str], list[str], list[str]]] = {
    "Car": ((192, 192, 192), ["Vehicle", "Transportation"], ["Automobile"], ["Vehicles and Automotive"]),
    "Person": ((0, 0, 255), [], ["Human"], ["Person Description"]),
    "License Plate": ((255, 255, 0), ["Vehicle", "Transportation"], [], ["Vehicles and Automotive"]),
}
_PAINT_TOLERANCE = 24
_DETECT_SIDE = 128   # the stand-in looks at a thumbnail this size: fast, and boxes are ratios anyway
_MIN_REGION = 4      # thumbnail pixels


def color_region_detector(image: bytes) -> list[dict]:
    """Test stand-in (see the module docstring): one instance per connected region of a paint color."""
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(image)) as im:
        rgb = im.convert("RGB")
        rgb.thumbnail((_DETECT_SIDE, _DETECT_SIDE), Image.Resampling.NEAREST)
        pixels = np.asarray(rgb, dtype=np.int16)
    height, width = pixels.shape[:2]
    labels: list[dict] = []
    parents_seen: dict[str, float] = {}
    for name, (color, parents, aliases, categories) in PAINT_LABELS.items():
        mask = (np.abs(pixels - np.array(color, dtype=np.int16)) <= _PAINT_TOLERANCE).all(axis=-1)
        instances = []
        for y0, x0, y1, x1, count in _regions(mask):
            if count < _MIN_REGION:
                continue
            fill = count / ((y1 - y0) * (x1 - x0))
            instances.append({
                "BoundingBox": {"Width": (x1 - x0) / width, "Height": (y1 - y0) / height,
                                "Left": x0 / width, "Top": y0 / height},
                "Confidence": round(70.0 + 29.9 * fill, 3), "DominantColors": []})
        if not instances:
            continue
        confidence = max(i["Confidence"] for i in instances)
        labels.append({"Name": name, "Confidence": confidence, "Instances": instances,
                       "Parents": [{"Name": p} for p in parents], "Aliases": [{"Name": a} for a in aliases],
                       "Categories": [{"Name": c} for c in categories]})
        for parent in parents:
            parents_seen[parent] = max(parents_seen.get(parent, 0.0), confidence)
    for parent, confidence in parents_seen.items():  # the service lists ancestors as labels too, without boxes
        grand = ["Transportation"] if parent == "Vehicle" else []
        labels.append({"Name": parent, "Confidence": confidence, "Instances": [],
                       "Parents": [{"Name": g} for g in grand], "Aliases": [],
                       "Categories": [{"Name": "Vehicles and Automotive"}]})
    return labels


def _regions(mask: Any) -> list[tuple[int, int, int, int, int]]:
    """4-connected regions of a boolean array: (y0, x0, y1, x1) end-exclusive, pixel count."""
    height, width = mask.shape
    seen = [[False] * width for _ in range(height)]
    rows = mask.tolist()
    regions = []
    for sy in range(height):
        for sx in range(width):
            if not rows[sy][sx] or seen[sy][sx]:
                continue
            seen[sy][sx] = True
            stack = [(sy, sx)]
            y0, x0, y1, x1, count = sy, sx, sy, sx, 0
            while stack:
                y, x = stack.pop()
                count += 1
                y0, x0, y1, x1 = min(y0, y), min(x0, x), max(y1, y), max(x1, x)
                for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                    if 0 <= ny < height and 0 <= nx < width and rows[ny][nx] and not seen[ny][nx]:
                        seen[ny][nx] = True
                        stack.append((ny, nx))
            regions.append((y0, x0, y1 + 1, x1 + 1, count))
    return regions


def red_explicit_labeler(image: bytes) -> list[dict]:
    """Test stand-in (see the module docstring): "Explicit" labels for images dominated by red."""
    from PIL import Image, ImageStat

    with Image.open(io.BytesIO(image)) as im:
        rgb = im.convert("RGB")
        rgb.thumbnail((256, 256))
        red, green, blue = ImageStat.Stat(rgb).mean
    dominance = red - max(green, blue)
    if red <= 180 or dominance < 80:
        return []
    confidence = round(min(99.9, 60.0 + 40.0 * dominance / 255.0), 3)
    return [
        {"Name": "Explicit", "ParentName": "", "Confidence": confidence, "TaxonomyLevel": 1},
        {"Name": "Explicit Nudity", "ParentName": "Explicit", "Confidence": confidence, "TaxonomyLevel": 2},
        {"Name": "Exposed Female Nipple", "ParentName": "Explicit Nudity", "Confidence": round(confidence - 5, 3),
         "TaxonomyLevel": 3},
    ]


def _image_kind(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    return None


class RekognitionEmulator(EmulatorServer):
    """Serves DetectModerationLabels and DetectLabels over awsJson1_1."""

    ERROR_STATUS: ClassVar[dict[str, int]] = {
        "ThrottlingException": 400,
        "ProvisionedThroughputExceededException": 400,
        "InternalServerError": 500,
    }

    def __init__(self, latency_s: float = 0.0, labeler: Labeler | None = None,
                 objects: dict[tuple[str, str], bytes] | None = None,
                 object_detector: ObjectDetector | None = None):
        super().__init__(latency_s)
        self.labeler = labeler or red_explicit_labeler
        self.object_detector = object_detector or color_region_detector
        self.objects: dict[tuple[str, str], bytes] = dict(objects or {})

    def put_object(self, bucket: str, key: str, data: bytes) -> str:
        """Store an S3 object the emulator can read; returns its ``s3://`` URI."""
        self.objects[(bucket, key)] = bytes(data)
        return f"s3://{bucket}/{key}"

    # -- wire protocol -------------------------------------------------------------------------------------
    def _parse(self, method: str, path: str, headers: Any, body: bytes) -> Call:
        target = headers.get("X-Amz-Target", "")
        if method != "POST" or path.split("?", 1)[0] != "/" or not target.startswith(TARGET_PREFIX + "."):
            raise ApiError("UnknownOperationException", f"no Rekognition operation at {method} {path}", 404)
        try:
            params = json.loads(body or b"{}")
        except ValueError as exc:
            raise ApiError("SerializationException", f"invalid JSON body: {exc}") from None
        return Call(target.split(".", 1)[1], params, "json")

    def _render(self, call: Call, status: int, result: dict | None, error: ApiError | None) -> tuple[dict, bytes]:
        if error is not None:
            result = {"__type": error.code, "message": error.message, "Message": error.message, **error.extra}
        return {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(result).encode()

    # -- operations ----------------------------------------------------------------------------------------
    def _invoke(self, call: Call) -> dict:
        if call.operation == "DetectModerationLabels":
            return self._detect_moderation_labels(call.params)
        if call.operation == "DetectLabels":
            return self._detect_labels(call.params)
        raise ApiError("UnknownOperationException", f"unsupported operation {call.operation}")

    def _image_bytes(self, image: Any) -> bytes:
        if not isinstance(image, dict) or (("Bytes" in image) == ("S3Object" in image)):
            raise ApiError("InvalidParameterException", "Image must have exactly one of Bytes or S3Object")
        if "Bytes" in image:
            try:
                data = base64.b64decode(image["Bytes"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise ApiError("SerializationException", "Image.Bytes is not valid base64") from None
            if len(data) > MAX_BYTES:
                raise ApiError("ImageTooLargeException",
                               f"Image size is too large: {len(data)} bytes, limit {MAX_BYTES} bytes")
            return data
        s3 = image["S3Object"] or {}
        data = self.objects.get((s3.get("Bucket"), s3.get("Name")))
        if data is None:
            raise ApiError("InvalidS3ObjectException",
                           "Unable to get object metadata from S3. Check object key, region and/or access permissions.")
        if len(data) > MAX_S3_BYTES:
            raise ApiError("ImageTooLargeException", f"S3 object is too large: {len(data)} bytes")
        return data

    def _detect_moderation_labels(self, params: dict) -> dict:
        data = self._checked_image(params.get("Image"))
        min_confidence = _min_confidence(params, 50.0)
        labels = [
            {"Name": str(lab["Name"]), "ParentName": str(lab.get("ParentName", "")),
             "Confidence": float(lab["Confidence"]), "TaxonomyLevel": int(lab.get("TaxonomyLevel", 1))}
            for lab in self.labeler(data)
            if float(lab["Confidence"]) >= float(min_confidence)
        ]
        return {"ModerationLabels": labels, "ModerationModelVersion": MODEL_VERSION, "ContentTypes": []}

    def _detect_labels(self, params: dict) -> dict:
        data = self._checked_image(params.get("Image"))
        min_confidence = _min_confidence(params, 55.0)
        max_labels = params.get("MaxLabels")
        if max_labels is not None and (not isinstance(max_labels, int) or max_labels < 0):
            raise ApiError("InvalidParameterException", "MaxLabels must be an integer >= 0")
        features = params.get("Features") or ["GENERAL_LABELS"]
        if not isinstance(features, list) or len(features) > 2 or any(f not in DETECT_LABELS_FEATURES for f in features):
            raise ApiError("InvalidParameterException", f"Features must be a subset of {list(DETECT_LABELS_FEATURES)}")
        general = ((params.get("Settings") or {}).get("GeneralLabels")) or {}
        filters = {}
        for key in ("LabelInclusionFilters", "LabelExclusionFilters", "LabelCategoryInclusionFilters",
                    "LabelCategoryExclusionFilters"):
            names = general.get(key) or []
            if not isinstance(names, list) or len(names) > MAX_LABEL_FILTERS:
                raise ApiError("InvalidParameterException", f"{key} takes at most {MAX_LABEL_FILTERS} names")
            filters[key] = set(names)
        result: dict[str, Any] = {"LabelModelVersion": LABEL_MODEL_VERSION}
        if "GENERAL_LABELS" in features:
            labels = [lab for lab in self.object_detector(data) if float(lab["Confidence"]) >= float(min_confidence)
                      and _passes(lab, filters)]
            labels.sort(key=lambda lab: -float(lab["Confidence"]))
            result["Labels"] = labels if max_labels is None else labels[:max_labels]
        if "IMAGE_PROPERTIES" in features:
            result["ImageProperties"] = _image_properties(data)
        return result

    def _checked_image(self, image: Any) -> bytes:
        data = self._image_bytes(image)
        if _image_kind(data) is None:
            raise ApiError("InvalidImageFormatException", "Request has unsupported image format")
        try:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                im.verify()
        except ImportError:  # pragma: no cover - a custom labeler may not need Pillow
            pass
        except Exception:  # noqa: BLE001 - any decode failure is the service's format error
            raise ApiError("InvalidImageFormatException", "Request has unsupported image format") from None
        return data


def _min_confidence(params: dict, default: float) -> float:
    value = params.get("MinConfidence", default)
    if not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ApiError("InvalidParameterException", "MinConfidence must be between 0 and 100")
    return float(value)


def _passes(label: dict, filters: dict[str, set[str]]) -> bool:
    categories = {c.get("Name") for c in label.get("Categories") or []}
    name = label.get("Name")
    if filters["LabelInclusionFilters"] and name not in filters["LabelInclusionFilters"]:
        return False
    if name in filters["LabelExclusionFilters"]:
        return False
    if filters["LabelCategoryInclusionFilters"] and not categories & filters["LabelCategoryInclusionFilters"]:
        return False
    return not categories & filters["LabelCategoryExclusionFilters"]


def _image_properties(data: bytes) -> dict:
    """Brightness/contrast from the pixels (0-100); the service's sharpness and colors are not emulated."""
    from PIL import Image, ImageStat

    with Image.open(io.BytesIO(data)) as im:
        gray = im.convert("L")
        gray.thumbnail((_DETECT_SIDE, _DETECT_SIDE))
        stat = ImageStat.Stat(gray)
    quality = {"Brightness": round(stat.mean[0] / 2.55, 3), "Contrast": round(stat.stddev[0] / 1.275, 3),
               "Sharpness": 0.0}
    return {"Quality": quality, "DominantColors": []}
