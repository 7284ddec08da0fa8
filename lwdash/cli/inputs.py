"""What the command line's ``--model``, ``--data`` and ``--runtimes`` name, and the store the queue commands use.

Each reader raises :class:`~lwdash.sweeps.UsageError` saying what is accepted; models, data
sets and the store are imported only when a command needs them (the parser loads no torch).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lwdash.sweeps import UsageError

if TYPE_CHECKING:
    from lwdash.data import Dataset
    from lwdash.models.base import LoadedModel
    from lwdash.workspace import SqliteStore, Store


def load_model_arg(ref: str, arch: str | None) -> tuple[str, LoadedModel]:
    """``--model``: a sample name (or ``sample/<name>``) or a path to a model file."""
    from lwdash.models import list_samples, load_model_file, load_sample

    samples = {s.name for s in list_samples()}
    name = ref.removeprefix("sample/")
    if name in samples:
        return f"sample/{name}", load_sample(name)
    path = Path(ref)
    if path.is_file():
        return str(path.resolve()), load_model_file(path, arch=arch)
    raise UsageError(f"--model {ref!r} is neither a sample ({', '.join(sorted(samples))}) nor an existing file")


def default_data() -> str:
    from lwdash.data.bundled import DEFAULT_DATA

    return DEFAULT_DATA


def bundled_data_arg(ref: str) -> str | None:
    """The canonical name of a bundled ``--data``, ``None`` for other references (files, stored ids).

    Raises:
        UsageError: a bundled set that is not installed here (the one-line install hint).
    """
    from lwdash.data.bundled import get_bundled, is_bundled

    if not is_bundled(ref):
        return None
    entry = get_bundled(ref)
    reason = entry.unavailable()
    if reason is not None:
        raise UsageError(f"--data {entry.name}: {reason}")
    return entry.name


def data_choices() -> str:
    from lwdash.data.bundled import bundled_names

    return f"a bundled data set ({', '.join(bundled_names())}; `python -m lwdash datasets` lists them)"


def load_data_arg(ref: str, input_shape: Sequence[int] | None = None) -> Dataset:
    """``--data``: a bundled set's name, an ``.npz`` path, or a zipped image folder (resized to ``input_shape``)."""
    from lwdash.data import load_dataset

    if bundled_data_arg(ref) is None and not Path(ref).is_file():
        raise UsageError(f"--data {ref!r}: use {data_choices()}, a path to an .npz file with x and y arrays, "
                         "or a zipped image folder (.zip of <class>/<image>)")
    return load_dataset(ref, input_shape=tuple(input_shape) if input_shape is not None else None)


def runtimes_arg(value: str | None) -> tuple[str, ...]:
    """``--runtimes`` as runtime keys in registry order; ``()`` when not given (the setting or the defaults).

    Raises:
        UsageError: an unknown runtime key.
    """
    if value is None or not value.strip():
        return ()
    from lwdash.runtimes import resolve_runtimes

    try:
        return resolve_runtimes(value)
    except ValueError as e:
        raise UsageError(f"--runtimes: {e}") from None


def open_store(args: argparse.Namespace) -> SqliteStore:
    from lwdash.config import get_settings
    from lwdash.workspace import SqliteStore

    return SqliteStore(get_settings(args.data_dir).data_dir)


def stored_model_and_data(args: argparse.Namespace, store: Store) -> tuple[str, str]:
    """``--model`` and ``--data`` as ids in the store (files are imported first); refuses a misfit."""
    from lwdash.data.fit import records_mismatch
    from lwdash.models import list_samples

    bundled = bundled_data_arg(args.data)  # an uninstalled bundled set is refused before any import
    name = args.model.removeprefix("sample/")
    if name in {s.name for s in list_samples()}:
        model = store.get_model(f"sample/{name}")
    elif args.model.startswith("upload/"):
        model = store.get_model(args.model)
    elif Path(args.model).is_file():
        path = Path(args.model)
        model = store.import_model(path.name, path.read_bytes(), arch=args.arch)
        print(f"imported {path} as {model.id}")
    else:
        raise UsageError(f"--model {args.model!r} is not a sample, a stored model id (upload/...) or an existing file")

    if bundled is not None:
        data = store.get_dataset(bundled)
    elif store.uploaded_dataset(args.data) is not None:
        data = store.get_dataset(args.data)
    elif Path(args.data).is_file():
        path = Path(args.data)
        data = store.import_dataset(path.name, path.read_bytes(), input_shape=tuple(model.input_shape))
        print(f"imported {path} as {data.id}")
    else:
        raise UsageError(f"--data {args.data!r}: use {data_choices()}, a stored data set id (dataset/...), an .npz "
                         "path or a zipped image folder")
    mismatch = records_mismatch(model, data)
    if mismatch:
        raise UsageError(mismatch)
    return model.id, data.id


def warn_without_worker(store: Store) -> None:
    if not store.live_workers():
        print("no worker is running: start one with `python -m lwdash worker`", file=sys.stderr)
