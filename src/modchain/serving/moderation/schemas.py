"""Request and response bodies of the moderation service (pydantic; they are also its OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from modchain.core.results import ModerationResult
from modchain.serving.moderation.openai_mapping import CATEGORIES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImageUrl(_Strict):
    url: str = Field(description="A data:image/...;base64,... URI. Remote URLs are refused (no fetching).")


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: ImageUrl


Part = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ModerationsRequest(_Strict):
    """OpenAI's ``POST /v1/moderations`` body."""

    input: str | list[str] | list[Part] = Field(
        description="A string, a list of strings (one result each), or a list of text / image_url parts "
        "(one result for them all).")
    model: str | None = Field(None, description="Echoed back; a name given to a config with -c selects it.")


def _fields(kind: Any) -> dict[str, Any]:
    # Python names cannot hold "/" or "-": the JSON names are aliases (FastAPI serializes by alias).
    return {name.replace("/", "_").replace("-", "_"): (kind, Field(alias=name)) for name in CATEGORIES}


_cat_config = ConfigDict(populate_by_name=True, extra="forbid")
Categories = create_model("Categories", __config__=_cat_config, **_fields(bool))
CategoryScores = create_model("CategoryScores", __config__=_cat_config, **_fields(float))
AppliedInputTypes = create_model("CategoryAppliedInputTypes", __config__=_cat_config,
                                 **_fields(list[Literal["text", "image"]]))


class ModchainDetail(BaseModel):
    """Not part of OpenAI's schema (its SDK keeps unknown fields): the modchain labels behind the scores."""

    scores: dict[str, float]
    prompt_kind: str | None = None
    prompt_attack: bool = False
    image_labels: dict[str, float]


class OpenAIResult(BaseModel):
    flagged: bool
    categories: Categories  # type: ignore[valid-type]
    category_scores: CategoryScores  # type: ignore[valid-type]
    category_applied_input_types: AppliedInputTypes  # type: ignore[valid-type]
    modchain: ModchainDetail


class ModerationsResponse(BaseModel):
    id: str
    model: str
    results: list[OpenAIResult]


class ModerateRequest(_Strict):
    """``POST /v1/moderate``: modchain's own interface, the full chain of a named config."""

    input: str | list[str] = Field(description="A text, or a list of texts (one result each).")
    config: str = Field("default", description="Name of a config loaded at start-up (-c NAME=FILE).")
    unique_id: str | None = Field(None, max_length=256, description="Your user or session id (audit callbacks).")
    conversation_id: str | None = Field(
        None, max_length=256, description="Scope for reversible anonymization (configs with action: anonymize).")


class ModerateResponse(BaseModel):
    id: str
    config: str
    results: list[ModerationResult]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope, so its SDKs raise their typed errors (AuthenticationError, RateLimitError...)."""

    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"]
    version: str
