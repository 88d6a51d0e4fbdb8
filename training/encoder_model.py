"""The accurate tier's model for the encoder trainer (``train_encoder.py``): an encoder with mean pooling and
multi-task heads, and its export to (int8) ONNX with the files inference reads."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from encoder_settings import HEADS, MAX_LEN, OPSET, STRIDE

__all__ = ["build_model", "export_model", "head_from_onnx", "make_head", "wrap_encoder"]


def build_model(base: str | Path, layers: int | None = None, hidden: int = 0, init_head: str | Path | None = None,
                freeze_embeddings: bool = False, freeze_layers: int = 0):
    """The starting model: the encoder in ``base`` (eager attention: traceable for ONNX), cut to its first
    ``layers`` layers (inference time grows with depth; the frozen probe found 3 of 6 as good as all), with
    heads from ``make_head(hidden)``, or the trained heads of the ONNX model in ``init_head`` (the shipped
    probe's: fine-tuning then starts from the shipped model instead of from random heads).
    ``freeze_embeddings``: the embedding tables (12M of the 3-layer model's 17M weights) are not trained, which
    saves their optimizer step and keeps them what the int8 embedding quantization was checked on.
    ``freeze_layers`` K: the embeddings and the first K layers are not trained (no backward pass through them:
    a CPU budget buys more training rows)."""
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(base), attn_implementation="eager")
    if layers is not None:
        if not 1 <= layers <= len(encoder.encoder.layer):
            raise ValueError(f"layers must be 1..{len(encoder.encoder.layer)}")
        encoder.encoder.layer = encoder.encoder.layer[:layers]
        encoder.config.num_hidden_layers = layers
    frozen = [encoder.embeddings] if freeze_embeddings or freeze_layers else []
    for module in frozen + list(encoder.encoder.layer[:freeze_layers]):
        for p in module.parameters():
            p.requires_grad_(False)
    dim = encoder.config.hidden_size
    heads = head_from_onnx(init_head, dim) if init_head is not None else make_head(dim, hidden)
    return wrap_encoder(encoder, heads)


def make_head(dim: int, hidden: int = 0):
    """Fresh heads from the pooled vector: linear (``hidden`` 0) or ``dim -> hidden`` GELU ``-> len(HEADS)``, the
    probe's shape (the linear heads were far worse on frozen features)."""
    import torch

    if not hidden:
        return torch.nn.Linear(dim, len(HEADS))
    return torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Dropout(0.1),
                               torch.nn.Linear(hidden, len(HEADS)))


def head_from_onnx(model_file: str | Path, dim: int):
    """The hidden-layer heads of an exported model (``train_encoder_probe.py``'s: initializers
    ``heads.0.*`` and ``heads.3.*``), as a ``make_head`` module; a model without them is an error."""
    import onnx
    import torch
    from onnx import numpy_helper

    path = Path(model_file)
    graph = onnx.load(str(path / "model.onnx" if path.is_dir() else path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in ("heads.0.weight", "heads.3.weight"):  # the export names a weight after its transposed copy or not
        if n not in init and n + "_Transposed" in init:
            init[n] = init[n + "_Transposed"].T
    names = ("heads.0.weight", "heads.0.bias", "heads.3.weight", "heads.3.bias")
    if any(n not in init for n in names):
        raise ValueError(f"{path}: no hidden-layer heads to start from")
    w0, b0, w3, b3 = init["heads.0.weight"].T, init["heads.0.bias"], init["heads.3.weight"].T, init["heads.3.bias"]
    if w0.shape[0] != dim or w3.shape != (w0.shape[1], len(HEADS)):
        raise ValueError(f"{path}: head shapes {w0.shape} / {w3.shape} do not fit")
    head = make_head(dim, w0.shape[1])
    with torch.no_grad():
        head[0].weight.copy_(torch.from_numpy(w0.T.copy()))
        head[0].bias.copy_(torch.from_numpy(b0.copy()))
        head[3].weight.copy_(torch.from_numpy(w3.T.copy()))
        head[3].bias.copy_(torch.from_numpy(b3.copy()))
    return head


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
