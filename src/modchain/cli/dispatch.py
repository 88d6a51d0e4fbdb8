"""The ``modchain`` command.

    modchain "My SSN is 123-45-6789"          moderate a string (same as ``modchain moderate ...``)
    modchain moderate -f notes.txt             a whole file as one text
    modchain moderate -f rows.jsonl --json     JSON Lines in ({"text": ...} rows), JSON Lines out
    cat prompt.txt | modchain                  standard input
    modchain eval pii labelled.jsonl           measure a backend on a labelled file (one JSON object out)
    modchain serve blip2 --model DIR_OR_ID     run a BLIP-2 SageMaker-style endpoint (/ping, /invocations)
    modchain serve moderation -c cfg.yaml      the HTTP moderation service (needs the ``serve`` extra)
    modchain --version

Exit codes: 0 every input allowed, 1 at least one input blocked, 2 bad usage or configuration,
3 a backend failed (and the filter was not configured to fail open), 4 JSON Lines rows failed and were
skipped (``--on-error skip``; takes precedence over 1: those rows were not moderated at all), 141 the
reader of standard output went away (``modchain ... | head``; the shell's code for SIGPIPE, no traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from modchain.cli.common import EXIT_BACKEND, EXIT_BROKEN_PIPE, EXIT_USAGE, UsageError, package_version

SUBCOMMANDS = ("moderate", "eval", "serve", "screen")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each subcommand's module adds its own parser, in the order --help lists them."""
    from modchain.cli.evaluate import add_parser as add_eval_parser
    from modchain.cli.moderate import add_parser as add_moderate_parser
    from modchain.cli.screen import add_parser as add_screen_parser
    from modchain.cli.serve import add_parser as add_serve_parser

    parser = argparse.ArgumentParser(prog="modchain", description="Composable content moderation.")
    parser.add_argument("--version", action="version", version=f"modchain {package_version()}")
    sub = parser.add_subparsers(dest="command")
    add_moderate_parser(sub)
    add_eval_parser(sub)
    add_serve_parser(sub)
    add_screen_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _main(argv)
        sys.stdout.flush()  # inside the try: a closed pipe shows up here as often as in a write
        return code
    except BrokenPipeError:
        # The reader (`| head`) has what it wanted. Point stdout at /dev/null so the interpreter's own flush
        # at exit cannot fail again, and exit quietly (the pattern in Python's signal module docs).
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # stdout replaced by an object with no file descriptor
            pass
        return EXIT_BROKEN_PIPE


def _main(argv: list[str]) -> int:
    from modchain.core.errors import BackendError, ConfigurationError, InputError

    # `modchain "text"` and `modchain --json "text"` mean `modchain moderate ...`.
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["moderate", *argv]
    try:
        if argv[:2] == ["serve", "moderation"]:
            from modchain.cli.serve import serve_moderation

            return serve_moderation(argv[2:])
        args = build_parser().parse_args(argv)
        if args.command == "eval":
            from modchain.cli.evaluate import run as evaluate

            return evaluate(args, sys.stdout)
        if args.command == "serve":
            from modchain.cli.serve import run as serve

            return serve(args, sys.stdout)
        if args.command == "screen":
            from modchain.cli.screen import run as screen

            return screen(args, sys.stdout)
        from modchain.cli.moderate import run as moderate

        return moderate(args, sys.stdin, sys.stdout)
    except BrokenPipeError:
        raise  # an OSError, but not a usage error: main() exits quietly
    except (ConfigurationError, InputError, UsageError, OSError) as exc:
        print(f"modchain: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UnicodeDecodeError as exc:
        print(f"modchain: input is not UTF-8 text (byte {exc.start})", file=sys.stderr)
        return EXIT_USAGE
    except BackendError as exc:
        print(f"modchain: backend error, content not allowed through: {exc}", file=sys.stderr)
        return EXIT_BACKEND
    except Exception as exc:  # noqa: BLE001 - a crash must never read as exit 1, "blocked"
        if os.environ.get("MODCHAIN_DEBUG"):
            raise
        # Only the type: a message may quote the text being moderated.
        print(f"modchain: unexpected {type(exc).__name__}; content not allowed through "
              "(set MODCHAIN_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_BACKEND
