"""Test runtimes that crash, hang or raise, importable by name in a measurement's child process."""
from __future__ import annotations

import ctypes
import threading
from typing import Any

from lwdash.runtimes import Runner, Runtime


def _segfault(feed: Any) -> Any:
    return ctypes.string_at(0)  # reads address 0: SIGSEGV in the process that runs it


def load_crashing(artifact: Any, threads: int) -> Runner:
    return Runner(run=_segfault)


def load_hanging(artifact: Any, threads: int) -> Runner:
    threading.Event().wait()  # never set: the load never returns
    raise AssertionError("unreachable")


def _boom(feed: Any) -> Any:
    raise RuntimeError("kernel not implemented for this layer\nsecond line dropped")


def load_raising(artifact: Any, threads: int) -> Runner:
    return Runner(run=_boom)


CRASHING = Runtime(key="test_crash", title="Crashing runtime", artifact="onnx", load=load_crashing, isolated=True)
HANGING = Runtime(key="test_hang", title="Hanging runtime", artifact="onnx", load=load_hanging, isolated=True)
RAISING = Runtime(key="test_raise", title="Raising runtime", artifact="onnx", load=load_raising)
