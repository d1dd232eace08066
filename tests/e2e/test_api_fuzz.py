"""schemathesis against the live API: whatever it sends, the API never answers 5xx."""

import asyncio
import sys
from pathlib import Path

import asyncpg
import pytest

from infra.settings import Settings
from tests.e2e.helpers import token

pytestmark = pytest.mark.integration


async def test_no_request_makes_the_api_answer_5xx(stack: Settings, pool: asyncpg.Pool) -> None:
    # A viewer's token reaches every operation; writes are then refused by the decider, so the
    # fuzzer cannot change data other tests rely on.
    secret = await token(pool, "viewer")
    schemathesis = Path(sys.executable).with_name("schemathesis")
    process = await asyncio.create_subprocess_exec(
        str(schemathesis),
        "run",
        f"{stack.api_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {secret}",
        "--checks",
        "not_a_server_error",
        "--exclude-path",
        "/events/stream",
        "--max-examples",
        "25",
        "--request-timeout",
        "20",
        "--seed",
        "20240918",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    text = output.decode()
    assert process.returncode == 0, text[-4000:]
    assert " passed" in text
