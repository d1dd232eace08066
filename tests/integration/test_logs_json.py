"""The running stack's log is JSON line by line (every library's records too, no Faust banner
or table, no stdout noise), holds one access line per request without its token or query, and
an unknown inspection is 404 in the API and an error in the CLI."""

import json
import time
import urllib.error
import urllib.request
import uuid

import asyncpg
import httpx

from infra.settings import Settings
from tests.cli import rectrack
from tests.e2e.helpers import token


def log_records(stack: Settings, until: str) -> list[dict[str, object]]:
    """Every record of the stack's log, each line parsed as JSON, once `until` is in it (an
    access line is written as its response ends, just after the client has it)."""
    deadline = time.monotonic() + 10
    while True:
        text = (stack.log_dir / "stack.log").read_text()
        if until in text or time.monotonic() > deadline:
            return [json.loads(line) for line in text.splitlines()]
        time.sleep(0.1)


async def test_the_stack_log_is_json_with_one_access_line_per_request(
    stack: Settings, pool: asyncpg.Pool, run_env: dict[str, str]
) -> None:
    secret = await token(pool, "viewer")
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        answered = await client.get(
            "/report",
            params={"as_of": "2024-09-18", "inspection": "no-such-id", "token": secret},
            headers={"Authorization": f"Bearer {secret}", "X-Request-ID": request_id},
        )
    assert answered.status_code == 404
    assert answered.json() == {"detail": "no inspection 'no-such-id'"}

    done = rectrack(
        run_env, "report", "--as-of", "2024-09-18", "--inspection", "no-such-id", check=False
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "error: --inspection: no inspection 'no-such-id'"

    records = log_records(stack, request_id)  # every line of every process parses
    text = (stack.log_dir / "stack.log").read_text()
    assert {"event", "level", "timestamp", "logger"} <= set(records[-1])
    access = [r for r in records if r.get("request_id") == request_id]
    assert len(access) == 1, access
    line = access[0]
    assert line["event"] == "http_request" and line["method"] == "GET"
    assert line["path"] == "/report" and line["status"] == 404
    assert isinstance(line["duration_ms"], float)
    assert secret not in text
    # The stack's password files hold secrets no log may show.
    for file in [stack.app_password_file, *stack.kafka_credentials_dir.glob("*.password")]:
        assert file.read_text().strip() not in text, file


def test_every_request_is_an_access_line_a_404_too(stack: Settings) -> None:
    with urllib.request.urlopen(f"{stack.api_url}/health", timeout=5) as response:
        assert response.status == 200
    try:
        urllib.request.urlopen(f"{stack.api_url}/no-such-route", timeout=5)
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
    records = log_records(stack, "/no-such-route")
    assert any(
        r.get("event") == "http_request"
        and r.get("path") == "/no-such-route"
        and r["status"] == 404
        for r in records
    )
