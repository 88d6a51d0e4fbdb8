"""Amazon Rekognition DetectModerationLabels as an image labeler, mapped into :class:`ImageFinding`.

* ``s3://bucket/key`` sources go as ``Image={"S3Object": ...}``: Rekognition reads the object itself.
* Everything else goes as ``Image={"Bytes": ...}``. The service takes JPEG or PNG up to 5 MB, so a source
  that already is a JPEG/PNG under ``max_image_bytes`` is sent as it is (after the loader's checks); any
  other (WebP, GIF, an oversized PNG, a PIL image, a numpy array) is re-encoded as JPEG at decreasing
  quality, then downscaled, until it fits. A request over the limit is never sent.
* Each returned leaf label becomes one finding: ``label`` the top-level category of the v7 taxonomy,
  ``category`` the leaf's name, ``score`` Confidence/100, ``explanation`` the full path
  (``Explicit > Explicit Nudity > Exposed Female Nipple``). Rekognition reports no boxes: ``box`` is None.
* SDK errors are mapped by :mod:`modchain.backends.aws.common` (throttling -> ``BackendThrottledError``,
  ...); the service's image errors become :mod:`modchain.image_moderation.errors` input errors.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modchain.backends.aws.common import FanOut, call_aws, make_client
from modchain.core.errors import (
    BackendError,
    ConfigurationError,
    ImageInputError,
    ImageTooLargeError,
    UnsupportedImageFormatError,
)
from modchain.core.image_findings import REKOGNITION_TOP_LEVEL_CATEGORIES, ImageFinding

#: The documented limit is "5 MB"; 5,000,000 bytes is safe whether a MB is 10^6 or 2^20 bytes.
MAX_IMAGE_BYTES = 5_000_000
_JPEG_QUALITIES = (90, 80, 70, 60, 50, 40)
_DOWNSCALE = 0.75

#: Taxonomy v6 top-level names some models/versions still return, mapped to their v7 categories.
_LEGACY_TOP_LEVEL = {
    "Explicit Nudity": "Explicit",
    "Suggestive": "Non-Explicit Nudity of Intimate parts and Kissing",
    "Drugs": "Drugs & Tobacco",
    "Tobacco": "Drugs & Tobacco",
}

_IMAGE_ERRORS: dict[str, type[ImageInputError]] = {
    "ImageTooLargeException": ImageTooLargeError,
    "InvalidImageFormatException": UnsupportedImageFormatError,
    "InvalidS3ObjectException": ImageInputError,
}


class RekognitionModerationLabeler:
    """``labeler.label(image) -> list[ImageFinding]`` through Rekognition DetectModerationLabels."""

    name = "rekognition"

    def __init__(self, client: Any = None, *, region_name: str | None = None, profile_name: str | None = None,
                 endpoint_url: str | None = None, min_confidence: float = 50.0, timeout_s: float = 10.0,
                 max_retries: int = 3, max_concurrency: int = 16, max_image_bytes: int = MAX_IMAGE_BYTES,
                 load_options: Mapping[str, Any] | None = None) -> None:
        if not 0.0 <= min_confidence <= 100.0:
            raise ConfigurationError("min_confidence must be between 0 and 100")
        self.min_confidence = float(min_confidence)
        self.max_image_bytes = int(max_image_bytes)
        self.load_options = dict(load_options or {})
        self.client = client or make_client("rekognition", region_name=region_name, profile_name=profile_name,
                                            endpoint_url=endpoint_url, timeout_s=timeout_s,
                                            max_retries=max_retries, max_concurrency=max_concurrency)
        self._fanout = FanOut(max_concurrency)

    # -- public API -----------------------------------------------------------------------------------------
    def label(self, image: Any) -> list[ImageFinding]:
        return self.to_findings(self.detect(image))

    def label_batch(self, images: Sequence[Any]) -> list[list[ImageFinding]]:
        """One request per image, sent concurrently; results in input order."""
        return self._fanout.map(self.label, list(images))

    async def alabel_batch(self, images: Sequence[Any]) -> list[list[ImageFinding]]:
        return await self._fanout.amap(self.label, list(images))

    def detect(self, image: Any) -> dict:
        """The raw DetectModerationLabels response for ``image``."""
        params = {"Image": self.request_image(image), "MinConfidence": self.min_confidence}
        try:
            return call_aws(self.name, "DetectModerationLabels", self.client.detect_moderation_labels, **params)
        except BackendError as exc:
            mapped = _IMAGE_ERRORS.get(getattr(exc, "aws_error_code", None) or "")
            if mapped is not None:
                raise mapped(f"rekognition rejected the image: {exc.aws_error_code}") from None  # type: ignore[attr-defined]
            raise

    def request_image(self, image: Any) -> dict:
        """The ``Image`` parameter for ``image``: an S3Object reference, or JPEG/PNG bytes within the limit."""
        from modchain.core.images import (
            DEFAULT_MAX_BYTES,
            decode_image,
            is_s3_uri,
            load_image,
            load_image_bytes,
            parse_s3_uri,
            sniff_format,
        )

        if is_s3_uri(image):
            bucket, key = parse_s3_uri(image)
            return {"S3Object": {"Bucket": bucket, "Name": key}}
        options = {k: v for k, v in self.load_options.items() if k not in ("fetch_s3", "s3_client")}
        if isinstance(image, (bytes, bytearray, memoryview, str, os.PathLike)):
            data = load_image_bytes(Path(image) if isinstance(image, os.PathLike) else image,
                                    max_bytes=options.pop("max_bytes", DEFAULT_MAX_BYTES))
            pil = decode_image(data, **options)  # rejects corrupt data, bombs and disallowed formats
            if len(data) <= self.max_image_bytes and sniff_format(data) in ("JPEG", "PNG"):
                return {"Bytes": data}
        else:
            pil = load_image(image, **options)
        return {"Bytes": encode_jpeg_within(pil, self.max_image_bytes)}

    def to_findings(self, response: Mapping[str, Any]) -> list[ImageFinding]:
        labels = list(response.get("ModerationLabels") or [])
        parents = {str(lab.get("Name")): str(lab.get("ParentName") or "") for lab in labels}
        has_children = {str(lab.get("ParentName")) for lab in labels if lab.get("ParentName")}
        findings = []
        for lab in labels:
            name = str(lab.get("Name"))
            if name in has_children:
                continue  # a parent level: its leaf carries the full path
            path = [name]
            while parents.get(path[-1]) and len(path) < 8:
                path.append(parents[path[-1]])
            if parents.get(path[-1]) is None and lab.get("ParentName"):
                path.append(str(lab["ParentName"]))  # parent not returned: still name it
            path.reverse()
            top = _LEGACY_TOP_LEVEL.get(path[0], path[0])
            findings.append(ImageFinding(
                label=top, score=min(1.0, max(0.0, float(lab.get("Confidence", 0.0)) / 100.0)),
                backend=self.name, category=name if len(path) > 1 else None,
                explanation=" > ".join(path), box=None,
            ))
        findings.sort(key=lambda f: (-f.score, f.label, f.category or ""))
        return findings


def encode_jpeg_within(image: Any, max_bytes: int) -> bytes:
    """JPEG bytes of an RGB PIL ``image`` no larger than ``max_bytes``: lower quality first, then downscale."""
    current = image if image.mode == "RGB" else image.convert("RGB")
    for _ in range(20):
        for quality in _JPEG_QUALITIES:
            buffer = io.BytesIO()
            current.save(buffer, format="JPEG", quality=quality, optimize=True)
            if buffer.tell() <= max_bytes:
                return buffer.getvalue()
        width, height = current.size
        if width < 32 or height < 32:
            break
        current = current.resize((max(1, int(width * _DOWNSCALE)), max(1, int(height * _DOWNSCALE))))
    raise ImageTooLargeError(f"cannot encode the image within {max_bytes} bytes")


__all__ = ["MAX_IMAGE_BYTES", "REKOGNITION_TOP_LEVEL_CATEGORIES", "RekognitionModerationLabeler",
           "encode_jpeg_within"]
