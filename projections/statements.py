"""SQL statements with their parameters, and rows turned into array parameters."""

from collections.abc import Sequence
from typing import Any, NamedTuple


class Statement(NamedTuple):
    """Parameterised SQL; never built by string formatting of values."""

    sql: str
    args: tuple[Any, ...]


def columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows turned into one list per column, for `unnest` of array parameters."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width
