"""docker-compose.yml describes the same topology and a Compose parser accepts it."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_accepts_the_file() -> None:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is installed by `make test` (Debian package docker-compose)"
    done = subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("service", ["kafka", "postgres", "api", "decider", "projector"])
def test_every_service_has_a_health_check_or_waits_for_healthy_ones(service: str) -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][service]
    assert "healthcheck" in spec or all(
        dep.get("condition") in ("service_healthy", "service_completed_successfully")
        for dep in spec["depends_on"].values()
    )
