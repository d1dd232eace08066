"""Writing a benchmark's result: JSON to stdout, and to a file when asked."""

import json
import sys
from pathlib import Path
from typing import Any


def publish(result: dict[str, Any], out: Path | None) -> None:
    """Print the result as JSON and, with a path, save it there too."""
    text = json.dumps(result, indent=2)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    sys.stdout.write(text + "\n")


def percentile(values: list[float], q: float) -> float:
    """The q-th quantile (0..1) of the values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
