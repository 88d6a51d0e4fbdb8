"""A text filter turns a backend's scores into a decision under one filter config."""

from __future__ import annotations

from typing import Any, ClassVar

from modchain.core.errors import VIOLATION_BY_FILTER, ModerationViolation
from modchain.core.results import Finding

#: Actions that rewrite the text, so a later filter's input depends on this filter's result.
REWRITING_ACTIONS = frozenset({"redact", "anonymize"})


class TextFilter:
    """Selects the findings a config cares about and applies the config's action to one text."""

    kind: ClassVar[str] = ""

    def __init__(self, config: Any) -> None:
        self.config = config
        self._labels = frozenset(getattr(config, "labels", ()) or ())

    @property
    def violation(self) -> type[ModerationViolation]:
        return VIOLATION_BY_FILTER[self.kind]

    @property
    def rewrites_text(self) -> bool:
        """Whether this filter may change the text later filters see (``redact``, ``anonymize``)."""
        return getattr(self.config, "action", None) in REWRITING_ACTIONS

    def select(self, findings: list[Finding]) -> list[Finding]:
        threshold = self.config.threshold
        labels = self._labels
        return [f for f in findings if f.score >= threshold and (not labels or f.label in labels)]

    def blocks(self, selected: list[Finding]) -> bool:
        return self.config.action == "block" and bool(selected)

    def apply(self, text: str, selected: list[Finding], *, vault: Any = None, scope: str = "") -> str:
        """The text after this filter's action; detection-only filters return it unchanged."""
        return text
