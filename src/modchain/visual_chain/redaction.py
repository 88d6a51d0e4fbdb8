"""Redact what a visual chain found: blur, pixelate or fill the masks (or boxes) of chosen labels.

    result = chain.run("face. license plate.", image_id="cam1-0815")
    safe = redact(store.get("cam1-0815"), result, labels=["face", "license plate"], method="blur", dilate=4)

    redactor = Redactor(chain, labels=["face", "license plate"])      # a Runnable: image in, redacted out
    redactor.invoke("frame.jpg").image

Pixels outside the (dilated) region are never changed: the redacted image is the original composited
with a blurred / pixelated / filled copy through the region mask. ``fill`` is the only method that leaves
nothing of the original in the region; strong blur and pixelation are what camera-feed anonymization
usually ships, and ``dilate`` grows the region so a mask that hugs a face also covers its edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ConfigDict, Field, model_validator

from modchain.core.errors import ConfigurationError, InputError
from modchain.core.image_findings import ImageFinding
from modchain.core.results import Outcome
from modchain.visual_chain.masks import decode_mask
from modchain.visual_chain.results import ImageChainResult
from modchain.visual_chain.types import PixelBox

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image as PILImage

Method = Literal["blur", "pixelate", "fill"]
Use = Literal["masks", "boxes"]


def redaction_mask(result: ImageChainResult, *, labels: Sequence[str] | str | None = None, use: Use = "masks",
                   dilate: int = 0) -> np.ndarray:
    """The boolean ``(height, width)`` region to redact: the union of the chosen labels' masks or boxes."""
    import numpy as np

    if use not in ("masks", "boxes"):
        raise ConfigurationError('use must be "masks" or "boxes"')
    if dilate < 0:
        raise ConfigurationError("dilate must be >= 0 pixels")
    width, height = result.image_size
    region = np.zeros((height, width), dtype=bool)
    if use == "boxes":
        boxes = redaction_boxes(result, labels)
    else:
        for segment in result.segments_for(labels):
            if tuple(segment.mask.size) != (height, width):
                raise InputError(f"a mask of size {segment.mask.size} does not fit a {width}x{height} image")
            region |= decode_mask(segment.mask)
        # a detection with no mask (past max_detections, an empty mask, or its segmentation failed open) is
        # covered by its box
        boxes = [d.box for d in result.unmasked_detections(labels)]
    for x0, y0, x1, y1 in boxes:
        # Cover every pixel the box touches: floor the start, ceil the end.
        c0, r0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
        c1, r1 = min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1)))
        region[r0:r1, c0:c1] = True
    return _dilate(region, dilate) if dilate and region.any() else region


def redaction_boxes(result: ImageChainResult, labels: Sequence[str] | str | None = None) -> list[PixelBox]:
    """The boxes ``use="boxes"`` covers: the chosen labels' detection boxes and the tight boxes of their masks.

    Both, because either may hold a region the other lacks: masks from explicit prompts have no detection,
    and SAM may spill a mask past its prompt box. Redaction errs toward covering more."""
    boxes = [d.box for d in result.detections_for(labels)]
    for segment in result.segments_for(labels):
        if segment.box is not None and segment.box not in boxes:
            boxes.append(segment.box)
    return boxes


def redact(image: Any, result: ImageChainResult, *, labels: Sequence[str] | str | None = None,
           method: Method = "blur", use: Use = "masks", dilate: int = 0, blur_radius: float | None = None,
           pixel_size: int | None = None, fill: tuple[int, int, int] = (0, 0, 0)) -> PILImage.Image:
    """A redacted copy of ``image`` (any ``load_image`` source): ``labels`` (None: every label) blurred,
    pixelated or filled, through their masks or boxes grown by ``dilate`` pixels."""
    from modchain.image_moderation.image_input import load_image

    picture = load_image(image)
    if picture.size != tuple(result.image_size):
        raise InputError(f"the image is {picture.width}x{picture.height} but the result is for "
                         f"{result.image_size[0]}x{result.image_size[1]}")
    region = redaction_mask(result, labels=labels, use=use, dilate=dilate)
    return apply_redaction(picture, region, method=method, blur_radius=blur_radius, pixel_size=pixel_size, fill=fill)


def apply_redaction(image: PILImage.Image, region: np.ndarray, *, method: Method = "blur",
                    blur_radius: float | None = None, pixel_size: int | None = None,
                    fill: tuple[int, int, int] = (0, 0, 0)) -> PILImage.Image:
    """Composite a blurred / pixelated / filled copy of the RGB ``image`` through the boolean ``region``."""
    from PIL import Image, ImageFilter

    if method not in ("blur", "pixelate", "fill"):
        raise ConfigurationError('method must be "blur", "pixelate" or "fill"')
    image = image.convert("RGB")
    if region.shape != (image.height, image.width):
        raise InputError(f"a region of shape {region.shape} does not fit a {image.width}x{image.height} image")
    if not region.any():
        return image.copy()
    shortest = min(image.size)
    if method == "fill":
        covered = Image.new("RGB", image.size, tuple(int(c) for c in fill))
    elif method == "blur":
        # Strong enough that a face at the image's scale is unrecognizable: ~5% of the short side.
        radius = blur_radius if blur_radius is not None else max(4.0, shortest / 20)
        covered = image.filter(ImageFilter.GaussianBlur(radius))
    else:
        size = pixel_size if pixel_size is not None else max(4, shortest // 24)
        if size < 1:
            raise ConfigurationError("pixel_size must be >= 1")
        small = image.resize((max(1, image.width // size), max(1, image.height // size)), Image.Resampling.BOX)
        covered = small.resize(image.size, Image.Resampling.NEAREST)
    mask = Image.fromarray(region.astype("uint8") * 255)
    return Image.composite(covered, image, mask)


def _dilate(region: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the region by ``pixels`` in every direction (a square structuring element)."""
    import numpy as np
    from PIL import Image, ImageFilter

    grown = Image.fromarray(region.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(2 * pixels + 1))
    return np.asarray(grown) > 0


class RedactionResult(Outcome):
    """The redacted image, what was found, and how many masks or boxes were covered.

    The :class:`~modchain.core.results.Outcome` fields are the visual chain result's (derived, left out of
    ``model_dump``): the redacted image always goes on, so ``allowed`` is True.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    image: Any
    result: ImageChainResult
    redacted: int
    redacted_pixels: int
    allowed: bool = Field(True, exclude=True)
    findings: tuple[ImageFinding, ...] = Field((), exclude=True)
    errors: tuple[str, ...] = Field((), exclude=True)
    timings_ms: dict[str, float] = Field(default_factory=dict, exclude=True)
    unique_id: str | None = Field(None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _derive_outcome(cls, data: Any) -> Any:
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, ImageChainResult):
            return data
        return {"findings": result.findings, "errors": result.errors, "timings_ms": result.timings_ms,
                "unique_id": result.unique_id, **data, "allowed": True}


class Redactor(Runnable[Any, RedactionResult]):
    """Find ``labels`` with an :class:`~modchain.visual_chain.chain.ImageChain` and redact them.

    Input: an image source, ``{"image": ...}`` / ``{"image_id": ...}`` (optionally with ``"query"``; default
    the labels joined as ``"face. license plate."``), or ``{"image": ..., "result": ImageChainResult}`` to
    redact a result already computed (no chain needed).
    """

    def __init__(self, chain: Any = None, *, labels: Sequence[str], method: Method = "blur", use: Use = "masks",
                 dilate: int = 2, blur_radius: float | None = None, pixel_size: int | None = None,
                 fill: tuple[int, int, int] = (0, 0, 0)) -> None:
        labels = [labels] if isinstance(labels, str) else list(labels)
        if not labels or not all(isinstance(label, str) and label.strip() for label in labels):
            raise ConfigurationError("labels: one or more non-empty label names (the query phrases)")
        if method not in ("blur", "pixelate", "fill") or use not in ("masks", "boxes") or dilate < 0:
            raise ConfigurationError('method is blur|pixelate|fill, use is masks|boxes, dilate >= 0')
        self.chain, self.labels = chain, labels
        self.options = {"method": method, "use": use, "dilate": dilate, "blur_radius": blur_radius,
                        "pixel_size": pixel_size, "fill": fill}

    @property
    def query(self) -> str:
        return ". ".join(self.labels) + "."

    def redact(self, value: Any, config: RunnableConfig | None = None) -> RedactionResult:
        request = value if isinstance(value, dict) else {"image": value}
        result = request.get("result")
        if result is None:
            if self.chain is None:
                raise ConfigurationError("a Redactor without a chain needs {'image', 'result'} input")
            query = request.get("query") or self.query
            chain_input = {k: request[k] for k in ("image", "image_id", "prompts") if request.get(k) is not None}
            result = self.chain.invoke({"query": query, **chain_input}, config)
        store = getattr(self.chain, "image_store", None)
        if request.get("image") is not None:
            # The chain's store loads it as the chain did (its S3 access and load options), so the two agree.
            image = request["image"]
            if store is not None:
                picture = store.load(image)
            else:
                from modchain.image_moderation.image_input import load_image

                picture = load_image(image)
        elif store is not None and request.get("image_id") is not None:
            picture = store.get(request["image_id"])
        else:
            raise InputError("give 'image' (or 'image_id' with a chain's image store)")
        o = self.options
        region = redaction_mask(result, labels=self.labels, use=o["use"], dilate=o["dilate"])
        redacted = apply_redaction(picture, region, method=o["method"], blur_radius=o["blur_radius"],
                                   pixel_size=o["pixel_size"], fill=o["fill"])
        count = len(result.segments_for(self.labels) if o["use"] == "masks" else
                    redaction_boxes(result, self.labels))
        return RedactionResult(image=redacted, result=result, redacted=count, redacted_pixels=int(region.sum()))

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> RedactionResult:
        return self._call_with_config(lambda value: self.redact(value, config), input, config, run_type="chain")
