"""Amazon Bedrock Guardrails ``ApplyGuardrail`` as a backend for PII, toxicity and prompt attacks.

Comprehend's prompt-safety classifier is closed to new customers from 2026-04-30; a guardrail with the
PROMPT_ATTACK content filter is the managed replacement. One ApplyGuardrail call assesses a text against
every policy of the guardrail at once, so responses are cached briefly (by a hash of source + text, never
the text itself) and the PII, toxicity and prompt-safety filters of one chain share a single call per text.

Mapping into the shared findings:
* content filters HATE, INSULTS, SEXUAL, VIOLENCE -> HATE_SPEECH, INSULT, SEXUAL, VIOLENCE_OR_THREAT;
  MISCONDUCT keeps its name (Comprehend has no equivalent); PROMPT_ATTACK -> UNSAFE_PROMPT.
  Confidence NONE/LOW/MEDIUM/HIGH becomes a score of 0.0/0.35/0.65/0.9.
* sensitive-information entities map to Comprehend's PII names; the guardrail returns the matched string
  but no offsets, so every occurrence of the match in the text is reported.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any

from modchain.backends.aws.common import (
    FanOut,
    call_aws,
    concurrency_for,
    given_client_refusal,
    make_client,
    prepare_client,
)
from modchain.backends.aws.responses import guardrail_response
from modchain.backends.base import Scored, TextBackend
from modchain.core.errors import ConfigurationError
from modchain.core.results import Finding
from modchain.core.text_splitting import overlapping_windows

CONFIDENCE_SCORES = {"NONE": 0.0, "LOW": 0.35, "MEDIUM": 0.65, "HIGH": 0.9}
CONTENT_LABELS = {"HATE": "HATE_SPEECH", "INSULTS": "INSULT", "SEXUAL": "SEXUAL",
                  "VIOLENCE": "VIOLENCE_OR_THREAT", "MISCONDUCT": "MISCONDUCT"}
PII_LABELS = {
    "US_SOCIAL_SECURITY_NUMBER": "SSN",
    "CREDIT_DEBIT_CARD_NUMBER": "CREDIT_DEBIT_NUMBER",
    "CREDIT_DEBIT_CARD_CVV": "CREDIT_DEBIT_CVV",
    "CREDIT_DEBIT_CARD_EXPIRY": "CREDIT_DEBIT_EXPIRY",
    "US_BANK_ACCOUNT_NUMBER": "BANK_ACCOUNT_NUMBER",
    "US_BANK_ROUTING_NUMBER": "BANK_ROUTING",
    "US_PASSPORT_NUMBER": "PASSPORT_NUMBER",
    "DRIVER_ID": "DRIVER_ID",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER": "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
}
#: Languages per safeguard tier, from "Languages supported by Amazon Bedrock Guardrails" (AWS docs, content filters
#: and prompt attacks): the classic tier reads English, French and Spanish; the standard tier the languages below
#: (ISO 639-1; Filipino/Tagalog is "tl", Norwegian "no"). The page gives no separate table for sensitive-information
#: filters, so PII uses the same sets: a text outside them is routed, not read as one of them.
CLASSIC_LANGUAGES = frozenset({"en", "fr", "es"})
STANDARD_LANGUAGES = frozenset(
    "af sq ar hy az be bg ca zh hr cs da nl en et tl fi fr ka de el gu he hi hu id it ja kn ko lv lt mk ms ml mr "
    "ne no fa pl pt ro ru sr sk sl es sv te th tr uk uz vi".split())
TIER_LANGUAGES = {"classic": CLASSIC_LANGUAGES, "standard": STANDARD_LANGUAGES}
#: Guardrails meter text in 1,000-character units; chunks stay well inside a request's size limit.
MAX_CHARS_PER_REQUEST = 20_000
CHUNK_OVERLAP = 2_000


class BedrockGuardrailsBackend(TextBackend):
    """ApplyGuardrail with a guardrail you created (``guardrail_id``, ``guardrail_version``).

    With your own ``client``, at most its ``max_pool_connections`` requests run at once.
    """

    name = "bedrock"
    labels = {"toxicity": frozenset(CONTENT_LABELS.values())}
    #: Calls wait on the network, and are thread-safe: a chain overlaps the calls of its filters.
    io_bound = True
    #: Built again in each process when pickled (a client given by the caller refuses: see _pickle_refusal).
    _PER_PROCESS = {"_client": None, "_cache": OrderedDict, "_lock": threading.Lock, "_inflight": dict}

    def __init__(
        self,
        guardrail_id: str | None = None,
        guardrail_version: str = "DRAFT",
        client: Any = None,
        *,
        source: str = "INPUT",
        region_name: str | None = None,
        profile_name: str | None = None,
        endpoint_url: str | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        max_concurrency: int = 64,
        cache_size: int = 256,
        tier: str = "classic",
    ) -> None:
        if not guardrail_id:
            raise ConfigurationError("the bedrock backend needs guardrail_id (create one in Amazon Bedrock)")
        self.guardrail_id = guardrail_id
        self.guardrail_version = guardrail_version
        self.source = source
        if tier not in TIER_LANGUAGES:
            raise ConfigurationError(f"bedrock: unknown guardrail tier {tier!r}; use 'classic' or 'standard'")
        self.tier = tier  # per instance: the tier is a property of the guardrail this backend calls
        self._client = prepare_client(client) if client is not None else None
        self._given_client = client is not None
        self._client_args = dict(region_name=region_name, profile_name=profile_name, endpoint_url=endpoint_url,
                                 timeout_s=timeout_s, max_retries=max_retries, max_concurrency=max_concurrency)
        self._fanout = FanOut(concurrency_for(client, max_concurrency))
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        # Requests in flight by cache key: a chain's filters ask for the same text at once, and must share
        # one call (the whole point of the cache) rather than all miss it together.
        self._inflight: dict[str, Future[dict[str, Any]]] = {}

    @classmethod
    def from_config(cls, config: Any) -> BedrockGuardrailsBackend:
        return cls(config.guardrail_id, config.guardrail_version, source=config.guardrail_source,
                   region_name=config.region_name,
                   profile_name=config.profile_name, endpoint_url=config.endpoint_url,
                   timeout_s=config.timeout_s, max_retries=config.max_retries,
                   max_concurrency=config.max_concurrency, tier=config.guardrail_tier)

    def supported_languages(self, filter_type: str) -> frozenset[str] | None:
        return TIER_LANGUAGES[self.tier]

    def _pickle_refusal(self) -> str | None:
        return given_client_refusal(self)

    @property
    def client(self) -> Any:
        with self._lock:  # fan-out threads may ask at once: create exactly one client
            if self._client is None:
                self._client = make_client("bedrock-runtime", **self._client_args)
        return self._client

    def clear_cache(self) -> None:
        """Forget cached guardrail responses."""
        with self._lock:
            self._cache.clear()

    def assess(self, text: str) -> dict[str, Any]:
        """The raw ApplyGuardrail response for one chunk of text (cached)."""
        key = hashlib.sha256(f"{self.source}\0{text}".encode()).hexdigest()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            pending = self._inflight.get(key)
            if pending is None:
                self._inflight[key] = mine = Future()
        if pending is not None:
            try:
                return pending.result()  # the same text's call, made by another filter right now
            except Exception:  # noqa: BLE001 - that call failed: make our own, as a sequential chain would
                return self._call(text)
        try:
            response = self._call(text)
        except BaseException as exc:
            with self._lock:
                self._inflight.pop(key, None)
            mine.set_exception(exc)
            raise
        with self._lock:
            self._cache[key] = response
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            self._inflight.pop(key, None)
        mine.set_result(response)
        return response

    def _call(self, text: str) -> dict[str, Any]:
        response = call_aws(self.name, "ApplyGuardrail", self.client.apply_guardrail,
                            guardrailIdentifier=self.guardrail_id, guardrailVersion=self.guardrail_version,
                            source=self.source, content=[{"text": {"text": text}}])
        response.pop("ResponseMetadata", None)
        # Checked before caching: a malformed answer is an error now and must not be served again later.
        guardrail_response(response, backend=self.name)
        return response

    def _chunks(self, texts: list[str]) -> list[tuple[int, int, int]]:
        # Overlapping chunks: an entity or phrase across a cut lies whole in one of them.
        return [(i, s, e) for i, text in enumerate(texts)
                for s, e in overlapping_windows(text, MAX_CHARS_PER_REQUEST, CHUNK_OVERLAP) if text[s:e].strip()]

    def _findings(self, kind: str, text: str, start: int, response: dict[str, Any]) -> list[Finding]:
        found: list[Finding] = []
        for assessment in response["assessments"]:
            if kind == "pii":
                found.extend(self._pii_findings(text, start, assessment))
                continue
            for item in (assessment.get("contentPolicy") or {}).get("filters", []):
                is_attack = item.get("type") == "PROMPT_ATTACK"
                if is_attack != (kind == "prompt_safety"):
                    continue
                label = "UNSAFE_PROMPT" if is_attack else CONTENT_LABELS.get(item["type"], item["type"])
                # Validated responses only (see assess): every filter has a known confidence and an action.
                found.append(Finding(filter=kind, label=label, score=CONFIDENCE_SCORES[item["confidence"]],
                                     start=start, end=start + len(text), backend=self.name,
                                     explanation=f"guardrail action {item['action']}"))
        return found

    def _pii_findings(self, text: str, start: int, assessment: dict[str, Any]) -> list[Finding]:
        policy = assessment.get("sensitiveInformationPolicy") or {}
        matches = [(PII_LABELS.get(e["type"], e["type"]), e["match"]) for e in policy.get("piiEntities") or []]
        matches += [(r["name"], r["match"]) for r in policy.get("regexes") or []]
        found = []
        for label, match in dict.fromkeys(matches):
            hits = list(re.finditer(re.escape(match), text)) if match else []
            for hit in hits:
                found.append(Finding(filter="pii", label=label, score=1.0, start=start + hit.start(),
                                     end=start + hit.end(), backend=self.name))
            if not hits:
                # The guardrail saw PII we cannot locate (normalized match?): report it without a span, so a
                # redacting filter blocks instead of letting it through unmasked.
                found.append(Finding(filter="pii", label=label, score=1.0, backend=self.name,
                                     explanation="reported by the guardrail without a locatable match"))
        return found

    def _collect(self, kind: str, texts: list[str], chunks: list[tuple[int, int, int]],
                 responses: list[dict[str, Any]]) -> list[Scored]:
        results = [Scored(raw=[]) for _ in texts]
        for (i, s, e), response in zip(chunks, responses):
            results[i].raw.append(response)
            for finding in self._findings(kind, texts[i][s:e], s, response):
                if finding not in results[i].findings:  # the same span seen from two overlapping chunks
                    results[i].findings.append(finding)
        return results

    def _run(self, kind: str, texts: list[str]) -> list[Scored]:
        chunks = self._chunks(texts)
        responses = self._fanout.map(self.assess, [texts[i][s:e] for i, s, e in chunks])
        return self._collect(kind, texts, chunks, responses)

    async def _arun(self, kind: str, texts: list[str]) -> list[Scored]:
        chunks = self._chunks(texts)
        responses = await self._fanout.amap(self.assess, [texts[i][s:e] for i, s, e in chunks])
        return self._collect(kind, texts, chunks, responses)

    def _pii(self, texts: list[str], config: Any) -> list[Scored]:
        return self._run("pii", texts)

    def _toxicity(self, texts: list[str], config: Any) -> list[Scored]:
        return self._run("toxicity", texts)

    def _prompt_safety(self, texts: list[str], config: Any) -> list[Scored]:
        return self._run("prompt_safety", texts)

    async def _apii(self, texts: list[str], config: Any) -> list[Scored]:
        return await self._arun("pii", texts)

    async def _atoxicity(self, texts: list[str], config: Any) -> list[Scored]:
        return await self._arun("toxicity", texts)

    async def _aprompt_safety(self, texts: list[str], config: Any) -> list[Scored]:
        return await self._arun("prompt_safety", texts)
