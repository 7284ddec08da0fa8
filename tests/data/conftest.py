"""Fixtures of the data tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _idx_files import IdxWriter, write_idx_file


@pytest.fixture
def write_idx(tmp_path: Path) -> IdxWriter:
    """``write_idx(name, array_or_bytes, gz=True, folder=tmp_path)`` writes one IDX file and returns its path."""

    def write(name: str, content: np.ndarray | bytes, *, gz: bool = True, folder: Path | None = None) -> Path:
        return write_idx_file(folder or tmp_path, name, content, gz=gz)

    return write
