"""SAM: embed each image once and decode every prompt from it, vs re-encoding the image for each prompt.

One fixture photo, 1, 8 and 32 box prompts (the detector -> SAM hand-off, one mask each). Rows per prompt
count, side by side, every path through :class:`modchain.backends.hf.sam.Sam`:

  recomputed per prompt     ``sam.segment(image, [prompt])`` per prompt: the image encoder runs every time
                            (what a pipeline that calls SAM once per box does)
  reused, one call/prompt   ``sam.embed(image)`` once, then ``segment(image, [prompt], embedding=...)`` per
                            prompt: the embedding reuse alone
  reused + batched          ``sam.embed(image)`` once, one ``segment(image, prompts, embedding=...)``: all
                            prompts in one decoder call (modchain's path)

Times are per image (embedding included), the median of ``--runs`` runs after one warm-up pass; "speedup" is
recomputed / reused + batched. Bar: >= 5x with 8 prompts at SAM ViT-B size.

Compute does not depend on the weights, so by default the model is SAM at the real ``--variant`` size
(ViT-B: hidden 768, 12 layers, 1024x1024 input; ViT-L; ViT-H) with random weights, built here: nothing is
downloaded. ``--model PATH`` (or an id in a local cache) loads real weights instead.

    python benchmarks/visual_chain.py [--variant vit_b|vit_l|vit_h] [--device cpu|cuda] [--dtype float16]
                                      [--prompts 1,8,32] [--runs 3] [--model PATH]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

IMAGE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "images" / "skimage_coffee.png"

# SAM's three image encoders (segment-anything's build_sam_vit_*).
VARIANTS = {
    "vit_b": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, global_attn_indexes=[2, 5, 8, 11]),
    "vit_l": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                  global_attn_indexes=[5, 11, 17, 23]),
    "vit_h": dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16,
                  global_attn_indexes=[7, 15, 23, 31]),
}


def build_random_sam(variant: str, directory: str) -> str:
    """A SamModel of the real ``variant`` size with random weights and SAM's real processor settings."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.SamConfig(vision_config=transformers.SamVisionConfig(**VARIANTS[variant]).to_dict())
    transformers.SamModel(config).eval().save_pretrained(directory)
    transformers.SamImageProcessorPil().save_pretrained(directory)  # 1024 longest side, 1024x1024 padding
    return directory


def box_prompts(count: int, width: int, height: int) -> list:
    """``count`` boxes on a grid over the image, as detector boxes would arrive."""
    from modchain.visual_chain.types import VisualPrompt

    side = max(1, int(count ** 0.5 + 0.999))
    cell_w, cell_h = width / side, height / side
    prompts = []
    for i in range(count):
        row, col = divmod(i, side)
        x0, y0 = col * cell_w, row * cell_h
        prompts.append(VisualPrompt(box=(x0 + 2, y0 + 2, x0 + cell_w - 2, y0 + cell_h - 2), label="object"))
    return prompts


def agree(a: list, b: list) -> bool:
    """Same masks, up to a few boundary pixels (a batched decoder call rounds a little differently)."""
    import numpy as np

    from modchain.visual_chain.masks import decode_mask

    for one, other in zip(a, b, strict=True):
        for x, y in zip(one, other, strict=True):
            mx, my = decode_mask(x.mask), decode_mask(y.mask)
            if np.logical_xor(mx, my).sum() > 0.01 * max(1, mx.sum(), my.sum()):
                return False
    return True


def timed(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="vit_b")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--dtype", default=None, help="float16 on CUDA (default float32)")
    parser.add_argument("--prompts", default="1,8,32")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default=None, help="a SAM checkpoint (real weights) instead of random ones")
    args = parser.parse_args()

    import torch
    from PIL import Image

    from modchain.backends.hf.sam import Sam

    image = Image.open(IMAGE).convert("RGB")
    counts = [int(c) for c in args.prompts.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_random_sam(args.variant, tmp)
        sam = Sam.local(model, device=args.device, dtype=args.dtype).load()
        what = args.model or f"SAM {args.variant} (random weights, real size)"
        sam.segment(image, box_prompts(1, *image.size))  # warm-up: allocator, kernels, lazy inits
        threads = torch.get_num_threads()
        print(f"model: {what}; device: {sam.device} ({threads} CPU threads); dtype: {sam.model.dtype}; "
              f"image: {IMAGE.name} {image.size[0]}x{image.size[1]}; median of {args.runs} runs after a warm-up")
        print()
        print(f"{'prompts':>7} | {'recomputed per prompt':>22} | {'reused, 1 call/prompt':>22} | "
              f"{'reused + batched':>17} | {'speedup':>7} | {'encoder passes (recomp/reused)':>30}")
        print("-" * 124)
        for count in counts:
            prompts = box_prompts(count, *image.size)

            def recomputed(prompts=prompts):
                return [sam.segment(image, [p])[0] for p in prompts]

            def reused_single(prompts=prompts):
                embedding = sam.embed(image)
                return [sam.segment(image, [p], embedding=embedding)[0] for p in prompts]

            def reused_batched(prompts=prompts):
                return sam.segment(image, prompts, embedding=sam.embed(image))

            before = sam.encoder_calls
            t_recomputed, masks_recomputed = timed(recomputed, args.runs)
            passes_recomputed = (sam.encoder_calls - before) // args.runs
            t_single, _ = timed(reused_single, args.runs)
            before = sam.encoder_calls
            t_batched, masks_batched = timed(reused_batched, args.runs)
            passes_batched = (sam.encoder_calls - before) // args.runs
            assert agree(masks_recomputed, masks_batched), "reused embeddings must give the same masks"
            print(f"{count:>7} | {t_recomputed * 1000:>19.0f} ms | {t_single * 1000:>19.0f} ms | "
                  f"{t_batched * 1000:>14.0f} ms | {t_recomputed / t_batched:>6.1f}x | "
                  f"{passes_recomputed:>14} / {passes_batched:<14}", flush=True)


if __name__ == "__main__":
    main()
