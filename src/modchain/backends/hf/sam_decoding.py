"""SAM's prompt side: prompts -> decoder tensors -> masks, from a precomputed image embedding.

Kept apart from :mod:`modchain.backends.hf.sam` (loading, the public API) because this is where the arithmetic
is: coordinates scaled into SAM's resized frame, prompts grouped by shape so each group is one decoder call,
mask prompts turned into SAM's low-resolution logits, masks upscaled to the original image, and the
automatic whole-image mask generator. Imported only by ``sam.py`` (which imports torch lazily first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modchain.core.errors import BackendError, InputError
from modchain.core.masks import decode_mask, encode_mask
from modchain.core.regions import Segment, VisualPrompt

if TYPE_CHECKING:
    from modchain.backends.hf.sam import SamEmbedding

BACKEND = "sam"
#: Logit given to a mask prompt's foreground (its negative to the background). SAM's own mask input is the
#: previous prediction's low-res logits; a binary mask is turned into confident logits of the same form.
MASK_PROMPT_LOGIT = 10.0
_TOLERANCE = 1.0  # pixels a point or box may stray outside the image (detector boxes are float)


class SamDecoder:
    """``kind``: "sam", "sam_hq" (extra features: early ViT features) or "sam2" (extra features: the two
    high-resolution FPN levels; the image is stretched to the square input, not padded)."""

    def __init__(self, model: Any, *, kind: str, dtype: Any, mask_threshold: float) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.kind = kind
        self.dtype = dtype
        self.mask_threshold = mask_threshold
        prompt_config = model.config.prompt_encoder_config
        self.input_size = int(prompt_config.image_size)                          # 1024 for real checkpoints
        embedding_size = getattr(prompt_config, "image_embedding_size", None)
        embedding_size = embedding_size or int(prompt_config.image_size) // int(prompt_config.patch_size)
        self.low_res = int(embedding_size) * 4                                    # 256 for real checkpoints
        self.calls = 0

    # ------------------------------------------------------------------------------------------ prompts

    def segment(self, prompts: Sequence[VisualPrompt], embedding: SamEmbedding, batch: int) -> list[list[Segment]]:
        for prompt in prompts:
            _check_inside(prompt, embedding.image_size)
        groups: dict[tuple[int, bool, bool, bool], list[int]] = {}
        for index, prompt in enumerate(prompts):
            key = (len(prompt.points), prompt.box is not None, prompt.mask is not None, prompt.multimask)
            groups.setdefault(key, []).append(index)
        results: list[list[Segment]] = [[] for _ in prompts]
        for (_, _, with_mask, multimask), indices in groups.items():
            for start in range(0, len(indices), batch):
                chunk = indices[start:start + batch]
                logits, scores = self._decode([prompts[i] for i in chunk], embedding, with_mask, multimask)
                for row, index in enumerate(chunk):
                    prompt = prompts[index]
                    masks = self.upscale(logits[row], embedding)
                    results[index] = [
                        Segment(mask=encode_mask(mask), score=float(score), prompt_index=index, label=prompt.label,
                                detection_score=prompt.detection_score)
                        for mask, score in zip(masks, scores[row].tolist())]
        return results

    def _decode(self, prompts: list[VisualPrompt], embedding: SamEmbedding, with_mask: bool,
                multimask: bool) -> tuple[Any, Any]:
        """Low-res logits ``(P, K, L, L)`` and predicted IoUs ``(P, K)`` for prompts of one shape."""
        torch = self.torch
        device = embedding.image_embeddings.device
        height, width = embedding.image_size
        scale = torch.tensor([embedding.input_size[1] / width, embedding.input_size[0] / height])
        count = len(prompts)
        # Mask prompts are added to the image embedding, one per decoder batch row: rows = prompts. Without
        # masks every prompt shares the image row: one image, ``count`` prompts ("point batch").
        shape = (count, 1) if with_mask else (1, count)
        kwargs: dict[str, Any] = {}
        if prompts[0].points:
            points = torch.tensor([p.points for p in prompts], dtype=torch.float32) * scale
            labels = torch.tensor([p.labels_or_default for p in prompts], dtype=torch.int64)
            kwargs["input_points"] = points.reshape(*shape, -1, 2).to(device)
            kwargs["input_labels"] = labels.reshape(*shape, -1).to(device)
        if prompts[0].box is not None:
            boxes = torch.tensor([p.box for p in prompts], dtype=torch.float32) * scale.repeat(2)
            kwargs["input_boxes"] = boxes.reshape(*shape, 4).to(device)
        image_embeddings = embedding.image_embeddings
        extra = list(embedding.intermediate_embeddings)
        if with_mask:
            kwargs["input_masks"] = torch.stack([self.mask_input(p, embedding) for p in prompts]).to(device, self.dtype)
            image_embeddings = image_embeddings.expand(count, -1, -1, -1)
            extra = [t.expand(count, *t.shape[1:]) for t in extra]
        if self.kind == "sam_hq":
            kwargs["intermediate_embeddings"] = extra
        elif self.kind == "sam2":
            image_embeddings = [*extra, image_embeddings]  # SAM 2 takes its FPN levels, finest first
        try:
            with torch.inference_mode():
                output = self.model(image_embeddings=image_embeddings, multimask_output=multimask, **kwargs)
        except Exception as exc:  # noqa: BLE001 - out of memory, device or shape errors: no masks were made
            raise BackendError(f"{BACKEND}: mask decoder failed: {type(exc).__name__}", backend=BACKEND) from exc
        self.calls += 1
        masks = output.pred_masks.float()
        return masks.reshape(count, -1, *masks.shape[-2:]), output.iou_scores.float().reshape(count, -1)

    def mask_input(self, prompt: VisualPrompt, embedding: SamEmbedding) -> Any:
        """A mask prompt as SAM's ``(1, L, L)`` mask input: the mask is read as covering the whole image (any
        resolution), placed in the resized-and-padded input frame like the image, then averaged down to L x L."""
        torch = self.torch
        functional = torch.nn.functional
        assert prompt.mask is not None
        mask = torch.from_numpy(decode_mask(prompt.mask).astype("float32"))[None, None]
        input_h, input_w = embedding.input_size
        mask = functional.interpolate(mask, (input_h, input_w), mode="bilinear", align_corners=False)
        mask = functional.pad(mask, (0, self.input_size - input_w, 0, self.input_size - input_h))
        mask = functional.interpolate(mask, (self.low_res, self.low_res), mode="area")
        return (mask[0] * 2.0 - 1.0) * MASK_PROMPT_LOGIT

    def upscale(self, logits: Any, embedding: SamEmbedding) -> Any:
        """``(K, L, L)`` low-res logits -> ``(K, H, W)`` boolean numpy masks of the original image, the way
        transformers' ``post_process_masks`` does it (padded input frame, crop, original size)."""
        functional = self.torch.nn.functional
        input_h, input_w = embedding.input_size
        masks = logits[None]
        if self.kind != "sam2":  # SAM 2 stretched the whole image to the input: no padding to crop
            masks = functional.interpolate(masks, (self.input_size, self.input_size), mode="bilinear",
                                           align_corners=False)[..., :input_h, :input_w]
        masks = functional.interpolate(masks, embedding.image_size, mode="bilinear", align_corners=False)
        return (masks[0] > self.mask_threshold).cpu().numpy()

    # ---------------------------------------------------------------------------------- automatic masks

    def generate(self, embedding: SamEmbedding, *, points_per_side: int, points_per_batch: int,
                 pred_iou_thresh: float, stability_thresh: float, stability_offset: float, mask_iou_thresh: float,
                 min_area: int) -> list[Segment]:
        torch = self.torch
        height, width = embedding.image_size
        offset = 0.5 / points_per_side
        axis = torch.linspace(offset, 1.0 - offset, points_per_side)
        grid_y, grid_x = torch.meshgrid(axis * height, axis * width, indexing="ij")
        grid = torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=-1)
        # The low-res logits cover the padded input; only this corner holds the image.
        valid_h = max(1, round(self.low_res * embedding.input_size[0] / self.input_size))
        valid_w = max(1, round(self.low_res * embedding.input_size[1] / self.input_size))
        candidates: list[tuple[float, int, Any]] = []  # (score, grid index, low-res logits)
        for start in range(0, len(grid), points_per_batch):
            chunk = grid[start:start + points_per_batch]
            prompts = [VisualPrompt(points=((float(x), float(y)),), multimask=True) for x, y in chunk.tolist()]
            logits, scores = self._decode(prompts, embedding, with_mask=False, multimask=True)
            logits = logits[..., :valid_h, :valid_w]
            inner = (logits > self.mask_threshold + stability_offset).sum(dim=(-1, -2))
            outer = (logits > self.mask_threshold - stability_offset).sum(dim=(-1, -2))
            stability = inner / outer.clamp(min=1)
            keep = (scores >= pred_iou_thresh) & (stability >= stability_thresh) & (outer > 0)
            for row, k in keep.nonzero().tolist():
                candidates.append((float(scores[row, k]), start + row, logits[row, k]))
        candidates.sort(key=lambda c: -c[0])
        kept: list[tuple[float, int, Any]] = []
        kept_masks: list[Any] = []
        for candidate in candidates:
            binary = (candidate[2] > self.mask_threshold).flatten().float()
            if kept_masks:
                stack = torch.stack(kept_masks)
                inter = stack @ binary
                union = stack.sum(dim=1) + binary.sum() - inter
                if bool(((inter / union.clamp(min=1)) > mask_iou_thresh).any()):
                    continue
            kept.append(candidate)
            kept_masks.append(binary)
        segments = []
        for score, index, low in kept:
            full = torch.full((self.low_res, self.low_res), -MASK_PROMPT_LOGIT)  # pad back to the input frame
            full[:valid_h, :valid_w] = low
            mask = self.upscale(full[None], embedding)[0]
            encoded = encode_mask(mask)
            if encoded.area >= max(1, min_area):
                segments.append(Segment(mask=encoded, score=score, prompt_index=index))
        return segments


def _check_inside(prompt: VisualPrompt, image_size: tuple[int, int]) -> None:
    height, width = image_size
    coordinates = list(prompt.points)
    if prompt.box is not None:
        coordinates += [prompt.box[:2], prompt.box[2:]]
    for x, y in coordinates:
        if not (-_TOLERANCE <= x <= width + _TOLERANCE and -_TOLERANCE <= y <= height + _TOLERANCE):
            raise InputError(f"{BACKEND}: a prompt point or box lies outside the {width}x{height} image")


class Sam2Preprocessor:
    """SAM 2's image preprocessing for installs without torchvision (transformers' SAM 2 image processor
    needs it): resize to the square input (aspect ratio not kept, as SAM 2 does), scale to 0-1, normalize.
    Settings come from the checkpoint's ``preprocessor_config.json`` (ImageNet mean/std, 1024 by default)."""

    def __init__(self, size: tuple[int, int] = (1024, 1024), mean: Sequence[float] = (0.485, 0.456, 0.406),
                 std: Sequence[float] = (0.229, 0.224, 0.225)) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)

    @classmethod
    def from_pretrained(cls, transformers: Any, model: str, *, revision: str | None = None) -> Sam2Preprocessor:
        settings, _ = transformers.ImageProcessingMixin.get_image_processor_dict(model, revision=revision)
        size = settings.get("size") or {}
        defaults = cls()
        return cls((size.get("height", defaults.size[0]), size.get("width", defaults.size[1])),
                   settings.get("image_mean") or defaults.mean, settings.get("image_std") or defaults.std)

    def __call__(self, images: Any, return_tensors: str = "pt") -> dict[str, Any]:
        import numpy as np
        import torch
        from PIL import Image

        height, width = self.size
        resized = images.resize((width, height), Image.Resampling.BILINEAR)
        array = (np.asarray(resized, dtype=np.float32) / 255.0 - np.array(self.mean, dtype=np.float32)) \
            / np.array(self.std, dtype=np.float32)
        return {"pixel_values": torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None],
                "original_sizes": torch.tensor([[images.size[1], images.size[0]]])}
