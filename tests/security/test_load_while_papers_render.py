"""A short, bounded load: a few hundred requests, papers among them; /health stays fast.

Issue 13 finding 4 was one viewer stalling the whole API with a PDF. Here eight clients send
papers of every format (distinct meetings, so the cache cannot answer them all), reports and
inspections for about 15 seconds while a probe times /health. Every answer is a success or a
"not now" (503 with Retry-After); none is an error or a time-out, and /health's p99 stays
under 100 ms.
"""

import asyncio
import statistics
import time
from datetime import date, timedelta

import asyncpg
import httpx
import pytest

from infra.settings import Settings
from tests.e2e.helpers import bearer

pytestmark = pytest.mark.integration

CLIENTS = 8
SECONDS = 15.0
FORMATS = ("pdf", "html", "md")


async def _client_load(
    api: httpx.AsyncClient, number: int, until: float, statuses: list[int], slow: list[str]
) -> None:
    request = 0
    while time.monotonic() < until:
        request += 1
        kind = (number + request) % 4
        if kind == 3:
            response = await api.get("/report", params={"as_of": date.today().isoformat()})
        else:
            meeting = date(2024, 9, 18) - timedelta(days=7 * ((number * 31 + request) % 40))
            params = {"meeting": meeting.isoformat(), "format": FORMATS[kind]}
            response = await api.get("/paper", params=params)
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) > 0
            await asyncio.sleep(0.2)
        elif response.status_code != 200:
            slow.append(f"{response.status_code}: {response.text[:200]}")


async def _drained(api: httpx.AsyncClient) -> None:
    """Until the paper workers have room again, so later tests do not queue behind this load."""
    deadline = time.monotonic() + 180
    while True:
        answer = await api.get("/paper", params={"meeting": "2024-09-18", "format": "md"})
        if answer.status_code == 200:
            return
        assert answer.status_code == 503 and time.monotonic() < deadline, answer.text[:300]
        await asyncio.sleep(1)


async def test_health_stays_fast_through_a_few_hundred_requests_while_papers_render(
    stack: Settings, pool: asyncpg.Pool
) -> None:
    headers = await bearer(pool, "viewer")
    statuses: list[int] = []
    failures: list[str] = []
    health: list[float] = []
    started = time.monotonic()
    until = started + SECONDS
    async with (
        httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api,
        httpx.AsyncClient(base_url=stack.api_url, timeout=5) as probe,
    ):
        load = [
            asyncio.create_task(_client_load(api, n, until, statuses, failures))
            for n in range(CLIENTS)
        ]
        while time.monotonic() < until:
            sent = time.perf_counter()
            answer = await probe.get("/health")
            health.append(time.perf_counter() - sent)
            assert answer.status_code == 200
            await asyncio.sleep(0.05)
        # Requests still in flight when the time is up are abandoned (the API finishes them into
        # its cache); the load is bounded by the clock, not by how busy the machine is.
        _, unfinished = await asyncio.wait(load, timeout=5)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*load, return_exceptions=True)
        elapsed = time.monotonic() - started
        await _drained(api)
    p99 = statistics.quantiles(health, n=100, method="inclusive")[98]
    assert not failures, failures[:5]
    assert len(statuses) + len(health) >= 200, (len(statuses), len(health))
    assert elapsed < 30, f"the load took {elapsed:.1f} s"
    assert sum(s == 200 for s in statuses) >= 10, statuses
    assert p99 < 0.1, f"/health p99 {p99 * 1000:.0f} ms over {len(health)} samples"
