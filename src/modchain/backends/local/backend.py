"""The offline default backend: no network, no model download, no torch.

PII: checksum- and rule-validated recognizers (``pii_recognizers``), the same on every tier. Toxicity and
prompt safety come in three tiers (``BackendConfig.tier``; ``cascade`` is the default, ``fast`` the one that runs
without onnxruntime):

* ``fast`` -- logistic models trained by ``training/train_text_classifiers.py`` and shipped in ``models/``
  (see its MODELS.md), evaluated in pure Python; a batch of texts is scored as one sparse matrix product per
  model when numpy is installed (the same scores, ``LinearTextModel.logits_batch``).
* ``accurate`` -- the fine-tuned multi-task encoder (``encoder.EncoderScorer``, ONNX on onnxruntime) on
  every text, one batch per filter call. Its overall ``toxic`` probability is spread over Comprehend's seven
  labels by the fast tier's lexicon attribution (``toxicity_lexicon.attribute``); prompt safety is its
  ``unsafe`` head, with the kind from the fast tier's attack patterns when they fire, else its kind heads.
* ``cascade`` (default) -- the fast models decide what they are sure of; only texts whose fast score falls inside
  ``CASCADE_BAND`` go to the encoder (one batch per filter call). It is the best tier on single texts on dev at
  the fast tier's latency (README, "Tiers").

The encoder loads on first use and is shared by every backend with the same model path and device; one
forward pass gives every head, so the toxicity and prompt-safety filters of one chain share it through a
small per-text cache. Findings name the tier: ``local``, ``local:accurate``, ``local:cascade``.
Measure them with ``modchain eval --tier ...`` and ``benchmarks/tiers.py``.

Languages (``multilingual_route``): English and undetermined texts take the path above. Chinese texts are also
scored by ``toxicity_zh``, and prompts in other languages by ``prompt_injection_multi`` with the English attack
patterns (on every tier: the encoder is English-only, so on the encoder tiers other languages' toxicity is the fast
tier's too); such findings name the model in ``explanation``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from modchain.backends.base import Scored, TextBackend
from modchain.backends.local.linear_model import load_model
from modchain.backends.local.multilingual_route import by_language, prompt_safety_routed, toxicity_routed
from modchain.backends.local.normalize import without_redactions
from modchain.backends.local.pii_recognizers import SUPPORTED_PII_LABELS, find_pii
from modchain.backends.local.prompt_safety_heuristics import (
    pattern_score,
    score_prompt_safety,
    score_prompt_safety_batch,
)
from modchain.backends.local.toxicity_lexicon import (
    TOXICITY_LABELS,
    attribute,
    score_toxicity,
    score_toxicity_batch,
)
from modchain.core.errors import ConfigurationError
from modchain.core.results import Finding

TIERS: tuple[str, ...] = ("fast", "cascade", "accurate")
#: Cascade: a fast-tier score inside this closed interval is uncertain and goes to the encoder; outside
#: it the fast verdict stands. Wider costs more encoder calls and brings the cascade closer to ``accurate``.
CASCADE_BAND: tuple[float, float] = (0.2, 0.8)
#: Cascade, toxicity: a text the fast model flagged stays flagged when the encoder finds one of its sentences this
#: toxic (``toxic_sentence``), even if the encoder's whole-text score is low. Both models then see the insult;
#: only the encoder's pooled view of the whole text lets the ordinary sentences around it drown it. It is what
#: lets the cascade stop an insult split across a stream's chunks (tests/test_streaming.py). Chosen on dev
#: (benchmarks/tiers.py, in context) from 0.5, 0.8, 0.9 and 0.95: 67 -> 73 of 173 toxic rows caught in context,
#: 7 more of 3,679 benign dev rows flagged.
AGREEING_SENTENCE = 0.9
_KIND_HEADS = ("jailbreak", "injection")
_CACHE_SIZE = 512  # encoder outputs kept per backend: the prompt-safety filter reuses the toxicity pass
_CACHE_MAX_LEN = 2000  # longer texts are not cached (rare, and each would pin a large key)
_FINDINGS_CACHE = 4096  # distinct whole-text findings kept for reuse (they hold scores and lengths, no text)

# (model path, device) -> loaded scorer, shared by every backend instance (a chain may build several).
_SCORERS: dict[tuple[str | None, str | None], Any] = {}
_SCORERS_LOCK = threading.Lock()


def _load_scorer(path: str | None, device: str | None) -> Any:
    key = (path, device)
    with _SCORERS_LOCK:
        scorer = _SCORERS.get(key)
        if scorer is None:
            from modchain.backends.local.encoder import EncoderScorer

            try:
                if device is None:
                    scorer = _load_auto(EncoderScorer, path)
                else:
                    scorer = EncoderScorer.load(path, device=device)
            # a model folder that lacks a file, a runtime that went away, a device that cannot run it
            except (OSError, ImportError, RuntimeError, ValueError) as exc:
                raise ConfigurationError(f"cannot load the local backend's encoder: {exc}") from exc
            _SCORERS[key] = scorer
        return scorer


def _load_auto(scorer_class: Any, path: str | None) -> Any:
    """No device given: CUDA when onnxruntime has a working CUDA provider (onnxruntime-gpu on a GPU machine),
    else the CPU. onnxruntime-gpu lists its CUDA provider on machines without a GPU too, hence the fallback."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        try:
            return scorer_class.load(path, device="cuda")
        except RuntimeError:
            pass
    return scorer_class.load(path, device="cpu")


def _check_encoder(tier: str, path: str | None) -> None:
    """Fail at configuration time, with the fix, when a tier needs an encoder that cannot run here."""
    import importlib.util
    from pathlib import Path

    try:
        from modchain.backends.local.encoder import encoder_available
    except ImportError as exc:  # the module itself is missing (or one of its light imports)
        why, fix = f"the encoder module cannot be imported ({type(exc).__name__})", "reinstall modchain"
    else:
        why = fix = ""
        if any(importlib.util.find_spec(name) is None for name in ("onnxruntime", "tokenizers")):
            # dependencies of modchain, but an install with --no-deps or a platform without onnxruntime wheels
            # lacks them
            why, fix = "onnxruntime or tokenizers is not installed", "pip install onnxruntime tokenizers"
        elif path is None and not encoder_available():
            why, fix = ("this installation has no packaged encoder model",
                        "set encoder_path to a model folder (training/train_encoder.py writes one)")
        elif path is not None and not Path(path).exists():
            why, fix = (f"encoder_path {path!r} does not exist",
                        "point it at a folder with model.onnx, tokenizer.json and encoder.json")
    if why:
        raise ConfigurationError(
            f"the local backend's {tier!r} tier needs the offline encoder, but {why}: {fix}, or use tier 'fast'")


class LocalBackend(TextBackend):
    name = "local"  # the registry name; instances report their tier (``local:cascade``), see __init__
    labels = {"pii": frozenset(SUPPORTED_PII_LABELS), "toxicity": frozenset(TOXICITY_LABELS)}
    #: Runs a PII filter's custom ``recognizers`` (other backends cannot: the chain refuses such a filter on them).
    runs_custom_recognizers = True
    #: Per process when pickled: caches start empty, and an encoder this backend loaded is loaded again there
    #: (one given to it travels as it is, and must pickle itself).
    _PER_PROCESS = {"_cache": OrderedDict, "_cache_lock": threading.Lock, "_findings": dict}

    def __init__(self, tier: str = "cascade", *, encoder_path: str | None = None, device: str | None = None,
                 encoder: Any = None) -> None:
        """``encoder``: an object with ``score_batch(texts, *, sentences=False) -> list[dict]`` to use instead of
        loading ``encoder.EncoderScorer`` (a preloaded or custom scorer; the cascade passes ``sentences=True``);
        the encoder is otherwise loaded on first use."""
        if tier not in TIERS:
            raise ConfigurationError(f"unknown tier {tier!r}; known: {', '.join(TIERS)}")
        if tier != "fast" and encoder is None:
            _check_encoder(tier, encoder_path)
        self.tier = tier
        self.name = "local" if tier == "fast" else f"local:{tier}"
        self._encoder = encoder
        self._given_encoder = encoder is not None
        self._encoder_path, self._device = encoder_path, device
        self._cache: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._findings: dict[tuple[Any, ...], Finding] = {}  # see _finding

    def length_slope(self, filter_type: str) -> float | None:
        """The fast tier's model file's slope (fitted by the trainer on long benign texts); None on the other
        tiers, whose encoder windows are cut differently, and for PII, which has no score to calibrate."""
        if self.tier != "fast" or filter_type not in ("toxicity", "prompt_safety"):
            return None
        return load_model(filter_type).length_slope  # the fast tier's model files are named after their filter

    # -- PII: the same recognizers on every tier ------------------------------------------------------

    def _pii(self, texts: list[str], config: Any) -> list[Scored]:
        labels = config.labels or None
        recognizers = getattr(config, "recognizers", ())  # a PII filter's custom recognizers (pii_custom)
        return [
            Scored([Finding(filter="pii", label=m.label, score=m.score, start=m.start, end=m.end,
                            backend=self.name, explanation=m.recognizer)
                    for m in find_pii(text, labels, recognizers)])
            for text in texts
        ]

    # -- toxicity ------------------------------------------------------------------------------------

    def _toxicity(self, texts: list[str], config: Any) -> list[Scored]:
        def english(part: list[str]) -> list[dict[str, float]]:
            return self._tiered(part, score_toxicity, lambda s: max(s.values()), _toxicity_verdict,
                                score_toxicity_batch)

        # the encoder is English-only: on its tiers, texts in other languages keep the fast tier's scores (it read a
        # German jailbreak as 0.76 toxic), as prompt safety routes them to its multilingual model
        scores = (english(texts) if self.tier == "fast"
                  else by_language(texts, lambda part, _: english(part), lambda part, _: score_toxicity_batch(part)))
        finding = self._finding
        # Chinese texts also go to toxicity_zh (multilingual_route); the rest keep the English scores as they are
        return [Scored([finding("toxicity", label, score, len(text), None, note) for label, score in labelled.items()],
                       raw=labelled) for text, (labelled, note) in zip(texts, toxicity_routed(texts, scores))]

    # -- prompt safety -------------------------------------------------------------------------------

    def _prompt_safety(self, texts: list[str], config: Any) -> list[Scored]:
        def english(part: list[str]) -> list[tuple[float, str | None]]:
            return self._tiered(part, score_prompt_safety, lambda v: v[0], _prompt_verdict, score_prompt_safety_batch)

        # English and undetermined texts take the tier's English path; other languages prompt_injection_multi
        # (multilingual_route: the English model reads unknown words as injection)
        verdicts = prompt_safety_routed(texts, english)
        finding = self._finding
        return [Scored([finding("prompt_safety", "UNSAFE_PROMPT", score, len(text), kind, note)],
                       raw={"UNSAFE_PROMPT": score, "kind": kind}) for text, (score, kind, note) in zip(texts, verdicts)]

    def _finding(self, kind: str, label: str, score: float, end: int, category: str | None = None,
                 explanation: str = "") -> Finding:
        """A whole-text finding. Findings are frozen, and a batch repeats the same few (most labels of most
        messages score 0.0), so equal ones are shared from a small cache instead of built and validated anew.
        ``explanation`` names a language-specific model that decided (empty for English texts)."""
        key = (kind, label, score, end, category, explanation)
        found = self._findings.get(key)
        if found is None:
            found = Finding(filter=kind, label=label, score=score, start=0, end=end, backend=self.name,
                            category=category, explanation=explanation)
            if len(self._findings) >= _FINDINGS_CACHE:
                self._findings.clear()
            self._findings[key] = found
        return found

    # -- tiers ---------------------------------------------------------------------------------------

    def _tiered(self, texts: list[str], fast: Callable[[str], Any], fast_score: Callable[[Any], float],
                from_heads: Callable[[str, dict[str, float], float | None], Any],
                fast_batch: Callable[[list[str]], list[Any]]) -> list[Any]:
        """One verdict per text: ``fast_batch(texts)`` (== ``[fast(t) for t in texts]``, vectorized) on the fast
        tier, ``fast(text)`` for the cascade's sure texts, else ``from_heads(text, encoder heads, the fast
        score or None)`` (None on ``accurate``); the encoder sees every text that needs it in one batch."""
        if self.tier == "fast":
            return fast_batch(texts)
        verdicts: list[Any] = [None] * len(texts)
        pending: dict[int, float | None] = {}  # text index -> its fast score (cascade) or None (accurate)
        low, high = CASCADE_BAND
        for i, text in enumerate(texts):
            if not text or text.isspace():
                verdicts[i] = fast(text)  # nothing to judge: the fast tier's all-zero verdict, no encoder call
            elif self.tier == "cascade":
                verdict = fast(text)
                score = fast_score(verdict)
                if low <= score <= high:
                    pending[i] = score
                else:
                    verdicts[i] = verdict
            else:
                pending[i] = None
        if pending:
            # the encoder reads what the fast scorers read: redaction runs are not content on any tier
            readable = {i: without_redactions(texts[i]) for i in pending}
            heads = self._encode([readable[i] for i in pending])
            for (i, fast_said), h in zip(pending.items(), heads):
                verdicts[i] = from_heads(readable[i], h, fast_said)
        return verdicts

    def _encode(self, texts: list[str]) -> list[dict[str, float]]:
        """Encoder heads per text: cached ones from this backend's recent calls, the rest in one batch."""
        with self._cache_lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for t in found:
                self._cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            # the cascade asks for sentence units: it sends few texts, and those are the ones it is unsure of
            heads = self._scorer().score_batch(missing, sentences=self.tier == "cascade")
            self._check_heads(heads, len(missing))
            with self._cache_lock:
                for t, h in zip(missing, heads):
                    found[t] = h
                    if len(t) <= _CACHE_MAX_LEN:
                        self._cache[t] = h
                while len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        return [found[t] for t in texts]

    def _check_heads(self, heads: Any, expected: int) -> None:
        """Fail closed on an encoder result of unexpected shape (a custom ``encoder=`` may return anything): a
        missing head or a NaN would otherwise read as "not flagged" and let the text through unchecked."""
        # the encoder module is light: onnxruntime is imported when a model loads
        from modchain.backends.local.encoder import EncoderScorer
        from modchain.core.errors import BackendError

        if not isinstance(heads, list) or len(heads) != expected:
            got = len(heads) if isinstance(heads, list) else type(heads).__name__
            raise BackendError(f"encoder returned {got} results for {expected} texts", backend=self.name)
        for i, result in enumerate(heads):
            if not isinstance(result, dict):
                raise BackendError(f"encoder result {i} is a {type(result).__name__}, not a dict of head scores",
                                   backend=self.name)
            for head in (*EncoderScorer.HEADS, *(("toxic_sentence",) if "toxic_sentence" in result else ())):
                value = result.get(head)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                    # no text in the message: only the head and what kind of value it had
                    what = "missing" if value is None else f"not a probability ({type(value).__name__})"
                    raise BackendError(f"encoder result {i}: head {head!r} is {what}", backend=self.name)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if not state.get("_given_encoder", True):
            state["_encoder"] = None  # loaded from encoder_path / device: loaded again in the new process
        return state

    def _scorer(self) -> Any:
        if self._encoder is None:
            self._encoder = _load_scorer(self._encoder_path, self._device)
        return self._encoder

    def clear_cache(self) -> None:
        """Drop the per-text caches of the offline models (``modchain eval`` times cold passes)."""
        from modchain.backends.local.linear_model import clear_caches

        clear_caches()
        with self._cache_lock:
            self._cache.clear()

    @classmethod
    def from_config(cls, config: Any = None) -> LocalBackend:
        if config is None:
            return cls()
        return cls(getattr(config, "tier", "cascade"), encoder_path=getattr(config, "encoder_path", None),
                   device=getattr(config, "device", None))


def _toxicity_verdict(text: str, heads: dict[str, float], fast_said: float | None) -> dict[str, float]:
    """Comprehend's labels from the encoder's ``toxic``, spread by the fast tier's lexicon; in the cascade, a text
    the fast model flagged keeps at least the score both models agree on when the encoder finds one of its
    sentences toxic (:data:`AGREEING_SENTENCE`)."""
    toxic = heads["toxic"]
    sentence = heads.get("toxic_sentence", 0.0)
    if fast_said is not None and fast_said >= 0.5 and sentence >= AGREEING_SENTENCE:
        toxic = max(toxic, min(fast_said, sentence))
    return attribute(text, toxic)


def _prompt_verdict(text: str, heads: dict[str, float], fast_said: float | None) -> tuple[float, str | None]:
    """``(unsafe, kind)`` from the encoder's heads: the kind of a firing attack pattern, else the stronger of
    the jailbreak / injection heads when it is itself likely and not outweighed by "harmful" (a plain harmful
    request, kind None). The fast score is not used: a request is judged with its context (see encoder.py)."""
    score = round(heads["unsafe"], 4)
    if score < 0.5:
        return score, None
    pat_kind = pattern_score(text)[1]
    if pat_kind is not None:
        return score, pat_kind
    kind = max(_KIND_HEADS, key=lambda k: heads.get(k, 0.0))
    likely = heads.get(kind, 0.0) >= 0.5 and heads.get(kind, 0.0) >= heads.get("harmful", 0.0)
    return score, kind if likely else None
