"""``modchain eval segmentation``: pixel precision/recall by object size on a COCO-format dataset.

    modchain eval segmentation --annotations val.json --images val/ --detector grounding-dino --segmenter sam
    modchain eval segmentation --annotations val.json --predictions preds.json      # no models needed

With models, every image of the annotation file is loaded from ``--images`` (``file_name`` under it) and
run through an :class:`~modchain.visual_chain.chain.ImageChain` with the dataset's category names as the query
(``"car. person."``); a segment counts for the category its label names. With ``--predictions`` (a COCO
results file: ``[{"image_id", "category_id", "segmentation": RLE, "score"}]``) the masks are scored as given.
Prints the table (``--json``: one JSON object).
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any, TextIO

from modchain.core.errors import ConfigurationError

#: ``--detector`` / ``--segmenter`` kinds -> (module, class) in modchain.backends, imported when used.
DETECTORS = {"grounding-dino": ("modchain.backends.hf.grounding_dino", "GroundingDino"),
             "owlv2": ("modchain.backends.hf.owlv2", "Owlv2")}
SEGMENTERS = {"sam": ("modchain.backends.hf.sam", "Sam")}


def add_parser(tasks: Any) -> argparse.ArgumentParser:
    """Add ``segmentation`` to the ``modchain eval`` task subparsers."""
    seg = tasks.add_parser("segmentation", help="masks vs COCO ground truth, pixel precision/recall by size",
                           description=__doc__.split("\n\n", 1)[0].split(": ", 1)[-1],
                           epilog="Buckets: small < 0.11%% of the image area, medium 0.11-1%%, large > 1%%.")
    seg.add_argument("--annotations", required=True, help="COCO annotation JSON (polygons or RLE)")
    seg.add_argument("--images", help="folder holding the images' file_name paths (needed without --predictions)")
    seg.add_argument("--predictions", help="COCO results JSON with RLE masks: evaluate these, no models")
    seg.add_argument("--detector", default="grounding-dino", choices=sorted(DETECTORS),
                     help="detector kind (default grounding-dino)")
    seg.add_argument("--detector-model", help="detector model id or local directory (default: the kind's default)")
    seg.add_argument("--segmenter", default="sam", choices=sorted(SEGMENTERS), help="segmenter kind (default sam)")
    seg.add_argument("--model", "--segmenter-model", dest="segmenter_model",
                     help="segmenter model id or local directory (default facebook/sam-vit-base)")
    seg.add_argument("--device", help="torch device (cpu, cuda, ...); default: cuda when available")
    seg.add_argument("--box-threshold", type=float, help="detector box threshold")
    seg.add_argument("--text-threshold", type=float, help="detector text threshold (Grounding DINO)")
    seg.add_argument("--min-score", type=float, default=0.0, help="ignore predictions scored below this")
    seg.add_argument("--limit", type=int, help="evaluate the first N images only (by id)")
    seg.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return seg


def _build(kinds: dict[str, tuple[str, str]], kind: str, model: str | None, **options: Any) -> Any:
    module_name, class_name = kinds[kind]
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"the {kind} backend is not available ({type(exc).__name__})") from None
    options = {k: v for k, v in options.items() if v is not None}
    return cls(model, **options) if model else cls(**options)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from modchain.visual_chain.evaluation import CocoDataset, SegmentationEvaluator, evaluate_predictions

    if args.limit is not None and args.limit < 1:
        raise ConfigurationError("--limit must be at least 1")
    dataset = CocoDataset.load(args.annotations)
    if args.limit:
        keep = sorted(dataset.images)[: args.limit]
        dataset.images = {i: dataset.images[i] for i in keep}
    if args.predictions:
        try:
            predictions = json.loads(Path(args.predictions).read_text(encoding="utf-8"))
        except ValueError:
            raise ConfigurationError("--predictions is not a JSON file") from None
        if not isinstance(predictions, list):
            raise ConfigurationError("--predictions must hold a JSON list of COCO results")
        if args.limit:
            predictions = [p for p in predictions if isinstance(p, dict) and p.get("image_id") in dataset.images]
        report = evaluate_predictions(dataset, predictions, min_score=args.min_score)
    else:
        if not args.images:
            raise ConfigurationError("give --images DIR (or --predictions FILE to score masks without models)")
        report = _run_models(args, dataset, SegmentationEvaluator(dataset))
    if args.json:
        out.write(json.dumps(report.to_dict()) + "\n")
    else:
        out.write(report.table() + "\n")
    return 0


def _run_models(args: argparse.Namespace, dataset: Any, evaluator: Any) -> Any:
    from modchain.visual_chain.chain import ImageChain
    from modchain.visual_chain.image_store import ImageStore

    root = Path(args.images)
    if not root.is_dir():
        raise ConfigurationError(f"--images is not a folder: {root}")
    store = ImageStore({str(i): root / info["file_name"] for i, info in dataset.images.items()},
                       embedding_cache_size=1)
    detector = _build(DETECTORS, args.detector, args.detector_model, device=args.device,
                      box_threshold=args.box_threshold,
                      **({"text_threshold": args.text_threshold} if args.detector == "grounding-dino" else {}))
    segmenter = _build(SEGMENTERS, args.segmenter, args.segmenter_model, device=args.device)
    chain = ImageChain.from_visual_pipeline([detector, segmenter], store)
    query = list(dataset.categories.values())  # whole names: "st. bernard" is one phrase, not two
    for image_id in sorted(dataset.images):
        result = chain.run(query, image_id=str(image_id))
        evaluator.add_result(image_id, result.model_copy(update={
            "segments": tuple(s for s in result.segments if _score(s) >= args.min_score)}))
    return evaluator.report()


def _score(segment: Any) -> float:
    """A segment's detection score (how sure the detector was), or SAM's IoU for prompt-only masks."""
    return segment.detection_score if segment.detection_score is not None else segment.score
