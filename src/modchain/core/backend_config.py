"""Where a text chain's scoring happens: the backend's name and its settings (AWS, Bedrock, model, tier)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from modchain.core.config_base import BackendName, StrictModel, check_backend_name

__all__ = ["BackendConfig"]


class BackendConfig(StrictModel):
    """Where scoring happens. ``local`` needs no network, no AWS account and no model download."""

    name: BackendName = "local"
    region_name: str | None = None
    profile_name: str | None = None
    endpoint_url: str | None = Field(None, description="Override the AWS endpoint (VPC endpoints, tests).")
    language_code: str = Field(
        "en", description="The language assumed for a text whose language the detector cannot tell (\"und\"); "
        "Comprehend's LanguageCode for such texts.")
    unsupported_language: Literal["local", "block", "score"] = Field(
        "local",
        description="What a filter does with a text in a language its backend does not support (Comprehend: PII "
        "en/es, toxicity and prompt safety en; see docs/languages.md): local = score it on the offline local "
        "backend instead (findings and FilterResult.backend say local); block = fail closed with "
        "UnsupportedLanguageError; score = send it anyway, as if it were in language_code (the behaviour before "
        "language routing; Comprehend then reads it as that language).",
    )
    timeout_s: float = Field(10.0, gt=0)
    max_retries: int = Field(3, ge=0)
    max_concurrency: int = Field(64, ge=1, description="Concurrent requests to a remote service.")
    prompt_safety_endpoint_arn: str | None = Field(
        None, description="Comprehend prompt-safety classifier ARN; derived from the region when unset."
    )
    guardrail_id: str | None = Field(None, description="Bedrock guardrail identifier (bedrock backend).")
    guardrail_version: str = "DRAFT"
    guardrail_source: Literal["INPUT", "OUTPUT"] = Field(
        "INPUT", description="Bedrock: assess text as user input or as model output."
    )
    guardrail_tier: Literal["classic", "standard"] = Field(
        "classic", description="Bedrock: the safeguard tier of the guardrail's policies, which sets the languages "
        "it supports (classic: en, fr, es; standard: about 60, see docs/languages.md).",
    )
    model: str | dict[str, str] | None = Field(
        None,
        description="Model-backed backends (hf-ner, hf-toxicity, hf-prompt-safety, spacy-ner): a Hugging Face "
        "model id or local path (a spaCy pipeline for spacy-ner); unset means each backend's default model. "
        "A mapping {backend name: model} gives each backend its own model when filters use several "
        "(filters that name a backend are built from this same config).",
    )
    device: str | None = Field(
        None, description="Model-backed backends: torch device such as cpu, cuda, cuda:1, mps; unset: cuda if "
        "available. The local backend's cascade / accurate tiers: cpu or cuda; unset: cuda when onnxruntime's "
        "CUDA provider works, else cpu.",
    )
    tier: Literal["fast", "cascade", "accurate"] = Field(
        "cascade",
        description="local backend, toxicity and prompt safety: cascade (default) = the linear models decide what "
        "they are sure of and only uncertain texts go to the fine-tuned encoder (onnxruntime); fast = the "
        "pure-Python linear models alone (no onnxruntime needed); accurate = the encoder on every text. Findings' "
        "backend name says the tier (local, local:cascade, local:accurate). PII is the same on every tier.",
    )
    encoder_path: str | None = Field(
        None, description="local backend, cascade / accurate tiers: a directory with another encoder model; "
        "unset means the packaged one.",
    )

    @field_validator("name")
    @classmethod
    def _known_backend(cls, name: str) -> str | None:
        return check_backend_name(name)

    @field_validator("model")
    @classmethod
    def _known_model_keys(cls, model: str | dict[str, str] | None) -> str | dict[str, str] | None:
        if isinstance(model, dict):
            for name in model:
                check_backend_name(name)
        return model

    def model_for(self, default: str | None = None) -> str | None:
        """The model this config gives the backend it names (``model`` as a string, or its entry in the
        mapping), else ``default``."""
        if isinstance(self.model, dict):
            return self.model.get(self.name, default)
        return self.model or default
