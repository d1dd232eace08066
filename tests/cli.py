"""Running `rectrack` as real processes from tests."""

import subprocess
import sys


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
