"""What a visual-question-answering backend returns for one image (light: pydantic only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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

    def to_evidence(self):  # -> modchain.vision.policy.ImageEvidence
        """The result as :class:`~modchain.vision.policy.ImageEvidence` for an LLM verdict."""
        from modchain.vision.policy import ImageEvidence

        return ImageEvidence(caption=self.caption or "", qa=list(self.answers))
