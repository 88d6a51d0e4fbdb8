"""The fine-tuning trainer's model options (training/encoder_model.py through train_encoder.py) on a tiny random
BERT: the encoder cut to its first layers, hidden-layer heads, heads started from an exported probe model
(the fine-tune then starts from exactly the shipped model), and frozen embeddings / layers."""

from __future__ import annotations

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

import train_encoder as te  # noqa: E402
from test_encoder_probe import SPEC, exported_probe, tiny_base  # noqa: E402
from test_encoder_scorer import TEXTS  # noqa: E402

from modchain.backends.local.encoder import EncoderScorer  # noqa: E402


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tiny_base(tmp_path_factory.mktemp("base"))


def test_cut_encoder_with_hidden_heads(base):
    model = te.build_model(base, layers=1, hidden=16)
    assert len(model.encoder.encoder.layer) == 1 and model.encoder.config.num_hidden_layers == 1
    assert [type(m).__name__ for m in model.heads] == ["Linear", "GELU", "Dropout", "Linear"]
    assert model.heads[3].out_features == len(te.HEADS)
    assert isinstance(te.build_model(base).heads, torch.nn.Linear)  # the default stays the linear heads
    with pytest.raises(ValueError):
        te.build_model(base, layers=3)  # the tiny model has 2


def test_heads_started_from_a_probe_export_reproduce_it(base, tmp_path):
    _, _, shipped = exported_probe(base, tmp_path / "probe")

    model = te.build_model(base, layers=1, init_head=shipped).eval()  # before any training: the probe itself
    refit = te.export_model(model, base / "tokenizer.json", tmp_path / "refit", SPEC, quantize=False)
    a = EncoderScorer.load(shipped).raw_window_logits(TEXTS)
    b = EncoderScorer.load(refit).raw_window_logits(TEXTS)
    for x, z in zip((w for t in a for w in t), (w for t in b for w in t)):
        assert [x[h] for h in te.HEADS] == pytest.approx([z[h] for h in te.HEADS], abs=1e-4)


def test_heads_from_a_linear_model_are_an_error(base, tmp_path):
    linear = te.export_model(te.build_model(base).eval(), base / "tokenizer.json", tmp_path / "lin", SPEC, False)
    with pytest.raises(ValueError):
        te.build_model(base, init_head=linear)


def test_frozen_embeddings_and_layers_are_not_trained(base):
    def trainable(model):
        parts = (n.split(".") for n, p in model.encoder.named_parameters() if p.requires_grad)
        return {k[0] + (k[2] if k[0] == "encoder" else "") for k in parts} - {"pooler"}  # the pooler is unused

    assert trainable(te.build_model(base)) == {"embeddings", "encoder0", "encoder1"}
    assert trainable(te.build_model(base, freeze_embeddings=True)) == {"encoder0", "encoder1"}
    frozen = te.build_model(base, freeze_layers=1, hidden=8)
    assert trainable(frozen) == {"encoder1"}
    assert all(p.requires_grad for p in frozen.heads.parameters())
