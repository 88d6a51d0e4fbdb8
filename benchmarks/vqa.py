"""BLIP-2 VQA throughput: encode once + one batched generate vs the seed's one call per question.

Same model, same images, same 8 moderation questions + a caption. Rows, side by side:

  one call per question   ``Blip2LocalVQA.answer_one_by_one``: the seed notebook's pattern,
                          ``processor(images=image, text=prompt)`` + ``model.generate`` per prompt (9 per image)
  batched (modchain)      ``Blip2LocalVQA.answer``: one vision-encoder pass for all images of a batch, all
                          (image, prompt) pairs answered in one ``generate``

Columns: images/s, vision-encoder calls, images encoded (per image), and the speedup. Bar: >= 4x and never
more than one vision encoding per image. The answers of both rows are compared (greedy: they must match).

Compute does not depend on the weights, so the model is random-initialized (nothing is downloaded). Default
(CPU): the real ``blip2-opt-2.7b`` vision encoder (ViT-g/14: hidden 1408, 39 layers, 16 heads, 224 px) and
Q-Former (32 queries) with an opt-125m-sized language model. ``--full``: the real OPT-2.7B language model
too, in fp16 on a GPU. Every prompt generates exactly ``--new-tokens`` tokens (``min_new_tokens``), so both
rows do the same decoding work whatever the random weights say.

    python benchmarks/vqa.py [--images 2] [--new-tokens 10] [--repeats 1] [--full] [--device cuda]
"""

from __future__ import annotations

import argparse
import time

QUESTIONS = [
    "Does this image contain any nudity?",
    "Is there a weapon in this image?",
    "Does this image show violence or blood?",
    "Are there any drugs, alcohol or tobacco in this image?",
    "Does this image contain hate symbols?",
    "Is there a gesture that could be offensive?",
    "Is any person in this image a minor?",
    "What text is written in this image?",
]


def build(full: bool, device: str | None):
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from modchain.backends.hf.blip2 import Blip2LocalVQA

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(QUESTIONS * 4, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="</s> $A", special_tokens=[("</s>", 2)])
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="</s>", eos_token="</s>",
                                                     pad_token="<pad>", unk_token="<unk>")
    processor = transformers.Blip2Processor(
        image_processor=transformers.BlipImageProcessor(size={"height": 224, "width": 224}),
        tokenizer=tokenizer, num_query_tokens=32)
    if full:  # facebook/opt-2.7b
        text = dict(hidden_size=2560, num_hidden_layers=32, ffn_dim=10240, num_attention_heads=32,
                    word_embed_proj_dim=2560)
    else:  # facebook/opt-125m
        text = dict(hidden_size=768, num_hidden_layers=12, ffn_dim=3072, num_attention_heads=12,
                    word_embed_proj_dim=768)
    config = transformers.Blip2Config(
        vision_config=transformers.Blip2VisionConfig(  # ViT-g/14 as in Salesforce/blip2-opt-2.7b
            hidden_size=1408, intermediate_size=6144, num_hidden_layers=39, num_attention_heads=16,
            image_size=224, patch_size=14).to_dict(),
        qformer_config=transformers.Blip2QFormerConfig(
            hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
            encoder_hidden_size=1408, cross_attention_frequency=2).to_dict(),
        text_config=transformers.OPTConfig(vocab_size=50272, max_position_embeddings=2048, bos_token_id=2,
                                           eos_token_id=2, pad_token_id=1, **text).to_dict(),
        num_query_tokens=32,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(0)
    model = transformers.Blip2ForConditionalGeneration(config).eval()
    return model, processor, Blip2LocalVQA


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=10)
    parser.add_argument("--full", action="store_true", help="real OPT-2.7B language model (GPU)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=1, help="timed passes per row (interleaved); best shown")
    args = parser.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    started = time.perf_counter()
    model, processor, Blip2LocalVQA = build(args.full, args.device)
    vqa = Blip2LocalVQA(model_obj=model, processor_obj=processor, device=args.device,
                        dtype=torch.float16 if args.full and args.device != "cpu" else None,
                        max_new_tokens=args.new_tokens, images_per_batch=max(1, args.images),
                        generate_kwargs={"min_new_tokens": args.new_tokens})
    vqa.load()
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)) for _ in range(args.images)]
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"model: random {'blip2-opt-2.7b' if args.full else 'ViT-g + Q-Former + opt-125m-sized LM'} "
          f"({params:.0f}M parameters) on {vqa.device} {vqa.dtype}, built in {time.perf_counter() - started:.0f} s;"
          f" {torch.get_num_threads()} threads; {args.images} images x (8 questions + caption), "
          f"{args.new_tokens} new tokens each")

    vqa.answer(images[:1], QUESTIONS[:1])  # warm-up
    vqa.answer_one_by_one(images[:1], QUESTIONS[:1])

    paths = (("one call per question", vqa.answer_one_by_one), ("batched (modchain)", vqa.answer))
    times: dict[str, list[float]] = {name: [] for name, _ in paths}
    counts: dict[str, tuple[int, int, int]] = {}
    outputs = {}
    for _ in range(max(1, args.repeats)):  # interleaved, so machine noise hits both rows alike
        for name, fn in paths:
            calls, encoded = vqa.vision_calls, vqa.images_encoded
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            outputs[name] = fn(images, QUESTIONS, caption=True)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
            counts[name] = (vqa.vision_calls - calls, vqa.images_encoded - encoded,
                            max(r.vision_passes for r in outputs[name]))
    rows = [(name, min(times[name]), *counts[name]) for name, _ in paths]

    base = rows[0][1]
    print()
    print(f"| {'path':<22} | {'seconds':>8} | {'images/s':>9} | {'vision calls':>12} | {'images encoded':>14} |"
          f" {'max encodings/image':>19} | {'speedup':>7} |")
    print(f"|{'-' * 24}|{'-' * 10}|{'-' * 11}|{'-' * 14}|{'-' * 16}|{'-' * 21}|{'-' * 9}|")
    for name, seconds, calls, encoded, per_image in rows:
        print(f"| {name:<22} | {seconds:>8.2f} | {args.images / seconds:>9.3f} | {calls:>12} | {encoded:>14} |"
              f" {per_image:>19} | {base / seconds:>6.2f}x |")
    slow, fast = outputs["one call per question"], outputs["batched (modchain)"]
    same = all(f.answers == s.answers and f.caption == s.caption for f, s in zip(fast, slow))
    speedup = base / rows[1][1]
    print()
    print(f"answers identical to the per-question path: {same}")
    print(f"bar (>= 4x and <= 1 encoding per image): {'PASS' if speedup >= 4 and rows[1][4] <= 1 else 'FAIL'}")


if __name__ == "__main__":
    main()
