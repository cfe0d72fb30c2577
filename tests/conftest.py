"""Shared test fixtures. Tests are marked by folder: unit/, integration/, e2e/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(os.environ.get("MESHFORGE_TEST_ASSETS", ROOT.parent / "shared" / "assets"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    if not ASSETS.is_dir():
        pytest.fail(f"test assets not found at {ASSETS} (set MESHFORGE_TEST_ASSETS)")
    return ASSETS


pytest_plugins = ["tests.fixtures_s3", "tests.fixtures_pg"]
