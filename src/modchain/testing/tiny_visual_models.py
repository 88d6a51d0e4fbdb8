"""Tiny random-weight visual-chain checkpoints of the real architectures, for tests, examples and notebooks.

Each ``save_tiny_*(path)`` writes a model and its processor loadable with ``from_pretrained`` (the path users
take with real checkpoints) and returns the path. Tokenizers are built here from a small word list, so nothing
is downloaded. Weights are random: boxes and masks are meaningless, but every code path is the real one.

Image processors are the slow PIL/numpy ones (``*ImageProcessorPil``): the default ones need torchvision.
Grounding DINO hard-codes BERT's ids of ``[CLS]`` (101), ``[SEP]`` (102), ``.`` (1012) and ``?`` (1029) to
split the text into phrases, so the tiny BERT vocabulary puts those tokens at exactly those ids.
torch and transformers are imported when a function is called.
"""

from __future__ import annotations

from typing import Any

#: Words the tiny tokenizers know (others become [UNK] / byte pieces); enough for the examples' queries.
WORDS = [
    "a", "an", "the", "of", "all", "photo", "cat", "cats", "dog", "dogs", "car", "cars", "silver", "red", "white",
    "black", "blue", "person", "people", "face", "faces", "license", "plate", "plates", "screen", "screens",
    "with", "text", "tree", "sign", "truck", "bus", "window", "road", "sky", "man", "woman", "child",
]

# Grounding DINO's hard-coded BERT token ids (modeling_grounding_dino.SPECIAL_TOKENS).
_BERT_FIXED_IDS = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 1012: ".", 1029: "?"}


def bert_vocab() -> dict[str, int]:
    """A BERT-style WordPiece vocabulary with the special and punctuation tokens at BERT's own ids."""
    size = max(_BERT_FIXED_IDS) + 1
    tokens = [_BERT_FIXED_IDS.get(i, f"[unused{i}]") for i in range(size)]
    tokens += [",", "!", "-", "'"] + WORDS + ["##s", "##es"]
    return {token: index for index, token in enumerate(tokens)}


def bert_tokenizer() -> Any:
    import transformers

    return transformers.BertTokenizerFast(vocab=bert_vocab(), do_lower_case=True)


def save_tiny_grounding_dino(path, *, num_queries: int = 30, seed: int = 0) -> str:
    """A tiny GroundingDinoForObjectDetection (Swin backbone, BERT text encoder) + GroundingDinoProcessor."""
    import torch
    import transformers

    torch.manual_seed(seed)
    tokenizer = bert_tokenizer()
    image_processor = transformers.GroundingDinoImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 96})
    processor = transformers.GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)
    backbone = transformers.SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1],
                                       num_heads=[1, 1, 1, 2], window_size=4, out_indices=[2, 3, 4])
    text = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=37, max_position_embeddings=64)
    config = transformers.GroundingDinoConfig(
        backbone_config=backbone.to_dict(), text_config=text.to_dict(), d_model=32, encoder_layers=1,
        decoder_layers=2,  # one decoder layer trips transformers' bbox_embed weight tying
        encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=2, decoder_attention_heads=2,
        num_queries=num_queries, max_text_len=64, num_feature_levels=3, encoder_n_points=2, decoder_n_points=2)
    model = transformers.GroundingDinoForObjectDetection(config).eval()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return str(path)


def _sam_parts(transformers: Any, hq: bool) -> dict[str, Any]:
    prefix = "SamHQ" if hq else "Sam"
    vision = getattr(transformers, f"{prefix}VisionConfig")(
        hidden_size=32, output_channels=16, num_hidden_layers=2, num_attention_heads=2, image_size=64,
        patch_size=8, window_size=4, global_attn_indexes=[1], mlp_dim=64, num_pos_feats=8)
    prompt = getattr(transformers, f"{prefix}PromptEncoderConfig")(
        hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4)
    decoder_kwargs: dict[str, Any] = dict(hidden_size=16, mlp_dim=32, num_hidden_layers=2, num_attention_heads=2,
                                          iou_head_hidden_dim=16)
    if hq:
        decoder_kwargs["vit_dim"] = 32  # SAM-HQ fuses the ViT's early features (hidden_size wide)
    decoder = getattr(transformers, f"{prefix}MaskDecoderConfig")(**decoder_kwargs)
    return {"vision_config": vision.to_dict(), "prompt_encoder_config": prompt.to_dict(),
            "mask_decoder_config": decoder.to_dict()}


def _sam_processor(transformers: Any, hq: bool) -> Any:
    image_processor = transformers.SamImageProcessorPil(
        size={"longest_edge": 64}, pad_size={"height": 64, "width": 64},
        mask_size={"longest_edge": 16}, mask_pad_size={"height": 16, "width": 16})
    processor_class = transformers.SamHQProcessor if hq else transformers.SamProcessor
    return processor_class(image_processor=image_processor)


def _spread(model: Any, scale: float, parts: tuple[str, ...] = ("vision_encoder", "iou_prediction_head")) -> None:
    """SAM initialises its ViT near zero (``initializer_range=1e-10``): every mask would be the same. Random
    normal weights make different prompts give different masks (and spread IoU scores), as trained weights do."""
    import torch

    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() > 1 and any(part in name for part in parts):
                parameter.normal_(0.0, scale / max(1, parameter.shape[-1]) ** 0.5)


def save_tiny_sam(path, *, seed: int = 0) -> str:
    """A tiny SamModel (64x64 input, 8x8 embedding, 32x32 low-res masks) + SamProcessor."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model = transformers.SamModel(transformers.SamConfig(**_sam_parts(transformers, hq=False))).eval()
    _spread(model, 1.0)
    model.save_pretrained(path)
    _sam_processor(transformers, hq=False).save_pretrained(path)
    return str(path)


def save_tiny_sam_hq(path, *, seed: int = 0) -> str:
    """A tiny SamHQModel (SAM-HQ: SAM plus a high-quality output token fed by early ViT features)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model = transformers.SamHQModel(transformers.SamHQConfig(**_sam_parts(transformers, hq=True))).eval()
    _spread(model, 1.0)
    model.save_pretrained(path)
    _sam_processor(transformers, hq=True).save_pretrained(path)
    return str(path)


def clip_tokenizer() -> Any:
    """A CLIP-style BPE tokenizer (``</w>`` word ends, ``<|startoftext|>``/``<|endoftext|>``) trained here."""
    import json

    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    specials = ["<|startoftext|>", "<|endoftext|>"]
    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=400, end_of_word_suffix="</w>", special_tokens=specials,
                                  initial_alphabet=list("abcdefghijklmnopqrstuvwxyz0123456789.,'!?-"))
    tok.train_from_iterator([" ".join(WORDS)] * 3 + [f"a photo of a {w}" for w in WORDS], trainer)
    state = json.loads(tok.to_str())["model"]
    # OWL models treat a query whose first token id is 0 as padding; CLIP's specials sit at the end.
    ordinary = sorted((i, t) for t, i in state["vocab"].items() if t not in specials)
    vocab = {t: n for n, (_, t) in enumerate(ordinary)}
    vocab.update({t: len(ordinary) + k for k, t in enumerate(specials)})
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["merges"]]
    tokenizer = transformers.CLIPTokenizer(vocab=vocab, merges=merges)
    tokenizer.model_max_length = 16  # OWLv2's text encoder takes 16 tokens
    return tokenizer


def save_tiny_owlv2(path, *, seed: int = 0) -> str:
    """A tiny Owlv2ForObjectDetection (CLIP text + ViT, 64x64 input, 8x8 patches) + Owlv2Processor."""
    import torch
    import transformers

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    image_processor = transformers.Owlv2ImageProcessorPil(size={"height": 64, "width": 64})
    processor = transformers.Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer)
    config = transformers.Owlv2Config(
        text_config=transformers.Owlv2TextConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=16, pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id).to_dict(),
        vision_config=transformers.Owlv2VisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=64,
            patch_size=8).to_dict(),
        projection_dim=32)
    model = transformers.Owlv2ForObjectDetection(config).eval()
    with torch.no_grad():  # small box offsets: boxes near each patch's prior box, not saturated at the edges
        for parameter in model.box_head.parameters():
            parameter.mul_(0.05)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return str(path)


def save_tiny_sam2(path, *, seed: int = 0) -> str:
    """A tiny Sam2Model (Hiera backbone, 64x64 input, 4x4 embedding + 16x16/8x8 FPN levels, 16x16 masks).

    transformers' SAM 2 image processor needs torchvision, so its settings are written as the
    ``preprocessor_config.json`` real checkpoints carry, for :class:`~modchain.backends.hf.sam.Sam` to read.
    """
    import json
    from pathlib import Path

    import torch
    import transformers

    torch.manual_seed(seed)
    # Hiera: a stage's first block pools (window // 2 must stay >= 1) and cannot be a global-attention block.
    hiera = transformers.Sam2HieraDetConfig(
        hidden_size=8, num_attention_heads=1, image_size=[64, 64], blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[8, 16, 32, 64], num_attention_heads_per_stage=[1, 1, 2, 2],
        window_size_per_stage=[4, 4, 4, 2], global_attention_blocks=[3],
        window_positional_embedding_background_size=[2, 2])
    vision = transformers.Sam2VisionConfig(backbone_config=hiera.to_dict(), backbone_channel_list=[64, 32, 16, 8],
                                           backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]], fpn_hidden_size=16)
    config = transformers.Sam2Config(
        vision_config=vision.to_dict(),
        prompt_encoder_config=transformers.Sam2PromptEncoderConfig(
            hidden_size=16, image_size=64, patch_size=16, mask_input_channels=4).to_dict(),
        mask_decoder_config=transformers.Sam2MaskDecoderConfig(
            hidden_size=16, mlp_dim=32, num_attention_heads=2, iou_head_hidden_dim=16).to_dict())
    model = transformers.Sam2Model(config).eval()
    _spread(model, 3.0, parts=("iou_prediction_head",))
    model.save_pretrained(path)
    settings = {"image_processor_type": "Sam2ImageProcessorFast", "processor_class": "Sam2Processor",
                "do_resize": True, "size": {"height": 64, "width": 64}, "do_rescale": True,
                "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.485, 0.456, 0.406],
                "image_std": [0.229, 0.224, 0.225], "do_convert_rgb": True,
                "mask_size": {"height": 16, "width": 16}}
    (Path(path) / "preprocessor_config.json").write_text(json.dumps(settings, indent=2))
    return str(path)
