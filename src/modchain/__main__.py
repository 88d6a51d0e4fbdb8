"""``python -m modchain``: the ``modchain`` command (where the console script is not on PATH)."""

import sys

from modchain.cli import main

# Guarded: a spawned worker process (multiprocessing) re-imports the main module and must not run the command.
if __name__ == "__main__":
    sys.exit(main())
