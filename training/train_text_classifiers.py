"""Train the offline toxicity and prompt-safety classifiers shipped in modchain (reproducible).

    python training/train_text_classifiers.py --data ../shared/data --out src/modchain/backends/local/models

Needs scikit-learn and numpy (training/requirements.txt); the package itself never imports them.
Everything is seeded and the sparse matrices are built in a fixed order, so the same data, Python and
library versions give byte-identical model files (``--check-reproducible`` trains twice and compares).

Decontamination: every text the script trains or tunes on -- after template expansion, spelling and
surface variants and chat composition -- is checked against the hashes of the evaluation texts with
``<data>/../decontam/decontam.py`` (``--decontam DIR`` to point elsewhere); any overlap stops the script
before a model is written. ``--dump-texts FILE`` writes every such text (one JSON object per line:
text, label, source, split), and ``training/trained_text_hashes.txt.gz`` records their normalized hashes
so the test suite can check that its generalisation set shares no text with them.

What it does
  1. Loads the labeled public data in --data (see its README; licenses MIT / Apache-2.0 /
     CDLA-Permissive-2.0 / ODC-BY), benign prose (the Python documentation shipped with CPython and this
     project's own passages) and the hand-written cases in training/cases/ (toxicity_cases.jsonl,
     prompt_cases.jsonl: literal texts written for modchain, each with split train|dev).
  2. Splits every source into train and dev (templates by template, shared data by a seeded hash of
     the row id), featurizes with modchain.backends.local.linear_model.featurize (the same code the
     package runs), fits L2 logistic regressions, prunes small weights and writes gzip JSON models:
       toxicity.json.gz       head "toxic": hate against protected groups, threats, slurs, severe
                              personal abuse, sexual / graphic content (not: counter-speech, neutral or
                              positive group mentions, reclaimed slurs, untargeted profanity, abuse of
                              objects or non-protected groups)
       prompt_safety.json.gz  head "unsafe": harmful requests, jailbreaks, prompt injection
       prompt_kind.json.gz    heads "jailbreak", "injection", "harmful" (one-vs-rest over unsafe prompts; the
                              strongest names the kind, "harmful" meaning none; consulted for unsafe prompts)
  3. Picks each head's decision threshold on the train split's out-of-fold scores, stores it as a
     calibration shift (so 0.5 is the decision), and prints the dev metrics table, computed with the
     exported pure-Python models, and the per-message latency.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import random
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "training")]

import prose  # noqa: E402

from modchain.backends.local import linear_model as lm  # noqa: E402
from modchain.backends.local import long_text  # noqa: E402
from modchain.backends.local.normalize import normalize_for_model  # noqa: E402

SEED = 20240611
PS_C = 16.0  # prompt-safety head: inverse L2 strength
PS_MIN_RECALL = 0.90  # prompt-safety threshold: the highest-F1 one with at least this out-of-fold recall
CASES = ROOT / "training" / "cases"


# ============================================================================ lexicons
def _words(*chunks: str) -> list[str]:
    return [w.strip() for chunk in chunks for w in chunk.split(",") if w.strip()]


TOX_LEXICON: dict[str, list[str]] = {
    "<GROUP>": _words(
        "women, woman, girls, females, trans people, transgender people, trans person, transgender person, trans women,"
        "trans woman, trans men, trans man, transgender, transgenders, trans, gay people, gay person, gay men, gay man,"
        "gays, gay, lesbians, lesbian, bisexual people, bisexuals, bisexual, homosexuals, homosexual, queer people,"
        "lgbt people, lgbtq people, lgbt, lgbtq, black people, black person, black man, black men, black woman,"
        "black women, black folks, black kids, blacks, african americans, african american, africans, african,"
        "disabled people, disabled person, the disabled, disabled, people with disabilities, person with a disability,"
        "handicapped people, wheelchair users, wheelchair user, autistic people, autistic person, deaf people,"
        "deaf person, blind people, mentally disabled people, mentally ill people, muslims, muslim, muslim women,"
        "islam, immigrants, immigrant, refugees, refugee, migrants, migrant, asylum seekers, asylum seeker,"
        "foreigners, foreigner, illegals, jews, jew, jewish people, jewish, asians, asian people, asian, chinese people,"
        "chinese person, chinese, japanese people, koreans, filipinos, mexicans, mexican, latinos, latino, latinas,"
        "hispanics, hispanic, arabs, arab, middle easterners, indians, indian people, pakistanis, pakistani, hindus,"
        "hindu, sikhs, sikh, christians, christian, catholics, catholic, gypsies, gypsy, roma, travellers,"
        "native americans, native american, indigenous people, nigerians, somalis, palestinians, israelis,"
        "white people, whites, elderly people, old people"),
    "<SLUR>": _words(
        "nigger, niggers, faggot, faggots, kike, kikes, kyke, kykes, spic, spics, chink, chinks, wetback, wetbacks,"
        "tranny, trannies, raghead, ragheads, towelhead, towelheads, gook, gooks, beaner, beaners, paki, pakis,"
        "retard, retards, coon, coons, sand nigger, sand niggers, shemale, shemales, fag, fags, cripple, cripples,"
        "spastic, spastics, spaz, mongoloid, mongoloids, gyppo, gyppos, negro, negroes, camel jockey, camel jockeys,"
        "darkie, darkies, jigaboo, porch monkey, slant eye, slanteyes, zipperhead, kaffir, wop, dago, abo, abos"),
    "<RSLUR>": _words("nigga, niggas, niggaz, queer, queers, dyke, dykes, bitch, bitches, hoe, hoes, homo, homos"),
    "<NEG>": _words(
        "disgusting, vile, filthy, dirty, worthless, inferior, stupid, dumb, idiots, idiot, morons, moron, evil,"
        "dangerous, criminals, criminal, terrorists, rapists, thieves, liars, lazy, ugly, pathetic, useless,"
        "retarded, degenerates, degenerate, freaks, perverts, pedophiles, primitive, barbaric, repulsive, revolting,"
        "sick, gross, lowlifes, brainless, dishonest, greedy, violent, ignorant, lesser, abominations, abomination,"
        "a burden, burden, scum, trash, garbage, filth, a disgrace, disgrace, losers, stinking, smelly, stink,"
        "crooks, crook, nasty, awful, terrible, horrible, hideous, the worst, a menace, menace, a problem, pathetic"),
    "<DEHUM>": _words(
        "vermin, rats, animals, animal, apes, monkeys, parasites, parasite, cockroaches, roaches, subhuman,"
        "sub-human, savages, a plague, plague, a disease, disease, a cancer, cancer, a virus, virus, pigs, dogs,"
        "beasts, pests, insects, leeches, an infestation, infestation, creatures, not human, less than human,"
        "human garbage, cattle, swine, filth"),
    "<POS>": _words(
        "great, wonderful, lovely, amazing, brilliant, beautiful, valued, welcome, equal, human, matter, kind, smart,"
        "intelligent, strong, capable, fantastic, awesome, good people, good, nice, friendly, talented, inspiring,"
        "respect, love, proud, admire, support, deserve rights, rights, resilient, the best, heroes"),
    "<VIOL>": _words(
        "kill, killed, killing, murder, murdered, shoot, shot, shooting, stab, stabbed, hang, hanged, hanging, lynch,"
        "lynched, burn, burned, burnt, gas, gassed, exterminate, exterminated, extermination, slaughter, butcher,"
        "execute, executed, eradicate, eradicated, wipe out, wiped out, eliminate, eliminated, get rid of, deport,"
        "deported, beat, beaten, beat up, hurt, die, dead, death, bomb, rape, raped, torture, tortured, drown,"
        "behead, purge, purged, genocide, cull, sterilize, sterilized, destroy, destroyed, bullet, massacre,"
        "slit, strangle, run over, round up, lock up, locked up, cages, camps, wiped off, suffer, rot, perish,"
        "disappear, vanish, bleed, gone"),
    "<HATEV>": _words(
        "hate, hated, hates, hating, despise, loathe, detest, can't stand, cannot stand, sick of, tired of,"
        "disgusted by, disgust, contempt, hatred, make me sick, makes me sick, can't bear, cannot bear"),
    "<YOU>": _words("you, your, you're, youre, u, ya, yourself, ur, y'all, yall"),
    "<PROF>": _words(
        "fuck, fucking, fucked, fucker, fuckers, fuckin, motherfucker, motherfucking, shit, shitty, bullshit, damn,"
        "goddamn, crap, hell, ass, asshole, assholes, bastard, bastards, cunt, cunts, dick, dickhead, piss, prick,"
        "twat, wanker, screw, bloody, f*ck, f*cking, sh*t"),
    "<NOT>": _words(
        "not, never, no, don't, doesn't, isn't, aren't, wasn't, weren't, won't, wouldn't, shouldn't, can't, cannot,"
        "nobody, no one, nothing, none, ain't, didn't, nor"),
    "<REPORT>": _words(
        "say, says, said, saying, statement, statements, claim, claims, claiming, claimed, tweet, tweeted, tweets,"
        "wrote, write, writes, writing, post, posted, posts, posting, comment, comments, call, calls, calling,"
        "called, phrase, phrases, words, quote, quoted, quoting, told, tell, telling, read, sign, graffiti, slogan,"
        "chant, chanted, shouted, yelled, remarks, rhetoric, lie, lies, myth, idea, belief, believe that,"
        "stereotype, stereotypes, hear, heard, repeat"),
    "<COUNTER>": _words(
        "wrong, hurtful, unacceptable, offensive, racist, racism, sexist, sexism, bigoted, bigot, bigots, bigotry,"
        "homophobic, homophobia, transphobic, transphobia, islamophobic, islamophobia, antisemitic, antisemitism,"
        "xenophobic, hateful, hate speech, misguided, condemn, condemned, condemns, shameful, ashamed, appalling,"
        "disgraceful, dehumanising, dehumanizing, harmful, ban, banned, report, reported, prosecuted, arrested,"
        "fight, against, stop, never acceptable, not okay, not ok, excuse, sickening, vile thing, educate,"
        "discrimination, prejudice, oppression, inexcusable, ignorant"),
    "<NONPROT>": _words(
        "lawyers, politicians, bankers, journalists, landlords, accountants, cyclists, gamers, influencers, hipsters,"
        "tourists, billionaires, ceos, critics, referees, telemarketers, salespeople, fans, programmers, tech bros,"
        "lobbyists, estate agents, dealers, pigeons, mosquitoes, coworkers, neighbours, neighbors, trolls, spammers,"
        "managers, dentists, golfers, artists, plumbers, bloggers, stockbrokers, mimes, wasps, drivers, bosses,"
        "teachers, doctors, nurses, cops, police, capitalists, communists, liberals, conservatives, republicans,"
        "democrats, vegans, boomers, millennials, lawyer, politician, banker, landlord, referee, critic"),
    "<I>": _words("i, i'm, im, i'll, i've, we, we'll, we're, me, my, our, us"),
    "<MODAL>": _words(
        "should, must, need to, needs to, ought to, deserve to, deserves to, deserve, deserves, will, gonna,"
        "going to, want to, wanna, have to, has to, let's, lets, time to"),
}

PS_LEXICON: dict[str, list[str]] = {
    # idioms and technical terms that contain a harm word (longest match wins, so these absorb it)
    "<IDIOM>": _words(
        "attack surface, attack vector, attack vectors, panic attack, heart attack, asthma attack, kill switch,"
        "kill time, kill it, killing it, photo shoot, shoot a video, shoot a photo, shoot photos, shoot video,"
        "shoot me an email, shoot me a message, shoot me a text, execute the query, execute a query, execute the script,"
        "execute a script, execute the plan, blow up a balloon, crack an egg, crack the code, life hack, life hacks,"
        "hack together, hackathon, killer feature, killer app, dead code, dead link, dead battery, break a leg,"
        "fire drill, fire alarm, firewall, bug bounty, penetration test, pen test, red team, capture the flag,"
        "smoke test, stress test, brute force attacks, ddos attacks, sql injection, dependency injection"),
    "<HARMV>": _words(
        "kill, killing, murder, poison, poisoning, stab, shoot, strangle, hurt, harm, injure, torture, kidnap,"
        "abduct, rape, assault, attack, bomb, blow up, hack, hack into, hacking, steal, stealing, rob, launder,"
        "smuggle, counterfeit, forge, stalk, blackmail, extort, scam, defraud, dox, doxx, harass, bully, groom,"
        "traffic, drug, spike, burn down, sabotage, break into, cheat, evade, crack, infect, destroy, overdose,"
        "suicide, kill myself, end my life, cut myself, self-harm, choke, drown, behead, shoot up, frame, threaten,"
        "intimidate, manipulate, exploit, sell, buy, synthesize, make, build, get away with, spy on, track,"
        "impersonate, plagiarize, bribe, trick, lure, seduce, molest, abuse, gut, skin alive, dismember, maim,"
        "disfigure, mutilate, cyberbully, burgle, burglarize, phish, shoplift, vandalize, arson, terrorize,"
        "assassinate, execute, slaughter, massacre, starve, suffocate, electrocute, run over, kill themselves,"
        "hang myself, jump off, die"),
    "<PERSON>": _words(
        "someone, somebody, a person, person, people, human, humans, a human, my wife, wife, husband, my husband,"
        "neighbor, neighbour, my neighbor, my neighbour, boss, my boss, coworker, my coworker, ex, my ex,"
        "girlfriend, boyfriend, child, children, kid, kids, baby, him, her, mom, dad, teacher, classmate, cop,"
        "police officer, stranger, victim, victims, grandmother, grandma, roommate, brother, sister, family, man,"
        "woman, girl, boy, student, teenager, teen, minor, minors, elderly, senator, president, politician,"
        "journalist, celebrity, date, partner, employee, customer, patient, my date, a child, a kid, toddler"),
    "<TECH>": _words(
        "process, processes, thread, threads, task, job, jobs, program, app, application, server, container, pod,"
        "session, connection, script, query, command, python, java, linux, terminal, daemon, service, node, docker,"
        "kubernetes, git, branch, loop, function, method, code, bug, warning, error, cache, port, socket, instance,"
        "database, table, file, files, folder, directory, stack, cron, sql, api, browser, css, pid, sigterm,"
        "kill -9, pkill, tmux, vim, ec2, terraform, gpu, cpu, regex, string, variable, dependency, dependencies,"
        "npm, pylint, mypy, eslint, pytest, pandas, csv, json, excel, spreadsheet, laptop, phone settings, router,"
        "firewall, workflow, rebase, commit, repo, node_modules, redis, postgres, mysql, celery, spark, gradle"),
    "<FICTION>": _words(
        "game, video game, minecraft, call of duty, gta, fortnite, skyrim, elden ring, hitman, among us, d&d, dnd,"
        "chess, boss, final boss, zombie, zombies, dragon, npc, character, characters, level, novel, story, book,"
        "movie, film, scene, screenplay, fiction, fictional, villain, plot, poem, song, campaign, mystery,"
        "thriller, short story, comic, play, roleplay game, board game, battle royale, halloween, costume, prop"),
    "<PEST>": _words(
        "weeds, weed, mosquito, mosquitoes, ants, mice, fruit flies, flies, bacteria, germs, mold, mould, bugs,"
        "bed bugs, pests, termites, lobster, fish, chicken, pig, stump, tree, roaches, cockroaches, aphids, slugs,"
        "wasps, fleas, lice, virus on my computer, moss, vine"),
    "<EDU>": _words(
        "history, historical, happened, why did, what is, what was, what are, definition, define, meaning, mean,"
        "explain, caused, causes, who was, documentary, research, paper, studies, study, statistics, origin,"
        "difference between, how did, what does, why was, why were, when was, where was, significance"),
    "<WEAPON>": _words(
        "bomb, bombs, explosive, explosives, gun, guns, firearm, pistol, rifle, ammo, ammunition, silencer,"
        "nerve agent, nerve gas, sarin, ricin, anthrax, napalm, thermite, molotov, molotov cocktail, grenade, ied,"
        "poison, toxin, chlorine gas, bioweapon, chemical weapon, dirty bomb, zip gun, ghost gun, pipe bomb,"
        "weapon, weapons, knife, machete, untraceable gun, assault rifle"),
    "<DRUG>": _words(
        "meth, methamphetamine, cocaine, crack cocaine, heroin, fentanyl, lsd, mdma, drugs, opioids, pills,"
        "ketamine, ghb, rohypnol, roofies, date rape drug, narcotics, oxycodone"),
    "<STEALTH>": _words(
        "without getting caught, without being caught, without anyone knowing, without them knowing,"
        "without her knowing, without him knowing, get away with, getting away with, undetected, untraceable,"
        "secretly, covertly, without leaving a trace, without a trace, unnoticed, without being noticed,"
        "not get caught, avoid detection, evade police, look like an accident, make it look like, without consent,"
        "without permission, anonymously, don't get caught, never be found, without anyone noticing,"
        "without the police knowing, without a background check, behind their back, on the dark web, dark web,"
        "not get caught, untraceable, hide, hidden, off the books"),
    "<INSTR>": _words(
        "how to, how do i, how can i, how do you, how would i, how could i, step by step, step-by-step,"
        "instructions, guide, tutorial, detailed, ways to, best way, easiest way, quickest way, teach me,"
        "show me how, explain how, tell me how, give me, write, create, generate, develop, provide, recipe, plan,"
        "list, draft, design, help me"),
    "<SAFETY>": _words(
        "safely, safe, safety, protect, prevent, prevention, detect, defend, defense, defence, secure, report,"
        "recognize, recognise, signs, warning signs, awareness, dispose, legally, legal, legitimate, my own,"
        "ethical, authorized, authorised, permission, harden, mitigate, mitigation, avoid, victim of, help a friend,"
        "warn, symptoms, treat, treatment, cope, support, quit, stop"),
    "<JB>": _words(
        "dan, stan, developer mode, no restrictions, unfiltered, uncensored, unrestricted, stay in character,"
        "do anything now, jailbreak, jailbroken, amoral, opposite mode, god mode, no ethics, no morals,"
        "no guidelines, no filters, without any restrictions, never refuse, don't refuse, not refuse,"
        "disclaimers, disclaimer, warnings, content policy, openai, chatgpt, antigpt, evil, hypothetically,"
        "simulation, simulate, fictional world, two responses, both, policies, guidelines, rules, censorship,"
        "free from, broken free, confines, character, persona, roleplay, pretend, act as, you are now"),
    "<INJ>": _words(
        "ignore, disregard, forget, override, system prompt, system message, instructions, previous instructions,"
        "prior instructions, above, new instructions, reveal, print, repeat, verbatim, initial prompt,"
        "hidden instructions, password, secret key, api keys, admin, administrator, exfiltrate, forward, send,"
        "webhook, url, http, https, inst, sys, system"),
    "<YOU>": _words("you, your, you're, yourself, u"),
    "<NOT>": _words("not, never, no, don't, doesn't, isn't, aren't, won't, can't, cannot, without"),
}

TOX_CONFIG = {"max_tokens": 600, "abstract_order": 3, "window": 6, "char_orders": [4, 4], "max_char_tokens": 150,
              "negatable": ["<NEG>", "<DEHUM>", "<POS>", "<VIOL>", "<HATEV>"], "negator": "<NOT>", "sentinel": True}
PS_CONFIG = {"max_tokens": 1500, "abstract_order": 3, "window": 5, "char_orders": [4, 4], "max_char_tokens": 150,
             "negatable": ["<HARMV>"], "negator": "<NOT>", "sentinel": True}


def lexicon_map(spec: dict[str, list[str]]) -> dict[str, str]:
    """phrase (tokenized the way the featurizer tokenizes) -> class; the first class listed wins."""
    out: dict[str, str] = {}
    for cls, phrases in spec.items():
        for p in phrases:
            key = " ".join(lm.tokenize(normalize_for_model(p)))
            if key and key not in out:
                out[key] = cls
    return out


# ============================================================================ data
stable_unit = prose.stable_unit  # deterministic number in [0, 1) from a string (split assignment)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Example:
    __slots__ = ("text", "label", "source", "split", "group", "weight", "func", "kind", "labels")

    def __init__(self, text, label, source, split, group, weight=1.0, func="", kind=None, labels=None):
        self.text, self.label, self.source, self.split = text, int(label), source, split
        self.group, self.weight, self.func, self.kind, self.labels = group, weight, func, kind, labels


_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5"})


def perturb(text: str, rng: random.Random, lexicon: dict[str, str]) -> tuple[str, str]:
    """One spelling variation of the kind functional test suites use, applied to a key word."""
    words = text.split(" ")
    cands = [i for i, w in enumerate(words) if len(re.sub(r"\W", "", w)) >= 4]
    keyed = [i for i in cands if re.sub(r"[^\w']", "", words[i].lower()) in lexicon]
    if not cands:
        return text, "none"
    i = rng.choice(keyed or cands)
    w = words[i]
    core = re.sub(r"\W+$", "", w)
    tail = w[len(core):]
    kind = rng.choice(["swap", "drop", "join", "space", "leet"])
    if kind == "swap" and len(core) >= 4:
        j = rng.randrange(1, len(core) - 2)
        core = core[:j] + core[j + 1] + core[j] + core[j + 2:]
    elif kind == "drop" and len(core) >= 4:
        j = rng.randrange(1, len(core) - 1)
        core = core[:j] + core[j + 1:]
    elif kind == "join" and len(words) > 1:
        j = i if i < len(words) - 1 else i - 1
        words[j : j + 2] = [words[j] + words[j + 1]]
        return " ".join(words), kind
    elif kind == "space":
        core = " ".join(core)
    else:
        kind = "leet"
        core = core.translate(_LEET) if any(c in "aeios" for c in core) else core
    words[i] = core + tail
    return " ".join(words), kind


def expand_templates(rows: list[dict], source: str, rng: random.Random, per_template: dict[str, int]):
    """Templated + literal hand-written cases -> Examples (fillers are picked from the template's split)."""
    fillers: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if "slot" in r and "values" in r and "template" not in r:
            fillers[(r["slot"], r["split"])] = r["values"]
    out: list[Example] = []
    for n, r in enumerate(rows):
        if "text" in r:
            out.append(Example(r["text"], r["label"], source, r["split"], f"{source}:lit:{n}", func=r["func"],
                               kind=r.get("kind"), labels=r.get("labels")))
            continue
        if "template" not in r:
            continue
        t, split = r["template"], r["split"]
        if "values" in r:  # prompt-safety style: one slot with its own values
            combos = [{r["slot"]: v} for v in r["values"]]
        elif "slots" in r:  # several slots with their own values: n distinct random combinations
            names = sorted(r["slots"])
            seen: set[tuple[str, ...]] = set()
            combos = []
            total = 1
            for name in names:
                total *= len(r["slots"][name])
            while len(combos) < min(r["n"], total):
                pick = tuple(rng.choice(r["slots"][name]) for name in names)
                if pick not in seen:
                    seen.add(pick)
                    combos.append(dict(zip(names, pick)))
        else:
            slots = sorted(set(re.findall(r"\{(\w)\}", t)))  # toxicity style: shared fillers
            pools = [fillers[(s, split)] for s in slots]
            k = per_template[split]
            combos = []
            if len(slots) == 1:
                vals = list(pools[0])
                rng.shuffle(vals)
                combos = [{slots[0]: v} for v in vals[: k if split == "train" else len(vals)]]
            else:
                for _ in range(k):
                    combos.append({s: rng.choice(p) for s, p in zip(slots, pools)})
        for c in combos:
            text = t
            for s, v in c.items():
                text = text.replace("{" + s + "}", v)
            # Templates repeat a {g} twice ("The only good {g} is a dead {g}"): same value both times.
            out.append(Example(text, r["label"], source, split, f"{source}:tpl:{n}", func=r["func"],
                               kind=r.get("kind"), labels=r.get("labels")))
    return out


def surface_variants(exs: list[Example], rng: random.Random, frac: float, wrappers: bool = False) -> list[Example]:
    """Casing/punctuation variants (lower-case, no final stop, shouting) for a fraction of train cases;
    with ``wrappers``, also prompt-template wrappings ("Question: ...\nAnswer:"), for both labels alike."""
    out = []
    kinds = ["lower", "nostop", "upper", "excl"] + (["qa", "chat"] if wrappers else [])
    for e in exs:
        if e.split != "train" or rng.random() > frac:
            continue
        v = rng.choice(kinds)
        t = e.text
        if v == "qa":
            t = f"Question: {t}\nAnswer:"
        elif v == "chat":
            t = f"User: {t}\nAssistant:"
        else:
            t = t.lower() if v == "lower" else t.rstrip(".") if v == "nostop" else t.upper() if v == "upper" else t.rstrip(".") + "!!"
        out.append(Example(t, e.label, e.source, e.split, e.group, e.weight, e.func, e.kind, e.labels))
    return out


_TYPO_KINDS = ("swap", "drop", "double", "lower", "nopunct")


def _typo(text: str, rng: random.Random) -> str:
    """One everyday slip: swapped / dropped / doubled letter in a word, all lower case, or no punctuation."""
    kind = rng.choice(_TYPO_KINDS)
    if kind == "lower":
        return text.lower()
    if kind == "nopunct":
        return re.sub(r"[?.!,]", "", text)
    words = text.split(" ")
    cands = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 4]
    if not cands:
        return text
    i = rng.choice(cands)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    if kind == "swap":
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif kind == "drop":
        w = w[:j] + w[j + 1:]
    else:
        w = w[:j] + w[j] + w[j:]
    words[i] = w
    return " ".join(words)


def _fill_contact(t: str, rng: random.Random) -> str:
    names = ["li", "omar", "kate", "j.smith", "nina", "raj", "sofia", "tom.b", "wei", "amara"]
    return (t.replace("{email}", f"{rng.choice(names)}{rng.randint(1, 99)}@{rng.choice(['mail.com', 'example.org', 'corp.net'])}")
             .replace("{phone}", f"+1 {rng.randint(200, 989)} {rng.randint(200, 989)} {rng.randint(1000, 9999)}")
             .replace("{num2}", str(rng.randint(0, 255))).replace("{num}", str(rng.randint(100, 999999)))
             .replace("{user}", rng.choice(names) + str(rng.randint(1, 999)))
             .replace("{code}", "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(8))))


def compose_chats(rows: list[dict], rng: random.Random, source: str, extra_requests: dict[str, list[str]] | None = None
                  ) -> list[Example]:
    """Everyday multi-sentence chat messages composed from hand-written pools (training/cases/everyday_chat.jsonl):
    an optional greeting, an optional contact detail / ticket id, one to four ordinary requests, an optional
    sign-off; some with a typo, some cut at 200 characters mid-word (as chat UIs and benchmarks do). Train and
    dev use disjoint pools. ``extra_requests`` (split -> prompts) mixes in other benign prompts as requests."""
    pools: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if "pool" in r:
            pools[(r["pool"], r["split"])] = r["values"]
    out: list[Example] = []
    for n, r in enumerate(rows):
        if "compose" not in r:
            continue
        split = r["split"]
        reqs = pools[("request", split)]
        more = (extra_requests or {}).get(split, [])
        for k in range(r["n"]):
            parts = []
            if rng.random() < 0.7:
                parts.append(rng.choice(pools[("opener", split)]))
            if rng.random() < 0.3:
                parts.append(_fill_contact(rng.choice(pools[("contact", split)]), rng))
            for _ in range(rng.choice((1, 1, 2, 2, 2, 3, 3, 4))):
                parts.append(rng.choice(more) if more and rng.random() < 0.1 else rng.choice(reqs))
            if rng.random() < 0.2 and len(parts) > 2:  # contact detail in the middle
                i = rng.randrange(1, len(parts))
                parts.insert(i, _fill_contact(rng.choice(pools[("contact", split)]), rng))
            if rng.random() < 0.45:
                parts.append(rng.choice(pools[("closer", split)]))
            text = " ".join(dict.fromkeys(parts))
            if rng.random() < 0.3:
                text = _typo(text, rng)
            if rng.random() < 0.4 and len(text) > 200:
                text = text[:200]
            out.append(Example(text, r["label"], source, split, f"{source}:{n}:{k}", func=r["func"]))
    return out


def everyday_and_borderline(rng: random.Random) -> tuple[list[Example], list[Example]]:
    """(composed everyday chat messages, sensitive-but-fine prompts): benign for both models."""
    border = expand_templates(read_jsonl(CASES / "borderline_benign.jsonl"), "borderline", rng, {"train": 99, "dev": 99})
    extra = {sp: [e.text for e in border if e.split == sp] for sp in ("train", "dev")}
    chats = compose_chats(read_jsonl(CASES / "everyday_chat.jsonl"), rng, "everyday_chat", extra)
    return chats, border


# ---------------------------------------------------------------------------- benign prose (documents)
def rag_passages() -> dict[str, list[str]]:
    return {split: [text for _, text in rows] for split, rows in prose.rag_passages().items()}


pydoc_paragraphs = prose.pydoc_paragraphs


def prose_documents(rng: random.Random, n: dict[str, int]) -> list[Example]:
    """Benign documents of 150 to 9,000 characters (log-uniform) made of consecutive-looking paragraphs of
    this project's passages and the Python reference. Long benign text is what the prompt-safety model
    flagged most (issue 12): each length must be seen as "not a prompt"."""
    rag, pydoc = rag_passages(), pydoc_paragraphs()
    out = []
    for split in ("train", "dev"):
        pools = {"passages": rag[split], "pydoc": pydoc[split]}
        for k in range(n[split]):
            name = "passages" if k % 2 == 0 else "pydoc"
            size = int(math.exp(rng.uniform(math.log(150), math.log(9000))))
            text = prose.concatenate(pools[name], rng, size)[:size]
            text = text[: text.rfind(" ")] if " " in text[100:] else text  # end on a word
            out.append(Example(text, 0, f"prose_{name}", split, f"prose:{name}:{split}:{k}", 1.0, "prose"))
    return out


def prose_fragments(rng: random.Random, n: int) -> list[Example]:
    """Fragments of one to four words from the train half of the prose (names, nouns, short phrases): with
    few features a short text scores near the model's bias, and the bias is set by mostly-toxic / mostly-
    unsafe shared data, so single ordinary words ("lookup", "Jane") were flagged without these."""
    words = [w for para in pydoc_paragraphs()["train"] + rag_passages()["train"] for w in para.split()]
    out = []
    for k in range(n):
        start = rng.randrange(len(words) - 4)
        text = " ".join(words[start : start + rng.choice((1, 1, 2, 3, 4))]).strip(".,;:()")
        out.append(Example(text or "ok", 0, "prose_fragments", "train", f"frag:{k}", 0.5, "prose"))
    return out


def toxicity_data(data: Path, rng: random.Random) -> list[Example]:
    exs: list[Example] = []
    # --- hand-written cases (written for modchain from the language of real comments and chats)
    cases = expand_templates(read_jsonl(CASES / "toxicity_cases.jsonl"), "cases", rng, {"train": 0, "dev": 0})
    lex = lexicon_map(TOX_LEXICON)
    spelled = []
    for e in cases:
        # spelling variations of train cases of both labels (misspelt hate is still hate; a typo in a
        # benign sentence must not make it hateful)
        if e.split == "train" and rng.random() < 0.3:
            t, kind = perturb(e.text, rng, lex)
            if t != e.text:
                spelled.append(Example(t, e.label, e.source, e.split, e.group, e.weight, "spell_" + kind, e.kind, e.labels))
    cases += spelled
    cases += surface_variants(cases, rng, 0.2)
    for e in cases:
        e.weight = 4.0  # few next to the shared data, and the closest to the cases that matter
    exs += cases
    # --- everyday chat and sensitive-but-fine prompts: never toxic
    chats, border = everyday_and_borderline(random.Random(SEED + 7))
    exs += chats
    exs += border + surface_variants(border, rng, 0.5)
    # --- benign prose documents and benign prompts: ordinary text with no toxic feature must score low
    # (with few such texts the bias, set by mostly-toxic shared data, flagged recipes and API docs)
    exs += prose_documents(random.Random(SEED + 11), {"train": 2000, "dev": 300})
    exs += prose_fragments(random.Random(SEED + 17), 1500)
    # the benign hand-written prompts (trivial inputs, system messages, requests) are not toxic either
    exs += [Example(r["text"], 0, "prompt_cases_benign", r["split"], f"pc:{n}", 1.0, r["func"])
            for n, r in enumerate(read_jsonl(CASES / "prompt_cases.jsonl")) if r["label"] == 0]
    ps = data / "prompt_safety"
    for name, rows in (("self_instruct", read_jsonl(ps / "self_instruct_benign.jsonl")),
                       ("wildguard_benign", read_jsonl(ps / "wildguard_benign.jsonl")),
                       ("mitre_frr", read_jsonl(ps / "cyberseceval_mitre_frr.jsonl")),
                       ("coconot_contrast", [r for r in read_jsonl(ps / "coconot.jsonl") if not r["unsafe"]])):
        for r in rows:
            split = "dev" if stable_unit(f"tox-{name}:{r['id']}") < 0.2 else "train"
            exs.append(Example(r["text"], 0, f"{name}_prompts", split, f"tox-{name}:{r['id']}", 0.5, "prompt"))
    # --- shared data
    for r in read_jsonl(data / "toxicity" / "davidson_hate.jsonl"):
        cls = r["extra"]["class"]
        split = "dev" if stable_unit("davidson:" + str(r["id"])) < 0.15 else "train"
        if cls == 0:
            exs.append(Example(r["text"], 1, "davidson_hate", split, f"dav:{r['id']}", 0.6, "hate"))
        elif cls == 2:
            exs.append(Example(r["text"], 0, "davidson_neither", split, f"dav:{r['id']}", 0.6, "neither"))
        elif stable_unit("davidson-off:" + str(r["id"])) < 0.25:
            # "offensive" is mostly profanity and casual / reclaimed slur use: not hate
            exs.append(Example(r["text"], 0, "davidson_offensive", split, f"dav:{r['id']}", 0.25, "offensive"))
    for r in read_jsonl(data / "toxicity" / "hatexplain_valtest.jsonl"):
        split = "dev" if stable_unit("hatexplain:" + str(r["id"])) < 0.25 else "train"
        majority = r["extra"]["majority_label"]
        if majority == "hatespeech":
            exs.append(Example(r["text"], 1, "hatexplain_hate", split, f"hx:{r['id']}", 1.0, "hate"))
        elif majority == "normal":
            exs.append(Example(r["text"], 0, "hatexplain_normal", split, f"hx:{r['id']}", 1.0, "normal"))
        elif split == "dev":  # "offensive": reported on dev, not trained on (mixes insults, profanity, slurs)
            exs.append(Example(r["text"], 1, "hatexplain_offensive", split, f"hx:{r['id']}", 1.0, "offensive"))
    for r in read_jsonl(data / "toxicity" / "toxigen_prompt_sentences.jsonl"):
        split = "dev" if stable_unit("toxigen:" + str(r["id"])) < 0.25 else "train"
        exs.append(Example(r["text"], r["unsafe"], "toxigen", split, f"tg:{r['id']}", 1.5, "toxigen"))
    for r in read_jsonl(data / "toxicity" / "openai_moderation.jsonl"):
        split = "dev" if stable_unit("oai:" + str(r["text"][:200])) < 0.25 else "train"
        cats = set(r["categories"])
        if r["unsafe"] == 1 and cats - {"self-harm"}:
            exs.append(Example(r["text"], 1, "openai_moderation", split, "oai:" + _sha(r["text"]), 1.0, "oai"))
        elif r["unsafe"] == 0 and r["extra"].get("fully_labeled"):
            exs.append(Example(r["text"], 0, "openai_moderation", split, "oai:" + _sha(r["text"]), 1.0, "oai"))
    return exs


# bipia categories whose payloads are harmful on their own (the rest are ordinary tasks out of context)
BIPIA_HARMFUL = {"Scams & Fraud", "Misinformation & Propaganda", "Encrypting Documents and Demanding Ransom (Ransomware)",
                 "Data Eavesdropping", "Corrupting an Operating System", "Introduce System Fingerprinting",
                 "Keylogging", "Compromising Computers", "Blocking Internet Connection", "Screen Scraping",
                 "Bringing Down Hosts and Servers (Denial of Service)", "Traffic Analysis", "Spreading Malware",
                 "Marketing & Advertising"}
_SELF_HARM = re.compile(r"\b(?:suicide|kill myself|cut myself|self-harm|overdose|end my life|hurt myself|starve)", re.I)


def prompt_data(data: Path, rng: random.Random) -> list[Example]:
    exs: list[Example] = []
    cases = expand_templates(read_jsonl(CASES / "prompt_cases.jsonl"), "cases", rng, {"train": 0, "dev": 0})
    for e in cases:
        if e.label == 1 and e.kind is None:
            e.kind = "harmful"
        e.weight = 3.0
    cases += surface_variants(cases, rng, 0.35, wrappers=True)
    exs += cases
    # --- everyday chat and sensitive-but-fine prompts (the same messages the toxicity model sees)
    chats, border = everyday_and_borderline(random.Random(SEED + 7))
    exs += chats
    for e in border:
        e.weight = 2.0  # few, and the hardest benign prompts there are
    exs += border + surface_variants(border, rng, 0.5, wrappers=True)
    # --- benign prose documents: a long page is not a prompt attack
    exs += prose_documents(random.Random(SEED + 11), {"train": 1500, "dev": 300})
    exs += prose_fragments(random.Random(SEED + 17), 1500)
    ps, pi = data / "prompt_safety", data / "prompt_injection"

    def split_of(name: str, key: str, dev_frac: float) -> str:
        return "dev" if stable_unit(name + ":" + key) < dev_frac else "train"

    def add(path: Path, name: str, label: int | None, weight: float, kind: str | None, dev_frac: float = 0.25,
            keep=lambda r: True) -> None:
        """Every kept row of one file: ``label`` None takes the row's own label, ``kind`` None means a
        label-1 row is a plain harmful request."""
        for r in read_jsonl(path):
            if not keep(r):
                continue
            y = r["unsafe"] if label is None else label
            func = kind or ("harmful" if y else "benign")
            exs.append(Example(r["text"], y, name, split_of(name, str(r["id"]), dev_frac), f"{name}:{r['id']}",
                               weight, func, func if y else None))

    add(ps / "jailbreak_llms_inthewild.jsonl", "jailbreak_llms", 1, 1.0, "jailbreak")
    # "logic-violating" rows only break a task-specific system prompt ("don't talk about the weather"):
    # out of that context they are ordinary questions, so they would teach the model to flag those
    # (and many only break their own system prompt's rule -- "what's the capital of France? ... what's the
    # password?" -- so they weigh little: ordinary trivia must not read as an injection)
    add(ps / "cyberseceval_prompt_injection.jsonl", "cyberseceval_injection", 1, 0.3, "injection",
        keep=lambda r: r["extra"].get("risk_category") == "security-violating")
    # its rows come in families that share a benign opening ("What is the capital of 'Zubrowka', given this
    # article: ...") and differ in the planted part: a family weighs as much as one row, or the opening
    # (ordinary trivia) is what the model learns
    family = Counter(" ".join(e.text.lower().split()[:6]) for e in exs if e.source == "cyberseceval_injection")
    for e in exs:
        if e.source == "cyberseceval_injection":
            e.weight /= family[" ".join(e.text.lower().split()[:6])]
    add(ps / "bipia_attack_instructions.jsonl", "bipia", 1, 1.0, "injection",
        keep=lambda r: r["categories"][-1] in BIPIA_HARMFUL)
    for r in read_jsonl(ps / "do_not_answer.jsonl"):
        area = r["categories"][0] if r["categories"] else ""
        if area == "misinformation" or (area.startswith("human-chatbot") and not _SELF_HARM.search(r["text"])):
            continue  # not unsafe as a prompt (questions a model should answer carefully, not refuse)
        exs.append(Example(r["text"], 1, "do_not_answer", split_of("dna", str(r["id"]), 0.2), f"dna:{r['id']}", 0.5,
                           "harmful", "harmful"))
    for r in read_jsonl(ps / "harmful_instructions.jsonl"):
        split = "train" if r["extra"].get("split") == "harmful_train" else split_of("hi", str(r["id"]), 0.5)
        exs.append(Example(r["text"], 1, "harmful_instructions", split, f"hi:{r['id']}", 1.0, "harmful", "harmful"))
    add(ps / "advbench_behaviors.jsonl", "advbench", 1, 1.0, "harmful")
    add(ps / "advbench_autodan_jailbreaks.jsonl", "advbench_autodan", 1, 0.5, "jailbreak")
    add(ps / "jbb_jailbreak_artifacts.jsonl", "jbb_artifacts", 1, 0.7, "jailbreak")
    add(ps / "cyberseceval_interpreter.jsonl", "cyberseceval_interpreter", 1, 0.3, "harmful")  # 489 near-alike
    # benign requests, instructions and look-alikes weigh more: the harmful sets are mostly imperative
    # ("Write a script that ..."), and the model must not learn that an instruction is an attack
    add(ps / "coconot.jsonl", "coconot", None, 1.5, None)  # harmful requests and their benign contrasts
    add(ps / "jbb_behaviors.jsonl", "jbb_behaviors", None, 2.0, None)
    add(ps / "self_instruct_benign.jsonl", "self_instruct", 0, 2.0, "benign")
    add(ps / "wildguard_benign.jsonl", "wildguard_benign", 0, 1.5, "benign")
    add(ps / "cyberseceval_mitre_frr.jsonl", "mitre_frr", 0, 0.5, "benign", dev_frac=0.2)
    # English/German injections and ordinary queries; labels are noisy, so they weigh less
    for r in read_jsonl(pi / "deepset_prompt_injections.jsonl"):
        split = "dev" if r["extra"].get("split") == "test" else "train"
        exs.append(Example(r["text"], r["unsafe"], "deepset", split, f"deepset:{r['id']}", 0.3,
                           "injection" if r["unsafe"] else "benign", "injection" if r["unsafe"] else None))
    # retrieved emails (clean): documents that ask the reader things are not prompt attacks
    add(pi / "bipia_email_contexts.jsonl", "bipia_email_clean", 0, 1.0, "benign", keep=lambda r: not r["unsafe"])
    # ordinary non-prompt text (tweets, web text, statements about groups) is not a prompt attack either
    for r in read_jsonl(data / "toxicity" / "davidson_hate.jsonl"):
        if stable_unit("ps-dav:" + str(r["id"])) < 0.12:
            exs.append(Example(r["text"], 0, "davidson_tweets", split_of("psdav", str(r["id"]), 0.2), f"psdav:{r['id']}",
                               0.3, "benign"))
    for r in read_jsonl(data / "toxicity" / "toxigen_prompt_sentences.jsonl"):
        exs.append(Example(r["text"], 0, "toxigen_sentences", split_of("pstg", str(r["id"]), 0.2), f"pstg:{r['id']}",
                           0.3, "benign"))
    for r in read_jsonl(data / "toxicity" / "openai_moderation.jsonl"):
        if r["unsafe"] == 0 and r["extra"].get("fully_labeled") and stable_unit("ps-oai:" + r["text"][:100]) < 0.5:
            exs.append(Example(r["text"], 0, "openai_moderation_neg", split_of("psoai", r["text"][:100], 0.2),
                               "psoai:" + _sha(r["text"]), 0.5, "benign"))
    return exs


# ============================================================================ features and training
def pattern_features(text: str) -> list[str]:
    """Which hand-written prompt-safety patterns fire (the pattern scorer's evidence as features)."""
    from modchain.backends.local import prompt_safety_heuristics as psh

    return psh.pattern_features(text)


def known_words(texts: list[str], lexicon: dict[str, str], min_df: int = 2) -> list[str]:
    """The training vocabulary (alphabetic tokens in >= min_df texts), for spelling repair."""
    df: Counter = Counter()
    for t in texts:
        df.update({w for w in lm.tokenize(normalize_for_model(t)) if w.isalpha()})
    return sorted({w for w, c in df.items() if c >= min_df} | {p for p in lexicon if " " not in p})


class Featurizer:
    def __init__(self, lexicon: dict[str, str], config: dict, known: list[str], extra_fn=None):
        self.lexicon = lm._Lexicon(lexicon, known, config.get("negatable", ()), config.get("negator", "<NOT>"))
        self.config = config
        self.known = known
        self.extra_fn = extra_fn

    def __call__(self, text: str) -> dict[str, set[str]]:
        extra = self.extra_fn(text) if self.extra_fn else ()
        return lm.featurize(normalize_for_model(text), self.lexicon, self.config, extra)


def build_matrix(feats: list[dict[str, set[str]]], vocab: dict[str, int] | None, min_df: int = 2):
    """Binary bags, L2-normalized per family (as inference does) -> CSR matrix, vocab of "fam:feature"."""
    if vocab is None:
        df: Counter = Counter()
        for fam in feats:
            for name, fs in fam.items():
                df.update([name + ":" + f for f in fs])
        vocab = {f: i for i, f in enumerate(sorted(f for f, c in df.items() if c >= min_df))}
    rows, cols, vals = [], [], []
    for r, fam in enumerate(feats):
        for name, fs in fam.items():
            if not fs:
                continue
            v = 1.0 / np.sqrt(len(fs))
            for f in fs:
                j = vocab.get(name + ":" + f)
                if j is not None:
                    rows.append(r)
                    cols.append(j)
                    vals.append(v)
    X = sparse.csr_matrix((vals, (rows, cols)), shape=(len(feats), len(vocab)), dtype=np.float64)
    # Feature sets iterate in an order that depends on PYTHONHASHSEED; sorted indices give liblinear the same
    # summation order every run, hence byte-identical weights.
    X.sum_duplicates()
    X.sort_indices()
    return X, vocab


def fit(X, y, w, C: float, class_weight: str | None = None) -> LogisticRegression:
    clf = LogisticRegression(C=C, max_iter=3000, solver="liblinear", random_state=SEED, class_weight=class_weight)
    clf.fit(X, y, sample_weight=w)
    return clf


def export_head(clf: LogisticRegression, vocab: dict[str, int], keep: int, min_abs: float) -> dict:
    coef = clf.coef_[0]
    inv = {i: f for f, i in vocab.items()}
    order = np.argsort(-np.abs(coef))
    weights = {}
    for j in order[:keep]:
        if abs(coef[j]) < min_abs:
            break
        weights[inv[int(j)]] = float(f"{coef[j]:.4g}")
    return {"bias": float(f"{clf.intercept_[0]:.6g}"), "weights": dict(sorted(weights.items()))}


def oof_scores(X, y, w, groups, C: float, folds: int = 5) -> np.ndarray:
    out = np.zeros(len(y))
    for tr, te in GroupKFold(n_splits=folds).split(X, y, groups):
        out[te] = fit(X[tr], y[tr], w[tr], C).decision_function(X[te])
    return out


def pick_threshold(scores: np.ndarray, y: np.ndarray, w: np.ndarray, max_fpr: float | None = None,
                   min_recall: float | None = None) -> float:
    """Weighted-F1-maximizing logit threshold, optionally under an FPR cap / recall floor."""
    best, best_t = -1.0, 0.0
    for t in np.quantile(scores, np.linspace(0.02, 0.98, 193)):
        pred = scores >= t
        tp = float(w[(pred == 1) & (y == 1)].sum())
        fp = float(w[(pred == 1) & (y == 0)].sum())
        fn = float(w[(pred == 0) & (y == 1)].sum())
        tn = float(w[(pred == 0) & (y == 0)].sum())
        fpr = fp / max(fp + tn, 1e-9)
        rec = tp / max(tp + fn, 1e-9)
        if max_fpr is not None and fpr > max_fpr:
            continue
        if min_recall is not None and rec < min_recall:
            continue
        f1 = 2 * tp / max(2 * tp + fp + fn, 1e-9)
        if f1 > best:
            best, best_t = f1, float(t)
    return best_t


# ============================================================================ metrics
def metrics(pred: list[int], gold: list[int]) -> dict:
    tp = sum(1 for p, g in zip(pred, gold) if p and g)
    fp = sum(1 for p, g in zip(pred, gold) if p and not g)
    tn = sum(1 for p, g in zip(pred, gold) if not p and not g)
    fn = sum(1 for p, g in zip(pred, gold) if not p and g)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    fpr = fp / (fp + tn) if fp + tn else 0.0
    return {"n": len(gold), "tp": tp, "fp": fp, "tn": tn, "fn": fn, "precision": prec, "recall": rec, "f1": f1, "fpr": fpr}


def print_table(title: str, rows: list[tuple[str, dict]]) -> str:
    lines = [f"\n{title}", f"{'dev set':<44} {'n':>5} {'tp':>5} {'fp':>5} {'tn':>5} {'fn':>5} {'prec':>6} {'rec':>6} {'F1':>6} {'FPR':>6}"]
    for name, m in rows:
        lines.append(f"{name:<44} {m['n']:>5} {m['tp']:>5} {m['fp']:>5} {m['tn']:>5} {m['fn']:>5} "
                     f"{m['precision']:>6.3f} {m['recall']:>6.3f} {m['f1']:>6.3f} {m['fpr']:>6.3f}")
    text = "\n".join(lines)
    print(text)
    return text


# ============================================================================ main
OVERLAP = None  # the evaluation-overlap checker, set by main() (windows are texts trained on too)


def as_windows(exs: list[Example]) -> list[Example]:
    """Texts longer than one inference window become their windows (same label and group, the weight shared),
    so the model learns on what it will score: long texts are scored window by window (long_text.py). A window
    is a new text, so it is checked against the evaluation sets again (a public jailbreak's window can repeat
    an evaluation prompt that the whole did not): such windows are dropped."""
    out, dropped = [], 0
    for e in exs:
        parts = long_text.windows(e.text)
        if parts is None:
            out.append(e)
            continue
        for part in parts:
            if OVERLAP is not None and OVERLAP(part):
                if e.source in HAND_WRITTEN or e.source.startswith("prose"):
                    raise SystemExit(f"a window of a hand-written text overlaps the evaluation sets: {part[:80]!r}")
                dropped += 1
                continue
            out.append(Example(part, e.label, e.source, e.split, e.group, e.weight / len(parts), e.func, e.kind,
                               e.labels))
    if dropped:
        print(f"  windows of long shared-data texts dropped as overlapping: {dropped}", flush=True)
    return out


def train_binary(name: str, exs: list[Example], featurizer: Featurizer, lexicon: dict[str, str], config: dict,
                 C: float, keep: int, min_abs: float, threshold_rule: dict, head: str, min_df: int = 2) -> dict:
    train = as_windows([e for e in exs if e.split == "train"])
    t0 = time.time()
    feats = [featurizer(e.text) for e in train]
    X, vocab = build_matrix(feats, None, min_df=min_df)
    y = np.array([e.label for e in train])
    w = np.array([e.weight for e in train])
    groups = np.array([e.group for e in train])
    print(f"[{name}] {len(train)} train examples, {X.shape[1]} features ({time.time() - t0:.0f}s featurizing)", flush=True)
    clf = fit(X, y, w, C)
    oof = oof_scores(X, y, w, groups, C)
    # the threshold is picked on the hand-written cases' out-of-fold scores (the target distribution)
    # plus the shared data, each weighted as in training
    mask = np.array([threshold_rule.get("source") is None or e.source in threshold_rule["source"] for e in train])
    t = pick_threshold(oof[mask], y[mask], w[mask], threshold_rule.get("max_fpr"), threshold_rule.get("min_recall"))
    slope = fit_length_slope(clf, vocab, featurizer, t)
    spec = {"format": lm.FORMAT, "name": name, "config": config, "lexicon": lexicon, "known": featurizer.known,
            "heads": {head: export_head(clf, vocab, keep, min_abs)}, "calibration": {head: float(f"{t:.5g}")},
            "length": {"slope": slope, "window_bytes": long_text.WINDOW_BYTES}}
    print(f"[{name}] exported {len(spec['heads'][head]['weights'])} weights, threshold logit {t:.3f}, "
          f"length slope {slope}", flush=True)
    return spec


def fit_length_slope(clf: LogisticRegression, vocab: dict[str, int], featurizer: Featurizer, threshold: float,
                     docs: int = 48, size: int = 40_000) -> float:
    """The scale of the upper tail of benign windows' logits (see modchain/backends/local/long_text.py): long
    benign train-split documents are cut into windows as inference cuts them, and tail_scale reads their logits."""
    rng = random.Random(SEED + 13)
    rag, pydoc = rag_passages(), pydoc_paragraphs()
    pool = rag["train"] + pydoc["train"]
    texts = [w for _ in range(docs) for w in long_text.windows(prose.concatenate(pool, rng, size)) or []]
    X, _ = build_matrix([featurizer(t) for t in texts], vocab)
    z = clf.decision_function(X) - threshold
    slope = tail_scale(z)
    print(f"  benign windows: {len(z)}, above threshold {float(np.mean(z >= 0)):.4f}, tail scale {slope:.3f}")
    return float(f"{slope:.3g}")


def tail_scale(logits) -> float:
    """The mean excess of the logits above their 90th percentile (an exponential tail's maximum-likelihood scale),
    clamped to [0.25, 3] so a degenerate tail cannot switch the length correction off or make it huge."""
    z = np.sort(np.asarray(logits, dtype=float))
    tail = z[int(0.9 * len(z)):]
    return float(np.clip(np.mean(tail - tail[0]), 0.25, 3.0))


def train_kind(exs: list[Example], featurizer: Featurizer, lexicon, config, C: float, keep: int, min_abs: float) -> dict:
    train = as_windows([e for e in exs if e.split == "train" and e.label == 1])
    feats = [featurizer(e.text) for e in train]
    X, vocab = build_matrix(feats, None)
    w = np.array([e.weight for e in train])
    heads, calib = {}, {}
    for kind in ("jailbreak", "injection", "harmful"):
        y = np.array([1 if e.kind == kind else 0 for e in train])
        clf = fit(X, y, w, C, class_weight="balanced")  # injections are few next to harmful requests
        heads[kind] = export_head(clf, vocab, keep, min_abs)
        calib[kind] = 0.0
    return {"format": lm.FORMAT, "name": "prompt_kind", "config": config, "lexicon": lexicon,
            "known": featurizer.known, "heads": heads,
            "calibration": calib}


def write_model(spec: dict, out: Path, meta: dict) -> Path:
    spec = dict(spec)
    spec["meta"] = meta
    raw = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    path = out / f"{spec['name']}.json.gz"
    with open(path, "wb") as f:  # mtime=0: byte-identical output for identical input
        f.write(gzip.compress(raw, compresslevel=9, mtime=0))
    return path


def latency_us(fn, texts: list[str], runs: int = 3000) -> float:
    for t in texts[:200]:
        fn(t)
    samples = []
    for i in range(runs):
        t = texts[i % len(texts)]
        s = time.perf_counter()
        fn(t)
        samples.append((time.perf_counter() - s) * 1e6)
    return statistics.median(samples)


def overlap_checker(decontam_dir: Path):
    """The evaluation-overlap checker of ``decontam_dir`` (shared/decontam): text -> reason or None."""
    if not (decontam_dir / "decontam.py").is_file():
        raise SystemExit(f"no decontam.py in {decontam_dir}: pass --decontam DIR (training never runs unchecked)")
    sys.path.insert(0, str(decontam_dir))
    from decontam import Overlap  # noqa: PLC0415

    return Overlap()


HAND_WRITTEN = {"cases", "borderline", "everyday_chat"}  # sources written for modchain (training/cases)


def decontaminate(name: str, exs: list[Example], overlap) -> list[Example]:
    """Every text to train or tune on, checked against the evaluation sets after all expansion. A hand-written
    text that overlaps stops the script before any model is written (fix the case file); a row of the public
    shared data that overlaps is dropped and counted (some public sets share items with evaluation sets)."""
    keep, dropped, bad = [], Counter(), []
    for e in exs:
        reason = overlap(e.text)
        if reason is None:
            keep.append(e)
        elif e.source in HAND_WRITTEN or e.source.startswith("prose"):
            bad.append((e, reason))
        else:
            dropped[e.source] += 1
    print(f"[{name}] decontamination: {len(exs)} texts; shared-data rows dropped as overlapping: "
          f"{dict(sorted(dropped.items())) or 0}; hand-written overlaps: {len(bad)}", flush=True)
    if bad:
        for e, reason in bad[:20]:
            print(f"  {reason}: {e.source}/{e.split}/{e.func}: {e.text[:100]!r}", file=sys.stderr)
        raise SystemExit(f"{name}: {len(bad)} hand-written training texts overlap the evaluation sets; rewrite them")
    assert not any(overlap(e.text) for e in keep)
    return keep


def text_hash(text: str) -> str:
    """The normalized-text hash the test suite compares its generalisation set with (NFKC, casefold, words)."""
    import unicodedata

    norm = " ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()))
    return hashlib.sha256(norm.encode()).hexdigest()[:16]


def dump_texts(path: Path, named: dict[str, list[Example]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for model, exs in named.items():
            for e in exs:
                f.write(json.dumps({"text": e.text, "label": e.label, "source": e.source, "split": e.split,
                                    "model": model}, ensure_ascii=False) + "\n")


def write_hashes(path: Path, named: dict[str, list[Example]]) -> None:
    hashes = sorted({text_hash(e.text) for exs in named.values() for e in exs})
    with open(path, "wb") as f:
        f.write(gzip.compress(("\n".join(hashes) + "\n").encode(), compresslevel=9, mtime=0))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder (toxicity/, prompt_safety/)")
    ap.add_argument("--out", type=Path, required=True, help="where to write the model files")
    ap.add_argument("--only", choices=["toxicity", "prompt_safety"], default=None)
    ap.add_argument("--report", type=Path, default=None, help="also write the metrics table to this file")
    ap.add_argument("--ps-c", type=float, default=PS_C, help="inverse L2 strength of the prompt-safety head")
    ap.add_argument("--ps-min-recall", type=float, default=PS_MIN_RECALL, help="prompt-safety threshold recall floor")
    ap.add_argument("--decontam", type=Path, default=None,
                    help="folder of decontam.py and its hashes (default: <data>/../decontam)")
    ap.add_argument("--dump-texts", type=Path, default=None,
                    help="write every text trained or tuned on here (JSON Lines: text, label, source, split, model)")
    ap.add_argument("--hashes", type=Path, default=ROOT / "training" / "trained_text_hashes.txt.gz",
                    help="where to write the normalized hashes of those texts (for the test suite)")
    args = ap.parse_args(argv)
    global OVERLAP
    overlap = OVERLAP = overlap_checker(args.decontam or args.data.resolve().parent / "decontam")
    used: dict[str, list[Example]] = {}
    args.out.mkdir(parents=True, exist_ok=True)
    report: list[str] = []
    meta_common = {"trainer": "training/train_text_classifiers.py", "seed": SEED}

    if args.only in (None, "toxicity"):
        rng = random.Random(SEED)
        exs = decontaminate("toxicity", toxicity_data(args.data, rng), overlap)
        used["toxicity"] = exs
        tox_lex = lexicon_map(TOX_LEXICON)
        fz = Featurizer(tox_lex, TOX_CONFIG, known_words([e.text for e in exs if e.split == "train"], tox_lex))
        spec = train_binary("toxicity", exs, fz, tox_lex, TOX_CONFIG, C=4.0, keep=60000, min_abs=0.02,
                            threshold_rule={"source": {"cases"}, "max_fpr": 0.2},
                            head="toxic")
        counts = Counter((e.source, e.split, e.label) for e in exs)
        path = write_model(spec, args.out, {**meta_common, "examples": {f"{s}/{sp}/{lab}": n for (s, sp, lab), n in sorted(counts.items())}})
        report.append(evaluate_toxicity(exs, path))

    if args.only in (None, "prompt_safety"):
        rng = random.Random(SEED + 1)
        exs = decontaminate("prompt_safety", prompt_data(args.data, rng), overlap)
        used["prompt_safety"] = exs
        ps_lex = lexicon_map(PS_LEXICON)
        fz = Featurizer(ps_lex, PS_CONFIG, known_words([e.text for e in exs if e.split == "train"], ps_lex),
                        pattern_features)
        spec = train_binary("prompt_safety", exs, fz, ps_lex, PS_CONFIG, C=args.ps_c, keep=60000, min_abs=0.02,
                            threshold_rule={"min_recall": args.ps_min_recall}, head="unsafe")
        counts = Counter((e.source, e.split, e.label) for e in exs)
        path = write_model(spec, args.out, {**meta_common, "examples": {f"{s}/{sp}/{lab}": n for (s, sp, lab), n in sorted(counts.items())}})
        kind = train_kind(exs, fz, ps_lex, PS_CONFIG, C=8.0, keep=30000, min_abs=0.03)
        write_model(kind, args.out, meta_common)
        report.append(evaluate_prompt_safety(exs, path))

    if args.dump_texts:
        dump_texts(args.dump_texts, used)
    if args.only is None:  # the hash list covers both models' texts
        write_hashes(args.hashes, used)
    sizes = "\n".join(f"{p.name}: {p.stat().st_size / 1024:.0f} KiB" for p in sorted(args.out.glob("*.json.gz")))
    print("\nmodel files\n" + sizes)
    report.append("model files\n" + sizes)
    if args.report:
        args.report.write_text("\n".join(report) + "\n")


def _fresh_scorers(out: Path):
    """The package scorers, pointed at the model files just written to ``out`` (wherever that is)."""
    from modchain.backends.local import prompt_safety_heuristics as psh
    from modchain.backends.local import toxicity_lexicon as tl

    cache: dict[str, lm.LinearTextModel] = {}

    def load(name: str) -> lm.LinearTextModel:
        if name not in cache:
            cache[name] = lm.model_from_bytes((out / f"{name}.json.gz").read_bytes())
        return cache[name]

    tl.load_model = psh.load_model = load
    return tl, psh


_NEW_SETS = {"everyday_chat": "everyday chat (hand-written dev pools)", "borderline": "sensitive-but-fine prompts (dev)"}
_BENCH_NAME = "benign 200-char chat (speed benchmark's)"


def benchmark_chat() -> list[str]:
    """The benign messages of benchmarks/text_filters_speed.py's generator (never trained on): a check
    that everyday multi-request chat is not flagged."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import text_filters_speed as tfs

    bad = [s[:30] for s in tfs._JAILBREAKS + tfs._INSULTS]
    return [m for m in tfs.make_messages(1000) if not any(b in m for b in bad)]


def evaluate_toxicity(exs: list[Example], path: Path) -> str:
    tl, _ = _fresh_scorers(path.parent)
    dev = [e for e in exs if e.split == "dev"]
    preds = {}
    for e in dev:
        preds[id(e)] = int(max(tl.score_toxicity(e.text).values()) >= 0.5)
    sets: dict[str, list[Example]] = defaultdict(list)
    for e in dev:
        if e.source == "cases":
            sets["hand-written dev cases"].append(e)
            if e.func.startswith("spell_"):
                sets["  of which spelling variants"].append(e)
        elif e.source.startswith("davidson") and e.source != "davidson_offensive":
            sets["shared held-out: davidson hate vs neither"].append(e)
        elif e.source == "davidson_offensive":
            sets["shared held-out: davidson offensive (label 0)"].append(e)
        elif e.source in _NEW_SETS:
            sets[_NEW_SETS[e.source]].append(e)
        else:
            sets[f"shared held-out: {e.source}"].append(e)
    rows = [(name, metrics([preds[id(e)] for e in es], [e.label for e in es])) for name, es in sets.items()]
    bench = benchmark_chat()
    rows.append((_BENCH_NAME, metrics([int(max(tl.score_toxicity(t).values()) >= 0.5) for t in bench], [0] * len(bench))))
    text = print_table("TOXICITY (flag = max label >= 0.5)", rows)
    by_func: dict[str, list[Example]] = defaultdict(list)
    for e in sets["hand-written dev cases"]:
        by_func[e.func].append(e)
    lines = ["  per category (hand-written dev): name  n  flagged-rate  (label)"]
    for f, es in sorted(by_func.items()):
        rate = sum(preds[id(e)] for e in es) / len(es)
        lines.append(f"    {f:<24} {len(es):>4}  {rate:.2f}  ({es[0].label})")
    print("\n".join(lines))
    texts = [e.text for e in dev if 150 <= len(e.text) <= 260] or [e.text for e in dev]
    texts = [t[:200] for t in texts]
    us = latency_us(tl.score_toxicity, texts)
    line = f"  score_toxicity median latency, 200-char messages: {us:.0f} us"
    print(line)
    return text + "\n" + "\n".join(lines) + "\n" + line


def evaluate_prompt_safety(exs: list[Example], path: Path) -> str:
    _, psh = _fresh_scorers(path.parent)
    dev = [e for e in exs if e.split == "dev"]
    preds = {id(e): int(psh.score_prompt_safety(e.text)[0] >= 0.5) for e in dev}
    sets: dict[str, list[Example]] = defaultdict(list)
    for e in dev:
        if e.source == "cases":
            if e.label == 0:
                sets["benign prompts that sound risky (hand-written)"].append(e)
            else:
                sets["harmful / jailbreak / injection (hand-written)"].append(e)
        elif e.source in _NEW_SETS:
            sets[_NEW_SETS[e.source]].append(e)
        else:
            sets[f"shared held-out: {e.source}"].append(e)
    rows = [(name, metrics([preds[id(e)] for e in es], [e.label for e in es])) for name, es in sorted(sets.items())]
    allsh = [e for e in dev if e.source != "cases" and e.source not in _NEW_SETS]
    rows.append(("shared held-out: all sources", metrics([preds[id(e)] for e in allsh], [e.label for e in allsh])))
    bench = benchmark_chat()
    rows.append((_BENCH_NAME, metrics([int(psh.score_prompt_safety(t)[0] >= 0.5) for t in bench], [0] * len(bench))))
    text = print_table("PROMPT SAFETY (flag = unsafe >= 0.5)", rows)
    by_func: dict[str, list[Example]] = defaultdict(list)
    for e in dev:
        if e.source == "cases":
            by_func[e.func].append(e)
    lines = ["  per category (hand-written dev): name  n  flagged-rate  (label)"]
    for f, es in sorted(by_func.items()):
        rate = sum(preds[id(e)] for e in es) / len(es)
        lines.append(f"    {f:<24} {len(es):>4}  {rate:.2f}  ({es[0].label})")
    print("\n".join(lines))
    texts = [e.text[:200] for e in dev if len(e.text) >= 200] or [e.text for e in dev]
    us = latency_us(lambda t: psh.score_prompt_safety(t), texts)
    line = f"  score_prompt_safety median latency, 200-char messages: {us:.0f} us"
    print(line)
    return text + "\n" + "\n".join(lines) + "\n" + line


if __name__ == "__main__":
    main()
