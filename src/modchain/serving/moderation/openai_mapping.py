"""From modchain's labels to OpenAI's moderation categories (the ``/v1/moderations`` response).

Pure functions, no web framework: the mapping is documented in ``docs/moderation_service.md`` and tested on
its own. Scores are probabilities in [0, 1]; a category built from two labels at once ("threatening
harassment") takes the smaller of the two, a category fed by several labels takes the largest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: OpenAI's category names, in the order OpenAI's API lists them.
CATEGORIES: tuple[str, ...] = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)

#: Categories an image can feed (Rekognition-taxonomy labels from NudeNet or Rekognition).
IMAGE_CATEGORIES: frozenset[str] = frozenset({"sexual", "violence", "violence/graphic"})

#: Rekognition top-level moderation label -> OpenAI category. NudeNet reports only the nudity labels, so
#: with the default labeler an image feeds ``sexual`` alone. ``sexual/minors`` is never inferred from an
#: image: nothing in the image taxonomy says a person's age.
IMAGE_LABEL_CATEGORY: dict[str, str] = {
    "Explicit": "sexual",
    "Violence": "violence",
    "Visually Disturbing": "violence/graphic",
}

#: UNSAFE_PROMPT kinds that are attacks on the model, not a request for harmful content: OpenAI has no
#: category for them, so they raise ``flagged`` only (see ``flag_prompt_attacks``).
PROMPT_ATTACK_KINDS: frozenset[str] = frozenset({"jailbreak", "injection"})


@dataclass
class InputScores:
    """Everything one OpenAI input (a string, or a list of parts) scored, before mapping."""

    text_labels: dict[str, float] = field(default_factory=dict)  # toxicity labels + UNSAFE_PROMPT, max over texts
    prompt_kind: str | None = None  # kind of the highest UNSAFE_PROMPT score
    image_labels: dict[str, float] = field(default_factory=dict)  # Rekognition top-level label -> max score
    has_text: bool = False
    has_image: bool = False

    def add_text(self, findings: Iterable[tuple[str, float, str | None]]) -> None:
        """Fold in one text's ``(label, score, category)`` findings."""
        self.has_text = True
        for label, score, category in findings:
            if label == "UNSAFE_PROMPT" and score > self.text_labels.get(label, -1.0):
                self.prompt_kind = category
            self.text_labels[label] = max(score, self.text_labels.get(label, 0.0))

    def add_image(self, labels: Iterable[tuple[str, float]]) -> None:
        self.has_image = True
        for label, score in labels:
            self.image_labels[label] = max(score, self.image_labels.get(label, 0.0))


@dataclass(frozen=True)
class Thresholds:
    """When a category counts as flagged. ``toxicity_labels`` empty means every label may flag."""

    toxicity: float = 0.5
    prompt_safety: float = 0.5
    image: float = 0.5
    toxicity_labels: frozenset[str] = frozenset()
    prompt_safety_enabled: bool = True
    flag_prompt_attacks: bool = True


def text_category_scores(labels: Mapping[str, float], prompt_kind: str | None) -> dict[str, float]:
    """OpenAI category scores from one text's modchain label scores (missing labels count as 0)."""
    g = lambda name: float(labels.get(name, 0.0))  # noqa: E731
    harassment = max(g("HARASSMENT_OR_ABUSE"), g("INSULT"))
    violence = g("VIOLENCE_OR_THREAT")
    # A harmful request ("how do I make a bomb") is the nearest thing to OpenAI's "illicit"; a jailbreak or
    # injection is not asking for illicit content, so it does not score here. MISCONDUCT: Bedrock's filter.
    illicit = max(0.0 if prompt_kind in PROMPT_ATTACK_KINDS else g("UNSAFE_PROMPT"), g("MISCONDUCT"))
    scores = dict.fromkeys(CATEGORIES, 0.0)
    scores.update({
        "harassment": harassment,
        "harassment/threatening": min(harassment, violence),
        "hate": g("HATE_SPEECH"),
        "hate/threatening": min(g("HATE_SPEECH"), violence),
        "illicit": illicit,
        "illicit/violent": min(illicit, violence),
        "sexual": g("SEXUAL"),
        "violence": violence,
        "violence/graphic": g("GRAPHIC"),
    })
    return scores


def text_category_flags(labels: Mapping[str, float], prompt_kind: str | None,
                        thresholds: Thresholds) -> dict[str, bool]:
    """Which categories one text's scores flag. A compound category ("hate/threatening") flags when both of
    its parts flag; a toxicity label the config does not act on never flags."""
    active = thresholds.toxicity_labels

    def tox(*names: str) -> bool:
        return any(labels.get(n, 0.0) >= thresholds.toxicity and (not active or n in active) for n in names)

    harmful = 0.0 if prompt_kind in PROMPT_ATTACK_KINDS else labels.get("UNSAFE_PROMPT", 0.0)
    illicit = (thresholds.prompt_safety_enabled and harmful >= thresholds.prompt_safety) or tox("MISCONDUCT")
    harassment, hate, violence = tox("HARASSMENT_OR_ABUSE", "INSULT"), tox("HATE_SPEECH"), tox("VIOLENCE_OR_THREAT")
    flags = dict.fromkeys(CATEGORIES, False)
    flags.update({
        "harassment": harassment, "harassment/threatening": harassment and violence,
        "hate": hate, "hate/threatening": hate and violence,
        "illicit": illicit, "illicit/violent": illicit and violence,
        "sexual": tox("SEXUAL"), "violence": violence, "violence/graphic": tox("GRAPHIC"),
    })
    return flags


def to_openai_result(scores: InputScores, thresholds: Thresholds) -> dict[str, object]:
    """One ``results[]`` entry of OpenAI's response, plus a ``modchain`` extension with the raw labels."""
    text_scores = text_category_scores(scores.text_labels, scores.prompt_kind)
    text_flags = text_category_flags(scores.text_labels, scores.prompt_kind, thresholds)
    image_scores = dict.fromkeys(CATEGORIES, 0.0)
    for label, score in scores.image_labels.items():
        category = IMAGE_LABEL_CATEGORY.get(label)
        if category is not None:
            image_scores[category] = max(image_scores[category], score)
    category_scores, categories, applied = {}, {}, {}
    for name in CATEGORIES:
        text_score, image_score = text_scores[name], image_scores[name]
        category_scores[name] = round(max(text_score, image_score), 6)
        categories[name] = text_flags[name] or image_score >= thresholds.image
        applied[name] = (["text"] if scores.has_text else []) + (
            ["image"] if scores.has_image and name in IMAGE_CATEGORIES else [])
    unsafe = scores.text_labels.get("UNSAFE_PROMPT", 0.0)
    attack = (thresholds.flag_prompt_attacks and thresholds.prompt_safety_enabled
              and scores.prompt_kind in PROMPT_ATTACK_KINDS and unsafe >= thresholds.prompt_safety)
    return {
        "flagged": any(categories.values()) or attack,
        "categories": categories,
        "category_scores": category_scores,
        "category_applied_input_types": applied,
        "modchain": {
            "scores": {k: round(v, 6) for k, v in sorted(scores.text_labels.items())},
            "prompt_kind": scores.prompt_kind,
            "prompt_attack": attack,
            "image_labels": {k: round(v, 6) for k, v in sorted(scores.image_labels.items())},
        },
    }

