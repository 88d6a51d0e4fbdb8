"""The accurate tier's model for the encoder trainer (``train_encoder.py``): an encoder with mean pooling and
multi-task heads, and its export to (int8) ONNX with the files inference reads."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from encoder_settings import HEADS, MAX_LEN, OPSET, STRIDE

__all__ = ["build_model", "export_model", "wrap_encoder"]


def build_model(base: str | Path):
    """The starting model: the encoder in ``base`` (eager attention: traceable for ONNX) with fresh heads."""
    from transformers import AutoModel

    return wrap_encoder(AutoModel.from_pretrained(str(base), attn_implementation="eager"))


def wrap_encoder(encoder, heads=None):
    """``encoder`` with mean pooling and ``heads`` (a module from the pooled vector to ``len(HEADS)`` logits;
    default: a fresh linear layer)."""
    import torch

    class MultiHead(torch.nn.Module):
        """Encoder, mean pooling over real tokens, then the heads."""

        def __init__(self, encoder, heads) -> None:
            super().__init__()
            self.encoder = encoder
            self.dropout = torch.nn.Dropout(0.1)
            self.heads = heads if heads is not None else torch.nn.Linear(encoder.config.hidden_size, len(HEADS))

        def forward(self, input_ids, attention_mask):
            # token types are all 0 for one segment; made inside so the graph takes two inputs only
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.heads(self.dropout(pooled))

    return MultiHead(encoder, heads)


def export_model(model, tokenizer_file: str | Path, out: str | Path, spec: dict, quantize: bool | str) -> Path:
    """Write ``model.onnx`` (encoder+heads, opset 17, dynamic batch and sequence axes), ``tokenizer.json`` and
    ``encoder.json`` (``spec``) to ``out``. ``quantize``: False keeps fp32; True is onnxruntime's dynamic int8
    quantization of every weight; ``"embeddings"`` quantizes only the embedding tables (the Gather ops: most of
    a small encoder's bytes) and keeps the matrix products in fp32, where int8 activations cost accuracy."""
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    ids = torch.tensor([[1, 2, 3, 4], [1, 2, 4, 0]], dtype=torch.long)  # tracing input: any ids in every vocab
    mask = (ids != 0).long()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        torch.onnx.export(model, (ids, mask), str(fp32), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                        "attention_mask": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}})
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            only = {"op_types_to_quantize": ["Gather"]} if quantize == "embeddings" else {}
            quantize_dynamic(str(fp32), str(out / "model.onnx"), weight_type=QuantType.QInt8, **only)
        else:
            shutil.copyfile(fp32, out / "model.onnx")
    shutil.copyfile(tokenizer_file, out / "tokenizer.json")
    full = {"heads": list(HEADS), "max_len": MAX_LEN, "stride": STRIDE,
            "quantized": quantize if isinstance(quantize, str) else bool(quantize), **spec}
    (out / "encoder.json").write_text(json.dumps(full, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return out
