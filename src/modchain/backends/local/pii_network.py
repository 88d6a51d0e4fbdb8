"""Network identifiers for the offline PII recognizers: IPv4 and IPv6 addresses (``ipaddress`` validates IPv6)
and MAC addresses. Dotted quads after "version", "section", ... score low. Part of ``find_pii``
(``pii_recognizers``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from modchain.backends.local.pii_common import AI, A, PiiMatch, ascii_context_words, context_near

__all__ = ["find_ip", "find_mac"]


# --- Network identifiers ------------------------------------------------------------------------
_OCT = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"  # 0-255, no leading zeros
_IPV4 = re.compile(r"(?<![\w.])" + _OCT + r"(?:\." + _OCT + r"){3}(?!\w|\.\d)", A)
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9a-f]{1,4})?"
                   r"(?![\w:]|\.\d)", AI)
_IP_CTX = ascii_context_words(r"ip\b|ipv[46]|address|host|server|ping|gateway|dns|subnet|router")
# "version 1.2.3.4", "section 3.2.1.4", "chapter 12.4.1.7": dotted quads that number things.
_VERSION_BEFORE = re.compile(r"(?:\b(?:v|version|ver|release|build|section|sec|chapter|ch|clause|article|art|paragraph"
                             r"|para|step|figure|fig|table|rule|item|appendix)|§)[\s.:]*\Z", AI)
_MAC = re.compile(r"(?<![\w:.-])(?:[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}"
                  r"|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4})(?![\w:-]|\.\w)", AI)
_MAC_CTX = ascii_context_words(r"mac\b|hardware|ethernet|wi-?fi|bssid|nic\b|device")


def find_ip(text: str) -> Iterator[PiiMatch]:
    for m in _IPV4.finditer(text):
        if _VERSION_BEFORE.search(text, max(0, m.start() - 14), m.start()):
            score = 0.3  # "version 1.2.3.4" is far more likely than an address
        else:
            score = 0.97 if context_near(_IP_CTX, text, m.start(), m.end()) else 0.85
        yield PiiMatch("IP_ADDRESS", m.start(), m.end(), score, "ipv4")
    if "::" not in text and text.count(":") < 7:
        return  # every IPv6 address has either "::" or seven colons
    for m in _IPV6.finditer(text):
        try:
            ipaddress.IPv6Address(m.group())
        except ValueError:
            continue
        groups = sum(1 for g in m.group().split(":") if g) + ("." in m.group())  # embedded IPv4 = 2 groups
        if groups == 0 or not any(c.isdigit() for c in m.group()):
            continue  # "a::b", "dead::beef": C++ scopes and words far more often than addresses
        ctx = context_near(_IP_CTX, text, m.start(), m.end())
        # Short compressed forms ("::1", "fe80::") are weak on their own.
        score = (0.97 if ctx else 0.9) if groups >= 3 else (0.85 if ctx else 0.6)
        yield PiiMatch("IP_ADDRESS", m.start(), m.end(), score, "ipv6")


def find_mac(text: str) -> Iterator[PiiMatch]:
    for m in _MAC.finditer(text):
        ctx = context_near(_MAC_CTX, text, m.start(), m.end())
        dotted = m.group(1) is None  # Cisco "0011.2233.4455" is also a plain 12-hex ID shape
        score = (0.9 if ctx else 0.6) if dotted else (0.97 if ctx else 0.85)
        yield PiiMatch("MAC_ADDRESS", m.start(), m.end(), score, "mac")

