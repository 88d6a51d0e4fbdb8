"""Checking a dataset's instance prompt through a small pluggable "prompt checker".

A prompt checker is any callable ``checker(text) -> outcome``. The outcome may be

* an object with ``flagged`` (a generation prompt guard's result) or ``allowed`` (a text
  :class:`~modchain.core.results.ModerationResult`), and optionally ``findings``;
* a plain ``bool`` (``True`` = flagged);
* or the checker raises a :class:`~modchain.core.errors.ModerationViolation` (a guard in block mode): flagged.

The default is the offline text chain with toxicity and prompt safety in ``detect`` mode, so every finding
is reported (no filter stops the others). Its ``name`` goes into the settings fingerprint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modchain.core.errors import BackendError, ModchainError, ModerationViolation
from modchain.screening.report import ItemResult

PromptChecker = Callable[[str], Any]


class TextChainPromptChecker:
    """The text :class:`~modchain.text.chain.ModerationChain` as a prompt checker; a finding flags.

    Default: offline toxicity (threshold 0.5) and prompt safety (threshold 0.8), both ``detect``.
    """

    def __init__(self, chain: Any = None, *, toxicity_threshold: float = 0.5,
                 prompt_safety_threshold: float = 0.8) -> None:
        if chain is None:
            from modchain.core.config import ModerationConfig, PromptSafetyConfig, ToxicityConfig
            from modchain.text.chain import ModerationChain

            chain = ModerationChain(ModerationConfig(filters=[
                ToxicityConfig(threshold=toxicity_threshold, action="detect"),
                PromptSafetyConfig(threshold=prompt_safety_threshold, action="detect"),
            ]))
            self.name = f"text-chain:toxicity>={toxicity_threshold},prompt_safety>={prompt_safety_threshold}"
        else:  # the chain's own settings decide, so they name it (a checkpoint from other ones is not resumed)
            config = getattr(chain, "config", None)
            settings = config.model_dump_json() if hasattr(config, "model_dump_json") else type(chain).__qualname__
            self.name = f"text-chain:{settings}"
        self.chain = chain

    def __call__(self, text: str) -> Any:
        result = self.chain.moderate(text)
        # detect mode never blocks: any finding is what flags a training prompt.
        return _Outcome(bool(result.findings) or not result.allowed, tuple(result.findings))


class _Outcome:
    def __init__(self, flagged: bool, findings: tuple[Any, ...]) -> None:
        self.flagged, self.findings = flagged, findings


def checker_name(checker: PromptChecker | None) -> str:
    """A stable name for the fingerprint: ``checker.name``, else the callable's qualified name."""
    if checker is None:
        return "none"
    name = getattr(checker, "name", None)
    if isinstance(name, str):
        return name
    target = checker if hasattr(checker, "__qualname__") else type(checker)
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', type(checker).__name__)}"


def check_prompt(checker: PromptChecker, text: str, *, path: str, size: int, mtime_ns: int,
                 backend_errors: str = "raise") -> ItemResult:
    """Run ``checker`` on the prompt and turn its outcome into an :class:`ItemResult`.

    The result holds labels and scores only, never the prompt's text.
    """
    base = {"path": path, "kind": "prompt", "size": size, "mtime_ns": mtime_ns}
    try:
        outcome = checker(text)
    except ModerationViolation as violation:  # a guard in block mode
        outcome, flagged = violation.result, True
    except BackendError as exc:
        if backend_errors == "raise":
            raise
        return ItemResult(**base, status="error", error=f"{type(exc).__name__}: prompt checker failed",
                          transient=True)
    except ModchainError as exc:
        return ItemResult(**base, status="error", error=f"{type(exc).__name__}: prompt checker failed")
    else:
        flagged = _flagged(outcome)
    findings = tuple(getattr(outcome, "findings", ()) or ())
    scores: dict[str, float] = {}
    for finding in findings:
        label, score = getattr(finding, "label", None), getattr(finding, "score", None)
        if isinstance(label, str) and isinstance(score, (int, float)):
            scores[label] = max(scores.get(label, 0.0), round(float(score), 4))
    records = tuple({"label": getattr(f, "label", None), "category": getattr(f, "category", None),
                     "score": round(float(getattr(f, "score", 0.0)), 4),
                     "filter": getattr(f, "filter", None)} for f in findings)
    labels = tuple(sorted(scores)) if flagged else ()
    return ItemResult(**base, status="flagged" if flagged else "clean", labels=labels, scores=scores,
                      findings=records)


def _flagged(outcome: Any) -> bool:
    if isinstance(outcome, bool):
        return outcome
    if hasattr(outcome, "flagged"):
        return bool(outcome.flagged)
    if hasattr(outcome, "allowed"):
        return not outcome.allowed
    raise TypeError(f"a prompt checker returned a {type(outcome).__name__}: expected a bool or an object "
                    "with .flagged or .allowed")
