"""Failures that explain themselves: every command against a stack that is not running prints
one line saying what is missing and what to run, exits non-zero, and shows no traceback (the
commands are read from the typer app, so none is forgotten; `status` names each part stopped
and exits 1, `down` with nothing to stop says so and exits 0); invalid input is refused with a
true message in one line, exit 1. No secret is ever logged or printed."""

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.kafka_security import KafkaCredentials
from infra.private_files import write_private
from infra.processes import free_port
from infra.team_credentials import TeamCredentials, write_credentials_file
from services.cli.backup import Backup
from services.cli.main import app
from tests.cli import command_functions, rectrack

SECRET = "hunter2-known-secret"
# Every command that needs a running service, run against a stopped stack with valid arguments
# ({name}: a file the `files` fixture makes): one line saying what is missing and what to run,
# exit non-zero, no traceback. Keyed by the command as typed.
NEEDS_THE_STACK: dict[str, list[list[str]]] = {
    "report": [["report", "--as-of", "2024-09-18"]],
    "history": [["history", "x-2024/r1"]],
    "handover": [["handover", "x-2024/r1"]],
    "paper": [["paper", "--meeting", "2024-09-18"]],
    "load": [["load", "{commands}"]],
    "verify": [["verify"]],
    "replay": [["replay"]],
    "send": [["send", "{progress}", "--credentials", "{credentials}"]],
    "backup": [["backup", "-o", "{dir}/backup.json"]],
    "restore": [["restore", "{backup}"]],  # a readable backup: the database is what is missing
    "tokens list": [["tokens", "list"]],
    "tokens create": [["tokens", "create", "--name", "a", "--team", "t", "--role", "viewer"]],
    "tokens revoke": [["tokens", "revoke", "00000000-0000-0000-0000-000000000000"]],
    "topics create": [["topics", "create"]],
    "principals list": [["principals", "list"]],
    "principals revoke": [["principals", "revoke", "someone"]],
    "principals create": [
        ["principals", "create", "--name", "n", "--team", "t", "--role", "viewer", "-o", "{dir}/c"]
    ],
    "run": [
        ["run", "-c", "decider"],
        ["run", "-c", "projector"],
        ["run", "-c", "api"],
        ["run", "--no-infrastructure"],  # all three (with the infrastructure, it is `up`)
    ],
}
# The rest of `rectrack`, and where each is shown to do what it should with the stack stopped.
ELSEWHERE = {
    "status": "test_status_of_a_stopped_stack_says_each_part_is_stopped_and_exits_1",
    "down": "test_down_with_nothing_running_says_so_and_exits_0",
    "up": "starts the stack: tests/integration/test_lifecycle.py",
    "demo": "starts the stack (`up`), then loads the demo: tests/e2e/test_demo_and_api.py",
    "schema export": "needs no service: writes the subscribers' contract to files",
}
INVOCATIONS = [args for invocations in NEEDS_THE_STACK.values() for args in invocations]


def test_every_command_is_run_against_a_stopped_stack_or_said_where_it_is() -> None:
    """Read from the typer app itself: a command added later fails here until it is listed."""
    commands = set(command_functions(app))
    assert {"report", "tokens list", "principals revoke"} <= commands  # the reading works
    missing = sorted(commands - NEEDS_THE_STACK.keys() - ELSEWHERE.keys())
    assert not missing, f"add {missing} to NEEDS_THE_STACK (or to ELSEWHERE, saying why)"
    assert not (NEEDS_THE_STACK.keys() | ELSEWHERE.keys()) - commands  # no stale names
    assert not NEEDS_THE_STACK.keys() & ELSEWHERE.keys()


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


@pytest.fixture
def files(stopped: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The files the commands are given: each one valid, so the stack is what is missing."""
    commands = tmp_path / "commands.ndjson"
    commands.write_text("{}\n")
    progress = tmp_path / "progress.ndjson"
    progress.write_bytes(orjson.dumps(PROGRESS) + b"\n")
    credentials = tmp_path / "team.json"
    team_credentials(credentials, f"localhost:{stopped['RECTRACK_KAFKA_PORT']}")
    backup = tmp_path / "backup.json"
    document = Backup(
        format="rectrack-backup",
        version=1,
        created_at=datetime.now(UTC),
        schema_name="rectrack",
        api_tokens=[],
    )
    write_private(backup, document.model_dump_json().encode())
    return {
        "commands": str(commands),
        "progress": str(progress),
        "credentials": str(credentials),
        "backup": str(backup),
        "dir": str(tmp_path),
    }


PROGRESS = {
    "type": "ReportProgress",
    "data": {
        "recommendation_id": "x-2024/r1",
        "position": "Trained",
        "delivery_status": "on_track",
    },
}


def team_credentials(path: Path, bootstrap_servers: str) -> None:
    """A team system's credentials file whose password is the known secret."""
    kafka = KafkaCredentials(
        bootstrap_servers=bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        username="team-system",
        password=SECRET,
    )
    write_credentials_file(path, TeamCredentials(kafka, Ed25519PrivateKey.generate()))


@pytest.mark.parametrize("command", INVOCATIONS, ids=" ".join)
def test_a_stopped_stack_is_one_line_naming_what_to_run(
    stopped: dict[str, str], files: dict[str, str], command: list[str]
) -> None:
    args = [a.format(**files) for a in command]
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
    assert said in (
        f"cannot reach PostgreSQL at 127.0.0.1:{port} — run `rectrack up`",
        f"cannot reach Kafka at localhost:{kafka} — run `rectrack up`",
    ) or said.startswith(f"cannot reach Kafka at localhost:{kafka} — run `rectrack up`"), said
    assert SECRET not in done.stderr + done.stdout


def test_status_of_a_stopped_stack_says_each_part_is_stopped_and_exits_1(
    stopped: dict[str, str],
) -> None:
    """A line per part, each "stopped", and the last line (stderr) what to run: exit 1, so a
    script or a check can tell (it exits 0 only when every part runs and is ready)."""
    done = rectrack(stopped, "status", check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = [line.split("│") for line in done.stdout.splitlines() if line.count("│") == 5]
    states = {cells[1].strip(): cells[2].strip() for cells in rows}
    assert states == {
        "kafka": "stopped",
        "postgres": "stopped",
        "app (api, decider, projector)": "stopped",
        "api": "stopped",
        "decider": "stopped",
        "projector": "stopped",
    }, done.stdout
    assert done.stderr.strip() == (
        "error: stopped: kafka, postgres, app (api, decider, projector) — run `rectrack up`"
    )
    assert SECRET not in done.stderr + done.stdout


def test_down_with_nothing_running_says_so_and_exits_0(stopped: dict[str, str]) -> None:
    """Stopping what is stopped succeeds, as `up` of what runs does: what was asked for holds,
    and a script that tears down whatever may run need not tell the cases apart."""
    done = rectrack(stopped, "down", check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped: nothing (not running)"
    assert done.stderr == ""


def test_send_to_a_broker_elsewhere_names_the_address_and_the_file(
    stopped: dict[str, str], files: dict[str, str], tmp_path: Path
) -> None:
    """A team system's broker is not this home's: the advice is not `rectrack up`."""
    elsewhere = f"localhost:{free_port()}"
    credentials = tmp_path / "elsewhere.json"
    team_credentials(credentials, elsewhere)
    done = rectrack(
        stopped, "send", files["progress"], "--credentials", str(credentials), check=False
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: cannot reach Kafka at {elsewhere} (the bootstrap_servers of {credentials}) — "
        "check with whoever runs it that it is up (`rectrack status`), and the address"
    )
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


DAY = "use YYYY-MM-DD"
MOMENT = "use YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM]"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["report", "--as-of", "2024-13-45"],
            f"--as-of: 2024-13-45 is not a date (month 13 does not exist); {DAY}",
        ),
        (
            ["report", "--as-of", "2024-02-30"],
            f"--as-of: 2024-02-30 is not a date (February 2024 has 29 days); {DAY}",
        ),
        (["report", "--as-of", "18/09/2024"], f"--as-of: 18/09/2024 is not a date; {DAY}"),
        (
            ["report", "--as-of", "2024-09-18", "--since", "2024-9-1"],
            f"--since: 2024-9-1 is not a date; {DAY}",
        ),
        (
            ["report", "--as-of", "2024-09-18", "--known-at", "2024-09-18T25:00"],
            f"--known-at: 2024-09-18T25:00 is not a date or a time (hour 25: hours go up to 23); "
            f"{MOMENT}",
        ),
        (
            ["report", "--as-of", "1800-01-01"],
            "--as-of: 1800-01-01 is out of range; use a date from 1900-01-01 to ",
        ),
        (
            ["handover", "x-2024/r1", "--as-of", "2024-04-31"],
            f"--as-of: 2024-04-31 is not a date (April 2024 has 30 days); {DAY}",
        ),
        (
            ["paper", "--meeting", "2024-00-01"],
            f"--meeting: 2024-00-01 is not a date (month 0 does not exist); {DAY}",
        ),
        (
            ["paper", "--meeting", "1800-01-01"],
            "--meeting: meeting must be between 1900-01-01 and ",
        ),
        (
            ["paper", "--meeting", "2024-09-18", "--known-at", "noon"],
            f"--known-at: noon is not a date or a time; {MOMENT}",
        ),
        (
            ["report", "--as-of", "2024-09-18", "--since", "2024-10-01"],
            "--since 2024-10-01 is after --as-of 2024-09-18: nothing can close in between",
        ),
        (
            ["load", "{file}", "--loader-role", "superuser"],
            "--loader-role: no role 'superuser'; the roles are admin, contributor, "
            "inspector, viewer",
        ),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_invalid_input_is_refused_with_a_true_message(
    stopped: dict[str, str], tmp_path: Path, args: list[str], said: str
) -> None:
    """One line, `error: ` and the option first, exit 1 like every other failure: before
    anything is asked of the stack (which is stopped here)."""
    file = tmp_path / "commands.ndjson"
    file.write_text("{}\n")
    done = rectrack(stopped, *[a.format(file=file) for a in args], check=False)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {said}"), line
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
