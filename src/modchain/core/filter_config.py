"""The text filters' configs: the fields every filter has, user-selectable labels, toxicity and prompt safety.

The PII filter's config, with its custom recognizers, is in ``pii_config``; the chain's in ``config``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator

from modchain.core.config_base import BackendName, StrictModel, check_backend_name, short_validation_message
from modchain.core.errors import ConfigurationError
from modchain.core.labels import TOXICITY_LABELS

__all__ = ["FilterConfig", "LabelledFilterConfig", "PromptSafetyConfig", "ToxicityConfig", "unknown_labels_message",
           "upper_case_labels"]


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

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, name: str | None) -> str | None:
        return check_backend_name(name)


class LabelledFilterConfig(FilterConfig):
    """A filter whose findings carry labels a user can select. Unknown labels are errors: a typo would
    otherwise switch the filter off without a word."""

    labels: tuple[str, ...] = ()
    known_labels: ClassVar[frozenset[str]] = frozenset()
    label_kind: ClassVar[str] = ""

    @field_validator("labels", mode="before")
    @classmethod
    def _upper_labels(cls, labels: Any) -> tuple[str, ...]:
        normalized = upper_case_labels(labels)
        unknown = sorted(set(normalized) - cls.known_labels)
        if unknown:
            raise ValueError(unknown_labels_message(cls.label_kind, unknown, cls.known_labels))
        return normalized

    def __init__(self, /, **data: Any) -> None:
        # Direct construction (``PiiConfig(labels=["SNN"])``) raises the project's typed error with one short
        # line per problem, instead of pydantic's dump of the input, the known labels and a docs link.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigurationError(short_validation_message(exc, type(self).__name__)) from None


def upper_case_labels(labels: Any) -> tuple[str, ...]:
    """``labels`` (None, one name or a list) as a tuple of upper-case names: labels are compared with backend
    output, which always uses upper-case names."""
    if labels is None:
        return ()
    if isinstance(labels, str):
        labels = [labels]
    return tuple(str(label).strip().upper() for label in labels)


def unknown_labels_message(kind: str, unknown: list[str], known: frozenset[str]) -> str:
    """"unknown label 'SNN' (did you mean 'SSN'?)"; with no close name, the short toxicity list or
    where the long PII list lives, never a 36-name dump."""
    import difflib

    parts, guessed = [], True
    for label in unknown:
        close = difflib.get_close_matches(label, sorted(known), n=2, cutoff=0.6)
        guessed &= bool(close)
        parts.append(f"{label!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""))
    message = f"unknown label{'s' if len(unknown) > 1 else ''} {', '.join(parts)}"
    if not guessed:
        message += (f"; known {kind} labels: {', '.join(sorted(known))}" if len(known) <= 12
                    else f"; the {kind} labels are listed in modchain.core.config.{kind.upper()}_LABELS")
    return message



class ToxicityConfig(LabelledFilterConfig):
    """Toxic language, scored on Comprehend's seven labels."""

    type: Literal["toxicity"] = "toxicity"
    # MISCONDUCT: Bedrock Guardrails' content filter with no Comprehend equivalent.
    known_labels: ClassVar[frozenset[str]] = frozenset(TOXICITY_LABELS) | {"MISCONDUCT"}
    label_kind: ClassVar[str] = "toxicity"
    labels: tuple[str, ...] = Field((), description=f"Labels to act on, from {TOXICITY_LABELS}; empty means all.")
    action: Literal["detect", "block"] = "block"


class PromptSafetyConfig(FilterConfig):
    """Jailbreaks, prompt injection and unsafe intent (UNSAFE_PROMPT)."""

    type: Literal["prompt_safety"] = "prompt_safety"
    action: Literal["detect", "block"] = "block"
