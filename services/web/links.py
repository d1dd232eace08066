"""Links built from stored text: only web addresses become links.

The log may hold any text in an inspection's `url` (events from before the command refused other
schemes, or written straight to Kafka); `javascript:` or `data:` in an href runs in the page.
"""

from urllib.parse import urlsplit

from services.web.params import control_character_reason

WEB_SCHEMES = frozenset({"http", "https"})


def is_web_url(value: object) -> bool:
    """True for an absolute http(s) URL with a host and no whitespace or control characters."""
    if not isinstance(value, str) or value != value.strip() or " " in value:
        return False
    if control_character_reason(value) is not None:
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in WEB_SCHEMES and bool(parts.hostname)
