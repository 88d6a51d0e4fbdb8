"""PII from named-entity recognition models: any Hugging Face token-classification model, or spaCy.

Entity types are mapped to Comprehend's PII names (``PER`` -> ``NAME``, ``LOC`` / ``GPE`` / ``STREET`` ->
``ADDRESS``, ``DATE`` -> ``DATE_TIME``, ...); types with no PII meaning (``ORG``, ``MISC``) are dropped from
the findings and kept in the raw output. ``label_map`` adds or overrides mappings (``None`` drops a type).

Default model: ``dslim/bert-base-NER`` (MIT license; CoNLL-2003 English: PER, LOC, ORG, MISC). It is
downloaded from the Hugging Face Hub by ``transformers`` on first use, on the user's machine (set
``HF_HUB_OFFLINE=1`` and pass a local path to stay offline); this package ships no weights.

How long texts are read: the tokenizer cuts a text into windows of ``max_length`` tokens overlapping by
``stride`` tokens; each token takes its prediction from the window where it sits farthest from a cut (most
context on both sides), and entities are then assembled over the whole text's tokens, so an entity that
straddles a cut is found whole. Spans are the tokenizer's character offsets into the original text (end
exclusive), trimmed of surrounding whitespace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modchain.backends.base import Scored, TextBackend
from modchain.backends.hf.common import (
    LazyModel,
    PretrainedLoader,
    encode_windows,
    forward_accepts,
    normalize_label,
    run_windows,
    window_limits,
)
from modchain.core.config import PII_LABELS
from modchain.core.errors import BackendError, ConfigurationError
from modchain.core.results import Finding

#: MIT license; downloaded on first use by transformers (never by this package's tests).
DEFAULT_NER_MODEL = "dslim/bert-base-NER"
#: MIT license; install with ``python -m spacy download en_core_web_sm``.
DEFAULT_SPACY_PIPELINE = "en_core_web_sm"

_PII_TYPES: dict[str, tuple[str, ...]] = {
    "NAME": ("PER", "PERSON", "NAME", "FULLNAME", "FIRSTNAME", "LASTNAME", "MIDDLENAME", "GIVENNAME", "SURNAME",
             "NAMESTUDENT", "PATIENT", "PERSONNAME", "PREFIXNAME"),
    "ADDRESS": ("LOC", "LOCATION", "GPE", "FAC", "ADDRESS", "STREET", "STREETADDRESS", "STREETNAME",
                "SECONDARYADDRESS", "BUILDINGNUM", "BUILDINGNUMBER", "CITY", "STATE", "COUNTY", "COUNTRY",
                "ZIP", "ZIPCODE", "POSTCODE", "POSTALCODE", "NEARBYGPSCOORDINATE"),
    "DATE_TIME": ("DATE", "TIME", "DATETIME", "DOB", "DATEOFBIRTH", "BIRTHDATE"),
    "AGE": ("AGE",),
    "EMAIL": ("EMAIL", "EMAILADDRESS", "MAIL"),
    "PHONE": ("PHONE", "PHONENUM", "PHONENUMBER", "TELEPHONE", "TELEPHONENUM", "TELEPHONENUMBER", "TEL",
              "PHONEIMEI"),
    "SSN": ("SSN", "SOCIALNUM", "SOCIALSECURITYNUMBER", "USSSN"),
    "CREDIT_DEBIT_NUMBER": ("CREDITCARD", "CREDITCARDNUMBER", "CREDITCARDNUM", "CREDITDEBITNUMBER", "CARDNUMBER"),
    "CREDIT_DEBIT_CVV": ("CVV", "CREDITCARDCVV", "CREDITDEBITCVV"),
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER": ("IBAN",),
    "BANK_ACCOUNT_NUMBER": ("ACCOUNTNUM", "ACCOUNTNUMBER", "BANKACCOUNT", "BANKACCOUNTNUMBER"),
    "BANK_ROUTING": ("ROUTINGNUMBER", "BANKROUTING"),
    "SWIFT_CODE": ("BIC", "SWIFT", "SWIFTCODE"),
    "IP_ADDRESS": ("IP", "IPADDRESS", "IPV4", "IPV6"),
    "MAC_ADDRESS": ("MAC", "MACADDRESS"),
    "URL": ("URL", "URLPERSONAL"),
    "USERNAME": ("USERNAME", "IDUSERNAME", "USERHANDLE"),
    "PASSWORD": ("PASSWORD",),
    "PIN": ("PIN",),
    "DRIVER_ID": ("DRIVERLICENSE", "DRIVERLICENSENUM", "DRIVERLICENSENUMBER", "DRIVERID"),
    "PASSPORT_NUMBER": ("PASSPORT", "PASSPORTNUM", "PASSPORTNUMBER"),
    "VEHICLE_IDENTIFICATION_NUMBER": ("VIN", "VEHICLEVIN"),
    "LICENSE_PLATE": ("LICENSEPLATE", "VEHICLEVRM"),
}
#: Entity type (normalized: upper case, letters and digits) -> Comprehend PII label; None: not PII.
DEFAULT_NER_LABEL_MAP: dict[str, str | None] = {
    **{normalize_label(raw): label for label, raws in _PII_TYPES.items() for raw in raws},
    "ORG": None, "ORGANIZATION": None, "MISC": None, "NORP": None,
}

_AGGREGATIONS = ("simple", "first", "average", "max")
_TAG = re.compile(r"^([BIELSU])[-_](.+)$", re.IGNORECASE)


def _split_tag(label: str) -> tuple[str, str | None]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", None)``; a bare type counts as inside (``I``)."""
    match = _TAG.match(label)
    if match:
        return match.group(1).upper(), match.group(2)
    if label.upper() in ("O", "OUTSIDE"):
        return "O", None
    return "I", label


def build_label_map(label_map: Mapping[str, str | None] | None) -> dict[str, str | None]:
    """The default map with ``label_map`` on top; keys are entity types (``B-``/``I-`` prefixes ignored)."""
    merged = dict(DEFAULT_NER_LABEL_MAP)
    for raw, label in (label_map or {}).items():
        if label is not None:
            label = str(label).strip().upper()
            if label not in PII_LABELS:
                raise ConfigurationError(f"label_map maps {raw!r} to {label!r}, not a PII label; known: {sorted(PII_LABELS)}")
        entity_type = _split_tag(str(raw))[1] or str(raw)
        merged[normalize_label(entity_type)] = label
    return merged


@dataclass
class _Unit:
    """A token (simple) or a word (first / average / max) with its prediction."""

    start: int
    end: int
    probs: Any  # 1-D tensor over the model's labels


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class HuggingFaceNerBackend(PretrainedLoader, TextBackend):
    """PII via a Hugging Face token-classification model (id on the Hub or a local directory).

    Args:
        model: model id or path; used with ``AutoTokenizer`` / ``AutoModelForTokenClassification``.
        device: torch device (``cpu``, ``cuda``, ``cuda:1``, ``mps``); default cuda if available, else cpu.
        aggregation: how token predictions become entities, as in transformers' pipeline: ``simple`` (group
            consecutive tokens of one type; a ``B-`` tag starts a new entity), or word-level ``first``,
            ``average``, ``max`` (one label per word, so a name is never cut inside a word).
        label_map: entity type -> Comprehend PII label (or None to drop), on top of the defaults.
        batch_size: windows per forward pass.
        max_length: tokens per window, special tokens included (capped by the model's positions).
        stride: tokens shared by neighbouring windows; default a quarter of the window.
        revision: a Hub revision (commit hash) to pin the model to.
        model_obj, tokenizer_obj: already loaded objects to use instead of ``from_pretrained(model)``.
    """

    name = "hf-ner"

    def __init__(
        self,
        model: str = DEFAULT_NER_MODEL,
        *,
        device: Any = None,
        aggregation: str = "simple",
        label_map: Mapping[str, str | None] | None = None,
        batch_size: int = 16,
        max_length: int = 512,
        stride: int | None = None,
        revision: str | None = None,
        model_obj: Any = None,
        tokenizer_obj: Any = None,
    ) -> None:
        if aggregation not in _AGGREGATIONS:
            raise ConfigurationError(f"aggregation must be one of {_AGGREGATIONS}, not {aggregation!r}")
        if batch_size < 1 or max_length < 4:
            raise ConfigurationError("batch_size must be >= 1 and max_length >= 4")
        self.aggregation = aggregation
        self.batch_size = batch_size
        self._label_map = build_label_map(label_map)
        self._max_length = max_length
        self._stride = stride
        self._keep_loader(model, revision=revision, device=device, model_obj=model_obj,
                          tokenizer_obj=tokenizer_obj)

    @classmethod
    def from_config(cls, config: Any) -> HuggingFaceNerBackend:
        return cls(config.model_for(DEFAULT_NER_MODEL), device=config.device)

    # -- model ----------------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        model, tokenizer, torch_device = self._load_pretrained("AutoModelForTokenClassification", "ForTokenClassification")
        id2label = {int(i): str(label) for i, label in model.config.id2label.items()}
        tags = {i: _split_tag(label) for i, label in id2label.items()}
        types = {t for _, t in tags.values() if t is not None}
        mapped = {t: self._label_map.get(normalize_label(t)) for t in types}
        if types and not any(mapped.values()):
            raise ConfigurationError(
                f"none of model {self.model_id!r}'s entity types {sorted(types)} maps to a PII label; "
                "pass label_map={type: PII label}")
        max_length, stride = window_limits(tokenizer, model, self._max_length, self._stride)
        return {"model": model, "tokenizer": tokenizer, "device": torch_device, "tags": tags, "mapped": mapped,
                "max_length": max_length, "stride": stride, "accepts": forward_accepts(model)}

    @property
    def labels(self) -> dict[str, frozenset[str]]:  # type: ignore[override]
        """The PII labels this model can produce (loads the model)."""
        mapped = self._state.get()["mapped"]
        return {"pii": frozenset(label for label in mapped.values() if label)}

    # -- scoring --------------------------------------------------------------------------------------

    def _pii(self, texts: list[str], config: Any) -> list[Scored]:
        state = self._state.get()
        import torch

        windows = encode_windows(state["tokenizer"], texts, state["max_length"], state["stride"])
        logits = run_windows(state["model"], state["tokenizer"], windows, batch_size=self.batch_size,
                             device=state["device"], accepts=state["accepts"], backend=self.name,
                             post=lambda x: torch.softmax(x, dim=-1))
        # Per text: token index in the whole text -> (span, distance to the nearest window cut, probabilities,
        # word index). A token seen in two overlapping windows keeps the prediction with more context.
        tokens: list[dict[int, tuple[tuple[int, int], int, Any, Any]]] = [{} for _ in texts]
        for window, probs in zip(windows, logits):
            text = texts[window.sample]
            if len(probs) != len(window.offsets):
                raise BackendError(f"{self.name}: the model returned {len(probs)} token predictions for "
                                   f"{len(window.offsets)} tokens", backend=self.name)
            content = [p for p in range(len(window.offsets)) if not window.special[p]]
            last = len(content) - 1
            seen = tokens[window.sample]
            for j, p in enumerate(content):
                start, end = window.offsets[p]
                if end <= start or not text[start:end].strip():
                    continue
                centrality = min(j, last - j)
                key = window.first_token + j
                word = window.word_ids[p]
                if key not in seen or centrality > seen[key][1]:
                    seen[key] = ((start, end), centrality, probs[p], ("w", word) if word is not None else ("t", key))
        return [self._entities(text, found, state) for text, found in zip(texts, tokens)]

    def _units(self, found: dict[int, tuple[tuple[int, int], int, Any, Any]]) -> list[_Unit]:
        ordered = [found[key] for key in sorted(found)]
        if self.aggregation == "simple":
            return [_Unit(start, end, probs) for (start, end), _, probs, _ in ordered]
        words: list[list[tuple[int, int, Any]]] = []
        last_word: Any = object()
        for (start, end), _, probs, word in ordered:
            if word != last_word:
                words.append([])
                last_word = word
            words[-1].append((start, end, probs))
        units = []
        for pieces in words:
            if self.aggregation == "first":
                probs = pieces[0][2]
            elif self.aggregation == "average":
                probs = sum(p for _, _, p in pieces) / len(pieces)
            else:  # max: the label of the most confident token, with that confidence
                probs = max((p for _, _, p in pieces), key=lambda p: float(p.max()))
            units.append(_Unit(pieces[0][0], pieces[-1][1], probs))
        return units

    def _entities(self, text: str, found: dict[int, tuple[tuple[int, int], int, Any, Any]], state: dict[str, Any]) -> Scored:
        tags, mapped = state["tags"], state["mapped"]
        groups: list[dict[str, Any]] = []
        current: dict[str, Any] | None = None
        for unit in self._units(found):
            index = int(unit.probs.argmax())
            score = float(unit.probs[index])
            prefix, entity_type = tags.get(index, ("O", None))
            if entity_type is None:
                current = None
                continue
            if current is not None and current["type"] == entity_type and prefix in ("I", "E", "L") and not current["closed"]:
                current["end"] = unit.end
                current["scores"].append(score)
            else:
                current = {"type": entity_type, "start": unit.start, "end": unit.end, "scores": [score], "closed": False}
                groups.append(current)
            if prefix in ("E", "L", "S", "U"):
                current["closed"] = True
        findings, raw = [], []
        for group in groups:
            start, end = _trim(text, group["start"], group["end"])
            if start >= end:
                continue
            score = sum(group["scores"]) / len(group["scores"])
            label = mapped.get(group["type"])
            raw.append({"type": group["type"], "label": label, "score": round(score, 6), "start": start, "end": end})
            if label:
                findings.append(Finding(filter="pii", label=label, score=score, start=start, end=end,
                                        backend=self.name, explanation=f"{self.model_id}:{group['type']}"))
        return Scored(findings, raw={"model": self.model_id, "entities": raw})


class SpacyNerBackend(TextBackend):
    """PII via a spaCy pipeline's entity recognizer (``PERSON`` -> NAME, ``GPE``/``LOC``/``FAC`` -> ADDRESS,
    ``DATE``/``TIME`` -> DATE_TIME). spaCy gives no confidence, so findings score 1.0.

    Needs ``pip install spacy`` and the pipeline (``python -m spacy download en_core_web_sm``; MIT license).
    """

    name = "spacy-ner"

    def __init__(self, pipeline: str = DEFAULT_SPACY_PIPELINE, *, label_map: Mapping[str, str | None] | None = None,
                 batch_size: int = 64, nlp: Any = None) -> None:
        if nlp is None:
            try:
                import spacy  # noqa: F401
            except ImportError as exc:
                raise ConfigurationError(
                    f"SpacyNerBackend needs spaCy: pip install spacy && python -m spacy download {pipeline} ({exc})"
                ) from exc
        self.pipeline = pipeline
        self.batch_size = batch_size
        self._label_map = build_label_map(label_map)
        self._given_nlp = nlp
        self._nlp = LazyModel(self._load)

    @classmethod
    def from_config(cls, config: Any) -> SpacyNerBackend:
        return cls(config.model_for(DEFAULT_SPACY_PIPELINE))

    def _pickle_refusal(self) -> str | None:
        if self._given_nlp is None:
            return None
        return (f"SpacyNerBackend was given a loaded spaCy pipeline (nlp=), which it cannot rebuild in another "
                f"process; build it with the pipeline name ({self.pipeline!r}) instead, or build the guard "
                "inside the worker")

    def _load(self) -> Any:
        if self._given_nlp is not None:
            return self._given_nlp
        import spacy

        try:
            return spacy.load(self.pipeline)
        except OSError as exc:
            raise ConfigurationError(
                f"spaCy pipeline {self.pipeline!r} is not installed: python -m spacy download {self.pipeline} ({exc})"
            ) from exc

    def _pii(self, texts: list[str], config: Any) -> list[Scored]:
        out = []
        for doc in self._nlp.get().pipe(texts, batch_size=self.batch_size):
            findings, raw = [], []
            for ent in doc.ents:
                label = self._label_map.get(normalize_label(ent.label_))
                raw.append({"type": ent.label_, "label": label, "start": ent.start_char, "end": ent.end_char})
                if label:
                    findings.append(Finding(filter="pii", label=label, score=1.0, start=ent.start_char,
                                            end=ent.end_char, backend=self.name, explanation=f"spacy:{ent.label_}"))
            out.append(Scored(findings, raw={"pipeline": self.pipeline, "entities": raw}))
        return out
