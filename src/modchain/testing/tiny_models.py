"""Tiny random BLIP-2 checkpoints of the real architecture, for tests, examples and notebooks offline.

``save_tiny_blip2(path, "opt" | "t5")`` writes a model and processor loadable with ``from_pretrained``;
tokenizers are trained here on a few sentences, so nothing is downloaded. The weights are random: answers
are gibberish, but every code path (loading, batching, generation) is the real one.
Needs the ``local`` and ``image`` extras; torch and transformers are imported when a function is called.
"""

from __future__ import annotations

from typing import Any

_CORPUS = [
    "Question: Is there a weapon in the image? Answer: no",
    "Question: Does the image show nudity? Answer: no there is a cat on a sofa",
    "Question: Is anyone injured or bleeding? Answer: yes a man is bleeding",
    "Question: What text is written in the image? Answer: stop sign",
    "a photo of a dog playing with a ball in the park",
    "a red car parked next to a tree, two people walking",
]


def opt_tokenizer() -> Any:
    """An OPT-style byte-level BPE tokenizer (``</s>`` prepended as BOS), trained here on a few sentences."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="</s> $A", special_tokens=[("</s>", 2)])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="</s>", eos_token="</s>",
                                                pad_token="<pad>", unk_token="<unk>")


def t5_tokenizer() -> Any:
    """A T5-style tokenizer: word pieces, ``</s>`` appended, pad 0 (the decoder start), eos 1."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["<pad>", "</s>", "<unk>"])
    tok.train_from_iterator(_CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>",
                                                unk_token="<unk>")


def save_tiny_blip2(path, kind: str = "opt") -> str:
    """Write a tiny random BLIP-2 (``kind`` "opt" or "t5") with its processor to ``path``; return the path."""
    import torch
    import transformers

    torch.manual_seed(0)
    tokenizer = opt_tokenizer() if kind == "opt" else t5_tokenizer()
    processor = transformers.Blip2Processor(
        image_processor=transformers.BlipImageProcessor(size={"height": 32, "width": 32}),
        tokenizer=tokenizer, num_query_tokens=4)  # adds the <image> placeholder token
    image_token_index = tokenizer.convert_tokens_to_ids("<image>")
    vocab = len(tokenizer)
    if kind == "opt":
        text_config = transformers.OPTConfig(
            vocab_size=vocab, hidden_size=32, num_hidden_layers=2, ffn_dim=64, num_attention_heads=2,
            max_position_embeddings=128, word_embed_proj_dim=32, bos_token_id=2, eos_token_id=2, pad_token_id=1,
            init_std=0.5)
    else:
        text_config = transformers.T5Config(
            vocab_size=vocab, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
            feed_forward_proj="gated-gelu", is_encoder_decoder=True, pad_token_id=0, eos_token_id=1,
            decoder_start_token_id=0, tie_word_embeddings=False, initializer_factor=5.0)
    config = transformers.Blip2Config(
        vision_config=transformers.Blip2VisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
            patch_size=8).to_dict(),
        qformer_config=transformers.Blip2QFormerConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            encoder_hidden_size=32, vocab_size=100).to_dict(),
        text_config=text_config.to_dict(),
        num_query_tokens=4,
        image_token_index=image_token_index,
    )
    model = transformers.Blip2ForConditionalGeneration(config).eval()
    with torch.no_grad():  # spread the random weights a little so greedy choices are far from ties
        model.language_projection.weight.mul_(10.0)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return str(path)
