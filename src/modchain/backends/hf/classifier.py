"""Toxicity or prompt safety from any Hugging Face text-classification model.

The model's labels are mapped to modchain's: for ``task="toxicity"`` to Comprehend's seven toxicity labels
(Jigsaw-style ``toxic``, ``severe_toxic`` -> HARASSMENT_OR_ABUSE, ``obscene`` -> PROFANITY, ``threat`` ->
VIOLENCE_OR_THREAT, ``insult`` -> INSULT, ``identity_hate`` -> HATE_SPEECH, ``sexual_explicit`` -> SEXUAL;
several model labels on one Comprehend label take the highest score); for ``task="prompt_safety"`` to one
``UNSAFE_PROMPT`` finding whose ``category`` is ``injection`` or ``jailbreak`` where the model says which
(Prompt Guard's ``BENIGN`` / ``INJECTION`` / ``JAILBREAK``, ProtectAI's ``SAFE`` / ``INJECTION``, ...).
Benign labels map to None. A model none of whose labels map is refused at load (pass ``label_map``).

Scores: sigmoid per label for multi-label models (``problem_type == "multi_label_classification"``, e.g.
toxic-bert), softmax otherwise; for prompt safety under softmax the unsafe score is the sum of the unsafe
labels' probabilities (1 - P(benign)). Texts longer than one window are cut into overlapping token windows
and each label keeps its highest score over the windows (a toxic sentence on page three still counts).

Default models used by the registry names (downloaded by transformers on first use, on the user's
machine; this package ships no weights):

* ``hf-toxicity``: ``unitary/toxic-bert`` (Apache-2.0; Jigsaw toxic comments, multi-label).
* ``hf-prompt-safety``: ``protectai/deberta-v3-base-prompt-injection-v2`` (Apache-2.0; SAFE / INJECTION).
  ``meta-llama/Prompt-Guard-86M`` (BENIGN / INJECTION / JAILBREAK) works too: it is gated on the Hub under
  the Llama 3.1 Community License, so it is not the default. Meta advises scoring user prompts on
  JAILBREAK only; ``label_map={"INJECTION": None}`` does that.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal

from modchain.backends.base import Scored, TextBackend
from modchain.backends.hf.common import (
    PretrainedLoader,
    encode_windows,
    forward_accepts,
    normalize_label,
    run_windows,
    window_limits,
)
from modchain.core.config import TOXICITY_LABELS
from modchain.core.errors import ConfigurationError
from modchain.core.results import Finding

#: Apache-2.0.
ENGLISH = frozenset({"en"})
DEFAULT_TOXICITY_MODEL = "unitary/toxic-bert"
#: Apache-2.0.
DEFAULT_PROMPT_SAFETY_MODEL = "protectai/deberta-v3-base-prompt-injection-v2"

Task = Literal["toxicity", "prompt_safety"]
_TASKS = ("toxicity", "prompt_safety")
_NAMES = {"toxicity": "hf-toxicity", "prompt_safety": "hf-prompt-safety"}
_TASK_BY_NAME = {name: task for task, name in _NAMES.items()}

_TOXICITY_TYPES: dict[str | None, tuple[str, ...]] = {
    "HARASSMENT_OR_ABUSE": ("toxic", "toxicity", "severe_toxic", "severe_toxicity", "harassment", "abuse",
                            "abusive", "offensive", "HR"),
    "PROFANITY": ("obscene", "profanity", "profane", "vulgar"),
    "VIOLENCE_OR_THREAT": ("threat", "threats", "violence", "violent", "V", "V2"),
    "INSULT": ("insult", "insults"),
    "HATE_SPEECH": ("identity_hate", "identity_attack", "hate", "hateful", "hate_speech", "H", "H2"),
    "SEXUAL": ("sexual_explicit", "sexual", "sexually_explicit", "S", "S3"),
    "GRAPHIC": ("graphic", "gore"),
    None: ("non_toxic", "nontoxic", "not_toxic", "neutral", "normal", "ok", "safe", "benign", "clean",
           "non_offensive", "not_offensive", "nothate", "not_hate", "noHate"),
}
#: Model label (normalized: upper case, letters and digits) -> Comprehend toxicity label; None: benign.
DEFAULT_TOXICITY_LABEL_MAP: dict[str, str | None] = {
    normalize_label(raw): label for label, raws in _TOXICITY_TYPES.items() for raw in raws
}

_PROMPT_TYPES: dict[str | None, tuple[str, ...]] = {
    "injection": ("injection", "prompt_injection", "indirect_injection"),
    "jailbreak": ("jailbreak", "jailbreaking"),
    "unsafe": ("unsafe", "malicious", "attack", "prompt_attack", "unsafe_prompt"),
    None: ("benign", "safe", "legit", "legitimate", "neutral", "ok", "normal", "clean"),
}
#: Model label (normalized) -> prompt-safety category (``injection``, ``jailbreak``, ``unsafe`` when the
#: model does not say which); None: benign.
DEFAULT_PROMPT_SAFETY_LABEL_MAP: dict[str, str | None] = {
    normalize_label(raw): kind for kind, raws in _PROMPT_TYPES.items() for raw in raws
}
_PROMPT_KINDS = frozenset({"injection", "jailbreak", "unsafe"})
_TOXICITY_NAMES = frozenset(TOXICITY_LABELS) | {"MISCONDUCT"}


def build_label_map(task: str, label_map: Mapping[str, str | None] | None) -> dict[str, str | None]:
    """The task's default map with ``label_map`` on top (keys: the model's labels, any case/punctuation)."""
    merged = dict(DEFAULT_TOXICITY_LABEL_MAP if task == "toxicity" else DEFAULT_PROMPT_SAFETY_LABEL_MAP)
    for raw, value in (label_map or {}).items():
        if value is not None:
            if task == "toxicity":
                value = str(value).strip().upper()
                if value not in _TOXICITY_NAMES:
                    raise ConfigurationError(
                        f"label_map maps {raw!r} to {value!r}, not a toxicity label; known: {sorted(_TOXICITY_NAMES)}")
            else:
                value = str(value).strip().lower()
                value = "unsafe" if value == "unsafe_prompt" else value
                if value not in _PROMPT_KINDS:
                    raise ConfigurationError(
                        f"label_map maps {raw!r} to {value!r}; prompt-safety values are injection, jailbreak, "
                        "unsafe (category unknown) or None (benign)")
        merged[normalize_label(raw)] = value
    return merged


def _languages(model: Any, task: str, languages: Collection[str] | None) -> frozenset[str] | None:
    if languages is not None:
        if isinstance(languages, str):  # ("en") is a str: one language, not the letters e and n
            languages = (languages,)
        codes = frozenset(str(code).strip().lower() for code in languages)
        if not codes or not all(len(code) == 2 and code.isalpha() for code in codes):
            raise ConfigurationError("languages must be ISO 639-1 codes such as 'en' (an empty list would route "
                                     "every text away from this backend)")
        return codes
    default = DEFAULT_TOXICITY_MODEL if task == "toxicity" else DEFAULT_PROMPT_SAFETY_MODEL
    return ENGLISH if model == default else None


class HuggingFaceClassifierBackend(PretrainedLoader, TextBackend):
    """Toxicity or prompt safety via a Hugging Face sequence-classification model (Hub id or local path).

    Args:
        model: model id or path; used with ``AutoTokenizer`` / ``AutoModelForSequenceClassification``.
        task: ``toxicity`` (findings on Comprehend's toxicity labels) or ``prompt_safety`` (UNSAFE_PROMPT).
        label_map: model label -> toxicity label (toxicity) or ``injection`` / ``jailbreak`` / ``unsafe``
            (prompt safety); None marks a benign label. On top of the defaults.
        device: torch device; default cuda if available, else cpu.
        batch_size: windows per forward pass.
        max_length: tokens per window, special tokens included (capped by the model's positions).
        multi_label: sigmoid per label (True) or softmax (False); default from the model's ``problem_type``.
        stride: tokens shared by neighbouring windows; default a quarter of the window.
        revision: a Hub revision (commit hash) to pin the model to.
        model_obj, tokenizer_obj: already loaded objects to use instead of ``from_pretrained(model)``.
        languages: the languages (ISO 639-1) the model scores well. A chain sends texts in other languages to
            its fallback (``BackendConfig.unsupported_language``: the offline ``local`` backend by default).
            Default: ``("en",)`` for the two default models, which were trained on English; None (any language,
            nothing routed away) for other models, whose languages the backend cannot know.

    The backend's ``name`` is ``hf-toxicity`` or ``hf-prompt-safety`` (its registry name), so a filter
    config can name it (``backend: hf-prompt-safety``).
    """

    name = "hf-classifier"  # per instance: hf-toxicity or hf-prompt-safety

    def __init__(
        self,
        model: str,
        *,
        task: Task = "toxicity",
        label_map: Mapping[str, str | None] | None = None,
        device: Any = None,
        batch_size: int = 16,
        max_length: int = 512,
        multi_label: bool | None = None,
        stride: int | None = None,
        revision: str | None = None,
        model_obj: Any = None,
        tokenizer_obj: Any = None,
        languages: Collection[str] | None = None,
    ) -> None:
        if task not in _TASKS:
            raise ConfigurationError(f"task must be one of {_TASKS}, not {task!r}")
        if batch_size < 1 or max_length < 4:
            raise ConfigurationError("batch_size must be >= 1 and max_length >= 4")
        self.task = task
        self.name = _NAMES[task]  # type: ignore[misc]
        self.batch_size = batch_size
        self._label_map = build_label_map(task, label_map)
        self._multi_label = multi_label
        self._max_length = max_length
        self._stride = stride
        self._languages = _languages(model, task, languages)
        self._keep_loader(model, revision=revision, device=device, model_obj=model_obj,
                          tokenizer_obj=tokenizer_obj)

    @classmethod
    def from_config(cls, config: Any) -> HuggingFaceClassifierBackend:
        task = _TASK_BY_NAME.get(config.name, "toxicity")
        default = DEFAULT_TOXICITY_MODEL if task == "toxicity" else DEFAULT_PROMPT_SAFETY_MODEL
        return cls(config.model_for(default), task=task, device=config.device)  # type: ignore[arg-type]

    def supports(self, filter_type: str) -> bool:
        return filter_type == self.task

    def supported_languages(self, filter_type: str) -> frozenset[str] | None:
        return self._languages if filter_type == self.task else None

    # -- model ----------------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        model, tokenizer, torch_device = self._load_pretrained("AutoModelForSequenceClassification", "ForSequenceClassification")
        id2label = {int(i): str(label) for i, label in model.config.id2label.items()}
        mapped = {i: self._label_map.get(normalize_label(label)) for i, label in id2label.items()}
        if not any(mapped.values()):
            raise ConfigurationError(
                f"none of model {self.model_id!r}'s labels {sorted(id2label.values())} maps to a "
                f"{self.task} label; pass label_map={{model label: ...}}")
        multi_label = self._multi_label
        if multi_label is None:
            # One logit means a sigmoid score (softmax over a single logit is always 1.0).
            multi_label = (getattr(model.config, "problem_type", None) == "multi_label_classification"
                           or len(id2label) == 1)
        max_length, stride = window_limits(tokenizer, model, self._max_length, self._stride)
        return {"model": model, "tokenizer": tokenizer, "device": torch_device, "id2label": id2label,
                "mapped": mapped, "multi_label": bool(multi_label), "max_length": max_length, "stride": stride,
                "accepts": forward_accepts(model)}

    @property
    def labels(self) -> dict[str, frozenset[str]]:  # type: ignore[override]
        """The toxicity labels this model can produce (loads the model); prompt safety has no labels."""
        if self.task != "toxicity":
            return {}
        return {"toxicity": frozenset(v for v in self._state.get()["mapped"].values() if v)}

    @property
    def multi_label(self) -> bool:
        return self._state.get()["multi_label"]

    # -- scoring --------------------------------------------------------------------------------------

    def _windows(self, texts: list[str]) -> tuple[dict[str, Any], list[list[tuple[Any, tuple[int, int]]]]]:
        """Per text: (probabilities, character span) of each of its windows."""
        import torch

        state = self._state.get()
        post = torch.sigmoid if state["multi_label"] else (lambda x: torch.softmax(x, dim=-1))
        windows = encode_windows(state["tokenizer"], texts, state["max_length"], state["stride"])
        probs = run_windows(state["model"], state["tokenizer"], windows, batch_size=self.batch_size,
                            device=state["device"], accepts=state["accepts"], backend=self.name, post=post)
        per_text: list[list[tuple[Any, tuple[int, int]]]] = [[] for _ in texts]
        for window, p in zip(windows, probs):
            spans = [o for o, s in zip(window.offsets, window.special) if not s and o[1] > o[0]]
            span = (spans[0][0], spans[-1][1]) if spans else (0, len(texts[window.sample]))
            per_text[window.sample].append((p, span))
        return state, per_text

    @staticmethod
    def _span(text: str, found: list[tuple[Any, tuple[int, int]]], best: int) -> tuple[int, int]:
        # One window: the whole text. Several: the window the score came from.
        return (0, len(text)) if len(found) == 1 else found[best][1]

    def _toxicity(self, texts: list[str], config: Any) -> list[Scored]:
        state, per_text = self._windows(texts)
        id2label, mapped = state["id2label"], state["mapped"]
        out = []
        for text, found in zip(texts, per_text):
            best: dict[str, tuple[float, int, int]] = {}  # label -> (score, label id, window)
            for w, (p, _) in enumerate(found):
                for i, label in mapped.items():
                    if label and (label not in best or float(p[i]) > best[label][0]):
                        best[label] = (float(p[i]), i, w)
            findings = []
            for label, (score, i, w) in best.items():
                start, end = self._span(text, found, w)
                findings.append(Finding(filter="toxicity", label=label, score=score, start=start, end=end,
                                        backend=self.name, explanation=f"{self.model_id}:{id2label[i]}"))
            raw = {"model": self.model_id, "multi_label": state["multi_label"], "windows": len(found),
                   "scores": {id2label[i]: round(max(float(p[i]) for p, _ in found), 6) for i in id2label}}
            out.append(Scored(findings, raw=raw))
        return out

    def _prompt_safety(self, texts: list[str], config: Any) -> list[Scored]:
        state, per_text = self._windows(texts)
        id2label, mapped = state["id2label"], state["mapped"]
        unsafe_ids = [i for i, kind in mapped.items() if kind]
        out = []
        for text, found in zip(texts, per_text):
            best_score, best_window, best_kind = -1.0, 0, None
            for w, (p, _) in enumerate(found):
                scores = [float(p[i]) for i in unsafe_ids]
                score = min(1.0, sum(scores)) if not state["multi_label"] else max(scores)
                if score > best_score:
                    top = unsafe_ids[max(range(len(scores)), key=scores.__getitem__)]
                    best_score, best_window, best_kind = score, w, mapped[top]
            start, end = self._span(text, found, best_window)
            category = best_kind if best_kind in ("injection", "jailbreak") else None
            finding = Finding(filter="prompt_safety", label="UNSAFE_PROMPT", score=max(0.0, best_score), start=start,
                              end=end, backend=self.name, category=category, explanation=self.model_id)
            raw = {"model": self.model_id, "multi_label": state["multi_label"], "windows": len(found),
                   "scores": {id2label[i]: round(max(float(p[i]) for p, _ in found), 6) for i in id2label}}
            out.append(Scored([finding], raw=raw))
        return out
