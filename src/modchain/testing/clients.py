"""boto3 clients for the local emulators: fake credentials, one attempt, a pool sized for fan-out."""

from __future__ import annotations

from typing import Any


def local_client(service: str, url: str, *, retries: int = 0, max_pool_connections: int = 64) -> Any:
    """A real boto3 client for ``service`` that talks to an emulator at ``url`` (never to AWS)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": retries + 1}, max_pool_connections=max_pool_connections)
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=config)
