"""The offline default backend: pure Python, no network, no model download, no torch.

PII: checksum- and rule-validated recognizers (``pii_recognizers``). Toxicity and prompt safety: logistic
models trained by ``training/train_text_classifiers.py`` and shipped in ``models/`` (see its MODELS.md),
evaluated in pure Python. Measure any of them with ``modchain eval``.
"""

from __future__ import annotations

from typing import Any

from modchain.backends.base import Scored, TextBackend
from modchain.backends.local.pii_recognizers import SUPPORTED_PII_LABELS, find_pii
from modchain.backends.local.prompt_safety_heuristics import score_prompt_safety
from modchain.backends.local.toxicity_lexicon import TOXICITY_LABELS, score_toxicity
from modchain.core.results import Finding


class LocalBackend(TextBackend):
    name = "local"
    labels = {"pii": frozenset(SUPPORTED_PII_LABELS), "toxicity": frozenset(TOXICITY_LABELS)}

    def _pii(self, texts: list[str], config: Any) -> list[Scored]:
        labels = config.labels or None
        return [
            Scored([Finding(filter="pii", label=m.label, score=m.score, start=m.start, end=m.end,
                            backend=self.name, explanation=m.recognizer) for m in find_pii(text, labels)])
            for text in texts
        ]

    def _toxicity(self, texts: list[str], config: Any) -> list[Scored]:
        out = []
        for text in texts:
            scores = score_toxicity(text)
            findings = [Finding(filter="toxicity", label=label, score=score, start=0, end=len(text),
                                backend=self.name) for label, score in scores.items()]
            out.append(Scored(findings, raw=scores))
        return out

    def _prompt_safety(self, texts: list[str], config: Any) -> list[Scored]:
        out = []
        for text in texts:
            score, kind = score_prompt_safety(text)
            finding = Finding(filter="prompt_safety", label="UNSAFE_PROMPT", score=score, start=0, end=len(text),
                              backend=self.name, category=kind)
            out.append(Scored([finding], raw={"UNSAFE_PROMPT": score, "kind": kind}))
        return out

    def clear_cache(self) -> None:
        """Drop the per-text caches of the offline models (``modchain eval`` times cold passes)."""
        from modchain.backends.local.linear_model import clear_caches

        clear_caches()

    @classmethod
    def from_config(cls, config: Any = None) -> LocalBackend:
        return cls()
