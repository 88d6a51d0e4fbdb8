"""Typed errors for image inputs: moved to :mod:`modchain.core.errors` (one error tree), re-exported here."""

from modchain.core.errors import (
    CorruptImageError,
    DecompressionBombError,
    ImageInputError,
    ImageTooLargeError,
    UnsupportedImageFormatError,
)

__all__ = ["CorruptImageError", "DecompressionBombError", "ImageInputError", "ImageTooLargeError",
           "UnsupportedImageFormatError"]
