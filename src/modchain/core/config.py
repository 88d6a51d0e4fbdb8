"""Configuration shared by every moderation component.

Configs say *what* the policy is (labels, thresholds, what to do on a hit); backends say *how* content is
scored. Both are pydantic v2 models with ``extra="forbid"`` so a typo in a YAML file is an error, not a
silently ignored setting. A chain's ``filters`` run in order and a type may repeat (block on SSN, then
redact NAME).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modchain.core.errors import ConfigurationError

#: A backend registered in :mod:`modchain.core.registry` (built in: local, comprehend, bedrock).
BackendName = str

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


#: Amazon Comprehend's PII entity types; every PII backend reports these names.
COMPREHEND_PII_LABELS: frozenset[str] = frozenset({
    "ADDRESS", "AGE", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "BANK_ACCOUNT_NUMBER", "BANK_ROUTING",
    "CA_HEALTH_NUMBER", "CA_SOCIAL_INSURANCE_NUMBER", "CREDIT_DEBIT_CVV", "CREDIT_DEBIT_EXPIRY",
    "CREDIT_DEBIT_NUMBER", "DATE_TIME", "DRIVER_ID", "EMAIL", "INTERNATIONAL_BANK_ACCOUNT_NUMBER", "IN_AADHAAR",
    "IN_NREGA", "IN_PERMANENT_ACCOUNT_NUMBER", "IN_VOTER_NUMBER", "IP_ADDRESS", "LICENSE_PLATE", "MAC_ADDRESS",
    "NAME", "PASSPORT_NUMBER", "PASSWORD", "PHONE", "PIN", "SSN", "SWIFT_CODE", "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    "UK_NATIONAL_INSURANCE_NUMBER", "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER", "URL", "USERNAME",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER", "VEHICLE_IDENTIFICATION_NUMBER",
})

#: EU national identifiers, which Comprehend does not detect: the local backend names them after Comprehend's
#: pattern, ``<ISO country>_<the identifier's English name>`` (see docs/international_pii.md).
EU_PII_LABELS: frozenset[str] = frozenset({
    "DE_TAX_IDENTIFICATION_NUMBER", "ES_NATIONAL_IDENTITY_NUMBER", "FR_SOCIAL_SECURITY_NUMBER", "IT_FISCAL_CODE",
    "NL_CITIZEN_SERVICE_NUMBER", "PL_NATIONAL_IDENTIFICATION_NUMBER", "SE_PERSONAL_IDENTITY_NUMBER",
})

#: Every PII label a filter may name. A PII filter's own ``recognizers`` may add more (see PiiConfig).
PII_LABELS: frozenset[str] = COMPREHEND_PII_LABELS | EU_PII_LABELS


def _check_backend_name(name: str | None) -> str | None:
    # Imported here: the registry imports this module.
    from modchain.core.registry import known_backends

    if name is not None and name not in known_backends():
        raise ValueError(f"unknown backend {name!r}; known: {sorted(known_backends())} (see register_backend)")
    return name


_M = TypeVar("_M", bound="StrictModel")


class StrictModel(BaseModel):
    """Base for configs: unknown keys are errors and instances are immutable (safe to share).

    ``from_dict`` / ``from_yaml`` turn validation and file errors into :class:`ConfigurationError`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def from_dict(cls: type[_M], data: dict[str, Any]) -> _M:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigurationError(short_validation_message(exc, cls.__name__)) from None

    @classmethod
    def from_yaml(cls: type[_M], path: str | Path) -> _M:
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigurationError(f"config file {path} must hold a mapping at the top level")
        return cls.from_dict(data)


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
        return _check_backend_name(name)


class LabelledFilterConfig(FilterConfig):
    """A filter whose findings carry labels a user can select. Unknown labels are errors: a typo would
    otherwise switch the filter off without a word."""

    labels: tuple[str, ...] = ()
    known_labels: ClassVar[frozenset[str]] = frozenset()
    label_kind: ClassVar[str] = ""

    @field_validator("labels", mode="before")
    @classmethod
    def _upper_labels(cls, labels: Any) -> tuple[str, ...]:
        normalized = _upper_case_labels(labels)
        unknown = sorted(set(normalized) - cls.known_labels)
        if unknown:
            raise ValueError(_unknown_labels_message(cls.label_kind, unknown, cls.known_labels))
        return normalized

    def __init__(self, /, **data: Any) -> None:
        # Direct construction (``PiiConfig(labels=["SNN"])``) raises the project's typed error with one short
        # line per problem, instead of pydantic's dump of the input, the known labels and a docs link.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigurationError(short_validation_message(exc, type(self).__name__)) from None


def _upper_case_labels(labels: Any) -> tuple[str, ...]:
    """``labels`` (None, one name or a list) as a tuple of upper-case names: labels are compared with backend
    output, which always uses upper-case names."""
    if labels is None:
        return ()
    if isinstance(labels, str):
        labels = [labels]
    return tuple(str(label).strip().upper() for label in labels)


def _unknown_labels_message(kind: str, unknown: list[str], known: frozenset[str]) -> str:
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


def short_validation_message(exc: ValidationError, model: str) -> str:
    """One ``field: problem`` line per error, without pydantic's input echo and documentation links."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "value"
        # A nested filter config already wrote its own short message: keep its text, not its "invalid X: ".
        message = re.sub(r"^invalid \w+: ", "", error["msg"].removeprefix("Value error, "))
        lines.append(f"{where}: {message}")
    return f"invalid {model}: " + "; ".join(lines)


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
        return _upper_case_labels(labels)

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

            message = _unknown_labels_message(self.label_kind, unknown, PII_LABELS | custom)
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
    guardrail_source: Literal["INPUT", "OUTPUT"] = Field(
        "INPUT", description="Bedrock: assess text as user input or as model output."
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
        "fast",
        description="local backend, toxicity and prompt safety: fast = the pure-Python linear models; accurate = "
        "the fine-tuned encoder (onnxruntime) on every text; cascade = the linear models decide what they are sure "
        "of and only uncertain texts go to the encoder. Findings' backend name says the tier (local, "
        "local:cascade, local:accurate). PII is the same on every tier.",
    )
    encoder_path: str | None = Field(
        None, description="local backend, cascade / accurate tiers: a directory with another encoder model; "
        "unset means the packaged one.",
    )

    @field_validator("name")
    @classmethod
    def _known_backend(cls, name: str) -> str | None:
        return _check_backend_name(name)

    @field_validator("model")
    @classmethod
    def _known_model_keys(cls, model: str | dict[str, str] | None) -> str | dict[str, str] | None:
        if isinstance(model, dict):
            for name in model:
                _check_backend_name(name)
        return model

    def model_for(self, default: str | None = None) -> str | None:
        """The model this config gives the backend it names (``model`` as a string, or its entry in the
        mapping), else ``default``."""
        if isinstance(self.model, dict):
            return self.model.get(self.name, default)
        return self.model or default


def _default_filters() -> list[Any]:
    return [PiiConfig(), ToxicityConfig(), PromptSafetyConfig()]


class ModerationConfig(StrictModel):
    """A text moderation chain: ordered filters plus the backend they run on."""

    filters: list[AnyFilterConfig] = Field(default_factory=_default_filters)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    fail_open: bool = Field(False, description="Default for filters that do not set fail_open.")
