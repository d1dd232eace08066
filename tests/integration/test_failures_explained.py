"""Failures that explain themselves: every command against a stack that is not running prints
one line saying what is missing and what to run, exits non-zero, and shows no traceback;
invalid input is refused with a true message. No secret is ever logged or printed."""

import json
import os
import stat
from pathlib import Path

import pytest

from infra.processes import free_port
from tests.cli import rectrack

SECRET = "hunter2-known-secret"
# Every command that needs the stack, with valid arguments.
COMMANDS = [
    ["report", "--as-of", "2024-09-18"],
    ["history", "x-2024/r1"],
    ["handover", "x-2024/r1"],
    ["paper", "--meeting", "2024-09-18"],
    ["load", "{file}"],
    ["verify"],
    ["replay"],
    ["tokens", "list"],
    ["tokens", "create", "--name", "a", "--team", "t", "--role", "viewer"],
    ["tokens", "revoke", "00000000-0000-0000-0000-000000000000"],
    ["topics", "create"],
    ["principals", "list"],
    ["principals", "revoke", "someone"],
    ["principals", "create", "--name", "n", "--team", "t", "--role", "viewer", "-o", "{dir}/c"],
    ["backup", "-o", "{dir}/backup.bin"],
    ["restore", "{dir}/none.bin"],
    ["run", "-c", "decider"],
    ["run", "-c", "projector"],
    ["run", "-c", "api"],
]


def _private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(text + "\n")
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)


@pytest.fixture
def stopped(tmp_path: Path) -> dict[str, str]:
    """A home that ran once (its passwords are there, known to this test) with nothing running."""
    home = tmp_path / "home"
    _private(home / "postgres-app.password", SECRET)
    for principal in ("admin", "api", "decider", "projector"):
        _private(home / "kafka-credentials" / f"rectrack-{principal}.password", SECRET)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECTRACK_")}
    env.pop("DATABASE_URL", None)
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    return {
        **env,
        "RECTRACK_HOME": str(home),
        "RECTRACK_PG_PORT": str(free_port()),
        "RECTRACK_KAFKA_PORT": str(free_port()),
        "RECTRACK_KAFKA_CONTROLLER_PORT": str(free_port()),
        "RECTRACK_API_PORT": str(free_port()),
        "RECTRACK_LOG_FORMAT": "json",
        "RECTRACK_LOG_LEVEL": "info",
    }


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_stopped_stack_is_one_line_naming_what_to_run(
    stopped: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    file = tmp_path / "commands.ndjson"
    file.write_text("{}\n")
    args = [a.format(file=file, dir=tmp_path) for a in command]
    done = rectrack(stopped, *args, check=False, timeout=90)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr
    lines = done.stderr.strip().splitlines()
    port = stopped["RECTRACK_PG_PORT"]
    kafka = stopped["RECTRACK_KAFKA_PORT"]
    if args[0] == "run":  # a service: its log is JSON to the last line, the failure's record
        records = [json.loads(line) for line in lines]
        said = records[-1]["reason"]
        assert records[-1]["level"] == "error"
    else:
        assert len(lines) == 1, done.stderr
        said = lines[0].removeprefix("error: ")
        assert lines[0].startswith("error: ")
    if args[0] == "restore":  # the file is read before anything is restored
        assert said.startswith(f"cannot read the backup in {tmp_path}/none.bin"), said
        return
    assert said in (
        f"cannot reach PostgreSQL at 127.0.0.1:{port} — run `rectrack up`",
        f"cannot reach Kafka at localhost:{kafka} — run `rectrack up`",
    ) or said.startswith(f"cannot reach Kafka at localhost:{kafka} — run `rectrack up`"), said
    assert SECRET not in done.stderr + done.stdout


def test_debug_shows_the_traceback(stopped: dict[str, str]) -> None:
    done = rectrack(stopped, "--debug", "report", "--as-of", "2024-09-18", check=False)
    assert done.returncode != 0
    assert "Traceback" in done.stderr
    assert SECRET not in done.stderr


def test_a_debug_log_of_a_failing_component_holds_no_secret_and_is_all_json(
    stopped: dict[str, str],
) -> None:
    """Everything logged at debug (aiokafka's connection attempts too) by a component whose
    password files and DATABASE_URL hold a known secret: JSON, line by line, without it."""
    env = {
        **stopped,
        "RECTRACK_LOG_LEVEL": "debug",
        "DATABASE_URL": f"postgresql://rectrack_app:{SECRET}@127.0.0.1:"
        f"{stopped['RECTRACK_PG_PORT']}/rectrack",
    }
    done = rectrack(env, "run", "-c", "decider", check=False, timeout=90)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) > 1  # debug: the libraries' records are there
    records = [json.loads(line) for line in lines]
    assert any(r.get("logger", "").startswith("aiokafka") for r in records)
    assert SECRET not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["report", "--as-of", "2024-13-45"], "not a valid date: month must be in 1..12"),
        (["report", "--as-of", "2024-02-30"], "not a valid date: day is out of range for month"),
        (["report", "--as-of", "18/09/2024"], "not a valid date: '18/09/2024' is not YYYY-MM-DD"),
        (["paper", "--meeting", "2024-00-01"], "not a valid date: month must be in 1..12"),
        (
            ["report", "--as-of", "2024-09-18", "--since", "2024-10-01"],
            "error: --since 2024-10-01 is after --as-of 2024-09-18",
        ),
        (
            ["load", "{file}", "--loader-role", "superuser"],
            "error: --loader-role: no role 'superuser'; the roles are admin, contributor, "
            "inspector, viewer",
        ),
    ],
)
def test_invalid_input_is_refused_with_a_true_message(
    stopped: dict[str, str], tmp_path: Path, args: list[str], said: str
) -> None:
    file = tmp_path / "commands.ndjson"
    file.write_text("{}\n")
    done = rectrack(stopped, *[a.format(file=file) for a in args], check=False)
    assert done.returncode != 0
    # typer frames a usage error in a box: its text, unwrapped
    text = " ".join(done.stderr.replace("│", " ").split())
    assert said in text, done.stderr
    assert "Traceback" not in done.stderr and "http" not in done.stderr


def test_a_misspelt_setting_is_named(stopped: dict[str, str]) -> None:
    env = {**stopped, "RECTRACK_LOG_LEVLE": "debug"}
    done = rectrack(env, "report", "--as-of", "2024-09-18", check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: unknown setting RECTRACK_LOG_LEVLE; did you mean RECTRACK_LOG_LEVEL?"
    )
    env = {**stopped, "RECTRACK_LOG_LEVEL": "verbose"}
    done = rectrack(env, "status", check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: RECTRACK_LOG_LEVEL must be one of debug, info, warning, error, critical, "
        "got 'verbose'"
    )
