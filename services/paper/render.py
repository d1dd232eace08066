"""Render the committee paper as Markdown, HTML or PDF, with a chart per inspection."""

import base64
import functools
import io
import logging
from datetime import date
from enum import StrEnum

import jinja2
import matplotlib

matplotlib.use("Agg")  # no display: charts are files
import matplotlib.pyplot as plt

from services.look import environment
from services.paper.assemble import Paper

EPOCH = date(1970, 1, 1)


@functools.cache
def templates() -> jinja2.Environment:
    """The paper's templates, in the look the dashboard shares."""
    return environment("services.paper")


def _days(day: date) -> float:
    """Matplotlib's date number: days since its default epoch, 1970-01-01."""
    return float((day - EPOCH).days)


def chart_svg(title: str, series: list[tuple[date, int, int]], committee: list[date]) -> str:
    """Closed and open recommendations over time, committee dates marked; deterministic SVG."""
    plt.rcParams["svg.hashsalt"] = "rectrack"  # stable ids, so the SVG diffs well
    fig, ax = plt.subplots(figsize=(6.4, 2.6), dpi=100)
    days = [d for d, _, _ in series]
    x = [_days(d) for d in days]
    ax.step(x, [c for _, c, _ in series], where="post", label="Closed", color="#1b6e3a")
    ax.step(x, [o for _, _, o in series], where="post", label="Open", color="#b3261e")
    for meeting in committee:
        if days and days[0] <= meeting <= days[-1]:
            ax.axvline(_days(meeting), color="#555555", linestyle=":", linewidth=1)
    ax.xaxis_date()
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("recommendations")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


def charts(paper: Paper) -> dict[str, str]:
    """SVG chart per inspection id."""
    return {
        s.line.inspection_id: chart_svg(s.line.title, s.chart, paper.committee_dates)
        for s in paper.sections
    }


def render_markdown(paper: Paper, chart_files: dict[str, str] | None = None) -> str:
    """Markdown that diffs well: one table per inspection, charts as linked SVG files."""
    return templates().get_template("paper.md.j2").render(paper=paper, charts=chart_files or {})


def data_uri(svg: str) -> str:
    """An SVG as a data: URI, so each chart keeps its own ids inside one page."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def render_html(paper: Paper, svgs: dict[str, str]) -> str:
    """A standalone, accessible HTML page with the charts embedded."""
    uris = {key: data_uri(svg) for key, svg in svgs.items()}
    return templates().get_template("paper.html.j2").render(paper=paper, charts=uris)


def render_pdf(html: str) -> bytes:
    """The HTML printed to PDF by WeasyPrint."""
    from weasyprint import HTML

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    pdf: bytes = HTML(string=html).write_pdf()
    return pdf


class PaperFormat(StrEnum):
    """Output formats of the committee paper."""

    md = "md"
    html = "html"
    pdf = "pdf"


MEDIA_TYPES = {
    PaperFormat.md: "text/markdown",
    PaperFormat.html: "text/html; charset=utf-8",
    PaperFormat.pdf: "application/pdf",
}


def render(paper: Paper, fmt: PaperFormat, chart_links: dict[str, str] | None = None) -> bytes:
    """The paper in one format; Markdown links its charts (`chart_links`), the others embed."""
    if fmt is PaperFormat.md:
        return render_markdown(paper, chart_links).encode()
    html = render_html(paper, charts(paper))
    return html.encode() if fmt is PaperFormat.html else render_pdf(html)
