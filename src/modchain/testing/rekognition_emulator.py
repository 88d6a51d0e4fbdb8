"""A local Amazon Rekognition emulator (DetectModerationLabels) speaking the real wire protocol.

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

Labeler = Callable[[bytes], list[dict]]


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
    """Serves DetectModerationLabels over awsJson1_1."""

    ERROR_STATUS: ClassVar[dict[str, int]] = {
        "ThrottlingException": 400,
        "ProvisionedThroughputExceededException": 400,
        "InternalServerError": 500,
    }

    def __init__(self, latency_s: float = 0.0, labeler: Labeler | None = None,
                 objects: dict[tuple[str, str], bytes] | None = None):
        super().__init__(latency_s)
        self.labeler = labeler or red_explicit_labeler
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
        if call.operation != "DetectModerationLabels":
            raise ApiError("UnknownOperationException", f"unsupported operation {call.operation}")
        return self._detect_moderation_labels(call.params)

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
        data = self._image_bytes(params.get("Image"))
        if _image_kind(data) is None:
            raise ApiError("InvalidImageFormatException", "Request has unsupported image format")
        min_confidence = params.get("MinConfidence", 50.0)
        if not isinstance(min_confidence, (int, float)) or not 0 <= min_confidence <= 100:
            raise ApiError("InvalidParameterException", "MinConfidence must be between 0 and 100")
        try:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                im.verify()
        except ImportError:  # pragma: no cover - a custom labeler may not need Pillow
            pass
        except Exception:  # noqa: BLE001 - any decode failure is the service's format error
            raise ApiError("InvalidImageFormatException", "Request has unsupported image format") from None
        labels = [
            {"Name": str(lab["Name"]), "ParentName": str(lab.get("ParentName", "")),
             "Confidence": float(lab["Confidence"]), "TaxonomyLevel": int(lab.get("TaxonomyLevel", 1))}
            for lab in self.labeler(data)
            if float(lab["Confidence"]) >= float(min_confidence)
        ]
        return {"ModerationLabels": labels, "ModerationModelVersion": MODEL_VERSION, "ContentTypes": []}
