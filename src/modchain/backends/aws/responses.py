"""Shape checks for the AWS responses the text backends read: a malformed answer is an error, never "nothing found".

botocore parses a response body by the service model but does not enforce it: a missing list, a null, a
string where a number belongs all reach us as they came. Read with ``.get(..., [])`` defaults, ``{}`` would
mean "no PII" and an offset past the text would mask the wrong characters, leaving the SSN in place. Each
function here takes the parsed response, checks every field the backend uses, and returns plain values or
raises :class:`BackendError`.

Decisions:
* A malformed response is a plain ``BackendError`` (``retryable`` False): it comes from a service or
  protocol fault that an immediate retry would meet again. Retryable kinds stay for throttling, timeouts
  and 5xx (an undecodable 5xx body included, see ``common``).
* Label and type names must look like the service's enums (``UPPER_SNAKE``): a lowercase ``ssn`` would slip
  past a filter configured for ``SSN``. Unknown but well-formed PII entity types, toxicity labels and
  guardrail content-filter types are kept as findings under their own name: AWS adds types over time,
  and rejecting them would fail every call, while dropping them would hide what was found.
* Prompt-safety classes are exactly ``SAFE_PROMPT`` / ``UNSAFE_PROMPT`` and ``UNSAFE_PROMPT`` must be
  present: the service always returns both, and a verdict with no unsafe score is no verdict.
* Messages name the operation, the field and an index, never a value from the response: responses can
  echo the user's text (a guardrail's ``match``, a mangled ``Type``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from modchain.core.errors import BackendError

_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,99}")
PROMPT_CLASSES = frozenset({"SAFE_PROMPT", "UNSAFE_PROMPT"})
GUARDRAIL_ACTIONS = frozenset({"NONE", "GUARDRAIL_INTERVENED"})
GUARDRAIL_CONFIDENCES = frozenset({"NONE", "LOW", "MEDIUM", "HIGH"})
#: Actions a guardrail reports per finding (the service model's enums, plus NONE for "detected, not acted on").
FILTER_ACTIONS = frozenset({"BLOCKED", "NONE"})
PII_ACTIONS = frozenset({"ANONYMIZED", "BLOCKED", "NONE"})
#: Policies the backend does not map to findings; an entry in one still explains an intervention.
_OTHER_POLICIES = ("topicPolicy", "wordPolicy", "contextualGroundingPolicy", "automatedReasoningPolicy")


class _Check:
    """Raises uniform, value-free errors for one backend operation."""

    def __init__(self, backend: str, operation: str) -> None:
        self.backend, self.operation = backend, operation

    def fail(self, what: str) -> BackendError:
        return BackendError(f"{self.backend} {self.operation}: malformed response: {what}",
                            backend=self.backend, operation=self.operation)

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{where} is {_kind(value)}, not an object")
        return value

    def items(self, parent: dict[str, Any], key: str, where: str) -> list[Any]:
        value = parent.get(key)
        if not isinstance(value, list):
            raise self.fail(f"{where}{key} is {_kind(value)}, not a list")
        return value

    def name(self, parent: dict[str, Any], key: str, where: str) -> str:
        value = parent.get(key)
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            raise self.fail(f"{where}{key} is {_kind(value)}, not an UPPER_SNAKE name")
        return value

    def score(self, parent: dict[str, Any], key: str, where: str) -> float:
        value = parent.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            # NaN fails the range test too: every comparison with it is False.
            raise self.fail(f"{where}{key} is {_kind(value)}, not a number in [0, 1]")
        return float(value)

    def offset(self, parent: dict[str, Any], key: str, where: str) -> int:
        value = parent.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{where}{key} is {_kind(value)}, not an integer")
        return value

    def choice(self, parent: dict[str, Any], key: str, allowed: frozenset[str], where: str) -> str:
        value = parent.get(key)
        if not isinstance(value, str) or value not in allowed:  # isinstance first: a list is unhashable
            raise self.fail(f"{where}{key} is {_kind(value)} outside {sorted(allowed)}")
        return value


def _kind(value: Any) -> str:
    """What a bad value is, without quoting it."""
    if value is None:
        return "missing or null"
    if isinstance(value, float) and not math.isfinite(value):
        return "a non-finite number"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    if isinstance(value, str):
        return "an unexpected string" if value else "an empty string"
    return f"a {type(value).__name__}"


# -- Comprehend ---------------------------------------------------------------------------------------------

def pii_entities(response: Any, text_length: int, *, backend: str = "comprehend",
                 operation: str = "DetectPiiEntities") -> list[tuple[str, int, int, float]]:
    """``(type, begin, end, score)`` per entity of a DetectPiiEntities response for a ``text_length`` text."""
    check = _Check(backend, operation)
    found = []
    for n, entity in enumerate(check.items(check.obj(response, "response"), "Entities", "")):
        where = f"Entities[{n}]."
        entity = check.obj(entity, where[:-1])
        label = check.name(entity, "Type", where)
        score = check.score(entity, "Score", where)
        begin, end = check.offset(entity, "BeginOffset", where), check.offset(entity, "EndOffset", where)
        if not 0 <= begin < end <= text_length:
            raise check.fail(f"{where}BeginOffset/EndOffset are not 0 <= begin < end <= {text_length}")
        found.append((label, begin, end, score))
    return found


def toxicity_results(response: Any, segments: int, *, backend: str = "comprehend",
                     operation: str = "DetectToxicContent") -> list[list[tuple[str, float]]]:
    """Per segment sent, its ``(label, score)`` pairs; one result per segment, or an error."""
    check = _Check(backend, operation)
    results = check.items(check.obj(response, "response"), "ResultList", "")
    if len(results) != segments:
        # A short answer must not read as "nothing toxic in the rest".
        raise check.fail(f"{len(results)} results for {segments} segments")
    out = []
    for n, item in enumerate(results):
        where = f"ResultList[{n}]."
        item = check.obj(item, where[:-1])
        labels = check.items(item, "Labels", where)
        if not labels:
            raise check.fail(f"{where}Labels is empty (the service scores every label)")
        if item.get("Toxicity") is not None:
            check.score(item, "Toxicity", where)
        pairs = []
        for k, label in enumerate(labels):
            label = check.obj(label, f"{where}Labels[{k}]")
            pairs.append((check.name(label, "Name", f"{where}Labels[{k}]."),
                          check.score(label, "Score", f"{where}Labels[{k}].")))
        out.append(pairs)
    return out


def prompt_classes(response: Any, *, backend: str = "comprehend",
                   operation: str = "ClassifyDocument") -> list[tuple[str, float]]:
    """The ``(name, score)`` classes of a prompt-safety ClassifyDocument response, UNSAFE_PROMPT included."""
    check = _Check(backend, operation)
    classes = check.items(check.obj(response, "response"), "Classes", "")
    pairs: dict[str, float] = {}
    for n, cls in enumerate(classes):
        where = f"Classes[{n}]."
        cls = check.obj(cls, where[:-1])
        name = check.choice(cls, "Name", PROMPT_CLASSES, where)
        if name in pairs:
            raise check.fail(f"{where}Name repeats an earlier class")
        pairs[name] = check.score(cls, "Score", where)
    if "UNSAFE_PROMPT" not in pairs:
        raise check.fail("Classes has no UNSAFE_PROMPT score")
    return list(pairs.items())


# -- Bedrock ApplyGuardrail ---------------------------------------------------------------------------------

def guardrail_response(response: Any, *, backend: str = "bedrock", operation: str = "ApplyGuardrail") -> dict:
    """Check an ApplyGuardrail response's action and every policy finding the backend reads; return it."""
    check = _Check(backend, operation)
    response = check.obj(response, "response")
    action = check.choice(response, "action", GUARDRAIL_ACTIONS, "")
    assessments = check.items(response, "assessments", "")
    seen = 0
    for n, assessment in enumerate(assessments):
        where = f"assessments[{n}]."
        assessment = check.obj(assessment, where[:-1])
        seen += _content_policy(check, assessment, where)
        seen += _sensitive_policy(check, assessment, where)
        seen += sum(1 for key in _OTHER_POLICIES if isinstance(assessment.get(key), dict) and any(assessment[key].values()))
    if action == "GUARDRAIL_INTERVENED" and not seen:
        # An intervention with nothing to show for it: reading it as "no findings" would allow what was blocked.
        raise check.fail("action is GUARDRAIL_INTERVENED but no assessment holds a finding")
    return response


def _content_policy(check: _Check, assessment: dict[str, Any], where: str) -> int:
    if assessment.get("contentPolicy") is None:
        return 0
    where = f"{where}contentPolicy."
    policy = check.obj(assessment["contentPolicy"], where[:-1])
    filters = check.items(policy, "filters", where)
    for n, item in enumerate(filters):
        at = f"{where}filters[{n}]."
        item = check.obj(item, at[:-1])
        check.name(item, "type", at)
        check.choice(item, "confidence", GUARDRAIL_CONFIDENCES, at)
        check.choice(item, "action", FILTER_ACTIONS, at)
        if item.get("detected") is not None and not isinstance(item["detected"], bool):
            raise check.fail(f"{at}detected is {_kind(item['detected'])}, not a boolean")
    return len(filters)


def _sensitive_policy(check: _Check, assessment: dict[str, Any], where: str) -> int:
    if assessment.get("sensitiveInformationPolicy") is None:
        return 0
    where = f"{where}sensitiveInformationPolicy."
    policy = check.obj(assessment["sensitiveInformationPolicy"], where[:-1])
    count = 0
    for key, name_key in (("piiEntities", "type"), ("regexes", "name")):
        if policy.get(key) is None:
            continue  # the service omits a list it has nothing for
        for n, entry in enumerate(check.items(policy, key, where)):
            at = f"{where}{key}[{n}]."
            entry = check.obj(entry, at[:-1])
            if key == "piiEntities":
                check.name(entry, name_key, at)
            elif not isinstance(entry.get(name_key), str) or not entry[name_key]:
                raise check.fail(f"{at}{name_key} is {_kind(entry.get(name_key))}, not a name")
            if not isinstance(entry.get("match"), str):
                raise check.fail(f"{at}match is {_kind(entry.get('match'))}, not a string")
            check.choice(entry, "action", PII_ACTIONS, at)
            count += 1
    return count
