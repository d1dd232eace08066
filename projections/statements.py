"""A SQL statement with its parameters: what pure projections return."""

from typing import Any, NamedTuple


class Statement(NamedTuple):
    """Parameterised SQL; never built by string formatting of values."""

    sql: str
    args: tuple[Any, ...]
