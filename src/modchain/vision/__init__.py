"""Image moderation components.

Kept light on purpose: importing :mod:`modchain.vision` pulls in no PIL, numpy, onnxruntime or boto3.
Import the submodules you need (``modchain.vision.image_input`` needs Pillow, the ``image`` extra).
"""

from modchain.vision.blip2 import Blip2VQA
from modchain.vision.config import ImageModerationConfig
from modchain.vision.errors import (
    CorruptImageError,
    DecompressionBombError,
    ImageInputError,
    ImageTooLargeError,
    UnsupportedImageFormatError,
)
from modchain.vision.image_chain import (
    DEFAULT_CHECKLIST,
    Cascade,
    ImageModerationChain,
    ImageModerationResult,
    UnsafeImageViolation,
)
from modchain.vision.policy import ImageEvidence, ModerationPolicy
from modchain.vision.results import REKOGNITION_TOP_LEVEL_CATEGORIES, ImageFinding
from modchain.vision.verdict import LlmVerdict, Verdict

__all__ = [
    "DEFAULT_CHECKLIST",
    "Blip2VQA",
    "ImageModerationConfig",
    "REKOGNITION_TOP_LEVEL_CATEGORIES",
    "Cascade",
    "ImageEvidence",
    "ImageModerationChain",
    "ImageModerationResult",
    "LlmVerdict",
    "ModerationPolicy",
    "UnsafeImageViolation",
    "Verdict",
    "CorruptImageError",
    "DecompressionBombError",
    "ImageFinding",
    "ImageInputError",
    "ImageTooLargeError",
    "UnsupportedImageFormatError",
]
