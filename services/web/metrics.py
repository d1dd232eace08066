"""The API's Prometheus metrics: requests by method, route template and status, and their
latency; at each scrape, the projection's lag and the topics' replication."""

from collections.abc import Iterable

from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from starlette.types import Scope

from infra.kafka_topics import report
from infra.settings import Settings
from infra.topic_policy import prometheus_text as topics_prometheus_text
from projections.lag import measure, metric_families
from projections.recommendations.projection import RECOMMENDATIONS

HTTP_REQUESTS = Counter(
    "rectrack_http_requests",
    "HTTP requests the API answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "rectrack_http_request_duration_seconds",
    "Time from a request's arrival to its answer's start, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# A path no route matches: one label, whatever was asked (no label per made-up path).
UNMATCHED = "unmatched"


def count_request(scope: Scope, status: int, seconds: float) -> None:
    """Count one HTTP request and its time to the answer's start, by its route's template."""
    route = scope.get("route")
    template = getattr(route, "path", None) or UNMATCHED
    labels = (scope["method"], template, str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_SECONDS.labels(*labels).observe(seconds)


class _Snapshot(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


async def api_metrics(app: FastAPI) -> bytes:
    """Everything the API's /metrics shows, as Prometheus text."""
    settings: Settings = app.state.settings
    async with app.state.pool.acquire() as conn:
        lag = await measure(app.state.offsets, conn, settings.topics, RECOMMENDATIONS)
    topics = await report(app.state.admin, settings)
    families = metric_families(lag)
    families += text_string_to_metric_families(topics_prometheus_text(topics.present))
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_Snapshot(families))
    return generate_latest(REGISTRY) + generate_latest(scraped)
