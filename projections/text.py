"""Stored text made safe to print: into Markdown, or onto a terminal; pure.

Stored text (titles, positions, rationales, names) is written by people outside the team, and
Markdown output is read in renderers that pass HTML through and turn punctuation into links,
images and headings. Every interpolated value therefore goes through `markdown_text`: HTML
metacharacters become entities, Markdown's inline metacharacters are backslash-escaped, and
line breaks become spaces, so a value can never open a block (heading, list, quote, fence,
table row) of its own. Defined once here because both the handover pack (read side) and the
committee paper (`services.look`'s `md` filter) write Markdown, and the read side may not
import the faces.

Control characters are shown as U+FFFD by both (`printable`): an ESC in a stored title must
not drive the terminal of whoever prints it (colours, hyperlinks, a cleared screen). Commands
refuse them now, but the log keeps whatever an earlier version accepted.
"""

import re

from events.types import SINGLE_LINE_REFUSED

# The control characters commands refuse (one definition, in events.types); of them, tab and
# newline are shown as they are, the rest as U+FFFD.
_KEPT = "\t\n"
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Inline metacharacters of CommonMark and GFM (emphasis, code, links and images, tables,
# strikethrough, math on GitHub) plus `#` (a closing ATX sequence) and the backslash itself.
_INLINE = set("\\`*_[]#|~$")
# What opens a block when it starts a line: bullets, quotes, setext underlines, ordered items.
_BLOCK_START = re.compile(r"^([-+=>]|\d{1,9}[.)])")


def printable(text: str) -> str:
    """`text` with every control character but tab and newline shown as U+FFFD."""
    return SINGLE_LINE_REFUSED.sub(lambda m: m.group() if m.group() in _KEPT else "\ufffd", text)


def markdown_text(value: object) -> str:
    """`value` as Markdown that renders as exactly its text, on one line."""
    text = printable(" ".join(str(value).splitlines()).strip())
    out = []
    for char in text:
        if char in _HTML:
            out.append(_HTML[char])
        elif char in _INLINE:
            out.append("\\" + char)
        else:
            out.append(char)
    escaped = "".join(out)
    # A value is usually interpolated after other text, but one placed at a line's start must
    # not become a list item or a quote either.
    match = _BLOCK_START.match(escaped)
    if match:
        head = match.group(1)
        escaped = head[:-1] + "\\" + head[-1] + escaped[len(head) :]
    return escaped
