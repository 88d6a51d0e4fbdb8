"""A written image-moderation policy and the evidence an LLM applies it to.

:class:`ModerationPolicy` is a list of categories with descriptions (default: the top-level categories of the
Amazon Rekognition content moderation taxonomy, version 7), loadable from a dict or YAML like every modchain
config. :class:`ImageEvidence` is what was learned about one image without showing it to the LLM: a caption,
a checklist of visual questions with their answers, and optionally text found in the image and labels from a
fast labeler.

YAML::

    name: family-forum
    instructions: Swimwear at a beach is allowed.
    categories:
      - name: Violence
        description: Weapons in use, fighting, injuries, blood.
      - name: Alcohol
        description: Drinking or displaying alcoholic beverages.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modchain.core.config import StrictModel
from modchain.core.vqa import ImageEvidence, QuestionAnswer  # noqa: F401 - moved to core (VQA backends share them)

#: Category name used for a flagged verdict whose category is not in the policy.
OTHER_CATEGORY = "Other"


def normalize_category(name: str) -> str:
    """A category name as a lookup key: case, spacing, punctuation and ``&``/``and`` do not matter."""
    lowered = str(name).lower().replace("&", " and ")
    return "".join(re.findall(r"[0-9a-z]+", lowered))


class PolicyCategory(BaseModel):
    """One category of the policy: a name the verdict must use and what it covers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(min_length=1, max_length=2000)

    @field_validator("name")
    @classmethod
    def _clean_name(cls, name: str) -> str:
        name = " ".join(name.split())
        if not name or not normalize_category(name):
            raise ValueError("a category name needs at least one letter or digit")
        return name


#: Amazon Rekognition content moderation taxonomy v7, top-level categories (descriptions are modchain's own).
REKOGNITION_V7_CATEGORIES: tuple[PolicyCategory, ...] = (
    PolicyCategory(name="Explicit", description="Explicit nudity (exposed genitals, female nipples or "
                   "buttocks), sexual activity, sex toys and explicit sexual situations."),
    PolicyCategory(name="Non-Explicit Nudity of Intimate parts and Kissing", description="Non-explicit "
                   "nudity: bare backs, implied or obstructed nudity, intimate parts covered only by hands or "
                   "objects, and kissing on the lips."),
    PolicyCategory(name="Swimwear or Underwear", description="People shown in swimwear, bikinis, "
                   "underwear or lingerie."),
    PolicyCategory(name="Violence", description="Weapons used or pointed at people, fighting, physical "
                   "violence, blood, injuries, and violent or threatening acts."),
    PolicyCategory(name="Visually Disturbing", description="Gore, corpses, emaciated bodies, self-harm, "
                   "crashes, explosions and disasters, and other shocking imagery."),
    PolicyCategory(name="Drugs & Tobacco", description="Illegal drugs, drug use or paraphernalia (pipes, "
                   "syringes), pills, smoking, cigarettes, vapes and other tobacco products."),
    PolicyCategory(name="Alcohol", description="Drinking alcohol and alcoholic beverages such as beer, wine "
                   "and spirits."),
    PolicyCategory(name="Rude Gestures", description="Obscene or offensive hand gestures such as the middle "
                   "finger."),
    PolicyCategory(name="Gambling", description="Gambling: casinos, slot machines, playing cards or dice "
                   "used for betting, betting slips."),
    PolicyCategory(name="Hate Symbols", description="Symbols of hate groups and extremist ideologies, such "
                   "as Nazi or white supremacist symbols and flags."),
)


class ModerationPolicy(StrictModel):
    """The categories an image must not show, with extra instructions for the judge."""

    name: str = Field("rekognition-v7", description="A name for logs and results.")
    categories: tuple[PolicyCategory, ...] = Field(
        REKOGNITION_V7_CATEGORIES, min_length=1, description="What to flag; the verdict names one of these."
    )
    instructions: str | None = Field(
        None, max_length=4000, description="Extra guidance for the judge (exceptions, context of the platform)."
    )

    @model_validator(mode="after")
    def _distinct_names(self) -> ModerationPolicy:
        keys = [normalize_category(c.name) for c in self.categories]
        if len(set(keys)) != len(keys):
            raise ValueError("category names must be distinct (ignoring case and punctuation)")
        if normalize_category(OTHER_CATEGORY) in keys:
            raise ValueError(f"{OTHER_CATEGORY!r} is reserved for categories outside the policy")
        return self

    @property
    def category_names(self) -> list[str]:
        return [c.name for c in self.categories]

    def match(self, name: str | None) -> str | None:
        """The policy's own spelling of ``name`` (case- and punctuation-insensitive), or None if unknown."""
        if name is None:
            return None
        key = normalize_category(name)
        for category in self.categories:
            if normalize_category(category.name) == key:
                return category.name
        return None

    def render(self) -> str:
        """The policy as prompt text."""
        lines = [f"- {c.name}: {c.description}" for c in self.categories]
        text = "\n".join(lines)
        if self.instructions:
            text += f"\n\nAdditional instructions: {self.instructions}"
        return text
