"""BLIP-2 visual question answering on a local transformers model: encode each image once, ask many.

The seed notebook called ``processor(images=image, text=prompt)`` + ``model.generate`` once per question, so
the ViT-g vision encoder (by far the most expensive part of BLIP-2) re-encoded the same image for each of its
nine calls. :meth:`Blip2LocalVQA.answer` instead runs the vision encoder and the Q-Former once for a batch of
images, repeats each image's projected query embeddings (a view, no recompute) across all its prompts (the
caption and every question), and answers every (image, prompt) pair in one batched ``generate`` of the
language model: left-padded for decoder-only models (OPT), an encoder batch for encoder-decoder ones (Flan-T5).
The inputs are built exactly as ``Blip2ForConditionalGeneration.generate`` builds them (query embeddings in
place of the ``<image>`` placeholder tokens, then the prompt's tokens), so greedy answers equal the
per-question path's; :meth:`Blip2LocalVQA.answer_one_by_one` keeps that path as a reference.

torch and transformers are imported on first use only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from modchain.backends.hf.common import LazyModel, require_hf, resolve_device
from modchain.core.errors import BackendError, ConfigurationError, InputError
from modchain.core.vqa import VqaResult

BACKEND = "blip2-local"
DEFAULT_MODEL = "Salesforce/blip2-opt-2.7b"


class Blip2LocalVQA:
    """Caption images and answer a checklist of questions with a BLIP-2 model (OPT or Flan-T5).

    ``model`` is a model id or a local directory holding a ``Blip2ForConditionalGeneration`` checkpoint and
    its ``Blip2Processor``; or pass ``model_obj`` and ``processor_obj`` already loaded. ``dtype`` defaults to
    float16 on CUDA and float32 on CPU. ``images_per_batch`` images are encoded together and all of their
    prompts are generated in one batch. ``generate_kwargs`` go to every ``generate`` call (greedy by default).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: Any = None,
        dtype: Any = None,
        max_new_tokens: int = 30,
        prompt_template: str = "Question: {question} Answer:",
        caption_prompt: str | None = None,
        model_obj: Any = None,
        processor_obj: Any = None,
        images_per_batch: int = 8,
        revision: str | None = None,
        generate_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if (model_obj is None) != (processor_obj is None):
            raise ConfigurationError("pass processor_obj together with model_obj (or neither)")
        if "{question}" not in prompt_template:
            raise ConfigurationError("prompt_template must contain '{question}'")
        if max_new_tokens < 1 or images_per_batch < 1:
            raise ConfigurationError("max_new_tokens and images_per_batch must be at least 1")
        self.model_name = model
        self.revision = revision
        self.max_new_tokens = int(max_new_tokens)
        self.prompt_template = prompt_template
        self.caption_prompt = caption_prompt
        self.images_per_batch = int(images_per_batch)
        self.generate_kwargs = dict(generate_kwargs or {})
        self._device_arg = device
        self._dtype_arg = dtype
        self._given = (model_obj, processor_obj)
        self._lazy = LazyModel(self._load)
        self._count_lock = threading.Lock()
        #: Images encoded by the vision encoder so far (a forward hook adds each call's batch size).
        self.images_encoded = 0
        #: Calls of the vision encoder so far.
        self.vision_calls = 0

    # ----------------------------------------------------------------------------------------- loading

    def load(self) -> Blip2LocalVQA:
        """Load the model now (it is otherwise loaded on first use). Raises ConfigurationError."""
        self._lazy.get()
        return self

    @property
    def model(self) -> Any:
        return self._lazy.get()[0]

    @property
    def processor(self) -> Any:
        return self._lazy.get()[1]

    @property
    def device(self) -> Any:
        return self._lazy.get()[2]

    @property
    def dtype(self) -> Any:
        return self._lazy.get()[3]

    def _load(self) -> tuple[Any, Any, Any, Any]:
        torch, transformers = require_hf()
        device = resolve_device(self._device_arg)
        dtype = _resolve_dtype(torch, self._dtype_arg, device)
        model_obj, processor_obj = self._given
        try:
            if model_obj is None:
                config = transformers.AutoConfig.from_pretrained(self.model_name, revision=self.revision)
                if getattr(config, "model_type", None) != "blip-2":
                    raise ConfigurationError(
                        f"model {self.model_name!r} is a {getattr(config, 'model_type', '?')!r} model, not BLIP-2"
                    )
                processor_obj = transformers.Blip2Processor.from_pretrained(self.model_name, revision=self.revision)
                model_obj = transformers.Blip2ForConditionalGeneration.from_pretrained(
                    self.model_name, revision=self.revision, dtype=dtype
                )
            elif self._dtype_arg is not None:
                model_obj = model_obj.to(dtype)
        except ConfigurationError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"cannot load BLIP-2 model {self.model_name!r}: {exc}") from exc
        try:
            model_obj = model_obj.to(device)
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise ConfigurationError(f"cannot use device {self._device_arg!r}: {type(exc).__name__}: {exc}") from None
        model_obj.eval()
        if getattr(processor_obj, "num_query_tokens", None) is None:
            # Older processors insert no <image> placeholders; the model config knows how many it needs.
            processor_obj.num_query_tokens = model_obj.config.num_query_tokens
        model_obj.vision_model.register_forward_hook(self._count_vision_pass, with_kwargs=True)
        return model_obj, processor_obj, device, model_obj.vision_model.dtype

    def _count_vision_pass(self, module: Any, args: Any, kwargs: Any, output: Any) -> None:
        pixel_values = args[0] if args else kwargs.get("pixel_values")
        with self._count_lock:
            self.vision_calls += 1
            self.images_encoded += int(pixel_values.shape[0]) if pixel_values is not None else 1

    # -------------------------------------------------------------------------------------- the fast path

    def answer(self, images: Any, questions: Sequence[str], *, caption: bool = True) -> list[VqaResult]:
        """One :class:`VqaResult` per image: its caption (if ``caption``) and the answer to every question.

        Each image is encoded once; all prompts of ``images_per_batch`` images are generated in one batch.
        ``images`` is one image or a list (PIL images; other sources through ``modchain.image_moderation.image_input``).
        """
        pil_images = _as_images(images)
        questions = _check_questions(questions)
        prompts = ([self.caption_prompt or ""] if caption else []) + [
            self.prompt_template.format(question=q) for q in questions
        ]
        results: list[VqaResult] = []
        if not prompts:
            return [VqaResult(caption=None, answers=[], vision_passes=0) for _ in pil_images]
        for begin in range(0, len(pil_images), self.images_per_batch):
            chunk = pil_images[begin:begin + self.images_per_batch]
            before = self.images_encoded
            texts = self._answer_chunk(chunk, prompts)
            passes = (self.images_encoded - before) // max(1, len(chunk))
            for i in range(len(chunk)):
                outs = texts[i * len(prompts):(i + 1) * len(prompts)]
                cap = outs.pop(0) if caption else None
                results.append(VqaResult(caption=cap, answers=list(zip(questions, outs)), vision_passes=passes))
        return results

    def _answer_chunk(self, images: list[Any], prompts: list[str]) -> list[str]:
        torch, _ = require_hf()
        model, processor, device, _dtype = self._lazy.get()
        lm = model.language_model
        decoder_only = not lm.config.is_encoder_decoder
        try:
            with torch.inference_mode():
                pixel_values = processor.image_processor(images, return_tensors="pt")["pixel_values"]
                query_embeds = self._image_query_embeddings(model, pixel_values.to(device, _dtype))  # [B, Q, D]
                n_query = query_embeds.shape[1]
                image_token = model.config.image_token_index
                tokenizer = processor.tokenizer
                pad_id = _pad_id(tokenizer, lm)
                placeholder = image_token if image_token is not None else pad_id
                text_ids = tokenizer(list(prompts), return_token_type_ids=False)["input_ids"]
                rows = [[placeholder] * n_query + list(ids) for ids in text_ids]
                width = max(len(r) for r in rows)
                ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for r, row in enumerate(rows):  # left padding (decoder-only); right for an encoder
                    start = width - len(row) if decoder_only else 0
                    ids[r, start:start + len(row)] = torch.tensor(row, dtype=torch.long)
                    mask[r, start:start + len(row)] = 1
                ids, mask = ids.to(device), mask.to(device)
                embeds = model.get_input_embeddings()(ids)
                # Every image's queries, repeated (a view) across its prompts: [B * P, Q, D].
                per_pair = query_embeds.unsqueeze(1).expand(-1, len(prompts), -1, -1).reshape(
                    -1, n_query, query_embeds.shape[-1])
                ids = ids.repeat(len(images), 1)
                mask = mask.repeat(len(images), 1)
                embeds = embeds.repeat(len(images), 1, 1)
                starts = (width - torch.tensor([len(r) for r in rows]) if decoder_only
                          else torch.zeros(len(rows), dtype=torch.long)).repeat(len(images))
                positions = starts.unsqueeze(1) + torch.arange(n_query).unsqueeze(0)  # [B*P, Q]
                rows_idx = torch.arange(embeds.shape[0]).unsqueeze(1).expand_as(positions)
                embeds[rows_idx.to(device), positions.to(device)] = per_pair.to(embeds.dtype)
                inputs: dict[str, Any] = {"inputs_embeds": embeds, "attention_mask": mask}
                if decoder_only:
                    inputs["input_ids"] = ids
                out = lm.generate(**inputs, **self._generation_kwargs(lm, pad_id))
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"{BACKEND}: generation failed: {type(exc).__name__}: {exc}", backend=BACKEND) from exc
        if decoder_only and out.shape[1] >= width and torch.equal(out[:, :width].cpu(), ids.cpu()):
            out = out[:, width:]
        return [t.strip() for t in processor.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def _image_query_embeddings(self, model: Any, pixel_values: Any) -> Any:
        """The language-model inputs of each image (vision encoder + Q-Former + projection), as in
        ``Blip2ForConditionalGeneration.generate``: one vision-encoder call for the whole batch."""
        torch, _ = require_hf()
        image_embeds = model.vision_model(pixel_values, return_dict=True).last_hidden_state
        image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
        query_tokens = model.query_tokens.expand(image_embeds.shape[0], -1, -1)
        query_output = model.qformer(query_embeds=query_tokens, encoder_hidden_states=image_embeds,
                                     encoder_attention_mask=image_mask, return_dict=True).last_hidden_state
        if query_output.dtype != image_embeds.dtype:  # the Q-Former is kept in fp32
            query_output = query_output.to(image_embeds.dtype)
        return model.language_projection(query_output)

    def _generation_kwargs(self, lm: Any, pad_id: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": False, "num_beams": 1}
        if getattr(lm.generation_config, "pad_token_id", None) is None:
            kwargs["pad_token_id"] = pad_id
        kwargs.update(self.generate_kwargs)
        return kwargs

    # ------------------------------------------------------------------------------ the reference path

    def answer_one_by_one(self, images: Any, questions: Sequence[str], *, caption: bool = True) -> list[VqaResult]:
        """The seed notebook's pattern: ``processor(images=image, text=prompt)`` and ``model.generate`` for each
        question (and the caption), re-encoding the image every time. Slow; kept as a reference for tests
        and benchmarks."""
        torch, _ = require_hf()
        model, processor, device, dtype = self._lazy.get()
        pil_images = _as_images(images)
        questions = _check_questions(questions)
        prompts = ([self.caption_prompt or ""] if caption else []) + [
            self.prompt_template.format(question=q) for q in questions
        ]
        pad_id = _pad_id(processor.tokenizer, model.language_model)
        decoder_only = not model.language_model.config.is_encoder_decoder
        results = []
        for image in pil_images:
            before = self.images_encoded
            outs = []
            try:
                for prompt in prompts:
                    inputs = processor(images=image, text=prompt, return_tensors="pt").to(device)
                    inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
                    with torch.inference_mode():
                        out = model.generate(**inputs, **self._generation_kwargs(model.language_model, pad_id))
                    if decoder_only:
                        out = out[:, inputs["input_ids"].shape[1]:]
                    outs.append(processor.tokenizer.decode(out[0], skip_special_tokens=True).strip())
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"{BACKEND}: generation failed: {type(exc).__name__}: {exc}",
                                   backend=BACKEND) from exc
            cap = outs.pop(0) if caption else None
            results.append(VqaResult(caption=cap, answers=list(zip(questions, outs)),
                                     vision_passes=self.images_encoded - before))
        return results


def _resolve_dtype(torch: Any, dtype: Any, device: Any) -> Any:
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype).replace("torch.", ""), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ConfigurationError(f"dtype must be a floating-point torch dtype (float16, bfloat16, float32), not {dtype!r}")
    return resolved


def _pad_id(tokenizer: Any, lm: Any) -> int:
    for value in (getattr(tokenizer, "pad_token_id", None), getattr(lm.config, "pad_token_id", None),
                  getattr(tokenizer, "eos_token_id", None)):
        if value is not None:
            return int(value)
    return 0


def _check_questions(questions: Sequence[str]) -> list[str]:
    if isinstance(questions, str):
        questions = [questions]
    out = list(questions)
    if not all(isinstance(q, str) and q.strip() for q in out):
        raise InputError("questions must be non-empty strings")
    return out


def _as_images(images: Any) -> list[Any]:
    """PIL RGB images from one image or a list; other sources go through modchain.image_moderation.image_input."""
    if not isinstance(images, (list, tuple)):
        images = [images]
    if not images:
        raise InputError("no images given")
    out = []
    for image in images:
        if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
            out.append(image if image.mode == "RGB" else image.convert("RGB"))
            continue
        try:
            from modchain.core.images import load_image
        except ImportError as exc:
            raise InputError(f"cannot read a {type(image).__name__} as an image here; pass a PIL image") from exc
        loaded = load_image(image)
        loaded = getattr(loaded, "image", loaded)
        out.append(loaded if loaded.mode == "RGB" else loaded.convert("RGB"))
    return out
