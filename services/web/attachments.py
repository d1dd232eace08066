"""Documents served as downloads: a Content-Disposition that no file name can break out of.

`filename*` (RFC 6266 with RFC 5987's encoding) carries the name exactly, as percent-encoded
UTF-8; `filename` is a plain ASCII fallback for clients that read only that, with every
character that is not a letter, digit or one of ` ._-()` replaced by `_`, so no quote,
backslash, semicolon, path separator or control character reaches the header either way.
"""

import re
from urllib.parse import quote

_NOT_PLAIN = re.compile(r"[^A-Za-z0-9 ._()-]")
FALLBACK_NAME = "document"


def ascii_filename(name: str) -> str:
    """A plain ASCII stand-in for a file name (never empty, never starting with a dot)."""
    plain = _NOT_PLAIN.sub("_", name).strip(" .")
    return plain or FALLBACK_NAME


def content_disposition(name: str) -> str:
    """`attachment` with the file's name: an ASCII fallback and the exact UTF-8 name."""
    return (
        f"attachment; filename=\"{ascii_filename(name)}\"; filename*=UTF-8''{quote(name, safe='')}"
    )
