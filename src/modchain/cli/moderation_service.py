"""``modchain serve moderation``: its arguments, the app they build, and uvicorn until SIGTERM (graceful).

The service itself (app, limits, scoring) is :mod:`modchain.serving.moderation`; running it in a thread for
tests and examples is :func:`modchain.serving.moderation.server.serve_in_thread`.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Sequence
from typing import Any

from modchain.cli.common import EXIT_OK, EXIT_USAGE
from modchain.core.errors import ConfigurationError, ModchainError
from modchain.serving.moderation.guard import ServiceLimits


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    defaults = ServiceLimits()
    parser.add_argument("-c", "--config", action="append", default=[], metavar="[NAME=]FILE",
                        help="ModerationConfig YAML; repeatable. A bare FILE is the 'default' config, NAME=FILE "
                        "adds a config chosen per request ('config' on /v1/moderate, 'model' on /v1/moderations)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--allow-no-auth-on-loopback", action="store_true",
                        help="run without MODCHAIN_API_KEYS; refused unless --host is a loopback address")
    parser.add_argument("--public-metrics", action="store_true", help="serve /metrics without an API key")
    parser.add_argument("--max-text-chars", type=_positive, default=defaults.max_text_chars,
                        help=f"longest text accepted, in characters (413 above; default {defaults.max_text_chars})")
    parser.add_argument("--max-image-bytes", type=_positive, default=defaults.max_image_bytes,
                        help=f"largest image, decoded bytes (413 above; default {defaults.max_image_bytes})")
    parser.add_argument("--max-image-pixels", type=_positive, default=defaults.max_image_pixels)
    parser.add_argument("--max-images", type=_positive, default=defaults.max_images, help="images per request")
    parser.add_argument("--max-inputs", type=_positive, default=defaults.max_inputs, help="texts per request")
    parser.add_argument("--max-body-bytes", type=_positive, default=None,
                        help="request body limit (default: one max-size image as base64 + 1 MiB)")
    parser.add_argument("--max-concurrency", type=_positive, default=defaults.max_concurrency,
                        help="moderation requests in flight before 429 (default %(default)s)")
    parser.add_argument("--workers", type=_positive, default=None,
                        help="threads running the chain (default: CPU count)")
    parser.add_argument("--image-threshold", type=float, default=0.5)
    parser.add_argument("--graceful-timeout", type=float, default=30.0,
                        help="seconds to let in-flight requests finish on SIGTERM/SIGINT (default 30)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    return parser


def parse_configs(values: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    default, named = None, {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = "default", value
        if not name or not path:
            raise ConfigurationError(f"--config takes FILE or NAME=FILE, got {value!r}")
        if name == "default":
            default = path
        else:
            named[name] = path
    return default, named


def build(args: argparse.Namespace) -> Any:
    """The app for parsed arguments; raises ConfigurationError for a refused set-up."""
    from modchain.serving.moderation.app import api_keys_from_env, create_app

    keys = api_keys_from_env()
    if not keys and not args.allow_no_auth_on_loopback:
        raise ConfigurationError("no API keys: set MODCHAIN_API_KEYS=key1,key2 (or, for local development "
                                 "only, --allow-no-auth-on-loopback with a loopback --host)")
    if not keys and not is_loopback(args.host):
        raise ConfigurationError(f"refusing to serve without API keys on {args.host}: "
                                 "--allow-no-auth-on-loopback needs a loopback --host (127.0.0.1, ::1)")
    limits = ServiceLimits(
        max_text_chars=args.max_text_chars, max_image_bytes=args.max_image_bytes,
        max_image_pixels=args.max_image_pixels, max_images=args.max_images, max_inputs=args.max_inputs,
        max_body_bytes=args.max_body_bytes, max_concurrency=args.max_concurrency, workers=args.workers)
    default, named = parse_configs(args.config)
    app = create_app(default, api_keys=keys, limits=limits, configs=named, image_threshold=args.image_threshold,
                     allow_no_auth=not keys, public_metrics=args.public_metrics)
    _warm_up_images(app)
    return app


def _warm_up_images(app: Any) -> None:
    """Load the image model now, not on the first image request; without the image extra, say so."""
    try:
        from PIL import Image

        app.state.labeler.get().label_batch([Image.new("RGB", (64, 64))])
    except (ImportError, ConfigurationError) as exc:
        sys.stderr.write(f"modchain: image inputs will be refused: {exc}\n")


def run(args: argparse.Namespace, out: Any = None) -> int:
    """Serve until SIGINT/SIGTERM (uvicorn finishes in-flight requests, up to --graceful-timeout)."""
    err = sys.stderr
    try:
        import uvicorn

        app = build(args)
    except ImportError as exc:
        err.write(f"modchain: the moderation service needs its extra: pip install 'modchain[serve]' ({exc})\n")
        return EXIT_USAGE
    except (ModchainError, ValueError) as exc:
        err.write(f"modchain: {exc}\n")
        return EXIT_USAGE
    where = f"http://{args.host}:{args.port}" if args.port else f"{args.host}, a free port (see below)"
    (out or sys.stdout).write(f"modchain: moderation service on {where} "
                              "(POST /v1/moderations, POST /v1/moderate, GET /health, GET /metrics)\n")
    (out or sys.stdout).flush()
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=args.graceful_timeout, server_header=False)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(
        prog="modchain serve moderation",
        description="HTTP moderation service: OpenAI-compatible POST /v1/moderations, modchain's POST "
        "/v1/moderate, GET /health, GET /metrics. API keys from MODCHAIN_API_KEYS (comma-separated)."))
    return run(parser.parse_args(argv))
