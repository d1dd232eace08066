"""The projector's Prometheus metrics (served on RECTRACK_PROJECTOR_METRICS_PORT)."""

from prometheus_client import Histogram

PROJECTION_BATCH_SECONDS = Histogram(
    "rectrack_projection_batch_duration_seconds",
    "Time to apply a batch of events to a projection with its checkpoint.",
    ["projection"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
