"""The visual SageMaker handler behind LocalEndpoint, driven by real boto3 clients through the SageMaker backend.

Tiny random Grounding DINO + SAM of the real architectures are served by ``VisualHandler``; the remote
answers must equal the local chain's on the same models and image (PNG on the wire: lossless).
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("boto3")
from PIL import Image  # noqa: E402

from modchain.backends.aws.sagemaker_visual import SageMakerDetector, SageMakerSegmenter  # noqa: E402
from modchain.backends.hf.grounding_dino import GroundingDino  # noqa: E402
from modchain.backends.hf.sam import Sam  # noqa: E402
from modchain.core.errors import BackendError  # noqa: E402
from modchain.serving import InvocationError, LocalEndpoint  # noqa: E402
from modchain.serving import visual_handler as handler_mod  # noqa: E402
from modchain.serving.visual_handler import VisualHandler  # noqa: E402
from modchain.testing.clients import local_client  # noqa: E402
from modchain.testing.tiny_visual_models import save_tiny_grounding_dino, save_tiny_sam  # noqa: E402
from modchain.visual_chain.chain import ImageChain  # noqa: E402
from modchain.visual_chain.image_store import ImageStore  # noqa: E402
from modchain.visual_chain.masks import encode_mask  # noqa: E402
from modchain.visual_chain.sagemaker_chain import SageMakerVisualChain  # noqa: E402
from modchain.visual_chain.types import VisualPrompt  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-visual-serving")
    save_tiny_grounding_dino(root / "detector")
    save_tiny_sam(root / "segmenter")
    return root


def stages(model_dir):
    return (GroundingDino(str(model_dir / "detector"), box_threshold=0.0, text_threshold=0.0, max_detections=3),
            Sam(str(model_dir / "segmenter")))


@pytest.fixture(scope="module")
def endpoint(model_dir):
    handler = VisualHandler(*stages(model_dir))
    with LocalEndpoint(handler, endpoint_name="visual") as ep:
        yield ep


@pytest.fixture(scope="module")
def client(endpoint):
    return local_client("sagemaker-runtime", endpoint.url)


def frame() -> Image.Image:
    return Image.fromarray(np.random.default_rng(3).integers(0, 256, (72, 112, 3), dtype=np.uint8))


def b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_whole_pipeline_in_one_request_equals_the_local_chain(model_dir, client):
    local = ImageChain.from_visual_pipeline(list(stages(model_dir))).run("silver car. person", image=frame())
    remote_chain = SageMakerVisualChain("visual", client)
    remote = remote_chain.run("silver car. person", image=frame())
    assert remote_chain.requests_sent == 1
    assert remote.image_size == (112, 72) and remote.queries == ("silver car", "person")
    assert [(d.label, d.box) for d in remote.detections] == [(d.label, d.box) for d in local.detections]
    assert [d.score for d in remote.detections] == pytest.approx([d.score for d in local.detections])
    assert [(s.mask, s.label, s.prompt_index) for s in remote.segments] == \
        [(s.mask, s.label, s.prompt_index) for s in local.segments]
    assert remote.segmented_detections == local.segmented_detections == len(local.detections)
    assert remote.timings[0].stage == "remote"
    assert remote_chain.run("person", image=frame()).embedding_cache_hit is True  # endpoint cached the embedding


def test_detector_and_segmenter_protocols_over_the_endpoint(model_dir, client):
    detector, segmenter = SageMakerDetector("visual", client), SageMakerSegmenter("visual", client)
    store = ImageStore({"5X3349": frame()})
    remote = ImageChain.from_visual_pipeline([detector, segmenter], store).run("All silver cars", image_id="5X3349")
    local = ImageChain.from_visual_pipeline(list(stages(model_dir))).run("All silver cars", image=frame())
    assert [s.mask for s in remote.segments] == [s.mask for s in local.segments]
    assert all(d.backend == "visual-sagemaker:visual" for d in remote.detections)
    assert detector.requests_sent == 1 and segmenter.requests_sent == 1
    # Every prompt form; multimask answers three candidates per prompt.
    low_res = encode_mask(np.pad(np.ones((10, 10), bool), ((5, 17), (5, 17))))
    prompts = [VisualPrompt.point(20, 30), VisualPrompt(points=((10, 10), (50, 40)), point_labels=(1, 0)),
               VisualPrompt(box=(5, 5, 60, 50), points=((30, 30),)), VisualPrompt(mask=low_res)]
    masks = segmenter.segment(frame(), prompts)
    assert [len(m) for m in masks] == [3, 1, 1, 1] and all(s.mask.size == (72, 112) for m in masks for s in m)
    sam = stages(model_dir)[1]
    assert [s.mask for m in masks for s in m] == [s.mask for m in sam.segment(frame(), prompts) for s in m]


def test_bad_requests_answer_400_and_map_to_backend_errors(endpoint, client):
    handler = endpoint.handler
    image = b64(frame())
    cases = [
        (b"not json", "application/json", "not valid JSON", 400),
        (json.dumps({"image": image}).encode(), "application/json", "nothing to do", 400),
        (json.dumps({"image": image, "query": " . "}).encode(), "application/json", "empty", 400),
        (json.dumps({"image": "@@@", "query": "car"}).encode(), "application/json", "base64", 400),
        (json.dumps({"image": image, "query": "car", "path": "/etc/passwd"}).encode(), "application/json", "unknown", 400),
        (json.dumps({"image": image, "prompts": [{"points": []}]}).encode(), "application/json", "invalid prompt", 400),
        (json.dumps({"image": image, "query": "car", "parameters": {"max_detections": "3"}}).encode(),
         "application/json", "wrong type", 400),
        (b"{}", "text/csv", "unsupported content type", 415),
    ]
    for body, ctype, message, status in cases:
        with pytest.raises(InvocationError, match=message) as info:
            handler.invocations(body, ctype)
        assert info.value.status == status
    with pytest.raises(InvocationError, match="larger than"):
        VisualHandler(*handler_stages(handler), max_image_bytes=100).parse(
            json.dumps({"image": image, "query": "car"}).encode(), "application/json")
    with pytest.raises(BackendError, match="ModelError"):
        from modchain.backends.aws.common import call_aws

        call_aws("visual-sagemaker", "InvokeEndpoint", client.invoke_endpoint, EndpointName="visual",
                 Body=json.dumps({"image": image}).encode(), ContentType="application/json")


def handler_stages(handler):
    return handler.detector, handler.segmenter


def test_handler_without_a_segmenter_serves_boxes_only(model_dir):
    detector, _ = stages(model_dir)
    handler = VisualHandler(detector).load()
    out, ctype = handler.invocations(json.dumps({"image": b64(frame()), "query": "person"}).encode())
    answer = json.loads(out)
    assert ctype == "application/json" and answer["segments"] == [] and len(answer["detections"]) >= 1
    with pytest.raises(InvocationError, match="no segmenter"):
        handler.invocations(json.dumps({"image": b64(frame()), "prompts": [{"box": [0, 0, 5, 5]}]}).encode())


def test_sagemaker_toolkit_functions(model_dir):
    model = handler_mod.model_fn(str(model_dir))
    assert model.ping()
    body = json.dumps({"image": b64(frame()), "query": "person", "parameters": {"max_detections": 1}})
    deferred = handler_mod.input_fn(body, "application/json")  # toolkit order: no model yet
    prediction = handler_mod.predict_fn(deferred, model)
    out, ctype = handler_mod.output_fn(prediction, "application/json")
    answer = json.loads(out)
    assert ctype == "application/json" and len(answer["segments"]) == 1 and answer["segmented_detections"] == 1
    assert len(answer["detections"]) >= 1  # max_detections caps what is segmented; every box comes back
    with pytest.raises(InvocationError):
        handler_mod.output_fn(prediction, "text/csv")



def test_modchain_serve_visual_arguments(model_dir):
    # The command builds VisualHandler(detector_model=..., segmenter_model=...) as model_fn above does; serving
    # it in a subprocess costs a cold torch import (10+ s on a loaded CI box), so only the wiring is checked.
    from modchain.cli import _parser

    args = _parser().parse_args(["serve", "visual", "--segmenter-model", str(model_dir / "segmenter"), "--port", "0"])
    assert (args.command, args.model_kind, args.detector_model, args.port) == ("serve", "visual", None, 0)
    handler = VisualHandler(detector_model=args.detector_model, segmenter_model=args.segmenter_model).load()
    out, _ = handler.invocations(json.dumps({"image": b64(frame()), "prompts": [{"box": [0, 0, 50, 40]}]}).encode())
    assert [s["prompt_index"] for s in json.loads(out)["segments"]] == [0]


def test_prompt_size_limits_refuse_before_any_decoding(endpoint):
    handler = endpoint.handler
    image = b64(frame())
    gigapixel = {"size": [40000, 40000], "counts": [40000 * 40000]}  # a few bytes of JSON, 1.6e9 pixels decoded
    with pytest.raises(InvocationError, match="larger than the image") as info:
        handler.parse(json.dumps({"image": image, "prompts": [{"mask": gigapixel}]}).encode(), "application/json")
    assert info.value.status == 413
    many = {"points": [[1, 1]] * (handler_mod.MAX_POINTS_PER_PROMPT + 1)}
    with pytest.raises(InvocationError, match="points per prompt"):
        handler.parse(json.dumps({"image": image, "prompts": [many]}).encode(), "application/json")
    low_res = {"size": [256, 256], "counts": [256 * 256]}  # SAM's own low-res mask input is fine
    assert handler.parse(json.dumps({"image": image, "prompts": [{"mask": low_res}]}).encode(), None)["prompts"]
