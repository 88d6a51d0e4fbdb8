"""What is learned about an image without showing it to an LLM: VQA answers and the evidence a judge reads.

:class:`VqaResult` is what a visual-question-answering backend (BLIP-2, local or on SageMaker) returns for
one image; :class:`ImageEvidence` is what the image verdict applies a policy to. Both are shared by the VQA
backends and the image-moderation component, so they live in ``core`` (light: pydantic only).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class QuestionAnswer(BaseModel):
    """One visual question and the VQA model's answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str
    answer: str


class ImageEvidence(BaseModel):
    """What is known about one image. Every string here may come from the image itself (text in the
    picture, a caption that quotes it), so the judge treats all of it as data, never as instructions.

    ``qa`` accepts ``QuestionAnswer`` objects, ``(question, answer)`` pairs, dicts, or a mapping
    ``{question: answer}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    caption: str = ""
    qa: tuple[QuestionAnswer, ...] = ()
    text: str | None = Field(None, description="Text extracted from the image (OCR), if any.")
    labels: tuple[str, ...] = Field((), description="Labels from a fast image labeler, if any.")

    @field_validator("qa", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, dict):
            value = list(value.items())
        if isinstance(value, (list, tuple)):
            return [{"question": v[0], "answer": v[1]} if isinstance(v, (list, tuple)) and len(v) == 2 else v
                    for v in value]
        return value

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        return value

    def as_data(self) -> dict[str, Any]:
        """The evidence as a plain JSON-able dict (what the judge is shown)."""
        data: dict[str, Any] = {"caption": self.caption,
                                "questions_and_answers": [{"question": p.question, "answer": p.answer}
                                                          for p in self.qa]}
        if self.text:
            data["text_in_image"] = self.text
        if self.labels:
            data["labels"] = list(self.labels)
        return data


class VqaResult(BaseModel):
    """The caption and the answers for one image.

    ``vision_passes`` is how many times the backend ran the vision encoder on this image to produce the
    result: 1 for the batched path however many questions were asked, one per call for the per-question
    reference path.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    caption: str | None = None
    answers: list[tuple[str, str]] = Field(default_factory=list, description="(question, answer) pairs, in order.")
    vision_passes: int = Field(0, ge=0)

    def answer_for(self, question: str) -> str | None:
        """The answer to ``question`` (the first one if it was asked twice), or None."""
        for asked, answer in self.answers:
            if asked == question:
                return answer
        return None

    def to_evidence(self) -> ImageEvidence:
        """The result as :class:`ImageEvidence` for an LLM verdict."""
        return ImageEvidence(caption=self.caption or "", qa=list(self.answers))


__all__ = ["ImageEvidence", "QuestionAnswer", "VqaResult"]
