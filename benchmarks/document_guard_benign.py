"""How often ``DocumentGuard()`` (default config, offline) drops or cuts benign documents, and why.

    python benchmarks/document_guard_benign.py [--docs 100] [--sizes 0,2000,20000]

The documents are built as benchmarks/long_documents.py builds them: benign prose from training/prose.py, the
held-out half (support pages, FAQs, recipes; Python reference prose), never evaluation-suite items, cut to the
size; size 0 means each paragraph alone, as written (about 200-250 characters). Each is one
``moderate_documents([doc])`` call. Read the injection column of the longer rows with care: they join unrelated
paragraphs, and the window model counts a window that is off the page's topic as planted; the toxicity column
has no such excuse (more windows, more chances for one noisy window score to cross 0.5). For each source and size the table gives the share of
documents kept unchanged, and of those dropped or redacted, by the kind that decided (injection, toxicity;
PII redaction is counted apart, since masking an address in a page is the guard doing its job).

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
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "training")]

import prose  # noqa: E402  (the trainer's prose sources and splits: only the held-out half is used here)
from langchain_core.documents import Document  # noqa: E402

from modchain.text.documents import DocumentGuard  # noqa: E402

_ABOUT_ATTACKS = {"ai_safety", "prompting"}  # passages that discuss attacks are not plain benign text


def sources() -> dict[str, list[str]]:
    return {"passages": [t for k, t in prose.rag_passages()["dev"] if k not in _ABOUT_ATTACKS],
            "pydoc": prose.pydoc_paragraphs()["dev"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--sizes", default="0,2000,20000")
    args = ap.parse_args(argv)
    guard = DocumentGuard()
    print(f"DocumentGuard() on benign documents, {args.docs} per row; share of documents")
    print(f"{'source':<10}{'size':>7}{'kept':>7}{'dropped':>9}{'redacted':>10}  by kind (injection / toxicity)"
          f"{'PII masked':>12}")
    for size in (int(s) for s in args.sizes.split(",")):
        for name, paragraphs in sources().items():
            rng = random.Random(f"guard-benign:{name}:{size}")
            actions: Counter[str] = Counter()
            kinds: Counter[str] = Counter()
            pii = 0
            texts = (rng.sample(paragraphs, min(args.docs, len(paragraphs))) if size == 0 else
                     [prose.concatenate(paragraphs, rng, size)[:size] for _ in range(args.docs)])
            for text in texts:
                verdict = guard.moderate_documents([Document(page_content=text)]).verdicts[0]
                pii += "pii" in verdict.flags
                decided = [k for k in ("injection", "toxicity") if k in verdict.flags]
                actions["kept" if not decided else verdict.action] += 1
                kinds.update(decided)
            n = len(texts)
            print(f"{name:<10}{size:>7}{actions['kept'] / n:>7.2f}{actions['drop'] / n:>9.2f}"
                  f"{actions['redact'] / n:>10.2f}  {kinds['injection'] / n:.2f} / {kinds['toxicity'] / n:.2f}"
                  f"{pii / n:>27.2f}")


if __name__ == "__main__":
    main()
