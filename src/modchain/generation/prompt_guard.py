"""PromptGuard: checks an image-generation prompt before any GPU time is spent on it.

    guard = PromptGuard()                          # default denylist + offline toxicity and prompt safety
    check = guard.moderate("a n.u.d.e portrait")   # PromptCheck(allowed=False, findings=(denylist NUDE ...))
    guard.invoke("a watercolor lighthouse")        # "a watercolor lighthouse"; raises PromptRejectedViolation if not

Steps: the evasion-resistant :class:`Denylist` (microseconds), then the text chain's toxicity and
prompt-safety filters (run in ``detect`` mode; this guard makes the decision). ``invoke`` pipes like every
modchain component: it returns its input unchanged (so ``guard | generator`` passes the prompt, negative
prompt and seed on) or, with ``action="reject"``, raises :class:`PromptRejectedViolation`. ``moderate``
(alias ``check``) returns the full :class:`PromptCheck` and never raises for a finding; ``"warn"`` lets the
prompt through with readable warnings (labels only) in that result. A backend error fails closed (raises) unless
``fail_open``. Each check ends with the ``on_after_prompt_guard`` callback.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig

from modchain.core.callbacks import CallbackDispatcher
from modchain.core.caller import caller_id
from modchain.core.config import ModerationConfig
from modchain.core.config_base import coerce_config
from modchain.core.errors import BackendError, InputError, PromptRejectedViolation
from modchain.core.events import ModerationEvent
from modchain.core.results import Finding, ModerationResult
from modchain.generation.config import PromptGuardConfig
from modchain.generation.denylist import Denylist
from modchain.generation.errors import PromptRejected  # noqa: F401  (importable from here, as before the rename)
from modchain.generation.results import PromptCheck


def prompt_of(value: Any) -> str:
    """The prompt in ``value``: a string, a ``{"prompt": ...}`` dict, a LangChain prompt value, or a
    :class:`PromptCheck` (what ``PromptGuard.moderate`` returns)."""
    if isinstance(value, PromptCheck):
        value = value.prompt
    elif isinstance(value, dict):
        value = value.get("prompt")
    elif hasattr(value, "to_string") and callable(value.to_string):
        value = value.to_string()
    if not isinstance(value, str):
        raise InputError(f"expected a prompt string or {{'prompt': str}}, got {type(value).__name__}")
    return value


class PromptGuard(Runnable[Any, Any]):
    """Denylist + toxicity + prompt safety on image prompts.

    ``invoke`` returns its input (raising :class:`PromptRejectedViolation` when rejected); ``moderate``
    returns the :class:`PromptCheck`.

    Args:
        config: a :class:`PromptGuardConfig`, a dict in its shape or a YAML file path; defaults reject on the default
            explicit-content denylist, toxicity >= 0.6 and unsafe prompt >= 0.8 on the offline backend.
        denylist: a ready :class:`Denylist` (overrides the config's terms).
        text_guard: a ready text :class:`~modchain.text.chain.ModerationChain` (e.g. on Comprehend) used
            instead of one built from the config; give it ``detect`` filters.
        callbacks: audit handlers; ``on_after_prompt_guard`` fires once per check (the text chain's own
            ``on_after_toxicity`` / ``on_after_prompt_safety`` fire too).
    """

    def __init__(self, config: PromptGuardConfig | dict[str, Any] | str | Path | None = None, *,
                 denylist: Denylist | None = None, text_guard: Any = None, callbacks: Sequence[Any] = (),
                 unique_id: str | None = None) -> None:
        self.config = config = coerce_config(PromptGuardConfig, config)
        self.unique_id = unique_id
        self.dispatcher = CallbackDispatcher(callbacks)
        if denylist is None and config.denylist:
            denylist = Denylist(config.denylist, allow=config.allowlist, mode=config.denylist_mode)
        self.denylist = denylist
        self.text_guard = text_guard if text_guard is not None else self._text_chain(config, callbacks, unique_id)

    @staticmethod
    def _text_chain(config: PromptGuardConfig, callbacks: Sequence[Any], unique_id: str | None) -> Any:
        filters = [f.model_copy(update={"action": "detect"}) for f in (config.toxicity, config.prompt_safety) if f]
        if not filters:
            return None
        from modchain.text.chain import ModerationChain

        return ModerationChain(ModerationConfig(filters=filters, backend=config.backend, fail_open=config.fail_open),
                               callbacks=callbacks, unique_id=unique_id)

    # -- the check --------------------------------------------------------------------------------------

    def _denylist_step(self, prompt: str, timings: dict[str, float]) -> list[Finding]:
        if self.denylist is None:
            return []
        started = time.perf_counter()
        matches = self.denylist.find(prompt)
        timings["denylist"] = (time.perf_counter() - started) * 1000
        return [Finding(filter="denylist", label=m.category, score=1.0, start=m.start, end=m.end, backend="denylist",
                        category=m.term, explanation="listed term") for m in matches]

    def _skip_classifiers(self, findings: list[Finding]) -> bool:
        return self.text_guard is None or (bool(findings) and self.config.action == "reject"
                                           and self.config.stop_at_denylist)

    def _decide(self, prompt: str, findings: list[Finding], text: ModerationResult | None, errors: list[str],
                timings: dict[str, float], uid: str | None) -> PromptCheck:
        if text is not None:
            findings = findings + list(text.findings)
            errors = errors + [f"{f.filter}: {f.error}" for f in text.filters if f.error]
            timings.update({f"text:{key}": value for key, value in text.timings_ms.items()})
        warnings: list[str] = []
        if findings and self.config.action == "warn":
            labels = sorted({f"{f.filter}:{f.label}" for f in findings})
            warnings.append(f"the prompt was flagged ({', '.join(labels)}) and let through (action=warn)")
        warnings += [f"prompt check failed open ({error})" for error in errors]
        return PromptCheck(allowed=not (findings and self.config.action == "reject"), action=self.config.action,
                           findings=tuple(findings), warnings=tuple(warnings), errors=tuple(errors), prompt=prompt,
                           timings_ms=timings, unique_id=uid)

    def _event(self, check: PromptCheck, uid: str | None) -> ModerationEvent:
        output = {"allowed": check.allowed, "action": check.action, "errors": list(check.errors),
                  "findings": [f.model_dump(exclude_none=True) for f in check.findings]}
        return ModerationEvent.of("prompt_guard", str(uuid.uuid4()), check.flagged, check.prompt, output,
                                  unique_id=uid, error=bool(check.errors))

    def _uid(self, config: RunnableConfig | None) -> str | None:
        # The same keys as the text chain, which reports this prompt's classifier events to the same handlers.
        return caller_id(config, self.unique_id)

    def _text_failed(self, exc: BackendError) -> list[str]:
        if not self.config.fail_open:
            raise exc
        return [f"text: {type(exc).__name__}"]

    def moderate(self, value: Any, config: RunnableConfig | None = None) -> PromptCheck:
        """Check one prompt; returns the :class:`PromptCheck` and never raises for a finding (``invoke``
        does, with ``action="reject"``). Reusable anywhere a prompt needs the same policy (e.g. the
        instance prompt of a fine-tuning dataset)."""
        prompt, timings, uid = prompt_of(value), {}, self._uid(config)
        findings = self._denylist_step(prompt, timings)
        text, errors = None, []
        if not self._skip_classifiers(findings):
            try:
                text = self.text_guard.moderate(prompt, config)
            except BackendError as exc:
                errors = self._text_failed(exc)
        check = self._decide(prompt, findings, text, errors, timings, uid)
        if self.dispatcher.wants("prompt_guard"):
            self.dispatcher.emit(self._event(check, uid))
        return check

    async def amoderate(self, value: Any, config: RunnableConfig | None = None) -> PromptCheck:
        """The async twin of :meth:`moderate`."""
        prompt, timings, uid = prompt_of(value), {}, self._uid(config)
        findings = self._denylist_step(prompt, timings)
        text, errors = None, []
        if not self._skip_classifiers(findings):
            try:
                text = await self.text_guard.amoderate(prompt, config)
            except BackendError as exc:
                errors = self._text_failed(exc)
        check = self._decide(prompt, findings, text, errors, timings, uid)
        if self.dispatcher.wants("prompt_guard"):
            await self.dispatcher.aemit(self._event(check, uid))
        return check

    #: The names these had before every component's full-result method was ``moderate``.
    check = moderate
    acheck = amoderate

    # -- Runnable -----------------------------------------------------------------------------------------

    @staticmethod
    def _enforce(check: PromptCheck, value: Any) -> Any:
        if not check.allowed:
            raise PromptRejectedViolation(result=check)
        return value

    def _invoke(self, value: Any, config: RunnableConfig) -> Any:
        return self._enforce(self.moderate(value, config), value)

    async def _ainvoke(self, value: Any, config: RunnableConfig) -> Any:
        return self._enforce(await self.amoderate(value, config), value)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Pipe the prompt on: returns ``input`` as given, or raises :class:`PromptRejectedViolation`.
        Use :meth:`moderate` for the :class:`PromptCheck`."""
        return self._call_with_config(self._invoke, input, config, run_type="chain")

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self._acall_with_config(self._ainvoke, input, config, run_type="chain")


__all__ = ["PromptGuard", "prompt_of"]
