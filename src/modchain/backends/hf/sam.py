"""Segment Anything (SAM, SAM-HQ, SAM 2) through transformers: embed an image once, decode every prompt from it.

SAM's cost is almost all in its ViT image encoder (ViT-B/L/H at 1024x1024); the prompt encoder and mask
decoder are tiny. :meth:`Sam.embed` runs the encoder once (``get_image_embeddings``) and returns a
:class:`SamEmbedding`; :meth:`Sam.segment` decodes any number of prompts against it, prompts of the same
shape batched into one decoder call. Every prompt form of the SAM paper works: a point, points (positive
and negative), a box, a box plus points, a mask (any size, resized to SAM's low-res mask input) and mixes;
``multimask`` returns three candidates with predicted IoU scores. :meth:`Sam.generate_masks` segments the
whole image from a grid of point prompts, filtered by predicted IoU and stability, deduplicated by mask IoU.

Masks are post-processed exactly as transformers' ``post_process_masks`` does (upscale to the padded input,
crop the padding, resize to the original image) and returned run-length encoded. torch and transformers
are imported on first use only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modchain.backends.detection import as_rgb
from modchain.backends.hf.common import LazyModel, require_hf, resolve_device
from modchain.backends.hf.sam_decoding import Sam2Preprocessor, SamDecoder
from modchain.backends.hf.vision_common import (
    has_torchvision,
    load_checked_model,
    load_image_processor,
    resolve_dtype,
    to_device,
)
from modchain.core.errors import BackendError, ConfigurationError, InputError
from modchain.core.regions import Segment, VisualPrompt

BACKEND = "sam"
DEFAULT_MODEL = "facebook/sam-vit-base"
#: Model ids of the three SAM sizes (ViT-H is the most accurate, ViT-B the fastest).
SAM_MODELS = {"vit_b": "facebook/sam-vit-base", "vit_l": "facebook/sam-vit-large", "vit_h": "facebook/sam-vit-huge"}
_MODEL_CLASSES = {"sam": "SamModel", "sam_hq": "SamHQModel", "sam2": "Sam2Model"}
_KINDS = {"SamModel": "sam", "SamHQModel": "sam_hq", "Sam2Model": "sam2"}


@dataclass(frozen=True)
class SamEmbedding:
    """One image's SAM embedding: the encoder output plus what decoding needs to map masks back.

    ``segmenter`` is the :attr:`Sam.name` that computed it; a different model's embedding is refused.
    """

    segmenter: str
    image_size: tuple[int, int]             # (height, width) of the original image
    input_size: tuple[int, int]             # (height, width) after resizing the longest side to the input size
    image_embeddings: Any                   # torch tensor (1, C, e, e)
    intermediate_embeddings: tuple[Any, ...] = ()  # SAM-HQ's early ViT features; SAM 2's fine FPN levels

    @property
    def nbytes(self) -> int:
        tensors = (self.image_embeddings, *self.intermediate_embeddings)
        return sum(int(t.numel() * t.element_size()) for t in tensors)

    def to(self, device: Any) -> SamEmbedding:
        """A copy on ``device`` (e.g. ``"cpu"`` for a cache that must not hold GPU memory)."""
        return SamEmbedding(self.segmenter, self.image_size, self.input_size, self.image_embeddings.to(device),
                            tuple(t.to(device) for t in self.intermediate_embeddings))


class Sam:
    """SAM / SAM-HQ / SAM 2 segmenter (the visual chain's :class:`~modchain.visual_chain.types.Segmenter`).

    ``model`` is a model id or a local directory holding a ``SamModel``, ``SamHQModel`` or ``Sam2Model``
    checkpoint and its image processor settings; the architecture is read from its config (SAM 2 here is the
    single-image model: no video memory). ``device`` defaults to CUDA when available;
    ``dtype="float16"`` halves memory and time on CUDA. ``mask_threshold`` binarizes mask logits;
    ``prompt_batch_size`` bounds how many prompts one decoder call takes.
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, device: Any = None, dtype: Any = None,
                 mask_threshold: float = 0.0, prompt_batch_size: int = 64, revision: str | None = None,
                 model_obj: Any = None, image_processor_obj: Any = None) -> None:
        if (model_obj is None) != (image_processor_obj is None):
            raise ConfigurationError("pass image_processor_obj together with model_obj (or neither)")
        if prompt_batch_size < 1:
            raise ConfigurationError("prompt_batch_size must be at least 1")
        self.model_name = str(model)
        self.revision = revision
        self.mask_threshold = float(mask_threshold)
        self.prompt_batch_size = int(prompt_batch_size)
        self._device_arg = device
        self._dtype_arg = dtype
        self._given = (model_obj, image_processor_obj)
        self._lazy = LazyModel(self._load)
        #: Image encoder passes so far (each is the expensive part; reuse embeddings to keep it low).
        self.encoder_calls = 0

    @classmethod
    def local(cls, model_id: str = DEFAULT_MODEL, device: Any = None, **kwargs: Any) -> Sam:
        """A local transformers SAM; ``model_id`` may be an id, ``"vit_b"``/``"vit_l"``/``"vit_h"`` or a path."""
        return cls(SAM_MODELS.get(model_id, model_id), device=device, **kwargs)

    @property
    def name(self) -> str:
        """Model and the settings that change its embedding: the key of cached embeddings."""
        dtype = "float32" if self._dtype_arg is None else str(self._dtype_arg).replace("torch.", "")
        revision = f"@{self.revision}" if self.revision else ""
        given = self._given[0]
        instance = "" if given is None else f"#{type(given).__name__}-{id(given):x}"  # a passed-in model object
        return f"{BACKEND}:{self.model_name}{revision}{instance}:{dtype}"

    # ----------------------------------------------------------------------------------------- loading

    def load(self) -> Sam:
        """Load the model now (it is otherwise loaded on first use). Raises ConfigurationError."""
        self._lazy.get()
        return self

    @property
    def model(self) -> Any:
        return self._lazy.get()[0]

    @property
    def device(self) -> Any:
        return self._lazy.get()[2]

    @property
    def decoder_calls(self) -> int:
        """Mask decoder calls so far (prompts of one shape share a call)."""
        return self._lazy.get()[3].calls if self._lazy.loaded else 0

    def _load(self) -> tuple[Any, Any, Any, SamDecoder]:
        torch, transformers = require_hf()
        device = resolve_device(self._device_arg)
        dtype = resolve_dtype(torch, self._dtype_arg, device)
        model_obj, image_processor = self._given
        if model_obj is None:
            model_obj = load_checked_model(transformers, self.model_name, _MODEL_CLASSES, revision=self.revision,
                                           dtype=dtype, what="SAM, SAM-HQ or SAM 2")
            try:
                if type(model_obj).__name__ == "Sam2Model" and not has_torchvision():
                    image_processor = Sam2Preprocessor.from_pretrained(transformers, self.model_name,
                                                                       revision=self.revision)
                else:
                    image_processor = load_image_processor(transformers, self.model_name, "SamImageProcessorPil",
                                                           revision=self.revision)
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"cannot load the image processor of {self.model_name!r}: {exc}") from exc
        kind = _KINDS.get(type(model_obj).__name__)
        if kind is None:
            raise ConfigurationError(f"model_obj must be a SamModel, SamHQModel or Sam2Model, not {type(model_obj).__name__}")
        model_obj = to_device(model_obj, device, dtype, self._device_arg)
        return model_obj, image_processor, device, SamDecoder(model_obj, kind=kind, dtype=dtype,
                                                              mask_threshold=self.mask_threshold)

    # ------------------------------------------------------------------------------------------ the API

    def embed(self, image: Any) -> SamEmbedding:
        """Run the image encoder once; pass the result to :meth:`segment` / :meth:`generate_masks`."""
        torch, _ = require_hf()
        rgb = as_rgb(image, BACKEND)
        model, image_processor, device, decoder = self._lazy.get()
        inputs = image_processor(images=rgb, return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(device=device, dtype=decoder.dtype)
        try:
            with torch.inference_mode():
                output = model.get_image_embeddings(pixel_values)
        except Exception as exc:  # noqa: BLE001 - out of memory, device or shape errors
            raise BackendError(f"{BACKEND}: image encoder failed: {type(exc).__name__}", backend=BACKEND) from exc
        self.encoder_calls += 1
        if decoder.kind == "sam_hq":
            embeddings, intermediate = output
            intermediate = tuple(intermediate)
        elif decoder.kind == "sam2":  # FPN levels, finest first; the decoder's main input is the coarsest
            *intermediate, embeddings = output
            intermediate = tuple(intermediate)
        else:
            embeddings, intermediate = output, ()
        height, width = (int(v) for v in inputs["original_sizes"][0])
        if "reshaped_input_sizes" in inputs:
            input_h, input_w = (int(v) for v in inputs["reshaped_input_sizes"][0])
        else:  # SAM 2 resizes to the square input without keeping the aspect ratio
            input_h = input_w = decoder.input_size
        return SamEmbedding(self.name, (height, width), (input_h, input_w), embeddings, intermediate)

    def segment(self, image: Any, prompts: Sequence[VisualPrompt], *,
                embedding: SamEmbedding | None = None) -> list[list[Segment]]:
        """One list of masks per prompt (three with ``multimask``, else one), in prompt order."""
        rgb = as_rgb(image, BACKEND)
        prompts = list(prompts)
        if not all(isinstance(p, VisualPrompt) for p in prompts):
            raise InputError(f"{BACKEND}: prompts must be VisualPrompt objects")
        if not prompts:
            return []
        embedding = self._checked(rgb, embedding)
        return self._lazy.get()[3].segment(prompts, embedding, self.prompt_batch_size)

    def generate_masks(self, image: Any, *, points_per_side: int = 16, points_per_batch: int = 64,
                       pred_iou_thresh: float = 0.88, stability_score_thresh: float = 0.95,
                       stability_score_offset: float = 1.0, mask_iou_thresh: float = 0.7, min_area: int = 0,
                       embedding: SamEmbedding | None = None) -> list[Segment]:
        """Automatic masks for the whole image from a ``points_per_side``² grid of single-point prompts.

        Each point yields SAM's three candidates; kept are those with predicted IoU >= ``pred_iou_thresh``,
        stability >= ``stability_score_thresh`` (IoU of the mask thresholded at +/- ``stability_score_offset``
        logits, computed on the low-resolution logits) and at least ``min_area`` pixels, then greedily
        deduplicated: a mask overlapping a better one by mask IoU > ``mask_iou_thresh`` is dropped. Sorted by
        score; ``prompt_index`` is the grid point's index (row-major).
        """
        if points_per_side < 1 or points_per_batch < 1:
            raise ConfigurationError("points_per_side and points_per_batch must be at least 1")
        rgb = as_rgb(image, BACKEND)
        embedding = self._checked(rgb, embedding)
        return self._lazy.get()[3].generate(
            embedding, points_per_side=points_per_side, points_per_batch=points_per_batch,
            pred_iou_thresh=pred_iou_thresh, stability_thresh=stability_score_thresh,
            stability_offset=stability_score_offset, mask_iou_thresh=mask_iou_thresh, min_area=min_area)

    def _checked(self, image: Any, embedding: SamEmbedding | None) -> SamEmbedding:
        if embedding is None:
            return self.embed(image)
        if not isinstance(embedding, SamEmbedding):
            raise InputError(f"{BACKEND}: embedding must come from Sam.embed, not {type(embedding).__name__}")
        if embedding.segmenter != self.name:
            raise InputError(f"{BACKEND}: the embedding was computed by another model or setting")
        width, height = image.size
        if embedding.image_size != (height, width):
            raise InputError(f"{BACKEND}: the embedding is of a {embedding.image_size[1]}x{embedding.image_size[0]} "
                             f"image, not this {width}x{height} one")
        device = self._lazy.get()[2]
        if embedding.image_embeddings.device != device:
            embedding = embedding.to(device)
        return embedding
