"""Guard an image generator end to end, offline: prompt checks, negative prompts, output moderation,
retry with a new seed, blur.

    python examples/safe_generation.py

The "generator" is a function that draws shapes with Pillow, except that prompts asking for an astronaut
get a public-domain portrait photo (a fixture) on even seeds. Output moderation is NudeNet's real bundled
model with a DEMO policy that treats detected faces as unsafe, so the portrait exercises the unsafe path
without shipping explicit images. The SageMaker / diffusers configuration is at the bottom.
"""

import tempfile
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

from modchain.backends.local.nudenet import NUDENET_CATEGORIES, NudeNetLabeler
from modchain.generation import PromptGuard, PromptRejectedViolation, SafeImageGenerator

PORTRAIT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "images" / "skimage_astronaut.png"


def painter(prompt: str, negative_prompt: str, seed: int) -> Image.Image:
    """A stand-in generator: (prompt, negative_prompt, seed) -> image, like any real one."""
    if "astronaut" in prompt and seed % 2 == 0:
        return Image.open(PORTRAIT)
    image = Image.new("RGB", (256, 256), "white")
    draw = ImageDraw.Draw(image)
    code = zlib.crc32(f"{prompt}|{seed}".encode())
    for i in range(6):
        x, y = (code >> (i * 4)) % 200, (code >> (i * 3)) % 200
        color = ((code >> i) % 256, (code >> (i + 8)) % 256, (code >> (i + 16)) % 256)
        draw.ellipse((x, y, x + 50, y + 50), fill=color)
    return image


# Demo policy: NudeNet's face detections count as unsafe ("Visually Disturbing" here only for the demo).
categories = dict(NUDENET_CATEGORIES)
categories["FACE_FEMALE"] = categories["FACE_MALE"] = ("Visually Disturbing", "Face (demo policy)")
moderation = NudeNetLabeler(categories=categories)

safe = SafeImageGenerator(painter, moderation, config={"seed": 0, "max_retries": 2,
                                                       "blur": {"region": "boxes", "method": "pixelate"}})

# 1. A safe prompt: generated and checked once.
result = safe.invoke("colorful balloons over a field")
print(f"safe prompt     -> {result.status}, seeds {result.seeds}, generation {result.generation_ms:.0f} ms, "
      f"moderation {result.moderation_ms:.0f} ms (the first call loads the models)")

# 2. A rejected prompt: the denylist sees through the spelling; the generator never runs.
try:
    safe.invoke("a n.u.d.3 figure on a beach")
except PromptRejectedViolation as rejected:
    print(f"rejected prompt -> {rejected}")

# 3. A warned prompt: with action=warn the toxic wording is reported, not refused.
warned = SafeImageGenerator(painter, moderation, prompt_guard=PromptGuard({"action": "warn"}), config={"seed": 1})
result = warned.invoke("balloons for those stupid morons, you idiot")
print(f"warned prompt   -> {result.status}, warnings: {list(result.warnings)}")

# 4. An unsafe output from a safe prompt: retried with a new seed, the second image passes.
result = safe.invoke("an astronaut, studio photo")
print(f"unsafe output   -> {result.status} after seeds {result.seeds}: {result.warnings[0]}")

# 5. Unsafe on every attempt (no retries left): the flagged region is pixelated and a warning says so.
strict = SafeImageGenerator(painter, moderation, config={"seed": 0, "max_retries": 0,
                                                         "blur": {"region": "boxes", "method": "pixelate"}})
result = strict.invoke("an astronaut, studio photo")
out = Path(tempfile.mkdtemp()) / "blurred.png"
result.image.save(out)
print(f"no retries left -> {result.status}, flagged {result.attempts[0].categories}, saved {out}")
print("timings (ms):", {k: round(v, 1) for k, v in result.timings_ms.items()})

# Real generators (same SafeImageGenerator, one argument changes):
#   from modchain.backends.hf.diffusers_generator import DiffusersGenerator
#   generator = DiffusersGenerator.from_pretrained("stabilityai/stable-diffusion-2-1-base", device="cuda",
#                                                  num_inference_steps=30, width=512, height=512)
#   from modchain.backends.aws.sagemaker_stable_diffusion import SageMakerStableDiffusion
#   generator = SageMakerStableDiffusion("my-jumpstart-sd-endpoint", region_name="us-east-1")
#   from modchain.backends.aws.rekognition_moderation import RekognitionModerationLabeler
#   safe = SafeImageGenerator(generator, RekognitionModerationLabeler(region_name="us-east-1"))
