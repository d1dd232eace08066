"""`rectrack up / status / down` on an instance of its own, side by side with the test stack."""

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.processes import free_port
from tests.cli import rectrack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env |= {
        "RECTRACK_HOME": str(tmp_path_factory.mktemp("lifecycle-home")),
        "RECTRACK_KAFKA_PORT": str(free_port()),
        "RECTRACK_KAFKA_CONTROLLER_PORT": str(free_port()),
        "RECTRACK_PG_PORT": str(free_port()),
        "RECTRACK_API_PORT": str(free_port()),
        "RECTRACK_PARTITIONS": "2",
        "RECTRACK_TOPIC_PREFIX": f"life-{uuid.uuid4().hex[:6]}.",
    }
    yield env
    rectrack(env, "down", check=False)


def test_a_taken_port_gives_an_error_naming_it(own_env: dict[str, str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(own_env["RECTRACK_KAFKA_PORT"])))
        holder.listen()
        result = rectrack(own_env, "up", check=False)
    assert result.returncode != 0
    assert own_env["RECTRACK_KAFKA_PORT"] in result.stderr
    assert "already in use" in result.stderr


def test_up_twice_is_harmless_and_status_reports_addresses(own_env: dict[str, str]) -> None:
    first = rectrack(own_env, "up")
    assert "started:" in first.stdout
    second = rectrack(own_env, "up")
    assert "nothing (already running)" in second.stdout
    # `up` returns once every component is ready: status says so at once, exit 0.
    done = rectrack(own_env, "status", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    status = done.stdout
    assert f"http://localhost:{own_env['RECTRACK_API_PORT']}" in status
    assert f"localhost:{own_env['RECTRACK_KAFKA_PORT']}" in status
    assert "stopped" not in status


def test_down_stops_everything_and_a_stale_pid_file_is_handled(own_env: dict[str, str]) -> None:
    down = rectrack(own_env, "down")
    assert "app" in down.stdout and "kafka" in down.stdout and "postgres" in down.stdout
    run_dir = Path(own_env["RECTRACK_HOME"]) / "run"
    dead = subprocess.Popen(["true"])
    dead.wait()
    (run_dir / "kafka.pid").write_text(str(dead.pid))
    (run_dir / "app.pid").write_text(str(dead.pid))
    stopped = rectrack(own_env, "status", check=False)
    assert stopped.returncode == 1
    assert stopped.stderr.startswith("error: stopped: kafka, postgres, app")
    status = stopped.stdout
    assert "running" not in status
    assert not (run_dir / "kafka.pid").exists()
    assert "nothing (not running)" in rectrack(own_env, "down").stdout
