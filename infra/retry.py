"""How long a worker waits before retrying work while the broker or the database is away."""

RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)


def retry_delay(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (0-based): backing off, then steady."""
    return RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
