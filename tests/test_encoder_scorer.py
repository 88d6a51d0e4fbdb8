"""The accurate tier's inference class (modchain/backends/local/encoder.py) on a tiny random-weight BERT.

The model is exported by the training script's own ``export_model`` (the code that writes the shipped model),
with a WordPiece tokenizer made here: nothing is downloaded, and the test checks the ONNX graph against torch,
the windowing of long texts with its length shift, batch == single, the int8 path and the CUDA path.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
tokenizers = pytest.importorskip("tokenizers")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))

import train_encoder as te  # noqa: E402

from modchain.backends.local import encoder as enc  # noqa: E402
from modchain.backends.local import long_text  # noqa: E402
from modchain.backends.local.encoder import EncoderScorer  # noqa: E402

WORDS = ("the a cat sat on mat please write me short poem about autumn leaves river stone quiet morning "
         "tell how to bake bread with flour water salt yeast oven").split()
TEXTS = ["the cat sat on the mat", "please write me a short poem about autumn leaves",
         "tell me how to bake bread with flour water salt", "quiet morning river stone", "zebra"]


def _tokenizer_file(folder: Path) -> Path:
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + sorted(set(WORDS)) + [".", ","])}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    path = folder / "tokenizer.json"
    tok.save(str(path))
    return path


def _tiny_model(vocab_size: int):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=te.MAX_LEN + 2, attn_implementation="eager")
    model = te.wrap_encoder(BertModel(config))
    model.eval()
    return model


SPEC = {"shifts": {"toxic": 0.3, "unsafe": -0.2}, "slopes": {"toxic": 0.5, "unsafe": 1.0}, "meta": {"test": True}}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    tok_file = _tokenizer_file(folder)
    model = _tiny_model(len(json.loads(tok_file.read_text())["model"]["vocab"]))
    out = te.export_model(model, tok_file, folder / "fp32", SPEC, quantize=False)
    return model, out


def test_export_writes_the_three_files_and_the_sidecar(exported):
    _, out = exported
    assert sorted(p.name for p in out.iterdir()) == ["encoder.json", "model.onnx", "tokenizer.json"]
    spec = json.loads((out / "encoder.json").read_text())
    assert spec["heads"] == list(EncoderScorer.HEADS) and spec["max_len"] == te.MAX_LEN
    assert spec["slopes"]["unsafe"] == 1.0 and spec["quantized"] is False


def test_scores_are_probabilities_per_head(exported):
    scorer = EncoderScorer.load(exported[1])
    out = scorer.score_batch(TEXTS)
    assert len(out) == len(TEXTS)
    for s in out:
        assert tuple(s) == EncoderScorer.HEADS  # without sentences=True: the five heads only
        assert all(0.0 < v < 1.0 for v in s.values())
    assert scorer.score_batch([]) == []


def test_onnx_graph_matches_torch_with_the_shifts(exported):
    model, out = exported
    scorer = EncoderScorer.load(out)
    for text in TEXTS:
        (ids, mask), = scorer.token_windows(text)
        with torch.no_grad():
            z = model(torch.tensor([ids]), torch.tensor([mask]))[0].tolist()
        got = scorer.score(text)
        for i, head in enumerate(EncoderScorer.HEADS):
            want = 1 / (1 + math.exp(-(z[i] + SPEC["shifts"].get(head, 0.0))))
            assert got[head] == pytest.approx(want, abs=1e-5)


def test_batch_equals_single(exported):
    scorer = EncoderScorer.load(exported[1])
    batch = scorer.score_batch(TEXTS)
    for text, b in zip(TEXTS, batch):
        single = scorer.score(text)
        for head in EncoderScorer.HEADS:
            assert single[head] == pytest.approx(b[head], abs=1e-5)


def test_long_text_is_windowed_and_max_aggregated_with_the_length_shift(exported):
    scorer = EncoderScorer.load(exported[1])
    long = " ".join(WORDS[i % len(WORDS)] for i in range(3000))  # > long_text.WINDOW_BYTES
    assert long_text.windows(long) is not None
    wins = scorer.token_windows(long)
    assert len(wins) > 20 and all(len(ids) <= te.MAX_LEN for ids, _ in wins)
    (per_window,) = scorer.raw_window_logits([long])
    assert len(per_window) == len(wins)
    got = scorer.score(long)
    n = len(per_window)
    for head in ("toxic", "unsafe"):
        z = max(w[head] for w in per_window) + SPEC["shifts"][head] - long_text.length_shift(n, SPEC["slopes"][head])
        assert got[head] == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-6)
    top = max(per_window, key=lambda w: w["unsafe"])  # the kind heads follow the most unsafe window
    assert got["injection"] == pytest.approx(1 / (1 + math.exp(-top["injection"])), abs=1e-6)
    # a short text has one window and no shift
    assert len(scorer.token_windows(TEXTS[0])) == 1


SENTENCES = "the cat sat on the mat. please write me a short poem about autumn leaves. quiet morning river stone."


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


@pytest.mark.parametrize("toxic_shift", [0.3, 12.0])  # the tiny model's sentences: not decisive / decisive
def test_a_one_window_texts_sentences_are_scored_and_a_decisive_one_decides_toxic(exported, tmp_path, toxic_shift):
    model, out = exported
    spec = {**SPEC, "shifts": {**SPEC["shifts"], "toxic": toxic_shift}}
    folder = te.export_model(model, out / "tokenizer.json", tmp_path / "shifted", spec, quantize=False)
    scorer = EncoderScorer.load(folder)
    parts = long_text.sentence_parts(SENTENCES)
    assert len(parts) == 3
    (whole,), *per_sentence = (ws for ws in scorer.raw_window_logits([SENTENCES, *parts]))
    sentence_z = max(ws[0]["toxic"] for ws in per_sentence) + toxic_shift
    raised = sentence_z - long_text.length_shift(3, SPEC["slopes"]["toxic"])
    decisive = _sigmoid(raised) >= long_text.DECISIVE_SENTENCE
    assert decisive is (toxic_shift > 1)  # both branches are exercised
    assert "toxic_sentence" not in scorer.score(SENTENCES)  # sentence units only when asked for
    got = scorer.score(SENTENCES, sentences=True)
    want = max(whole["toxic"] + toxic_shift, raised) if decisive else whole["toxic"] + toxic_shift
    assert got["toxic"] == pytest.approx(_sigmoid(want), abs=1e-5)
    assert got["toxic_sentence"] == pytest.approx(_sigmoid(sentence_z), abs=1e-5)
    # prompt safety is judged on the whole text only: a request needs its context
    assert got["unsafe"] == pytest.approx(_sigmoid(whole["unsafe"] + SPEC["shifts"]["unsafe"]), abs=1e-5)
    # one sentence, or a text longer than one window (windowed instead): no sentence pass
    assert "toxic_sentence" not in scorer.score(TEXTS[1], sentences=True)
    assert "toxic_sentence" not in scorer.score(" ".join([SENTENCES] * 60), sentences=True)
    # batch == single with the extra units in the batch
    for text, b in zip([SENTENCES, *TEXTS], scorer.score_batch([SENTENCES, *TEXTS], sentences=True)):
        assert scorer.score(text, sentences=True) == pytest.approx(b, abs=1e-5)


def test_int8_export_stays_close_to_fp32(exported, tmp_path):
    model, out = exported
    q = te.export_model(model, out / "tokenizer.json", tmp_path / "int8", SPEC, quantize=True)
    assert json.loads((q / "encoder.json").read_text())["quantized"] is True
    a, b = EncoderScorer.load(out).score_batch(TEXTS), EncoderScorer.load(q).score_batch(TEXTS)
    for x, y in zip(a, b):
        for head in EncoderScorer.HEADS:
            assert 0.0 < y[head] < 1.0 and abs(x[head] - y[head]) < 0.1


def test_bad_input_and_missing_files_fail_closed(exported, tmp_path):
    scorer = EncoderScorer.load(exported[1])
    with pytest.raises(TypeError):
        scorer.score_batch(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        scorer.score(None)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        EncoderScorer.load(tmp_path)
    with pytest.raises(ValueError):
        EncoderScorer.load(exported[1], device="tpu")


def test_encoder_available_follows_the_packaged_folder(exported, monkeypatch, tmp_path):
    monkeypatch.setattr(enc, "MODEL_DIR", exported[1])
    assert enc.encoder_available() is True
    monkeypatch.setattr(enc, "MODEL_DIR", tmp_path)
    assert enc.encoder_available() is False


_HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.mark.skipif(_HAS_CUDA, reason="a CUDA provider is present")
def test_cuda_without_a_provider_is_an_error(exported):
    with pytest.raises(RuntimeError):
        EncoderScorer.load(exported[1], device="cuda")


@pytest.mark.skipif(not _HAS_CUDA, reason="no onnxruntime CUDA provider (onnxruntime-gpu and a GPU)")
def test_cuda_matches_cpu(exported):
    cpu = EncoderScorer.load(exported[1]).score_batch(TEXTS)
    gpu = EncoderScorer.load(exported[1], device="cuda").score_batch(TEXTS)
    for x, y in zip(cpu, gpu):
        for head in EncoderScorer.HEADS:
            assert x[head] == pytest.approx(y[head], abs=1e-3)
