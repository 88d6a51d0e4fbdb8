"""The ``modchain`` command, one module per subcommand:

* :mod:`~modchain.cli.dispatch`: the parser and ``main`` (exit codes, errors, a closed pipe);
* :mod:`~modchain.cli.moderate` and :mod:`~modchain.cli.jsonl`: ``modchain moderate`` (text, files, JSON Lines);
* :mod:`~modchain.cli.evaluate` and :mod:`~modchain.cli.segmentation_eval`: ``modchain eval``;
* :mod:`~modchain.cli.serve` and :mod:`~modchain.cli.moderation_service`: ``modchain serve``;
* :mod:`~modchain.cli.screen`: ``modchain screen``; :mod:`~modchain.cli.common`: what they share.

Each module imports its components when its command runs, so ``modchain --help`` stays fast. Run it as
``modchain``, ``python -m modchain`` or ``python -m modchain.cli``.
"""

from modchain.cli.common import (
    EXIT_BACKEND,
    EXIT_BLOCKED,
    EXIT_BROKEN_PIPE,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_USAGE,
    UsageError,
)
from modchain.cli.dispatch import SUBCOMMANDS, build_parser, main
from modchain.cli.moderate import PROGRESS_MIN_BYTES
from modchain.cli.moderate import Working as _Working  # noqa: F401 - the name tests used before the split
from modchain.cli.serve import SERVICE_MODULE, serve_moderation

_parser = build_parser  # the name before the split (tests and scripts build the parser to inspect it)

__all__ = ["EXIT_BACKEND", "EXIT_BLOCKED", "EXIT_BROKEN_PIPE", "EXIT_OK", "EXIT_ROWS_FAILED", "EXIT_USAGE",
           "PROGRESS_MIN_BYTES", "SERVICE_MODULE", "SUBCOMMANDS", "UsageError", "build_parser", "main",
           "serve_moderation"]
