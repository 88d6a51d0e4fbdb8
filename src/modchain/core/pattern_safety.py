"""Which user-supplied regular expressions may run on every message: those Python's ``re`` runs in linear time.

A custom PII recognizer's pattern runs on every text a chain sees, so a pattern that backtracks
catastrophically (``(a+)+$``, ``(\\w|\\d)*x``) or quadratically (``\\d+x`` tried at every start of a
long digit run) would be a denial-of-service hole. Rather than add a compiled dependency (google-re2:
a C++ extension whose wheels do not cover every platform modchain installs on, for a feature that needs
only simple patterns), ``check_linear_pattern`` accepts the subset of ``re`` syntax for which a
backtracking engine's work per start position is bounded by a constant of the pattern:

* every quantifier is bounded (``{m,n}`` with n <= 100, ``?``); ``*``, ``+`` and ``{m,}`` are rejected;
* no quantifier inside another (``?`` aside: ``(?:-[A-Z]{1,3})?`` is fine), and no alternation inside a
  quantifier other than ``?``;
* no backreferences, conditionals or lookaround (``\\b``, ``^`` and ``$`` are fine);
* the pattern cannot match the empty string, its longest match is at most 512 characters and its
  backtracking bound (the product of the quantifiers' ranges and the alternatives' counts) is at most
  100,000.

Then ``finditer`` over a text of n characters does at most ``n x width x bound`` steps: linear in n.
Uses ``re._parser`` (CPython's own parser, the one ``re.compile`` runs).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["check_linear_pattern"]

MAX_REPEAT = 100
MAX_WIDTH = 512
MAX_BOUND = 100_000


def check_linear_pattern(pattern: str, flags: int = 0) -> None:
    """Raise ``ValueError`` (saying why, without echoing the pattern) unless ``pattern`` runs in linear time."""
    import re._parser as parser  # CPython's parser; the module ``re`` itself uses

    try:
        re.compile(pattern, flags)
        parsed = parser.parse(pattern, flags)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc.msg} at position {exc.pos})") from None
    low, high = parsed.getwidth()
    if low == 0:
        raise ValueError("the pattern can match an empty string")
    if _bound(parsed, parser, in_repeat=False) > MAX_BOUND:
        raise ValueError("the pattern can backtrack too much: use fewer or narrower quantifiers")
    if high > MAX_WIDTH:
        raise ValueError(f"the pattern can match more than {MAX_WIDTH} characters")


def _bound(items: Any, parser: Any, in_repeat: bool) -> int:
    """Backtracking choices of a sequence of parsed items (the product of its items'), or raise."""
    from re import _constants as c  # the opcode names ``re._parser`` emits

    total = 1
    for op, arg in items:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            low, high, body = arg
            if high == c.MAXREPEAT or high > MAX_REPEAT:
                raise ValueError(f"unbounded quantifier (*, + or {{m,}}): write a bound such as {{1,{MAX_REPEAT}}}")
            if high <= 1:  # "?" only doubles the choices: what is inside it may repeat (``(?:-[A-Z]{1,3})?``)
                total *= (high - low + 1) * _bound(body, parser, in_repeat)
                continue
            if in_repeat:
                raise ValueError("a quantifier inside another quantifier")
            inner = _bound(body, parser, in_repeat=True)
            if inner > 1 and high > 1:
                raise ValueError("an alternation inside a quantifier (other than ? / {0,1})")
            total *= (high - low + 1) * inner
        elif op == c.BRANCH:
            total *= sum(_bound(alt, parser, in_repeat) for alt in arg[1])
        elif op == c.SUBPATTERN:
            total *= _bound(arg[-1], parser, in_repeat)
        elif op == getattr(c, "ATOMIC_GROUP", None):
            total *= _bound(arg, parser, in_repeat)
        elif op in (c.GROUPREF, c.GROUPREF_EXISTS, getattr(c, "GROUPREF_IGNORE", None)):
            raise ValueError("backreferences and conditionals are not allowed")
        elif op in (c.ASSERT, c.ASSERT_NOT):
            raise ValueError("lookahead and lookbehind are not allowed")
    return total
