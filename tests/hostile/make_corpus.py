"""Write the hostile-input corpus under tests/hostile/corpus/: broken, forged and malicious uploads.

Run ``python tests/hostile/make_corpus.py`` to rebuild it (seeded; PyTorch archives embed a random
serialization id, so those bytes change on every run while their meaning does not). The
files are committed so that the tests read exactly these bytes; the oversize file is made at test
time (sparse) and is not part of the corpus.

Every payload that would run code writes a marker file at ``$LWDASH_HOSTILE_MARKER`` (an absolute
path the test chooses) and nothing else: the test asserts that the marker never appears, and a
sanity test proves the payloads are live by running them on purpose in a child process.

Layout: ``corpus/models/`` is uploaded with ``SqliteStore.import_model``, ``corpus/data/`` with
``SqliteStore.import_dataset``. ``test_corpus.py`` holds the expected message for each file.
"""
from __future__ import annotations

import io
import json
import pickle
import re
import stat
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
MODELS = CORPUS / "models"
DATA = CORPUS / "data"
MARKER_ENV = "LWDASH_HOSTILE_MARKER"
#: Python run by every code-execution payload: create the marker file, nothing else.
PAYLOAD = f"import os; open(os.environ['{MARKER_ENV}'], 'w').write('code from an upload ran')"
_FIXED_TIME = (2024, 1, 1, 0, 0, 0)


class _RunsPayload:
    """Unpickling this calls ``exec(PAYLOAD)``."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (PAYLOAD,))


def _rng() -> np.random.Generator:
    return np.random.default_rng(20240101)


def _zip(members: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members:
            info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = compression
            zf.writestr(info, data)
    return buf.getvalue()


def _png(size: tuple[int, int] = (8, 8), mode: str = "L", seed: int = 0) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    img = Image.fromarray(arr[..., 0] if channels == 1 else arr, mode=mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


# ------------------------------------------------------------------------------------------ models


def _small_onnx() -> onnx.ModelProto:
    """A valid classifier: (N, 1, 8, 8) -> Flatten -> Gemm -> (N, 10)."""
    rng = _rng()
    w = numpy_helper.from_array(rng.standard_normal((10, 64)).astype(np.float32), "W")
    b = numpy_helper.from_array(np.zeros(10, np.float32), "B")
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="lwdash-corpus")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _onnx_missing_initializer() -> bytes:
    model = _small_onnx()
    kept = [t for t in model.graph.initializer if t.name != "W"]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model.SerializeToString()


def _onnx_op(op_type: str, domain: str) -> bytes:
    model = _small_onnx()
    model.graph.node.insert(1, helper.make_node(op_type, ["flat"], ["flat2"], domain=domain))
    model.graph.node[2].input[0] = "flat2"
    if domain:
        model.opset_import.append(helper.make_opsetid(domain, 1))
    return model.SerializeToString()


def _tiny_export() -> bytes:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    program = torch.export.export(model, (torch.randn(2, 1, 8, 8),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    buf = io.BytesIO()
    torch.export.save(program, buf)
    return buf.getvalue()


def _rewrite_zip(raw: bytes, replace: dict[str, bytes]) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(raw))
    members = [(name, replace.get(name, src.read(name))) for name in src.namelist()]
    return _zip(members, compression=zipfile.ZIP_STORED)


def _pt2_with_program(raw: bytes, edit) -> bytes:  # type: ignore[no-untyped-def]
    src = zipfile.ZipFile(io.BytesIO(raw))
    name = next(n for n in src.namelist() if n.endswith("models/model.json"))
    text = edit(src.read(name).decode())
    return _rewrite_zip(raw, {name: text.encode()})


def _pt2_sympy_payload(raw: bytes) -> bytes:
    """A shape expression that sympy.sympify would evaluate as Python."""
    expr = json.dumps(f'exec("{PAYLOAD}")')

    def edit(text: str) -> str:
        out, n = re.subn(r'"expr_str": "Symbol\(\'s\d+\'[^"]*"', lambda _: '"expr_str": ' + expr, text, count=1)
        assert n == 1, "no symbolic size found in the exported program"
        return out

    return _pt2_with_program(raw, edit)


def _pt2_python_target(raw: bytes) -> bytes:
    """A graph node whose target resolves (as an attribute path under torch) to os.system."""

    def edit(text: str) -> str:
        program = json.loads(text)
        node = program["graph_module"]["graph"]["nodes"][0]
        node["target"] = "torch.os.system"
        return json.dumps(program)

    return _pt2_with_program(raw, edit)


def _pt2_pickled_sample_inputs(raw: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(raw))
    name = next(n for n in src.namelist() if "/data/sample_inputs/" in n)
    buf = io.BytesIO()
    torch.save(_RunsPayload(), buf)
    return _rewrite_zip(raw, {name: buf.getvalue()})


def _torch_save(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _state_dict_for(arch: str) -> bytes:
    from lwdash.models import build_architecture

    torch.manual_seed(0)
    return _torch_save(build_architecture(arch).state_dict())


def _torchscript_from_file() -> bytes:
    """TorchScript whose forward maps a host file into a tensor (aten::from_file)."""

    class ReadsHostFile(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            leaked = torch.from_file("/etc/hostname", shared=False, size=1, dtype=torch.uint8)
            return x.flatten(1)[:, :10] + leaked.float().sum()

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(ReadsHostFile()), buf)
    return buf.getvalue()


def model_files() -> dict[str, bytes]:
    """Every hostile model upload, by file name."""
    rng = _rng()
    files = {f"random_bytes{ext}": rng.bytes(4096) for ext in (".onnx", ".pt2", ".pt", ".ts", ".safetensors")}
    good_onnx = _small_onnx().SerializeToString()
    export = _tiny_export()
    files.update(
        {
            "empty.onnx": b"",
            "truncated.onnx": good_onnx[: len(good_onnx) // 2],
            "missing_initializer.onnx": _onnx_missing_initializer(),
            "unknown_op.onnx": _onnx_op("FrobnicateTensor", ""),
            "custom_domain_op.onnx": _onnx_op("Frobnicate", "com.example.hostile"),
            "pickle_exec.pt": pickle.dumps(_RunsPayload(), protocol=4),
            "pickle_exec_protocol0.pt": pickle.dumps(_RunsPayload(), protocol=0),
            "pickle_exec_torch_save.pth": _torch_save(_RunsPayload()),
            "pt2_pickled_sample_inputs.pt2": _pt2_pickled_sample_inputs(export),
            "pt2_sympy_code.pt2": _pt2_sympy_payload(export),
            "pt2_python_call_target.pt2": _pt2_python_target(export),
            "pt2_not_an_export.pt2": _zip(
                [("archive/readme.txt", b"a zip archive, but not a torch.export program\n"), ("archive/version", b"3")]
            ),
            "truncated_export.pt2": export[: len(export) // 2],
            "state_dict_wrong_arch.pt": _state_dict_for("digits_student"),  # uploaded as digits_mlp
            "torchscript_reads_host_file.ts": _torchscript_from_file(),
        }
    )
    return files


# ------------------------------------------------------------------------------------------ data


def _npz(**arrays: object) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))  # rewrite with fixed timestamps: deterministic bytes
    return _zip([(n, src.read(n)) for n in src.namelist()], compression=zipfile.ZIP_STORED)


def _forged_npy_header() -> bytes:
    """An .npz whose x header declares 10**12 float32 values but holds 16 bytes."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**12,)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    y = io.BytesIO()
    np.save(y, np.arange(10, dtype=np.int64))
    return _zip([("x.npy", buf.getvalue() + b"\0" * 16), ("y.npy", y.getvalue())], compression=zipfile.ZIP_STORED)


def _images(n_per_class: int = 6, classes: tuple[str, ...] = ("cat", "dog")) -> list[tuple[str, bytes]]:
    return [(f"{c}/{i:03d}.png", _png(seed=10 * k + i)) for k, c in enumerate(classes) for i in range(n_per_class)]


def _ratio_bomb() -> bytes:
    """One member of 64 MiB of zeros, deflated to ~64 KiB (1000x)."""
    return _zip([*_images(2), ("cat/bomb.png", b"\x00" * (64 * 2 ** 20))])


def _overlap_bomb(copies: int = 400) -> bytes:
    """Many directory entries sharing one 32 MiB deflate stream: ~12 GiB declared from ~32 KiB of data.

    Fifield's overlapping-file construction: each central-directory entry points at the same
    local file header, so every "member" decompresses the same bytes.
    """
    payload = b"\0" * (32 * 2**20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = comp.compress(payload) + comp.flush()
    crc = zlib.crc32(payload) & 0xFFFFFFFF
    name = b"cat/000.png"
    local = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(deflated), len(payload), len(name), 0
    ) + name
    body = local + deflated
    central = b""
    for i in range(copies):
        cname = f"cat/{i:03d}.png".encode()
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(deflated), len(payload), len(cname),
            0, 0, 0, 0, 0, 0,
        ) + cname
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, copies, copies, len(central), len(body), 0)
    return body + central + end


def _symlink_zip() -> bytes:
    info = zipfile.ZipInfo("cat/passwd.png", date_time=_FIXED_TIME)
    info.create_system = 3  # Unix
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip([*_images(6), (info, b"/etc/passwd")])


def _png_huge_dimensions() -> bytes:
    """A valid PNG header declaring 100,000 x 100,000 pixels (a decompression bomb if decoded)."""
    ihdr = struct.pack(">2I5B", 100_000, 100_000, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def data_files() -> dict[str, bytes]:
    """Every hostile evaluation-set upload, by file name."""
    rng = _rng()
    x = rng.random((30, 1, 8, 8), dtype=np.float32)
    y = np.arange(30, dtype=np.int64) % 5
    nan_x = x.copy()
    nan_x[3, 0, 2, 2] = np.nan
    objects = np.empty(30, dtype=object)
    for i in range(30):
        objects[i] = _RunsPayload()
    good_png = _png()
    return {
        "empty.npz": b"",
        "random_bytes.npz": rng.bytes(4096),
        "wrong_shape.npz": _npz(x=np.arange(30.0, dtype=np.float32), y=y),
        "wrong_dtype_strings.npz": _npz(x=np.array([f"sample {i}" for i in range(30)]), y=y),
        "wrong_dtype_object_pickle.npz": _npz(x=objects, y=y),
        "nan_values.npz": _npz(x=nan_x, y=y),
        "mismatched_lengths.npz": _npz(x=x, y=y[:20]),
        "labels_out_of_range.npz": _npz(x=x, y=np.arange(30, dtype=np.int64) % 10, num_classes=np.int64(5)),
        "labels_negative.npz": _npz(x=x, y=y - 1),
        "forged_array_header.npz": _forged_npy_header(),
        "zip_bomb_ratio.zip": _ratio_bomb(),
        "zip_bomb_overlap.zip": _overlap_bomb(),
        "path_traversal_dotdot.zip": _zip([*_images(6), ("../../outside.png", good_png)]),
        "path_traversal_absolute.zip": _zip([*_images(6), ("/tmp/outside.png", good_png)]),
        "symlink_member.zip": _symlink_zip(),
        "not_an_image.zip": _zip([*_images(6), ("cat/notes.png", b"#!/bin/sh\necho this is a script\n")]),
        "image_decompression_bomb.zip": _zip([*_images(6), ("dog/huge.png", _png_huge_dimensions())]),
        "image_sizes_differ.zip": _zip([*_images(6), ("dog/big.png", _png(size=(16, 16)))]),
        "images_without_class_folder.zip": _zip([(f"{i:03d}.png", _png(seed=i)) for i in range(12)]),
    }


def main() -> None:
    """Write the corpus (overwriting), then print what was written."""
    for folder, files in ((MODELS, model_files()), (DATA, data_files())):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for name, data in sorted(files.items()):
            (folder / name).write_bytes(data)
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    count = sum(1 for p in CORPUS.rglob("*") if p.is_file())
    print(f"wrote {count} files, {total:,} bytes, under {CORPUS}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))  # run as a script: make the repository's lwdash importable
    main()
