"""Markdown tables for BENCHMARKS.md from `bench run` result files.

python -m bench.summary bench/results/10000.json bench/results/100000.json ...
"""

from collections.abc import Callable, Sequence
from typing import Any

Result = dict[str, Any]
Column = tuple[str, Callable[[Result], str]]


def _n(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def _table(results: Sequence[Result], columns: Sequence[Column]) -> str:
    head = "| " + " | ".join(name for name, _ in columns) + " |"
    rule = "|" + "|".join("---:" for _ in columns) + "|"
    rows = ["| " + " | ".join(cell(r) for _, cell in columns) + " |" for r in results]
    return "\n".join([head, rule, *rows])


def throughput(results: Sequence[Result]) -> str:
    """Decider and replay beside their raw limits."""
    return _table(
        results,
        [
            ("events", lambda r: _n(r["events"])),
            ("decider commands/s", lambda r: _n(r["decide_per_s"])),
            ("raw produce+consume msgs/s", lambda r: _n(r["raw_produce_consume_per_s"])),
            ("decider / raw", lambda r: f"{r['decide_vs_raw']:.3f}"),
            ("replay events/s", lambda r: _n(r["replay_per_s"])),
            ("raw read + COPY rows/s", lambda r: _n(r["raw_read_copy_per_s"])),
            ("replay / raw", lambda r: f"{r['replay_vs_raw']:.3f}"),
            ("fresh decider ready s", lambda r: f"{r['decider_ready_seconds']:.1f}"),
        ],
    )


def queries(results: Sequence[Result]) -> str:
    """p50 / p99 of each query at idle and under ingest, in ms."""

    def cell(phase: str, query: str) -> Callable[[Result], str]:
        return lambda r: f"{_n(r[phase][query]['p50_ms'])} / {_n(r[phase][query]['p99_ms'])}"

    columns: list[Column] = [
        ("events", lambda r: _n(r["events"])),
        ("recommendations", lambda r: _n(r["recommendations_in_history"])),
    ]
    for query, label in (
        ("report_all", "report, all"),
        ("report_one_inspection", "report, one inspection"),
        ("history", "history"),
    ):
        columns.append((f"{label}: idle", cell("queries_idle", query)))
        columns.append((f"{label}: ingest", cell("queries_under_ingest", query)))
    return _table(results, columns)


def memory(results: Sequence[Result]) -> str:
    """Peak RSS of every process, in MB."""
    names = list(results[0]["peak_rss_mb"])
    return _table(
        results,
        [
            ("events", lambda r: _n(r["events"])),
            *((name, lambda r, name=name: _n(r["peak_rss_mb"].get(name))) for name in names),
        ],
    )


def summary(results: Sequence[Result]) -> str:
    """The three tables for these results, smallest history first."""
    ordered = sorted(results, key=lambda r: r["events"])
    return "".join(
        f"### {title}\n\n{table(ordered)}\n\n"
        for title, table in (
            ("Throughput", throughput),
            ("Queries (p50 / p99 ms)", queries),
            ("Peak memory (MB)", memory),
        )
    )
