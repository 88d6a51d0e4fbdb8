"""Image moderation components.

Kept light on purpose: importing :mod:`modchain.vision` pulls in no PIL, numpy, onnxruntime or boto3.
Import the submodules you need (``modchain.vision.image_input`` needs Pillow, the ``image`` extra).
"""

from modchain.vision.errors import (
    CorruptImageError,
    DecompressionBombError,
    ImageInputError,
    ImageTooLargeError,
    UnsupportedImageFormatError,
)
from modchain.vision.results import REKOGNITION_TOP_LEVEL_CATEGORIES, ImageFinding

__all__ = [
    "REKOGNITION_TOP_LEVEL_CATEGORIES",
    "CorruptImageError",
    "DecompressionBombError",
    "ImageFinding",
    "ImageInputError",
    "ImageTooLargeError",
    "UnsupportedImageFormatError",
]
