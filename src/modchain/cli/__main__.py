"""``python -m modchain.cli``: the ``modchain`` command."""

import sys

from modchain.cli import main

# Guarded: a spawned worker process (multiprocessing) re-imports the main module and must not run the command.
if __name__ == "__main__":
    sys.exit(main())
