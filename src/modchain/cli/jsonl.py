"""JSON Lines input for ``modchain moderate`` (one ``{"text": ...}`` row per line), and how results print.

Rows are read lazily and moderated in batches so remote backends pack requests and output streams;
a bad row stops the run (``--on-error stop``) or is recorded and skipped (``--on-error skip``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from modchain.cli.common import EXIT_BLOCKED, EXIT_OK, EXIT_ROWS_FAILED

#: Rows per backend call in JSON Lines mode: large enough to pack remote requests, small enough to stream.
BATCH_SIZE = 64
PROGRESS_MIN_ROWS = 200


def without_bom(lines: Iterable[str]) -> Iterator[str]:
    """The lines with a leading UTF-8 byte order mark dropped (Windows editors write one; it is not text and
    would otherwise break the first row's JSON or end up in the sanitized output)."""
    first = True
    for line in lines:
        yield line.removeprefix("\ufeff") if first else line
        first = False


def print_result(result: Any, out: TextIO, label: str = "") -> None:
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


def result_record(result: Any) -> dict[str, Any]:
    record = result.summary()
    record["sanitized"] = result.sanitized_text if result.allowed else None
    return record


def _read_rows(stream: TextIO, text_key: str, *, skip: bool = False) -> Iterator[tuple[int, Any]]:
    """``(line, row)`` per non-blank line; a bad row raises :class:`InputError`, or with ``skip`` comes as
    ``(line, InputError)`` in its place so the rows after it are still moderated."""
    from modchain.core.errors import InputError

    for line_no, line in enumerate(without_bom(stream), 1):
        if not line.strip():
            continue
        problem = None
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:  # exc.msg names the syntax error, never the line's text
            problem = f"not valid JSON ({exc.msg})"
        except RecursionError:
            problem = "JSON nested too deeply"
        else:
            if isinstance(row, str):
                row = {text_key: row}
            if not isinstance(row, dict) or not isinstance(row.get(text_key), str):
                problem = f"expected a JSON string or an object with a string {text_key!r}"
        if problem is None:
            yield line_no, row
        elif skip:
            yield line_no, InputError(problem)
        else:
            raise InputError(f"line {line_no}: {problem}")


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


def moderate_rows(chain: Any, stream: TextIO, args: argparse.Namespace, out: TextIO) -> int:
    if args.workers > 1:
        from modchain.text.parallel import ProcessModerator

        with ProcessModerator(chain.config, processes=args.workers) as moderator:
            return _write_rows(moderator, stream, args, out, BATCH_SIZE * args.workers * 8)
    return _write_rows(chain, stream, args, out, BATCH_SIZE)


def _write_rows(chain: Any, stream: TextIO, args: argparse.Namespace, out: TextIO, batch_size: int) -> int:
    from tqdm import tqdm

    skip = getattr(args, "on_error", "stop") == "skip"
    blocked, failed, total = False, [], 0
    rows = _read_rows(stream, args.text_key, skip=skip)
    show = not args.no_progress and sys.stderr.isatty()
    progress = tqdm(unit="row", disable=not show, file=sys.stderr, miniters=PROGRESS_MIN_ROWS)
    with progress:
        for chunk in _chunks(rows, batch_size):
            if isinstance(chunk, Exception):
                raise chunk
            texts = [row[args.text_key] for _, row in chunk if isinstance(row, dict)]
            results = iter(_moderate_chunk(chain, texts, skip))
            for line_no, row in chunk:
                result = next(results) if isinstance(row, dict) else row
                total += 1
                if isinstance(result, Exception):
                    failed.append(line_no)
                    _row_error(out, line_no, result, args.json)
                    continue
                blocked |= not result.allowed
                if args.json:
                    extra = {k: v for k, v in row.items() if k != args.text_key}
                    out.write(json.dumps({**extra, **result_record(result)}, ensure_ascii=False) + "\n")
                else:
                    print_result(result, out, label=f"line {line_no}: ")
            progress.update(len(chunk))
    if failed:
        shown = ", ".join(map(str, failed[:10])) + (", ..." if len(failed) > 10 else "")
        print(f"modchain: {len(failed)} of {total} rows failed and were skipped (line {shown})", file=sys.stderr)
        return EXIT_ROWS_FAILED
    return EXIT_BLOCKED if blocked else EXIT_OK


def _moderate_chunk(chain: Any, texts: list[str], skip: bool) -> list[Any]:
    """Results in order; with ``skip``, a refused chunk goes row by row: only rows at fault become errors."""
    from modchain.core.errors import InputError

    try:
        return list(chain.moderate_batch(texts))
    except InputError:
        if not skip:
            raise
    results: list[Any] = []
    for text in texts:
        try:
            results.extend(chain.moderate_batch([text]))
        except InputError as exc:
            results.append(exc)
    return results


def _row_error(out: TextIO, line_no: int, error: Exception, as_json: bool) -> None:
    # The typed error's message names positions and kinds, never the row's text (a project rule for errors).
    if as_json:
        out.write(json.dumps({"line": line_no, "error": {"type": type(error).__name__, "message": str(error)}}) + "\n")
    else:
        out.write(f"line {line_no}: ERROR {type(error).__name__}: {error}\n")


