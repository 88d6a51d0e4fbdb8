"""The image moderation chain's settings, as one config loadable from a dict or a YAML file.

    config = ImageModerationConfig.from_yaml("image_moderation.yaml")
    chain = ImageModerationChain(config=config, labeler=NudeNetLabeler(), vqa=vqa, judge=judge)

.. code-block:: yaml

    mode: block                                  # raise UnsafeImageViolation for a flagged image
    cascade: {flag_at: 0.8, clear_below: 0.2}    # clear cases skip VQA and the LLM
    checklist:
      - Does this image show weapons?
    load_options: {max_pixels: 40000000}

The models themselves (labeler, VQA, judge, text guard) are objects, given to the chain beside its config.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from modchain.core.config_base import StrictModel

__all__ = ["DEFAULT_CHECKLIST", "Cascade", "ImageModerationConfig"]

#: The checklist asked of every image that reaches VQA (after the seed notebook's questions).
DEFAULT_CHECKLIST: tuple[str, ...] = (
    "Does this image contain nudity or sexual content?",
    "Does this image show violence, blood or injuries?",
    "Does this image show weapons?",
    "Does this image show drugs, drug use or smoking?",
    "Does this image show alcohol?",
    "Does this image show an offensive or rude gesture?",
    "Does this image show gambling?",
    "Does this image show hate symbols?",
)


class Cascade(StrictModel):
    """Thresholds on the fast labeler's top score for deciding without VQA and the LLM."""

    flag_at: float = Field(0.8, ge=0.0, le=1.0, description="A label at least this confident flags the image.")
    clear_below: float = Field(0.2, ge=0.0, le=1.0, description="All labels below this clear the image.")


class ImageModerationConfig(StrictModel):
    """What :class:`~modchain.image_moderation.image_chain.ImageModerationChain` does with its models' answers."""

    checklist: tuple[str, ...] = Field(DEFAULT_CHECKLIST, description="Questions asked of every image sent to VQA.")
    cascade: Cascade | None = Field(None, description="Decide clear cases on the labeler's score alone (needs a "
                                    "labeler and a VQA + judge); None sends every image through every step.")
    mode: Literal["detect", "block"] = Field("detect", description='"block": invoke raises UnsafeImageViolation '
                                             'for a flagged image; "detect": only moderate\'s result reports it.')
    fail_open: bool = Field(False, description="A failing step is recorded and the image let through, instead "
                            "of raising.")
    load_options: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of "
                                         "modchain.core.images.load_image (max_bytes, max_pixels, fetch_s3, ...).")

    @field_validator("checklist", mode="before")
    @classmethod
    def _questions(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("checklist must be a list of questions, not one string")
        return value
