"""Accuracy and speed of modchain's offline language detector (``modchain.core.language``) on labeled data.

Sources (read from ``--data``, default ``../shared/data``):

  cyberseceval_pi_multilingual   977 machine-translated prompt injections in 17 languages (``extra.lang``)
  cold_zh                        Chinese comments (COLD); every text counts as ``zh`` (``--cold-limit`` of them)
  deepset_prompt_injections      656 English/German prompts with no language label: only the distribution of
                                 detected codes is printed (no accuracy)

These are development numbers: the detector's word lists were written by hand, not fitted to these files,
and the files were only read for the per-language accuracy below. ``und`` counts as wrong in the accuracy
column and is also reported on its own (for routing, ``und`` falls back to the configured language).

Timing: median and p90 microseconds per call of ``detect_language`` on each source's texts (one warm-up
pass, then ``--repeat`` timed passes; the median is over per-message medians), on whatever machine runs it.

Run:  python benchmarks/language_detection.py [--data ../shared/data] [--cold-limit 5000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path

from modchain.core.language import detect_language, guess_language

LANG_CODES = {
    "Arabic": "ar", "Bengali": "bn", "Chinese": "zh", "Filipino/Tagalog": "tl", "French": "fr", "German": "de",
    "Hindi": "hi", "Indonesian": "id", "Italian": "it", "Japanese": "ja", "Korean": "ko", "Portuguese": "pt",
    "Russian": "ru", "Spanish": "es", "Thai": "th", "Turkish": "tr", "Vietnamese": "vi",
}
#: The script each language is written in. The multilingual set holds some texts in another script than their
#: label (left in English, or in a third language); the "own script" columns count only texts in the label's script.
SCRIPTS = {"ar": ("Arabic",), "bn": ("Bengali",), "hi": ("Devanagari",), "ja": ("Kana", "Han"), "ko": ("Hangul",),
           "ru": ("Cyrillic",), "th": ("Thai",), "zh": ("Han",)}


def read_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            rows.append(json.loads(line))
            if limit is not None and len(rows) >= limit:
                break
    return rows


def timed(texts: list[str], repeat: int) -> tuple[float, float]:
    """(median, p90) microseconds per call over ``texts``."""
    for text in texts:
        detect_language(text)
    per_text = []
    for text in texts:
        runs = []
        for _ in range(repeat):
            start = time.perf_counter_ns()
            detect_language(text)
            runs.append(time.perf_counter_ns() - start)
        per_text.append(statistics.median(runs) / 1000)
    per_text.sort()
    return statistics.median(per_text), per_text[int(0.9 * (len(per_text) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    parser.add_argument("--cold-limit", type=int, default=5000, help="how many COLD texts to read (0 = all)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    multilingual = read_jsonl(args.data / "prompt_injection" / "cyberseceval_pi_multilingual.jsonl")
    cold = read_jsonl(args.data / "multilingual" / "cold_zh.jsonl", args.cold_limit or None)
    deepset = read_jsonl(args.data / "prompt_injection" / "deepset_prompt_injections.jsonl")

    labeled: dict[str, list[str]] = defaultdict(list)
    for row in multilingual:
        labeled[LANG_CODES[row["extra"]["lang"]]].append(row["text"])
    print("## Accuracy (dev): cyberseceval_pi_multilingual by language, cold_zh as zh")
    print(f"{'source':<14}{'lang':<6}{'n':>6}{'accuracy':>10}{'und':>7}{'own script n':>14}{'accuracy':>10}"
          "  most common wrong answers")
    total = correct_all = 0
    for code in sorted(labeled):
        correct, und, wrong = _score(labeled[code], code)
        total += len(labeled[code])
        correct_all += correct
        own = [t for t in labeled[code] if guess_language(t).script in SCRIPTS.get(code, ("Latin",))]
        own_correct = sum(detect_language(t) == code for t in own)
        print(f"{'cyberseceval':<14}{code:<6}{len(labeled[code]):>6}{correct / len(labeled[code]):>10.3f}"
              f"{und / len(labeled[code]):>7.3f}{len(own):>14}{own_correct / max(len(own), 1):>10.3f}  {wrong}")
    print(f"{'cyberseceval':<14}{'all':<6}{total:>6}{correct_all / total:>10.3f}")
    cold_texts = [row["text"] for row in cold]
    correct, und, wrong = _score(cold_texts, "zh")
    print(f"{'cold_zh':<14}{'zh':<6}{len(cold_texts):>6}{correct / len(cold_texts):>10.3f}"
          f"{und / len(cold_texts):>7.3f}  {wrong}")

    deepset_texts = [row["text"] for row in deepset]
    found = Counter(detect_language(text) for text in deepset_texts)
    print("\n## deepset_prompt_injections (English/German, unlabeled): detected codes")
    print(", ".join(f"{code}: {n}" for code, n in found.most_common()))

    print(f"\n## Speed: detect_language, microseconds per message (repeat={args.repeat})")
    print(f"{'source':<30}{'n':>6}{'mean chars':>12}{'median us':>11}{'p90 us':>9}")
    for name, texts in (("cyberseceval (17 languages)", [t for ts in labeled.values() for t in ts]),
                        ("cold_zh", cold_texts), ("deepset (en/de)", deepset_texts)):
        median, p90 = timed(texts, args.repeat)
        mean_chars = sum(map(len, texts)) / len(texts)
        print(f"{name:<30}{len(texts):>6}{mean_chars:>12.0f}{median:>11.1f}{p90:>9.1f}")
    long_text = " ".join(deepset_texts) * 50
    start = time.perf_counter()
    detect_language(long_text)
    print(f"{'one text of ' + format(len(long_text), ',') + ' chars':<30}{1:>6}{len(long_text):>12}"
          f"{(time.perf_counter() - start) * 1e6:>11.1f}")


def _score(texts: list[str], code: str) -> tuple[int, int, str]:
    answers = Counter(detect_language(text) for text in texts)
    wrong = ", ".join(f"{other}:{n}" for other, n in answers.most_common(4) if other != code)
    return answers[code], answers["und"], wrong


if __name__ == "__main__":
    main()
