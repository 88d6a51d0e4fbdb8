"""Reading a verdict out of a model's JSON answer, tolerantly.

Models wrap JSON in prose and markdown fences, write Python literals (``{'flag': True}``), leave trailing
commas, capitalize keys, think aloud in ``<think>`` blocks, or echo a JSON object from the content under review
before giving their own. :func:`parse_json_verdict` takes the first balanced ``{...}`` object (braces inside
strings do not count) that validates as the given :class:`~modchain.core.verdict.Verdict` subclass, and
otherwise raises :class:`~modchain.core.verdict.VerdictParseError` with a reason fit to send back to the model
(validation messages never quote the answer).
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from modchain.core.verdict import VerdictParseError, strip_reasoning

__all__ = ["describe_validation_error", "json_objects", "parse_json_verdict"]

M = TypeVar("M", bound=BaseModel)


def json_objects(text: str) -> list[str]:
    """Every balanced ``{...}`` substring, in order of their opening brace, nested ones included (braces inside
    JSON strings do not count)."""
    found = []
    for start in (m.start() for m in re.finditer(r"\{", text)):
        depth, in_string, escaped = 0, None, False
        for i in range(start, len(text)):
            ch = text[i]
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == in_string:
                    in_string = None
            elif ch == '"':
                in_string = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    found.append(text[start:i + 1])
                    break
    return found


def _load(candidate: str) -> Any:
    try:
        return json.loads(candidate)
    except ValueError:
        pass
    try:  # {'flag': True, ...}: Python literals
        return ast.literal_eval(candidate)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    try:  # trailing commas
        return json.loads(re.sub(r",\s*([}\]])", r"\1", candidate))
    except ValueError:
        return None


def describe_validation_error(exc: ValidationError) -> str:
    """A pydantic validation error as ``field: reason; ...`` without the offending input."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(x) for x in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts) or "invalid verdict"


def parse_json_verdict(output: str, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """The first ``{...}`` object in ``output`` that validates as ``model`` (keys matched case-insensitively;
    ``context`` is passed to its validators)."""
    text = strip_reasoning(output or "")
    if not text.strip():
        raise VerdictParseError("the answer was empty")
    first_error: str | None = None
    saw_object = False
    for candidate in json_objects(text):
        data = _load(candidate)
        if not isinstance(data, dict):
            continue
        saw_object = True
        lowered = {str(k).strip().lower(): v for k, v in data.items()}
        try:
            return model.model_validate(lowered, context=context)
        except ValidationError as exc:
            first_error = first_error or describe_validation_error(exc)
    if first_error:
        raise VerdictParseError(f"the JSON object is not a valid verdict ({first_error})")
    if saw_object:
        raise VerdictParseError("the JSON object is not a valid verdict")
    raise VerdictParseError("no JSON object was found in the answer")
