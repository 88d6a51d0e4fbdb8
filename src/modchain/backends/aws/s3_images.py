"""Fetch image bytes from Amazon S3 for :func:`modchain.image_moderation.image_input.load_image`.

boto3/botocore are imported lazily (through :mod:`modchain.backends.aws.common`). The object's size is
checked from ``ContentLength`` before its body is read, and at most ``max_bytes + 1`` bytes are read.
"""

from __future__ import annotations

from typing import Any

from modchain.backends.aws.common import call_aws, make_client
from modchain.core.errors import ImageTooLargeError


def fetch_s3_image(client: Any, bucket: str, key: str, *, max_bytes: int, version_id: str | None = None) -> bytes:
    """The bytes of ``s3://bucket/key``; :class:`ImageTooLargeError` if the object is over ``max_bytes``."""
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    response = call_aws("s3", "GetObject", client.get_object, **params)
    body = response["Body"]
    try:
        length = response.get("ContentLength")
        if length is not None and int(length) > max_bytes:
            raise ImageTooLargeError(f"s3://{bucket}/{key} is {int(length)} bytes, over the limit of {max_bytes} bytes")
        data = body.read(max_bytes + 1)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"s3://{bucket}/{key} is over the limit of {max_bytes} bytes")
    return data


class S3ImageFetcher:
    """A ``fetch_s3`` callable for ``load_image``: ``load_image(uri, fetch_s3=S3ImageFetcher(client))``.

    With no client, one is created from the usual boto3 configuration (region, profile, endpoint).
    """

    def __init__(self, client: Any = None, *, region_name: str | None = None, profile_name: str | None = None,
                 endpoint_url: str | None = None, timeout_s: float = 10.0, max_retries: int = 3) -> None:
        self.client = client or make_client("s3", region_name=region_name, profile_name=profile_name,
                                            endpoint_url=endpoint_url, timeout_s=timeout_s,
                                            max_retries=max_retries, max_concurrency=10)

    def __call__(self, bucket: str, key: str, *, max_bytes: int) -> bytes:
        return fetch_s3_image(self.client, bucket, key, max_bytes=max_bytes)
