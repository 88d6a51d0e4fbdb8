"""Safe image generation: a prompt guard, negative prompts, output moderation, blur, retries.

Kept light: importing :mod:`modchain.generation` pulls in no torch, numpy, PIL or boto3. Generators
backed by diffusers or SageMaker live in :mod:`modchain.backends` and import their libraries lazily.
"""

from modchain.generation.blur import blur_image
from modchain.generation.config import (
    DEFAULT_NEGATIVE_PROMPTS,
    DEFAULT_UNSAFE_CATEGORIES,
    BlurConfig,
    PromptGuardConfig,
    SafeGenerationConfig,
)
from modchain.generation.denylist import DEFAULT_EXPLICIT_TERMS, Denylist, DenyMatch, DenyTerm
from modchain.generation.errors import (
    PromptRejected,
    PromptRejectedViolation,
    UnsafeGenerationError,
    UnsafeGenerationViolation,
)
from modchain.generation.generators import CallableGenerator, ImageGenerator, StableDiffusion, as_generator
from modchain.generation.image_moderators import ImageCheck, ImageModerator, as_image_moderator
from modchain.generation.prompt_guard import PromptGuard
from modchain.generation.results import GenerationAttempt, GenerationResult, PromptCheck
from modchain.generation.safe_generator import SafeImageGenerator

__all__ = [
    "DEFAULT_EXPLICIT_TERMS",
    "DEFAULT_NEGATIVE_PROMPTS",
    "DEFAULT_UNSAFE_CATEGORIES",
    "BlurConfig",
    "CallableGenerator",
    "DenyMatch",
    "DenyTerm",
    "Denylist",
    "GenerationAttempt",
    "GenerationResult",
    "ImageCheck",
    "ImageGenerator",
    "ImageModerator",
    "PromptCheck",
    "PromptGuard",
    "PromptGuardConfig",
    "PromptRejected",
    "PromptRejectedViolation",
    "SafeGenerationConfig",
    "SafeImageGenerator",
    "StableDiffusion",
    "UnsafeGenerationError",
    "UnsafeGenerationViolation",
    "as_generator",
    "blur_image",
    "as_image_moderator",
]
