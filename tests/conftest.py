"""Shared fixtures: real local AWS emulators reached by real boto3 clients (no mocks, no network)."""

from __future__ import annotations

import pytest

from modchain.testing.bedrock_emulator import BedrockGuardrailEmulator
from modchain.testing.clients import local_client as aws_client
from modchain.testing.comprehend_emulator import ComprehendEmulator


@pytest.fixture
def comprehend():
    with ComprehendEmulator() as emulator:
        yield emulator


@pytest.fixture
def comprehend_client(comprehend):
    return aws_client("comprehend", comprehend.url)


@pytest.fixture
def bedrock():
    with BedrockGuardrailEmulator(guardrail_id="gr1", version="1") as emulator:
        yield emulator


@pytest.fixture
def bedrock_client(bedrock):
    return aws_client("bedrock-runtime", bedrock.url)
