"""The decider's Prometheus metrics (served on RECTRACK_DECIDER_METRICS_PORT)."""

from prometheus_client import Counter, Histogram

COMMANDS_ACCEPTED = Counter(
    "rectrack_commands_accepted", "Commands the decider accepted (events appended).", ["type"]
)
COMMANDS_REJECTED = Counter(
    "rectrack_commands_rejected", "Commands the decider rejected, by reason.", ["reason"]
)
DEAD_LETTERS = Counter(
    "rectrack_dead_letters", "Messages this decider wrote to the dead-letter topic."
)
DECIDE_BATCH_SECONDS = Histogram(
    "rectrack_decide_batch_duration_seconds",
    "Time to decide a batch of commands, from taking it to its outcomes acknowledged.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
