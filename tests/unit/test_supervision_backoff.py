"""The supervisor's restart delays and the metrics token check (no processes, no network)."""

from infra.health_server import token_allows
from services.cli.stack import BACKOFF_CAP, BACKOFF_FIRST, backoff


def test_backoff_doubles_from_the_first_delay_up_to_the_cap() -> None:
    delays = [backoff(n) for n in range(1, 10)]
    assert delays[:4] == [BACKOFF_FIRST, 2 * BACKOFF_FIRST, 4 * BACKOFF_FIRST, 8 * BACKOFF_FIRST]
    assert max(delays) == BACKOFF_CAP
    assert delays == sorted(delays)


def test_the_metrics_token_is_a_bearer_token() -> None:
    assert token_allows(None, None)
    assert token_allows("s3cret", "Bearer s3cret")
    assert token_allows("s3cret", "bearer s3cret")
    assert not token_allows("s3cret", None)
    assert not token_allows("s3cret", "Bearer wrong")
    assert not token_allows("s3cret", "Basic s3cret")
