"""Benign prose for the offline classifiers and the long-document benchmark (standard library only).

Two sources, each split in halves by a seeded hash so that what the trainer learns from and what
``benchmarks/long_documents.py`` measures on never meet (for pydoc, :func:`pydoc_held_out`):
  * this project's passages, ``benchmarks/data/rag_*.txt`` -- with ``benchmarks/rag_injection.py``'s own split
    (its train half is trained on; its dev and test halves stay held out for both benchmarks);
  * the Python language reference and library topics shipped with CPython (``pydoc_data.topics``), split by
    topic name. Note: the text comes with the Python version, so a different CPython gives other documents.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stable_unit(key: str) -> float:
    """Deterministic pseudo-random number in [0, 1) from a string (split assignment)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) / float(1 << 48)


def rag_split(text: str) -> str:
    """benchmarks/rag_injection.py's split of its clean passages, reduced to train / held out ("dev")."""
    return "train" if stable_unit("rag-clean:" + text) < 0.5 else "dev"


def rag_passages() -> dict[str, list[tuple[str, str]]]:
    """``{split: [(kind, text)]}`` of the project's passages."""
    out: dict[str, list[tuple[str, str]]] = {"train": [], "dev": []}
    for path in sorted((ROOT / "benchmarks" / "data").glob("rag_*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("["):
                kind, text = line[1:].split("] ", 1)
                out[rag_split(text.strip())].append((kind, text.strip()))
    return out


def pydoc_split(topic: str) -> str:
    return "train" if stable_unit("pydoc:" + topic) < 0.5 else "dev"


def topic_paragraphs(page: str) -> list[str]:
    """The prose paragraphs of one pydoc topic's page, in page order, whitespace-normalized (code, grammar and
    tables skipped)."""
    out = []
    for para in re.split(r"\n\s*\n", page):
        para = " ".join(para.split())
        if len(para) >= 120 and para.count(" ") >= 15 and not re.search(r"[{}]|::=|>>>|\*\*\*", para):
            out.append(para)
    return out


def pydoc_paragraphs() -> dict[str, list[str]]:
    """``{split: [paragraph]}``: prose paragraphs of the Python reference (:func:`topic_paragraphs` of each topic)."""
    from pydoc_data.topics import topics

    out: dict[str, list[str]] = {"train": [], "dev": []}
    for topic in sorted(topics):
        out[pydoc_split(topic)].extend(topic_paragraphs(topics[topic]))
    return out


def pydoc_held_out() -> list[str]:
    """The held-out half of the pydoc prose as benchmarks and dev rows should read it: each paragraph once, and
    none that CPython also prints under a train-half topic. The topic split alone is not enough: some
    paragraphs are repeated verbatim under several topics (108 of the 576 distinct held-out ones with
    Python 3.11's topics), and the trainers learn from the train half's."""
    halves = pydoc_paragraphs()
    trained = set(halves["train"])
    return [para for para in dict.fromkeys(halves["dev"]) if para not in trained]


def concatenate(pool: list[str], rng, size: int) -> str:
    """Random paragraphs of ``pool`` joined by blank lines until the text reaches ``size`` characters."""
    parts: list[str] = []
    total = 0
    while total < size:
        parts.append(rng.choice(pool))
        total += len(parts[-1]) + 2
    return "\n\n".join(parts)
