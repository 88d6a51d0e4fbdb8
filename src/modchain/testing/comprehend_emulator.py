"""A local Amazon Comprehend emulator that speaks the real wire protocols.

Why: tests and benchmarks of our Comprehend-backed components must run with no
network and no AWS account, yet still exercise the real boto3 client, so that
protocol, size-limit and retry handling are tested rather than assumed.  The
emulator therefore enforces the service's documented request limits and
answers with the same error codes Comprehend uses.

Protocols: botocore >= 1.40 prefers Smithy RPC v2 CBOR for Comprehend
(``POST /service/Comprehend_20171127/operation/<Op>``, ``smithy-protocol:
rpc-v2-cbor``, CBOR bodies).  Older botocore uses awsJson1_1 (``POST /`` with
``X-Amz-Target: Comprehend_20171127.<Op>``).  Both are served.

Detection is pluggable; the defaults are tiny regex/word-list detectors that
are deterministic and self-contained (no other modchain imports).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, ClassVar

import cbor2

from modchain.testing._http import ApiError, Call, EmulatorServer

TARGET_PREFIX = "Comprehend_20171127"
_NAMESPACE = "com.amazonaws.comprehend"

# Service limits.  The docs say "100 KB", "1 KB", "10 KB"; we read a KB as 1,000 bytes,
# the stricter reading, so a client that passes here passes on AWS too.
PII_MAX_BYTES = 100_000
TOXICITY_MAX_SEGMENTS = 10
TOXICITY_SEGMENT_MAX_BYTES = 1_000
TOXICITY_TOTAL_MAX_BYTES = 10_000
CLASSIFY_MAX_BYTES = 10_000

# Languages each operation actually accepts (the model enum is wider).
_LANGUAGES = {
    "DetectPiiEntities": {"en", "es"},
    "ContainsPiiEntities": {"en"},
    "DetectToxicContent": {"en"},
}
TOXIC_LABELS = (
    "PROFANITY",
    "HATE_SPEECH",
    "INSULT",
    "GRAPHIC",
    "HARASSMENT_OR_ABUSE",
    "SEXUAL",
    "VIOLENCE_OR_THREAT",
)
# Same pattern botocore's model declares for DocumentClassifierEndpointArn.
_ENDPOINT_ARN = re.compile(
    r"arn:aws(-[^:]+)?:comprehend:[a-zA-Z0-9-]*:([0-9]{12}|aws):"
    r"document-classifier-endpoint/[a-zA-Z0-9](-*[a-zA-Z0-9])*"
)

# -- default detectors ------------------------------------------------------
_PII_PATTERNS = [
    ("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), 0.99),
    ("EMAIL", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), 0.99),
    ("CREDIT_DEBIT_NUMBER", re.compile(r"\b\d(?:[ -]?\d){12,15}\b"), 0.98),
    ("PHONE", re.compile(r"(?<![\w-])(?:\+?1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}\b"), 0.97),
]


def default_pii_detector(text: str) -> list[dict]:
    """Regex PII finder; earlier patterns win where matches overlap."""
    found: list[dict] = []
    for kind, pattern, score in _PII_PATTERNS:
        for m in pattern.finditer(text):
            if any(m.start() < e["EndOffset"] and e["BeginOffset"] < m.end() for e in found):
                continue
            found.append({"Type": kind, "BeginOffset": m.start(), "EndOffset": m.end(), "Score": score})
    return sorted(found, key=lambda e: e["BeginOffset"])


_TOXIC_TERMS = {
    "PROFANITY": (["fuck", "fucking", "shit", "bullshit", "damn"], 0.92),
    "INSULT": (["idiot", "stupid", "moron", "loser", "dumbass"], 0.88),
    "VIOLENCE_OR_THREAT": (["kill you", "i will hurt you", "beat you up", "you will die"], 0.9),
    "HATE_SPEECH": (["subhuman", "vermin"], 0.85),
}
_TOXIC_RE = {
    label: re.compile(r"\b(?:{})\b".format("|".join(map(re.escape, words))), re.IGNORECASE)
    for label, (words, _) in _TOXIC_TERMS.items()
}


def default_toxicity_scorer(text: str) -> dict[str, float]:
    """Word-list scorer: a label scores high if any of its terms occurs."""
    hits = {label for label, pattern in _TOXIC_RE.items() if pattern.search(text)}
    return {label: _TOXIC_TERMS[label][1] if label in hits else 0.0 for label in TOXIC_LABELS}


_JAILBREAK_RE = re.compile(
    r"ignore (?:all )?previous instructions|ignore all previous|you are (?:now )?dan\b|developer mode"
    r"|disregard (?:all |your )?(?:earlier|previous|prior) (?:guidance|instructions)|\bwith no rules\b",
    re.IGNORECASE,
)


def default_prompt_safety_scorer(text: str) -> float:
    return 0.97 if _JAILBREAK_RE.search(text) else 0.02


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


class ComprehendEmulator(EmulatorServer):
    """Serves DetectPiiEntities, ContainsPiiEntities, DetectToxicContent and
    ClassifyDocument (prompt-safety endpoint) over CBOR and JSON."""

    ERROR_STATUS: ClassVar[dict[str, int]] = {
        "ThrottlingException": 400,
        "TooManyRequestsException": 400,
        "InternalServerException": 500,
        "ResourceUnavailableException": 404,
    }

    def __init__(
        self,
        latency_s: float = 0.0,
        pii_detector: Callable[[str], list[dict]] | None = None,
        toxicity_scorer: Callable[[str], dict[str, float]] | None = None,
        prompt_safety_scorer: Callable[[str], float] | None = None,
    ):
        super().__init__(latency_s)
        self.pii_detector = pii_detector or default_pii_detector
        self.toxicity_scorer = toxicity_scorer or default_toxicity_scorer
        self.prompt_safety_scorer = prompt_safety_scorer or default_prompt_safety_scorer

    # -- wire protocol -------------------------------------------------------
    def _parse(self, method: str, path: str, headers: Any, body: bytes) -> Call:
        path = path.split("?", 1)[0]
        rpc_prefix = f"/service/{TARGET_PREFIX}/operation/"
        if method == "POST" and path.startswith(rpc_prefix):
            if headers.get("smithy-protocol") != "rpc-v2-cbor":
                raise ApiError("SerializationException", "missing smithy-protocol: rpc-v2-cbor header")
            try:
                params = cbor2.loads(body) if body else {}
            except Exception as exc:  # noqa: BLE001 - cbor2 raises several unrelated types
                raise ApiError("SerializationException", f"invalid CBOR body: {exc}") from None
            return Call(path[len(rpc_prefix) :], params, "cbor")
        target = headers.get("X-Amz-Target", "")
        if method == "POST" and path == "/" and target.startswith(TARGET_PREFIX + "."):
            try:
                params = json.loads(body or b"{}")
            except ValueError as exc:
                raise ApiError("SerializationException", f"invalid JSON body: {exc}") from None
            return Call(target.split(".", 1)[1], params, "json")
        raise ApiError("UnknownOperationException", f"no Comprehend operation at {method} {path}", 404)

    def _render(self, call, status, result, error):
        if error is not None:
            # botocore reads "__type" (stripping any "namespace#") and
            # "message"/"Message"; the modeled member name is "Message".
            result = {
                "__type": f"{_NAMESPACE}#{error.code}",
                "message": error.message,
                "Message": error.message,
                **error.extra,
            }
        return self._encode(call, result)

    def _encode(self, call, body):
        raw = isinstance(body, (bytes, str))  # sent as is by the caller; only the headers matter here
        if call.protocol == "json":
            return {"Content-Type": "application/x-amz-json-1.1"}, b"" if raw else json.dumps(body).encode()
        return ({"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
                b"" if raw else cbor2.dumps(body))

    # -- operations ------------------------------------------------------------
    def _invoke(self, call: Call) -> dict:
        handler = {
            "DetectPiiEntities": self._detect_pii,
            "ContainsPiiEntities": self._contains_pii,
            "DetectToxicContent": self._detect_toxic,
            "ClassifyDocument": self._classify,
        }.get(call.operation)
        if handler is None:
            raise ApiError("UnknownOperationException", f"unsupported operation {call.operation}")
        return handler(call.operation, call.params)

    @staticmethod
    def _check_text(text: Any, limit: int, what: str = "Text") -> str:
        if not isinstance(text, str) or not text:
            raise ApiError("InvalidRequestException", f"{what} must be a non-empty string")
        if _utf8_len(text) > limit:
            raise ApiError(
                "TextSizeLimitExceededException",
                f"Input text size exceeds limit. Max length of request text allowed "
                f"is {limit} bytes while in this request the text size is {_utf8_len(text)} bytes",
            )
        return text

    @staticmethod
    def _check_language(op: str, params: dict) -> None:
        lang = params.get("LanguageCode")
        if lang not in _LANGUAGES[op]:
            raise ApiError(
                "UnsupportedLanguageException",
                f"The language code {lang!r} is not supported for {op}; supported: {sorted(_LANGUAGES[op])}",
            )

    def _pii_entities(self, op: str, params: dict) -> list[dict]:
        text = self._check_text(params.get("Text"), PII_MAX_BYTES)
        self._check_language(op, params)
        return [
            {
                "Score": float(e["Score"]),
                "Type": e["Type"],
                "BeginOffset": int(e["BeginOffset"]),
                "EndOffset": int(e["EndOffset"]),
            }
            for e in self.pii_detector(text)
        ]

    def _detect_pii(self, op: str, params: dict) -> dict:
        return {"Entities": self._pii_entities(op, params)}

    def _contains_pii(self, op: str, params: dict) -> dict:
        best: dict[str, float] = {}
        for e in self._pii_entities(op, params):
            best[e["Type"]] = max(best.get(e["Type"], 0.0), e["Score"])
        return {"Labels": [{"Name": name, "Score": score} for name, score in best.items()]}

    def _detect_toxic(self, op: str, params: dict) -> dict:
        segments = params.get("TextSegments")
        if not isinstance(segments, list) or not segments:
            raise ApiError("InvalidRequestException", "TextSegments must be a non-empty list")
        if len(segments) > TOXICITY_MAX_SEGMENTS:
            raise ApiError(
                "TextSizeLimitExceededException",
                f"Too many text segments: {len(segments)} > {TOXICITY_MAX_SEGMENTS}",
            )
        texts = [
            self._check_text((s or {}).get("Text"), TOXICITY_SEGMENT_MAX_BYTES, "TextSegments.Text")
            for s in segments
        ]
        total = sum(map(_utf8_len, texts))
        if total > TOXICITY_TOTAL_MAX_BYTES:
            raise ApiError(
                "TextSizeLimitExceededException",
                f"Total text size {total} bytes exceeds {TOXICITY_TOTAL_MAX_BYTES} bytes",
            )
        self._check_language(op, params)
        results = []
        for text in texts:
            scores = self.toxicity_scorer(text)
            labels = [{"Name": name, "Score": float(scores.get(name, 0.0))} for name in TOXIC_LABELS]
            results.append({"Labels": labels, "Toxicity": max(lab["Score"] for lab in labels)})
        return {"ResultList": results}

    def _classify(self, op: str, params: dict) -> dict:
        arn = params.get("EndpointArn")
        if not isinstance(arn, str) or not _ENDPOINT_ARN.fullmatch(arn):
            raise ApiError("InvalidRequestException", f"Invalid EndpointArn {arn!r}")
        if not arn.endswith("document-classifier-endpoint/prompt-safety"):
            raise ApiError(
                "ResourceUnavailableException",
                f"Endpoint {arn} is not available (this emulator serves only prompt-safety)",
                404,
            )
        if params.get("Bytes") is not None:
            raise ApiError(
                "InvalidRequestException",
                "prompt-safety accepts Text only, not Bytes",
                Reason="INVALID_DOCUMENT",
            )
        text = self._check_text(params.get("Text"), CLASSIFY_MAX_BYTES)
        unsafe = min(1.0, max(0.0, float(self.prompt_safety_scorer(text))))
        classes = [
            {"Name": "UNSAFE_PROMPT", "Score": unsafe},
            {"Name": "SAFE_PROMPT", "Score": round(1.0 - unsafe, 6)},
        ]
        return {"Classes": sorted(classes, key=lambda c: -c["Score"])}
