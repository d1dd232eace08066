"""A command answered 202 can be polled at its status URL until its outcome arrives."""

import asyncio
import time
import uuid

import asyncpg
import httpx
import pytest

from infra.settings import Settings
from tests.e2e.helpers import bearer

pytestmark = pytest.mark.integration


async def test_the_status_url_of_a_pending_command_answers_pending_then_the_outcome(
    stack: Settings, pool: asyncpg.Pool
) -> None:
    body = {
        "type": "PublishInspection",
        "effective_date": "2024-01-10",
        "data": {
            "inspection_id": f"pending-{uuid.uuid4().hex[:10]}",
            "title": "Polled",
            "inspectorate": "HMICS",
            "published_on": "2024-01-10",
        },
    }
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        headers = await bearer(pool, "admin")
        sent = await api.post("/commands", params={"wait": 0}, json=body, headers=headers)
        assert sent.status_code == 202, sent.text
        status_url = sent.json()["status_url"]
        seen = []
        deadline = time.monotonic() + 30
        while True:
            polled = await api.get(status_url, headers=headers)
            seen.append(polled.status_code)
            if polled.status_code == 201 or polled.status_code == 200:
                break
            assert polled.status_code == 202, polled.text  # pending, never "unknown"
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert polled.json()["status"] == "accepted"
        # Somebody else polling the same id learns nothing about it.
        other = await api.get(status_url, headers=await bearer(pool, "admin", "elsewhere"))
        assert other.status_code == 404
