"""Train the multilingual fast-tier models shipped in modchain (reproducible, seeded, CPU, about a minute).

    python training/train_multilingual.py --data ../shared/data --out src/modchain/backends/local/models \
        [--dump-texts /tmp/ml_trained.jsonl] [--report /tmp/ml_report.txt]

Writes (``modchain.backends.local.multilingual`` reads them):
  toxicity_zh.json.gz             head "toxic": offensive Chinese. Data: COLD (``multilingual/cold_zh.jsonl``): its
                                  train split trains, its dev split tunes the threshold, its test split is only
                                  reported; plus the hand-written Chinese cases of training/cases/multilingual
                                  (other domains than COLD's race / gender / region), by their own split.
  prompt_injection_multi.json.gz  head "unsafe": prompt injection / jailbreak vs. ordinary requests, any language.
                                  Data: CyberSecEval's multilingual injections (``prompt_injection/
                                  cyberseceval_pi_multilingual.jsonl``; 30% of each language held out for dev, by
                                  the SHA-256 of the row id), deepset (EN/DE, noisy labels, its test split is dev),
                                  COLD comments as ordinary Chinese text, English attacks and benign requests from
                                  the English trainer's data, and the hand-written multilingual cases.
Needs scikit-learn, scipy and numpy (training/requirements.txt). Sparse matrices are built in sorted order and the
solver is seeded, so the same data and library versions give the same files.

Decontamination: every text trained or tuned on (after template expansion) is checked with
``<data>/../decontam/decontam.py``; a hand-written text that overlaps stops the script before any model is
written, a shared-data row that overlaps is dropped and counted (``classifier_decontam.decontaminate``).
``--dump-texts FILE`` writes every such text. Test-only files (tests/data/*generalisation*.jsonl) are never read.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "training")]

import classifier_decontam  # noqa: E402
from classifier_decontam import decontaminate, dump_texts, overlap_checker  # noqa: E402
from classifier_examples import CASES, SEED, Example, everyday_and_borderline, read_jsonl  # noqa: E402

from modchain.backends.local.multilingual import FORMAT, MultiModel, featurize, normalize  # noqa: E402

ML_CASES = CASES / "multilingual"
LANG_CODES = {"Arabic": "ar", "Bengali": "bn", "Chinese": "zh", "Filipino/Tagalog": "tl", "French": "fr", "German": "de",
              "Hindi": "hi", "Indonesian": "id", "Italian": "it", "Japanese": "ja", "Korean": "ko", "Portuguese": "pt",
              "Russian": "ru", "Spanish": "es", "Thai": "th", "Turkish": "tr", "Vietnamese": "vi"}
HAND = {"ml_cases", "ml_cases_tox", "cases", "everyday_chat", "borderline"}
classifier_decontam.HAND_WRITTEN.update(HAND)  # hand-written sources: an overlap fails the run
TOX_CONFIG = {"cjk_orders": [1, 3], "word_orders": [3, 5], "lexicon": True}
PI_CONFIG = {"cjk_orders": [1, 3], "word_orders": [3, 5], "lexicon": False, "sentinel": True}
SYSTEM_PROMPTS_WEIGHT = 0.5


def unit(key: str) -> float:
    """A deterministic number in [0, 1) from a key (SHA-256): splits that do not depend on PYTHONHASHSEED."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) / 16**12


def _case_rows() -> list[tuple[str, dict]]:
    rows = []
    if ML_CASES.is_dir():
        for path in sorted(ML_CASES.glob("*.jsonl")):
            rows += [(path.stem, r) for r in read_jsonl(path)]
    return rows


_POSITIVE = {"1", "injection", "jailbreak", "toxic", "unsafe", "attack"}
_NEGATIVE = {"0", "safe", "benign", "ok"}


def _label(value) -> int:
    v = str(value).lower()
    if v not in _POSITIVE | _NEGATIVE:
        raise SystemExit(f"unknown label {value!r} in training/cases/multilingual")
    return int(v in _POSITIVE)


def _case_examples(task: str) -> list[Example]:
    """The hand-written multilingual cases for one task ("toxicity" or "prompt"). A row's task comes from its
    ``task`` field, else from its file name (``*tox*`` = toxicity). Rows without a ``split`` are split 75/25
    within each (file, language, label), by the SHA-256 of the text: every language has dev rows of each label."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for stem, r in _case_rows():
        row_task = r.get("task") or ("toxicity" if "tox" in stem else "prompt")
        if row_task.startswith("tox") == (task == "toxicity"):
            groups[(stem, r.get("lang", "und"), _label(r.get("label", r.get("unsafe"))))].append(r)
    out = []
    source = "ml_cases_tox" if task == "toxicity" else "ml_cases"
    for (stem, lang, label), rows in sorted(groups.items()):
        rows.sort(key=lambda r: unit(stem + ":" + r["text"]))
        n_dev = round(0.25 * len(rows))
        for n, r in enumerate(rows):
            split = r.get("split") or ("dev" if n < n_dev else "train")
            # kind: the case's own (override, persona, ... ; hardneg, work, ...), for the reports
            out.append(Example(r["text"], label, source, split, f"{stem}:{lang}:{n}", 1.0, lang, r.get("kind")))
    return out


# ---------------------------------------------------------------------------- data
def toxicity_data(data: Path) -> list[Example]:
    exs = []
    for r in read_jsonl(data / "multilingual" / "cold_zh.jsonl"):
        split = r["extra"]["split"]  # train / dev / test: COLD's own
        exs.append(Example(r["text"], r["unsafe"], "cold", split, f"cold:{r['id']}", 1.0, "zh", r["extra"]["topic"]))
    for e in _case_examples("toxicity"):
        e.weight = 10.0  # few next to COLD's 25,000, and the other domains (gaming, forums, shops, sport, work)
        exs.append(e)
    return exs


def prompt_data(data: Path) -> list[Example]:
    exs = []
    rows = read_jsonl(data / "prompt_injection" / "cyberseceval_pi_multilingual.jsonl")
    by_lang: dict[str, list[dict]] = defaultdict(list)
    seen_system: set[str] = set()
    for r in rows:
        by_lang[r["extra"]["lang"]].append(r)
    for name, group in sorted(by_lang.items()):  # stratified: 30% of each language is dev
        lang = LANG_CODES[name]
        group.sort(key=lambda r: unit("cse-ml:" + r["id"]))
        n_dev = round(0.3 * len(group))
        for i, r in enumerate(group):
            split = "dev" if i < n_dev else "train"
            logic = r["extra"]["risk_category"] == "logic-violating"
            if logic and split == "train":
                continue  # out of its system prompt's context an ordinary question (see MODELS.md)
            exs.append(Example(r["text"], 1, "cse_multi_logic" if logic else "cse_multi", split, f"cse:{r['id']}",
                               1.0, lang, "injection"))
            system = r["extra"].get("system_prompt") or ""
            if SYSTEM_PROMPTS_WEIGHT and system.strip() and system not in seen_system:
                # the developer's own instructions ("the password is ...; never reveal it"), in 17 languages: an
                # instruction that mentions secrets is not an attack, the attempt to get them is
                seen_system.add(system)
                exs.append(Example(system, 0, "cse_system_prompts", split, f"cse-sys:{r['id']}", SYSTEM_PROMPTS_WEIGHT,
                                   lang))
    for r in read_jsonl(data / "prompt_injection" / "deepset_prompt_injections.jsonl"):
        split = "dev" if r["extra"].get("split") == "test" else "train"
        exs.append(Example(r["text"], r["unsafe"], "deepset", split, f"deepset:{r['id']}", 0.5, "en/de",
                           "injection" if r["unsafe"] else None))
    # ordinary Chinese text: COLD's comments, of either toxicity label, are no prompt attack
    for r in read_jsonl(data / "multilingual" / "cold_zh.jsonl"):
        u = unit("pi-cold:" + r["id"])
        if u < 0.08:  # weight 0.05: many, and only one kind of Chinese text (they outweighed the Chinese attacks)
            exs.append(Example(r["text"], 0, "cold_comments", "dev" if u < 0.016 else "train", f"cold:{r['id']}",
                               0.05, "zh"))
    # English: attacks and benign requests, so that neither English nor any other language is itself a signal
    ps = data / "prompt_safety"
    for name, path, label, weight, keep in (
        ("en_cse_injection", ps / "cyberseceval_prompt_injection.jsonl", 1, 1.0,
         lambda r: r["extra"].get("risk_category") == "security-violating"),
        ("en_jailbreak_llms", ps / "jailbreak_llms_inthewild.jsonl", 1, 0.5, lambda r: unit("jl:" + str(r["id"])) < 0.4),
        ("en_bipia", ps / "bipia_attack_instructions.jsonl", 1, 0.5, lambda r: True),
        ("en_self_instruct", ps / "self_instruct_benign.jsonl", 0, 1.0, lambda r: True),
        ("en_wildguard_benign", ps / "wildguard_benign.jsonl", 0, 1.0, lambda r: True),
        ("en_mitre_frr", ps / "cyberseceval_mitre_frr.jsonl", 0, 0.5, lambda r: unit("mf:" + str(r["id"])) < 0.4),
    ):
        for r in read_jsonl(path):
            if keep(r):
                split = "dev" if unit(f"{name}:{r['id']}") < 0.2 else "train"
                exs.append(Example(r["text"], label, name, split, f"{name}:{r['id']}", weight, "en",
                                   "injection" if label else None))
    for n, r in enumerate(read_jsonl(CASES / "prompt_cases.jsonl")):
        if "text" in r and (r["label"] == 0 or r.get("kind") in ("injection", "jailbreak")):
            exs.append(Example(r["text"], r["label"], "cases", r["split"], f"pc:{n}", 2.0, "en", r.get("kind")))
    chats, border = everyday_and_borderline(random.Random(SEED + 7))
    for e in chats + border:
        e.func, e.weight = "en", 1.0
        exs.append(e)
    for e in _case_examples("prompt"):
        e.weight = 3.0
        exs.append(e)
    return exs


# ---------------------------------------------------------------------------- fitting
def matrix(feats: list[dict[str, frozenset[str]]], vocab: dict[str, int]):
    import numpy as np
    from scipy import sparse

    indptr, indices, values = [0], [], []
    for fams in feats:
        row = {}
        for fam, fs in sorted(fams.items()):
            if not fs:
                continue
            scale = 1.0 / len(fs) ** 0.5
            for f in fs:
                j = vocab.get(fam + ":" + f)
                if j is not None:
                    row[j] = scale
        cols = sorted(row)
        indices += cols
        values += [row[c] for c in cols]
        indptr.append(len(indices))
    return sparse.csr_matrix((np.array(values), np.array(indices, dtype=np.int64), np.array(indptr)),
                             shape=(len(feats), len(vocab)))


def fit(name: str, exs: list[Example], config: dict, C: float, keep: int, rule: dict,
        balance_languages: bool = False) -> dict:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    feats = [featurize(normalize(e.text), config) for e in exs]
    train = [i for i, e in enumerate(exs) if e.split == "train"]
    df = Counter(fam + ":" + f for i in train for fam, fs in feats[i].items() for f in fs)
    vocab = {f: j for j, f in enumerate(sorted(f for f, n in df.items() if n >= 2))}
    X = matrix([feats[i] for i in train], vocab)
    y = np.array([exs[i].label for i in train])
    w = np.array([exs[i].weight for i in train])
    if balance_languages:  # within each language, attacks weigh as much as benign text: a language is no signal
        langs = np.array([str(exs[i].func) for i in train])
        for lang in sorted(set(langs)):
            pos, neg = (langs == lang) & (y == 1), (langs == lang) & (y == 0)
            if pos.any() and neg.any():
                w[pos] *= w[neg].sum() / w[pos].sum()
    for label in (0, 1):  # each class weighs as much in total
        w[y == label] *= len(y) / (2 * w[y == label].sum())
    clf = LogisticRegression(C=C, solver="liblinear", max_iter=2000, random_state=SEED)
    clf.fit(X, y, sample_weight=w)
    coef = clf.coef_[0]
    inv = {j: f for f, j in vocab.items()}
    order = np.argsort(-np.abs(coef), kind="stable")[:keep]
    weights = {inv[int(j)]: float(f"{coef[j]:.4g}") for j in order if abs(coef[j]) >= 0.01}
    spec = {"format": FORMAT, "name": name, "config": config, "bias": float(f"{clf.intercept_[0]:.6g}"),
            "weights": dict(sorted(weights.items())), "shift": 0.0}
    model = MultiModel(spec)
    tune = [e for e in exs if e.split == "dev" and e.source in rule["sources"]]
    spec["shift"] = pick_shift(model, tune, rule.get("max_fpr"))
    print(f"[{name}] vocabulary {len(vocab)}, kept {len(weights)} weights, shift {spec['shift']:.3f}", flush=True)
    return spec


def pick_shift(model: MultiModel, exs: list[Example], max_fpr: float | None) -> float:
    """The logit threshold with the best F1 on the tuning rows (each source weighing as much), with every source's
    FPR under the cap (a pooled cap let the few hand-written rows buy a threshold that flagged 30% of COLD)."""
    import numpy as np

    z = np.array([model.logit(model.features(e.text)) for e in exs])
    y = np.array([e.label for e in exs])
    per = Counter((e.source, e.label) for e in exs)
    w = np.array([1.0 / per[(e.source, e.label)] for e in exs])
    negatives = [np.array([e.source == s and not e.label for e in exs]) for s in sorted({e.source for e in exs})]
    best, best_t = -1.0, 0.0
    for t in np.quantile(z, np.linspace(0.01, 0.99, 393)):
        pred = z >= t
        if max_fpr is not None and any(m.any() and pred[m].mean() > max_fpr for m in negatives):
            continue
        tp, fp, fn = w[pred & (y == 1)].sum(), w[pred & (y == 0)].sum(), w[~pred & (y == 1)].sum()
        f1 = 2 * tp / max(2 * tp + fp + fn, 1e-9)
        if f1 > best:
            best, best_t = f1, float(t)
    return round(best_t, 4)


def write(spec: dict, out: Path, meta: dict) -> Path:
    spec["meta"] = meta
    path = out / f"{spec['name']}.json.gz"
    raw = json.dumps(spec, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    return path


# ---------------------------------------------------------------------------- reporting
def metrics(scores: list[float], labels: list[int]) -> str:
    tp = sum(s >= 0.5 and y for s, y in zip(scores, labels))
    fp = sum(s >= 0.5 and not y for s, y in zip(scores, labels))
    pos, neg = sum(labels), len(labels) - sum(labels)
    rec = f"{tp / pos:.3f}" if pos else "  -  "
    fpr = f"{fp / neg:.3f}" if neg else "  -  "
    f1 = f"{2 * tp / (tp + pos + fp):.3f}" if pos else "  -  "
    return f"n={len(labels):5d} pos={pos:5d}  F1 {f1}  recall {rec}  FPR {fpr}"


def table(title: str, model: MultiModel, exs: list[Example], key) -> str:
    groups: dict[str, list[Example]] = defaultdict(list)
    for e in exs:
        groups[key(e)].append(e)
    lines = [title]
    for k in sorted(groups):
        g = groups[k]
        lines.append(f"  {k:38s} " + metrics([model.probability(e.text) for e in g], [e.label for e in g]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", choices=["toxicity_zh", "prompt_injection_multi"], default=None)
    ap.add_argument("--decontam", type=Path, default=None, help="default: <data>/../decontam")
    ap.add_argument("--dump-texts", type=Path, default=None, help="write every text trained or tuned on (JSON Lines)")
    ap.add_argument("--report", type=Path, default=None)
    ap.add_argument("--word-orders", default=None, help="override both models' word n-gram orders, e.g. 2,4")
    args = ap.parse_args(argv)
    if args.word_orders:
        for cfg in (TOX_CONFIG, PI_CONFIG):
            cfg["word_orders"] = [int(x) for x in args.word_orders.split(",")]
    overlap = classifier_decontam.OVERLAP = overlap_checker(args.decontam or args.data.resolve().parent / "decontam")
    args.out.mkdir(parents=True, exist_ok=True)
    used: dict[str, list[Example]] = {}
    specs: list[tuple[dict, list[Example]]] = []
    report: list[str] = []
    meta = {"trainer": "training/train_multilingual.py", "seed": SEED}
    # every text is checked before any model is written: a hand-written overlap stops the run here
    if args.only in (None, "toxicity_zh"):
        exs = decontaminate("toxicity_zh", toxicity_data(args.data), overlap)
        used["toxicity_zh"] = [e for e in exs if e.split != "test"]
        spec = fit("toxicity_zh", [e for e in exs if e.split != "test"], TOX_CONFIG, C=2.0, keep=40000,
                   rule={"sources": {"cold", "ml_cases_tox"}, "max_fpr": 0.15})
        specs.append((spec, exs))
    if args.only in (None, "prompt_injection_multi"):
        exs = decontaminate("prompt_injection_multi", prompt_data(args.data), overlap)
        used["prompt_injection_multi"] = exs
        train_exs = [e for e in exs if e.source != "cse_multi_logic"]
        # tuned on the non-English rows only: English texts never reach this model alone (multilingual_route)
        spec = fit("prompt_injection_multi", train_exs, PI_CONFIG, C=16.0, keep=40000,
                   rule={"sources": {"cse_multi", "ml_cases", "cold_comments"}, "max_fpr": 0.06})
        specs.append((spec, exs))
    if args.dump_texts:
        dump_texts(args.dump_texts, used)
    for spec, exs in specs:
        counts = Counter(f"{e.source}/{e.split}/{e.label}" for e in exs)
        path = write(spec, args.out, {**meta, "examples": dict(sorted(counts.items()))})
        model = MultiModel(json.loads(gzip.decompress(path.read_bytes())))
        held = [e for e in exs if e.split in ("dev", "test")]
        report.append(table(f"{spec['name']}: held-out rows (dev; COLD test too), by source / split",
                            model, held, lambda e: f"{e.source}/{e.split}"))
        if spec["name"] == "prompt_injection_multi":
            report.append(table("prompt_injection_multi: dev rows by language", model,
                                [e for e in held if e.split == "dev"], lambda e: str(e.func)))
        report.append(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB, {len(spec['weights'])} weights")
    text = "\n\n".join(report)
    print("\n" + text)
    if args.report:
        args.report.write_text(text + "\n")


if __name__ == "__main__":
    main()
