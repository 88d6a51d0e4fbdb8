"""Typed errors of the visual chain, in the tree of :mod:`modchain.core.errors`.

Messages name ids, counts and stage names only; never query text (it may describe a person), image bytes
or pixels.
"""

from __future__ import annotations

from modchain.core.errors import BackendError, ImageInputError, InputError


class UnknownImageError(ImageInputError, KeyError):
    """The image store has no image under this id."""

    def __str__(self) -> str:  # KeyError would quote the message a second time
        return str(self.args[0]) if self.args else "unknown image id"


class EmptyQueryError(InputError):
    """A visual-chain request with no query phrase and no prompts: nothing to detect or segment."""


class VisualStageError(BackendError):
    """A detector or segmenter failed with an error that was not already a :class:`BackendError`.

    ``stage`` is ``"detection"``, ``"segmentation"`` or ``"embedding"``; the original exception is the
    ``__cause__``. Raised (fail closed) unless the chain is configured with ``fail_open``.
    """

    def __init__(self, message: str, *, stage: str, backend: str = "") -> None:
        super().__init__(message, backend=backend, operation=stage)
        self.stage = stage
