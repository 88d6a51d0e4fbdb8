"""Split text at service limits: moved to :mod:`modchain.core.text_splitting` (backends split too), re-exported."""

from modchain.core.text_splitting import cut_point, overlapping_windows, pack, split_spans, utf8_len

__all__ = ["cut_point", "overlapping_windows", "pack", "split_spans", "utf8_len"]
