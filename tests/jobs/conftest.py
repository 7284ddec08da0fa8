"""Fixtures shared by the job tests."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from _jobs_harness import Worker


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """A list the test appends its started workers to; any still alive are killed (with their jobs) after."""
    started: list[Worker] = []
    yield started
    for w in started:
        if w.alive():
            w.kill_group()
