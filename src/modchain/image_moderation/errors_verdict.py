"""The error an :class:`~modchain.image_moderation.verdict.LlmVerdict` raises when the model never gave a usable verdict.

Both now live in the judge core, :mod:`modchain.core.verdict`, shared with the text judge; this module keeps
the old import path working.
"""

from __future__ import annotations

from modchain.core.verdict import VerdictAttempt, VerdictError
from modchain.core.verdict import _rebuild as _rebuild  # named by errors pickled before the move

__all__ = ["VerdictAttempt", "VerdictError"]
