"""structlog set-up: one pipeline renders every record, ours and every library's, one per line.

`RECTRACK_LOG_FORMAT=json` writes one JSON object per line (the default when stderr is not a
terminal: a service's log file, a container, CI); `console` writes coloured key-value lines
(the default on a terminal). structlog's own events and stdlib `logging` records (aiokafka,
faust/mode, uvicorn, asyncpg, asyncio…) go through the same processors: context variables,
level, logger name, timestamp, the secrets' redaction, the renderer. While tracing is on
(infra/tracing.py), a record made inside a span carries its `trace_id` and `span_id`. Nothing
is logged with a secret in it: values of keys that name one (password, token, authorization,
secret, cookie…) are masked, and so is a password in a URL or a `password=` parameter of any
text.
"""

import logging
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from infra.settings import LOG_FORMATS, LOG_LEVELS, REDACTED
from infra.tracing import add_trace_ids

# Keys whose values are secrets, wherever they appear in an event (also nested).
# (`token_id`, `key_id`: ids, not secrets, are kept.)
_SECRET_KEY = re.compile(
    r"(^|[_-])(pass(word|wd|phrase)?|secret|token|authori[sz]ation|cookie|api[_-]?key|"
    r"credentials?|private[_-]?key|dsn|database_url)$",
    re.IGNORECASE,
)
# Secrets inside text: a URL's password, `password=…` parameters, a bearer token.
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@")
_PASSWORD_PARAM = re.compile(r"\b(password|passwd|pwd|token|secret)=[^&\s,;]+", re.IGNORECASE)
_BEARER = re.compile(r"\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)

# Libraries whose INFO records are chatter (Faust's tables and banners, aiokafka's joins,
# uvicorn's start-up): they log from WARNING unless RECTRACK_LOG_LEVEL=debug.
_CHATTY = (
    "aiokafka",
    "kafka",
    "faust",
    "mode",
    "asyncpg",
    "asyncio",
    "uvicorn",
    "httpx",
    "matplotlib",
    "weasyprint",
    "fontTools",
)
# asyncio's repeated warning about writing to a closed socket: debug, not a warning per send.
_DEMOTED = ("socket.send() raised exception.",)


def redact_text(text: str) -> str:
    """Text with any password in a URL, secret parameter or bearer token masked."""
    text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)
    text = _PASSWORD_PARAM.sub(rf"\g<1>={REDACTED}", text)
    return _BEARER.sub(rf"\g<1> {REDACTED}", text)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else _redact(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: mask every secret of an event (see the module's docstring)."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        elif isinstance(value, (str, Mapping, list, tuple)):
            event_dict[key] = _redact(value)
    return event_dict


class _Demote(logging.Filter):
    """Demote known noisy warnings (asyncio's per-send socket warning) to DEBUG."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in _DEMOTED:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.threshold <= logging.DEBUG
        return True


def log_format_default() -> str:
    """RECTRACK_LOG_FORMAT, else json when stderr is not a terminal and console when it is."""
    chosen = (os.environ.get("RECTRACK_LOG_FORMAT") or "").strip().lower()
    if chosen in LOG_FORMATS:
        return chosen
    try:
        return "console" if sys.stderr.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def configure_logging(
    level: str = "info", fmt: str | None = None, *, quiet_libraries: bool = False
) -> None:
    """Configure structlog and the stdlib root logger; again in a process replaces the first.

    `level` is one of LOG_LEVELS (Settings refuses any other); `fmt` json or console, None for
    `log_format_default()`. `quiet_libraries`: the libraries log nothing unless `level` is
    debug (a CLI command: its failure is one line of its own, not aiokafka's retries too).
    """
    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    numeric = logging.getLevelNamesMapping()[level.upper()]
    fmt = fmt or log_format_default()
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,  # trace_id and span_id while a span is current (tracing on)
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: structlog.typing.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        final: list[structlog.typing.Processor] = [structlog.processors.format_exc_info]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        final = []
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *final,
            redact_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers.clear()
    root.addHandler(handler)
    root.setLevel(numeric)
    if numeric <= logging.DEBUG:
        library_level = numeric
    elif quiet_libraries:
        library_level = logging.CRITICAL + 1
    else:
        library_level = max(numeric, logging.WARNING)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(library_level)
    asyncio_logger = logging.getLogger("asyncio")
    for old in [f for f in asyncio_logger.filters if isinstance(f, _Demote)]:
        asyncio_logger.removeFilter(old)
    asyncio_logger.addFilter(_Demote(numeric))
    # Uvicorn's access log is replaced by ours (services/web/access.py), one line per request.
    logging.getLogger("uvicorn.access").disabled = True
    structlog.configure(
        processors=[
            *shared[:-1],
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
