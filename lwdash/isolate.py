"""Run code that reads untrusted bytes in a child process: a crash, a hang or a runaway allocation ends there.

Uploads are read by C++ engines (onnx and protobuf, torch's archive readers, Pillow's decoders);
a crafted file that crashes one of them in the app's process would take the app down with every
session it serves. :func:`call_isolated` runs the reader in a process forked from a forkserver
(single-threaded, so forking is safe even from Streamlit's threads), under an address-space cap
and a time limit, and hands back its return value or its exception. A child that dies, hangs or
runs out of memory becomes an :class:`IsolationError` that says which.

:func:`limit_address_space` is the same cap the worker puts on each job's process.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import resource
import signal
import threading
from collections.abc import Callable
from multiprocessing import forkserver, popen_forkserver, spawn
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["IsolationError", "call_isolated", "limit_address_space"]

T = TypeVar("T")
#: Imported once by the forkserver the children fork from, so a child starts in milliseconds: the modules
#: the upload readers use (``lwdash.models`` / ``lwdash.data`` load their names lazily, so they are named).
_PRELOAD = ["lwdash.models.loading", "lwdash.data.npz", "lwdash.data.imagefolder"]
_JOIN_S = 10.0
_ENV_PREFIX = "LWDASH_"
_PREPARATION_LOCK = threading.Lock()


class IsolationError(RuntimeError):
    """The child process did not return: it crashed (``kind="crash"``) or ran out of time (``"timeout"``).

    Attributes:
        kind: ``"crash"`` or ``"timeout"``.
        reason: what happened, in words ("it was killed by signal 11 (SIGSEGV)").
    """

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def limit_address_space(limit_mb: int) -> None:
    """Cap this process's address space at its current size plus ``limit_mb`` (0: no cap).

    The current size (torch and the other engines mapped, mostly unused address space) is left
    out, so the cap bounds what the code run afterwards adds; an allocation past it fails at once
    (``MemoryError`` or torch's "can't allocate memory") instead of waking the OOM killer.
    """
    if limit_mb <= 0:
        return
    try:
        status = Path("/proc/self/status").read_text()
        vm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return  # not Linux: no cap
    cap = vm_kb * 1024 + limit_mb * 2**20
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _child(conn: Any, memory_mb: int, env: dict[str, str], fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    # The forkserver kept the environment it started with: take the caller's lwdash settings instead.
    for key in [k for k in os.environ if k.startswith(_ENV_PREFIX)]:
        del os.environ[key]
    os.environ.update(env)
    limit_address_space(memory_mb)
    try:
        outcome: tuple[str, Any] = ("ok", fn(*args))
    except BaseException as e:
        outcome = ("error", e)
    try:
        conn.send(outcome)
    except Exception as e:  # the exception (or value) does not pickle: send its text
        conn.send(("error", RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]} ({e})")))
    finally:
        conn.close()


def _death(exitcode: int | None) -> str:
    if exitcode is None:
        return "it did not exit"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (a crash in native code)" if -exitcode in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT) else ""
        if -exitcode == signal.SIGKILL:
            hint = " (often out of memory)"
        return f"it was killed by signal {-exitcode} ({name}){hint}"
    return f"it exited with code {exitcode} without an answer"


class _PopenWithoutMain(popen_forkserver.Popen):
    """Starts a forkserver child without re-importing the caller's ``__main__`` module in it.

    multiprocessing re-runs the parent's main module in every child it starts, so that objects
    pickled from ``__main__`` can be found there. The targets here are lwdash functions, and the
    app's ``__main__`` is the Streamlit script itself (Streamlit installs each running script as
    ``__main__``): re-running it would draw the app, and start a worker, in every upload's child.
    So the preparation data the child receives leaves the main module out.
    """

    def _launch(self, process_obj: Any) -> None:
        with _PREPARATION_LOCK:  # the patch is seen only by the child being started here
            real = spawn.get_preparation_data

            def without_main(name: str) -> dict[str, Any]:
                data = real(name)
                data.pop("init_main_from_path", None)
                data.pop("init_main_from_name", None)
                return data

            spawn.get_preparation_data = without_main
            try:
                super()._launch(process_obj)  # type: ignore[misc]
            finally:
                spawn.get_preparation_data = real


class _Process(multiprocessing.context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _PopenWithoutMain:  # multiprocessing calls it so
        return _PopenWithoutMain(process_obj)


def call_isolated(fn: Callable[..., T], *args: Any, timeout_s: float, memory_mb: int) -> T:
    """``fn(*args)`` in a child process; its value, or its exception raised here.

    Args:
        fn: a module-level function (it is pickled by name); its arguments and value must pickle.
        timeout_s: the child is killed after this long.
        memory_mb: the child's address-space cap above its size at start (0: none).

    Raises:
        IsolationError: the child crashed, was killed, or timed out.
        Exception: whatever ``fn`` raised.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)  # takes effect only when this process starts its forkserver
    forkserver.ensure_running()  # outside the lock: the first start takes seconds
    receive, send = ctx.Pipe(duplex=False)
    env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIX)}
    proc = _Process(target=_child, args=(send, memory_mb, env, fn, args), name="lwdash-isolated", daemon=True)
    proc.start()
    send.close()
    outcome: tuple[str, Any] | None = None
    try:
        if not receive.poll(timeout_s):
            proc.kill()
            raise IsolationError("timeout", f"it took longer than {timeout_s:g} s and was stopped")
        try:
            outcome = receive.recv()
        except EOFError:
            outcome = None
    finally:
        receive.close()
        proc.join(_JOIN_S)
        if proc.exitcode is None:
            proc.kill()
            proc.join()
        exitcode = proc.exitcode
        proc.close()
    if outcome is None:
        raise IsolationError("crash", _death(exitcode))
    status, value = outcome
    if status == "error":
        raise value
    return value  # type: ignore[no-any-return]
