"""The labelled training and dev examples of each offline classifier: hand-written cases, benign prose and
the public shared data, split into train and dev (``train_text_classifiers.py``)."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

from classifier_examples import (
    CASES,
    SEED,
    Example,
    everyday_and_borderline,
    expand_templates,
    perturb,
    prose_documents,
    prose_fragments,
    read_jsonl,
    short_sha,
    stable_unit,
    surface_variants,
)
from classifier_lexicons import TOX_LEXICON, lexicon_map

__all__ = ["BIPIA_HARMFUL", "prompt_data", "toxicity_data"]


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
            exs.append(Example(r["text"], 1, "openai_moderation", split, "oai:" + short_sha(r["text"]), 1.0, "oai"))
        elif r["unsafe"] == 0 and r["extra"].get("fully_labeled"):
            exs.append(Example(r["text"], 0, "openai_moderation", split, "oai:" + short_sha(r["text"]), 1.0, "oai"))
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
                               "psoai:" + short_sha(r["text"]), 0.5, "benign"))
    return exs
