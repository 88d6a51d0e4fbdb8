"""Violations raised when a moderated stream is stopped: moved to :mod:`modchain.core.errors`, re-exported here."""

from modchain.core.errors import (
    STREAM_VIOLATION_BY_FILTER,
    StreamPiiViolation,
    StreamPromptSafetyViolation,
    StreamToxicityViolation,
    StreamViolation,
)

__all__ = ["STREAM_VIOLATION_BY_FILTER", "StreamPiiViolation", "StreamPromptSafetyViolation",
           "StreamToxicityViolation", "StreamViolation"]
