# Shared pytest configuration: where the shared reference data lives.

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the repository holds data from other projects (the
# reference test suite, real UCI files) that we may read but never commit.
SHARED = REPO.parent / "shared"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def suite_dir() -> Path:
    """The reference fwknop test-suite data, or skip when it is absent."""
    path = SHARED / "vectors" / "fwknop-test-suite"
    if not path.is_dir():
        pytest.skip(f"reference test-suite data not found at {path}")
    return path
