"""Configuration shared by every moderation component.

Configs say *what* the policy is (labels, thresholds, what to do on a hit); backends say *how* content is
scored. Both are pydantic v2 models with ``extra="forbid"`` so a typo in a YAML file is an error, not a
silently ignored setting. A chain's ``filters`` run in order and a type may repeat (block on SSN, then
redact NAME).

This module is the one to import from; the parts live in ``config_base`` (``StrictModel``), ``labels``,
``filter_config`` (toxicity, prompt safety), ``pii_config`` and ``backend_config``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from modchain.core.backend_config import BackendConfig
from modchain.core.config_base import BackendName, StrictModel, short_validation_message
from modchain.core.filter_config import FilterConfig, LabelledFilterConfig, PromptSafetyConfig, ToxicityConfig
from modchain.core.labels import COMPREHEND_PII_LABELS, EU_PII_LABELS, PII_LABELS, TOXICITY_LABELS
from modchain.core.pii_config import PiiConfig, PiiRecognizerConfig

__all__ = [
    "COMPREHEND_PII_LABELS", "EU_PII_LABELS", "PII_LABELS", "TOXICITY_LABELS", "AnyFilterConfig", "BackendConfig",
    "BackendName", "FilterConfig", "LabelledFilterConfig", "ModerationConfig", "PiiConfig", "PiiRecognizerConfig",
    "PromptSafetyConfig", "StrictModel", "ToxicityConfig", "short_validation_message",
]

AnyFilterConfig = Annotated[PiiConfig | ToxicityConfig | PromptSafetyConfig, Field(discriminator="type")]


def _default_filters() -> list[Any]:
    return [PiiConfig(), ToxicityConfig(), PromptSafetyConfig()]


class ModerationConfig(StrictModel):
    """A text moderation chain: ordered filters plus the backend they run on."""

    filters: list[AnyFilterConfig] = Field(default_factory=_default_filters)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    fail_open: bool = Field(False, description="Default for filters that do not set fail_open.")
