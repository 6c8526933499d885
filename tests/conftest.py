"""Shared test setup: the project on sys.path, a real PostgreSQL, the reference folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = PROJECT.parent / "shared" / "reference"
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL on 127.0.0.1 with SCRAM password auth, for the whole session."""
    import pgserver

    server = pgserver.start()
    yield server
    server.stop()


def require_reference(*parts: str) -> Path:
    """A file under ../shared/reference, or skip: a user's fresh clone has no ../shared."""
    path = SHARED_REFERENCE.joinpath(*parts)
    if not path.exists():
        pytest.skip(reason=f"{path} is absent (../shared/reference ships only beside the CI checkout)")
    return path
