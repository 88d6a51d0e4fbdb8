"""A small, transparent lexicon-and-pattern toxicity scorer (offline, standard library only).

``score_toxicity(text)`` returns a score in [0, 1] for each of Amazon Comprehend's seven toxicity
labels. Single words are looked up in short hand-weighted per-label lexicons; multi-word
patterns catch what no single word carries (threats, harassment, group-directed hate). Signals
combine as a noisy-OR, so several weak ones add up without ever exceeding 1. Second-person
targeting ("you are an idiot") raises INSULT; a negation right before an insult lowers it;
violent, sexual and graphic words used in a technical sense ("kill a process", "execute the
query", "heart attack", "summa cum laude") are discounted via a small benign-context list. Text
is matched after ``normalize_text`` (case, NFKC, zero-width, homoglyphs, leetspeak, elongation).

Limits, by design (a trained classifier replaces this later): English only; the lexicons are
deliberately short; no sarcasm, quotation, reported speech or reclaimed-usage handling; words
with innocent senses ("cock", "dick" as a name) score whatever their weight says; masked
("f*ck") and letter-spaced spellings are missed. It is a transparent baseline, not a measure
of harm. The slurs below are listed verbatim because a detector has to know them.
"""

from __future__ import annotations

import re

from modchain.backends.local.normalize import compile_squeezed, normalize_text, squeeze

__all__ = ["TOXICITY_LABELS", "score_toxicity"]

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


def _lookup(token: str, squeezed: str) -> tuple[tuple[str, float], ...]:
    for runs, hits in _LEXICON.get(squeezed, ()):
        token_runs = [len(r.group()) for r in _RUN.finditer(token)]
        if len(token_runs) == len(runs) and all(t >= w for t, w in zip(token_runs, runs)):
            return hits
    return ()


def score_toxicity(text: str) -> dict[str, float]:
    """Scores in [0, 1] for every label in ``TOXICITY_LABELS`` (all 0.0 for empty text)."""
    norm = normalize_text(text)
    sq = squeeze(norm)
    keep = dict.fromkeys(TOXICITY_LABELS, 1.0)  # running product of (1 - weight): noisy-OR
    tokens = _TOKEN.findall(norm)
    # Squeezing only merges letters inside a token, so both token lists line up one to one.
    for i, (token, squeezed) in enumerate(zip(tokens, _TOKEN.findall(sq))):
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
            elif label == _VIOL and not _YOU.isdisjoint(after[:2]):
                weight = min(1.0, weight + 0.35)  # "stab you"
            keep[label] *= 1 - weight
    for rx, weights in _PHRASES:
        if rx.search(sq):
            for label, weight in weights:
                keep[label] *= 1 - weight
    return {label: round(1 - keep[label], 4) for label in TOXICITY_LABELS}
