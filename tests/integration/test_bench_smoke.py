"""The benchmark harness at a tiny size, so it never rots (figures: BENCHMARKS.md)."""

import pytest

from bench import peer_eventsourcing as peer
from bench import recover
from bench.run import run
from infra.settings import Settings

pytestmark = pytest.mark.integration


async def test_the_benchmark_harness_runs_and_reports_every_figure(
    run_env: dict[str, str], settings: Settings
) -> None:
    result = await run(300, seed=3, env=run_env, query_seconds=2, ingest_rate=50)
    assert result["decide_accepted"] == 299
    # Every command's event, and the gateway key's registration of itself.
    assert result["replay_events"] == 300 + 1
    for key in (
        "decide_per_s",
        "raw_produce_consume_per_s",
        "replay_per_s",
        "raw_read_copy_per_s",
        "decide_vs_raw",
        "replay_vs_raw",
        "decide_cpu_us_per_command",
    ):
        assert result[key] > 0, key
    for phase in ("queries_idle", "queries_under_ingest"):
        for query in ("report_all", "report_one_inspection", "history"):
            figures = result[phase][query]
            assert figures["n"] > 0 and 0 < figures["p50_ms"] <= figures["p99_ms"], (phase, query)
    assert result["ingest_sent_per_s"] > 0 and result["decider_ready_seconds"] > 0
    for process in ("decider", "projector", "api", "bench_process", "decider_during_decide"):
        assert result["peak_rss_mb"][process] > 0, process


async def test_the_peer_benchmark_runs(settings: Settings) -> None:
    result = await peer.run(300, seed=3, database_url=settings.database_url)
    assert result["peer_events"] == 300
    assert result["peer_append_per_s"] > 0 and result["peer_projection_per_s"] > 0


async def test_the_recovery_benchmark_runs(run_env: dict[str, str], settings: Settings) -> None:
    result = await recover.run(200, seed=3, env=run_env)
    assert result["log_events"] == 200 + 1  # and the gateway key's registration
    assert result["identical"] and result["replay_identical"]
    assert result["replay_events"] == 201
    for key in ("initdb_and_start_seconds", "projector_rebuild_seconds", "recovery_seconds"):
        assert result[key] > 0, key
