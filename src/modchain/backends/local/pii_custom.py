"""Custom PII recognizers: the protocol a Python recognizer implements, and the pattern recognizer a config builds.

A recognizer is any object with ``labels`` (the labels it can report) and ``find(text)`` (an iterable of
:class:`~modchain.backends.local.pii_common.PiiMatch` spans of ``text``). ``find_pii`` runs it next to the
built-in recognizers, on the same normalized text (separators, full-width digits, ...: see
``pii_normalize``), with its spans mapped back to the original and the same overlap resolution.

Without code, a :class:`~modchain.core.config.PiiRecognizerConfig` (the ``recognizers`` list of a PII
filter config) becomes a :class:`PatternRecognizer`::

    {"label": "EMPLOYEE_ID", "pattern": "EMP-\\\\d{6}", "context": ["employee"], "validator": "luhn", "score": 0.9}

Patterns must pass :func:`modchain.core.pattern_safety.check_linear_pattern` (bounded quantifiers, no
backreferences or lookaround), so a recognizer stays linear in the input. Validators: ``luhn``,
``verhoeff``, ``damm`` (on the digits of the value), ``mod97`` (ISO 7064 mod 97-10, as IBANs), ``iban``,
or ``stdnum:<module>`` for any python-stdnum module (``stdnum:de.idnr``, ``stdnum:us.itin``).
If the pattern has a group named ``value``, only that group is validated (``"EMP-(?P<value>\\\\d{6})"``);
the reported span is always the whole match.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache, lru_cache
from typing import Any, Protocol, runtime_checkable

from modchain.backends.local.pii_common import PiiMatch, clean_edges, context_near
from modchain.core.errors import ConfigurationError

__all__ = ["VALIDATORS", "PatternRecognizer", "PiiRecognizer", "build_recognizers"]


@runtime_checkable
class PiiRecognizer(Protocol):
    """What ``find_pii`` runs: ``labels`` it may report, ``find(text)`` yielding spans of ``text``."""

    labels: frozenset[str]

    def find(self, text: str) -> Iterable[PiiMatch]: ...


_DIGIT_VALIDATORS = {"luhn": "luhn", "verhoeff": "verhoeff", "damm": "damm"}
_VALUE_VALIDATORS = {"mod97": "iso7064.mod_97_10", "iban": "iban"}
#: Validator names a config may give, besides ``stdnum:<module>``.
VALIDATORS: frozenset[str] = frozenset(_DIGIT_VALIDATORS) | frozenset(_VALUE_VALIDATORS)
_STDNUM_MODULE = re.compile(r"[a-z][a-z0-9_]{0,20}(?:\.[a-z][a-z0-9_]{0,30}){0,2}")


@cache
def _validator(name: str) -> Callable[[str], bool]:
    """``name`` -> a function of the matched value; ConfigurationError for an unknown name."""
    if name in _DIGIT_VALIDATORS:
        check = importlib.import_module(f"stdnum.{_DIGIT_VALIDATORS[name]}").is_valid
        return lambda value: check("".join(c for c in value if c.isdigit()) or "x")
    module = _VALUE_VALIDATORS.get(name)
    if module is None and name.startswith("stdnum:") and _STDNUM_MODULE.fullmatch(name[7:]):
        module = name[7:]
    if module is None:
        raise ConfigurationError(f"unknown validator {name!r}; use one of {sorted(VALIDATORS)} or 'stdnum:<module>'")
    try:
        is_valid = importlib.import_module(f"stdnum.{module}").is_valid
    except (ImportError, AttributeError):
        raise ConfigurationError(f"validator {name!r}: python-stdnum has no module {module!r} with is_valid") from None
    return lambda value: bool(is_valid(value))


class PatternRecognizer:
    """One label from one linear-time pattern, an optional validator and optional context words.

    ``score`` is given when a context word is within ``window`` characters (before, after) of the match, or
    when no context words are set; ``score_without_context`` otherwise (default 0.4: below the default
    threshold of 0.5, so context words make a match count only next to them)."""

    def __init__(self, label: str, pattern: str, *, context: Sequence[str] = (), validator: str | None = None,
                 score: float = 0.85, score_without_context: float = 0.4, ignore_case: bool = False,
                 window: tuple[int, int] = (50, 20)) -> None:
        from modchain.core.pattern_safety import check_linear_pattern

        flags = re.IGNORECASE if ignore_case else 0
        try:
            check_linear_pattern(pattern, flags)
        except ValueError as exc:
            raise ConfigurationError(f"custom PII recognizer {label!r}: {exc}") from None
        self.label = label
        self.labels = frozenset({label})
        self.name = f"custom:{label}"
        self._rx = re.compile(pattern, flags)
        self._value_group = "value" in self._rx.groupindex
        self._valid = _validator(validator) if validator else None
        words = [w.strip() for w in context if w.strip()]
        self._context = (re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + ")", re.IGNORECASE)
                         if words else None)
        self._score, self._weak = score, score_without_context
        self._before, self._after = window

    def find(self, text: str) -> Iterator[PiiMatch]:
        for m in self._rx.finditer(text):
            value = m.group("value") if self._value_group else m.group()
            if value is None or (self._valid is not None and not self._valid(value)):
                continue
            strong = self._context is None or context_near(self._context, text, m.start(), m.end(),
                                                           self._before, self._after)
            yield PiiMatch(self.label, m.start(), m.end(), self._score if strong else self._weak, self.name)

    def __repr__(self) -> str:  # the pattern is configuration, not personal data, but keep logs short
        return f"PatternRecognizer({self.label!r})"


def _from_config(config: Any) -> PiiRecognizer:
    if isinstance(config, PiiRecognizer) and not hasattr(config, "pattern"):
        return config
    data = config.model_dump() if hasattr(config, "model_dump") else dict(config)
    return PatternRecognizer(
        data["label"], data["pattern"], context=tuple(data.get("context") or ()), validator=data.get("validator"),
        score=data.get("score", 0.85), score_without_context=data.get("score_without_context", 0.4),
        ignore_case=data.get("ignore_case", False))


@lru_cache(maxsize=256)
def _build_cached(configs: tuple[Any, ...]) -> tuple[PiiRecognizer, ...]:
    return tuple(_from_config(c) for c in configs)


def build_recognizers(configs: Iterable[Any]) -> tuple[PiiRecognizer, ...]:
    """Recognizers from configs (``PiiRecognizerConfig``, dicts in its shape) or recognizer objects, which
    pass through. Compiled once per distinct tuple of (hashable) configs."""
    items = tuple(configs)
    try:
        return _build_cached(items)
    except TypeError:  # an unhashable item (a dict, a recognizer defining __eq__ only): build each time
        return tuple(_from_config(c) for c in items)


def run_recognizer(recognizer: PiiRecognizer, text: str) -> list[PiiMatch]:
    """A recognizer's spans that are real spans of ``text`` on token boundaries. A recognizer that raises
    becomes a BackendError naming the recognizer and the exception type only: its message may quote text."""
    from modchain.core.errors import BackendError

    try:
        found = list(recognizer.find(text))
    except Exception as exc:  # user code: anything may come out of it
        name = getattr(recognizer, "name", type(recognizer).__name__)
        raise BackendError(f"custom PII recognizer {name!r} failed ({type(exc).__name__})", backend="local") from None
    return [m for m in found if isinstance(m, PiiMatch) and 0 <= m.start < m.end <= len(text)
            and m.label in recognizer.labels and clean_edges(text, m.start, m.end)]
