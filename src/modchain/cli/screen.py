"""``modchain screen DIR``: screen a fine-tuning dataset folder from the command line.

    modchain screen my_dataset                          report next to it, in my_dataset.modchain-screening/
    modchain screen my_dataset --out report --workers 2 --threshold 0.5
    modchain screen my_dataset --list-flagged           flagged files only, one per line (summary on stderr)
    modchain screen my_dataset --move-flagged quarantine/
    modchain screen my_dataset --ray                    on Ray Data (the running cluster, or a local one)
    modchain screen my_dataset --moderation modchain.backends.aws.rekognition_moderation:RekognitionModerationLabeler

The report folder also holds the run's state (checkpoint, quarantine journal), so by default it sits next to
the dataset, never inside it: a dataset folder stays as it was (checksums, sync, versioning). A folder a
previous version left inside the dataset (``DIR/.modchain-screening``) is still used when present, so its
runs resume.

Resuming: a rerun skips the items a compatible checkpoint in the report folder already holds; ``--resume``
insists on one (exit 2 when there is none), ``--restart`` discards it. Exit codes: 0 everything clean,
1 something flagged or unreadable, 2 bad usage, 3 a backend failed, 130 interrupted (finished work kept).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from modchain.cli.common import positive_int

EXIT_OK, EXIT_FLAGGED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from modchain.screening.config import DEFAULT_FLAG_LABELS

    parser = subparsers.add_parser(
        "screen", help="screen a dataset folder of images (and its instance prompt)",
        description="Screen every image of a dataset folder with NudeNet (offline) and the instance prompt of "
        "its dataset_info.json with the offline text filters; write screening_report.json and "
        "screening_summary.md. Resumable, parallel (--workers), or on Ray (--ray).",
        epilog="exit codes: 0 all clean, 1 something flagged or unreadable, 2 usage, 3 backend failure, "
        "130 interrupted (rerun to resume)")
    parser.add_argument("dir", help="dataset folder")
    parser.add_argument("--out", help="report and state folder (default: DIR.modchain-screening next to DIR; "
                        "an existing DIR/.modchain-screening from an earlier version is reused)")
    parser.add_argument("--moderation", metavar="MODULE:NAME",
                        help="image moderation to use instead of NudeNet: a labeler, ImageModerationChain or "
                        "factory importable as MODULE:NAME (e.g. modchain.backends.aws.rekognition_moderation:"
                        "RekognitionModerationLabeler); --threshold and --labels apply to labelers")
    parser.add_argument("--threshold", type=float, default=0.4, help="minimum score that flags (default 0.4)")
    parser.add_argument("--labels", action="append", default=None,
                        help="comma-separated Rekognition categories that flag (repeatable; 'any' for every "
                        f"label); default: {', '.join(DEFAULT_FLAG_LABELS)}")
    parser.add_argument("--workers", type=positive_int, default=1, help="worker processes (or Ray actors)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images per model call and checkpoint")
    parser.add_argument("--no-recursive", action="store_true", help="ignore sub-folders")
    parser.add_argument("--no-prompt", action="store_true", help="do not check dataset_info.json's instance_prompt")
    parser.add_argument("--ray", action="store_true", help="screen on Ray Data (ray.init() when none is running)")
    parser.add_argument("--ray-address", help="Ray cluster address (with --ray)")
    parser.add_argument("--fail-open-errors", action="store_true",
                        help="record model failures as error items and go on (default: stop, exit 3)")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="require a checkpoint to resume from")
    again.add_argument("--restart", action="store_true", help="discard the checkpoint and screen everything")
    parser.add_argument("--list-flagged", action="store_true",
                        help="print flagged files only, one per line (the summary goes to standard error)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--move-flagged", metavar="DIR", help="move flagged images into DIR (relative paths kept)")
    action.add_argument("--copy-flagged", metavar="DIR", help="copy flagged images into DIR (relative paths kept)")
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _labels(values: list[str] | None) -> dict[str, Any]:
    if values is None:
        return {}
    labels = [label.strip() for value in values for label in value.split(",") if label.strip()]
    return {"labels": [] if labels == ["any"] else labels}


def _import(spec: str) -> Any:
    import importlib

    from modchain.core.errors import ConfigurationError

    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ConfigurationError("--moderation takes MODULE:NAME")
    try:
        target: Any = importlib.import_module(module_name)
        for part in name.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot import {spec} ({type(exc).__name__})") from None
    return target


def _write_paths(out: TextIO, paths: list[str]) -> None:
    """One path per line, as the exact bytes of the name (like ``find -print``) where ``out`` takes bytes, so
    ``xargs`` and scripts get names that are not UTF-8 right; else shown with ``\\xNN`` escapes."""
    from modchain.screening.report import display_path

    buffer = getattr(out, "buffer", None)
    if buffer is None:
        out.writelines(f"{display_path(path)}\n" for path in paths)
        return
    out.flush()
    buffer.write(b"".join(os.fsencode(path) + b"\n" for path in paths))
    buffer.flush()


def default_out_dir(root: Path) -> Path:
    """``DIR.modchain-screening`` beside the dataset; the in-dataset folder of earlier versions while it
    holds state, so an interrupted run or a quarantine journal it wrote is picked up, not orphaned."""
    from modchain.screening.checkpoint import CHECKPOINT
    from modchain.screening.journal import JOURNAL
    from modchain.screening.screener import DEFAULT_OUT

    legacy = root / DEFAULT_OUT
    if (legacy / CHECKPOINT).exists() or (legacy / JOURNAL).exists():
        return legacy
    resolved = root.resolve()
    if resolved.parent == resolved:  # the file system root has no "beside"
        return legacy
    return resolved.parent / f"{resolved.name}{DEFAULT_OUT}"


def _final_report(report: Any, out_dir: Any) -> Any:
    """The report with every finished quarantine move in it, written; then those moves count as reported,
    so the next screening of the (now smaller) dataset does not list them again."""
    from modchain.screening.journal import QuarantineJournal, with_quarantine

    if not QuarantineJournal.exists(out_dir):
        return report
    with QuarantineJournal.open(out_dir) as journal:
        entries = journal.unreported(report.dataset)
        report = with_quarantine(report, entries)
        report.write(out_dir)  # durable before the moves are marked reported
        journal.mark_reported(entries)
    return report


def run(args: argparse.Namespace, out: TextIO, err: TextIO | None = None) -> int:
    """Run ``modchain screen``; errors propagate (:func:`modchain.cli.main` maps them to exit codes 2 and 3)."""
    from modchain.core.errors import ConfigurationError
    from modchain.screening.checkpoint import CHECKPOINT, Checkpoint
    from modchain.screening.quarantine import quarantine
    from modchain.screening.report import dumps_json
    from modchain.screening.screener import DatasetScreener

    err = err if err is not None else sys.stderr
    root = Path(args.dir)
    if not root.is_dir():
        raise ConfigurationError(f"dataset folder not found: {args.dir}")
    out_dir = Path(args.out) if args.out else default_out_dir(root)
    options: dict[str, Any] = {"threshold": args.threshold, "workers": args.workers, "batch_size": args.batch_size,
                               "recursive": not args.no_recursive, "check_prompt": not args.no_prompt,
                               "backend_errors": "record" if args.fail_open_errors else "raise",
                               **_labels(args.labels)}
    progress = not args.no_progress and err.isatty()
    moderation = _import(args.moderation) if args.moderation else None
    screener = DatasetScreener(moderation, progress=progress, **options)
    compatible = Checkpoint.compatible(out_dir, dataset=str(root.resolve()), fingerprint=screener.fingerprint)
    if args.resume and not compatible:
        raise ConfigurationError(f"no checkpoint for this dataset and these settings in {out_dir} to resume from")
    if not compatible and not args.restart and (out_dir / CHECKPOINT).exists():
        err.write(f"modchain: the checkpoint in {out_dir} is for another dataset or other settings; starting over\n")
    engine = "ray" if args.ray else "local"
    ray_options = {"address": args.ray_address} if args.ray_address else {}
    try:
        report = screener.screen(root, out_dir, resume=compatible and not args.restart, engine=engine,
                                 ray_options=ray_options)
    except KeyboardInterrupt:
        err.write(f"modchain: interrupted; finished items are kept in {out_dir}, run again to resume\n")
        return EXIT_INTERRUPTED
    moved: list[tuple[str, Path]] = []
    if args.move_flagged or args.copy_flagged:
        mode = "move" if args.move_flagged else "copy"
        moved = quarantine(report, args.move_flagged or args.copy_flagged, mode=mode, state_dir=out_dir)
    report = _final_report(report, out_dir)
    flagged = [item.path for item in report.flagged if item.kind == "image"]
    if args.json:
        data = report.to_dict()
        data["report_dir"] = str(out_dir)
        out.write(dumps_json(data) + "\n")
    elif args.list_flagged:
        err.write(report.summary())
        _write_paths(out, flagged)
    else:
        out.write(report.summary())
        out.write(f"\nreport: {out_dir}\n")
    if moved and not args.json:
        verb = "moved" if args.move_flagged else "copied"
        err.write(f"modchain: {verb} {len(moved)} flagged image(s) to {args.move_flagged or args.copy_flagged}\n")
    return EXIT_OK if report.all_clean else EXIT_FLAGGED
