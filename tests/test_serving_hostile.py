"""The local SageMaker endpoint under hostile requests (issue 14, "the local endpoint").

Framing attacks go over raw sockets to a real :class:`LocalEndpoint`; payload attacks through an unmodified
boto3 ``sagemaker-runtime`` client, as callers reach a SageMaker endpoint. Every refusal must be a typed 4xx
that quotes nothing of the request, nothing of the request may reach the logs or stderr, and the server must
answer the next good request. A property test throws random bytes and random JSON at it.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket

import pytest

pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image  # noqa: E402

from modchain.serving import server as server_mod  # noqa: E402
from modchain.serving.server import LocalEndpoint  # noqa: E402
from modchain.serving.stable_diffusion_handler import FIELDS, StableDiffusionHandler  # noqa: E402
from modchain.serving.toolkit import MAX_JSON_DEPTH, MAX_PROMPT_CHARS, InvocationError, load_json  # noqa: E402
from modchain.testing.clients import local_client  # noqa: E402

SECRET = "SSN-123-45-6789-JaneRoe"  # what must never come back or reach a log
GOOD = json.dumps({"prompt": "a lighthouse", "seed": 1}).encode()


def painter(prompt, negative_prompt, seed, width=16, height=16, num_inference_steps=None, guidance_scale=None):
    """A generator that needs no model: a flat image of the asked size."""
    return Image.new("RGB", (width, height), (seed % 256, 40, 90))


@pytest.fixture(scope="module")
def sd():
    with LocalEndpoint(StableDiffusionHandler(painter), endpoint_name="sd") as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def sd_client(sd):
    return local_client("sagemaker-runtime", sd.url)


@pytest.fixture
def leaks(caplog, capfd):
    """``leaks()`` -> everything the server logged or printed so far in this test (checked for secrets)."""
    caplog.set_level(logging.DEBUG)

    def collected() -> str:
        out, err = capfd.readouterr()
        # the server's own records (botocore, the client, logs the requests it sends at debug level)
        logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
                           if not r.name.startswith(("botocore", "urllib3")))
        return "\n".join((out, err, logged))

    return collected


def address(endpoint: LocalEndpoint) -> tuple[str, int]:
    host, port = endpoint.url.rsplit("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def raw(endpoint: LocalEndpoint, data: bytes, *, half_close: bool = False) -> tuple[int, dict, bytes]:
    """Send ``data`` as it is; the answer's status, headers and body (a dropped connection fails the test)."""
    with socket.create_connection(address(endpoint), timeout=15) as sock:
        sock.sendall(data)
        if half_close:  # the client sends no more: a body shorter than announced ends here
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def post(endpoint: LocalEndpoint, body: bytes, content_type: str = "application/json",
         path: str = "/invocations") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(*address(endpoint), timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def assert_typed(status: int, body: bytes, expected: int, *secrets: str) -> dict:
    assert status == expected, (status, body[:200])
    answer = json.loads(body)
    assert set(answer) == {"error", "message"} and answer["error"].isalpha() and answer["message"]
    for secret in (SECRET, *secrets):
        assert secret not in body.decode("utf-8", "replace")
    return answer


def assert_still_serving(endpoint: LocalEndpoint) -> None:
    status, body = post(endpoint, GOOD)
    assert status == 200 and json.loads(body)["generated_images"]


# ----------------------------------------------------------------------------------------- framing attacks

def test_chunked_body_with_non_hex_size_answers_400_and_logs_nothing(sd, leaks):
    status, headers, body = raw(sd, b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                + SECRET.encode() + b"\r\nabc\r\n0\r\n\r\n")
    assert assert_typed(status, body, 400)["error"] == "BadRequest"
    assert headers["Connection"] == "close"  # the framing is lost: nothing after it can be parsed
    assert SECRET not in leaks() and "Traceback" not in leaks()
    assert_still_serving(sd)


@pytest.mark.parametrize("chunks", [
    pytest.param(b"5\r\nhello0\r\n\r\n", id="no-crlf-after-data"),
    pytest.param(b"-5\r\nhello\r\n0\r\n\r\n", id="negative-size"),
    pytest.param(b"0x5\r\nhello\r\n0\r\n\r\n", id="0x-prefix"),
    pytest.param(b"\r\nhello\r\n0\r\n\r\n", id="empty-size-line"),
    pytest.param(b"1" * 20_000 + b"\r\n", id="size-line-too-long"),
    pytest.param(b"5\r\nhel", id="data-shorter-than-size"),
    pytest.param(b"5\r\nhello\r\n", id="no-last-chunk"),
    pytest.param(b"5\r\nhello\r\n0\r\n" + b"X-Trailer: 1\r\n" * 100, id="endless-trailers"),
])
def test_chunked_framing_errors_answer_400(sd, leaks, chunks):
    request = b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    status, _, body = raw(sd, request + SECRET.encode(), half_close=True)
    assert_typed(status, body, 400)
    assert SECRET not in leaks()
    assert_still_serving(sd)


def test_chunked_body_over_the_limit_answers_413(sd):
    request = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + f"{server_mod.MAX_BODY_BYTES + 1:x}\r\n".encode() + b"x" * 1000)
    status, _, body = raw(sd, request)
    assert_typed(status, body, 413)
    assert_still_serving(sd)


def test_a_well_formed_chunked_body_is_served(sd):
    request = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in (GOOD[:10], GOOD[10:]))
               + b"0\r\nX-Checksum: none\r\n\r\n")
    status, _, body = raw(sd, request)
    assert status == 200 and json.loads(body)["prompt"] == "a lighthouse"


@pytest.mark.parametrize("headers, expected", [
    pytest.param(b"Content-Length: abc\r\n", 400, id="not-a-number"),
    pytest.param(b"Content-Length: -1\r\n", 400, id="negative"),
    pytest.param(b"Content-Length: +5\r\n", 400, id="signed"),
    pytest.param(b"Content-Length: 5_0\r\n", 400, id="underscore"),
    pytest.param(b"Content-Length: 99999999999999999999999999\r\n", 400, id="absurd"),
    pytest.param(b"Content-Length: 5\r\nContent-Length: 6\r\n", 400, id="two-lengths"),
    pytest.param(b"", 411, id="missing"),
    pytest.param(f"Content-Length: {server_mod.MAX_BODY_BYTES + 1}\r\n".encode(), 413, id="over-the-limit"),
    pytest.param(b"Content-Length: 1000\r\n", 400, id="body-shorter"),
    pytest.param(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400, id="length-and-chunked"),
    pytest.param(b"Transfer-Encoding: gzip, chunked\r\n", 400, id="other-coding"),
])
def test_bad_content_length_answers_4xx(sd, leaks, headers, expected):
    request = b"POST /invocations HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + SECRET.encode()
    status, _, body = raw(sd, request, half_close=True)
    assert_typed(status, body, expected)
    assert SECRET not in leaks()
    assert_still_serving(sd)


def test_chunked_needs_http_1_1(sd):
    status, _, body = raw(sd, b"POST /invocations HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert_typed(status, body, 400)


@pytest.mark.parametrize("request_bytes, expected", [
    pytest.param(f"GET /ping?{SECRET} HTTP/1.x\r\n\r\n".encode(), 400, id="bad-version"),
    pytest.param(f"GET /ping?{SECRET} HTTP/9.9\r\n\r\n".encode(), 505, id="unsupported-version"),
    pytest.param(f"GET /{SECRET} extra HTTP/1.1\r\n\r\n".encode(), 400, id="too-many-words"),
    pytest.param(b"GET /" + b"a" * 70_000 + SECRET.encode() + b" HTTP/1.1\r\n\r\n", 414, id="long-line"),
    pytest.param(f"GET /ping HTTP/1.1\r\nX-A: {SECRET}{'b' * 70_000}\r\n\r\n".encode(), 431, id="long-header"),
    pytest.param(b"GET /ping HTTP/1.1\r\n" + b"X-A: 1\r\n" * 150 + SECRET.encode() + b": 1\r\n\r\n", 431,
                 id="many-headers"),
    pytest.param(f"{SECRET.replace('-', '')} /invocations HTTP/1.1\r\n\r\n".encode(), 501, id="unknown-method"),
    pytest.param(f"POST /{SECRET} HTTP/1.1\r\nContent-Length: 0\r\n\r\n".encode(), 404, id="unknown-route"),
    pytest.param(f"GET /{SECRET} HTTP/1.1\r\n\r\n".encode(), 404, id="unknown-get-route"),
])
def test_malformed_request_lines_and_headers_are_not_echoed(sd, leaks, request_bytes, expected):
    status, _, body = raw(sd, request_bytes, half_close=True)
    assert_typed(status, body, expected, SECRET.replace("-", ""))
    assert SECRET not in leaks() and SECRET.replace("-", "") not in leaks()
    assert_still_serving(sd)


def test_a_body_sent_with_get_is_not_parsed_as_the_next_request(sd):
    smuggled = b"POST /invocations HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
    request = b"GET /ping HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(smuggled), smuggled)
    with socket.create_connection(address(sd), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 ") == 1 and data.startswith(b"HTTP/1.1 200")


def test_the_endpoint_name_asked_for_is_not_echoed(sd_client):
    with pytest.raises(ClientError) as caught:
        sd_client.invoke_endpoint(EndpointName=f"x{SECRET}"[:63], Body=GOOD, ContentType="application/json")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert SECRET[:20] not in str(caught.value.response)


# ----------------------------------------------------------------------------------------- payload attacks

def model_error(client, body: bytes, endpoint: str, content_type: str = "application/json") -> dict:
    """boto3's ModelError for ``body``: SageMaker's 424 wrapping the container's status."""
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=content_type,
                               Accept="application/json")
    response = caught.value.response
    assert response["Error"]["Code"] == "ModelError"
    return response


@pytest.fixture(scope="module")
def blip2(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from modchain.serving import Blip2Handler
    from modchain.testing.tiny_models import save_tiny_blip2

    model_dir = save_tiny_blip2(tmp_path_factory.mktemp("hostile-blip2"), "opt")
    with LocalEndpoint(Blip2Handler(model_dir, device="cpu", max_new_tokens=4), endpoint_name="blip2") as ep:
        yield ep


@pytest.fixture(scope="module")
def blip2_client(blip2):
    return local_client("sagemaker-runtime", blip2.url)


@pytest.fixture(scope="module")
def image_b64():
    import base64
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_two_megabyte_prompt_answers_413_not_500(blip2, blip2_client, image_b64, leaks):
    body = json.dumps({"image": image_b64, "prompt": f"Question: {SECRET} " * 70_000 + "Answer:"}).encode()
    assert len(body) > 2_000_000
    response = model_error(blip2_client, body, "blip2")
    assert response["OriginalStatusCode"] == 413 and str(MAX_PROMPT_CHARS) in response["OriginalMessage"]
    assert SECRET not in json.dumps(response)
    assert_typed(*post(blip2, body), 413)
    assert SECRET not in leaks()
    answer = blip2_client.invoke_endpoint(EndpointName="blip2", ContentType="application/json", Body=json.dumps(
        {"image": image_b64, "prompt": "Question: what is it? Answer:"}))
    assert answer["Body"].read()


def test_prompt_longer_than_the_models_context_answers_413(blip2, blip2_client, image_b64):
    # Under the character limit, but past the tiny model's 128 positions: generation would raise IndexError.
    body = json.dumps({"image": image_b64, "questions": ["is this " + "very " * 300 + "red?"]}).encode()
    response = model_error(blip2_client, body, "blip2")
    assert response["OriginalStatusCode"] == 413 and "tokens" in response["OriginalMessage"]
    ok = blip2_client.invoke_endpoint(EndpointName="blip2", ContentType="application/json",
                                      Body=json.dumps({"image": image_b64, "questions": ["is this red?"]}))
    assert len(json.loads(ok["Body"].read())["answers"]) == 1


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deeply_nested_json_answers_400(blip2, blip2_client, sd_client, depth, leaks):
    body = b'{"image": ' + b"[" * depth + b'"' + SECRET.encode() + b'"' + b"]" * depth + b"}"
    for client, name in ((blip2_client, "blip2"), (sd_client, "sd")):
        response = model_error(client, body, name)
        assert response["OriginalStatusCode"] == 400 and "nested deeper" in response["OriginalMessage"]
    assert_typed(*post(blip2, body), 400)
    assert SECRET not in leaks() and "RecursionError" not in leaks()


def test_nesting_within_the_limit_still_parses():
    assert load_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None
    assert load_json(b'{"a": "[[[[{{{{\\"]]]]"}') == {"a": '[[[[{{{{"]]]]'}  # brackets in strings do not nest


@pytest.mark.parametrize("payload, what", [
    pytest.param({"prompt": "Question: x Answer:", SECRET: 1}, "unknown request field", id="top-level"),
    pytest.param({"prompts": ["x"], "parameters": {SECRET: 1}}, "unsupported parameter", id="parameter"),
])
def test_unknown_blip2_fields_are_refused_without_naming_them(blip2_client, image_b64, payload, what):
    response = model_error(blip2_client, json.dumps({"image": image_b64, **payload}).encode(), "blip2")
    assert response["OriginalStatusCode"] == 400 and what in response["OriginalMessage"]
    assert SECRET not in json.dumps(response) and "allowed:" in response["OriginalMessage"]


def test_unknown_stable_diffusion_fields_are_refused_without_naming_them(sd_client):
    response = model_error(sd_client, json.dumps({"prompt": "a lighthouse", SECRET: 1}).encode(), "sd")
    assert response["OriginalStatusCode"] == 400 and "unknown" in response["OriginalMessage"]
    assert SECRET not in json.dumps(response)


def test_unknown_visual_fields_are_refused_without_naming_them(tmp_path):
    pytest.importorskip("transformers")
    from modchain.backends.hf.sam import Sam
    from modchain.serving.visual_handler import VisualHandler

    # The segmenter is never loaded: every request here is refused while parsing.
    handler = VisualHandler(segmenter=Sam(str(tmp_path / "sam")))
    for payload in ({"image": "AAAA", "prompts": [], SECRET: 1},
                    {"image": "AAAA", "prompts": [{"box": [0, 0, 1, 1]}], "parameters": {SECRET: True}},
                    {"image": "AAAA", "prompts": [{"box": [0, 0, 1, 1], SECRET: 1}]}):
        with pytest.raises(InvocationError) as caught:
            handler.parse(json.dumps(payload).encode(), "application/json")
        assert caught.value.status == 400 and SECRET not in caught.value.message
    with pytest.raises(InvocationError) as caught:
        handler.parse(json.dumps({"query": "x" * (MAX_PROMPT_CHARS + 1)}).encode(), "application/json")
    assert caught.value.status == 413


def test_stable_diffusion_prompt_over_the_limit_answers_413(sd_client):
    for payload in ({"prompt": SECRET * 2000}, {"prompt": "ok", "negative_prompt": SECRET * 2000}):
        response = model_error(sd_client, json.dumps(payload).encode(), "sd")
        assert response["OriginalStatusCode"] == 413 and SECRET not in json.dumps(response)
    response = model_error(sd_client, (SECRET * 2000).encode(), "sd", content_type="application/x-text")
    assert response["OriginalStatusCode"] == 413


@pytest.mark.parametrize("body", [
    pytest.param(b'{"prompt": "caf\xe9 ' + SECRET.encode() + b'"}', id="latin-1"),
    pytest.param(b"\xff\xfe\xfd" + SECRET.encode(), id="garbage"),
    pytest.param(b'{"prompt": "\xed\xa0\x80' + SECRET.encode() + b'"}', id="surrogate"),
])
def test_non_utf8_bodies_answer_400(sd, sd_client, body, leaks):
    response = model_error(sd_client, body, "sd")
    assert response["OriginalStatusCode"] == 400 and SECRET not in json.dumps(response)
    assert_typed(*post(sd, body), 400)
    assert SECRET not in leaks()
    assert_still_serving(sd)


def test_content_type_and_accept_are_not_echoed(sd):
    status, body = post(sd, GOOD, content_type=f"text/{SECRET}")
    assert_typed(status, body, 415)
    connection = http.client.HTTPConnection(*address(sd), timeout=10)
    connection.request("POST", "/invocations", body=GOOD,
                       headers={"Content-Type": "application/json", "Accept": f"image/{SECRET}"})
    response = connection.getresponse()
    assert_typed(response.status, response.read(), 406)
    connection.close()


# ------------------------------------------------------------------------------------------- properties

CANARY = "canary-Zq8xJ7"
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.just(CANARY),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(FIELDS) | st.text(max_size=8) | st.just(CANARY), children, max_size=4),
    max_leaves=20)
_requests = st.dictionaries(st.sampled_from(FIELDS) | st.just(CANARY), _json_values, max_size=6)
_bodies = (st.binary(max_size=300).map(lambda b: b + CANARY.encode())
           | _requests.map(lambda d: json.dumps(d).encode())
           | st.tuples(st.integers(0, 60), _requests).map(
               lambda t: b"[" * t[0] + json.dumps(t[1]).encode() + b"]" * t[0]))
_PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_answer_is_typed(status: int, body: bytes) -> None:
    if status == 200:  # a valid request: the contract echoes its prompt
        return
    answer = json.loads(body)
    assert status < 500 or answer.get("error") == "InternalServerError", (status, body[:200])
    assert set(answer) == {"error", "message"} and CANARY not in body.decode("utf-8", "replace")


@_PROPERTY
@given(body=_bodies, content_type=st.sampled_from(["application/json", "application/x-text", "text/csv", ""]))
def test_random_bodies_always_get_a_typed_answer(sd, leaks, body, content_type):
    assert_answer_is_typed(*post(sd, body, content_type))
    assert CANARY not in leaks()


@_PROPERTY
@given(headers=st.binary(max_size=200), body=st.binary(max_size=100))
def test_random_framing_always_gets_a_status_line(sd, leaks, headers, body):
    request = b"POST /invocations HTTP/1.1\r\n" + headers + b"\r\n\r\n" + body + CANARY.encode()
    status, _, answer = raw(sd, request, half_close=True)  # raises if the connection drops unanswered
    assert_answer_is_typed(status, answer)
    assert CANARY not in leaks()
