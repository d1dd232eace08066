"""The look every page shares (dashboard and paper): the base layout and the filters."""

from datetime import date
from importlib import resources
from pathlib import Path

import jinja2

from projections.status import STATUS_WORDS
from projections.text import markdown_text

# PostgreSQL keeps dates outside its range as infinity; its JSON says so in words.
_INFINITE = ("infinity", "-infinity")


class Verbatim(str):
    """Text a Markdown template prints as it is: built by our code and safe by construction
    (a shell command in a code span, a percent-encoded link), never stored text."""

    __slots__ = ()


def day(value: object) -> str:
    """A date in words; '–' when there is none, or when the store says only 'infinity'."""
    if value is None or value == "" or value in _INFINITE:
        return "–"
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return "–"
    if not isinstance(value, date):
        return "–"
    # Not strftime: it writes year 1 as "1" on glibc but "0001" elsewhere; this is the same
    # everywhere, for every year Python can hold.
    return f"{value.day:02d} {value:%B} {value.year:04d}"


def _markdown_finalize(value: object) -> object:
    """Every `{{ … }}` of a Markdown template is escaped unless our code marked it Verbatim."""
    if isinstance(value, Verbatim):
        return str(value)
    return markdown_text("" if value is None else value)


def _folder(package: str) -> Path:
    return Path(str(resources.files(package).joinpath("templates")))


def environment(package: str, *, markdown: bool = False) -> jinja2.Environment:
    """A Jinja environment over a package's templates and the shared layout.

    HTML templates are autoescaped by Jinja. Markdown has no autoescape in Jinja, so with
    `markdown` every printed value is passed through the `md` escaping (`finalize`): a template
    cannot forget it, and text can never open a heading, a link or raw HTML.
    """
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(_folder(package)), jinja2.FileSystemLoader(_folder(__name__))]
        ),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_markdown_finalize if markdown else None,
    )
    env.filters["status"] = lambda s: STATUS_WORDS.get(s, s)
    env.filters["day"] = day
    # Explicit `| md` in a Markdown template is not escaped twice by `finalize`.
    env.filters["md"] = lambda value: Verbatim(markdown_text(value))
    return env
