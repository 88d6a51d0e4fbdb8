"""Streaming moderation: :class:`StreamGuard` checks ``stream`` / ``astream`` output while it streams.

- :mod:`.guard`: the Runnable itself (the two release modes, where windows are checked, callbacks);
- :mod:`.windows`: :class:`StreamConfig` and where the overlapping windows fall over the streamed text;
- :mod:`.checks`: checking one window with a ModerationChain (verdict, callback event, violation);
- :mod:`.chunks`: the text of a streamed chunk, and the chunk with redacted text put back;
- :mod:`.reasoning`: where a message chunk carries a model's reasoning, in the shapes providers use;
- :mod:`.violations`: the violations that stop a stream (defined in :mod:`modchain.core.errors`).

``from modchain.text.streaming import StreamGuard`` keeps working now that this is a package (it was one
module). Patch names where they are used, in the submodule (``modchain.text.streaming.guard``), not here.
"""

from modchain.text.streaming.guard import StreamGuard
from modchain.text.streaming.violations import (
    StreamPiiViolation,
    StreamPromptSafetyViolation,
    StreamToxicityViolation,
    StreamViolation,
)
from modchain.text.streaming.windows import StreamConfig

__all__ = ["StreamConfig", "StreamGuard", "StreamPiiViolation", "StreamPromptSafetyViolation",
           "StreamToxicityViolation", "StreamViolation"]
