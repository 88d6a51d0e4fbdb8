"""SAM / SAM-HQ segmenter on tiny random checkpoints of the real architectures, loaded with from_pretrained."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from modchain.backends.hf.sam import Sam, SamEmbedding  # noqa: E402
from modchain.backends.hf.sam_decoding import MASK_PROMPT_LOGIT  # noqa: E402
from modchain.core.errors import ConfigurationError, InputError  # noqa: E402
from modchain.testing.tiny_visual_models import (  # noqa: E402
    save_tiny_grounding_dino,
    save_tiny_sam,
    save_tiny_sam2,
    save_tiny_sam_hq,
)
from modchain.visual_chain.masks import decode_mask, encode_mask  # noqa: E402
from modchain.visual_chain.types import Segmenter, VisualPrompt  # noqa: E402

HEIGHT, WIDTH = 48, 80


@pytest.fixture(scope="module")
def sam_dir(tmp_path_factory):
    return save_tiny_sam(tmp_path_factory.mktemp("sam"))


@pytest.fixture(scope="module")
def sam_hq_dir(tmp_path_factory):
    return save_tiny_sam_hq(tmp_path_factory.mktemp("sam_hq"))


@pytest.fixture(scope="module")
def sam2_dir(tmp_path_factory):
    return save_tiny_sam2(tmp_path_factory.mktemp("sam2"))


@pytest.fixture(scope="module")
def sam(sam_dir):
    return Sam.local(sam_dir, device="cpu")


@pytest.fixture(scope="module")
def image():
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def embedding(sam, image):
    return sam.embed(image)


def rect_mask(y0, y1, x0, x1, shape=(HEIGHT, WIDTH)):
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return encode_mask(mask)


ALL_FORMS = [
    VisualPrompt.point(10, 10),                                                    # one point, multimask
    VisualPrompt.point(60, 30, multimask=False),
    VisualPrompt(points=((10, 10), (40, 20)), point_labels=(1, 0)),                # positive + negative
    VisualPrompt(box=(5, 5, 40, 30)),
    VisualPrompt(box=(5, 5, 40, 30), points=((20, 20),), point_labels=(1,)),       # box + point
    VisualPrompt(mask=rect_mask(10, 30, 20, 50)),
    VisualPrompt(mask=rect_mask(10, 30, 20, 50), box=(15, 5, 60, 35), multimask=True),
]


def test_is_a_segmenter_and_name_keys_model_and_dtype(sam, sam_dir):
    assert isinstance(sam, Segmenter)
    assert str(sam_dir) in sam.name and "float32" in sam.name
    assert Sam.local(sam_dir, device="cpu").name == sam.name
    assert Sam.local(sam_dir, dtype="bfloat16").name != sam.name


def test_every_prompt_form_gives_masks_of_the_original_image_size(sam, image, embedding):
    results = sam.segment(image, ALL_FORMS, embedding=embedding)
    assert [len(r) for r in results] == [3 if p.multimask else 1 for p in ALL_FORMS]
    for index, segments in enumerate(results):
        for segment in segments:
            assert segment.mask.size == (HEIGHT, WIDTH)
            assert segment.prompt_index == index
            assert np.isfinite(segment.score)
            assert decode_mask(segment.mask).shape == (HEIGHT, WIDTH)
    # Random weights still give different masks for different prompts: the prompt reaches the decoder.
    assert len({r[0].mask.counts for r in results}) == len(ALL_FORMS)


def test_multimask_returns_three_candidates_with_distinct_scores(sam, image, embedding):
    [segments] = sam.segment(image, [VisualPrompt.point(30, 20)], embedding=embedding)
    assert len(segments) == 3
    assert len({s.score for s in segments}) == 3


def test_negative_points_and_mask_prompts_change_the_result(sam, image, embedding):
    both_positive = VisualPrompt(points=((10, 10), (40, 20)), point_labels=(1, 1), multimask=False)
    one_negative = VisualPrompt(points=((10, 10), (40, 20)), point_labels=(1, 0), multimask=False)
    box = VisualPrompt(box=(5, 5, 40, 30))
    box_and_mask = VisualPrompt(box=(5, 5, 40, 30), mask=rect_mask(0, 48, 0, 40))
    a, b, c, d = sam.segment(image, [both_positive, one_negative, box, box_and_mask], embedding=embedding)
    assert a[0].mask != b[0].mask
    assert c[0].mask != d[0].mask


def test_labels_and_detection_scores_are_carried(sam, image, embedding):
    prompt = VisualPrompt(box=(5, 5, 40, 30), label="car", detection_score=0.8)
    [[segment]] = sam.segment(image, [prompt], embedding=embedding)
    assert (segment.label, segment.detection_score) == ("car", 0.8)


def test_reused_embedding_gives_identical_masks_and_skips_the_encoder(sam, image, embedding):
    calls = sam.encoder_calls
    reused = sam.segment(image, ALL_FORMS, embedding=embedding)
    assert sam.encoder_calls == calls
    recomputed = sam.segment(image, ALL_FORMS)
    assert sam.encoder_calls == calls + 1
    assert reused == recomputed


def test_prompts_of_one_shape_share_one_decoder_call_and_match_one_by_one(sam, image, embedding):
    prompts = [VisualPrompt.point(5 + 9 * i, 4 + 5 * i) for i in range(8)]
    calls = sam.decoder_calls
    batched = sam.segment(image, prompts, embedding=embedding)
    assert sam.decoder_calls == calls + 1
    single = [sam.segment(image, [p], embedding=embedding)[0] for p in prompts]
    for one, many in zip(single, batched):
        for a, b in zip(one, many):
            assert abs(a.score - b.score) < 1e-4
            overlap = np.logical_and(decode_mask(a.mask), decode_mask(b.mask)).sum()
            assert overlap >= 0.99 * max(a.area, b.area)


def test_prompt_batch_size_splits_decoder_calls(sam_dir, image):
    small = Sam.local(sam_dir, device="cpu", prompt_batch_size=3)
    small.segment(image, [VisualPrompt.point(5 + 9 * i, 20) for i in range(8)])
    assert small.decoder_calls == 3


def test_mask_prompt_of_any_size_becomes_sam_low_res_logits(sam, embedding):
    decoder = sam._lazy.get()[3]
    full = decoder.mask_input(VisualPrompt(mask=rect_mask(0, HEIGHT, 0, WIDTH)), embedding)
    low = decoder.low_res
    assert full.shape == (1, low, low)
    valid_h = round(low * embedding.input_size[0] / decoder.input_size)
    assert torch.allclose(full[0, : valid_h - 1, :], torch.tensor(MASK_PROMPT_LOGIT))  # the image: foreground
    assert torch.allclose(full[0, valid_h + 1:, :], torch.tensor(-MASK_PROMPT_LOGIT))  # the padding: background
    half = rect_mask(0, 12, 0, 20, shape=(24, 40))           # top-left quarter, at half resolution
    same = rect_mask(0, 24, 0, 40)                            # the same quarter at full resolution
    a = decoder.mask_input(VisualPrompt(mask=half), embedding)
    b = decoder.mask_input(VisualPrompt(mask=same), embedding)
    assert ((a > 0) == (b > 0)).float().mean() > 0.97  # equal but for resampling at the edge
    assert (a > 0).any() and not (a > 0).all()


def test_generate_masks_filters_dedupes_and_sorts(sam, image, embedding):
    masks = sam.generate_masks(image, points_per_side=4, pred_iou_thresh=-10, stability_score_thresh=0.0,
                               mask_iou_thresh=0.5, embedding=embedding)
    assert masks
    assert [m.score for m in masks] == sorted((m.score for m in masks), reverse=True)
    assert all(m.mask.size == (HEIGHT, WIDTH) and 0 <= m.prompt_index < 16 for m in masks)
    arrays = [decode_mask(m.mask) for m in masks]
    for i in range(len(arrays)):
        for j in range(i):
            inter = np.logical_and(arrays[i], arrays[j]).sum()
            union = np.logical_or(arrays[i], arrays[j]).sum()
            assert inter / union < 0.6  # deduplicated (at low resolution, 0.5) stays so at full size
    strict = sam.generate_masks(image, points_per_side=4, pred_iou_thresh=-10, stability_score_thresh=0.999,
                                mask_iou_thresh=0.5, embedding=embedding)
    assert len(strict) <= len(masks)
    assert sam.generate_masks(image, points_per_side=4, pred_iou_thresh=10.0, embedding=embedding) == []


def test_bad_inputs_get_typed_errors(sam, sam_hq_dir, image, embedding):
    with pytest.raises(InputError):
        sam.segment("not an image", [VisualPrompt.point(1, 1)])
    with pytest.raises(InputError):
        sam.segment(image, [{"points": [(1, 1)]}])
    with pytest.raises(InputError, match="outside"):
        sam.segment(image, [VisualPrompt.point(500, 10)], embedding=embedding)
    with pytest.raises(InputError, match="outside"):
        sam.segment(image, [VisualPrompt(box=(0, 0, 10, 300))], embedding=embedding)
    other_size = image.resize((40, 24))
    with pytest.raises(InputError, match="image"):
        sam.segment(other_size, [VisualPrompt.point(1, 1)], embedding=embedding)
    hq = Sam.local(sam_hq_dir, device="cpu")
    with pytest.raises(InputError, match="another model"):
        hq.segment(image, [VisualPrompt.point(1, 1)], embedding=embedding)
    with pytest.raises(InputError):
        sam.segment(image, [VisualPrompt.point(1, 1)], embedding=object())
    with pytest.raises(ConfigurationError):
        sam.generate_masks(image, points_per_side=0)
    assert sam.segment(image, []) == []


def test_wrong_checkpoints_and_settings_are_configuration_errors(tmp_path, sam_dir):
    with pytest.raises(ConfigurationError, match="not SAM"):
        Sam.local(save_tiny_grounding_dino(tmp_path / "gd")).load()
    with pytest.raises(ConfigurationError):
        Sam.local(str(tmp_path / "missing")).load()
    with pytest.raises(ConfigurationError, match="float16"):
        Sam.local(sam_dir, device="cpu", dtype="float16").load()
    with pytest.raises(ConfigurationError):
        Sam(sam_dir, prompt_batch_size=0)


def test_embedding_moves_between_devices_and_reports_its_size(embedding):
    moved = embedding.to("cpu")
    assert isinstance(moved, SamEmbedding) and moved.nbytes == embedding.nbytes > 0
    assert moved.image_size == (HEIGHT, WIDTH)


@pytest.mark.parametrize("variant", ["sam_hq_dir", "sam2_dir"])
def test_sam_hq_and_sam2_take_the_same_prompts(variant, request, image):
    other = Sam.local(request.getfixturevalue(variant), device="cpu")
    embedding = other.embed(image)
    assert embedding.intermediate_embeddings  # SAM-HQ: early ViT features; SAM 2: its fine FPN levels
    results = other.segment(image, ALL_FORMS, embedding=embedding)
    assert [len(r) for r in results] == [3 if p.multimask else 1 for p in ALL_FORMS]
    assert all(s.mask.size == (HEIGHT, WIDTH) for r in results for s in r)
    assert len({r[0].mask.counts for r in results}) == len(ALL_FORMS)
    assert results == other.segment(image, ALL_FORMS)
    assert other.generate_masks(image, points_per_side=2, pred_iou_thresh=-10, stability_score_thresh=0.0)


def test_sam2_stretches_the_image_to_its_square_input(sam2_dir, image):
    sam2 = Sam.local(sam2_dir, device="cpu")
    embedding = sam2.embed(image)
    assert embedding.input_size == (64, 64) and embedding.image_size == (HEIGHT, WIDTH)
    [segments] = sam2.segment(image, [VisualPrompt.point(30, 20)], embedding=embedding)
    assert len({s.score for s in segments}) == 3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fp16_and_a_cpu_cached_embedding(sam_dir, image):
    gpu = Sam.local(sam_dir, device="cuda", dtype="float16")
    assert gpu.device.type == "cuda" and gpu.model.dtype == torch.float16
    embedding = gpu.embed(image)
    assert embedding.image_embeddings.is_cuda
    cached = embedding.to("cpu")  # what an image store keeps
    fresh = gpu.segment(image, ALL_FORMS, embedding=embedding)
    again = gpu.segment(image, ALL_FORMS, embedding=cached)
    assert fresh == again
    assert all(s.mask.size == (HEIGHT, WIDTH) for r in fresh for s in r)
    float32 = Sam.local(sam_dir, device="cuda").segment(image, [VisualPrompt(box=(5, 5, 40, 30))])
    half = gpu.segment(image, [VisualPrompt(box=(5, 5, 40, 30))], embedding=embedding)
    a, b = decode_mask(float32[0][0].mask), decode_mask(half[0][0].mask)
    assert np.logical_and(a, b).sum() >= 0.9 * max(a.sum(), b.sum())


def test_loaded_objects_can_be_passed_in_and_get_their_own_cache_key(sam_dir, sam, image):
    import transformers

    model = transformers.SamModel.from_pretrained(sam_dir)
    processor = transformers.SamImageProcessorPil.from_pretrained(sam_dir)
    given = Sam(model_obj=model, image_processor_obj=processor, device="cpu")
    assert given.name != Sam(device="cpu").name  # not mistaken for the default checkpoint's cached embeddings
    prompt = [VisualPrompt(box=(5, 5, 40, 30))]
    assert given.segment(image, prompt) == sam.segment(image, prompt)
    with pytest.raises(ConfigurationError):
        Sam(model_obj=model)
