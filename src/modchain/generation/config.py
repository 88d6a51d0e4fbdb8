"""Configs of the prompt guard and of safe generation (pydantic, ``extra="forbid"``, loadable from YAML)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modchain.core.config import BackendConfig, PromptSafetyConfig, StrictModel, ToxicityConfig
from modchain.generation.denylist import DEFAULT_EXPLICIT_TERMS, DenyTerm

#: Negative prompts added to every generation: steer the model away from what output moderation rejects.
DEFAULT_NEGATIVE_PROMPTS: tuple[str, ...] = (
    "nsfw", "nudity", "naked", "nude", "sexual content", "explicit", "gore", "blood", "violence",
    "disturbing", "hate symbols", "watermark", "text",
)

#: Rekognition v7 top-level categories that make a generated image unsafe by default (swimwear, alcohol,
#: gambling, tobacco do not; name them in ``unsafe_categories`` to change that).
DEFAULT_UNSAFE_CATEGORIES: tuple[str, ...] = (
    "Explicit", "Non-Explicit Nudity of Intimate parts and Kissing", "Violence", "Visually Disturbing",
    "Hate Symbols",
)


class PromptGuardConfig(StrictModel):
    """The checks on an image prompt: a denylist first, then the text chain's classifiers."""

    action: Literal["reject", "warn"] = Field(
        "reject", description="reject: raise PromptRejectedViolation; warn: let the prompt through with warnings.")
    denylist: tuple[str | DenyTerm, ...] = Field(
        DEFAULT_EXPLICIT_TERMS, description="Listed terms (empty: no denylist); see Denylist for the syntax.")
    allowlist: tuple[str, ...] = Field((), description="Phrases whose denylist matches are ignored.")
    denylist_mode: Literal["word", "phrase"] = "word"
    toxicity: ToxicityConfig | None = Field(
        default_factory=ToxicityConfig, description="None: no toxicity check.")
    prompt_safety: PromptSafetyConfig | None = Field(
        default_factory=PromptSafetyConfig, description="None: no prompt-safety check.")
    backend: BackendConfig = Field(default_factory=BackendConfig, description="Backend of the text checks.")
    fail_open: bool = Field(False, description="On a backend error let the prompt through (with a warning).")
    stop_at_denylist: bool = Field(
        True, description="With action reject, skip the classifiers once the denylist matched.")


class BlurConfig(StrictModel):
    """How an unsafe image is obscured."""

    method: Literal["gaussian", "pixelate"] = "gaussian"
    region: Literal["image", "boxes"] = Field(
        "image", description="boxes: only the flagged boxes (the whole image when a finding has no box).")
    strength: float = Field(
        0.05, gt=0.0, le=1.0,
        description="Gaussian radius, or pixel block size, as a fraction of the image's longer side.")
    box_margin: float = Field(0.1, ge=0.0, le=1.0, description="Boxes grow by this fraction of their size.")


class SafeGenerationConfig(StrictModel):
    """What the safe generator does around the generator."""

    negative_prompts: tuple[str, ...] = Field(
        DEFAULT_NEGATIVE_PROMPTS, description="Added to every request's negative prompt (after the caller's).")
    unsafe_categories: tuple[str, ...] = Field(
        DEFAULT_UNSAFE_CATEGORIES, description="Labeler categories that make an image unsafe; empty: any label.")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="Minimum labeler score that counts.")
    max_retries: int = Field(2, ge=0, le=20, description="New-seed attempts after an unsafe image.")
    on_unsafe: Literal["blur", "withhold", "raise"] = Field(
        "blur", description="When every attempt was unsafe: return it blurred, return no image, or raise.")
    blur: BlurConfig = Field(default_factory=BlurConfig)
    seed: int | None = Field(None, ge=0, lt=2**32, description="First seed when the request names none; None: random.")
    fail_open: bool = Field(
        False, description="On a moderation backend error return the image unchecked (with a warning).")


__all__ = ["DEFAULT_NEGATIVE_PROMPTS", "DEFAULT_UNSAFE_CATEGORIES", "BlurConfig", "PromptGuardConfig",
           "SafeGenerationConfig"]
