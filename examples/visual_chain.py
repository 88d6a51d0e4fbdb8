"""The visual chain offline: "All silver cars" -> boxes (Grounding DINO) -> masks (SAM), redaction, an overlay.

Runs on CPU in seconds with tiny random-weight models of the real architectures (written to a temp folder
and loaded through ``from_pretrained``, as real checkpoints are): the boxes and masks are meaningless, every
code path is the real one. On a GPU, with the real checkpoints (downloaded once from the Hugging Face Hub)::

    from modchain.backends.hf.grounding_dino import GroundingDino
    from modchain.backends.hf.sam import Sam

    detector = GroundingDino.local("IDEA-Research/grounding-dino-tiny", device="cuda",
                                   box_threshold=0.35, text_threshold=0.25)
    segmenter = Sam.local("vit_h", device="cuda", dtype="float16")        # or "vit_b" / "vit_l"
    chain = ImageChain.from_visual_pipeline([detector, segmenter], ImageStore.from_folder("frames/"),
                                            verbose=True)

Or on a SageMaker endpoint serving ``modchain.serving.visual_handler`` (one request per image)::

    from modchain.visual_chain.sagemaker_chain import SageMakerVisualChain
    SageMakerVisualChain("my-visual-endpoint").run("face. license plate.", image="frame.jpg")
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from modchain.backends.hf.grounding_dino import GroundingDino
from modchain.backends.hf.sam import Sam
from modchain.testing.tiny_visual_models import save_tiny_grounding_dino, save_tiny_sam
from modchain.visual_chain.chain import ImageChain
from modchain.visual_chain.image_store import ImageStore
from modchain.visual_chain.redaction import Redactor
from modchain.visual_chain.visualize import save_overlay

FRAME = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "images" / "skimage_rocket.jpg"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="modchain-visual-"))
    detector = GroundingDino(save_tiny_grounding_dino(work / "grounding-dino"), box_threshold=0.0,
                             text_threshold=0.0, max_detections=5)  # random weights: keep a few boxes
    segmenter = Sam(save_tiny_sam(work / "sam"))

    # Images by id; ImageStore.from_folder("frames/") or .from_s3("s3://bucket/frames/") in real use.
    store = ImageStore({"5X3349": FRAME})
    chain = ImageChain.from_visual_pipeline([detector, segmenter], store, verbose=True)

    result = chain.run("All silver cars", image_id="5X3349")
    print(f"{len(result.detections)} box(es), {len(result.segments)} mask(s) for {result.query!r} "
          f"in a {result.image_size[0]}x{result.image_size[1]} image")
    for segment in result.segments[:3]:
        print(f"  {segment.label}: {segment.area} px, box {tuple(round(v) for v in segment.box or ())}, "
              f"SAM IoU score {segment.score:.2f}")
    again = chain.run("All silver cars. a person", image_id="5X3349")
    print(f"second query: embedding cache hit = {again.embedding_cache_hit}, "
          f"timings (ms) = { {k: round(v, 1) for k, v in again.timings_ms.items()} }")

    # PII redaction for camera feeds: faces and plates blurred through their masks.
    redactor = Redactor(chain, labels=["face", "license plate"], method="blur", dilate=4)
    redacted = redactor.invoke({"image_id": "5X3349"})
    redacted.image.save(work / "redacted.png")
    print(f"redacted {redacted.redacted} region(s), {redacted.redacted_pixels} px -> {work / 'redacted.png'}")

    overlay_path = save_overlay(store.get("5X3349"), result, work / "overlay.png")
    print(f"overlay -> {overlay_path}")
    print(f"result as JSON: {len(json.dumps(result.to_dict()))} bytes (masks as compressed COCO RLE)")


if __name__ == "__main__":
    main()
