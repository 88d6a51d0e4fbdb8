"""Toxicity filter: block (or only report) text scoring above the threshold on a selected label."""

from __future__ import annotations

from modchain.text.filter_base import TextFilter


class ToxicityFilter(TextFilter):
    kind = "toxicity"
