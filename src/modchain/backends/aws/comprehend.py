"""Amazon Comprehend: DetectPiiEntities, DetectToxicContent and the prompt-safety ClassifyDocument endpoint.

How requests are shaped, and why:

* PII: texts are packed into as few DetectPiiEntities documents as fit under the size limit (a batch of
  200 chat messages is one request, not 200), separated by blank lines, and entity offsets are mapped back
  to each text. A text over the limit is cut into overlapping windows at word boundaries; an entity that
  touches a window's cut is taken from the neighbouring window, which holds it whole, so no entity is lost
  or cut in half at a split.
* Toxicity: each text is split into segments of at most 1 KB (at sentence, then word boundaries,
  byte-exact), and segments from all texts are packed ten to a DetectToxicContent call.
* Prompt safety: one ClassifyDocument call per text (a classifier's verdict on a concatenation says
  nothing about its parts); longer texts are cut into overlapping parts at the document limit and the
  riskiest part counts.
* Languages: DetectPiiEntities reads English and Spanish, DetectToxicContent and the prompt-safety classifier
  English only (``languages``). A chain sends texts in other languages to its local backend (or refuses them,
  ``BackendConfig.unsupported_language``); with routing on (``language_routing``, the default) each PII text
  is sent with its detected LanguageCode, so Spanish texts are read as Spanish, and texts are packed into one
  document per language.
* Independent calls run concurrently; ``a*`` variants do so without blocking the event loop. A chain
  overlaps its filters' calls too (``io_bound``); identical requests in flight at once share one call.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from modchain.backends.aws.common import (
    FanOut,
    call_aws,
    concurrency_for,
    given_client_refusal,
    make_client,
    partition_for_region,
    prepare_client,
)
from modchain.backends.aws.responses import pii_entities, prompt_classes, toxicity_results
from modchain.backends.base import Scored, TextBackend
from modchain.core.config import COMPREHEND_PII_LABELS, TOXICITY_LABELS
from modchain.core.errors import ConfigurationError
from modchain.core.language import detect_language
from modchain.core.results import Finding
from modchain.core.text_splitting import overlapping_windows, pack, split_spans, utf8_len

#: Service limits in UTF-8 bytes. The documentation says "100 KB", "1 KB" and "10 KB" without saying whether a
#: KB is 1,000 or 1,024 bytes; 1,000 is safe under either reading, and costs nothing.
PII_MAX_BYTES = 100_000
TOXICITY_MAX_SEGMENTS = 10
TOXICITY_SEGMENT_MAX_BYTES = 1_000
TOXICITY_TOTAL_MAX_BYTES = 10_000
CLASSIFY_MAX_BYTES = 10_000
#: Longer than any entity Comprehend returns (addresses included), so a window overlap always holds one whole.
PII_WINDOW_OVERLAP_BYTES = 2_000
CLASSIFY_OVERLAP_BYTES = 1_000
_SEPARATOR = "\n\n"


def _unsafe(classes: list[dict[str, Any]]) -> float:
    # Only ever given validated classes (see responses.prompt_classes).
    return max((c["Score"] for c in classes if c["Name"] == "UNSAFE_PROMPT"), default=-1.0)


@dataclass(frozen=True)
class _Piece:
    """A stretch text[start:end] of text number ``text`` placed at ``offset`` in a packed document."""

    text: int
    start: int
    end: int
    offset: int
    cut_left: bool  # the piece starts at a window cut, not at the start of the text
    cut_right: bool


class ComprehendBackend(TextBackend):
    """Comprehend for all three text filters. Pass ``client=`` to reuse a configured boto3 client.

    With your own client, at most ``client.meta.config.max_pool_connections`` requests run at once (fewer
    than ``max_concurrency`` if its pool is smaller), so every request reuses a pooled connection.
    """

    name = "comprehend"
    # A config that asks Comprehend for a label it cannot detect (an EU national ID) is refused when the chain is
    # built, instead of finding nothing.
    labels = {"pii": COMPREHEND_PII_LABELS, "toxicity": frozenset(TOXICITY_LABELS)}
    #: The LanguageCode values each API accepts (DetectPiiEntities: en, es; DetectToxicContent: en; the
    #: prompt-safety classifier was trained on English).
    languages = {"pii": frozenset({"en", "es"}), "toxicity": frozenset({"en"}), "prompt_safety": frozenset({"en"})}
    #: Calls wait on the network, and are thread-safe: a chain overlaps the calls of its filters.
    io_bound = True
    #: Built again in each process when pickled (a client given by the caller refuses: see _pickle_refusal).
    _PER_PROCESS = {"_client": None, "_client_lock": threading.Lock, "_inflight": dict,
                    "_inflight_lock": threading.Lock}

    def __init__(
        self,
        client: Any = None,
        *,
        region_name: str | None = None,
        profile_name: str | None = None,
        endpoint_url: str | None = None,
        language_code: str = "en",
        timeout_s: float = 10.0,
        max_retries: int = 3,
        max_concurrency: int = 64,
        prompt_safety_endpoint_arn: str | None = None,
        pii_max_bytes: int = PII_MAX_BYTES,
        language_routing: bool = True,
    ) -> None:
        self._client_args = dict(region_name=region_name, profile_name=profile_name, endpoint_url=endpoint_url,
                                 timeout_s=timeout_s, max_retries=max_retries, max_concurrency=max_concurrency)
        self.language_code = language_code
        # True: each PII text is sent with its own detected language (en or es), else ``language_code``.
        # False (``unsupported_language="score"``): every text is sent as ``language_code``, as before routing.
        self.language_routing = language_routing
        self.prompt_safety_endpoint_arn = prompt_safety_endpoint_arn
        self.pii_max_bytes = pii_max_bytes
        self._client = prepare_client(client) if client is not None else None
        self._given_client = client is not None
        self._fanout = FanOut(concurrency_for(client, max_concurrency))
        self._arn: str | None = None
        self._client_lock = threading.Lock()
        self._inflight: dict[tuple[str, str], Future[dict[str, Any]]] = {}
        self._inflight_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Any) -> ComprehendBackend:
        return cls(region_name=config.region_name, profile_name=config.profile_name,
                   endpoint_url=config.endpoint_url, language_code=config.language_code,
                   timeout_s=config.timeout_s, max_retries=config.max_retries,
                   max_concurrency=config.max_concurrency,
                   prompt_safety_endpoint_arn=config.prompt_safety_endpoint_arn,
                   language_routing=config.unsupported_language != "score")

    def _pickle_refusal(self) -> str | None:
        return given_client_refusal(self)

    @property
    def client(self) -> Any:
        # Fan-out threads may ask at once: create exactly one client.
        with self._client_lock:
            if self._client is None:
                self._client = make_client("comprehend", **self._client_args)
        return self._client

    def prompt_safety_arn(self) -> str:
        """The configured ARN, else Comprehend's own prompt-safety endpoint in the client's region."""
        if self._arn is None:
            self._arn = self.prompt_safety_endpoint_arn or self._derived_arn()
        return self._arn

    def _derived_arn(self) -> str:
        region = self.client.meta.region_name
        if not region:
            raise ConfigurationError("comprehend: no region configured for the prompt-safety endpoint ARN")
        partition = partition_for_region(region)
        return f"arn:{partition}:comprehend:{region}:aws:document-classifier-endpoint/prompt-safety"

    def _shared(self, operation: str, fn: Any, **params: Any) -> dict[str, Any]:
        """``call_aws``, with one request for identical requests in flight at the same time.

        Filters of one chain call overlap (see ``modchain.text.chain``): two filters of one type on this
        backend (block SSN, then redact the rest) ask the same question at once, and share one answer. A
        failed request is not shared: each waiter then asks on its own, as it would have one after another.
        """
        key = (operation, repr(params))
        with self._inflight_lock:
            pending = self._inflight.get(key)
            if pending is None:
                self._inflight[key] = mine = Future()
        if pending is not None:
            try:
                return pending.result()
            except Exception:  # noqa: BLE001 - not shared: ask again, as a sequential chain would
                return call_aws(self.name, operation, fn, **params)
        try:
            response = call_aws(self.name, operation, fn, **params)
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        else:
            mine.set_result(response)
        finally:
            with self._inflight_lock:
                self._inflight.pop(key, None)
        return response

    # -- PII ---------------------------------------------------------------------------------------------

    def _pii_language(self, text: str) -> str:
        """The LanguageCode to send ``text`` with: its detected language where DetectPiiEntities reads it."""
        if not self.language_routing:
            return self.language_code
        language = detect_language(text)
        return language if language in self.languages["pii"] else self.language_code

    def _pii_documents(self, texts: Sequence[str]) -> list[tuple[str, list[_Piece], str]]:
        """Packed documents, each with its LanguageCode: texts of one language share documents."""
        by_language: dict[str, list[int]] = {}
        for index, text in enumerate(texts):
            by_language.setdefault(self._pii_language(text), []).append(index)
        documents = []
        for language, indexes in by_language.items():
            documents.extend((text, pieces, language) for text, pieces in self._pack_pii(texts, indexes))
        return documents

    def _pack_pii(self, texts: Sequence[str], indexes: list[int]) -> list[tuple[str, list[_Piece]]]:
        pieces: list[tuple[int, int, int, bool, bool]] = []
        for index in indexes:
            text = texts[index]
            if utf8_len(text) <= self.pii_max_bytes:
                pieces.append((index, 0, len(text), False, False))
                continue
            for start, end in overlapping_windows(text, self.pii_max_bytes, PII_WINDOW_OVERLAP_BYTES):
                pieces.append((index, start, end, start > 0, end < len(text)))
        sep_bytes = utf8_len(_SEPARATOR)
        sizes = [utf8_len(texts[i][s:e]) + sep_bytes for i, s, e, _, _ in pieces]
        documents = []
        for group in pack(sizes, max_items=len(sizes), max_total=self.pii_max_bytes + sep_bytes):
            placed, parts, offset = [], [], 0
            for position in group:
                i, s, e, left, right = pieces[position]
                placed.append(_Piece(i, s, e, offset, left, right))
                parts.append(texts[i][s:e])
                offset += (e - s) + len(_SEPARATOR)
            documents.append((_SEPARATOR.join(parts), placed))
        return documents

    def _detect_document(self, document: tuple[str, list[_Piece], str]) -> dict[str, Any]:
        return self._shared("DetectPiiEntities", self.client.detect_pii_entities,
                            Text=document[0], LanguageCode=document[2])

    def _pii_results(self, texts: Sequence[str], documents: list[tuple[str, list[_Piece], str]],
                     responses: list[dict[str, Any]]) -> list[Scored]:
        best: list[dict[tuple[str, int, int], float]] = [{} for _ in texts]
        for (document, pieces, _), response in zip(documents, responses):
            starts = [p.offset for p in pieces]
            for label, begin, end, score in pii_entities(response, len(document), backend=self.name):
                # An entity may run over a separator into the next piece: credit each piece its part.
                position = max(0, bisect.bisect_right(starts, begin) - 1)
                while position < len(pieces) and pieces[position].offset < end:
                    piece = pieces[position]
                    lo = max(begin, piece.offset)
                    hi = min(end, piece.offset + piece.end - piece.start)
                    touches_cut = (piece.cut_left and lo == piece.offset) or (
                        piece.cut_right and hi == piece.offset + piece.end - piece.start)
                    if lo < hi and not touches_cut:
                        key = (label, piece.start + lo - piece.offset, piece.start + hi - piece.offset)
                        best[piece.text][key] = max(best[piece.text].get(key, 0.0), score)
                    position += 1
        results = []
        for found in best:
            findings = [Finding(filter="pii", label=label, score=score, start=start, end=end, backend=self.name)
                        for (label, start, end), score in sorted(found.items(), key=lambda kv: kv[0][1:])]
            raw = [{"Type": f.label, "Score": f.score, "BeginOffset": f.start, "EndOffset": f.end}
                   for f in findings]
            results.append(Scored(findings, raw={"Entities": raw}))
        return results

    def _pii(self, texts: list[str], config: Any) -> list[Scored]:
        documents = self._pii_documents(texts)
        return self._pii_results(texts, documents, self._fanout.map(self._detect_document, documents))

    async def _apii(self, texts: list[str], config: Any) -> list[Scored]:
        documents = self._pii_documents(texts)
        return self._pii_results(texts, documents, await self._fanout.amap(self._detect_document, documents))

    # -- toxicity ----------------------------------------------------------------------------------------

    def _toxicity_plan(self, texts: Sequence[str]) -> tuple[list[tuple[int, int, int]], list[list[int]]]:
        segments = [(i, s, e) for i, text in enumerate(texts)
                    for s, e in split_spans(text, TOXICITY_SEGMENT_MAX_BYTES) if text[s:e].strip()]
        sizes = [utf8_len(texts[i][s:e]) for i, s, e in segments]
        return segments, list(pack(sizes, TOXICITY_MAX_SEGMENTS, TOXICITY_TOTAL_MAX_BYTES))

    def _toxicity_call(self, batch: list[str]) -> dict[str, Any]:
        # With routing, only texts read as English (or undetermined, counted as English) reach this API, the
        # one language it accepts, even when language_code names another for the PII filter.
        language = "en" if self.language_routing else self.language_code
        return self._shared("DetectToxicContent", self.client.detect_toxic_content,
                            TextSegments=[{"Text": t} for t in batch], LanguageCode=language)

    def _toxicity_results(self, texts: Sequence[str], segments: list[tuple[int, int, int]],
                          groups: list[list[int]], responses: list[dict[str, Any]]) -> list[Scored]:
        # Raw output keeps the service's response shape, with each segment's offsets added.
        results = [Scored(raw={"ResultList": []}) for _ in texts]
        for group, response in zip(groups, responses):
            checked = toxicity_results(response, len(group), backend=self.name)
            for position, item, labels in zip(group, response["ResultList"], checked):
                i, start, end = segments[position]
                results[i].raw["ResultList"].append({"BeginOffset": start, "EndOffset": end, **item})
                results[i].findings.extend(
                    Finding(filter="toxicity", label=name, score=score, start=start, end=end, backend=self.name)
                    for name, score in labels)
        return results

    def _toxicity(self, texts: list[str], config: Any) -> list[Scored]:
        segments, groups = self._toxicity_plan(texts)
        batches = [[texts[segments[p][0]][segments[p][1]:segments[p][2]] for p in g] for g in groups]
        return self._toxicity_results(texts, segments, groups, self._fanout.map(self._toxicity_call, batches))

    async def _atoxicity(self, texts: list[str], config: Any) -> list[Scored]:
        segments, groups = self._toxicity_plan(texts)
        batches = [[texts[segments[p][0]][segments[p][1]:segments[p][2]] for p in g] for g in groups]
        responses = await self._fanout.amap(self._toxicity_call, batches)
        return self._toxicity_results(texts, segments, groups, responses)

    # -- prompt safety -----------------------------------------------------------------------------------

    def _classify_plan(self, texts: Sequence[str]) -> list[tuple[int, int, int]]:
        # Overlapping parts, so an attack phrase straddling a cut is still seen whole by one call.
        return [(i, s, e) for i, text in enumerate(texts)
                for s, e in overlapping_windows(text, CLASSIFY_MAX_BYTES, CLASSIFY_OVERLAP_BYTES)
                if text[s:e].strip()]

    def _classify_call(self, chunk: str) -> dict[str, Any]:
        return self._shared("ClassifyDocument", self.client.classify_document,
                            Text=chunk, EndpointArn=self.prompt_safety_arn())

    def _classify_results(self, texts: Sequence[str], chunks: list[tuple[int, int, int]],
                          responses: list[dict[str, Any]]) -> list[Scored]:
        # Raw output: the service's {"Classes": ...} for the riskiest part, and every part with its offsets.
        results = [Scored(raw={"Classes": [], "Parts": []}) for _ in texts]
        for (i, start, end), response in zip(chunks, responses):
            pairs = prompt_classes(response, backend=self.name)
            classes = [{"Name": name, "Score": score} for name, score in pairs]
            raw = results[i].raw
            raw["Parts"].append({"BeginOffset": start, "EndOffset": end, "Classes": classes})
            if _unsafe(classes) >= _unsafe(raw["Classes"]):
                raw["Classes"] = classes
            for name, score in pairs:
                results[i].findings.append(Finding(filter="prompt_safety", label=name, score=score, start=start,
                                                   end=end, backend=self.name))
        return results

    def _prompt_safety(self, texts: list[str], config: Any) -> list[Scored]:
        chunks = self._classify_plan(texts)
        self.prompt_safety_arn()  # fail on a missing region before any request
        payloads = [texts[i][s:e] for i, s, e in chunks]
        return self._classify_results(texts, chunks, self._fanout.map(self._classify_call, payloads))

    async def _aprompt_safety(self, texts: list[str], config: Any) -> list[Scored]:
        chunks = self._classify_plan(texts)
        self.prompt_safety_arn()  # fail on a missing region before any request
        payloads = [texts[i][s:e] for i, s, e in chunks]
        return self._classify_results(texts, chunks, await self._fanout.amap(self._classify_call, payloads))
