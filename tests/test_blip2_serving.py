"""The BLIP-2 SageMaker handler, its local server, and the SageMaker backend end to end through boto3.

A tiny random BLIP-2 of the real architecture is served by ``Blip2Handler`` behind ``LocalEndpoint``; a real
boto3 ``sagemaker-runtime`` client (``endpoint_url``) drives ``Blip2SageMakerVQA``, whose answers must equal
``Blip2LocalVQA``'s on the same model and image.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
PIL_Image = pytest.importorskip("PIL.Image")
pytest.importorskip("tokenizers")
pytest.importorskip("boto3")

from modchain.backends.aws.sagemaker_blip2 import Blip2SageMakerVQA  # noqa: E402
from modchain.backends.hf.blip2 import Blip2LocalVQA  # noqa: E402
from modchain.core.errors import BackendError, ConfigurationError  # noqa: E402
from modchain.serving import Blip2Handler, InvocationError, LocalEndpoint  # noqa: E402
from modchain.serving import blip2_handler as handler_mod  # noqa: E402
from modchain.testing.clients import local_client  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from tiny_blip2 import save_tiny_blip2  # noqa: E402

QUESTIONS = ["Is there a weapon in the image?", "Does the image show nudity?", "Are there drugs?"]
TOKENS = 6


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_blip2(tmp_path_factory.mktemp("tiny-blip2-serving"), "opt")


@pytest.fixture(scope="module")
def images():
    import numpy as np

    rng = np.random.default_rng(1)
    return [PIL_Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)) for _ in range(2)]


def png_b64(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def handler(model_dir):
    return Blip2Handler(model_dir, device="cpu", max_new_tokens=TOKENS).load()


@pytest.fixture(scope="module")
def local(model_dir):
    return Blip2LocalVQA(model_dir, device="cpu", max_new_tokens=TOKENS)


@pytest.fixture(scope="module")
def endpoint(handler):
    with LocalEndpoint(handler, endpoint_name="blip2") as ep:
        yield ep


@pytest.fixture(scope="module")
def client(endpoint):
    return local_client("sagemaker-runtime", endpoint.url)


def invoke(handler, payload, accept="application/json"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return handler.invocations(body, "application/json", accept)


# ------------------------------------------------------------------------------------------- handler


def test_handler_batched_contract_one_vision_pass(handler, local, images):
    before = handler.vqa.images_encoded
    out, ctype = invoke(handler, {"image": png_b64(images[0]), "questions": QUESTIONS, "caption": True})
    assert ctype == "application/json"
    data = json.loads(out)
    assert handler.vqa.images_encoded - before == 1 and data["vision_passes"] == 1
    expected = local.answer(images[0], QUESTIONS)[0]
    assert data["answers"] == [a for _, a in expected.answers]
    assert data["caption"] == expected.caption
    # full prompt strings give the same answers as questions wrapped in the template
    prompts = [f"Question: {q} Answer:" for q in QUESTIONS]
    again = json.loads(invoke(handler, {"image": png_b64(images[0]), "prompts": prompts, "caption": True})[0])
    assert again["answers"] == data["answers"]


def test_handler_several_images_and_parameters(handler, local, images):
    before = handler.vqa.vision_calls
    out, _ = invoke(handler, {"images": [png_b64(i) for i in images], "questions": QUESTIONS[:2],
                              "parameters": {"max_new_tokens": 2}})
    data = json.loads(out)
    assert handler.vqa.vision_calls - before == 1 and data["vision_passes"] == 2
    assert [r["caption"] for r in data["results"]] == [None, None]
    assert all(len(r["answers"]) == 2 for r in data["results"])
    assert handler.vqa.max_new_tokens == TOKENS  # per-request parameters do not stick


def test_handler_seed_contract_text_or_json(handler, local, images):
    prompt = f"Question: {QUESTIONS[0]} Answer:"
    expected = local.answer_one_by_one(images[0], QUESTIONS[:1], caption=False)[0].answers[0][1]
    body = {"image": png_b64(images[0]), "prompt": prompt, "parameters": {"max_new_tokens": TOKENS}}
    text, ctype = invoke(handler, body, accept="text/plain")
    assert ctype == "text/plain" and text.decode() == expected
    as_json, ctype = invoke(handler, body, accept="application/json")
    assert ctype == "application/json" and json.loads(as_json) == expected
    caption, _ = invoke(handler, {"image": png_b64(images[0])}, accept=None)
    assert caption.decode() == local.answer(images[0], [], caption=True)[0].caption


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (json.dumps({"prompt": "Question: x Answer:"}).encode(), "missing 'image'"),
    (json.dumps({"image": "@@@notbase64@@@", "prompt": "x"}).encode(), "not valid base64"),
    (json.dumps({"image": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode(), "prompt": "x"}).encode(),
     "cannot be decoded"),
    (json.dumps({"image": base64.b64encode(b"hello world, not an image" * 4).decode(), "prompt": "x"}).encode(),
     "not an image"),
    (json.dumps({"image": "/etc/passwd", "prompt": "x"}).encode(), "(8 bytes) is not an image"),  # never a path
    (json.dumps({"image": "AAAA", "prompts": ["x"], "parameters": {"evil": 1}}).encode(), "unsupported parameter"),
    (json.dumps({"image": "AAAA", "prompts": []}).encode(), "nothing to answer"),
    (json.dumps({"image": "AAAA", "prompts": ["a"], "questions": ["b"]}).encode(), "not both"),
])
def test_handler_bad_requests_are_400_without_the_image(handler, body, fragment):
    with pytest.raises(InvocationError) as info:
        handler.invocations(body, "application/json", "application/json")
    assert info.value.status == 400
    assert fragment in info.value.message
    assert "AAAA" not in info.value.message and "notbase64" not in info.value.message
    assert json.loads(info.value.body())["message"] == info.value.message


def test_sagemaker_toolkit_functions(model_dir, images):
    model = handler_mod.model_fn(model_dir)
    assert model.ping()
    data = handler_mod.input_fn(json.dumps({"image": png_b64(images[0]), "questions": QUESTIONS[:1]}),
                                "application/json")
    body, ctype = handler_mod.output_fn(handler_mod.predict_fn(data, model), "application/json")
    assert ctype == "application/json" and len(json.loads(body)["answers"]) == 1
    with pytest.raises(InvocationError):
        handler_mod.predict_fn(handler_mod.input_fn(b"{}", "application/json"), model)


def test_handler_configuration_errors(tmp_path):
    with pytest.raises(ConfigurationError):
        Blip2Handler(None)
    with pytest.raises(ConfigurationError):
        Blip2Handler(str(tmp_path / "missing")).load()
    assert not Blip2Handler(str(tmp_path / "missing")).ping()


# -------------------------------------------------------------------------------------- HTTP server


def http(url, body=None, headers=None, method=None):
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_server_ping_and_container_invocations(endpoint, images):
    assert http(endpoint.url + "/ping")[0] == 200
    body = json.dumps({"image": png_b64(images[1]), "questions": QUESTIONS, "caption": True}).encode()
    status, headers, out = http(endpoint.url + "/invocations", body,
                                {"Content-Type": "application/json", "Accept": "application/json",
                                 "X-Amzn-SageMaker-Custom-Attributes": "trace=1"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "vision_passes=1"
    assert len(json.loads(out)["answers"]) == len(QUESTIONS)
    status, _, out = http(endpoint.url + "/invocations", b"{broken", {"Content-Type": "application/json"})
    assert status == 400 and "not valid JSON" in json.loads(out)["message"]
    assert http(endpoint.url + "/nope")[0] == 404
    status, _, out = http(endpoint.url + "/invocations", b"x", {"Content-Type": "text/csv"})
    assert status == 415


def test_ping_is_503_until_loaded(model_dir):
    with LocalEndpoint(Blip2Handler(model_dir), load=False) as ep:
        assert http(ep.url + "/ping")[0] == 503


# --------------------------------------------------------------------------------- end to end (boto3)


def test_boto3_batched_contract_equals_local_with_one_vision_pass_per_image(client, handler, local, images):
    vqa = Blip2SageMakerVQA("blip2", client, contract="batched", image_format="PNG")
    before = handler.vqa.images_encoded
    remote = vqa.answer(images, QUESTIONS)
    assert handler.vqa.images_encoded - before == len(images)  # one vision pass per image on the server
    assert vqa.requests_sent == len(images)
    expected = local.answer(images, QUESTIONS)
    for r, e in zip(remote, expected):
        assert r.answers == e.answers and r.caption == e.caption and r.vision_passes == 1
    no_caption = vqa.answer(images[0], QUESTIONS[:1], caption=False)[0]
    assert no_caption.caption is None and no_caption.answers == local.answer(images[0], QUESTIONS[:1],
                                                                            caption=False)[0].answers


def test_boto3_seed_contract_equals_one_by_one(client, handler, local, images):
    vqa = Blip2SageMakerVQA("blip2", client, contract="seed", image_format="PNG", max_concurrency=4,
                            parameters={"max_new_tokens": TOKENS})
    before = handler.vqa.images_encoded
    remote = vqa.answer(images[0], QUESTIONS)[0]
    assert vqa.requests_sent == len(QUESTIONS) + 1
    assert handler.vqa.images_encoded - before == len(QUESTIONS) + 1  # the image is re-encoded every call
    slow = local.answer_one_by_one(images[0], QUESTIONS)[0]
    assert remote.answers == slow.answers and remote.caption == slow.caption


def test_boto3_jpeg_path_and_errors(client, endpoint, local, images):
    vqa = Blip2SageMakerVQA("blip2", client)  # JPEG: compare with the local model on the decoded JPEG
    buffer = io.BytesIO()
    images[0].save(buffer, format="JPEG", quality=95)
    decoded = PIL_Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    assert vqa.answer(images[0], QUESTIONS[:1])[0].answers == local.answer(decoded, QUESTIONS[:1])[0].answers
    with pytest.raises(BackendError) as info:  # the container's 400 comes back as SageMaker's ModelError
        Blip2SageMakerVQA("blip2", client, parameters={"bogus": 1}).answer(images[0], QUESTIONS[:1])
    assert "ModelError" in str(info.value)
    with pytest.raises(BackendError):  # unknown endpoint name: ValidationError
        Blip2SageMakerVQA("other", client).answer(images[0], QUESTIONS[:1])
    with pytest.raises(ConfigurationError):
        Blip2SageMakerVQA("blip2", client, contract="nope")


# -------------------------------------------------------------------------------------------- CLI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_serve_blip2_answers_ping(model_dir):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "modchain.cli", "serve", "blip2", "--model", model_dir,
                             "--port", str(port), "--device", "cpu"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 25
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = http(f"http://127.0.0.1:{port}/ping")[0]
                if status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        assert status == 200, proc.stderr.read() if proc.poll() is not None else "no answer"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serving_and_backend_imports_stay_light():
    code = ("import sys, modchain.serving, modchain.backends.aws.sagemaker_blip2\n"
            "print([m for m in ('torch', 'transformers', 'boto3', 'botocore', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
