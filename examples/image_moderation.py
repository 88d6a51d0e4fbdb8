"""Moderate images end to end, offline: NudeNet labels, a BLIP-2 checklist, an LLM verdict.

    python examples/image_moderation.py

Runs with no GPU and no downloads: NudeNet's model ships in its wheel; BLIP-2 is a tiny random model built
here (so its answers are gibberish, but every step is the real code path); the judge is a scripted chat
model. The real configuration, for a GPU or endpoints, is in the comments at the bottom.
"""

import tempfile
from pathlib import Path

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from modchain.backends.hf.blip2 import Blip2LocalVQA
from modchain.backends.local.nudenet import NudeNetLabeler
from modchain.image_moderation import ImageModerationChain, LlmVerdict
from modchain.testing.tiny_models import save_tiny_blip2

IMAGES = sorted((Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "images").glob("skimage_*"))

# 1. Fast offline labels only (NudeNet): what most uploads need.
labels_only = ImageModerationChain(labeler=NudeNetLabeler())
for path in IMAGES:
    result = labels_only.moderate(str(path))  # the full result; invoke() pipes the image on
    print(f"{path.name:<24} nudenet: {'FLAGGED ' + str(result.category) if result.flagged else 'clear'}")

# 2. The full pipeline: checklist + caption from BLIP-2, then a policy verdict from an LLM.
vqa = Blip2LocalVQA(save_tiny_blip2(tempfile.mkdtemp()), max_new_tokens=6)
judge = LlmVerdict(FakeListChatModel(responses=[
    '{"flag": false, "category": null, "reason": "an everyday scene"}',
]))
chain = ImageModerationChain(labeler=NudeNetLabeler(), vqa=vqa, judge=judge)
result = chain.moderate(str(IMAGES[0]))
print(f"\n{IMAGES[0].name}: flagged={result.flagged} decided_by={result.decided_by} reason={result.reason!r}")
print(f"checklist answered with {vqa.images_encoded} image encoding(s) for {len(chain.checklist)} questions + caption")
print("timings (ms):", {k: round(v, 1) for k, v in result.timings_ms.items()})

# Real models (a GPU, or endpoints):
#   vqa = Blip2LocalVQA("Salesforce/blip2-opt-2.7b")                       # fp16 on CUDA
#   judge = LlmVerdict(TransformersChatModel("meta-llama/Meta-Llama-3-8B-Instruct"))
#   judge = LlmVerdict(SageMakerChatModel("my-llama3-endpoint", format="llama3"))   # JumpStart endpoint
#   labeler = RekognitionModerationLabeler(region_name="us-east-1")
#   chain = ImageModerationChain(labeler=labeler, vqa=vqa, judge=judge, cascade={"flag_at": 0.8, "clear_below": 0.2},
#                                mode="block")
