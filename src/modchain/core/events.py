"""The typed moderation event: what every component reports to its audit handlers after each step.

Every step of every component (a text filter, an image labeler, a document list, a stream window, a
generation attempt, ...) ends with one :class:`ModerationEvent`. A handler receives it in one of two ways:

* ``on_event(event)`` (sync or async): the typed event, for every step. New code should use this.
* ``on_after_<step>(moderation_beacon, unique_id)``: the beacon dict of the Comprehend moderation chain
  (``moderation_chain_id``, ``moderation_type``, ``moderation_status``, ``moderation_input``,
  ``moderation_output``), built by :meth:`ModerationEvent.to_beacon`. Kept as an adapter so that handlers
  written for ``langchain_experimental.comprehend_moderation`` (``on_after_pii``, ``on_after_toxicity``,
  ``on_after_prompt_safety``) and modchain's other ``on_after_*`` hooks keep working unchanged.

Privacy: an event is only built when a handler asked for it, and it carries what the beacon carries. For
text steps ``input`` is the checked text itself (the caller's own handler asked for it); image steps carry
the image's size, never its bytes; screening carries a path or a prompt's length, never the prompt. The
``repr`` of an event leaves ``input`` and ``output`` out, so logging an event does not log the text.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

#: Every step that reports an event; ``on_after_<step>`` is the step's beacon hook.
ModerationStep = Literal[
    "pii", "toxicity", "prompt_safety",  # text filters
    "image_labels", "vqa", "verdict",  # image moderation
    "documents", "tool_output", "stream",  # RAG, agents, streaming
    "prompt_guard", "generation", "screen",  # safe generation, dataset screening
    "detection", "segmentation",  # the text -> mask visual chain
]
MODERATION_STEPS: tuple[str, ...] = get_args(ModerationStep)

#: LABELS_FOUND: the step found something; LABELS_NOT_FOUND: it found nothing; ERROR: its backend failed.
EventStatus = Literal["LABELS_FOUND", "LABELS_NOT_FOUND", "ERROR"]

#: moderation_type values in beacons, kept from the Comprehend moderation chain for compatibility.
BEACON_TYPES = {"pii": "PII", "toxicity": "Toxicity", "prompt_safety": "PromptSafety",
                "image_labels": "ImageLabels", "vqa": "VisualQuestionAnswering", "verdict": "ImageVerdict",
                "documents": "RetrievedDocuments", "tool_output": "ToolOutput", "stream": "StreamWindow",
                "prompt_guard": "PromptGuard", "generation": "ImageGeneration", "screen": "DatasetScreening",
                "detection": "ObjectDetection", "segmentation": "Segmentation"}


def make_beacon(chain_id: str, step: str, found: bool, moderation_input: Any, backend_output: Any,
                status: str | None = None) -> dict[str, Any]:
    """The beacon dict an ``on_after_<step>`` handler receives: chain id, step, status, checked input, output.

    Status is LABELS_FOUND, LABELS_NOT_FOUND, or ERROR when the backend failed (output then names the error).
    """
    return {
        "moderation_chain_id": chain_id,
        "moderation_type": BEACON_TYPES.get(step, step),
        "moderation_status": status or ("LABELS_FOUND" if found else "LABELS_NOT_FOUND"),
        "moderation_input": moderation_input,
        "moderation_output": backend_output,
    }


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ModerationEvent(BaseModel):
    """One step's audit event (frozen; ``input`` and ``output`` are kept as given, not copied).

    Attributes:
        step: which step ran (:data:`ModerationStep`); ``on_after_<step>`` is its beacon hook.
        chain_id: one id per component call (a text chain run, an image, a stream, a generation); the
            LangChain custom event ``modchain.<step>`` of the same text-chain call has it as ``run_id``.
        status: ``LABELS_FOUND``, ``LABELS_NOT_FOUND`` or ``ERROR`` (the backend failed; ``output`` names it).
        unique_id: the caller's id (``unique_id`` / ``user_id`` in ``config["configurable"]``, or the
            component's own), the second argument of every ``on_after_<step>``.
        input: what was checked, as the beacon's ``moderation_input`` (texts, or a description of an image).
        output: the step's backend output, as the beacon's ``moderation_output``.
        elapsed_ms: the step's backend time where the component measures it per step, else None.
        timestamp: when the event was made (UTC).
    """

    model_config = ConfigDict(frozen=True)

    step: ModerationStep
    chain_id: str
    status: EventStatus
    unique_id: str | None = None
    input: Any = Field(None, repr=False)
    output: Any = Field(None, repr=False)
    elapsed_ms: float | None = None
    timestamp: datetime = Field(default_factory=_now)

    @classmethod
    def of(cls, step: str, chain_id: str, found: bool, input: Any, output: Any, *, unique_id: str | None = None,
           error: bool = False, elapsed_ms: float | None = None) -> ModerationEvent:
        """The event of a step that found something (``found``) or not, or whose backend failed (``error``)."""
        status = "ERROR" if error else ("LABELS_FOUND" if found else "LABELS_NOT_FOUND")
        return cls(step=step, chain_id=chain_id, status=status, unique_id=unique_id, input=input, output=output,
                   elapsed_ms=elapsed_ms)

    @property
    def found(self) -> bool:
        """Whether the step found something (status ``LABELS_FOUND``)."""
        return self.status == "LABELS_FOUND"

    @property
    def failed(self) -> bool:
        """Whether the step's backend failed (status ``ERROR``)."""
        return self.status == "ERROR"

    @property
    def moderation_type(self) -> str:
        """The beacon's ``moderation_type`` name of this step (``PII``, ``Toxicity``, ``ImageLabels``, ...)."""
        return BEACON_TYPES.get(self.step, self.step)

    def to_beacon(self) -> dict[str, Any]:
        """The ``on_after_<step>`` beacon dict, exactly as modchain has always built it."""
        return make_beacon(self.chain_id, self.step, self.found, self.input, self.output, status=self.status)
