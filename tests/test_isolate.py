"""Reading untrusted bytes in a child process: values and exceptions come back, crashes and hangs stay there.

The children run stdlib functions (picklable by name, importable in any forkserver): a real
segfault (``ctypes.string_at(0)``), a real hang, a real allocation past the cap.
"""
from __future__ import annotations

import ctypes
import math
import os
import time
from pathlib import Path
from typing import Any

import pytest

from lwdash.isolate import IsolationError, call_isolated
from lwdash.models.base import ModelLoadError
from lwdash.workspace import SqliteStore


def test_the_value_and_the_exception_come_back() -> None:
    assert call_isolated(math.sqrt, 16.0, timeout_s=60, memory_mb=0) == 4.0
    with pytest.raises(ValueError, match="invalid literal"):
        call_isolated(int, "not a number", timeout_s=60, memory_mb=0)


def test_a_segfault_in_the_child_is_an_isolation_error_and_this_process_lives() -> None:
    with pytest.raises(IsolationError) as info:
        call_isolated(ctypes.string_at, 0, timeout_s=60, memory_mb=0)
    assert info.value.kind == "crash" and "SIGSEGV" in info.value.reason and "native code" in info.value.reason
    assert call_isolated(math.sqrt, 9.0, timeout_s=60, memory_mb=0) == 3.0  # and the next call works


def test_a_hang_is_stopped_at_the_time_limit() -> None:
    t0 = time.monotonic()
    with pytest.raises(IsolationError) as info:
        call_isolated(time.sleep, 60, timeout_s=1.0, memory_mb=0)
    assert info.value.kind == "timeout" and "longer than 1 s" in info.value.reason
    assert time.monotonic() - t0 < 20


def test_an_allocation_past_the_cap_fails_in_the_child() -> None:
    with pytest.raises(MemoryError):
        call_isolated(bytearray, 8 * 2**30, timeout_s=60, memory_mb=256)  # 8 GiB against a 256 MB cap


def test_the_child_sees_the_callers_lwdash_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    call_isolated(math.sqrt, 1.0, timeout_s=60, memory_mb=0)  # the forkserver is up before the change
    monkeypatch.setenv("LWDASH_ISOLATE_PROBE", "set after the forkserver started")
    assert call_isolated(os.getenv, "LWDASH_ISOLATE_PROBE", timeout_s=60, memory_mb=0) == "set after the forkserver started"
    monkeypatch.delenv("LWDASH_ISOLATE_PROBE")
    assert call_isolated(os.getenv, "LWDASH_ISOLATE_PROBE", timeout_s=60, memory_mb=0) is None


def _crashing_reader(fn: Any, *args: Any) -> Any:
    """Stands in for the store's reader: the child it starts really segfaults."""
    return call_isolated(ctypes.string_at, 0, timeout_s=60, memory_mb=0)


def test_a_model_upload_that_crashes_its_reader_is_refused_and_nothing_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lwdash.uploads as uploads

    store = SqliteStore(tmp_path / "data")
    monkeypatch.setattr(uploads, "read_isolated", _crashing_reader)
    with pytest.raises(ModelLoadError) as info:
        store.import_model("evil.onnx", b"\x08\x07" + b"\x00" * 64)
    text = str(info.value)
    assert text.startswith("evil.onnx could not be read safely: the model reader crashed") and "SIGSEGV" in text
    assert "nothing was stored" in text and "Accepted: ONNX" in text
    assert [m for m in store.list_models() if m.kind == "upload"] == []
    assert list(store.models_dir.iterdir()) == [] and list(store.tmp_dir.iterdir()) == []


def test_a_data_upload_that_crashes_its_reader_is_refused_and_nothing_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lwdash.uploads as uploads
    from lwdash.data import DataError

    store = SqliteStore(tmp_path / "data")
    monkeypatch.setattr(uploads, "read_isolated", _crashing_reader)
    with pytest.raises(DataError) as info:
        store.import_dataset("images.zip", b"PK\x03\x04" + b"\x00" * 64, input_shape=(1, 8, 8))
    assert str(info.value).startswith("images.zip could not be read safely: the data reader crashed")
    assert [d.id for d in store.list_datasets() if d.kind == "upload"] == []
    assert list(store.datasets_dir.iterdir()) == [] and list(store.tmp_dir.iterdir()) == []


def test_the_callers_main_script_is_not_run_again_in_the_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamlit installs the running script as ``__main__``; multiprocessing would re-run it in every child."""
    import sys
    import types

    marker = tmp_path / "the script ran"
    script = tmp_path / "app_like.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    assert call_isolated(math.sqrt, 25.0, timeout_s=60, memory_mb=0) == 5.0
    assert not marker.exists()
