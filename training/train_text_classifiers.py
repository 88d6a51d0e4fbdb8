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
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "training")]

# The steps live in training/classifier_*.py; their names are re-exported here for the scripts and benchmarks that
# import this one (train_encoder.py, train_document_injection.py, benchmarks/tiers.py).
import classifier_decontam  # noqa: E402
import prose  # noqa: E402
from classifier_datasets import BIPIA_HARMFUL, prompt_data, toxicity_data  # noqa: E402
from classifier_decontam import (  # noqa: E402
    HAND_WRITTEN,
    as_windows,
    decontaminate,
    dump_texts,
    overlap_checker,
    text_hash,
    write_hashes,
)
from classifier_eval import (  # noqa: E402
    benchmark_chat,
    evaluate_prompt_safety,
    evaluate_toxicity,
    latency_us,
    metrics,
    print_table,
)
from classifier_examples import (  # noqa: E402
    CASES,
    SEED,
    Example,
    compose_chats,
    everyday_and_borderline,
    expand_templates,
    perturb,
    prose_documents,
    prose_fragments,
    pydoc_paragraphs,
    rag_passages,
    read_jsonl,
    stable_unit,
    surface_variants,
)
from classifier_fit import (  # noqa: E402
    Featurizer,
    build_matrix,
    export_head,
    fit,
    fit_length_slope,
    known_words,
    oof_scores,
    pattern_features,
    pick_threshold,
    tail_scale,
    train_binary,
    train_kind,
    write_model,
)
from classifier_lexicons import PS_CONFIG, PS_LEXICON, TOX_CONFIG, TOX_LEXICON, lexicon_map  # noqa: E402

__all__ = [
    "BIPIA_HARMFUL", "CASES", "HAND_WRITTEN", "PS_C", "PS_CONFIG", "PS_LEXICON", "PS_MIN_RECALL", "SEED", "TOX_CONFIG",
    "TOX_LEXICON", "Example", "Featurizer", "as_windows", "benchmark_chat", "build_matrix", "compose_chats",
    "decontaminate", "dump_texts", "evaluate_prompt_safety", "evaluate_toxicity", "everyday_and_borderline",
    "expand_templates", "export_head", "fit", "fit_length_slope", "known_words", "latency_us", "lexicon_map", "main",
    "metrics", "oof_scores", "overlap_checker", "pattern_features", "perturb", "pick_threshold", "print_table", "prose",
    "prose_documents", "prose_fragments", "prompt_data", "pydoc_paragraphs", "rag_passages", "read_jsonl",
    "stable_unit", "surface_variants", "tail_scale", "text_hash", "toxicity_data", "train_binary", "train_kind",
    "write_hashes", "write_model",
]

PS_C = 16.0  # prompt-safety head: inverse L2 strength
PS_MIN_RECALL = 0.90  # prompt-safety threshold: the highest-F1 one with at least this out-of-fold recall


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
    # as_windows reads the checker from its module (windows are texts trained on too)
    overlap = classifier_decontam.OVERLAP = overlap_checker(args.decontam or args.data.resolve().parent / "decontam")
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


if __name__ == "__main__":
    main()
