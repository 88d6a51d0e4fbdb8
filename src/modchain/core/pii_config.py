"""The PII filter's config and the custom recognizers it may carry (a pattern, context words, a validator)."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from modchain.core.config_base import StrictModel, short_validation_message
from modchain.core.filter_config import LabelledFilterConfig, unknown_labels_message, upper_case_labels
from modchain.core.labels import PII_LABELS

__all__ = ["PiiConfig", "PiiRecognizerConfig"]


class PiiRecognizerConfig(StrictModel):
    """A custom PII entity without code: a linear-time pattern, optional context words and validator.

    The local backend runs it next to its built-in recognizers (``backends/local/pii_custom.py``);
    remote backends do not see it. Example::

        {"label": "EMPLOYEE_ID", "pattern": "EMP-\\d{6}", "context": ["employee"], "validator": "luhn", "score": 0.9}
    """

    label: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,63}$", description="The label findings carry (upper case).")
    pattern: str = Field(
        min_length=1, max_length=2000,
        description="A Python regular expression that runs in linear time: bounded quantifiers ({m,n}, n <= 100), "
        "no backreferences or lookaround (modchain.core.pattern_safety). A group named 'value' is what the "
        "validator checks.",
    )
    context: tuple[str, ...] = Field(
        (), description="Words that make a match count (within 50 characters before, 20 after); empty: no context "
        "needed.",
    )
    validator: str | None = Field(
        None, description="luhn, verhoeff, damm (on the value's digits), mod97, iban, or stdnum:<module> "
        "(any python-stdnum module, e.g. stdnum:de.idnr).",
    )
    score: float = Field(0.85, ge=0.0, le=1.0, description="Score of a match with a context word (or no context set).")
    score_without_context: float = Field(
        0.4, ge=0.0, le=1.0, description="Score of a match without a context word, when context words are set."
    )
    ignore_case: bool = False

    @field_validator("label", mode="before")
    @classmethod
    def _upper_label(cls, label: Any) -> Any:
        return label.strip().upper() if isinstance(label, str) else label

    @field_validator("pattern")
    @classmethod
    def _linear_pattern(cls, pattern: str) -> str:
        from modchain.core.pattern_safety import check_linear_pattern

        check_linear_pattern(pattern)  # ValueError -> a validation error naming the field
        return pattern

    @field_validator("validator")
    @classmethod
    def _known_validator(cls, name: str | None) -> str | None:
        import importlib.util

        if name is None or name in ("luhn", "verhoeff", "damm", "mod97", "iban"):
            return name
        module = name.removeprefix("stdnum:")
        if (module == name or not re.fullmatch(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*){0,2}", module)
                or importlib.util.find_spec("stdnum") is None):
            raise ValueError(f"unknown validator {name!r}; use luhn, verhoeff, damm, mod97, iban or stdnum:<module>")
        try:
            found = importlib.util.find_spec(f"stdnum.{module}") is not None
        except ImportError:
            found = False
        if not found:
            raise ValueError(f"python-stdnum has no module {module!r}")
        return name


def _is_recognizer_object(item: Any) -> bool:
    return callable(getattr(item, "find", None)) and isinstance(getattr(item, "labels", None), (set, frozenset))


class PiiConfig(LabelledFilterConfig):
    """Personal data: detect, block, redact with a mask character, or anonymize reversibly."""

    type: Literal["pii"] = "pii"
    known_labels: ClassVar[frozenset[str]] = PII_LABELS
    label_kind: ClassVar[str] = "PII"
    labels: tuple[str, ...] = Field(
        (), description="PII types to act on (Comprehend names such as SSN, EMAIL, or a custom recognizer's "
        "label); empty means all."
    )
    recognizers: tuple[Any, ...] = Field(
        (), description="Custom recognizers for the local backend: PiiRecognizerConfig mappings, or Python objects "
        "with `labels` (a frozenset) and `find(text)` (see modchain.backends.local.pii_custom.PiiRecognizer).",
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _upper_labels(cls, labels: Any) -> tuple[str, ...]:
        # Upper-cased here; checked against PII_LABELS plus the custom recognizers' labels below.
        return upper_case_labels(labels)

    @field_validator("recognizers", mode="before")
    @classmethod
    def _recognizers(cls, items: Any) -> tuple[Any, ...]:
        if items is None:
            return ()
        if isinstance(items, (dict, str)) or not isinstance(items, (list, tuple)):
            raise ValueError("recognizers must be a list")
        out = []
        for i, item in enumerate(items):
            if isinstance(item, PiiRecognizerConfig) or _is_recognizer_object(item):
                out.append(item)
            elif isinstance(item, dict):
                try:
                    out.append(PiiRecognizerConfig.model_validate(item))
                except ValidationError as exc:
                    raise ValueError(short_validation_message(exc, f"recognizer {i}")) from None
            else:
                raise ValueError(f"recognizer {i}: expected a mapping or an object with labels and find(text), "
                                 f"not {type(item).__name__}")
        return tuple(out)

    @model_validator(mode="after")
    def _known_or_custom_labels(self) -> PiiConfig:
        custom = self.custom_labels
        unknown = sorted(set(self.labels) - PII_LABELS - custom)
        if unknown:  # reported on the labels field, as the other filters' unknown labels are
            from pydantic_core import InitErrorDetails, PydanticCustomError

            message = unknown_labels_message(self.label_kind, unknown, PII_LABELS | custom)
            raise ValidationError.from_exception_data(type(self).__name__, [InitErrorDetails(
                type=PydanticCustomError("value_error", message), loc=("labels",), input=self.labels)])
        return self

    @property
    def custom_labels(self) -> frozenset[str]:
        """Labels the custom recognizers add."""
        labels: set[str] = set()
        for item in self.recognizers:
            labels |= {item.label} if isinstance(item, PiiRecognizerConfig) else set(item.labels)
        return frozenset(labels)
    action: Literal["detect", "block", "redact", "anonymize"] = Field(
        "redact",
        description="detect: report only; block: raise a violation; redact: mask each character; "
        "anonymize: replace with reversible placeholders such as [EMAIL_1].",
    )
    mask_character: str = Field("*", min_length=1, max_length=1)
