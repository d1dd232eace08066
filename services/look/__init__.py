"""The look every HTML page shares (dashboard and paper): the base layout and the filters."""

from importlib import resources
from pathlib import Path

import jinja2

from projections.status import STATUS_WORDS


def _folder(package: str) -> Path:
    return Path(str(resources.files(package).joinpath("templates")))


def environment(package: str) -> jinja2.Environment:
    """A Jinja environment over a package's templates and the shared layout."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(_folder(package)), jinja2.FileSystemLoader(_folder(__name__))]
        ),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["status"] = lambda s: STATUS_WORDS.get(s, s)
    env.filters["day"] = lambda d: f"{d:%d %B %Y}" if d else "–"
    return env
