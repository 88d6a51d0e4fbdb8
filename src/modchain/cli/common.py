"""What every ``modchain`` subcommand shares: exit codes, the usage error, argument types and the
``ModerationConfig`` built from ``--config`` plus command-line overrides (``moderate`` and ``eval``)."""

from __future__ import annotations

import argparse
from typing import Any

EXIT_OK, EXIT_BLOCKED, EXIT_USAGE, EXIT_BACKEND, EXIT_ROWS_FAILED = 0, 1, 2, 3, 4
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command whose reader closed the pipe


class UsageError(Exception):
    """A command line that cannot work (exit code 2, like argparse's own errors)."""


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return number


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("modchain")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def add_backend_arguments(parser: argparse.ArgumentParser, backend_help: str) -> None:
    """The backend flags ``moderate`` and ``eval`` share (what :func:`moderation_config` reads)."""
    parser.add_argument("--backend", help=backend_help)
    parser.add_argument("--tier", choices=("fast", "cascade", "accurate"),
                        help="local backend: cascade (default: linear models, the offline encoder on what "
                             "they are unsure of), fast (linear models only) or accurate (the encoder on "
                             "every text)")
    parser.add_argument("--region", help="AWS region for remote backends")
    parser.add_argument("--endpoint-url", help="AWS endpoint override (VPC endpoints, local emulators)")
    parser.add_argument("--guardrail-id", help="Bedrock guardrail id (bedrock backend)")
    parser.add_argument("--guardrail-version", help="Bedrock guardrail version (default DRAFT)")


def moderation_config(args: argparse.Namespace) -> Any:
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
