"""ImageChain: detector -> prompts -> segmenter with the store's cached embedding; Runnable; callbacks; errors.

Chain logic runs on two small deterministic stages (a color-threshold detector and a segmenter that fills
each box with the pixels of its color: real algorithms with known answers). The end-to-end tests run the
tiny random Grounding DINO and SAM loaded through from_pretrained.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from PIL import Image

from modchain.core.callbacks import ModerationCallbackHandler
from modchain.core.errors import BackendError, ConfigurationError, InputError
from modchain.visual_chain.chain import ImageChain
from modchain.visual_chain.errors import EmptyQueryError, UnknownImageError, VisualStageError
from modchain.visual_chain.image_store import ImageStore
from modchain.visual_chain.masks import decode_mask, encode_mask
from modchain.visual_chain.redaction import redaction_mask
from modchain.visual_chain.results import ImageChainResult
from modchain.visual_chain.types import Detection, Segment, VisualPrompt

COLORS = {"red square": (255, 0, 0), "blue car": (0, 0, 255), "green tree": (0, 255, 0)}


def scene() -> Image.Image:
    array = np.full((80, 120, 3), 255, dtype=np.uint8)
    array[10:30, 10:40] = COLORS["red square"]
    array[40:70, 60:100] = COLORS["blue car"]
    return Image.fromarray(array)


class ColorDetector:
    """One box per query phrase naming a known color: the tight box of that color's pixels."""

    name = "color-detector"

    def __init__(self):
        self.calls = []

    def detect(self, image, queries):
        self.calls.append(list(queries))
        array = np.asarray(image)
        found = []
        for query in queries:
            color = COLORS.get(query.lower())
            if color is None:
                continue
            ys, xs = np.nonzero((array == color).all(axis=2))
            if len(xs):
                found.append(Detection(label=query, score=0.9 if "red" in query else 0.6, backend=self.name,
                                       box=(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))))
        return found


class BoxFillSegmenter:
    """Masks = non-white pixels inside the prompt's box (or around its first point); embedding = the
    non-white map, computed once by ``embed`` and reused."""

    name = "box-fill"

    def __init__(self, fail_with=None):
        self.embeds, self.segment_calls, self.fail_with = 0, [], fail_with

    def embed(self, image):
        self.embeds += 1
        return (np.asarray(image) < 250).any(axis=2)

    def segment(self, image, prompts, *, embedding=None):
        if self.fail_with is not None:
            raise self.fail_with
        self.segment_calls.append(embedding is not None)
        foreground = embedding if embedding is not None else self.embed(image)
        out = []
        for prompt in prompts:
            box = prompt.box or (prompt.points[0][0] - 5, prompt.points[0][1] - 5,
                                 prompt.points[0][0] + 5, prompt.points[0][1] + 5)
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            mask = np.zeros_like(foreground)
            mask[y0:y1, x0:x1] = foreground[y0:y1, x0:x1]
            masks = [Segment(mask=encode_mask(mask), score=0.8, prompt_index=0)]
            if prompt.multimask:
                masks += [Segment(mask=encode_mask(np.zeros_like(mask)), score=s, prompt_index=0) for s in (0.1, 0.2)]
            out.append(masks)
        return out


class Recorder(ModerationCallbackHandler):
    def __init__(self):
        self.events = []

    def on_after_detection(self, beacon, unique_id, **kwargs):
        self.events.append(("detection", beacon, unique_id))

    async def on_after_segmentation(self, beacon, unique_id, **kwargs):
        self.events.append(("segmentation", beacon, unique_id))


@pytest.fixture
def store():
    return ImageStore({"5X3349": scene()})


def test_query_to_boxes_to_masks(store):
    detector, segmenter = ColorDetector(), BoxFillSegmenter()
    chain = ImageChain.from_visual_pipeline([detector, segmenter], store)
    result = chain.run("blue car. red square.", image_id="5X3349")
    assert detector.calls == [["blue car", "red square"]]
    assert result.queries == ("blue car", "red square") and result.image_size == (120, 80)
    assert [d.label for d in result.detections] == ["red square", "blue car"]  # best score first
    assert [s.label for s in result.segments] == ["red square", "blue car"]
    assert [s.prompt_index for s in result.segments] == [0, 1]
    assert result.segments[0].area == 20 * 30 and result.segments[1].area == 30 * 40
    assert result.segments[1].box == (60.0, 40.0, 100.0, 70.0)
    assert result.segments[0].detection_score == 0.9
    assert [p.box for p in result.prompts] == [d.box for d in result.detections]
    assert {t.stage for t in result.timings} == {"detection", "embedding", "segmentation"}
    assert result.embedding_cache_hit is False and segmenter.segment_calls == [True]
    again = chain.run("red square", image_id="5X3349")
    assert again.embedding_cache_hit is True and segmenter.embeds == 1
    assert result.labels == ["red square", "blue car"]
    assert [s.label for s in result.segments_for("Blue  Car")] == ["blue car"]


def test_to_dict_is_json_and_masks_round_trip(store):
    result = ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter()], store).run(
        "red square", image_id="5X3349")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["image_size"] == [120, 80] and data["detections"][0]["box"] == [10.0, 10.0, 40.0, 30.0]
    rle = data["segments"][0]["mask"]
    assert isinstance(rle["counts"], str) and rle["size"] == [80, 120]
    from modchain.visual_chain.masks import EncodedMask

    assert (decode_mask(EncodedMask.from_coco(rle)) == decode_mask(result.segments[0].mask)).all()
    assert set(data["timings_ms"]) == {"detection", "embedding", "segmentation", "total"}
    assert len(json.dumps(data)) < 2000


def test_center_points_and_multimask_keep_best(store):
    chain = ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter()], store, center_points=True,
                                            multimask=True)
    result = chain.run("red square", image_id="5X3349")
    assert result.prompts[0].points == ((25.0, 20.0),) and result.prompts[0].multimask
    assert len(result.segments) == 1 and result.segments[0].score == 0.8
    everything = ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter()], store, multimask=True,
                                                 all_masks=True).run("red square", image_id="5X3349")
    assert [s.score for s in everything.segments] == [0.8, 0.1, 0.2]


def test_max_detections_caps_the_prompts_and_the_rest_keep_their_boxes(store, caplog):
    chain = ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter()], store, max_detections=1)
    with caplog.at_level("WARNING", logger="modchain.visual_chain"):
        result = chain.run("blue car. red square", image_id="5X3349")
    assert [d.label for d in result.detections] == ["red square", "blue car"]  # best first, none dropped
    assert [s.label for s in result.segments] == ["red square"] and result.segmented_detections == 1
    assert [d.label for d in result.unmasked_detections()] == ["blue car"] and result.unmasked_detections("red square") == []
    assert "2 detections" in caplog.text and "car" not in caplog.text  # counts only, no labels
    x0, y0, x1, y1 = (int(v) for v in result.detections[1].box)
    region = redaction_mask(result, labels=["blue car"])  # masks: the capped one is covered by its box
    assert region[y0:y1, x0:x1].all() and region.sum() == (y1 - y0) * (x1 - x0)
    assert result.to_dict()["segmented_detections"] == 1


def test_detections_whose_segmentation_failed_open_are_redacted_by_their_boxes(store):
    chain = ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter(fail_with=RuntimeError())], store,
                                            fail_open=True)
    result = chain.run("red square", image_id="5X3349")
    assert result.segments == () and result.errors and len(result.unmasked_detections()) == 1
    assert redaction_mask(result, labels=["red square"]).any()  # before: a failed SAM redacted nothing


def test_an_empty_mask_leaves_its_detection_to_its_box_and_labels_may_be_any_iterable():
    empty = Segment(mask=encode_mask(np.zeros((40, 50), dtype=bool)), score=0.1, prompt_index=0, label="face")
    result = ImageChainResult(image_size=(50, 40), detections=(Detection(label="face", score=0.9, box=(10, 10, 30, 30)),
                                                               Detection(label="plate", score=0.8, box=(0, 0, 5, 5))),
                              segments=(empty,), segmented_detections=2)
    assert [d.label for d in result.unmasked_detections()] == ["face", "plate"]
    assert redaction_mask(result, labels=["face"]).sum() == 400  # SAM found nothing: the box is covered
    assert len(result.detections_for(label for label in ["face", "plate"])) == 2  # a generator, read once


def test_a_list_query_keeps_dotted_phrases_whole(store):
    detector = ColorDetector()
    chain = ImageChain.from_visual_pipeline([detector, BoxFillSegmenter()], store)
    result = chain.run(["red square", " st. bernard ", ""], image_id="5X3349")
    assert detector.calls[-1] == ["red square", "st. bernard"] and result.queries == ("red square", "st. bernard")
    assert result.query == "red square. st. bernard" and [d.label for d in result.detections] == ["red square"]
    assert chain.invoke({"query": ["blue car"], "image_id": "5X3349"}).detections[0].label == "blue car"
    with pytest.raises(InputError):
        chain.run(["red square", 3], image_id="5X3349")


def test_min_detection_score(store):
    chain = ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter()], store, min_detection_score=0.7)
    assert [s.label for s in chain.run("blue car. red square", image_id="5X3349").segments] == ["red square"]


def test_detector_only_and_segmenter_only(store):
    boxes = ImageChain.from_visual_pipeline([ColorDetector()], store).run("blue car", image_id="5X3349")
    assert len(boxes.detections) == 1 and boxes.segments == () and "embedding" not in boxes.timings_ms
    with pytest.raises(InputError, match="need a segmenter"):
        ImageChain.from_visual_pipeline([ColorDetector()], store).run(image_id="5X3349", prompts=[{"box": [0, 0, 1, 1]}])
    seg = ImageChain.from_visual_pipeline([BoxFillSegmenter()], store)
    result = seg.run(image_id="5X3349", prompts=[VisualPrompt.point(70, 50, multimask=False),
                                                 {"box": [0, 0, 120, 80], "label": "all"}])
    assert [s.area for s in result.segments] == [100, 600 + 1200] and result.segments[1].label == "all"
    with pytest.raises(EmptyQueryError):
        seg.run("red square", image_id="5X3349")


def test_explicit_image_is_cached_by_content():
    segmenter = BoxFillSegmenter()
    chain = ImageChain.from_visual_pipeline([ColorDetector(), segmenter])
    first = chain.run("red square", image=scene())
    second = chain.run("red square", image=np.asarray(scene()))
    assert first.image_id is None and first.embedding_cache_hit is False and second.embedding_cache_hit is True
    assert segmenter.embeds == 1


def test_bad_requests_are_typed(store):
    chain = ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter()], store)
    with pytest.raises(EmptyQueryError):
        chain.run(" . ", image_id="5X3349")
    with pytest.raises(UnknownImageError):
        chain.run("red square", image_id="missing")
    with pytest.raises(InputError):
        chain.run("red square")
    with pytest.raises(InputError):
        chain.run("red square", image_id="5X3349", image=scene())
    with pytest.raises(InputError):
        chain.invoke({"query": "red square", "image_id": "5X3349", "colour": 1})
    with pytest.raises(InputError):
        chain.run(image_id="5X3349", prompts=[{"points": []}])
    with pytest.raises(ConfigurationError):
        ImageChain.from_visual_pipeline([BoxFillSegmenter(), ColorDetector()], store)
    with pytest.raises(ConfigurationError):
        ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter()], store, no_such_option=1)


def test_stage_failure_fails_closed_or_open(store):
    chain = ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter(fail_with=RuntimeError("cuda oom"))],
                                            store)
    with pytest.raises(VisualStageError) as info:
        chain.run("red square", image_id="5X3349")
    assert isinstance(info.value, BackendError) and info.value.stage == "segmentation"
    assert "red square" not in str(info.value) and isinstance(info.value.__cause__, RuntimeError)
    throttled = BackendError("throttled", backend="sm")
    with pytest.raises(BackendError) as info:
        ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter(fail_with=throttled)], store).run(
            "red square", image_id="5X3349")
    assert info.value is throttled
    recorder = Recorder()
    open_chain = ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter(fail_with=RuntimeError())],
                                                 store, fail_open=True, callbacks=[recorder])
    result = open_chain.run("red square", image_id="5X3349")
    assert result.errors == ("segmentation: RuntimeError",) and len(result.detections) == 1 and not result.segments
    assert recorder.events[-1][1]["moderation_status"] == "ERROR"


def test_callbacks_per_stage_in_order_sync_and_async(store):
    recorder = Recorder()
    chain = ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter()], store, callbacks=[recorder])
    chain.invoke({"query": "red square", "image_id": "5X3349"}, config={"configurable": {"unique_id": "u1"}})
    asyncio.run(chain.ainvoke({"query": "blue car", "image_id": "5X3349"}))
    steps = [(step, beacon["moderation_type"], uid) for step, beacon, uid in recorder.events]
    assert steps == [("detection", "ObjectDetection", "u1"), ("segmentation", "Segmentation", "u1"),
                     ("detection", "ObjectDetection", None), ("segmentation", "Segmentation", None)]
    beacon = recorder.events[1][1]
    assert beacon["moderation_status"] == "LABELS_FOUND"
    assert beacon["moderation_input"] == {"query": "red square", "image_id": "5X3349", "width": 120, "height": 80}
    assert beacon["moderation_output"][0]["label"] == "red square" and "mask" in beacon["moderation_output"][0]
    assert recorder.events[0][1]["moderation_chain_id"] == beacon["moderation_chain_id"]


def test_runnable_batch_and_abatch_share_the_embedding(store):
    segmenter = BoxFillSegmenter()
    chain = ImageChain.from_visual_pipeline([ColorDetector(), segmenter], store)
    inputs = [{"query": q, "image_id": "5X3349"} for q in ("red square", "blue car", "green tree", "red square")]
    results = chain.batch(inputs)
    assert [len(r.segments) for r in results] == [1, 1, 0, 1] and segmenter.embeds == 1
    results = asyncio.run(chain.abatch(inputs))
    assert [len(r.segments) for r in results] == [1, 1, 0, 1] and segmenter.embeds == 1


def test_verbose_prints_stage_summaries(store, capsys):
    ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter()], store, verbose=True).run(
        "red square. blue car", image_id="5X3349")
    out = capsys.readouterr().out
    assert "detection" in out and "2 box(es)" in out and "2 mask(s)" in out and "computed" in out
    assert "red square" not in out


# -- end to end: tiny random Grounding DINO + SAM of the real architectures, loaded with from_pretrained ----------

@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from modchain.testing.tiny_visual_models import save_tiny_grounding_dino, save_tiny_sam

    root = tmp_path_factory.mktemp("tiny-visual")
    return save_tiny_grounding_dino(root / "grounding-dino"), save_tiny_sam(root / "sam")


def photo() -> Image.Image:
    # Non-square on purpose: it exercises the resize/pad/crop mapping of boxes and masks back to pixels.
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (90, 140, 3), dtype=np.uint8))


def test_tiny_grounding_dino_and_sam_end_to_end(tiny_models):
    from modchain.backends.hf.grounding_dino import GroundingDino
    from modchain.backends.hf.sam import Sam

    detector_dir, sam_dir = tiny_models
    detector = GroundingDino(detector_dir, box_threshold=0.0, text_threshold=0.0, max_detections=4)
    sam = Sam(sam_dir)
    store = ImageStore({"5X3349": photo()})
    recorder = Recorder()
    chain = ImageChain.from_visual_pipeline([detector, sam], store, callbacks=[recorder], center_points=True)
    result = chain.invoke({"query": "All silver cars", "image_id": "5X3349"})
    assert 1 <= len(result.detections) <= 4 and len(result.segments) == len(result.detections)
    assert all(d.label == "All silver cars" and d.backend == "grounding-dino" for d in result.detections)
    for detection in result.detections:
        x0, y0, x1, y1 = detection.box
        assert 0 <= x0 <= x1 <= 140 and 0 <= y0 <= y1 <= 90
    assert all(s.mask.size == (90, 140) and s.label == "All silver cars" for s in result.segments)
    # The chain's masks are SAM's own answer to the detections' box + center prompts.
    direct = sam.segment(photo(), [VisualPrompt.from_detection(d, with_center=True) for d in result.detections])
    assert [s.mask for s in result.segments] == [masks[0].mask for masks in direct]
    encoder_calls = sam.encoder_calls
    again = chain.run("All silver cars. a person", image_id="5X3349")
    assert again.embedding_cache_hit is True and sam.encoder_calls == encoder_calls  # no second image encoding
    assert [e[0] for e in recorder.events] == ["detection", "segmentation"] * 2
    assert json.loads(json.dumps(again.to_dict()))["segments"][0]["mask"]["size"] == [90, 140]


@pytest.mark.gpu
def test_tiny_models_on_cuda_share_one_embedding_across_concurrent_requests(tiny_models):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from modchain.backends.hf.grounding_dino import GroundingDino
    from modchain.backends.hf.sam import Sam

    detector_dir, sam_dir = tiny_models
    sam = Sam(sam_dir, device="cuda", dtype="float16")
    chain = ImageChain.from_visual_pipeline(
        [GroundingDino(detector_dir, device="cuda", box_threshold=0.0, text_threshold=0.0, max_detections=3), sam],
        ImageStore({"5X3349": photo()}))
    results = chain.batch([{"query": q, "image_id": "5X3349"} for q in ("car", "person", "face", "car")])
    assert sam.encoder_calls == 1 and sum(r.embedding_cache_hit is False for r in results) == 1
    assert all(s.mask.size == (90, 140) for r in results for s in r.segments)


def test_batch_and_abatch_return_exceptions_per_input(store):
    chain = ImageChain.from_visual_pipeline([ColorDetector(), BoxFillSegmenter()], store)
    inputs = [{"query": "red square", "image_id": "5X3349"}, {"query": "red square", "image_id": "missing"},
              {"query": "red square"}]
    for results in (chain.batch(inputs, return_exceptions=True),
                    asyncio.run(chain.abatch(inputs, return_exceptions=True))):
        assert len(results[0].segments) == 1
        assert isinstance(results[1], UnknownImageError) and type(results[2]) is InputError
    with pytest.raises(UnknownImageError):
        chain.batch(inputs)


def exif_rotated_jpeg(path) -> Image.Image:
    """A 60x40 JPEG whose EXIF orientation (6) says: display rotated 90 degrees clockwise, i.e. 40x60."""
    stored = Image.fromarray(np.full((40, 60, 3), 255, dtype=np.uint8))
    stored.paste((255, 0, 0), (5, 5, 25, 15))  # red, top-left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, format="JPEG", exif=exif.tobytes(), quality=100, subsampling=0)
    from PIL import ImageOps

    return ImageOps.exif_transpose(Image.open(path)).convert("RGB")


def test_exif_rotated_images_give_masks_boxes_and_redactions_in_upright_pixels(tmp_path, tiny_models):
    from modchain.backends.hf.sam import Sam
    from modchain.visual_chain.redaction import redact
    from modchain.visual_chain.visualize import overlay

    upright = exif_rotated_jpeg(tmp_path / "cam.jpg")
    assert upright.size == (40, 60)
    store = ImageStore.from_folder(tmp_path)
    assert store.get("cam").size == (40, 60)
    box = (20.0, 4.0, 36.0, 28.0)  # upright pixels: the red patch after the rotation
    sam = Sam(tiny_models[1])
    result = ImageChain.from_visual_pipeline([sam], store).run(image_id="cam", prompts=[{"box": box, "label": "x"}])
    assert result.image_size == (40, 60) and result.segments[0].mask.size == (60, 40)
    direct = sam.segment(upright, [VisualPrompt(box=box, label="x")])[0][0]
    assert result.segments[0].mask == direct.mask  # SAM saw the upright image, not the stored pixels
    # Redaction and overlays take the same file and agree with the result's (upright) size.
    region = redaction_mask(result)
    filled = np.asarray(redact(tmp_path / "cam.jpg", result, method="fill"))
    assert region.shape == (60, 40) and filled.shape == (60, 40, 3) and (filled[region] == 0).all()
    assert overlay(tmp_path / "cam.jpg", result).size == (40, 60)


def test_boxes_and_points_must_be_finite():
    inf, nan = float("inf"), float("nan")
    for box in ((0, 0, inf, 10), (-inf, 0, 5, 5), (nan, 0, 5, 5)):
        with pytest.raises(ValueError, match="finite|x1 >= x0"):
            Detection(label="car", score=0.5, box=box)
        with pytest.raises(ValueError):
            VisualPrompt(box=box)
    with pytest.raises(ValueError, match="finite"):
        VisualPrompt(points=((1.0, inf),))
    # json.loads reads 1e999 as inf: a request's prompts are refused as bad input, not crashed on later.
    with pytest.raises(InputError):
        ImageChain.from_visual_pipeline([BoxFillSegmenter()]).run(image=scene(), prompts=json.loads(
            '[{"box": [0, 0, 1e999, 5]}]'))
