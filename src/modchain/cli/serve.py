"""``modchain serve``: the HTTP moderation service, or a vision model behind a SageMaker-style endpoint.

``serve moderation`` hands its arguments to :mod:`modchain.cli.moderation_service` (FastAPI is an optional
extra); ``serve blip2`` and ``serve visual`` run a SageMaker handler on the local server (GET /ping,
POST /invocations).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from modchain.cli.common import EXIT_OK, EXIT_USAGE, positive_int

#: Where ``modchain serve moderation`` lives; imported only when that command runs (FastAPI is optional).
SERVICE_MODULE = "modchain.serving.moderation"


def add_parser(sub: Any) -> None:
    srv = sub.add_parser("serve", help="run the HTTP moderation service or a model behind a SageMaker-style endpoint",
                         description="Serve the moderation service (OpenAI-compatible /v1/moderations), or a "
                         "vision model with SageMaker's container contract: GET /ping, POST /invocations, and "
                         "POST /endpoints/NAME/invocations for boto3 clients.")
    models = srv.add_subparsers(dest="model_kind", required=True, metavar="{moderation,blip2,visual}")
    # Listed for --help only: main() hands everything after `serve moderation` to the service's own parser.
    models.add_parser("moderation", add_help=False, help="the HTTP moderation service (pip install 'modchain[serve]'; "
                      "`modchain serve moderation --help` for its options)")
    blip2 = models.add_parser("blip2", help="BLIP-2 visual question answering (seed and batched contracts)")
    blip2.add_argument("--model", required=True, help="BLIP-2 model id or local checkpoint directory")
    blip2.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    blip2.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    blip2.add_argument("--device", help="torch device (cpu, cuda, ...); default: cuda when available")
    blip2.add_argument("--dtype", help="float16, bfloat16 or float32 (default: float16 on CUDA)")
    blip2.add_argument("--max-new-tokens", type=positive_int, default=30, help="default answer length")
    visual = models.add_parser("visual", help="detection + segmentation (Grounding DINO -> SAM) in one request")
    visual.add_argument("--detector-model", help="Grounding DINO model id or directory (omit: segmentation only)")
    visual.add_argument("--segmenter-model", help="SAM model id or directory (omit: detection only)")
    visual.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    visual.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    visual.add_argument("--device", help="torch device (cpu, cuda, ...); default: cuda when available")


def serve_moderation(argv: list[str]) -> int:
    """``modchain serve moderation ARGS...``: the service parses its own arguments; FastAPI is optional."""
    import importlib

    try:
        importlib.import_module(SERVICE_MODULE)
        from modchain.cli.moderation_service import main as service_main
    except ModuleNotFoundError as exc:
        # Only a missing optional dependency (or the service package itself) means "install the extra"; a
        # missing modchain module inside it is a bug and surfaces as one.
        name = exc.name or ""
        if name.split(".")[0] == "modchain" and not SERVICE_MODULE.startswith(name):
            raise
        print("modchain: the moderation service needs the serve extra: pip install 'modchain[serve]'",
              file=sys.stderr)
        return EXIT_USAGE
    return service_main(argv)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from modchain.serving.server import serve as run_server

    if args.model_kind == "visual":
        from modchain.serving.visual_handler import VisualHandler

        handler: Any = VisualHandler(detector_model=args.detector_model, segmenter_model=args.segmenter_model,
                                     device=args.device)
        what = "the visual chain"
    else:
        from modchain.serving.blip2_handler import Blip2Handler

        handler = Blip2Handler(args.model, device=args.device, dtype=args.dtype, max_new_tokens=args.max_new_tokens)
        what = f"BLIP-2 {args.model}"

    def ready(url: str) -> None:
        out.write(f"modchain: serving {what} at {url} (GET /ping, POST /invocations)\n")
        out.flush()

    run_server(handler, args.host, args.port, ready=ready)
    return EXIT_OK
