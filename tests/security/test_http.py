"""Findings 2 (rendering), 3 and 9 of the adversarial probe (issue 13): the HTTP face under
hostile input. Each test drives the real API (the session's stack, or an API process of its
own where it must change a setting or stop it) over HTTP."""

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, get_args
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from events.inspection import InspectionPublished
from events.recommendation import RecommendationIssued
from infra.kafka_clients import durable_producer, read_messages
from infra.processes import free_port
from infra.settings import Settings
from projections.lag import wait_until_projected
from projections.recommendations.projection import RECOMMENDATIONS
from services.decider.gateway import CommandGateway
from services.web.app import create_app
from services.web.auth import COOKIE
from tests.builders import issue, publish
from tests.e2e.helpers import bearer, signed_in_cookies, token
from tests.histories import History

pytestmark = pytest.mark.integration

HUGE = 200 * 1024 * 1024


# -- helpers ---------------------------------------------------------------------------------


@asynccontextmanager
async def own_api(
    run_env: dict[str, str], log_dir: Path, **extra: str
) -> AsyncIterator[tuple[Settings, asyncio.subprocess.Process]]:
    """An API process of this test's own (same broker, database and topics, its own port)."""
    env = {**run_env, "RECTRACK_API_PORT": str(free_port()), **extra}
    settings = Settings.from_env(env)
    log = (log_dir / "api.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "services.cli", "run", "-c", "api"),
        env=env,
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        async with httpx.AsyncClient(base_url=settings.api_url, timeout=2) as api:
            while True:
                assert proc.returncode is None, (log_dir / "api.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the API did not start"
                try:
                    if (await api.get("/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.3)
        yield settings, proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def broker_connections(pid: int, broker_port: int) -> int:
    """Established TCP connections of a process to the broker's port, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            established = fields[3] == "01"
            if established and fields[9] in inodes and _port(fields[2]) == broker_port:
                count += 1
    return count


def assert_security_headers(response: httpx.Response) -> None:
    csp = response.headers.get("content-security-policy", "")
    for directive in ("default-src 'self'", "frame-ancestors 'none'", "img-src 'self' data:"):
        assert directive in csp, (response.url, csp)
    assert "'unsafe-inline'" not in csp
    assert response.headers.get("x-content-type-options") == "nosniff", response.url
    assert response.headers.get("referrer-policy") in ("no-referrer", "same-origin")


def inline_styles_allowed(response: httpx.Response) -> None:
    """Every inline <style> of the page is allowed by its hash (so the page keeps its look)."""
    csp = response.headers["content-security-policy"]
    for css in re.findall(r"<style>(.*?)</style>", response.text, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp, response.url


async def append_events(settings: Settings, history: History) -> None:
    """Genuine events of the past (sealed by a decider key still trusted) written straight to
    the log, as an older version may have let them in."""
    producer = durable_producer(settings)
    await producer.start()
    try:
        for key, partition, value in history.records(settings.partitions):
            await producer.send_and_wait(
                settings.topics.events, value, key=key, partition=partition
            )
    finally:
        await producer.stop()


# -- finding 2: a stored javascript: url is no link, and no page may run script ----------------


async def test_a_javascript_url_in_the_log_is_no_link_and_pages_forbid_script(
    stack: Settings, pool: asyncpg.Pool
) -> None:
    hostile, fine = f"xss-{uuid.uuid4().hex[:8]}", f"web-{uuid.uuid4().hex[:8]}"
    history = History()
    for inspection_id, url in (
        (hostile, "javascript:fetch('/inspections').then(r=>r.text()).then(alert)"),
        (fine, "https://www.hmics.scot/publications/report"),
    ):
        history.add(
            inspection_id,
            "2024-01-10",
            InspectionPublished(
                inspection_id=inspection_id,
                title="Stored link",
                inspectorate="HMICS",
                published_on=date(2024, 1, 10),
                url=url,
            ),
        )
        rid = f"{inspection_id}/r1"
        history.add(
            rid,
            "2024-01-10",
            RecommendationIssued(
                recommendation_id=rid, inspection_id=inspection_id, number=1, text="t"
            ),
        )
    await append_events(stack, history)
    await wait_until_projected(stack, RECOMMENDATIONS, timeout=60)
    cookies = await signed_in_cookies(stack.api_url, await token(pool, "viewer"))
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30, cookies=cookies) as api:
        page = await api.get(f"/ui/inspections/{hostile}", params={"as_of": "2024-09-18"})
        good = await api.get(f"/ui/inspections/{fine}", params={"as_of": "2024-09-18"})
    assert page.status_code == 200, page.text
    hrefs = re.findall(r'href="([^"]*)"', page.text)
    # Links within the app, the skip link to the page's main content, and web addresses only.
    assert hrefs and all(h.startswith(("/", "#", "http://", "https://")) for h in hrefs), hrefs
    assert "javascript:fetch" in page.text  # still shown, as text
    assert 'href="https://www.hmics.scot/publications/report"' in good.text
    assert_security_headers(page)
    assert "script-src 'none'" in page.headers["content-security-policy"]
    inline_styles_allowed(page)


# -- finding 3: hostile cursors answer at once; nothing holds a connection or stops SIGTERM ----

HOSTILE_CURSORS = [
    "0-99999999999999999999",
    f"0-{2**63}",
    "999-0",  # a partition the topic does not have
    "0-1.0-2",
    "0-1." * 2000 + "0-1",
    "0-\u0661",
]


async def test_hostile_cursors_are_422_at_once_leave_no_connection_and_sigterm_stops_the_api(
    stack: Settings, pool: asyncpg.Pool, run_env: dict[str, str], tmp_path: Path
) -> None:
    headers = await bearer(pool, "viewer")
    broker_port = int(stack.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])
    async with own_api(run_env, tmp_path) as (settings, proc):
        async with httpx.AsyncClient(base_url=settings.api_url, timeout=10, headers=headers) as api:
            # Warm up the process's own clients (its shared consumer connects to the broker's
            # node on first use), then count: feed requests must leave nothing behind.
            assert (await api.get("/events", params={"after": "0-0"})).status_code == 200
            baseline = broker_connections(proc.pid, broker_port)
            started = time.monotonic()
            probes = [api.get("/events", params={"after": HOSTILE_CURSORS[0]}) for _ in range(20)]
            probes += [api.get("/events", params={"after": c}) for c in HOSTILE_CURSORS]
            answers = await asyncio.gather(*probes)
            sse = await api.get("/events/stream", headers={"Last-Event-ID": HOSTILE_CURSORS[0]})
            elapsed = time.monotonic() - started
            assert [a.status_code for a in answers] == [422] * len(probes)
            assert {a.json()["detail"][0]["field"] for a in answers} == {"after"}
            assert sse.status_code == 422
            assert sse.json()["detail"][0]["field"] == "Last-Event-ID"
            assert elapsed < 5, f"{len(probes) + 1} hostile cursors took {elapsed:.1f}s"
            assert broker_connections(proc.pid, broker_port) <= baseline
            pages = [api.get("/events", params={"after": "0-0", "limit": 5}) for _ in range(5)]
            assert {p.status_code for p in await asyncio.gather(*pages)} == {200}
            assert broker_connections(proc.pid, broker_port) <= baseline  # each closed its own

            # Subscribers connected when SIGTERM comes: the API still stops, promptly.
            streams = [api.stream("GET", "/events/stream") for _ in range(2)]
            opened = [await s.__aenter__() for s in streams]
            assert all(r.status_code == 200 for r in opened)
            running = [
                asyncio.create_task(api.get("/events", params={"limit": 1000})) for _ in range(3)
            ]
            await asyncio.sleep(1)
            assert broker_connections(proc.pid, broker_port) > baseline  # the streams' own
            stopping = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), timeout=30)
            took = time.monotonic() - stopping
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            for s in streams:
                # The server went away mid-stream, as it should.
                with contextlib.suppress(httpx.HTTPError):
                    await s.__aexit__(None, None, None)
        assert proc.returncode is not None, "the API did not stop within 30 s of SIGTERM"
        # Promptly: open streams get a few seconds' grace, then are cancelled.
        assert took < 15, f"the API took {took:.1f}s to stop"


# -- finding 9: bodies, parameters, headers, rate limit, role table -----------------------------


async def _status_before_body(settings: Settings, path: str, headers: dict[str, str]) -> bytes:
    """Send only the head of a 200 MiB request and read what comes back without the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", settings.api_port)
    try:
        head = [f"POST {path} HTTP/1.1", "Host: localhost", f"Content-Length: {HUGE}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.readline(), timeout=5)
        except TimeoutError:
            return b"(no answer in 5 s: the server waits for the 200 MiB body)"
    finally:
        writer.close()


async def test_a_200_mib_body_is_refused_before_a_byte_of_it_is_sent(
    stack: Settings, pool: asyncpg.Pool
) -> None:
    auth = await bearer(pool, "admin")
    command = await _status_before_body(
        stack, "/commands", {**auth, "Content-Type": "application/json"}
    )
    login = await _status_before_body(
        stack, "/login", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert command.startswith(b"HTTP/1.1 413"), command
    assert login.startswith(b"HTTP/1.1 413"), login


def _walk(dependant: Dependant) -> Iterator[tuple[str, str, Any]]:
    for field in dependant.path_params:
        yield "path", field.alias, field.field_info.annotation
    for field in dependant.query_params:
        yield "query", field.alias, field.field_info.annotation
    for sub in dependant.dependencies:
        yield from _walk(sub)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute of the app, also inside included routers (which FastAPI keeps nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def _kind(annotation: Any) -> str:
    types = [a for a in get_args(annotation) if isinstance(a, type)] or [annotation]
    if any(issubclass(t, datetime) for t in types if isinstance(t, type)):
        return "datetime"
    if any(issubclass(t, date) for t in types if isinstance(t, type)):
        return "date"
    return "text"


def _route_cases() -> list[tuple[str, str, str, str]]:
    """(route path, parameter, where, hostile value) for every GET route's every parameter."""
    app = create_app(Settings.from_env({"RECTRACK_HOME": "/nonexistent"}))
    hostile = {
        "text": ["x\x00y", "x\x1by"],
        "date": ["0001-01-01", "9999-12-31"],
        "datetime": ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"],
    }
    cases = []
    for route in _api_routes(app.routes):
        if "GET" not in (route.methods or ()):
            continue
        for where, name, annotation in _walk(route.dependant):
            for value in hostile[_kind(annotation)] if where == "query" else hostile["text"]:
                cases.append((route.path, name, where, value))
    # Never a vacuous parametrisation: the app has routes with path and date parameters.
    assert len({c[0] for c in cases}) >= 10, cases
    return cases


def _url(path: str, name: str, where: str, value: str) -> tuple[str, dict[str, str]]:
    encoded = quote(value, safe="")  # /inspections/%00, as the probe sent it
    filled = re.sub(r"\{(\w+)(:path)?\}", lambda m: encoded if m.group(1) == name else "x", path)
    params = {"as_of": "2024-09-18", "meeting": "2024-09-18"}  # the required ones, valid
    if where == "query":
        params[name] = value
    return filled, params


@pytest.mark.parametrize(("path", "name", "where", "value"), _route_cases())
async def test_nul_and_dates_beyond_the_database_are_422_naming_the_parameter_on_every_route(
    stack: Settings, pool: asyncpg.Pool, path: str, name: str, where: str, value: str
) -> None:
    # The probe's two 500s were /inspections/%00 and known_at=0001-01-01T00:00:00+14:00.
    url, params = _url(path, name, where, value)
    secret = await token(pool, "viewer")
    async with httpx.AsyncClient(
        base_url=stack.api_url,
        timeout=30,
        headers={"Authorization": f"Bearer {secret}"},
        cookies={COOKIE: secret},
    ) as api:
        response = await api.get(url, params=params)
    assert response.status_code == 422, (url, params, response.status_code, response.text[:300])
    assert response.json()["detail"][0]["field"] == name


async def test_every_response_has_the_security_headers(
    stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool
) -> None:
    insp = publish(f"headers-{uuid.uuid4().hex[:8]}")
    rec = issue(insp.stream_id, 1)
    outcomes = await gateway.submit([insp, rec], timeout=30)
    assert {o.status for o in outcomes.values()} == {"accepted"}
    await wait_until_projected(stack, RECOMMENDATIONS, timeout=60)
    secret = await token(pool, "viewer")
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as anonymous:
        plain = [
            await anonymous.get("/login"),
            await anonymous.get("/"),  # 303 to the login
            await anonymous.get("/report", params={"as_of": "2024-09-18"}),  # 401
            await anonymous.get("/openapi.json"),
            await anonymous.get("/asyncapi.json"),
            await anonymous.get("/health"),
            await anonymous.get("/no-such-page"),
            await anonymous.post("/login", data={"token": "rt_wrong"}),  # 403: no CSRF token
            await anonymous.get("/accessibility"),
            await anonymous.get("/api-docs"),  # its own policy: script from this origin only
            await anonymous.get("/static/rectrack.css"),
        ]
    cookies = await signed_in_cookies(stack.api_url, secret)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60, cookies=cookies) as viewer:
        pages = [
            await viewer.get("/", params={"as_of": "2024-09-18"}),
            await viewer.get(f"/ui/inspections/{insp.stream_id}", params={"as_of": "2024-09-18"}),
            await viewer.get(f"/ui/recommendations/{rec.stream_id}"),
            await viewer.get("/ui/inspections/no-such-inspection"),
            await viewer.get("/paper", params={"meeting": "2024-09-18", "format": "html"}),
            await viewer.get("/report", params={"as_of": "not-a-date"}),
        ]
    html = [r for r in plain + pages if r.headers.get("content-type", "").startswith("text/html")]
    assert len(html) >= 5
    for response in html:
        assert response.status_code == 200, (response.url, response.status_code)
        inline_styles_allowed(response)
    for response in plain + pages:
        assert_security_headers(response)


async def test_writes_are_rate_limited_per_token_with_retry_after(
    stack: Settings, pool: asyncpg.Pool, run_env: dict[str, str], tmp_path: Path
) -> None:
    flooding, other = await bearer(pool, "contributor"), await bearer(pool, "contributor")
    async with (
        own_api(run_env, tmp_path, RECTRACK_WRITE_RATE="0.2:5") as (settings, _),
        httpx.AsyncClient(base_url=settings.api_url, timeout=30) as api,
    ):
        # Invalid bodies: each write is refused (422) after the limit is checked.
        statuses = [
            (await api.post("/commands", json={}, headers=flooding)).status_code for _ in range(5)
        ]
        limited = await api.post("/commands", json={}, headers=flooding)
        elsewhere = await api.post("/commands", json={}, headers=other)
    assert statuses == [422] * 5
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 5
    assert elsewhere.status_code == 422


async def test_a_command_a_role_can_never_send_is_403_and_never_reaches_the_commands_topic(
    stack: Settings, pool: asyncpg.Pool
) -> None:
    def publish_body() -> dict[str, Any]:
        return {
            "type": "PublishInspection",
            "command_id": str(uuid.uuid4()),
            "data": {
                "inspection_id": f"never-{uuid.uuid4().hex[:8]}",
                "title": "t",
                "inspectorate": "HMICS",
                "published_on": "2024-01-10",
            },
        }

    refused: list[str] = []
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        for role in ("viewer", "contributor"):
            body = publish_body()
            response = await api.post("/commands", json=body, headers=await bearer(pool, role))
            assert response.status_code == 403, response.text
            assert response.json()["reason"] == "forbidden"
            assert response.json()["command_id"] == body["command_id"]
            refused.append(body["command_id"])
        allowed = publish_body()
        created = await api.post("/commands", json=allowed, headers=await bearer(pool, "inspector"))
        assert created.status_code == 201, created.text
    # Other tests put malformed messages on the topic too: look for the ids as bytes.
    on_topic = {
        command_id
        for m in await read_messages(stack, stack.topics.commands)
        for command_id in (*refused, allowed["command_id"])
        if command_id.encode() in m.value
    }
    assert allowed["command_id"] in on_topic  # the reading sees what was produced
    assert not set(refused) & on_topic
