"""Render the committee paper as Markdown, HTML or PDF, with a chart per inspection.

CPU-bound and not thread-safe (matplotlib, WeasyPrint): the API runs it in the process pool of
`services.paper.service`, the CLI in its own process. Stored text reaches every output, so
each output escapes it: HTML by Jinja's autoescape, Markdown by the `md` finalize of
`services.look`, charts by switching matplotlib's mathtext off, and the one shell command a
paper prints by `shlex` quoting of validated words.
"""

import base64
import functools
import io
import logging
import shlex
from datetime import date
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import jinja2
import matplotlib
import structlog

matplotlib.use("Agg")  # no display: charts are files
import matplotlib.pyplot as plt

from events.types import Slug
from services.look import Verbatim, environment
from services.paper.assemble import Paper

log = structlog.get_logger(__name__)

EPOCH = date(1970, 1, 1)
# Chart text is data, never markup: "$\foo$" in a title is mathtext to matplotlib, which then
# fails the whole figure (and once the whole paper); the svg hash salt keeps ids stable.
CHART_RC: dict[Any, Any] = {
    "text.parse_math": False,
    "text.usetex": False,
    "svg.hashsalt": "rectrack",
}


@functools.cache
def templates() -> jinja2.Environment:
    """The HTML paper's templates, in the look the dashboard shares."""
    return environment("services.paper")


@functools.cache
def markdown_templates() -> jinja2.Environment:
    """The Markdown paper's templates: every printed value escaped for Markdown."""
    return environment("services.paper", markdown=True)


def _days(day: date) -> float:
    """Matplotlib's date number: days since its default epoch, 1970-01-01."""
    return float((day - EPOCH).days)


def chart_svg(title: str, series: list[tuple[date, int, int]], committee: list[date]) -> str:
    """Closed and open recommendations over time, committee dates marked; deterministic SVG."""
    with plt.rc_context(CHART_RC):
        fig, ax = plt.subplots(figsize=(6.4, 2.6), dpi=100)
        try:
            days = [d for d, _, _ in series]
            x = [_days(d) for d in days]
            ax.step(x, [c for _, c, _ in series], where="post", label="Closed", color="#1b6e3a")
            ax.step(x, [o for _, _, o in series], where="post", label="Open", color="#b3261e")
            for meeting in committee:
                if days and days[0] <= meeting <= days[-1]:
                    ax.axvline(_days(meeting), color="#555555", linestyle=":", linewidth=1)
            ax.xaxis_date()
            ax.set_title(title, fontsize=10, parse_math=False)
            ax.set_ylabel("recommendations")
            ax.legend(loc="upper left", fontsize=8, frameon=False)
            ax.grid(axis="y", alpha=0.3)
            fig.autofmt_xdate()
            fig.tight_layout()
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", metadata={"Date": None})
        finally:
            plt.close(fig)
    return buffer.getvalue()


def charts(paper: Paper) -> dict[str, str | None]:
    """SVG chart per inspection id; None where the chart failed.

    One inspection's chart failing (whatever its data) must not cost the committee the
    paper: the paper says the chart is missing, and the log says why.
    """
    out: dict[str, str | None] = {}
    for section in paper.sections:
        inspection_id = section.line.inspection_id
        try:
            out[inspection_id] = chart_svg(section.line.title, section.chart, paper.committee_dates)
        except Exception as exc:  # contained per inspection, by design
            log.warning(
                "paper_chart_failed",
                inspection_id=inspection_id,
                meeting=str(paper.meeting),
                error=f"{type(exc).__name__}: {exc}",
            )
            out[inspection_id] = None
    return out


def chart_link(folder: str, inspection_id: Slug) -> str:
    """A relative link to a chart file, percent-encoded so it is one Markdown link target."""
    return quote(f"{folder}/{inspection_id}.svg")


def rebuild_command(paper: Paper) -> str:
    """The shell command that rebuilds this paper exactly, every word quoted for the shell.

    The committee is a validated slug already (the `Paper` model refuses anything else);
    quoting is the second wall, so a word can never become `$(…)` or a second command.
    """
    words = ["rectrack", "paper", "--meeting", paper.meeting.isoformat()]
    if paper.committee:
        words += ["--committee", paper.committee]
    if paper.log_last_recorded_at:
        words += ["--known-at", paper.log_last_recorded_at.isoformat()]
    return shlex.join(words)


def render_markdown(paper: Paper, chart_links: dict[str, str | None] | None = None) -> str:
    """Markdown that diffs well: one table per inspection, charts as linked SVG files."""
    links = {key: Verbatim(link) if link else None for key, link in (chart_links or {}).items()}
    return (
        markdown_templates()
        .get_template("paper.md.j2")
        .render(paper=paper, charts=links, rebuild=Verbatim(rebuild_command(paper)))
    )


def data_uri(svg: str) -> str:
    """An SVG as a data: URI, so each chart keeps its own ids inside one page."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def render_html(paper: Paper, svgs: dict[str, str | None]) -> str:
    """A standalone, accessible HTML page with the charts embedded."""
    uris = {key: data_uri(svg) if svg else None for key, svg in svgs.items()}
    return (
        templates()
        .get_template("paper.html.j2")
        .render(paper=paper, charts=uris, rebuild=rebuild_command(paper))
    )


def render_pdf(html: str) -> bytes:
    """The HTML printed to PDF by WeasyPrint, fetching nothing but the embedded charts."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    # Only data: URIs (our charts): no file:// or http(s) reads, whatever the HTML says.
    fetcher = URLFetcher(allowed_protocols={"data"}, allow_redirects=False)
    pdf: bytes = HTML(string=html, url_fetcher=fetcher).write_pdf()
    return pdf


class PaperFormat(StrEnum):
    """Output formats of the committee paper."""

    md = "md"
    html = "html"
    pdf = "pdf"


MEDIA_TYPES = {
    PaperFormat.md: "text/markdown; charset=utf-8",
    PaperFormat.html: "text/html; charset=utf-8",
    PaperFormat.pdf: "application/pdf",
}


def render(
    paper: Paper, fmt: PaperFormat, chart_links: dict[str, str | None] | None = None
) -> bytes:
    """The paper in one format; Markdown links its charts (`chart_links`), the others embed."""
    if fmt is PaperFormat.md:
        return render_markdown(paper, chart_links).encode()
    html = render_html(paper, charts(paper))
    return html.encode() if fmt is PaperFormat.html else render_pdf(html)
