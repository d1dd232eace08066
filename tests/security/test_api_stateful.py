"""schemathesis as an admin, with stateful links, on an API of its own: nothing answers 5xx.

The admin may create inspections and recommendations at random, so this runs against an
instance with its own topics and schema (the session's broker and database), never the shared
stack whose reports other tests compare with the public record. Stateful runs follow the
OpenAPI links of `POST /commands` (the outcome, the inspection, the recommendation's history).
"""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.processes import free_port
from infra.settings import Settings
from tests.cli import rectrack, start_app
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_stack(settings: Settings, run_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """API, decider and projector of their own, on the session's broker and database."""
    run_id = uuid.uuid4().hex[:8]
    env = run_env | {
        "RECTRACK_API_PORT": str(free_port()),
        "RECTRACK_TOPIC_PREFIX": f"fuzz-{run_id}.",
        "RECTRACK_DB_SCHEMA": f"fuzz_{run_id}",
    }
    own = Settings.from_env(env)
    log_path = settings.log_dir / f"fuzz-{run_id}.log"
    process = start_app(env, own.api_url, log_path)
    try:
        yield own.api_url, env
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "fuzz-stack.log").write_bytes(log_path.read_bytes())


async def test_no_sequence_of_admin_requests_makes_the_api_answer_5xx(
    own_stack: tuple[str, dict[str, str]],
) -> None:
    api_url, env = own_stack
    who = ["--name", "Fuzzing admin", "--team", "secretariat", "--role", "admin"]
    secret = rectrack(env, "tokens", "create", *who).stdout.strip().splitlines()[-1]
    schemathesis = Path(sys.executable).with_name("schemathesis")
    process = await asyncio.create_subprocess_exec(
        str(schemathesis),
        "run",
        f"{api_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {secret}",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--checks",
        "not_a_server_error,content_type_conformance,use_after_free,"
        "ensure_resource_availability,ignored_auth",
        "--exclude-path",
        "/events/stream",
        "--max-examples",
        "15",
        "--request-timeout",
        "20",
        "--seed",
        "20261201",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=str(ARTIFACTS.parent),
        env={**os.environ, "NO_COLOR": "1"},
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=420)
    text = output.decode()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "schemathesis-stateful.txt").write_text(text)
    assert process.returncode == 0, text[-4000:]
    assert "Stateful" in text or "stateful" in text, text[-2000:]
