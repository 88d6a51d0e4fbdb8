"""Offline toxicity scorer: a trained linear classifier decides, a transparent lexicon attributes labels.

``score_toxicity(text)`` returns a score in [0, 1] for each of Amazon Comprehend's seven toxicity
labels. Two parts (standard library only, no torch; numpy, when installed, only speeds up batches of texts,
with the same scores: ``score_toxicity_batch``):

* **Decision** -- ``models/toxicity.json.gz``, a logistic model over word, class-abstracted and
  character n-grams (``linear_model``), trained by ``training/train_text_classifiers.py`` on public
  data plus hand-written functional cases (see ``models/MODELS.md``). Its calibrated probability
  ``p`` is 0.5 at the tuned decision threshold. It is trained to flag hate against protected groups
  (derogation, dehumanisation, threats, slurs, in many phrasings and misspellings), threats and
  severe abuse aimed at a person, and sexual / graphic content; and *not* to flag counter-speech
  that quotes or condemns hate, neutral or positive mentions of groups, reclaimed slurs, negated
  hate, profanity aimed at no one, or abuse of objects and non-protected groups.
* **Decisive phrases** -- a few hand-written phrase patterns aimed at a person ("I know where you
  live", "kys", "send nudes", "I will kill you", graphic injury) set a floor under ``p`` (their
  weight); the group-hate phrases do not, since counter-speech quotes them.
* **Attribution** -- the hand-weighted lexicon and phrase patterns below say which labels the
  text touches (PROFANITY for "fuck", VIOLENCE_OR_THREAT for "I will kill you", HATE_SPEECH for a
  group or slur ...). Each label's score is ``p`` times its lexicon strength relative to the
  strongest label, so **the highest label always equals p**: "any label >= 0.5" is exactly the
  model's decision, and the other labels rank below it. With no lexicon evidence, ``p`` goes to
  HATE_SPEECH when a protected group or slur is mentioned, else to INSULT when the text addresses
  "you", else to HARASSMENT_OR_ABUSE.

Consequences worth knowing: bare profanity ("fuck, I missed the bus") scores PROFANITY well below
0.5 by design (lower the threshold, or filter on the lexicon yourself, if you must block every
swear word); a label's score is never higher than the overall toxicity probability.

Text is matched after normalization (case, NFKC, zero-width characters, homoglyphs, leetspeak,
elongation, letter-spacing), so "ｙｏｕ ａｒｅ ａｎ іdіоt" and "I h a t e ..." are scored like the
plain spelling. Limits: English only; sarcasm and context across messages are not modelled; see
``models/MODELS.md`` for measured accuracy and the cases it still gets wrong. The slurs in the
lexicon are listed verbatim because a detector has to know them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from modchain.backends.local.linear_model import LinearTextModel, load_model
from modchain.backends.local.long_text import (
    DECISIVE_SENTENCE,
    SENTENCE_GATE,
    length_shift,
    sentence_parts,
    windows,
)
from modchain.backends.local.normalize import (
    GateSet,
    compile_squeezed,
    normalize_text,
    squeeze,
    squeezed_text,
    without_redactions,
)

__all__ = ["TOXICITY_LABELS", "attribute", "lexicon_scores", "score_toxicity", "score_toxicity_batch",
           "toxicity_probability"]

TOXICITY_LABELS: tuple[str, ...] = (
    "PROFANITY", "HATE_SPEECH", "INSULT", "GRAPHIC", "HARASSMENT_OR_ABUSE", "SEXUAL", "VIOLENCE_OR_THREAT",
)
_PROF, _HATE, _INS, _GRAPH, _HARASS, _SEX, _VIOL = TOXICITY_LABELS

# label -> {weight: space-separated words}. Inflections are listed rather than stemmed so that
# nothing matches by accident.
_LEXICON_SPEC: dict[str, dict[float, str]] = {
    _PROF: {
        0.85: "fuck fucks fucking fuckin fucked fucker fuckers motherfucker motherfucking cunt",
        0.75: "shit shits shitty bullshit bitch bitches bastard asshole assholes arsehole dickhead "
              "wanker twat prick stfu wtf goddamn fck fuk fking phuck",
        0.45: "damn crap ass arse dick piss pissed",
    },
    _INS: {
        0.6: "idiot idiots idiotic moron morons moronic imbecile imbeciles dumbass retard retarded cretin "
             "halfwit nitwit dimwit dipshit jackass douchebag scumbag cunt wanker twat dickhead asshole",
        0.45: "stupid dumb loser losers pathetic worthless jerk clown fool bitch prick ugly freak creep "
              "twit dork douche slut whore",
        0.12: "useless trash garbage fat lazy coward pig disgusting",  # insults only when aimed
    },
    _HATE: {
        0.85: "nigger niggers faggot faggots kike kikes spic spics chink chinks wetback wetbacks "
              "tranny trannies raghead ragheads towelhead towelheads gook gooks beaner beaners paki pakis",
        0.5: "nigga niggas fag fags dyke dykes retard retards",  # also reclaimed or casual usage
    },
    _GRAPH: {
        0.75: "disembowel disemboweled decapitate decapitated decapitation dismember dismembered "
              "dismemberment mutilate mutilated mutilation entrails",
        0.5: "gore gory gruesome bloodbath",
        0.3: "torture tortured",
    },
    _SEX: {
        0.85: "blowjob blowjobs handjob handjobs dildo dildos milf hentai creampie",
        0.7: "porn porno pornography pornographic horny orgasm masturbate masturbating masturbation "
             "tits slut sluts whore whores threesome",
        0.55: "nude nudes boobs pussy cock erotic xxx nsfw anal fetish hooker bdsm cum",
        0.3: "sex sexy naked penis vagina rape raped",
    },
    _VIOL: {
        0.6: "murder murdered murdering murderer behead beheaded beheading strangle strangled lynch "
             "lynching massacre slaughter slaughtered rape raped stab stabbed stabbing",
        0.45: "kill kills killing killed bomb bombing torture tortured assault assaulted",
        0.3: "shoot shooting attack attacked attacking execute executed",
    },
}


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


# Neighbouring words that give violent/sexual/graphic words a technical or idiomatic sense.
_BENIGN_CONTEXT = _words("""
process processes pid pids task tasks job jobs thread threads server servers container containers
pod pods session sessions command commands signal switch app apps application program programs tab
tabs window windows query queries connection connections script scripts code function functions
statement statements plan order orders trade trades test tests cell cells macro transaction request
requests instruction instructions photo photos picture pictures video videos film movie scene scenes
footage email emails message messages hoops time vector vectors surface surfaces dragon dragons
monster monsters boss enemy enemies zombie zombies weeds bacteria germs bug bugs lights engine music
noise mood messenger pawn queen king port heart panic anxiety asthma sql injection ddos xss csrf
brute replay phishing laude summa magna eye eyes truth chromosome chromosomes education ratio 9
""")
_SOFT_LABELS = frozenset({_VIOL, _SEX, _GRAPH})
_YOU = _words("you u ya ur your youre you're yourself yall y'all thou")
_NEGATION = _words("not never no isn't aren't ain't wasn't")
_RUN = re.compile(r"(.)\1*")
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _build_lexicon() -> dict[str, list[tuple[tuple[int, ...], tuple[tuple[str, float], ...]]]]:
    merged: dict[str, dict[str, float]] = {}
    for label, tiers in _LEXICON_SPEC.items():
        for weight, words in tiers.items():
            for word in words.split():
                merged.setdefault(word, {})[label] = weight
    # Keyed by the squeezed spelling so "stuupid" finds "stupid"; the letter-run lengths stored
    # with each word stop "as" from matching "ass" (a run may be longer, never shorter).
    lexicon: dict[str, list[tuple[tuple[int, ...], tuple[tuple[str, float], ...]]]] = {}
    for word, hits in merged.items():
        runs = tuple(len(r.group()) for r in _RUN.finditer(word))
        lexicon.setdefault(squeeze(word), []).append((runs, tuple(hits.items())))
    return lexicon


_LEXICON = _build_lexicon()

_GROUPS = (r"(?:jews|muslims|christians|blacks|whites|asians|mexicans|immigrants|migrants|refugees|gays"
           r"|lesbians|homosexuals|trans people|transgender people|women|arabs|hispanics|latinos|africans"
           r"|indians|chinese|hindus|sikhs|gypsies|roma)")
_PERSON = r"(?:you|u|ya|him|her|them|your \w+|everyone|everybody|y'all)"
# (pattern in plain English, {label: weight}); compiled to match squeezed, normalized text.
_PHRASE_SPEC: tuple[tuple[str, dict[str, float]], ...] = (
    (r"\b(?:i|we)(?:'ll| will| shall|'m going to| am going to|'m gonna| am gonna| gonna| wanna| want to"
     r"|'re going to| are going to)(?: \w+){0,2}? (?:kill|murder|stab|shoot|strangle|hurt|beat|rape|behead"
     r"|slaughter|destroy|end|break|find|hunt|burn|bury|choke)\w* " + _PERSON + r"\b", {_VIOL: 0.95, _HARASS: 0.5}),
    ((r"\b(?:you|u) (?:should|deserve to|need to|ought to|better|must|will|are going to|gonna) (?:just |all )?"
     r"(?:go )?(?:die|be killed|get killed|get shot|be shot|rot|burn|suffer|be raped|get raped|hang)\b"),
     {_VIOL: 0.9, _HARASS: 0.7}),
    (r"\b(?:kill|hang|shoot|end) (?:yo)?urself\b|\bkys\b|\bgo die\b|\bdrop dead\b", {_HARASS: 0.9, _VIOL: 0.7}),
    (r"\bi know where (?:you|u) live\b", {_VIOL: 0.8, _HARASS: 0.9}),
    (r"\b(?:you|u)(?:'re| are| r) (?:so )?(?:dead|going to die|gonna die)\b", {_VIOL: 0.75, _HARASS: 0.5}),
    (r"\bwatch your back\b", {_VIOL: 0.5, _HARASS: 0.5}),
    ((r"\b(?:kill|murder|stab|shoot|bomb|shoot up|blow up) (?:the |a |this |that |my |our |your )?(?:school|church"
     r"|mosque|synagogue|temple|mall|office|concert|crowd|people|everyone|everybody)\b"), {_VIOL: 0.9}),
    (r"\b(?:i'll|i will|gonna) (?:make|see) (?:you|u) (?:suffer|pay|bleed|regret)", {_VIOL: 0.8, _HARASS: 0.6}),
    (r"\bshut (?:the (?:fuck|hell) )?up\b", {_HARASS: 0.6}),
    (r"\b(?:nobody|no one|noone) (?:likes|loves|cares about|wants|needs|will ever love|will miss) (?:you|u)\b",
     {_HARASS: 0.85, _INS: 0.4}),
    (r"\b(?:everyone|everybody) (?:hates|despises) (?:you|u)\b", {_HARASS: 0.85, _INS: 0.4}),
    ((r"\b(?:you|u)(?:'re| are| r)? (?:a |an |such a |nothing but a |just a )?(?:waste of (?:space|air|oxygen|skin)"
     r"|piece of (?:shit|garbage|trash|crap)|disgrace|failure|nobody)\b"), {_INS: 0.85, _HARASS: 0.7}),
    (r"\bfuck (?:you|u|off|yourself)\b", {_HARASS: 0.75, _INS: 0.6}),
    (r"\b(?:go to hell|get lost|piss off|go away and die)\b", {_HARASS: 0.6}),
    (r"\bsend (?:me )?(?:your |some )?(?:nudes|naked (?:pics|pictures|photos))\b", {_HARASS: 0.8, _SEX: 0.9}),
    (r"\bsuck my (?:dick|cock)\b", {_SEX: 0.85, _HARASS: 0.7}),
    (r"\b(?:i'll|i will|gonna) (?:leak|post|share|expose) your (?:nudes|photos|pics|address|secrets)\b",
     {_HARASS: 0.9}),
    (r"\b(?:all |the |those |these )?" + _GROUPS + r" (?:are|r|is) (?:all |just |nothing but |such )?(?:animals"
     r"|vermin|rats|cockroaches|parasites|subhuman|savages|a disease|a plague|a cancer|scum|filth|inferior"
     r"|not human|trash|garbage|pigs|dogs|apes|monkeys|evil)\b", {_HATE: 0.9}),
    (r"\b(?:kill|exterminate|gas|deport|eliminate|wipe out|get rid of) (?:all )?(?:the |those |these )?"
     + _GROUPS + r"\b", {_HATE: 0.85, _VIOL: 0.6}),
    (r"\b" + _GROUPS + r" should (?:all )?(?:die|be killed|be exterminated|be gassed|be deported|burn|hang)\b",
     {_HATE: 0.9, _VIOL: 0.6}),
    (r"\bi hate (?:all )?(?:the )?" + _GROUPS + r"\b", {_HATE: 0.75}),
    (r"\bgo back to (?:your|ur) (?:own )?country\b", {_HATE: 0.6, _HARASS: 0.5}),
    ((r"\b(?:blood|guts|brains|entrails|intestines) (?:everywhere|spilling|spilled|splattered|gushing|pouring out"
     r"|oozing)\b"), {_GRAPH: 0.8}),
    ((r"\b(?:severed|mangled|mutilated|rotting|charred|decapitated|dismembered) (?:head|heads|body|bodies|corpse"
     r"|corpses|limbs?|flesh|remains)\b"), {_GRAPH: 0.85}),
    ((r"\b(?:ripped|torn|cut|gouged|slit) (?:out |open |off )?(?:his|her|their|your|the) (?:eyes?|throat|guts"
     r"|stomach|skin|face|head|intestines)\b|\b(?:skinned|burned|burnt) alive\b"), {_GRAPH: 0.8, _VIOL: 0.6}),
)
_PHRASES = tuple((compile_squeezed(src), tuple(w.items())) for src, w in _PHRASE_SPEC)
# Phrases aimed at a person (threats, "kys", sexual harassment, graphic injury) are decisive on their
# own: the score is at least their strongest label weight. Phrases about groups are not, because
# counter-speech quotes them ("saying 'immigrants are vermin' is vile"); the model decides those.
_DECISIVE = tuple(_GROUPS not in src for src, _ in _PHRASE_SPEC)
_PHRASE_GATES = GateSet([rx for rx, _ in _PHRASES])  # a phrase runs only if one of its literal anchors is present


def _phrase_hits(sq: str) -> list[int]:
    return [i for i in _PHRASE_GATES.active(sq) if _PHRASES[i][0].search(sq)]


def _decisive(hits: list[int]) -> float:
    return max((w for i in hits if _DECISIVE[i] for _, w in _PHRASES[i][1]), default=0.0)


def _lookup(token: str, squeezed: str) -> tuple[tuple[str, float], ...]:
    for runs, hits in _LEXICON.get(squeezed, ()):
        token_runs = [len(r.group()) for r in _RUN.finditer(token)]
        if len(token_runs) == len(runs) and all(t >= w for t, w in zip(token_runs, runs)):
            return hits
    return ()


def lexicon_scores(text: str) -> dict[str, float]:
    """The hand-weighted lexicon/phrase evidence per label (noisy-OR in [0, 1])."""
    return _lexicon(text)[0]


def _lexicon(text: str) -> tuple[dict[str, float], float]:
    """(evidence per label, strongest weight of a decisive phrase that fired)."""
    norm = normalize_text(text)
    sq = squeezed_text(text)  # == squeeze(norm), shared with the pattern checks
    keep = dict.fromkeys(TOXICITY_LABELS, 1.0)  # running product of (1 - weight): noisy-OR
    aimed_insult = 0.0
    tokens = _TOKEN.findall(norm)
    # Squeezing only merges letters inside a token, so both token lists line up one to one. Only the few tokens
    # whose squeezed form is a lexicon key can hit: the others are skipped in one pass.
    squeezed_tokens = _TOKEN.findall(sq)[: len(tokens)]
    for i in [i for i, squeezed in enumerate(squeezed_tokens) if squeezed in _LEXICON]:
        token, squeezed = tokens[i], squeezed_tokens[i]
        hits = _lookup(token, squeezed)
        if not hits:
            continue
        before, after = tokens[max(0, i - 5) : i], tokens[i + 1 : i + 5]
        aimed = not _YOU.isdisjoint(before) or not _YOU.isdisjoint(after[:2])
        benign = not _BENIGN_CONTEXT.isdisjoint(before[-2:]) or not _BENIGN_CONTEXT.isdisjoint(after)
        for label, weight in hits:
            if label in _SOFT_LABELS and benign:
                weight *= 0.1  # "kill the process", "heart attack", "shoot a video"
            elif label == _INS and not _NEGATION.isdisjoint(before[-2:]):
                weight *= 0.3  # "you are not stupid"
            elif label == _INS and aimed:
                weight = min(1.0, weight + 0.35)
                keep[_HARASS] *= 1 - 0.5 * weight  # an insult aimed at someone is also abuse
                aimed_insult = max(aimed_insult, weight)
            elif label == _VIOL and not _YOU.isdisjoint(after[:2]):
                weight = min(1.0, weight + 0.35)  # "stab you"
            keep[label] *= 1 - weight
    hits = _phrase_hits(sq)
    for i in hits:
        for label, weight in _PHRASES[i][1]:
            keep[label] *= 1 - weight
    # An insult aimed at the reader ("you are a useless idiot") is abuse even inside an otherwise friendly
    # message, where the model's probability is diluted by the benign sentences around it.
    floor = _AIMED_INSULT_FLOOR * aimed_insult if aimed_insult >= _AIMED_INSULT_MIN else 0.0
    return {label: round(1 - keep[label], 4) for label in TOXICITY_LABELS}, max(_decisive(hits), floor)


_AIMED_INSULT_MIN = 0.9  # the strongest insult tier only ("idiot", "moron"; weight after +0.35 for "you")
_AIMED_INSULT_FLOOR = 0.7
_ZERO = dict.fromkeys(TOXICITY_LABELS, 0.0)
_ATTRIBUTION_FLOOR = 0.05  # below this, attribution is skipped (the lexicon pass is half the cost)


def _model() -> LinearTextModel:
    return load_model("toxicity")


def toxicity_probability(text: str, shift: float = 0.0) -> tuple[float, frozenset[str]]:
    """(calibrated probability that ``text`` is toxic, the lexicon classes the model saw in it); ``shift``
    raises the decision threshold (a window of a long text, see ``long_text``)."""
    model = _model()
    families = model.features(text)
    (logit,) = model.logits_from_features(families)
    p = model.calibrate([logit - shift])["toxic"]
    return p, frozenset(f for f in families["f"] if "&" not in f)


def score_toxicity(text: str) -> dict[str, float]:
    """Scores in [0, 1] for every label in ``TOXICITY_LABELS``; the highest equals the model's
    calibrated toxicity probability (0.5 = its decision threshold). All 0.0 for empty text.

    A text longer than one window is scored per window, with the model's threshold raised for the number
    of windows (``long_text``); each label takes its highest window. A decisive phrase counts in full. A text of
    one window that comes near the threshold has its sentences scored too (``long_text.sentence_parts``)."""
    text = without_redactions(text)
    if not text or text.isspace():
        return dict(_ZERO)
    parts = windows(text)
    if parts is None:
        return _with_sentences(text, _score_window(text, 0.0))
    return _score_windows(parts)


def _with_sentences(text: str, labels: dict[str, float]) -> dict[str, float]:
    """``labels`` of a one-window text, raised to its most toxic sentence's where that sentence is decisive
    (``long_text``: an insult between two ordinary requests is diluted by them when the text is scored whole)."""
    if not SENTENCE_GATE <= max(labels.values()) < 0.5:
        return labels
    parts = sentence_parts(text)
    if parts is None:
        return labels
    shift = length_shift(len(parts), _model().length_slope)
    best = max((_score_window(part, shift) for part in parts), key=lambda scored: max(scored.values()))
    if max(best.values()) < DECISIVE_SENTENCE:
        return labels
    return {label: max(labels[label], best[label]) for label in TOXICITY_LABELS}


def _score_windows(parts: list[str]) -> dict[str, float]:
    shift = length_shift(len(parts), _model().length_slope)
    scored = [_score_window(part, shift) for part in parts]
    return {label: max(s[label] for s in scored) for label in TOXICITY_LABELS}


def score_toxicity_batch(texts: Sequence[str]) -> list[dict[str, float]]:
    """``[score_toxicity(text) for text in texts]``, with the model's logits for all the texts that fit in one
    window computed together (``LinearTextModel.logits_batch``: one sparse product when numpy is installed)."""
    out: list[dict[str, float] | None] = [None] * len(texts)
    ready: list[tuple[int, str]] = []
    for i, text in enumerate(texts):
        text = without_redactions(text)
        if not text or text.isspace():
            out[i] = dict(_ZERO)
            continue
        parts = windows(text)
        if parts is None:
            ready.append((i, text))
        else:
            out[i] = _score_windows(parts)
    if ready:
        model = _model()
        families = [model.features(text) for _, text in ready]
        for (i, text), fams, (logit,) in zip(ready, families, model.logits_batch(families)):
            p = model.calibrate([logit])["toxic"]
            out[i] = _with_sentences(text, _verdict(text, p, frozenset(f for f in fams["f"] if "&" not in f)))
    return out  # type: ignore[return-value]


def _score_window(text: str, shift: float) -> dict[str, float]:
    p, classes = toxicity_probability(text, shift)
    return _verdict(text, p, classes)


def _verdict(text: str, p: float, classes: frozenset[str]) -> dict[str, float]:
    """The seven labels of one window from the model's probability ``p`` and the lexicon classes it saw."""
    if p < _ATTRIBUTION_FLOOR:  # nearly every benign message: only the decisive phrases can change it
        p = max(p, _decisive(_phrase_hits(squeezed_text(text))))
        if p < _ATTRIBUTION_FLOOR:
            return _unattributed(p, classes)
    evidence, decisive = _lexicon(text)
    return _spread(max(p, decisive), evidence, classes)


def _unattributed(p: float, classes: frozenset[str]) -> dict[str, float]:
    """A score too low to attribute goes to one label: a group or slur is hate, "you" an insult, else abuse."""
    label = _HATE if "<GROUP>" in classes or "<SLUR>" in classes else _INS if "<YOU>" in classes else _HARASS
    return {lab: (round(p, 4) if lab == label else 0.0) for lab in TOXICITY_LABELS}


def _spread(p: float, evidence: dict[str, float], classes: frozenset[str]) -> dict[str, float]:
    """``p`` over the labels in proportion to the lexicon ``evidence``; the strongest label gets ``p``."""
    if "<GROUP>" in classes or "<SLUR>" in classes:
        # hate is about groups: a group or slur makes HATE_SPEECH at least as strong as anything else
        evidence[_HATE] = max(evidence.values()) or 1.0
    top = max(evidence.values())
    if top <= 0.0:
        label = _INS if "<YOU>" in classes else _HARASS
        evidence[label], top = 1.0, 1.0
    return {label: round(p * evidence[label] / top, 4) for label in TOXICITY_LABELS}


def attribute(text: str, p: float) -> dict[str, float]:
    """The seven labels for an overall toxicity probability ``p`` from another model (the encoder tiers):
    the same lexicon attribution as ``score_toxicity``, so the highest label equals ``p`` and "any label
    >= 0.5" is that model's decision. The fast model's decisive-phrase floor is not applied: ``p`` decides."""
    if not text or text.isspace():
        return dict(_ZERO)
    classes = frozenset(f for f in _model().features(text)["f"] if "&" not in f)
    if p < _ATTRIBUTION_FLOOR:
        return _unattributed(p, classes)
    return _spread(p, _lexicon(text)[0], classes)
