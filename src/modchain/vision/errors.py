"""Typed errors for image inputs, subclasses of :class:`modchain.core.errors.InputError`.

Messages name the kind of source, its size and format only; never image bytes, base64 text or pixels.
"""

from __future__ import annotations

from modchain.core.errors import InputError


class ImageInputError(InputError):
    """An image source that cannot be used: wrong type, missing file, undecodable, too large, ..."""


class CorruptImageError(ImageInputError):
    """The data claims to be an image of an allowed format but cannot be decoded (truncated, damaged)."""


class UnsupportedImageFormatError(ImageInputError):
    """Not an image, or an image format that is not allowed (allowed: JPEG, PNG, WebP, GIF, BMP, TIFF)."""


class ImageTooLargeError(ImageInputError):
    """The encoded image is larger than the configured ``max_bytes``."""


class DecompressionBombError(ImageTooLargeError):
    """The image declares more pixels than ``max_pixels`` (or Pillow's own limit): decoding could exhaust memory."""
