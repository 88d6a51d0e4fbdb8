"""Email addresses and URLs for the offline PII recognizers.

URLs with a scheme or "www.", and bare domains with a TLD people type in prose ("example.com/path"); sentence
punctuation after a URL is trimmed, a ")" that closes a "(" inside it is kept. Part of ``find_pii``
(``pii_recognizers``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from modchain.backends.local.pii_common import AI, A, PiiMatch, ascii_context_words, context_near

__all__ = ["find_email", "find_url", "trim_url"]


# --- Email and URL ------------------------------------------------------------------------------
# The lookbehind means an attempt only starts at the beginning of a token, which keeps the
# scan linear; a local part cannot start in the middle of a word.
_EMAIL = re.compile(r"(?<![\w.%+-])[a-z0-9_%+-](?:[a-z0-9._%+-]{0,62}[a-z0-9_%+-])?@"
                    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,24}|xn--[a-z0-9-]{0,58}[a-z0-9])"
                    r"(?![\w-]|\.[a-z0-9])", AI)  # an internationalized TLD is written in punycode: "xn--p1ai"
_EMAIL_CTX = ascii_context_words(r"e-?mail|contact|reach me")
# "logo@2x.png" (image assets at 2x/3x density) has an email's shape: no TLD is a file extension.
_FILE_EXTENSIONS = frozenset("png jpg jpeg gif svg webp bmp ico tif tiff heic pdf txt csv json yaml yml xml html "
                             "htm css js ts exe dll".split())
_URL = re.compile(r"(?<![\w@/.-])(?:(?:https?|s?ftp|ftps)://|www\.)[^\s<>\"'`]+", AI)
_URL_TRAIL = ".,;:!?'\")]}>*"
# A bare domain ("example.com", "docs.python.org/3/") counts when its TLD is one people type in prose,
# in lower case. Left out: TLDs that are also file extensions (.py, .md, .sh, .rs, .pl, .zip) or
# everyday words ("it.it", "fine.so", "me", "in", "us"), which a missing space after a full stop
# would otherwise turn into a URL.
_TLDS = ("com org net edu gov mil int info biz io co ai dev tech online site store shop blog xyz cloud news media "
         "travel museum health agency email website uk de fr nl ch se dk fi ie pt cz ru jp cn au ca br mx nz za kr "
         "tw hk sg eu tv ly gl fm ar cl gr hu ro sk si hr bg lt lv ee ua il tr ae sa vn th ph pk ng ke eg").split()
_BARE_DOMAIN = re.compile(r"(?<![\w@/.:%+&=?#~-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                          r"(?-i:" + "|".join(sorted(_TLDS, key=len, reverse=True)) + r")"
                          r"(?::\d{2,5})?(?:/[^\s<>\"'`]*)?(?![\w@(-]|\.[a-z0-9])", AI)
_TLD_HIT = re.compile(r"\.(?:" + "|".join(sorted(_TLDS, key=len, reverse=True)) + r")(?![a-z0-9])", A)


def find_email(text: str) -> Iterator[PiiMatch]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        # The pattern already keeps dots off the local part's ends.
        if ".." not in m.group() and m.group().rsplit(".", 1)[1].lower() not in _FILE_EXTENSIONS:
            ctx = context_near(_EMAIL_CTX, text, m.start(), m.end())
            yield PiiMatch("EMAIL", m.start(), m.end(), 0.99 if ctx else 0.95, "email")


def trim_url(url: str) -> str:
    # Sentence punctuation is not part of the URL, but a ")" that closes a "(" inside it is. Counted
    # once and updated as the end moves, so a URL followed by 100,000 ")" stays linear.
    end, opened, closed = len(url), url.count("("), url.count(")")
    while end and url[end - 1] in _URL_TRAIL and not (url[end - 1] == ")" and opened >= closed):
        closed -= url[end - 1] == ")"
        opened -= url[end - 1] == "("
        end -= 1
    return url[:end]


def find_url(text: str) -> Iterator[PiiMatch]:
    for m in _URL.finditer(text):
        url = trim_url(m.group())
        rest = url.split("//", 1)[-1] if "//" in url[:8] else url[4:]
        # "www.example" is not an address yet: after "www." the host needs a dot of its own.
        www_host_ok = "//" in url[:8] or "." in rest.split("/", 1)[0].split(":", 1)[0].strip(".")
        if rest[:1].isalnum() and www_host_ok:
            yield PiiMatch("URL", m.start(), m.start() + len(url), 0.9, "url")
    searched = 0
    for hit in _TLD_HIT.finditer(text):  # a literal "." first: fast, and rare in text without domains
        start = hit.start()
        while start > searched and text[start - 1].isascii() and (text[start - 1].isalnum() or text[start - 1] in ".-"):
            start -= 1  # back to the start of the token
        if start < searched:
            continue
        m = _BARE_DOMAIN.match(text, start)
        if m:
            url = trim_url(m.group())
            if "." in url:
                yield PiiMatch("URL", m.start(), m.start() + len(url), 0.75, "url_bare_domain")
        searched = max(hit.end(), m.end() if m else 0)


