"""``create_app``: the FastAPI application of ``modchain serve moderation``."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modchain.core.config import ModerationConfig
from modchain.core.config_base import coerce_config
from modchain.core.errors import ConfigurationError
from modchain.serving.moderation.guard import GuardMiddleware, ServiceLimits
from modchain.serving.moderation.metrics import ServiceMetrics
from modchain.serving.moderation.schemas import (
    ErrorResponse,
    Health,
    ImagePart,
    ModerateRequest,
    ModerateResponse,
    ModerationsRequest,
    ModerationsResponse,
)
from modchain.serving.moderation.scoring import (
    LazyLabeler,
    OpenAIInput,
    OpenAIScorer,
    ServiceError,
    check_inputs,
    check_text,
    mapped_errors,
)

logger = logging.getLogger("modchain.serving.moderation")

API_KEYS_ENV = "MODCHAIN_API_KEYS"
ConfigLike = ModerationConfig | Mapping[str, Any] | str | Path


def load_config(config: ConfigLike | None) -> ModerationConfig:
    return coerce_config(ModerationConfig, config)


def api_keys_from_env() -> list[str]:
    return [k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",") if k.strip()]


def create_app(config: ConfigLike | None = None, *, api_keys: Sequence[str] | None = None,
               limits: ServiceLimits | None = None, configs: Mapping[str, ConfigLike] | None = None,
               image_labeler: Any = None, image_threshold: float = 0.5, flag_prompt_attacks: bool = True,
               allow_no_auth: bool = False, public_metrics: bool = False, warm_up: bool = True) -> Any:
    """The moderation service as an ASGI app (serve it with uvicorn).

    Args:
        config: the ``default`` config (ModerationConfig, dict, or YAML path); None: modchain's defaults.
        api_keys: accepted Bearer keys; None reads ``MODCHAIN_API_KEYS`` (comma-separated).
        limits: request limits (413/429), see :class:`ServiceLimits`.
        configs: more named configs, chosen per request (``config`` on /v1/moderate, ``model`` on
            /v1/moderations).
        image_labeler: anything with ``label_batch(images)`` returning Rekognition-taxonomy findings;
            default: NudeNet, built on the first image.
        image_threshold: image score at which its OpenAI category is flagged.
        flag_prompt_attacks: a jailbreak / injection sets ``flagged`` on /v1/moderations (OpenAI has no
            category for it; it shows in the ``modchain`` field).
        allow_no_auth: run without keys (``main`` allows it only on a loopback address).
        public_metrics: serve /metrics without a key (Prometheus inside a trusted network).
        warm_up: build every backend and run it once now, so a broken config fails at start-up.
    """
    import anyio
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException

    import modchain
    from modchain.text.chain import ModerationChain

    limits = limits or ServiceLimits()
    keys = list(api_keys_from_env() if api_keys is None else [k for k in api_keys if k])
    if not keys and not allow_no_auth:
        raise ConfigurationError(f"no API keys: set {API_KEYS_ENV} (comma-separated) or pass api_keys; "
                                 "allow_no_auth=True is for loopback development only")
    named = {"default": load_config(config)}
    for name, value in (configs or {}).items():
        named[name] = load_config(value)
    labeler = LazyLabeler(image_labeler)
    chains = {name: ModerationChain(cfg, name=f"moderation-service:{name}") for name, cfg in named.items()}
    scorers = {name: OpenAIScorer(cfg, labeler, limits, image_threshold=image_threshold,
                                  flag_prompt_attacks=flag_prompt_attacks) for name, cfg in named.items()}
    if warm_up:
        # "ok" is blocked by no filter in any config; this builds backends and loads models once.
        for name in named:
            chains[name].moderate("ok", {"configurable": {"conversation_id": "warm-up"}})
            scorers[name].score([OpenAIInput(["ok"], [])])
    metrics = ServiceMetrics()
    limiter = anyio.CapacityLimiter(limits.workers or os.cpu_count() or 4)

    async def in_thread(operation: str, fn: Any, *args: Any) -> Any:
        def call() -> Any:
            with mapped_errors(operation):
                return fn(*args)

        return await anyio.to_thread.run_sync(call, limiter=limiter)

    errors = {code: {"model": ErrorResponse} for code in (400, 401, 413, 429, 503)}
    app = FastAPI(title="modchain moderation service", version=modchain.__version__, docs_url=None,
                  redoc_url=None, description="OpenAI-compatible moderation (POST /v1/moderations) and "
                  "modchain's full results (POST /v1/moderate). Send Authorization: Bearer <key>.")
    app.state.metrics, app.state.limits, app.state.configs = metrics, limits, named
    app.state.labeler = labeler

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return _error_response(exc.status, exc.message, exc.kind, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # loc and msg only: pydantic's error entries also carry the offending input, i.e. user content.
        details = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))[:100]}: {e.get('msg', '')[:160]}"
                            for e in exc.errors()[:5])
        return _error_response(400, f"Invalid request: {details}"[:2000], "invalid_request_error",
                               "invalid_request")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error_response(exc.status_code, str(exc.detail), "invalid_request_error", None,
                               dict(exc.headers or {}))

    @app.post("/v1/moderations", response_model=ModerationsResponse, responses=errors,
              summary="Moderate text and images (OpenAI's moderation API)")
    async def moderations(body: ModerationsRequest) -> Any:
        scorer = scorers.get(body.model or "default", scorers["default"])
        inputs = _openai_inputs(body)
        check_inputs(inputs, limits)
        results = await in_thread("moderations", scorer.score, inputs)
        for result in results:
            metrics.verdict("/v1/moderations", result["flagged"],
                            [name for name, hit in result["categories"].items() if hit])
        return {"id": f"modr-{uuid.uuid4().hex}", "model": body.model or "modchain", "results": results}

    @app.post("/v1/moderate", response_model=ModerateResponse, responses={**errors, 404: {"model": ErrorResponse}},
              summary="modchain's full results with a named config's filters")
    async def moderate(body: ModerateRequest) -> Any:
        chain = chains.get(body.config)
        if chain is None:
            raise ServiceError(404, f"Unknown config; loaded: {sorted(chains)}.", "unknown_config")
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if not texts:
            raise ServiceError(400, "input must not be empty.", "empty_input")
        if len(texts) > limits.max_inputs:
            raise ServiceError(413, f"More than {limits.max_inputs} texts in one request.", "too_many_inputs")
        for text in texts:
            check_text(text, limits)
        configurable = {k: v for k, v in (("unique_id", body.unique_id), ("conversation_id", body.conversation_id))
                        if v is not None}
        results = await in_thread("moderate", chain.moderate_batch, texts, {"configurable": configurable})
        for result in results:
            metrics.verdict("/v1/moderate", not result.allowed, [result.blocked_by] if result.blocked_by else [])
        return {"id": f"modr-{uuid.uuid4().hex}", "config": body.config, "results": results}

    @app.get("/health", response_model=Health, summary="Liveness and the loaded configs (no key needed)")
    async def health() -> Any:
        # No config names: this endpoint answers without a key.
        return {"status": "ok", "version": modchain.__version__}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    async def prometheus() -> Any:
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    app.add_middleware(GuardMiddleware, keys=keys, limits=limits, metrics=metrics,
                       public_metrics=public_metrics)
    return app


def _openai_inputs(body: ModerationsRequest) -> list[OpenAIInput]:
    value = body.input
    if isinstance(value, str):
        return [OpenAIInput([value], [])]
    if all(isinstance(item, str) for item in value):
        return [OpenAIInput([item], []) for item in value]  # type: ignore[list-item]
    # A list of parts is one input (one result), as in OpenAI's API.
    texts = [p.text for p in value if not isinstance(p, (str, ImagePart))]  # type: ignore[union-attr]
    images = [p.image_url.url for p in value if isinstance(p, ImagePart)]
    return [OpenAIInput(texts, images)]


def _error_response(status: int, message: str, kind: str, code: str | None,
                    headers: Mapping[str, str] | None = None) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}},
                        status_code=status, headers=dict(headers or {}))
