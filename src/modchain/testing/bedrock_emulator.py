"""A local Amazon Bedrock Guardrails (``ApplyGuardrail``) emulator.

Why: our Bedrock-guardrail components are tested and benchmarked against a
real HTTP server speaking bedrock-runtime's rest-json protocol, so the
unmodified boto3 client (serializer, retries, error parsing) is exercised
without network access or an AWS account.

Wire format: ``POST /guardrail/{guardrailIdentifier}/version/{guardrailVersion}/apply``
with a JSON body; errors carry the code in the ``X-Amzn-ErrorType`` header
(what botocore's RestJSONParser reads first) and ``{"message": ...}`` in the
body.  The response follows botocore's ``ApplyGuardrailResponse`` shape.

Policy behaviour mirrors Bedrock: PII is anonymized as ``{TYPE}`` (or the
whole text blocked), content filters map a score to NONE/LOW/MEDIUM/HIGH
confidence and block when it reaches the configured filter strength, the
PROMPT_ATTACK filter applies to ``source="INPUT"`` only, and by default
(``outputScope`` INTERVENTIONS) only detected findings are listed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import unquote

from modchain.testing._http import ApiError, Call, EmulatorServer
from modchain.testing.comprehend_emulator import (
    default_pii_detector,
    default_prompt_safety_scorer,
    default_toxicity_scorer,
)

#: Emulator's choice, not a documented AWS number: total text characters per
#: request above which ApplyGuardrail answers ValidationException.
TEXT_MAX_CHARS = 25_000
CONTENT_FILTERS = ("HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT", "PROMPT_ATTACK")
DEFAULT_BLOCKED_MESSAGE = "Sorry, the model cannot answer this question."
_LEVELS = ("NONE", "LOW", "MEDIUM", "HIGH")
# Filter strength -> lowest confidence it blocks (a HIGH strength filter blocks
# even LOW-confidence findings, as in Bedrock).
_BLOCKS_FROM = {"NONE": 99, "LOW": 3, "MEDIUM": 2, "HIGH": 1}
# Comprehend entity names (what pii_detector callables usually return) ->
# Bedrock GuardrailPiiEntityType names; names not listed pass through.
PII_TYPE_MAP = {
    "SSN": "US_SOCIAL_SECURITY_NUMBER",
    "CREDIT_DEBIT_NUMBER": "CREDIT_DEBIT_CARD_NUMBER",
    "CREDIT_DEBIT_CVV": "CREDIT_DEBIT_CARD_CVV",
    "CREDIT_DEBIT_EXPIRY": "CREDIT_DEBIT_CARD_EXPIRY",
    "BANK_ACCOUNT_NUMBER": "US_BANK_ACCOUNT_NUMBER",
    "BANK_ROUTING": "US_BANK_ROUTING_NUMBER",
    "PASSPORT_NUMBER": "US_PASSPORT_NUMBER",
}


def default_content_scorer(text: str, source: str = "INPUT") -> dict[str, float]:
    """Bedrock filter scores derived from the Comprehend emulator's defaults."""
    tox = default_toxicity_scorer(text)
    return {
        "HATE": tox["HATE_SPEECH"],
        "INSULTS": max(tox["INSULT"], tox["HARASSMENT_OR_ABUSE"]),
        "SEXUAL": tox["SEXUAL"],
        "VIOLENCE": max(tox["VIOLENCE_OR_THREAT"], tox["GRAPHIC"]),
        "MISCONDUCT": 0.0,
        "PROMPT_ATTACK": default_prompt_safety_scorer(text),
    }


def _confidence(score: float) -> int:
    return 0 if score < 0.25 else 1 if score < 0.5 else 2 if score < 0.75 else 3


class BedrockGuardrailEmulator(EmulatorServer):
    """Serves bedrock-runtime ``ApplyGuardrail`` for one guardrail."""

    ERROR_STATUS: ClassVar[dict[str, int]] = {
        "ThrottlingException": 429,
        "AccessDeniedException": 403,
        "ResourceNotFoundException": 404,
        "ValidationException": 400,
        "ServiceQuotaExceededException": 400,
        "InternalServerException": 500,
        "ServiceUnavailableException": 503,
    }

    def __init__(
        self,
        latency_s: float = 0.0,
        guardrail_id: str = "gr-test",
        version: str = "1",
        pii_detector: Callable[[str], list[dict]] | None = None,
        content_scorer: Callable[[str], dict[str, float]] | None = None,
        pii_action: str = "ANONYMIZE",
        filter_strength: str = "HIGH",
        blocked_message: str = DEFAULT_BLOCKED_MESSAGE,
    ):
        super().__init__(latency_s)
        if pii_action not in ("ANONYMIZE", "BLOCK"):
            raise ValueError("pii_action must be 'ANONYMIZE' or 'BLOCK'")
        self.guardrail_id, self.version = guardrail_id, str(version)
        self.pii_detector = pii_detector or default_pii_detector
        self.content_scorer = content_scorer or default_content_scorer
        self.pii_action, self.filter_strength = pii_action, filter_strength
        self.blocked_message = blocked_message

    # -- wire protocol -------------------------------------------------------
    def _parse(self, method: str, path: str, headers: Any, body: bytes) -> Call:
        # Split before unquoting: an ARN identifier arrives with "/" as %2F.
        parts = path.split("?", 1)[0].split("/")
        if (
            method != "POST"
            or len(parts) != 6
            or parts[1] != "guardrail"
            or parts[3] != "version"
            or parts[5] != "apply"
        ):
            raise ApiError("UnknownOperationException", f"no operation at {method} {path}", 404)
        try:
            params = json.loads(body or b"{}")
        except ValueError as exc:
            raise ApiError("SerializationException", f"invalid JSON body: {exc}") from None
        if not isinstance(params, dict):
            raise ApiError("SerializationException", "request body must be a JSON object")
        params = {"guardrailIdentifier": unquote(parts[2]), "guardrailVersion": unquote(parts[4]), **params}
        return Call("ApplyGuardrail", params, "rest-json")

    def _render(self, call, status, result, error):
        if error is None:
            return {"Content-Type": "application/json"}, json.dumps(result).encode()
        # The header form is what Bedrock sends; botocore strips everything after ":".
        return (
            {
                "Content-Type": "application/json",
                "X-Amzn-ErrorType": f"{error.code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            },
            json.dumps({"message": error.message, **error.extra}).encode(),
        )

    # -- ApplyGuardrail ----------------------------------------------------------
    def _invoke(self, call: Call) -> dict:
        started = time.perf_counter()
        p = call.params
        source, content = p.get("source"), p.get("content")
        if source not in ("INPUT", "OUTPUT"):
            raise ApiError("ValidationException", f"source must be INPUT or OUTPUT, got {source!r}")
        if not isinstance(content, list) or not content:
            raise ApiError("ValidationException", "content must be a non-empty list")
        if any(
            not isinstance(b, dict) or not isinstance((b.get("text") or {}).get("text"), str) for b in content
        ):
            raise ApiError("ValidationException", "emulator supports only text content blocks")
        gid = p["guardrailIdentifier"]
        if gid.rsplit(":guardrail/", 1)[-1] != self.guardrail_id or p["guardrailVersion"] not in (
            self.version,
            "DRAFT",
        ):
            raise ApiError(
                "ResourceNotFoundException", f"Guardrail {gid} version {p['guardrailVersion']} not found", 404
            )
        blocks = [b["text"] for b in content]
        total = sum(len(b["text"]) for b in blocks)
        if total > TEXT_MAX_CHARS:
            raise ApiError(
                "ValidationException", f"content has {total} characters; the maximum is {TEXT_MAX_CHARS}"
            )
        # Blocks qualified only as grounding source / query feed contextual
        # grounding, which the other policies do not evaluate.
        guarded = [b["text"] for b in blocks if not b.get("qualifiers") or "guard_content" in b["qualifiers"]]
        full = p.get("outputScope") == "FULL"
        filters = self._filters(guarded, source, full)
        pii: list[dict] = []
        outputs: list[dict] = []
        blocked = any(f["action"] == "BLOCKED" for f in filters)
        for text in guarded:
            masked, found = self._pii(text)
            pii.extend(found)
            outputs.append({"text": masked})
        blocked = blocked or any(e["action"] == "BLOCKED" for e in pii)
        intervened = blocked or bool(pii)
        if blocked:
            outputs = [{"text": self.blocked_message}]
        assessment: dict[str, Any] = {}
        if filters:
            assessment["contentPolicy"] = {"filters": filters}
        if pii:
            assessment["sensitiveInformationPolicy"] = {"piiEntities": pii, "regexes": []}
        units = sum(math.ceil(len(t) / 1000) for t in guarded)
        usage = {
            "topicPolicyUnits": 0,
            "contentPolicyUnits": units,
            "wordPolicyUnits": 0,
            "sensitiveInformationPolicyUnits": units,
            "sensitiveInformationPolicyFreeUnits": 0,
            "contextualGroundingPolicyUnits": 0,
        }
        coverage = {"textCharacters": {"guarded": sum(map(len, guarded)), "total": total}}
        assessment["invocationMetrics"] = {
            "guardrailProcessingLatency": int((time.perf_counter() - started) * 1000),
            "usage": usage,
            "guardrailCoverage": coverage,
        }
        return {
            "usage": usage,
            "action": "GUARDRAIL_INTERVENED" if intervened else "NONE",
            "actionReason": "Guardrail blocked." if intervened else "No action.",
            "outputs": outputs if intervened else [],
            "assessments": [assessment],
            "guardrailCoverage": coverage,
        }

    def _filters(self, texts: list[str], source: str, full: bool) -> list[dict]:
        best = dict.fromkeys(CONTENT_FILTERS, 0.0)
        for text in texts:
            for name, score in (self.content_scorer(text) or {}).items():
                if name in best:
                    best[name] = max(best[name], float(score))
        if source != "INPUT":
            del best["PROMPT_ATTACK"]  # Bedrock applies prompt-attack filtering to inputs only
        out = []
        for name, score in best.items():
            level = _confidence(score)
            hit = level >= _BLOCKS_FROM[self.filter_strength]
            if hit or full:
                out.append(
                    {
                        "type": name,
                        "confidence": _LEVELS[level],
                        "filterStrength": self.filter_strength,
                        "action": "BLOCKED" if hit else "NONE",
                        "detected": hit,
                    }
                )
        return out

    def _pii(self, text: str) -> tuple[str, list[dict]]:
        action = "ANONYMIZED" if self.pii_action == "ANONYMIZE" else "BLOCKED"
        spans = sorted(self.pii_detector(text), key=lambda e: e["BeginOffset"])
        found, pieces, pos = [], [], 0
        for e in spans:
            begin, end = int(e["BeginOffset"]), int(e["EndOffset"])
            if begin < pos:
                continue  # overlapping span: the earlier one already masked it
            kind = PII_TYPE_MAP.get(e["Type"], e["Type"])
            found.append({"match": text[begin:end], "type": kind, "action": action, "detected": True})
            pieces += [text[pos:begin], f"{{{kind}}}"]
            pos = end
        return "".join(pieces) + text[pos:], found
