"""Where the windows of a moderated stream fall, and how much of the stream is safe to release.

Windows are laid over the *text* of the stream, never over its chunks: window ``k`` nominally covers
characters ``[k * step, k * step + window_chars)``. So which windows get checked depends only on the text, and
a stream cut into different chunks is judged exactly the same.

Window edges move to the nearest whitespace, so a window does not end in half a word ("anal|ysis") that a
classifier could misread: the start moves back, the end moves back too (at most ``snap`` characters each,
``snap = min(snap_chars, (window_chars - overlap_chars) // 4)``). Moving the end back, never forward, means a
window needs no text past its nominal end, so safety-first holds text back by at most one window. The step
pays for it: ``step = window_chars - overlap_chars - snap``, so every window still reaches at least
``overlap_chars`` past the next window's start, and any phrase of at most ``overlap_chars`` characters lies
whole inside some window, wherever it starts (a phrase starting in ``[k * step, (k + 1) * step)`` ends before
``(k + 1) * step + overlap_chars <= k * step + window_chars - snap``, at or before window ``k``'s end).

Release rule (safety-first): once windows ``0..k`` are checked, characters before ``(k + 1) * step`` may go
out. Every short phrase touching that prefix starts before ``(k + 1) * step``, so it was seen whole by a
checked window: an SSN split across chunks or windows is masked before any digit of it is released.

So the text before ``k * step`` is released on the verdicts of windows ``0..k-1`` alone, and window ``k``'s
redactions apply only from ``k * step`` on, although its snapped start (or a final window's context) may
reach a little further back. Those earlier characters may already be out when window ``k``'s check ends,
and whether they are depends on timing (on whether the background check of window ``k`` finished before
window ``k - 1`` was taken in); masking them only sometimes would make the released text depend on timing
and chunking. A longer entity that straddles ``k * step`` ("j|o@example.com", with an overlap shorter than
it) is masked from ``k * step`` on, the same on every run: only entities of at most ``overlap_chars`` are
guaranteed whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from modchain.core.config import StrictModel


class StreamConfig(StrictModel):
    """How a stream is moderated: mode, window size and overlap (in characters)."""

    mode: Literal["safety_first", "low_latency"] = Field(
        "safety_first",
        description="safety_first: hold text back until its window is checked, redact PII before release; "
        "low_latency: release chunks at once, check windows behind them, stop the stream on a violation.",
    )
    window_chars: int = Field(240, ge=8, description="Characters per checked window.")
    overlap_chars: int = Field(
        80, ge=0, description="Characters shared by consecutive windows: the longest phrase (or PII entity, "
        "with the context its detector needs) guaranteed to be seen whole in one window.",
    )
    snap_chars: int = Field(16, ge=0, description="How far a window edge may move to fall between words.")
    reasoning: Literal["pass", "moderate", "drop"] = Field(
        "pass",
        description="A model's reasoning in message chunks (its thinking, in content blocks or "
        "additional_kwargs; see modchain.text.streaming.reasoning): pass it on unread (the "
        "default, as tool-call chunks are: reasoning often discusses the very request it refuses), moderate "
        "it as stream text (for applications that show it), or drop it from the stream.",
    )
    low_latency_pii: Literal["stop", "report"] = Field(
        "stop",
        description="low_latency only, for PII a redact filter finds in text already released: stop the "
        "stream with a PII violation, or only report it (callbacks).",
    )

    @model_validator(mode="after")
    def _overlap_below_window(self) -> StreamConfig:
        if self.overlap_chars >= self.window_chars:
            raise ValueError(f"overlap_chars ({self.overlap_chars}) must be smaller than window_chars "
                             f"({self.window_chars})")
        return self


@dataclass(frozen=True)
class Window:
    """One span of the stream to check. ``start``/``end`` are offsets into the whole stream's text."""

    index: int
    start: int
    end: int
    text: str
    final: bool = False


class StreamWindows:
    """The stream's text so far, its redaction mask, and the next window to check. Not thread-safe: one
    stream, one owner (background checks receive :class:`Window` copies)."""

    def __init__(self, config: StreamConfig) -> None:
        self.window = config.window_chars
        self.snap = min(config.snap_chars, (config.window_chars - config.overlap_chars) // 4)
        self.step = config.window_chars - config.overlap_chars - self.snap
        self._text = ""       # the stream's text from offset _base on (older text is dropped)
        self._masked = ""     # the same text with redactions applied (equal length)
        self._base = 0
        self._next = 0        # index of the next regular window
        self.released = 0     # every character before this offset has been checked (release point)
        self.total = 0
        self.finished = False

    def append(self, text: str) -> tuple[int, int]:
        """Add a chunk's text; returns its span in the stream."""
        start = self.total
        self._text += text
        self._masked += text
        self.total += len(text)
        return start, self.total

    def _char(self, offset: int) -> str:
        return self._text[offset - self._base]

    def _snap_start(self, offset: int) -> int:
        """Move a window start back to the start of its word (at most snap_chars)."""
        lowest = max(0, offset - self.snap, self._base)
        for position in range(offset, lowest - 1, -1):
            if position == 0 or self._char(position - 1).isspace():
                return position
        return offset

    def _snap_end(self, offset: int) -> int:
        """Move a window end back to a word boundary (at most snap). Reads only text before ``offset``, so
        where a window ends never depends on how much of the stream has arrived."""
        lowest = max(offset - self.snap, self._base + 1)
        for position in range(offset, lowest - 1, -1):
            if self._char(position - 1).isspace() or (position < offset and self._char(position).isspace()):
                return position
        return offset

    def next_window(self, final: bool = False) -> Window | None:
        """The next window to check, or None until more text arrives. ``final``: the stream has ended, so
        the tail (whatever is not yet checked) forms the last window."""
        if self.finished:
            return None
        nominal = self._next * self.step
        if nominal + self.window <= self.total:
            start, end = self._snap_start(nominal), self._snap_end(nominal + self.window)
            return Window(self._next, start, end, self._slice(self._text, start, end))
        if not final or self._next * self.step >= self.total:  # no tail beyond the scheduled windows
            return None
        # The tail from the release point on, with up to one window of context before it (bounded by the
        # text kept; a start that depended on trimming would make the verdict depend on chunking).
        start = self._snap_start(max(0, nominal - self.snap, min(nominal, self.total - self.window)))
        return Window(self._next, start, self.total, self._slice(self._text, start, self.total), final=True)

    def _slice(self, text: str, start: int, end: int) -> str:
        return text[start - self._base : end - self._base]

    def schedule(self, window: Window) -> None:
        """``window`` is being checked: the next call to :meth:`next_window` gives the one after it."""
        if window.final:
            self.finished = True
        else:
            self._next = window.index + 1

    def passed(self, window: Window) -> None:
        """``window`` was checked and found acceptable (windows pass in order): advance the release point."""
        self.released = self.total if window.final else max(self.released, (window.index + 1) * self.step)

    def redact(self, window: Window, sanitized: str) -> None:
        """Copy a window's redactions (characters the moderation chain changed) into the mask, from
        ``window.index * step`` on: the text before that was released on earlier windows' verdicts (see the
        module docstring), so it is fixed by the text, never by which check finished first."""
        skip = max(0, self._base - window.start, window.index * self.step - window.start)
        offset = window.start + skip - self._base
        masked = list(self._masked[offset : offset + len(sanitized) - skip])
        for i, (before, after) in enumerate(zip(window.text[skip:], sanitized[skip:])):
            if before != after:
                masked[i] = after
        self._masked = self._masked[:offset] + "".join(masked) + self._masked[offset + len(masked):]

    def masked(self, start: int, end: int) -> str:
        return self._slice(self._masked, start, end)

    def trim(self, keep_from: int | None = None) -> None:
        """Forget text no window will need again (and, if given, nothing at or after ``keep_from``)."""
        # A final window may start snap_chars before the next nominal start and then look one more snap back,
        # reading the character before the first it could keep: that one must still be here.
        needed = max(0, self._next * self.step - 2 * self.snap - 1)
        if keep_from is not None:
            needed = min(needed, keep_from)
        drop = needed - self._base
        if drop > 4096:  # amortized: slicing strings on every chunk would be quadratic
            self._text, self._masked, self._base = self._text[drop:], self._masked[drop:], needed
