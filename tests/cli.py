"""Running `rectrack` as real processes from tests, and its commands as the typer app has them."""

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer


def command_functions(app: typer.Typer, prefix: str = "") -> dict[str, Callable[..., Any]]:
    """Every command and subcommand of a typer app, as typed ("tokens list"), with its function:
    read from the app itself, so a command added later is in it."""
    found: dict[str, Callable[..., Any]] = {}
    for command in app.registered_commands:
        assert command.callback is not None
        # typer's own naming: the function's name, lower case, "_" as "-"
        name = command.name or command.callback.__name__.lower().replace("_", "-")
        found[f"{prefix}{name}"] = command.callback
    for group in app.registered_groups:
        assert group.typer_instance is not None and group.name
        found |= command_functions(group.typer_instance, f"{prefix}{group.name} ")
    return found


def rectrack(
    env: dict[str, str], *args: str, check: bool = True, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run a CLI command to completion; with check, fail showing its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert not check or done.returncode == 0, f"rectrack {args}: {done.stderr[-3000:]}"
    return done


def start_component(env: dict[str, str], component: str) -> subprocess.Popen[bytes]:
    """Start one component (`rectrack run -c NAME`) in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "-c", component],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def api_healthy(url: str) -> bool:
    """The API at this URL answers /health with 200."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_app(env: dict[str, str], api_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    """`rectrack run --no-infrastructure` in the background, once its API answers."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", "--no-infrastructure"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while not api_healthy(api_url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(
                f"rectrack run did not start; see {log_path}:\n{log_path.read_text()[-3000:]}"
            )
        time.sleep(0.3)
    return process
