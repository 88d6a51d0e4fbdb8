"""Training examples for the offline classifiers (``train_text_classifiers.py``): the ``Example`` row, the
hand-written cases (templates, spelling and surface variants, composed chat messages) and benign prose."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from pathlib import Path

import prose

__all__ = ["CASES", "ROOT", "SEED", "Example", "compose_chats", "everyday_and_borderline", "expand_templates",
           "perturb", "prose_documents", "prose_fragments", "pydoc_paragraphs", "rag_passages", "read_jsonl",
           "short_sha", "stable_unit", "surface_variants"]

ROOT = Path(__file__).resolve().parents[1]
SEED = 20240611
CASES = ROOT / "training" / "cases"

stable_unit = prose.stable_unit  # deterministic number in [0, 1) from a string (split assignment)


def short_sha(text: str) -> str:
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
    pydoc["dev"] = prose.pydoc_held_out()  # without the paragraphs CPython repeats under train-half topics
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
