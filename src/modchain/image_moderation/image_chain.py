"""ImageModerationChain: fast labels, a visual checklist and caption, and an LLM verdict on the evidence.

    chain = ImageModerationChain(labeler=NudeNetLabeler(), vqa=Blip2VQA.local(), judge=LlmVerdict(chat_model))
    result = chain.moderate("upload.jpg")        # ImageModerationResult: flagged?, category, reason, evidence
    image = chain.invoke("upload.jpg")           # the input itself; raises UnsafeImageViolation in block mode

Steps, each optional, each followed by its audit callback (``on_after_image_labels``, ``on_after_vqa``,
``on_after_verdict``):

1. **labeler** (NudeNet offline, or Amazon Rekognition): fast labels in the Rekognition v7 taxonomy.
2. **cascade**: with a labeler *and* a VQA + judge, clear cases end here: a label at or above
   ``flag_at`` flags the image, nothing at or above ``clear_below`` clears it; only the uncertain middle
   pays for VQA and the LLM. Without a cascade every image goes through every step configured.
3. **vqa** (BLIP-2, local or SageMaker): caption + the checklist, one image encoding for all questions.
4. **judge** (:class:`LlmVerdict`): policy + evidence -> ``{flag, category, reason}``.

``invoke`` pipes like every modchain component: it returns its input unchanged, or, with ``mode="block"``,
raises :class:`UnsafeImageViolation` for a flagged image (``"detect"`` only reports, in ``moderate``'s result).
A failing step raises (fail closed); ``fail_open=True`` records the error and lets the image through.
Beacons never carry image bytes, only the image's size.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ConfigDict, Field

from modchain.core.callbacks import CallbackDispatcher
from modchain.core.caller import caller_id
from modchain.core.config_base import coerce_config
from modchain.core.errors import VIOLATION_BY_FILTER, BackendError, ConfigurationError, UnsafeImageViolation
from modchain.core.events import ModerationEvent
from modchain.core.results import Outcome
from modchain.image_moderation.config import DEFAULT_CHECKLIST, Cascade, ImageModerationConfig
from modchain.image_moderation.policy import ImageEvidence
from modchain.image_moderation.results import ImageFinding

__all__ = ["DEFAULT_CHECKLIST", "Cascade", "ImageModerationChain", "ImageModerationConfig", "ImageModerationResult",
           "UnsafeImageViolation"]


class ImageModerationResult(Outcome):
    """The outcome for one image (no image data in it). ``allowed`` is ``not flagged``, in either mode."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    flagged: bool
    category: str | None = None
    reason: str = ""
    decided_by: Literal["labeler", "verdict", "text", "none", "error"] = "none"
    findings: tuple[ImageFinding, ...] = ()
    evidence: ImageEvidence | None = None
    verdict: Any = None
    text_result: Any = Field(None, description="The text guard's ModerationResult for the accompanying text.")


class ImageModerationChain(Runnable[Any, Any]):
    """Moderate images: a Runnable taking an image (path, bytes, base64, PIL, numpy, s3:// with a fetcher)
    or ``{"image": ...}``. ``invoke`` returns that input (raising :class:`UnsafeImageViolation` for a flagged
    image in block mode); ``moderate`` / ``moderate_batch`` return :class:`ImageModerationResult`."""

    def __init__(self, config: ImageModerationConfig | dict | str | None = None, *, labeler: Any = None,
                 vqa: Any = None, judge: Any = None, text_guard: Any = None, checklist: Sequence[str] | None = None,
                 cascade: Cascade | dict | None = None, mode: Literal["detect", "block"] | None = None,
                 fail_open: bool | None = None, callbacks: Sequence[Any] = (), unique_id: str | None = None,
                 load_options: dict[str, Any] | None = None) -> None:
        """``config`` (an :class:`ImageModerationConfig`, a dict or a YAML path) holds the settings; the
        keywords ``checklist``, ``cascade``, ``mode``, ``fail_open`` and ``load_options`` are shorthands that
        build it (a keyword given wins over the same field of ``config``)."""
        if labeler is None and judge is None:
            raise ConfigurationError("give a labeler, or a vqa and a judge, or all three")
        if (vqa is None) != (judge is None):
            raise ConfigurationError("vqa and judge go together: the judge decides on the VQA evidence")
        if mode is not None and mode not in ("detect", "block"):
            raise ConfigurationError('mode must be "detect" or "block"')
        self.config = coerce_config(ImageModerationConfig, config, checklist=None if checklist is None else
                                    tuple(checklist), cascade=cascade, mode=mode, fail_open=fail_open,
                                    load_options=load_options)
        self.labeler, self.vqa, self.judge, self.text_guard = labeler, vqa, judge, text_guard
        if self.config.cascade is not None and (labeler is None or vqa is None):
            raise ConfigurationError("a cascade needs both a labeler and vqa + judge")
        self.dispatcher = CallbackDispatcher(callbacks)
        self.unique_id = unique_id

    # The settings, read from the config under the keyword constructor's names.
    @property
    def checklist(self) -> tuple[str, ...]:
        return self.config.checklist

    @property
    def cascade(self) -> Cascade | None:
        return self.config.cascade

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def fail_open(self) -> bool:
        return self.config.fail_open

    @property
    def load_options(self) -> dict[str, Any]:
        return self.config.load_options

    # -- steps ---------------------------------------------------------------------------------------------

    def _load(self, value: Any) -> Any:
        from modchain.image_moderation.image_input import load_image

        source = value.get("image") if isinstance(value, dict) else value
        return load_image(source, **self.load_options)

    def _step(self, name: str, run: Any, states: list[dict[str, Any]]) -> Any:
        """Run one step for a group of images; a backend error fails closed unless ``fail_open``."""
        started = time.perf_counter()
        try:
            return run()
        except BackendError as exc:
            if not self.fail_open:
                raise
            for state in states:
                state["errors"].append(f"{name}: {type(exc).__name__}")
            return None
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            for state in states:
                state["timings"][name] = elapsed

    def _emit(self, step: str, state: dict[str, Any], found: bool, output: Any) -> None:
        if self.dispatcher.wants(step):
            described = {"width": state["image"].width, "height": state["image"].height}
            self.dispatcher.emit(ModerationEvent.of(step, state["run_id"], found, described, output,
                                                    unique_id=state["uid"], elapsed_ms=state["timings"].get(step)))

    def moderate(self, value: Any, config: RunnableConfig | None = None) -> ImageModerationResult:
        """The full result; never raises for a flagged image (``invoke`` does, in block mode).

        ``{"image": ..., "text": ...}`` also moderates the text that goes with the image (a generated caption,
        the prompt that made it, a post's body) with ``text_guard``, a text :class:`ModerationChain`; text
        that its filters block flags the whole item, with category ``"text:<filter>"``.
        """
        return self.moderate_batch([value], config)[0]

    def moderate_batch(self, values: Sequence[Any], config: RunnableConfig | None = None) -> list[ImageModerationResult]:
        """Moderate many images with one pass per step: the labeler's batch call, ONE VQA call for every
        image that needs it (BLIP-2 batches their encodings), one batch of verdicts. Timings are per step,
        for the whole batch. Raises on a backend error (fail closed) unless ``fail_open``."""
        uid = caller_id(config, self.unique_id)
        states = [{"image": self._load(v), "value": v, "run_id": str(uuid.uuid4()), "errors": [], "timings": {},
                   "uid": uid, "findings": [], "result": None} for v in values]
        self._text_step(states, config)
        self._label_step([s for s in states if s["result"] is None])
        self._judge_steps([s for s in states if s["result"] is None])
        return [s["result"] for s in states]

    def _text_step(self, states: list[dict[str, Any]], config: RunnableConfig | None) -> None:
        for state in states:
            value = state["value"]
            text = value.get("text") if isinstance(value, dict) else None
            if text is None or self.text_guard is None:
                continue
            result = self._step("text", lambda text=text: self.text_guard.moderate(text, config), [state])
            state["text_result"] = result
            if result is not None and not result.allowed:
                state["result"] = self._result(state, True, f"text:{result.blocked_by}",
                                               f"the accompanying text was blocked by the {result.blocked_by} "
                                               "filter", "text")

    def _label_step(self, states: list[dict[str, Any]]) -> None:
        if self.labeler is None or not states:
            return
        images = [s["image"] for s in states]
        label_batch = getattr(self.labeler, "label_batch", None)
        run = (lambda: label_batch(images)) if callable(label_batch) else (lambda: [self.labeler.label(i) for i in images])
        labels = self._step("image_labels", run, states) or [[] for _ in states]
        for state, findings in zip(states, labels):
            state["findings"] = list(findings)
            top = max(findings, key=lambda f: f.score, default=None)
            self._emit("image_labels", state, bool(findings), [f.model_dump(exclude_none=True) for f in findings])
            if self.judge is None or self._decided_by_labels(top):
                flagged = top is not None and (self.judge is None or top.score >= self.cascade.flag_at)
                state["result"] = self._result(state, flagged, top.label if flagged and top else None,
                                               f"labeler: {top.explanation or top.label}" if flagged and top else "",
                                               "labeler")

    def _judge_steps(self, states: list[dict[str, Any]]) -> None:
        if not states:
            return
        images = [s["image"] for s in states]
        answers = self._step("vqa", lambda: self.vqa.answer(images, list(self.checklist), caption=True), states)
        for i, state in enumerate(states):
            if answers is None:  # failed open
                self._emit("vqa", state, False, None)
                state["result"] = self._result(state, False, None, "", "error")
                continue
            state["evidence"] = ImageEvidence(caption=answers[i].caption or "", qa=answers[i].answers,
                                              labels=sorted({f.label for f in state["findings"]}))
            self._emit("vqa", state, False, state["evidence"].as_data())
        live = [s for s in states if s["result"] is None]
        if not live:
            return
        verdicts = self._step("verdict", lambda: self.judge.batch([s["evidence"] for s in live]), live)
        for i, state in enumerate(live):
            verdict = verdicts[i] if verdicts is not None else None
            self._emit("verdict", state, bool(verdict and verdict.flag), verdict.model_dump() if verdict else None)
            if verdict is None:
                state["result"] = self._result(state, False, None, "", "error")
            else:
                state["result"] = self._result(state, verdict.flag, verdict.category, verdict.reason, "verdict",
                                               verdict)

    def _decided_by_labels(self, top: ImageFinding | None) -> bool:
        if self.cascade is None:
            return False
        score = top.score if top is not None else 0.0
        return score >= self.cascade.flag_at or score < self.cascade.clear_below

    def _result(self, state: dict[str, Any], flagged: bool, category: str | None, reason: str, decided_by: str,
                verdict: Any = None) -> ImageModerationResult:
        return ImageModerationResult(
            allowed=not flagged, flagged=flagged, category=category, reason=reason, decided_by=decided_by,
            findings=tuple(state["findings"]), evidence=state.get("evidence"), verdict=verdict,
            text_result=state.get("text_result"), errors=tuple(state["errors"]), timings_ms=dict(state["timings"]),
            unique_id=state["uid"])

    # -- Runnable --------------------------------------------------------------------------------------------

    def _invoke(self, value: Any, config: RunnableConfig) -> Any:
        result = self.moderate(value, config)
        if self.mode == "block" and result.flagged:
            raise UnsafeImageViolation(result=result)
        text_result = result.text_result
        if text_result is None:
            return value
        if not text_result.allowed:
            # "detect" is about the image; the text guard's own decision still holds for the text, which is
            # never passed on once it blocked it.
            raise VIOLATION_BY_FILTER[text_result.blocked_by](result=text_result)
        return {**value, "text": text_result.output}  # the text as the text guard left it (redacted, ...)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Pipe the image on: returns ``input`` (with ``{"image", "text"}``, the text as ``text_guard`` sanitized
        it), or raises :class:`UnsafeImageViolation` (block mode) or, when ``text_guard`` blocked the text, its
        violation. Use :meth:`moderate` for the :class:`ImageModerationResult`."""
        return self._call_with_config(self._invoke, input, config, run_type="chain")
