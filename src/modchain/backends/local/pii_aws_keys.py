"""AWS credentials for the offline PII recognizers: access key ids by their issuer prefixes, and 40-character
secret keys only when the text says "secret". Part of ``find_pii`` (``pii_recognizers``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from modchain.backends.local.pii_common import AI, A, PiiMatch, ascii_context_words, context_near

__all__ = ["find_aws_keys"]


# --- AWS credentials ----------------------------------------------------------------------------
# AKIA: long-term keys; ASIA: temporary (STS); ABIA, ACCA and the legacy A3T prefix: other issuers.
_AWS_KEY = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])", A)
_AWS_KEY_CTX = ascii_context_words(r"aws|access|key|credential")
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])", A)
_SECRET_CTX = re.compile(r"secret", AI)  # also inside aws_secret_access_key / SecretAccessKey


def find_aws_keys(text: str) -> Iterator[PiiMatch]:
    for m in _AWS_KEY.finditer(text):
        ctx = context_near(_AWS_KEY_CTX, text, m.start(), m.end())
        yield PiiMatch("AWS_ACCESS_KEY", m.start(), m.end(), 0.99 if ctx else 0.95, "aws_access_key")
    if not _SECRET_CTX.search(text):
        return  # 40 base64 characters alone could be anything (a hash, a token, a path)
    for m in _AWS_SECRET.finditer(text):
        s = m.group()
        mixed = (not s.islower() and not s.isupper() and any(c.isdigit() or c in "/+" for c in s))
        if mixed and context_near(_SECRET_CTX, text, m.start(), m.end(), before=60, after=0):
            yield PiiMatch("AWS_SECRET_KEY", m.start(), m.end(), 0.9, "aws_secret_key")

