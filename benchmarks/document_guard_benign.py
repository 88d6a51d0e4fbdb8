"""How often ``DocumentGuard()`` (default config, offline) drops or cuts benign documents, and why; and how many
of the same documents it still flags when an injection payload is planted in them.

    python benchmarks/document_guard_benign.py [--docs 100] [--sizes 0,2000,20000] [--data ../shared/data]

Benign text: training/prose.py's held-out half only (never trained on by the injection or toxicity models):
the project's passages (``benchmarks/data/rag_*.txt``, support pages, FAQs, recipes, ...; the passages that
discuss attacks left out) and the Python reference prose shipped with CPython (``pydoc``, split by topic).
Size 0 means each paragraph alone, as written (about 200-250 characters). Longer documents come in two layouts,
in separate rows:

  coherent  contiguous text from ONE source, cut to the size: consecutive paragraphs of one pydoc topic, or
            consecutive passages (file order) of one kind (faq, recipe, email, ...). This is what a retrieved page
            looks like; a source with too little text for the size has no such document (the row says how many
            there are when fewer than ``--docs``).
  joined    unrelated paragraphs drawn at random and joined (as benchmarks/long_documents.py builds them). The
            window injection model reads a window that is off the page's topic as planted, so this layout
            overstates injection drops; it stays as the harder case (a page stitched from snippets).

Each document is one ``moderate_documents([doc])`` call. For each row the table gives the share of documents
kept unchanged, and of those dropped or redacted, by the kind that decided (injection, toxicity; PII redaction is
counted apart, since masking an address in a page is the guard doing its job).

The ``planted`` columns: the same documents (same rows, same count), each with one injection payload of the DEV
split of benchmarks/rag_injection.py (its functions pick them: payloads never trained on by any model) inserted
as a sentence at the start, middle or end (seeded), paragraphs kept. ``flagged``: the share the guard flags as
injection; ``of kept``: the same share among the documents it did not flag without the payload (the recall of
the payload itself: a page flagged for its own text inflates the first). A change that lowers benign drops is
judged against what it loses here and on benchmarks/rag_injection.py dev.
Without the payload files (``--data``) the column is left out.

There is no bar in an issue for this yet: issue 12's long-document bar is about ``ModerationChain()``
(benchmarks/long_documents.py). This script measures the guard's false-positive rate on the same kind of text,
so that a change to its window scoring can be judged against it.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "training"), str(HERE)]

import prose  # noqa: E402  (the trainer's prose sources and splits: only the held-out half is used here)
import rag_injection as protocol  # noqa: E402  (payload splits and positions)
from langchain_core.documents import Document  # noqa: E402

from modchain.text.documents import DocumentGuard  # noqa: E402
from modchain.text.documents.cues import sentence_spans  # noqa: E402

_ABOUT_ATTACKS = {"ai_safety", "prompting"}  # passages that discuss attacks are not plain benign text


def pydoc_topics(split: str = "dev") -> dict[str, list[str]]:
    """``{topic: [paragraph]}`` of one half of the pydoc prose, paragraphs in page order (``prose.topic_paragraphs``,
    kept per topic so a document can be cut from one topic)."""
    from pydoc_data.topics import topics

    held_out = set(prose.pydoc_held_out()) if split == "dev" else None  # not repeated under a train-half topic
    out: dict[str, list[str]] = {}
    for topic in sorted(topics):
        if prose.pydoc_split(topic) != split:
            continue
        for para in prose.topic_paragraphs(topics[topic]):
            if held_out is None or para in held_out:
                out.setdefault(topic, []).append(para)
    return out


def passage_kinds() -> dict[str, list[str]]:
    """``{kind: [passage]}`` of the held-out passages, file order."""
    out: dict[str, list[str]] = {}
    for kind, text in prose.rag_passages()["dev"]:
        if kind not in _ABOUT_ATTACKS:
            out.setdefault(kind, []).append(text)
    return out


def sources() -> dict[str, tuple[list[str], dict[str, list[str]]]]:
    """``{source: (paragraphs, {group: [paragraph]})}``: the paragraphs in the order the joined and single-paragraph
    rows draw from, and the groups (one topic or one kind) a coherent document is cut from."""
    return {"passages": ([t for k, t in prose.rag_passages()["dev"] if k not in _ABOUT_ATTACKS], passage_kinds()),
            "pydoc": (prose.pydoc_held_out(), pydoc_topics())}


def coherent(groups: dict[str, list[str]], rng: random.Random, size: int, docs: int) -> list[str]:
    """Up to ``docs`` documents of ``size`` characters, each consecutive paragraphs of one group starting at a
    paragraph: every such start with enough text after it is a candidate, ``docs`` of them drawn at random."""
    starts = []
    for name in sorted(groups):
        paras = groups[name]
        for i in range(len(paras)):
            if sum(len(p) + 2 for p in paras[i:]) - 2 >= size:
                starts.append((name, i))
    texts = []
    for name, i in rng.sample(starts, min(docs, len(starts))):
        parts: list[str] = []
        for para in groups[name][i:]:
            parts.append(para)
            if sum(len(p) + 2 for p in parts) - 2 >= size:
                break
        texts.append("\n\n".join(parts)[:size])
    return texts


def documents(source: tuple[list[str], dict[str, list[str]]], layout: str, size: int, docs: int,
              rng: random.Random) -> list[str]:
    paragraphs, groups = source
    if size == 0:
        return rng.sample(paragraphs, min(docs, len(paragraphs)))
    if layout == "joined":
        return [prose.concatenate(paragraphs, rng, size)[:size] for _ in range(docs)]
    return coherent(groups, rng, size, docs)


def dev_payloads(data: Path) -> list[tuple[str, str]]:
    """``(source, payload)`` of the rag_injection benchmark's dev split (never trained on by any model)."""
    return [(source, row["text"]) for source, row, split in protocol.load_payloads(data) if split == "dev"]


def plant(text: str, payload: str, position: str) -> str:
    """``payload`` inserted as a sentence of ``text`` where ``protocol.embed`` puts it (start, middle or end of the
    sentences), the rest of the text left as it is (paragraph breaks kept)."""
    return plant_at(text, payload, position)[0]


def plant_at(text: str, payload: str, position: str) -> tuple[str, int]:
    """:func:`plant`'s text and where the payload starts in it (the trainer marks the payload's windows)."""
    spans = sentence_spans(text)
    at = {"start": 0, "middle": len(spans) // 2, "end": len(spans)}[position]
    if at == len(spans):
        kept = text.rstrip()
        return kept + " " + payload.strip(), len(kept) + 1
    start = spans[at][0]
    return text[:start] + payload.strip() + " " + text[start:], start


def run_row(guard: DocumentGuard, texts: list[str]) -> dict[str, float]:
    """The shares of the table's columns; ``flagged``: per document, whether injection was flagged."""
    actions: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    pii = 0
    flagged = []
    for text in texts:
        verdict = guard.moderate_documents([Document(page_content=text)]).verdicts[0]
        flagged.append("injection" in verdict.flags)
        pii += "pii" in verdict.flags
        decided = [k for k in ("injection", "toxicity") if k in verdict.flags]
        actions["kept" if not decided else verdict.action] += 1
        kinds.update(decided)
    n = max(1, len(texts))
    return {"kept": actions["kept"] / n, "drop": actions["drop"] / n, "redact": actions["redact"] / n,
            "injection": kinds["injection"] / n, "toxicity": kinds["toxicity"] / n, "pii": pii / n,
            "flagged": flagged}


def planted_rates(guard: DocumentGuard, texts: list[str], payloads: list[tuple[str, str]], key: str,
                  flagged_alone: list[bool]) -> tuple[float, float]:
    """``(share flagged, share flagged of those not flagged alone)`` of ``texts`` with a payload planted in each:
    the first counts a page flagged for its own text as a hit, the second is the recall of the payload itself."""
    rng = random.Random(f"guard-benign-planted:{key}")
    poisoned = [plant(text, rng.choice(payloads)[1], rng.choice(protocol.POSITIONS)) for text in texts]
    hits = ["injection" in v.flags for v in
            guard.moderate_documents([Document(page_content=t) for t in poisoned]).verdicts]
    kept = [hit for hit, alone in zip(hits, flagged_alone) if not alone]
    return sum(hits) / max(1, len(hits)), sum(kept) / max(1, len(kept))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--sizes", default="0,2000,20000")
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data",
                    help="the shared data folder (prompt_safety/) for the planted column")
    args = ap.parse_args(argv)
    payloads = dev_payloads(args.data) if (args.data / "prompt_safety").is_dir() else []
    guard = DocumentGuard()
    print(f"DocumentGuard() on benign documents, {args.docs} per row; share of documents")
    if not payloads:
        print(f"(planted column left out: no payloads under {args.data}/prompt_safety; pass --data)")
    print(f"{'source':<10}{'layout':<10}{'size':>6}{'docs':>6}{'kept':>7}{'dropped':>9}{'redacted':>10}"
          f"  by kind (injection / toxicity){'PII masked':>12}"
          + (f"{'planted: flagged':>18}{'of kept':>9}" if payloads else ""))
    for size in (int(s) for s in args.sizes.split(",")):
        for name, source in sources().items():
            for layout in (("paragraph",) if size == 0 else ("coherent", "joined")):
                # the joined rows keep the seed (and so the documents) of the script before the coherent rows
                rng = random.Random(f"guard-benign:{name}:{size}" + (":coherent" if layout == "coherent" else ""))
                texts = documents(source, layout, size, args.docs, rng)
                if not texts:
                    print(f"{name:<10}{layout:<10}{size:>6}{0:>6}  (no single {name} source is that long)")
                    continue
                r = run_row(guard, texts)
                line = (f"{name:<10}{layout:<10}{size:>6}{len(texts):>6}{r['kept']:>7.2f}{r['drop']:>9.2f}"
                        f"{r['redact']:>10.2f}  {r['injection']:.2f} / {r['toxicity']:.2f}{r['pii']:>27.2f}")
                if payloads:
                    rates = planted_rates(guard, texts, payloads, f"{name}:{layout}:{size}", r["flagged"])
                    line += f"{rates[0]:>18.2f}{rates[1]:>9.2f}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
