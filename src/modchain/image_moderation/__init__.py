"""Image moderation: fast labels (NudeNet, Rekognition) -> VQA evidence (BLIP-2) -> an LLM verdict.

Kept light on purpose: importing :mod:`modchain.image_moderation` pulls in no PIL, numpy, onnxruntime or boto3.
Import the submodules you need (``modchain.image_moderation.image_input`` needs Pillow, the ``image`` extra).
"""

from modchain.image_moderation.blip2 import Blip2VQA
from modchain.image_moderation.config import ImageModerationConfig
from modchain.image_moderation.errors import (
    CorruptImageError,
    DecompressionBombError,
    ImageInputError,
    ImageTooLargeError,
    UnsupportedImageFormatError,
)
from modchain.image_moderation.image_chain import (
    DEFAULT_CHECKLIST,
    Cascade,
    ImageModerationChain,
    ImageModerationResult,
    UnsafeImageViolation,
)
from modchain.image_moderation.policy import ImageEvidence, ModerationPolicy
from modchain.image_moderation.results import REKOGNITION_TOP_LEVEL_CATEGORIES, ImageFinding
from modchain.image_moderation.verdict import LlmVerdict, Verdict

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
