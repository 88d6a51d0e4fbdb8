"""One loader for every image source: moved to :mod:`modchain.core.images` (backends load images too).

Re-exported here so this path keeps working.
"""

from modchain.core.errors import (  # importable from here before the image errors moved to core.errors
    CorruptImageError,
    DecompressionBombError,
    ImageInputError,
    ImageTooLargeError,
    UnsupportedImageFormatError,
)
from modchain.core.images import (
    ALLOWED_FORMATS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    FetchS3,
    decode_image,
    is_s3_uri,
    load_image,
    load_image_bytes,
    parse_s3_uri,
    sniff_format,
)

__all__ = [
    "ALLOWED_FORMATS", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "CorruptImageError", "DecompressionBombError",
    "FetchS3", "ImageInputError", "ImageTooLargeError", "UnsupportedImageFormatError", "decode_image", "is_s3_uri",
    "load_image", "load_image_bytes", "parse_s3_uri", "sniff_format",
]
