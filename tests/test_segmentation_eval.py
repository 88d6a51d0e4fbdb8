"""Segmentation evaluation: size buckets (exact edges), COCO polygons and RLE, pixel precision/recall, the CLI."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modchain.cli import main
from modchain.core.errors import InputError
from modchain.visual_chain.evaluation import (
    CocoDataset,
    SegmentationEvaluator,
    evaluate_predictions,
    rasterize_segmentation,
    size_bucket,
)
from modchain.visual_chain.masks import encode_mask
from modchain.visual_chain.results import ImageChainResult
from modchain.visual_chain.types import Segment


@given(st.integers(0, 10**7), st.integers(1, 10**7))
def test_size_bucket_matches_the_exact_fractions(area, image_area):
    share = Fraction(area, image_area)
    expected = "small" if share < Fraction(11, 10000) else "large" if share > Fraction(1, 100) else "medium"
    assert size_bucket(area, image_area) == expected


def test_size_bucket_edges_on_a_1280x720_frame():
    frame = 1280 * 720
    assert size_bucket(32 * 32 - 12, frame) == "small"  # 1012 px = 0.1098%
    assert size_bucket(1014, frame) == "medium"  # 0.11003%: 0.11% is medium
    assert size_bucket(frame // 100, frame) == "medium"  # exactly 1%
    assert size_bucket(frame // 100 + 1, frame) == "large"
    with pytest.raises(InputError):
        size_bucket(1, 0)


def rect(x0, y0, x1, y1, h=100, w=100):
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def dataset():
    face_rle = encode_mask(rect(60, 60, 65, 65)).to_coco(compressed=False)  # 25 px: 0.25%, medium
    tiny_rle = encode_mask(rect(80, 80, 83, 83)).to_coco()  # 9 px: 0.09%, small, compressed counts
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 100}],
        "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "Face"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 2, "segmentation": face_rle, "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 2, "segmentation": tiny_rle, "iscrowd": 0},
        ],
    }


def test_polygons_rasterize_as_the_coco_tools_do_and_rle_decodes():
    polygon = rasterize_segmentation([[10, 10, 30, 10, 30, 30, 10, 30]], 100, 100)
    assert (polygon == rect(10, 10, 30, 30)).all()  # COCO: vertices at 10 and 30 cover pixels 10..29
    triangle = rasterize_segmentation([[0, 0, 9, 0, 0, 9]], 10, 10)  # PIL's fill, outline included, drew 55
    assert triangle.sum() == 36 and triangle[0, :8].all() and not triangle[0, 8] and not triangle[8, 0]
    parts = rasterize_segmentation([[0, 0, 4, 0, 4, 4, 0, 4], [2, 2, 6, 2, 6, 6, 2, 6]], 10, 10)
    assert parts.sum() == 16 + 16 - 4  # an object in parts: their union
    assert rasterize_segmentation(dataset()["annotations"][2]["segmentation"], 100, 100).sum() == 9
    with pytest.raises(InputError):
        rasterize_segmentation([[1, 2, 3]], 10, 10)
    with pytest.raises(InputError):
        rasterize_segmentation({"size": [5, 5], "counts": [25]}, 10, 10)


def predictions():
    car = rect(10, 10, 30, 20) | rect(0, 50, 50, 51)  # 200 px on the car + 50 px of road
    face = rect(60, 60, 65, 65)
    stray = rect(0, 90, 2, 92)  # 4 px on nothing: a small false positive
    return [(1, car), (2, face), (2, stray)]


def test_pixel_precision_and_recall_per_size_bucket():
    evaluator = SegmentationEvaluator(CocoDataset.load(dataset()))
    evaluator.add(1, predictions())
    report = evaluator.report().to_dict()["buckets"]
    assert report["large"] == {"objects": 1, "predictions": 1, "pixel_precision": 0.8, "pixel_recall": 0.5,
                               "gt_pixels": 400, "predicted_pixels": 250}
    assert report["medium"]["pixel_precision"] == 1.0 and report["medium"]["pixel_recall"] == 1.0
    assert report["small"]["objects"] == 1 and report["small"]["pixel_recall"] == 0.0
    assert report["small"]["predictions"] == 1 and report["small"]["pixel_precision"] == 0.0
    assert report["all"]["objects"] == 3 and report["all"]["pixel_recall"] == pytest.approx(225 / 434)
    assert report["all"]["pixel_precision"] == pytest.approx(225 / 279)


def test_chain_results_match_categories_by_label_and_crowds_are_not_objects():
    data = dataset()
    data["annotations"].append({"id": 4, "image_id": 1, "category_id": 1, "iscrowd": 1,
                                "segmentation": encode_mask(rect(0, 50, 50, 52)).to_coco()})
    evaluator = SegmentationEvaluator(CocoDataset.load(data))
    segments = tuple(Segment(mask=encode_mask(m), score=0.9, prompt_index=i, label=label)
                     for i, (label, m) in enumerate([("CAR", predictions()[0][1]), ("face", rect(60, 60, 65, 65)),
                                                     ("dog", rect(0, 0, 100, 100))]))
    evaluator.add_result(1, ImageChainResult(query="car. face. dog", image_size=(100, 100), segments=segments))
    report = evaluator.report().to_dict()["buckets"]
    assert report["all"]["objects"] == 3  # the crowd region is not an object to recall
    assert report["large"]["pixel_precision"] == 1.0  # road pixels inside the crowd region are not wrong
    assert report["all"]["predictions"] == 2  # "dog" names no category


def write_files(tmp_path):
    annotations = tmp_path / "val.json"
    annotations.write_text(json.dumps(dataset()))
    rows = [{"image_id": 1, "category_id": c, "segmentation": encode_mask(m).to_coco(), "score": s}
            for (c, m), s in zip(predictions(), (0.9, 0.8, 0.1))]
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(rows))
    return annotations, preds, rows


def test_evaluate_predictions_filters_scores_and_rejects_unknown_images(tmp_path):
    _, _, rows = write_files(tmp_path)
    coco = CocoDataset.load(dataset())
    report = evaluate_predictions(coco, rows, min_score=0.5).to_dict()["buckets"]
    assert report["small"]["predictions"] == 0 and report["small"]["pixel_precision"] is None
    with pytest.raises(InputError):
        evaluate_predictions(coco, [{**rows[0], "image_id": 7}])
    with pytest.raises(InputError):
        evaluate_predictions(coco, [{"image_id": 1, "category_id": 1, "segmentation": [[1, 2]]}])
    with pytest.raises(InputError):
        CocoDataset.load({"images": [], "categories": [], "annotations": [{"image_id": 1, "category_id": 3}]})


def test_cli_prints_the_table_and_json(tmp_path, capsys):
    annotations, preds, _ = write_files(tmp_path)
    assert main(["eval", "segmentation", "--annotations", str(annotations), "--predictions", str(preds)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["bucket", "objects", "preds", "pixel", "precision", "pixel", "recall"]
    assert table[1].split() == ["small", "1", "1", "0.000", "0.000"]
    assert table[3].split() == ["large", "1", "1", "0.800", "0.500"]
    assert main(["eval", "segmentation", "--annotations", str(annotations), "--predictions", str(preds),
                 "--json", "--min-score", "0.5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 1 and report["buckets"]["small"]["predictions"] == 0
    assert main(["eval", "segmentation", "--annotations", str(annotations)]) == 2  # no --images, no --predictions
    assert "--images" in capsys.readouterr().err


def test_cli_runs_tiny_grounding_dino_and_sam_over_an_image_folder(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from PIL import Image

    from modchain.testing.tiny_visual_models import save_tiny_grounding_dino, save_tiny_sam

    detector = save_tiny_grounding_dino(tmp_path / "gd")
    sam = save_tiny_sam(tmp_path / "sam")
    (tmp_path / "images").mkdir()
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (90, 140, 3), dtype=np.uint8)).save(
        tmp_path / "images" / "frame.png")
    coco = {"images": [{"id": 7, "file_name": "frame.png", "width": 140, "height": 90}],
            "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0,
                             "segmentation": [[10, 10, 60, 10, 60, 80, 10, 80]]}]}
    (tmp_path / "val.json").write_text(json.dumps(coco))
    code = main(["eval", "segmentation", "--annotations", str(tmp_path / "val.json"), "--images",
                 str(tmp_path / "images"), "--detector", "grounding-dino", "--detector-model", detector,
                 "--model", sam, "--device", "cpu", "--box-threshold", "0", "--text-threshold", "0", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 1 and report["buckets"]["large"]["objects"] == 1
    assert report["buckets"]["all"]["predictions"] >= 1  # random weights: some masks, labelled by category
    recall = report["buckets"]["large"]["pixel_recall"]
    assert recall is not None and 0.0 <= recall <= 1.0


def test_malformed_annotations_and_unknown_categories_are_input_errors():
    for segmentation in ({"size": [100, 100], "counts": [5]}, {"size": "big", "counts": "x"},
                         [[1, 2, "a", 4, 5, 6]], None):
        data = dataset()
        data["annotations"][0]["segmentation"] = segmentation
        with pytest.raises(InputError):
            SegmentationEvaluator(CocoDataset.load(data)).add(1, [])
    data = dataset()
    del data["annotations"][0]["segmentation"]
    with pytest.raises(InputError, match="no segmentation"):
        SegmentationEvaluator(CocoDataset.load(data)).add(1, [])
    rows = [{"image_id": 1, "category_id": 9, "segmentation": encode_mask(rect(0, 0, 5, 5)).to_coco(), "score": 1}]
    with pytest.raises(InputError, match="category id 9"):
        evaluate_predictions(CocoDataset.load(dataset()), rows)


def test_cli_limit_must_be_positive(tmp_path, capsys):
    annotations, preds, _ = write_files(tmp_path)
    for limit in ("0", "-1"):  # before: 0 evaluated everything, -1 silently dropped the last image
        assert main(["eval", "segmentation", "--annotations", str(annotations), "--predictions", str(preds),
                     "--limit", limit]) == 2
        assert "--limit" in capsys.readouterr().err
    assert main(["eval", "segmentation", "--annotations", str(annotations), "--predictions", str(preds),
                 "--limit", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 1


def test_images_without_predictions_count_their_objects_as_missed():
    data = dataset()
    data["images"].append({"id": 2, "file_name": "b.png", "width": 100, "height": 100})
    data["annotations"].append({"id": 9, "image_id": 2, "category_id": 1, "iscrowd": 0,
                                "segmentation": encode_mask(rect(0, 0, 40, 40)).to_coco()})
    rows = [{"image_id": 1, "category_id": c, "segmentation": encode_mask(m).to_coco()} for c, m in predictions()]
    both = evaluate_predictions(CocoDataset.load(data), rows).to_dict()
    alone = evaluate_predictions(CocoDataset.load(dataset()), rows).to_dict()
    assert both["images"] == 2 and both["buckets"]["large"]["objects"] == 2
    assert both["buckets"]["large"]["gt_pixels"] == alone["buckets"]["large"]["gt_pixels"] + 1600
    assert both["buckets"]["large"]["pixel_recall"] == pytest.approx(200 / (400 + 1600))
    assert both["buckets"]["large"]["pixel_precision"] == alone["buckets"]["large"]["pixel_precision"]
