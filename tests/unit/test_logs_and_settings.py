"""Logs: one JSON object per line for every library, secrets masked; settings refused by name."""

import json
import logging
import sys
from io import StringIO
from pathlib import Path

import pytest
import structlog

from infra.logs import configure_logging, redact_secrets
from infra.settings import KNOWN_SETTINGS, Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
# Tests that give a misspelt setting to see it refused.
MISSPELT_ON_PURPOSE = {"test_logs_and_settings.py", "test_failures_explained.py"}


def test_redaction_masks_secret_keys_and_secrets_in_text() -> None:
    event = redact_secrets(
        None,
        "info",
        {
            "event": "connecting to postgresql://app:hunter2@db/x with password=hunter2",
            "password": "hunter2",
            "api_token": "hunter2",
            "Authorization": "Bearer hunter2",
            "client_secret": "hunter2",
            "headers": {"cookie": "hunter2", "accept": "*/*"},
            "args": ["Bearer hunter2"],
            "token_id": "42",
        },
    )
    assert "hunter2" not in json.dumps(event)
    assert event["password"] == event["api_token"] == event["Authorization"] == "***"
    assert event["headers"] == {"cookie": "***", "accept": "*/*"}
    assert event["token_id"] == "42"  # an id, not a secret
    assert event["event"].startswith("connecting to postgresql://app:***@db/x")


def _captured(monkeypatch: pytest.MonkeyPatch, fmt: str) -> StringIO:
    stream = StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("info", fmt)
    return stream


def test_json_log_renders_every_library_one_object_per_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = _captured(monkeypatch, "json")
    structlog.get_logger("services.decider.decider").info(
        "command_decided", command_id="c-1", correlation_id="k-1", password="hunter2"
    )
    logging.getLogger("faust.worker").warning("+----+\n| a  |\n+----+")  # a Faust table
    logging.getLogger("aiokafka.conn").error("Unable connect to %r", "localhost:9092")
    logging.getLogger("uvicorn.error").warning("password=hunter2 in a message")
    for _ in range(3):  # asyncio's warning per send to a closed socket: debug now
        logging.getLogger("asyncio").warning("socket.send() raised exception.")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("asyncpg").exception("failed")
    lines = stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses on its own
    assert [r["logger"] for r in records] == [
        "services.decider.decider",
        "faust.worker",
        "aiokafka.conn",
        "uvicorn.error",
        "asyncpg",
    ]
    assert records[0]["command_id"] == "c-1" and records[0]["correlation_id"] == "k-1"
    assert records[1]["event"] == "+----+\n| a  |\n+----+"
    assert "RuntimeError: boom" in records[4]["exception"]
    assert "hunter2" not in stream.getvalue()


def test_console_format_is_not_json(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = _captured(monkeypatch, "console")
    structlog.get_logger("x").info("hello", where="here")
    line = stream.getvalue().strip()
    assert "hello" in line and "where=here" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_format_defaults_to_json_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECTRACK_LOG_FORMAT", raising=False)
    stream = _captured(monkeypatch, "")  # StringIO is not a terminal
    structlog.get_logger("x").info("hello")
    assert json.loads(stream.getvalue())["event"] == "hello"


def test_invalid_log_level_is_refused_naming_the_variable_and_the_values() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"RECTRACK_LOG_LEVEL": "verbose"})
    assert str(refused.value) == (
        "RECTRACK_LOG_LEVEL must be one of debug, info, warning, error, critical, got 'verbose'"
    )
    with pytest.raises(SettingsError, match="RECTRACK_LOG_FORMAT must be one of json, console"):
        Settings.from_env({"RECTRACK_LOG_FORMAT": "xml"})
    assert Settings.from_env({"RECTRACK_LOG_LEVEL": "WARN"}).log_level == "warning"


def test_misspelt_setting_is_named_with_the_closest_known() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"RECTRACK_LOG_LEVLE": "debug"})
    assert str(refused.value) == (
        "unknown setting RECTRACK_LOG_LEVLE; did you mean RECTRACK_LOG_LEVEL?"
    )
    with pytest.raises(SettingsError, match="unknown setting RECTRACK_WHATEVER "):
        Settings.from_env({"RECTRACK_WHATEVER": "1"})


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("RECTRACK_API_PORT", "80000", "RECTRACK_API_PORT must be a port from 1 to 65535"),
        ("RECTRACK_PG_PORT", "x", "RECTRACK_PG_PORT must be an integer, got 'x'"),
        ("RECTRACK_PARTITIONS", "0", "RECTRACK_PARTITIONS must be at least 1, got 0"),
    ],
)
def test_settings_types_and_ranges_name_the_variable(name: str, value: str, said: str) -> None:
    with pytest.raises(SettingsError, match=said):
        Settings.from_env({name: value})


def test_every_setting_the_project_uses_is_known() -> None:
    """Each RECTRACK_* name the project's files set or read (code, tests, Makefile, compose,
    bench, CI) is a known setting, so none of them is refused as misspelt."""
    import re

    used: set[str] = set()
    for path in ROOT.rglob("*"):
        if (
            path.is_file()
            and path.suffix in {".py", ".yml", ".yaml", ".toml", ".sql", ".sh", ""}
            and not {".venv", ".git", "node_modules"} & set(path.parts)
            # pip's build output (rectrack.egg-info/PKG-INFO holds the README, misspelt example too)
            and not any(part.endswith(".egg-info") for part in path.parts)
            and path.name not in MISSPELT_ON_PURPOSE
        ):
            text = path.read_text(errors="ignore")
            used |= set(re.findall(r"RECTRACK_[A-Z0-9_]*[A-Z0-9]", text))
    used -= {"RECTRACK_KAFKA"}  # README: "the RECTRACK_KAFKA_* variables"
    assert len(used) > 20
    assert used - KNOWN_SETTINGS == set()


def test_known_failures_are_one_line_and_bugs_keep_their_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncpg

    from infra.processes import free_port
    from services.cli.failures import explain

    for name in [n for n in __import__("os").environ if n.startswith("RECTRACK_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    port = free_port()
    monkeypatch.setenv("RECTRACK_PG_PORT", str(port))
    assert explain(asyncpg.UndefinedTableError('relation "event_log" does not exist')) == (
        'the database has no rectrack tables (relation "event_log" does not exist) — run '
        "`rectrack up`, which applies the migrations"
    )
    refused = ConnectionRefusedError(111, f"Connect call failed ('127.0.0.1', {port})")
    assert explain(refused) == f"cannot reach PostgreSQL at 127.0.0.1:{port} — run `rectrack up`"
    wrapped = RuntimeError("while reading")
    wrapped.__cause__ = refused
    assert explain(wrapped) == explain(refused)
    assert explain(KeyError("a bug")) is None
    monkeypatch.setenv("RECTRACK_PG_PROT", "1")
    assert explain(SettingsError("x")) == "x"
    assert explain(refused) == ("unknown setting RECTRACK_PG_PROT; did you mean RECTRACK_PG_PORT?")
