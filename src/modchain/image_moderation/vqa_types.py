"""What a visual-question-answering backend returns: moved to :mod:`modchain.core.vqa`, re-exported here."""

from modchain.core.vqa import VqaResult

__all__ = ["VqaResult"]
