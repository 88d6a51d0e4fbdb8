"""Errors of safe image generation: moved to :mod:`modchain.core.errors` (one error tree), re-exported here.

The violations are named like every other one now: :class:`PromptRejectedViolation` and
:class:`UnsafeGenerationViolation`; the old names stay as aliases of the same classes.
"""

from modchain.core.errors import PromptRejectedViolation, UnsafeGenerationViolation

#: Old names (before every violation was named ``*Violation``); the same classes.
PromptRejected = PromptRejectedViolation
UnsafeGenerationError = UnsafeGenerationViolation

__all__ = ["PromptRejected", "PromptRejectedViolation", "UnsafeGenerationError", "UnsafeGenerationViolation"]
