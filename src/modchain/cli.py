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
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

EXIT_OK, EXIT_BLOCKED, EXIT_USAGE, EXIT_BACKEND, EXIT_ROWS_FAILED = 0, 1, 2, 3, 4
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command whose reader closed the pipe
SUBCOMMANDS = ("moderate", "eval", "serve", "screen")
#: A single text at least this large (bytes) gets an elapsed-time line on a terminal's standard error.
PROGRESS_MIN_BYTES = 1_000_000


class UsageError(Exception):
    """A command line that cannot work (exit code 2, like argparse's own errors)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modchain", description="Composable content moderation.")
    parser.add_argument("--version", action="version", version=f"modchain {_version()}")
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
    mod.add_argument("--tier", choices=("fast", "cascade", "accurate"),
                     help="local backend: fast (linear models, default), cascade or accurate (offline encoder)")
    mod.add_argument("--region", help="AWS region for remote backends")
    mod.add_argument("--endpoint-url", help="AWS endpoint override (VPC endpoints, local emulators)")
    mod.add_argument("--guardrail-id", help="Bedrock guardrail id (bedrock backend)")
    mod.add_argument("--guardrail-version", help="Bedrock guardrail version (default DRAFT)")
    mod.add_argument("--fail-open", action="store_true", help="let content through when a backend fails")
    mod.add_argument("--conversation-id", metavar="ID",
                     help="conversation scope for anonymize filters (placeholders such as [EMAIL_1] are numbered "
                     "per conversation; required by configs that anonymize)")
    mod.add_argument("--no-progress", action="store_true",
                     help="never show progress (shown on a terminal for JSON Lines and texts over 1 MB)")
    mod.add_argument("--workers", type=_positive_int, default=1,
                     help="JSON Lines: moderate in this many processes (offline backend: one per core)")
    _add_eval_parser(sub)
    _add_serve_parser(sub)
    from modchain.screening.command import add_parser as add_screen_parser

    add_screen_parser(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("modchain")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _add_serve_parser(sub: Any) -> None:
    srv = sub.add_parser("serve", help="run the HTTP moderation service or a model behind a SageMaker-style endpoint",
                         description="Serve the moderation service (OpenAI-compatible /v1/moderations), or a "
                         "vision model with SageMaker's container contract: GET /ping, POST /invocations, and "
                         "POST /endpoints/NAME/invocations for boto3 clients.")
    models = srv.add_subparsers(dest="model_kind", required=True, metavar="{moderation,blip2,visual}")
    # Listed for --help only: main() hands everything after `serve moderation` to the service's own parser.
    models.add_parser("moderation", add_help=False, help="the HTTP moderation service (pip install 'modchain[serve]'; "
                      "`modchain serve moderation --help` for its options)")
    blip2 = models.add_parser("blip2", help="BLIP-2 visual question answering (seed and batched contracts)")
    blip2.add_argument("--model", required=True, help="BLIP-2 model id or local checkpoint directory")
    blip2.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    blip2.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    blip2.add_argument("--device", help="torch device (cpu, cuda, ...); default: cuda when available")
    blip2.add_argument("--dtype", help="float16, bfloat16 or float32 (default: float16 on CUDA)")
    blip2.add_argument("--max-new-tokens", type=_positive_int, default=30, help="default answer length")
    from modchain.serving.visual_handler import add_serve_parser as add_visual_serve_parser

    add_visual_serve_parser(models)


#: Where ``modchain serve moderation`` lives; imported only when that command runs (FastAPI is optional).
SERVICE_MODULE = "modchain.serving.moderation"


def serve_moderation(argv: list[str]) -> int:
    """``modchain serve moderation ARGS...``: the service parses its own arguments; FastAPI is optional."""
    import importlib

    try:
        service_main = importlib.import_module(SERVICE_MODULE).main
    except ModuleNotFoundError as exc:
        # Only a missing optional dependency (or the service package itself) means "install the extra"; a
        # missing modchain module inside it is a bug and surfaces as one.
        name = exc.name or ""
        if name.split(".")[0] == "modchain" and not SERVICE_MODULE.startswith(name):
            raise
        print("modchain: the moderation service needs the serve extra: pip install 'modchain[serve]'",
              file=sys.stderr)
        return EXIT_USAGE
    return service_main(argv)


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
  --tier TIER         local backend: fast (default), cascade or accurate (offline encoder)
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
    common.add_argument("--tier", choices=("fast", "cascade", "accurate"),
                        help="local backend: fast (linear models, default), cascade or accurate (offline encoder)")
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
        "tier": getattr(args, "tier", None),
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

    config = _config(args)
    if args.conversation_id is None and any(getattr(f, "action", None) == "anonymize" for f in config.filters):
        raise UsageError("this config anonymizes, which numbers placeholders per conversation: "
                         "give --conversation-id ID")
    # The chain's unique_id is its default conversation scope (what anonymize numbers placeholders in).
    return ModerationChain(config, unique_id=args.conversation_id)


def _read_text(source: str | None, stdin: TextIO) -> str:
    """A whole file or standard input as one text, without a leading UTF-8 byte order mark (not text: it
    would otherwise come back in the sanitized output)."""
    if source and source != "-":
        return Path(source).read_text(encoding="utf-8-sig")
    if stdin.isatty():
        raise UsageError("no input (give TEXT, --file, or pipe text to standard input)")
    return stdin.read().removeprefix("\ufeff")


class _Working:
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

    def __enter__(self) -> _Working:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._done.set()
            self._thread.join()


def moderate(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    from modchain.cli_jsonl import moderate_rows, print_result, result_record

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
                return moderate_rows(chain, stream, args, out)
        return moderate_rows(chain, stdin, args, out)
    else:
        text = _read_text(source, stdin)
    with _Working(len(text.encode("utf-8", "surrogatepass")), sys.stderr, enabled=not args.no_progress):
        result = chain.moderate(text)
    if args.json:
        out.write(json.dumps(result_record(result), ensure_ascii=False) + "\n")
    else:
        print_result(result, out)
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
            return serve_moderation(argv[2:])
        args = _parser().parse_args(argv)
        if args.command == "eval":
            return evaluate(args, sys.stdout)
        if args.command == "serve":
            return serve(args, sys.stdout)
        if args.command == "screen":
            from modchain.screening.command import run as screen

            return screen(args, sys.stdout)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
