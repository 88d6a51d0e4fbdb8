"""The ``modchain`` command.

    modchain "My SSN is 123-45-6789"          moderate a string (same as ``modchain moderate ...``)
    modchain moderate -f notes.txt             a whole file as one text
    modchain moderate -f rows.jsonl --json     JSON Lines in ({"text": ...} rows), JSON Lines out
    cat prompt.txt | modchain                  standard input
    modchain eval pii labelled.jsonl           measure a backend on a labelled file (one JSON object out)
    modchain serve blip2 --model DIR_OR_ID     run a BLIP-2 SageMaker-style endpoint (/ping, /invocations)

Exit codes: 0 every input allowed, 1 at least one input blocked, 2 bad usage or configuration,
3 a backend failed (and the filter was not configured to fail open), 4 JSON Lines rows failed and were
skipped (``--on-error skip``; takes precedence over 1: those rows were not moderated at all).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

EXIT_OK, EXIT_BLOCKED, EXIT_USAGE, EXIT_BACKEND, EXIT_ROWS_FAILED = 0, 1, 2, 3, 4
SUBCOMMANDS = ("moderate", "eval", "serve", "screen")
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
    mod.add_argument("--on-error", choices=("stop", "skip"), default="stop",
                     help="JSON Lines: a bad row (not JSON, no string text, refused by the chain) stops the run "
                     "with exit 2 (stop, the default), or is recorded as {\"line\": N, \"error\": {...}} and "
                     "skipped, with a summary on standard error and exit 4 (skip)")
    mod.add_argument("--json", action="store_true", help="print machine-readable JSON (one object per input)")
    mod.add_argument("-c", "--config", help="YAML file with a ModerationConfig (filters, backend, fail_open)")
    mod.add_argument("--backend", help="override the config's backend: local, comprehend, bedrock, or a registered one")
    mod.add_argument("--region", help="AWS region for remote backends")
    mod.add_argument("--endpoint-url", help="AWS endpoint override (VPC endpoints, local emulators)")
    mod.add_argument("--guardrail-id", help="Bedrock guardrail id (bedrock backend)")
    mod.add_argument("--guardrail-version", help="Bedrock guardrail version (default DRAFT)")
    mod.add_argument("--fail-open", action="store_true", help="let content through when a backend fails")
    mod.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    mod.add_argument("--workers", type=_positive_int, default=1,
                     help="JSON Lines: moderate in this many processes (offline backend: one per core)")
    _add_eval_parser(sub)
    _add_serve_parser(sub)
    from modchain.screening.command import add_parser as add_screen_parser

    add_screen_parser(sub)
    return parser


def _add_serve_parser(sub: Any) -> None:
    srv = sub.add_parser("serve", help="run a model behind a local SageMaker-style endpoint",
                         description="Serve a vision model with SageMaker's container contract: GET /ping, "
                         "POST /invocations, and POST /endpoints/NAME/invocations for boto3 clients.")
    models = srv.add_subparsers(dest="model_kind", required=True, metavar="{blip2,visual}")
    blip2 = models.add_parser("blip2", help="BLIP-2 visual question answering (seed and batched contracts)")
    blip2.add_argument("--model", required=True, help="BLIP-2 model id or local checkpoint directory")
    blip2.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    blip2.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    blip2.add_argument("--device", help="torch device (cpu, cuda, ...); default: cuda when available")
    blip2.add_argument("--dtype", help="float16, bfloat16 or float32 (default: float16 on CUDA)")
    blip2.add_argument("--max-new-tokens", type=_positive_int, default=30, help="default answer length")
    from modchain.serving.visual_handler import add_serve_parser as add_visual_serve_parser

    add_visual_serve_parser(models)


def serve(args: argparse.Namespace, out: TextIO) -> int:
    if args.model_kind == "visual":
        from modchain.serving.visual_handler import serve_command

        return serve_command(args, out)
    from modchain.serving.blip2_handler import Blip2Handler
    from modchain.serving.server import serve as run_server

    handler = Blip2Handler(args.model, device=args.device, dtype=args.dtype, max_new_tokens=args.max_new_tokens)

    def ready(url: str) -> None:
        out.write(f"modchain: serving BLIP-2 {args.model} at {url} (GET /ping, POST /invocations)\n")
        out.flush()

    run_server(handler, args.host, args.port, ready=ready)
    return EXIT_OK


_EVAL_OPTIONS = """\
options (every task):
  --backend NAME      local (default), comprehend, bedrock, or a registered backend
  --region, --endpoint-url, --guardrail-id, --guardrail-version   as for `modchain moderate`
  --model, --device   model id or path and torch device, for model-backed backends
  -c, --config FILE   take the backend settings from this ModerationConfig YAML (options above override)
  --threshold X       minimum finding score, 0-1 (default 0.5)
  --labels A,B        act on these labels only (toxicity, pii; repeatable or comma-separated);
                      for pii, gold spans and predictions of other labels are ignored
  --limit N           evaluate the first N labelled rows only

Files are JSON Lines. toxicity / prompt-safety rows: {"text": ..., "unsafe": 0|1} (null: row skipped).
pii rows: {"text": ..., "spans": [[start, end, LABEL], ...]} with Comprehend label names; a prediction is a
true positive when it overlaps an unmatched gold span of its label with IoU >= 0.5 (greedy by IoU).
Output: one JSON object with n, tp, fp, tn, fn, precision, recall, f1, fpr (over texts: negative texts
flagged / negative texts), latency_ms_median (backend call, one text at a time), throughput_per_s
(batched pass); pii adds per_label. Exit codes: 0 done, 2 usage or input error, 3 backend failure.
"""


def _add_eval_parser(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("file", help="labelled JSON Lines file")
    common.add_argument("--backend", help="local, comprehend, bedrock, or a registered backend (default: local)")
    common.add_argument("--region", help="AWS region for remote backends")
    common.add_argument("--endpoint-url", help="AWS endpoint override (VPC endpoints, local emulators)")
    common.add_argument("--guardrail-id", help="Bedrock guardrail id (bedrock backend)")
    common.add_argument("--guardrail-version", help="Bedrock guardrail version (default DRAFT)")
    common.add_argument("--model", help="model id or path, for model-backed backends")
    common.add_argument("--device", help="torch device (cpu, cuda, ...), for model-backed backends")
    common.add_argument("-c", "--config", help="YAML ModerationConfig to take the backend settings from")
    common.add_argument("--threshold", type=float, default=0.5, help="minimum finding score, 0-1 (default 0.5)")
    common.add_argument("--labels", action="append", default=[],
                        help="comma-separated labels to evaluate (repeatable); default: all")
    common.add_argument("--limit", type=_positive_int, help="evaluate the first N labelled rows only")
    ev = sub.add_parser("eval", help="measure a backend on a labelled file",
                        description="Measure a filter on a labelled JSON Lines file and print one JSON object "
                        "(counts, precision, recall, f1, fpr, latency, throughput).",
                        epilog=_EVAL_OPTIONS, formatter_class=argparse.RawDescriptionHelpFormatter)
    tasks = ev.add_subparsers(dest="task", required=True, metavar="{toxicity,prompt-safety,pii,segmentation}")
    for task, what in (("toxicity", "toxic or not, per text"), ("prompt-safety", "unsafe prompt or not, per text"),
                       ("pii", "PII spans, matched by label and IoU")):
        tasks.add_parser(task, parents=[common], help=what, description=f"Evaluate {task}: {what}.",
                         epilog=_EVAL_OPTIONS, formatter_class=argparse.RawDescriptionHelpFormatter)
    from modchain.visual.eval_command import add_parser as add_segmentation_parser

    add_segmentation_parser(tasks)


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return number


def _config(args: argparse.Namespace) -> Any:
    """The --config file's ModerationConfig (or the default one) with command-line overrides applied."""
    from modchain.core.config import ModerationConfig

    config = ModerationConfig.from_yaml(args.config) if args.config else ModerationConfig()
    backend_updates = {k: v for k, v in {
        "name": args.backend, "region_name": args.region, "endpoint_url": args.endpoint_url,
        "guardrail_id": args.guardrail_id, "guardrail_version": args.guardrail_version,
        "model": getattr(args, "model", None), "device": getattr(args, "device", None),
    }.items() if v is not None}
    fail_open = getattr(args, "fail_open", False)
    if backend_updates or fail_open:
        # Round-trip through a dict so command-line values are validated like values from a file.
        data = config.model_dump()
        data["backend"].update(backend_updates)
        data["fail_open"] = data["fail_open"] or fail_open
        config = ModerationConfig.from_dict(data)
    return config


def _build_chain(args: argparse.Namespace) -> Any:
    from modchain.text.chain import ModerationChain

    return ModerationChain(_config(args))


def _read_rows(stream: TextIO, text_key: str, *, skip: bool = False) -> Iterator[tuple[int, Any]]:
    """``(line, row)`` per non-blank line; a bad row raises :class:`InputError`, or with ``skip`` comes as
    ``(line, InputError)`` in its place so the rows after it are still moderated."""
    from modchain.core.errors import InputError

    for line_no, line in enumerate(stream, 1):
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
                    out.write(json.dumps({**extra, **_record(result)}, ensure_ascii=False) + "\n")
                else:
                    _human(result, out, label=f"line {line_no}: ")
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


def evaluate(args: argparse.Namespace, out: TextIO) -> int:
    if args.task == "segmentation":
        from modchain.visual.eval_command import run as run_segmentation

        return run_segmentation(args, out)
    from modchain.eval.runner import evaluate as run_eval

    labels = [label for value in args.labels for label in value.split(",") if label.strip()]
    report = run_eval(args.task, args.file, backend=_config(args).backend, threshold=args.threshold,
                      labels=labels, limit=args.limit)
    out.write(json.dumps(report, ensure_ascii=False) + "\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    from modchain.core.errors import BackendError, ConfigurationError, InputError

    argv = list(sys.argv[1:] if argv is None else argv)
    # `modchain "text"` and `modchain --json "text"` mean `modchain moderate ...`.
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["moderate", *argv]
    args = _parser().parse_args(argv)
    try:
        if args.command == "eval":
            return evaluate(args, sys.stdout)
        if args.command == "serve":
            return serve(args, sys.stdout)
        if args.command == "screen":
            from modchain.screening.command import run as screen

            return screen(args, sys.stdout)
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
    except Exception as exc:  # noqa: BLE001 - a crash must never read as exit 1, "blocked"
        if os.environ.get("MODCHAIN_DEBUG"):
            raise
        # Only the type: a message may quote the text being moderated.
        print(f"modchain: unexpected {type(exc).__name__}; content not allowed through "
              "(set MODCHAIN_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_BACKEND


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
