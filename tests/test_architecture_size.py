"""Structural check: no module in the package is over 400 lines (issue 15).

Small modules are what keep the code easy to live in; this fails with the list of offenders so a module that
grows past the bar is split when it happens, not in a later clean-up.
"""

from __future__ import annotations

from pathlib import Path

import modchain

MAX_LINES = 400
PACKAGE = Path(modchain.__file__).parent


def _line_count(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for _ in handle)


def test_no_module_is_over_400_lines():
    offenders = {
        str(path.relative_to(PACKAGE)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := _line_count(path)) > MAX_LINES
    }
    assert not offenders, f"modules over {MAX_LINES} lines: {offenders}"


def test_the_line_counter_sees_every_module():
    # Guards the check itself: if the glob silently matched nothing, the test above could not fail.
    modules = list(PACKAGE.rglob("*.py"))
    assert len(modules) > 100
    assert max(_line_count(path) for path in modules) > 100
