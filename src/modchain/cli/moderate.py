"""``modchain moderate`` (the default command): a string, a file or standard input, one text or JSON Lines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from modchain.cli.common import (
    EXIT_BLOCKED,
    EXIT_OK,
    UsageError,
    add_backend_arguments,
    moderation_config,
    positive_int,
)

#: A single text at least this large (bytes) gets an elapsed-time line on a terminal's standard error.
PROGRESS_MIN_BYTES = 1_000_000


def add_parser(sub: Any) -> argparse.ArgumentParser:
    mod = sub.add_parser("moderate", help="moderate text (the default command)",
                         description="Moderate a string, a file or standard input for PII, toxicity and "
                         "prompt safety. Offline by default: no AWS account, no model download.")
    mod.add_argument("text", nargs="?", help="text to moderate; omit to read --file or standard input")
    mod.add_argument("-f", "--file", help="read from this file ('-' for standard input)")
    mod.add_argument("--jsonl", action="store_true",
                     help="treat the input as JSON Lines, one {\"text\": ...} object (or string) per line; "
                     "implied for files ending in .jsonl")
    mod.add_argument("--text-key", default="text", help="key holding the text in JSON Lines rows")
    mod.add_argument("--on-error", choices=("stop", "skip"), default="stop",
                     help="JSON Lines: a bad row (not JSON, no string text, refused by the chain) stops the run "
                     "with exit 2 (stop, the default), or is recorded as {\"line\": N, \"error\": {...}} and "
                     "skipped, with a summary on standard error and exit 4 (skip)")
    mod.add_argument("--json", action="store_true", help="print machine-readable JSON (one object per input)")
    mod.add_argument("-c", "--config", help="YAML file with a ModerationConfig (filters, backend, fail_open)")
    add_backend_arguments(mod, "override the config's backend: local, comprehend, bedrock, or a registered one")
    mod.add_argument("--fail-open", action="store_true", help="let content through when a backend fails")
    mod.add_argument("--conversation-id", metavar="ID",
                     help="conversation scope for anonymize filters (placeholders such as [EMAIL_1] are numbered "
                     "per conversation; required by configs that anonymize)")
    mod.add_argument("--no-progress", action="store_true",
                     help="never show progress (shown on a terminal for JSON Lines and texts over 1 MB)")
    mod.add_argument("--workers", type=positive_int, default=1,
                     help="JSON Lines: moderate in this many processes (offline backend: one per core)")
    return mod


def build_chain(args: argparse.Namespace) -> Any:
    from modchain.text.chain import ModerationChain

    config = moderation_config(args)
    if args.conversation_id is None and any(getattr(f, "action", None) == "anonymize" for f in config.filters):
        raise UsageError("this config anonymizes, which numbers placeholders per conversation: "
                         "give --conversation-id ID")
    # The chain's unique_id is its default conversation scope (what anonymize numbers placeholders in).
    return ModerationChain(config, unique_id=args.conversation_id)


def read_text(source: str | None, stdin: TextIO) -> str:
    """A whole file or standard input as one text, without a leading UTF-8 byte order mark (not text: it
    would otherwise come back in the sanitized output)."""
    if source and source != "-":
        return Path(source).read_text(encoding="utf-8-sig")
    if stdin.isatty():
        raise UsageError("no input (give TEXT, --file, or pipe text to standard input)")
    return stdin.read().removeprefix("\ufeff")


class Working:
    """A one-line "moderating 5.0 MB ... 12 s" on a terminal's standard error while a large text is moderated:
    the offline chain takes seconds per megabyte and would otherwise look hung. The elapsed time is all it
    claims (the chain reports no fraction done); nothing is written when standard error is not a terminal."""

    def __init__(self, size: int, err: TextIO, *, enabled: bool = True, interval: float = 1.0) -> None:
        import threading

        self.size, self.err, self.interval = size, err, interval
        self.enabled = enabled and size >= PROGRESS_MIN_BYTES and err.isatty()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import time

        started = time.monotonic()
        while not self._done.wait(self.interval):
            self.err.write(f"\rmodchain: moderating {self.size / 1e6:.1f} MB ... {time.monotonic() - started:.0f} s")
            self.err.flush()
        self.err.write("\r\033[K")  # clear the line for the output that follows
        self.err.flush()

    def __enter__(self) -> Working:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._done.set()
            self._thread.join()


def run(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    from modchain.cli.jsonl import moderate_rows, print_result, result_record

    chain = build_chain(args)
    source = args.file
    if args.text is not None and source:
        raise UsageError("give either TEXT or --file, not both")
    jsonl = args.jsonl or bool(source and source.endswith(".jsonl"))
    if args.text is not None:
        text = args.text
    elif jsonl:
        if source and source != "-":
            with open(source, encoding="utf-8") as stream:
                return moderate_rows(chain, stream, args, out)
        return moderate_rows(chain, stdin, args, out)
    else:
        text = read_text(source, stdin)
    with Working(len(text.encode("utf-8", "surrogatepass")), sys.stderr, enabled=not args.no_progress):
        result = chain.moderate(text)
    if args.json:
        out.write(json.dumps(result_record(result), ensure_ascii=False) + "\n")
    else:
        print_result(result, out)
    return EXIT_OK if result.allowed else EXIT_BLOCKED
