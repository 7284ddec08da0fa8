"""Load an uploaded model file of any accepted format into a :class:`LoadedModel`.

Accepted formats, recognised by content (the file suffix is only a hint):

- ONNX (``.onnx``): one self-contained file, converted to PyTorch with onnx2torch;
- a ``torch.export`` program (``.pt2``) with a dynamic batch dim, vetted before it is loaded and
  given real Conv / Linear / BatchNorm layers (:mod:`lwdash.models.pt2_import`), so it takes every
  technique a state dict of the same model takes;
- TorchScript (``torch.jit.save``); its input shape comes from ``arch`` or ``input_shape``;
- a state dict (``torch.save(model.state_dict())``, ``.pt``/``.pth``) or a ``.safetensors`` file,
  for an architecture of :mod:`lwdash.models.registry`.

A full pickled ``nn.Module`` (``torch.save(model)``) would run arbitrary code when unpickled: it is
refused, unless the operator allows pickles for trusted local use (``allow_pickle=True`` or the
environment variable ``LWDASH_ALLOW_PICKLE=1``). Every loaded model is returned in eval mode, in
fp32, after one forward pass on zeros has checked its input and output shapes.

This module holds the entry point, :func:`load_model_file`, which dispatches on the detected format
(:mod:`lwdash.models.detect`) to one loader per format: :mod:`lwdash.models.onnx_import`,
:mod:`lwdash.models.pt2_import`, :mod:`lwdash.models.torchscript_import` and
:mod:`lwdash.models.state_dict_import`. The upload size limit (:mod:`lwdash.models.upload_limits`)
and format detection are re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lwdash.models._loadutil import ACCEPTED_FORMATS, check_input_shape
from lwdash.models.base import LoadedModel, ModelLoadError
from lwdash.models.detect import detect_model_format
from lwdash.models.onnx_import import load_onnx
from lwdash.models.pt2_import import load_pt2
from lwdash.models.registry import get_architecture
from lwdash.models.state_dict_import import allow_pickle_default, load_safetensors, load_torch_pickle
from lwdash.models.torchscript_import import load_torchscript
from lwdash.models.upload_limits import MAX_UPLOAD_BYTES, UPLOAD_LIMIT_ENV, check_upload_size, max_upload_bytes

__all__ = [
    "ACCEPTED_FORMATS",
    "MAX_UPLOAD_BYTES",
    "UPLOAD_LIMIT_ENV",
    "check_upload_size",
    "detect_model_format",
    "load_model_file",
    "max_upload_bytes",
]


def load_model_file(
    path: Path,
    *,
    arch: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    allow_pickle: bool | None = None,
    display_name: str | None = None,
) -> LoadedModel:
    """Load a model file of any accepted format, recognised by content.

    Args:
        path: the uploaded file.
        arch: architecture key (:func:`lwdash.models.registry.list_architectures`); required for
            state dicts (except lwdash's own safetensors, which record it), optional for
            TorchScript (gives the input shape).
        input_shape: per-sample input shape, no batch dim; needed for TorchScript without
            ``arch`` and for graphs with symbolic sizes beyond the batch dim.
        allow_pickle: load full pickled modules (runs code from the file: trusted local files
            only). ``None`` reads the environment variable ``LWDASH_ALLOW_PICKLE`` (``1`` allows).
        display_name: the name the user knows the file by (e.g. an upload's original file name),
            used in every message instead of ``path.name`` (which may be a generated temp name).

    Returns:
        The model: fp32, eval mode, checked by one forward pass on ``(2, *input_shape)`` zeros.

    Raises:
        ModelLoadError: unreadable, refused or mismatching file; the message says what was wrong
            and what is accepted.
    """
    path = Path(path)
    name = display_name or path.name
    if not path.is_file():
        raise ModelLoadError(f"no model file at {path}")
    check_upload_size(path.stat().st_size, name)
    if arch is not None:
        get_architecture(arch)  # unknown name: the error lists the known ones
    shape = check_input_shape(input_shape)
    if allow_pickle is None:
        allow_pickle = allow_pickle_default()

    fmt = detect_model_format(path)
    if fmt == "onnx":
        return load_onnx(path, name, shape, recognised=False)
    if fmt == "pt2":
        return load_pt2(path, name, shape)
    if fmt == "torchscript":
        return load_torchscript(path, name, arch, shape)
    if fmt == "torch_pickle":
        return load_torch_pickle(path, name, arch, shape, allow_pickle)
    if fmt == "safetensors":
        return load_safetensors(path, name, arch, shape)
    if fmt == "npz":
        raise ModelLoadError(
            f"{name} is a NumPy .npz archive (a data set), not a model; upload it as a data set. "
            f"Accepted model formats: {ACCEPTED_FORMATS}"
        )
    if fmt == "broken_zip":
        raise ModelLoadError(
            f"could not read {name}: it starts like a zip archive (the container of TorchScript, torch.export "
            ".pt2 and torch.save files) but the archive is truncated or corrupt; upload the complete file. "
            f"Accepted formats: {ACCEPTED_FORMATS}"
        )
    raise ModelLoadError(
        f"{name} is a zip archive but not TorchScript, a torch.export .pt2 or a torch.save file; "
        f"accepted formats: {ACCEPTED_FORMATS}"
    )


def model_file_facts(
    path: str, arch: str | None, input_shape: tuple[int, ...] | None, display_name: str
) -> dict[str, Any]:
    """Load a model file and return what the store keeps of it (run by the store in a child process).

    Returns:
        ``source_format``, ``arch``, ``input_shape`` and ``num_classes`` of the loaded model.

    Raises:
        ModelLoadError: as :func:`load_model_file`.
    """
    m = load_model_file(Path(path), arch=arch, input_shape=input_shape, display_name=display_name)
    return {"source_format": m.source_format, "arch": m.arch, "input_shape": tuple(m.input_shape),
            "num_classes": int(m.num_classes)}
