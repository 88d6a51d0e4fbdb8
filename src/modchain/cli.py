"""The ``modchain`` command.

    modchain "My SSN is 123-45-6789"          moderate a string (same as ``modchain moderate ...``)
    modchain moderate -f notes.txt             a whole file as one text
    modchain moderate -f rows.jsonl --json     JSON Lines in ({"text": ...} rows), JSON Lines out
    cat prompt.txt | modchain                  standard input

Exit codes: 0 every input allowed, 1 at least one input blocked, 2 bad usage or configuration,
3 a backend failed (and the filter was not configured to fail open).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

EXIT_OK, EXIT_BLOCKED, EXIT_USAGE, EXIT_BACKEND = 0, 1, 2, 3
SUBCOMMANDS = ("moderate",)
#: Rows per backend call in JSON Lines mode: large enough to pack remote requests, small enough to stream.
BATCH_SIZE = 64
PROGRESS_MIN_ROWS = 200


class UsageError(Exception):
    """A command line that cannot work (exit code 2, like argparse's own errors)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modchain", description="Composable content moderation.")
    sub = parser.add_subparsers(dest="command")
    mod = sub.add_parser("moderate", help="moderate text (the default command)",
                         description="Moderate a string, a file or standard input for PII, toxicity and "
                         "prompt safety. Offline by default: no AWS account, no model download.")
    mod.add_argument("text", nargs="?", help="text to moderate; omit to read --file or standard input")
    mod.add_argument("-f", "--file", help="read from this file ('-' for standard input)")
    mod.add_argument("--jsonl", action="store_true",
                     help="treat the input as JSON Lines, one {\"text\": ...} object (or string) per line; "
                     "implied for files ending in .jsonl")
    mod.add_argument("--text-key", default="text", help="key holding the text in JSON Lines rows")
    mod.add_argument("--json", action="store_true", help="print machine-readable JSON (one object per input)")
    mod.add_argument("-c", "--config", help="YAML file with a ModerationConfig (filters, backend, fail_open)")
    mod.add_argument("--backend", help="override the config's backend: local, comprehend, bedrock, or a registered one")
    mod.add_argument("--region", help="AWS region for remote backends")
    mod.add_argument("--endpoint-url", help="AWS endpoint override (VPC endpoints, local emulators)")
    mod.add_argument("--guardrail-id", help="Bedrock guardrail id (bedrock backend)")
    mod.add_argument("--guardrail-version", help="Bedrock guardrail version (default DRAFT)")
    mod.add_argument("--fail-open", action="store_true", help="let content through when a backend fails")
    mod.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    return parser


def _build_chain(args: argparse.Namespace) -> Any:
    from modchain.core.config import ModerationConfig
    from modchain.text.chain import ModerationChain

    config = ModerationConfig.from_yaml(args.config) if args.config else ModerationConfig()
    backend_updates = {k: v for k, v in {
        "name": args.backend, "region_name": args.region, "endpoint_url": args.endpoint_url,
        "guardrail_id": args.guardrail_id, "guardrail_version": args.guardrail_version,
    }.items() if v is not None}
    if backend_updates or args.fail_open:
        # Round-trip through a dict so command-line values are validated like values from a file.
        data = config.model_dump()
        data["backend"].update(backend_updates)
        data["fail_open"] = data["fail_open"] or args.fail_open
        config = ModerationConfig.from_dict(data)
    return ModerationChain(config)


def _read_rows(stream: TextIO, text_key: str) -> Iterator[tuple[int, dict[str, Any]]]:
    from modchain.core.errors import InputError

    for line_no, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {line_no}: not valid JSON ({exc.msg})") from None
        if isinstance(row, str):
            row = {text_key: row}
        if not isinstance(row, dict) or not isinstance(row.get(text_key), str):
            raise InputError(f"line {line_no}: expected a JSON string or an object with a string {text_key!r}")
        yield line_no, row


def _chunks(rows: Iterator[Any], size: int) -> Iterator[list[Any] | Exception]:
    """Rows in chunks; a bad row first yields the good rows read before it, then the error itself."""
    chunk: list[Any] = []
    try:
        for row in rows:
            chunk.append(row)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    except Exception as exc:  # noqa: BLE001 - re-raised by the consumer after the rows before it
        if chunk:
            yield chunk
        yield exc
        return
    if chunk:
        yield chunk


def _human(result: Any, out: TextIO, label: str = "") -> None:
    status = "ALLOWED" if result.allowed else f"BLOCKED by {result.blocked_by}"
    out.write(f"{label}{status}\n")
    for f in result.findings:
        span = f" chars {f.start}-{f.end}" if f.start is not None else ""
        where = f" text {f.text_index}" if f.text_index else ""
        kind = f" ({f.category})" if f.category else ""
        out.write(f"  {f.filter:<13} {f.label:<22} score={f.score:.2f}{where}{span}{kind}\n")
    for fr in result.filters:
        if fr.error:
            out.write(f"  {fr.filter:<13} backend error {fr.error} (failed open)\n")
    if result.allowed:
        out.write(f"sanitized: {result.sanitized_text}\n")


def _record(result: Any) -> dict[str, Any]:
    record = result.summary()
    record["sanitized"] = result.sanitized_text if result.allowed else None
    return record


def _moderate_rows(chain: Any, stream: TextIO, args: argparse.Namespace, out: TextIO) -> int:
    from tqdm import tqdm

    blocked = False
    rows = _read_rows(stream, args.text_key)
    show = not args.no_progress and sys.stderr.isatty()
    progress = tqdm(unit="row", disable=not show, file=sys.stderr, miniters=PROGRESS_MIN_ROWS)
    with progress:
        for chunk in _chunks(rows, BATCH_SIZE):
            if isinstance(chunk, Exception):
                raise chunk
            results = chain.moderate_batch([row[args.text_key] for _, row in chunk])
            for (line_no, row), result in zip(chunk, results):
                blocked |= not result.allowed
                if args.json:
                    extra = {k: v for k, v in row.items() if k != args.text_key}
                    out.write(json.dumps({**extra, **_record(result)}, ensure_ascii=False) + "\n")
                else:
                    _human(result, out, label=f"line {line_no}: ")
            progress.update(len(chunk))
    return EXIT_BLOCKED if blocked else EXIT_OK


def moderate(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    chain = _build_chain(args)
    source = args.file
    if args.text is not None and source:
        raise UsageError("give either TEXT or --file, not both")
    jsonl = args.jsonl or bool(source and source.endswith(".jsonl"))
    if args.text is not None:
        text = args.text
    elif jsonl:
        if source and source != "-":
            with open(source, encoding="utf-8") as stream:
                return _moderate_rows(chain, stream, args, out)
        return _moderate_rows(chain, stdin, args, out)
    elif source and source != "-":
        text = Path(source).read_text(encoding="utf-8")
    else:
        if stdin.isatty():
            raise UsageError("no input (give TEXT, --file, or pipe text to standard input)")
        text = stdin.read()
    result = chain.moderate(text)
    if args.json:
        out.write(json.dumps(_record(result), ensure_ascii=False) + "\n")
    else:
        _human(result, out)
    return EXIT_OK if result.allowed else EXIT_BLOCKED


def main(argv: Sequence[str] | None = None) -> int:
    from modchain.core.errors import BackendError, ConfigurationError, InputError

    argv = list(sys.argv[1:] if argv is None else argv)
    # `modchain "text"` and `modchain --json "text"` mean `modchain moderate ...`.
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["moderate", *argv]
    args = _parser().parse_args(argv)
    try:
        return moderate(args, sys.stdin, sys.stdout)
    except (ConfigurationError, InputError, UsageError, OSError) as exc:
        print(f"modchain: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UnicodeDecodeError as exc:
        print(f"modchain: input is not UTF-8 text (byte {exc.start})", file=sys.stderr)
        return EXIT_USAGE
    except BackendError as exc:
        print(f"modchain: backend error, content not allowed through: {exc}", file=sys.stderr)
        return EXIT_BACKEND


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
