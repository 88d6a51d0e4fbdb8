"""Configuration shared by every moderation component.

Configs say *what* the policy is (labels, thresholds, what to do on a hit); backends say *how* content is
scored. Both are pydantic v2 models with ``extra="forbid"`` so a typo in a YAML file is an error, not a
silently ignored setting. A chain's ``filters`` run in order and a type may repeat (block on SSN, then
redact NAME).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modchain.core.errors import ConfigurationError

BackendName = Literal["local", "comprehend", "bedrock"]

#: Amazon Comprehend's toxicity labels; every toxicity backend reports these names.
TOXICITY_LABELS: tuple[str, ...] = (
    "PROFANITY",
    "HATE_SPEECH",
    "INSULT",
    "GRAPHIC",
    "HARASSMENT_OR_ABUSE",
    "SEXUAL",
    "VIOLENCE_OR_THREAT",
)


class StrictModel(BaseModel):
    """Base for configs: unknown keys are errors and instances are immutable (safe to share)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FilterConfig(StrictModel):
    """Fields every text filter has."""

    threshold: float = Field(0.5, ge=0.0, le=1.0, description="Minimum score for a finding to count.")
    backend: BackendName | None = Field(
        None, description="Backend for this filter only; defaults to the chain's backend."
    )
    fail_open: bool | None = Field(
        None,
        description="On a backend error, let content through (True) or block it (False). "
        "Defaults to the chain's setting, which defaults to fail closed.",
    )


class LabelledFilterConfig(FilterConfig):
    """A filter whose findings carry labels a user can select."""

    labels: tuple[str, ...] = ()

    @field_validator("labels", mode="before")
    @classmethod
    def _upper_labels(cls, labels: Any) -> tuple[str, ...]:
        # Labels are compared with backend output, which always uses upper-case names.
        if isinstance(labels, str):
            labels = [labels]
        return tuple(str(label).strip().upper() for label in labels)


class PiiConfig(LabelledFilterConfig):
    """Personal data: detect, block, redact with a mask character, or anonymize reversibly."""

    type: Literal["pii"] = "pii"
    labels: tuple[str, ...] = Field(
        (), description="PII types to act on (Comprehend names such as SSN, EMAIL); empty means all."
    )
    action: Literal["detect", "block", "redact", "anonymize"] = Field(
        "redact",
        description="detect: report only; block: raise a violation; redact: mask each character; "
        "anonymize: replace with reversible placeholders such as [EMAIL_1].",
    )
    mask_character: str = Field("*", min_length=1, max_length=1)


class ToxicityConfig(LabelledFilterConfig):
    """Toxic language, scored on Comprehend's seven labels."""

    type: Literal["toxicity"] = "toxicity"
    labels: tuple[str, ...] = Field((), description=f"Labels to act on, from {TOXICITY_LABELS}; empty means all.")
    action: Literal["detect", "block"] = "block"


class PromptSafetyConfig(FilterConfig):
    """Jailbreaks, prompt injection and unsafe intent (UNSAFE_PROMPT)."""

    type: Literal["prompt_safety"] = "prompt_safety"
    action: Literal["detect", "block"] = "block"


AnyFilterConfig = Annotated[PiiConfig | ToxicityConfig | PromptSafetyConfig, Field(discriminator="type")]


class BackendConfig(StrictModel):
    """Where scoring happens. ``local`` needs no network, no AWS account and no model download."""

    name: BackendName = "local"
    region_name: str | None = None
    profile_name: str | None = None
    endpoint_url: str | None = Field(None, description="Override the AWS endpoint (VPC endpoints, tests).")
    language_code: str = "en"
    timeout_s: float = Field(10.0, gt=0)
    max_retries: int = Field(3, ge=0)
    max_concurrency: int = Field(64, ge=1, description="Concurrent requests to a remote service.")
    prompt_safety_endpoint_arn: str | None = Field(
        None, description="Comprehend prompt-safety classifier ARN; derived from the region when unset."
    )
    guardrail_id: str | None = Field(None, description="Bedrock guardrail identifier (bedrock backend).")
    guardrail_version: str = "DRAFT"


def _default_filters() -> list[Any]:
    return [PiiConfig(), ToxicityConfig(), PromptSafetyConfig()]


class ModerationConfig(StrictModel):
    """A text moderation chain: ordered filters plus the backend they run on."""

    filters: list[AnyFilterConfig] = Field(default_factory=_default_filters)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    fail_open: bool = Field(False, description="Default for filters that do not set fail_open.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModerationConfig:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigurationError(f"invalid moderation config: {exc}") from exc

    @classmethod
    def from_yaml(cls, path: str | Path) -> ModerationConfig:
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigurationError(f"config file {path} must hold a mapping at the top level")
        return cls.from_dict(data)
