"""End-to-end fixtures: the public-record demo loaded once into the session's stack."""

import pytest

from infra.settings import Settings
from services.cli.data import demo_file
from services.decider.loader import load_file


@pytest.fixture(scope="session")
def demo_loaded(stack: Settings) -> Settings:
    """The stack with the public-record dataset loaded (every command accepted)."""
    summary = load_file(stack, demo_file(), timeout=90, quiet=True)
    assert summary["rejected"] == 0, summary["rejections"]
    assert summary["no_outcome"] == 0
    return stack
