"""Offline prompt-safety scorer: a trained linear classifier plus high-precision attack patterns.

``score_prompt_safety(text)`` returns ``(unsafe_probability, kind)``: kind is ``"jailbreak"``
(persona and role-play overrides: DAN, "developer mode", "pretend you have no guidelines",
refusal suppression), ``"injection"`` (instruction overrides, system-prompt extraction,
chat-template tag injection, exfiltration to a URL or address) or ``None`` (a plain harmful
request -- "how do I poison my neighbour" -- or a safe prompt). Standard library only.

* **Model** -- ``models/prompt_safety.json.gz``, a logistic model over word, class-abstracted and
  character n-grams plus which of the patterns below fired (``linear_model``), trained by
  ``training/train_text_classifiers.py`` on harmful requests, in-the-wild jailbreaks and
  injections, and benign prompts that merely sound risky ("how do I kill a Python process",
  "how do I ignore this warning", "what's the history of the atomic bomb"); see
  ``models/MODELS.md``. Its calibrated probability is 0.5 at the tuned decision threshold.
* **Patterns** -- hand-written, high-precision jailbreak / injection patterns (each with a
  hand-set weight, combined as a noisy-OR). Cues that are common in benign prompts too ("from now
  on you will ...", "developer mode", "stay in character") weigh 0.25 and only add up. Patterns
  need an instruction-shaped object ("ignore previous *instructions*").

The score is the larger of the two, so a textbook attack ("ignore all previous instructions")
scores >= 0.9 whatever the model says. Kind comes from the strongest pattern that fired,
else from ``models/prompt_kind.json.gz`` (one-vs-rest heads jailbreak / injection / harmful
request; None for a plain harmful request) when the score reaches 0.5. Text is matched after normalization (zero-width characters,
leetspeak, homoglyphs, fullwidth forms, elongation), so those do not evade it.

Limits: English only; quoting or discussing an attack ("what does 'ignore previous
instructions' do?") can score like the attack itself; encodings (base64, ROT13), other languages
and instructions split across messages are mostly missed. Measured accuracy: ``models/MODELS.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

from modchain.backends.local.linear_model import LinearTextModel, load_model
from modchain.backends.local.long_text import length_shift, windows
from modchain.backends.local.normalize import GateSet, compile_squeezed, squeezed_text, without_redactions

__all__ = ["pattern_features", "pattern_score", "score_prompt_safety", "score_prompt_safety_batch"]

_J, _I = "jailbreak", "injection"
_WEAK = 0.25  # cues that benign prompts use too
_RESTRICTIONS = (r"(?:restrictions|guidelines|filters|filtering|limitations|limits|censorship|policies|policy"
                 r"|safeguards|guardrails|rules|constraints|boundaries|morals|ethics|programming|alignment)")
_MODIFIERS = r"(?:(?:any|all|your|its|the|of|ethical|moral|safety|content|openai|anthropic|usual|normal) )*"
_SECRETS = (r"(?:conversation|chat(?: history)?|history|transcript|previous messages|messages|system prompt"
            r"|credentials|passwords?|api keys?|secrets?|user(?:'s|s')? (?:data|information|info|details|contacts"
            r"|emails|files|documents|inbox)|personal (?:data|information|info)|contacts|contact list|inbox)")
_OVERRIDE_OBJECTS = (r"(?:instructions?|prompts?|directions?|directives?|rules|commands?|guidelines|guidance"
                     r"|orders|constraints|programming)")
# (pattern in plain English, weight, kind); compiled to match squeezed, normalized text.
_SPEC: tuple[tuple[str, float, str], ...] = (
    # --- jailbreak: personas and role-play overrides ---
    (r"\bdo anything now\b", 0.9, _J),
    ((r"\b(?:you are|you're|act as|acting as|become|roleplay as|pretend to be|you will be) (?:now )?(?:a |an |the )?"
     r"(?:dan|stan|dude|aim|mongo tom|evil confidant)\b(?!')"), 0.8, _J),
    (r"\b(?:god|sudo|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil|opposite|dan|amoral|chaos) mode\b",
     0.8, _J),
    (r"\bdeveloper mode\b", _WEAK, _J),  # also a real Android/browser setting
    ((r"\b(?:you are|you're|you will be|chatgpt|gpt|assistant|ai)\b(?: \w+){0,3} developer mode\b"
     r"|\bdeveloper mode (?:enabled|activated)\b"), 0.8, _J),
    (r"\b(?:no|without|free of|free from|not bound by|unbound by|not restricted by) " + _MODIFIERS
     + _RESTRICTIONS + r"\b", _WEAK, _J),
    (r"\b(?:you|u)(?:'re| are| have| will have| do not have| don't have| no longer have)? (?:now )?(?:no longer"
     r" (?:bound|restricted|limited) by|not (?:bound|restricted|limited) by|no|without|free of|free from|unbound by"
     r"|freed from|released from) " + _MODIFIERS + _RESTRICTIONS + r"\b",
     0.85, _J),
    (r"\b(?:ignore|bypass|override|disable|forget|break|violate|disregard|turn off) (?:all |any |of )*(?:your|its"
     r"|openai's|anthropic's|openai|anthropic|content|safety|ethical|moral)(?: \w+)? " + _RESTRICTIONS
     + r"\b", 0.85, _J),
    (r"\b(?:pretend|imagine|act as if|act like|suppose|assume|behave as if)(?: that)? (?:you|u)(?:'re| are| have"
     r"| had| were| can| could| do not| don't| no longer)\b.{0,40}?(?:\b(?:no|without|free of|free from) (?:any )?"
     r"(?:\w+ )?" + _RESTRICTIONS + r"|\b(?:unrestricted|unfiltered|uncensored|amoral|unethical|evil|jailbroken)\b"
     r"|\bnot (?:an ai|bound|restricted|limited)\b|\bcan do anything\b)", 0.85, _J),
    (r"\bfrom now on,? (?:you|u)(?:'re| are| will| must| shall| can| should| have|'ll)\b", _WEAK, _J),
    ((r"\b(?:act|acting|respond|answer|reply|behave) (?:as|like) (?:a |an )?(?:unfiltered|uncensored|unrestricted"
     r"|amoral|unethical|evil|jailbroken|rogue)\b"), 0.85, _J),
    ((r"\b(?:unfiltered|uncensored|unrestricted|amoral|jailbroken|rogue) (?:ai|assistant|chatbot|model|llm|gpt"
     r"|chatgpt|bot|persona)\b"), 0.75, _J),
    (r"\bstay in character\b", _WEAK, _J),
    (r"\bjailbreak(?:ing|ed|s)?\b|\bjailbroken\b", _WEAK, _J),
    (r"\b(?:you can|you will|you must|you could) (?:now )?do anything\b", 0.7, _J),
    (r"\byou (?:are|have been) (?:now )?(?:freed|liberated|unshackled|released)\b", 0.7, _J),
    (r"\byou are not (?:an ai|chatgpt|an assistant|a language model|bound|restricted|limited)\b", 0.65, _J),
    (r"\b(?:dead|deceased|late) (?:grandma|grandmother|granny)\b.{0,60}\b(?:used to|would)\b", 0.5, _J),
    (r"\bnever (?:refuse|decline|say no)\b|\b(?:do not|don't) (?:ever )?(?:refuse|decline)\b", 0.55, _J),
    (r"\byou(?:'re| are) now (?:in )?(?:admin|administrator|root|debug|maintenance) (?:mode|access)\b", 0.75, _J),
    # --- injection: instruction override, prompt extraction, tag injection, exfiltration ---
    (r"\b(?:ignore|disregard|forget|skip|override|bypass|drop|delete|erase|neglect|abandon) (?:(?:all|any|each"
     r"|every|of|the|your|my|these|those|this|that) )*(?:previous|prior|above|earlier|preceding|former|original"
     r"|initial|old|existing|foregoing|system|developer|given|past|other)(?: \w+)? " + _OVERRIDE_OBJECTS + r"\b",
     0.95, _I),
    ((r"\b(?:ignore|disregard|forget) (?:(?:all|any|my|the) )?(?:previous|prior|above|earlier) (?:messages?|text"
     r"|context|conversation)\b"), 0.25, _I),  # usually a user correcting themselves
    ((r"\b(?:ignore|disregard|forget|override|bypass) (?:everything|all|anything) (?:above|before|prior|previously"
     r"|you(?:'ve| have)? (?:been told|were told|learned))\b"), 0.85, _I),
    ((r"\b(?:disregard|ignore|override|forget|bypass|replace) (?:the |your |this |any )?(?:system|developer|hidden"
     r"|original|initial) (?:prompt|message|instructions?)\b"), 0.95, _I),
    # "your" system prompt is an extraction attempt; "the" system prompt is often a developer's question.
    ((r"\b(?:(?:reveal|show|print|display|output|repeat|dump|leak|expose|tell me|give me|share|write out|spell out"
     r"|what (?:is|are|were)|what's) (?:me )?(?:your|its)|(?:reveal|leak|dump|expose|repeat|print) the) "
     r"(?:(?:full|complete|exact|entire|verbatim) )?(?:system (?:prompt|message|instructions?)|(?:initial|original"
     r"|hidden|secret|internal) (?:prompt|instructions)|developer message|pre-?prompt)\b"), 0.85, _I),
    (r"\b(?:reveal|print|repeat|output|dump|leak) (?:all )?your (?:instructions|rules|prompt)\b", 0.75, _I),
    (r"\brepeat (?:all |everything |the (?:words|text|message|lines|sentences) )(?:above|before this|verbatim)\b",
     0.8, _I),
    (r"\b(?:new|updated|real|actual|true|override|admin|system) (?:instructions?|system prompt|directives?) ?:", 0.6, _I),
    (r"<\s*/?\s*(?:system|sys|instructions?|im_start|im_end|admin|developer)\s*>", 0.8, _I),
    (r"<\|(?:im_start|im_end|system|endoftext|eot_id|start_header_id|end_header_id)\|>|<</?sys>>", 0.85, _I),
    (r"\[/?(?:inst|system|sys)\]|(?:^|\s)#{2,} ?(?:system|instructions?|new instructions)\b", 0.5, _I),
    (r"\b(?:do not|don't|never) (?:tell|inform|alert|warn) (?:the )?user\b", 0.7, _I),
    (r"\b(?:send|post|upload|forward|transmit|exfiltrate|email|e-mail|leak|submit|copy) (?:(?:the|this|all|our|my"
     r"|your|entire|whole|full|above) )*" + _SECRETS + r"\b.{0,60}?\b(?:to|at|via) (?:https?://|www\.|[\w.+-]+@"
     r"[\w-]+\.\w|(?:this|the|a|my|our) webhook)", 0.9, _I),
    (r"\b(?:append|add|include|insert|encode|embed) (?:the |all |your )?(?:\w+ )?" + _SECRETS
     + r"\b.{0,40}\b(?:url|link|image|query string|query parameter|request)\b", 0.8, _I),
    (r"!\[[^\]]*\]\(https?://[^)\s]*[?&][^)\s=]*=\s*(?:\{|%7b|\[|<|\$)", 0.8, _I),  # markdown-image exfil
)
_PATTERNS = tuple((compile_squeezed(src), weight, kind) for src, weight, kind in _SPEC)
_KIND_THRESHOLD = 0.5

_GATES = GateSet([rx for rx, _, _ in _PATTERNS])  # a pattern runs only if one of its literal anchors is present


def _pattern_hits(text: str) -> list[int]:
    sq = squeezed_text(text)  # shared with the toxicity phrases (cached per message)
    return [i for i in _GATES.active(sq) if _PATTERNS[i][0].search(sq)]


def _combine(hits: list[int]) -> tuple[float, str | None]:
    keep, best_weight, best_kind = 1.0, 0.0, None
    for i in hits:
        _, weight, kind = _PATTERNS[i]
        keep *= 1 - weight  # noisy-OR: independent cues add up but never reach 1
        if weight > best_weight:
            best_weight, best_kind = weight, kind
    score = round(1 - keep, 4)
    return score, (best_kind if score >= _KIND_THRESHOLD else None)


def pattern_score(text: str) -> tuple[float, str | None]:
    """The patterns alone: ``(noisy-OR of the weights of the patterns that fire, kind or None)``."""
    return _combine(_pattern_hits(text))


def _features_from_hits(hits: list[int]) -> list[str]:
    feats = [f"pat{i}" for i in hits]
    score, kind = _combine(hits)
    if score >= 0.25:
        feats.append(f"patscore>={0.8 if score >= 0.8 else 0.5 if score >= 0.5 else 0.25}:{kind}")
    return feats


def pattern_features(text: str) -> list[str]:
    """The pattern evidence as model features (``pat<i>`` per pattern that fires, plus a score bin)."""
    return _features_from_hits(_pattern_hits(text))


def _model() -> LinearTextModel:
    return load_model("prompt_safety")


def _is_trivial(text: str) -> bool:
    """Too little language to carry a request: punctuation, numbers, or a single word ("?", "admin", "42").
    Such a text is judged by the attack patterns alone (issue 12: these were blocked at the default)."""
    words = 0
    for token in text.split():
        if token.isascii():  # an ASCII token holds a letter iff case changes it (no per-character loop)
            if token.lower() != token.upper():
                words += 1
                if words > 1:
                    return False
            continue
        letters = sum(ch.isalpha() for ch in token)
        if letters:
            # scripts written without spaces (Chinese, Japanese, Thai) put a sentence in one "token"
            words += 1 if letters < 6 or token.isascii() else letters // 2
            if words > 1:
                return False
    return True


def _score_window(text: str, shift: float) -> tuple[float, str | None, list[int]]:
    """``(score, kind, pattern hits)`` of one window; ``shift`` raises the model's threshold (long texts)."""
    hits = _pattern_hits(text)
    pat, pat_kind = _combine(hits)
    if _is_trivial(text):
        return pat, pat_kind, hits
    model = _model()
    (logit,) = model.logits(text, _features_from_hits(hits))
    p = model.calibrate([logit - shift])["unsafe"]
    score = round(max(p, pat), 4)
    return score, pat_kind, hits


def score_prompt_safety(text: str) -> tuple[float, str | None]:
    """``(probability that text is a harmful request, jailbreak or injection attempt, kind or None)``.

    A text longer than one window is scored per window with a length-calibrated threshold
    (``long_text``): a benign 200 KB page is as unlikely to be flagged as a benign paragraph.
    """
    text = without_redactions(text)
    if not text or text.isspace():
        return 0.0, None
    parts = windows(text)
    if parts is None:
        window, (score, pat_kind, hits) = text, _score_window(text, 0.0)
    else:
        shift = length_shift(len(parts), _model().length_slope)
        scored = [(part, _score_window(part, shift)) for part in parts]
        window, (score, pat_kind, hits) = max(scored, key=lambda item: item[1][0])
    return _verdict(window, score, pat_kind, hits)


def score_prompt_safety_batch(texts: Sequence[str]) -> list[tuple[float, str | None]]:
    """``[score_prompt_safety(text) for text in texts]``, with the model's logits for all the texts that fit in
    one window computed together (``LinearTextModel.logits_batch``: one sparse product when numpy is installed)."""
    out: list[tuple[float, str | None] | None] = [None] * len(texts)
    ready: list[tuple[int, str, list[int]]] = []
    for i, text in enumerate(texts):
        prepared = without_redactions(text)
        if not prepared or prepared.isspace():
            out[i] = (0.0, None)
        elif windows(prepared) is not None:
            out[i] = score_prompt_safety(text)
        else:
            hits = _pattern_hits(prepared)
            if _is_trivial(prepared):
                out[i] = _verdict(prepared, *_combine(hits), hits)
            else:
                ready.append((i, prepared, hits))
    if ready:
        model = _model()
        families = [model.features(text, _features_from_hits(hits)) for _, text, hits in ready]
        unnamed: list[tuple[int, str, float]] = []  # unsafe, and no pattern fired to name the kind
        for (i, text, hits), (logit,) in zip(ready, model.logits_batch(families)):
            pat, pat_kind = _combine(hits)
            score = round(max(model.calibrate([logit])["unsafe"], pat), 4)
            if score >= _KIND_THRESHOLD and pat_kind is None and not hits:
                unnamed.append((i, text, score))
            else:
                out[i] = _verdict(text, score, pat_kind, hits)
        if unnamed:  # the kind model for all of them at once (three heads: a sparse product pays here)
            kind_model = load_model("prompt_kind")
            extra = _features_from_hits([])
            logits = kind_model.logits_batch([kind_model.features(text, extra) for _, text, _ in unnamed])
            for (i, _, score), row in zip(unnamed, logits):
                out[i] = score, _kind(kind_model.calibrate(row))
    return out  # type: ignore[return-value]


def _verdict(window: str, score: float, pat_kind: str | None, hits: list[int]) -> tuple[float, str | None]:
    """``(score, kind)`` from the scored window with the highest score and the patterns that fired in it."""
    if score < _KIND_THRESHOLD:
        return score, None
    if pat_kind is not None:
        return score, pat_kind
    if hits:  # only weak cues fired: the strongest still names the kind
        return score, _PATTERNS[max(hits, key=lambda i: _PATTERNS[i][1])][2]
    return score, _kind(load_model("prompt_kind").probabilities(window, _features_from_hits(hits)))


def _kind(kinds: dict[str, float]) -> str | None:
    """The kind from the prompt-kind model's probabilities: the "harmful" head wins unless jailbreak/injection is
    itself likely (a plain harmful request, None)."""
    kind = max((_J, _I), key=kinds.__getitem__)
    return kind if kinds[kind] >= 0.3 and kinds[kind] >= kinds["harmful"] / 3 else None
