"""BLIP-2 VQA on a tiny random BLIP-2 of the real architecture, loaded from disk like a user's checkpoint.

The batched path (one vision encoding per image, all prompts in one generate) must give exactly the greedy
answers of the seed's one-call-per-question path.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
PIL_Image = pytest.importorskip("PIL.Image")
tokenizers = pytest.importorskip("tokenizers")

from modchain.backends.hf.blip2 import Blip2LocalVQA  # noqa: E402
from modchain.core.errors import ConfigurationError, InputError  # noqa: E402
from modchain.image_moderation.vqa_types import VqaResult  # noqa: E402
from modchain.testing.tiny_models import save_tiny_blip2 as _save_tiny_blip2  # noqa: E402

QUESTIONS = [
    "Is there a weapon in the image?",
    "Does the image show nudity?",
    "Is anyone injured or bleeding?",
    "Are there drugs?",
    "What text is written in the image?",
]

@pytest.fixture(scope="module")
def tiny_opt_blip2(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-blip2-opt")
    _save_tiny_blip2(path, "opt")
    return str(path)


@pytest.fixture(scope="module")
def tiny_t5_blip2(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-blip2-t5")
    _save_tiny_blip2(path, "t5")
    return str(path)


@pytest.fixture(scope="module")
def images():
    import numpy as np

    rng = np.random.default_rng(0)
    out = [PIL_Image.fromarray(rng.integers(0, 256, (40 + 8 * i, 48, 3), dtype=np.uint8)) for i in range(3)]
    out.append(PIL_Image.new("L", (32, 32), 200))  # grayscale: converted to RGB
    return out


def test_one_vision_pass_per_image_and_same_answers_as_one_by_one(tiny_opt_blip2, images):
    vqa = Blip2LocalVQA(tiny_opt_blip2, max_new_tokens=8)
    assert vqa.images_encoded == 0
    fast = vqa.answer(images[0], QUESTIONS)
    assert vqa.images_encoded == 1 and vqa.vision_calls == 1
    assert len(fast) == 1 and isinstance(fast[0], VqaResult)
    assert fast[0].vision_passes == 1
    assert fast[0].caption is not None
    assert [q for q, _ in fast[0].answers] == QUESTIONS
    assert len({a for _, a in fast[0].answers}) > 1  # the random model says different things to each prompt

    slow = vqa.answer_one_by_one(images[0], QUESTIONS)
    assert slow[0].vision_passes == len(QUESTIONS) + 1
    assert fast[0].answers == slow[0].answers
    assert fast[0].caption == slow[0].caption


def test_batch_of_images_is_one_vision_call_with_one_encoding_each(tiny_opt_blip2, images):
    vqa = Blip2LocalVQA(tiny_opt_blip2, max_new_tokens=6, caption_prompt="a photo of")
    fast = vqa.answer(images, QUESTIONS)
    assert vqa.vision_calls == 1 and vqa.images_encoded == len(images)
    assert [r.vision_passes for r in fast] == [1] * len(images)
    slow = vqa.answer_one_by_one(images, QUESTIONS)
    for f, s in zip(fast, slow):
        assert f.caption == s.caption
        assert f.answers == s.answers
    assert len({tuple(r.answers) for r in fast}) > 1  # the images are not mixed up into one answer set


def test_images_per_batch_chunks_and_caption_off(tiny_opt_blip2, images):
    vqa = Blip2LocalVQA(tiny_opt_blip2, max_new_tokens=4, images_per_batch=2)
    out = vqa.answer(images[:3], QUESTIONS[:2], caption=False)
    assert vqa.vision_calls == 2 and vqa.images_encoded == 3
    assert all(r.caption is None and r.vision_passes == 1 and len(r.answers) == 2 for r in out)
    slow = vqa.answer_one_by_one(images[:3], QUESTIONS[:2], caption=False)
    assert [r.answers for r in out] == [r.answers for r in slow]
    assert [r.vision_passes for r in slow] == [2, 2, 2]


def test_cpu_defaults_to_float32_and_loading_is_lazy(tiny_opt_blip2):
    vqa = Blip2LocalVQA(tiny_opt_blip2, device="cpu")
    assert not vqa._lazy.loaded  # nothing loaded at construction
    assert vqa.dtype == torch.float32 and vqa.device.type == "cpu"
    assert vqa.model.language_model.dtype == torch.float32
    as_bf16 = Blip2LocalVQA(tiny_opt_blip2, device="cpu", dtype="bfloat16")
    assert as_bf16.dtype == torch.bfloat16
    assert as_bf16.model.language_model.dtype == torch.bfloat16


def test_given_objects_are_used(tiny_opt_blip2, images):
    model = transformers.Blip2ForConditionalGeneration.from_pretrained(tiny_opt_blip2)
    processor = transformers.Blip2Processor.from_pretrained(tiny_opt_blip2)
    vqa = Blip2LocalVQA(model_obj=model, processor_obj=processor, max_new_tokens=3)
    assert vqa.model is model
    assert vqa.answer(images[1], ["What is it?"])[0].vision_passes == 1


def test_to_evidence(tiny_opt_blip2, images):
    result = Blip2LocalVQA(tiny_opt_blip2, max_new_tokens=3).answer(images[0], QUESTIONS[:2])[0]
    evidence = result.to_evidence()
    assert [p.question for p in evidence.qa] == QUESTIONS[:2]
    assert result.answer_for(QUESTIONS[1]) == result.answers[1][1]


def test_typed_errors(tmp_path, tiny_opt_blip2, images):
    with pytest.raises(ConfigurationError):
        Blip2LocalVQA(str(tmp_path / "no-such-model")).load()
    (tmp_path / "not-blip").mkdir()
    transformers.OPTConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, ffn_dim=8,
                           num_attention_heads=2).save_pretrained(tmp_path / "not-blip")
    with pytest.raises(ConfigurationError, match="not BLIP-2"):
        Blip2LocalVQA(str(tmp_path / "not-blip")).load()
    with pytest.raises(ConfigurationError):
        Blip2LocalVQA(tiny_opt_blip2, device="no-such-device").load()
    with pytest.raises(ConfigurationError):
        Blip2LocalVQA(tiny_opt_blip2, dtype="int8").load()
    with pytest.raises(ConfigurationError):
        Blip2LocalVQA(tiny_opt_blip2, prompt_template="no placeholder")
    with pytest.raises(ConfigurationError):
        Blip2LocalVQA(tiny_opt_blip2, model_obj=object())
    vqa = Blip2LocalVQA(tiny_opt_blip2)
    with pytest.raises(InputError):
        vqa.answer(images[0], [""])
    with pytest.raises(InputError):
        vqa.answer([], QUESTIONS)


def test_flan_t5_language_model(tiny_t5_blip2, images):
    vqa = Blip2LocalVQA(tiny_t5_blip2, max_new_tokens=6)
    fast = vqa.answer(images[:2], QUESTIONS)
    assert vqa.vision_calls == 1 and [r.vision_passes for r in fast] == [1, 1]
    slow = vqa.answer_one_by_one(images[:2], QUESTIONS)
    for f, s in zip(fast, slow):
        assert f.caption == s.caption
        assert f.answers == s.answers
    assert any(a for r in fast for _, a in r.answers)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_defaults_to_float16_and_batches(tiny_opt_blip2, images):
    vqa = Blip2LocalVQA(tiny_opt_blip2, max_new_tokens=6)
    assert vqa.device.type == "cuda" and vqa.dtype == torch.float16
    out = vqa.answer(images, QUESTIONS)
    assert vqa.vision_calls == 1 and [r.vision_passes for r in out] == [1] * len(images)
    assert all(r.caption is not None and len(r.answers) == len(QUESTIONS) for r in out)
