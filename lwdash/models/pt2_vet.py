"""Vetting a ``torch.export`` archive (``.pt2``) before and after ``torch.export.load``.

torch.export.load trusts its input: it unpickles sample inputs and "use_pickle" payloads with
weights_only=False (after a weights_only=True attempt fails), unpickles opaque constants with
pickle.loads, evaluates every symbolic-shape string with sympy.sympify (Python eval), resolves
node targets as attribute paths under torch (torch.os.system is one), and exec()s guard code
when the module is built. Each of these runs code from the file. lwdash therefore reads the
archive first (:func:`vet_pt2_archive`) and accepts only what a plain torch.export.save of a
classifier writes: tensor payloads, sample inputs that load with weights_only=True, shape
expressions built from sympy classes, and targets that are torch operators; after loading,
:func:`check_exported_graph` checks every call of the graph again.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch

from lwdash.models._loadutil import ACCEPTED_FORMATS, mib, reason
from lwdash.models.base import ModelLoadError

__all__ = ["PT2_REFUSED_OPS", "check_exported_graph", "vet_pt2_archive"]

_PT2_MAX_MEMBERS = 100_000
_PT2_MAX_JSON_BYTES = 256 * 1024 * 1024
_PT2_MAX_EXPR_CHARS = 4_000
PT2_REFUSED_OPS = ("from_file",)  # aten::from_file maps (and, shared, writes) an arbitrary host file
_SYMPY_NAMES = frozenset(
    "Symbol Dummy Integer Rational Float Mul Add Pow Max Min Mod Abs floor ceiling sqrt Eq Ne Lt Le Gt Ge "
    "And Or Not Xor Equality Unequality StrictLessThan LessThan StrictGreaterThan GreaterThan BooleanTrue "
    "BooleanFalse true false True False oo zoo nan Infinity NegativeInfinity One Zero NegativeOne Half "
    "Piecewise ExprCondPair".split()
)
_SYMBOL_NAME = re.compile(r"[A-Za-z]{1,4}\d+")
_SYMBOL_STRING = re.compile(r"""(['"])[A-Za-z_][A-Za-z0-9_]{0,63}\1""")
_EXPR_OPS = frozenset("( ) , = + - * / ** // % < > <= >= == != & | ~".split())
_OPERATOR_TARGETS = frozenset(
    "getitem add sub mul floordiv truediv mod neg pos pow abs eq ne lt le gt ge and_ or_ not_".split()
)
_MATH_TARGETS = frozenset("ceil floor trunc sqrt".split())
_TORCH_OP_TARGET = re.compile(r"torch\.ops\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
_TORCH_SYM_TARGET = re.compile(r"torch\.sym_[a-z_]+")


def _sympy_function_names() -> frozenset[str]:
    """Names of the sympy functions torch's shape expressions use (FloorDiv, ModularIndexing, ...)."""
    import sympy
    import torch.utils._sympy.functions as fns

    return frozenset(
        n for n, v in vars(fns).items() if isinstance(v, type) and issubclass(v, sympy.Basic) and not n.startswith("_")
    )


def _pt2_refusal(name: str, what: str) -> ModelLoadError:
    return ModelLoadError(
        f"{name} is refused: {what}. Loading it would run code from the file. lwdash accepts .pt2 files written by "
        "torch.export.save(torch.export.export(model, (x,), dynamic_shapes=...)) of a classifier (tensor weights, "
        f"standard torch operators); accepted formats: {ACCEPTED_FORMATS}"
    )


def _check_sym_expr(expr: str, name: str, allowed_names: frozenset[str]) -> None:
    import tokenize

    if len(expr) > _PT2_MAX_EXPR_CHARS:
        raise _pt2_refusal(name, f"a symbolic shape expression is {len(expr):,} characters long")
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(expr).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError) as exc:
        raise _pt2_refusal(name, f"a symbolic shape expression cannot be parsed ({reason(exc)})") from None
    skip = {tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT}
    for i, tok in enumerate(tokens):
        if tok.type in skip or tok.type == tokenize.NUMBER:
            continue
        if tok.type == tokenize.NAME:
            is_kwarg = i + 1 < len(tokens) and tokens[i + 1].string == "=" and not tok.string.startswith("_")
            if tok.string in allowed_names or _SYMBOL_NAME.fullmatch(tok.string) or is_kwarg:
                continue
        elif tok.type == tokenize.STRING and _SYMBOL_STRING.fullmatch(tok.string):
            continue
        elif tok.type == tokenize.OP and tok.string in _EXPR_OPS:
            continue
        shown = expr if len(expr) <= 80 else expr[:77] + "..."
        raise _pt2_refusal(
            name, f"a symbolic shape expression holds {tok.string!r}, which is not part of a shape formula ({shown!r})"
        )


def _check_node_target(target: str, name: str) -> None:
    head, _, rest = target.partition(".")
    ok = (
        (_TORCH_OP_TARGET.fullmatch(target) is not None and "__" not in target)
        or _TORCH_SYM_TARGET.fullmatch(target) is not None
        or (head == "_operator" and rest in _OPERATOR_TARGETS)
        or (head == "math" and rest in _MATH_TARGETS)
    )
    if not ok:
        shown = target if len(target) <= 80 else target[:77] + "..."
        raise _pt2_refusal(name, f"its graph calls {shown!r}, which is not a torch operator")
    if any(op in target for op in PT2_REFUSED_OPS):
        raise _pt2_refusal(name, f"its graph calls {target!r}, which reads or writes files on the host")


def _walk_program_json(obj: Any, name: str, allowed_names: frozenset[str]) -> set[str]:
    """Check every shape expression and node target of a serialized program; return the targets."""
    targets: set[str] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            expr = item.get("expr_str")
            if expr is not None:
                if not isinstance(expr, str):
                    raise _pt2_refusal(name, "a symbolic shape expression is not a string")
                _check_sym_expr(expr, name, allowed_names)
            if "target" in item and "inputs" in item and "outputs" in item:
                if not isinstance(item["target"], str):
                    raise _pt2_refusal(name, "a graph node has a target that is not a name")
                _check_node_target(item["target"], name)
                targets.add(item["target"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return targets


def _read_json_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> Any:
    if info.file_size > _PT2_MAX_JSON_BYTES:
        raise ModelLoadError(
            f"{name}: member {info.filename} declares {mib(info.file_size)} uncompressed; the limit is "
            f"{mib(_PT2_MAX_JSON_BYTES)}"
        )
    try:
        return json.loads(zf.read(info))
    except Exception as exc:  # zlib / json / unicode errors
        raise ModelLoadError(
            f"could not read {name} as a torch.export program (.pt2): member {info.filename} is not valid JSON "
            f"({reason(exc)}); accepted formats: {ACCEPTED_FORMATS}"
        ) from exc


def vet_pt2_archive(path: Path, name: str) -> None:
    """Refuse a .pt2 archive that holds anything beyond tensors, torch operators and shape formulas.

    Raises:
        ModelLoadError: the archive is not a current-format torch.export program, or it holds
            pickled objects, non-torch call targets or code in its shape expressions.
    """
    from torch.export.pt2_archive import constants as pt2c

    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > _PT2_MAX_MEMBERS:
                raise ModelLoadError(f"{name} holds {len(infos):,} archive members; the limit is {_PT2_MAX_MEMBERS:,}")
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise _pt2_refusal(name, "its archive holds two members with the same name")
            tops = {n.split("/", 1)[0] for n in names}
            if len(tops) != 1 or any("/" not in n for n in names):
                raise ModelLoadError(
                    f"{name} is a zip archive, but not one written by torch.export.save (its members are not "
                    f"in one top-level folder); accepted formats: {ACCEPTED_FORMATS}"
                )
            rel = {i.filename.split("/", 1)[1]: i for i in infos}
            pickled: dict[str, str] = {}  # archive path -> what it is, for members torch.export.load unpickles
            if rel.get(pt2c.ARCHIVE_FORMAT_PATH) is None or zf.read(rel[pt2c.ARCHIVE_FORMAT_PATH]).strip() != b"pt2":
                raise ModelLoadError(
                    f"{name} is not a current torch.export archive (no archive_format 'pt2'); save it again with "
                    f"torch.export.save in PyTorch 2.6 or later; accepted formats: {ACCEPTED_FORMATS}"
                )
            models = [r for r in rel if r.startswith(pt2c.MODELS_DIR) and r.endswith(".json")]
            if not models:
                raise ModelLoadError(
                    f"{name} is a torch.export archive without an exported program (no {pt2c.MODELS_DIR}*.json); "
                    f"accepted formats: {ACCEPTED_FORMATS}"
                )
            for r in rel:
                if r.startswith(pt2c.AOTINDUCTOR_DIR):
                    raise _pt2_refusal(name, "it holds AOTInductor-compiled code (data/aotinductor/)")
                if r.startswith((pt2c.WEIGHTS_DIR, pt2c.CONSTANTS_DIR)) and r.endswith(".pt"):
                    raise _pt2_refusal(name, f"it holds a legacy pickled payload ({r})")
            for r, info in rel.items():
                if r.endswith("_config.json") and r.startswith((pt2c.WEIGHTS_DIR, pt2c.CONSTANTS_DIR)):
                    config = _read_json_member(zf, info, name)
                    entries = config.get("config", {}) if isinstance(config, dict) else None
                    if not isinstance(entries, dict):
                        raise _pt2_refusal(name, f"{r} is not a payload table")
                    folder = r.rsplit("/", 1)[0] + "/"
                    for key, meta in entries.items():
                        if not isinstance(meta, dict):
                            raise _pt2_refusal(name, f"{r} entry {key!r} is not a payload description")
                        path_name = str(meta.get("path_name", ""))
                        if path_name.startswith((pt2c.CUSTOM_OBJ_FILENAME_PREFIX, pt2c.OPAQUE_OBJ_FILENAME_PREFIX)):
                            raise _pt2_refusal(name, f"constant {key!r} is a pickled Python or script object")
                        if meta.get("use_pickle"):  # e.g. torchao quantized weights (tensor subclasses)
                            pickled[folder + path_name] = f"payload {key!r}"
            for r in rel:
                if r.startswith(pt2c.SAMPLE_INPUTS_DIR):
                    pickled[r] = f"its sample inputs ({r})"
            if any(not r.startswith(pt2c.SAMPLE_INPUTS_DIR) for r in pickled):
                import torchao.quantization  # registers torchao's tensor subclasses as safe globals
            for r, what in pickled.items():
                # torch.export.load unpickles these with weights_only=False (or falls back to it): allow
                # only pickles that also load with weights_only=True, i.e. reference allowlisted globals only
                if r not in rel:
                    raise _pt2_refusal(name, f"{what} points at {r}, which is not in the archive")
                try:
                    torch.load(io.BytesIO(zf.read(rel[r])), map_location="cpu", weights_only=True)
                except Exception as exc:
                    match = re.search(r"GLOBAL ([\w.]+)", str(exc))
                    found = f": it references {match.group(1)}" if match else ""
                    raise _pt2_refusal(name, f"{what} holds pickled objects that are not tensors{found}") from None
            allowed = _SYMPY_NAMES | _sympy_function_names()
            for r in models:
                program = _read_json_member(zf, rel[r], name)
                if isinstance(program, dict):
                    for key in (program.get("range_constraints") or {}):
                        if not _SYMBOL_NAME.fullmatch(str(key)):
                            raise _pt2_refusal(name, f"a range constraint is keyed by {str(key)[:80]!r}, not a symbol")
                targets = _walk_program_json(program, name, allowed)
                if any(t.startswith("torch.ops.quantized_decomposed.") for t in targets):
                    import torchao.quantization.pt2e  # noqa: F401  registers the quantized_decomposed operators
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise ModelLoadError(
            f"could not read {name} as a torch.export program (.pt2): the archive is corrupt ({reason(exc)}); "
            f"accepted formats: {ACCEPTED_FORMATS}"
        ) from exc


def check_exported_graph(gm: torch.fx.GraphModule, name: str) -> None:
    """After loading: every call in the graph (and its subgraphs) is a torch operator or a shape helper."""
    import math as _math
    import operator

    allowed_py = {getattr(operator, n) for n in _OPERATOR_TARGETS} | {getattr(_math, n) for n in _MATH_TARGETS}
    for module in gm.modules():
        graph = getattr(module, "graph", None)
        if not isinstance(graph, torch.fx.Graph):
            continue
        for node in graph.nodes:
            if node.op != "call_function":
                continue
            target = node.target
            is_op = isinstance(target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket, torch._ops.HigherOrderOperator))
            is_sym = callable(target) and getattr(target, "__module__", "") == "torch" and str(
                getattr(target, "__name__", "")
            ).startswith("sym_")
            if not (is_op or is_sym or target in allowed_py):
                raise _pt2_refusal(name, f"its graph calls {target!r}, which is not a torch operator")
            if any(op in str(target) for op in PT2_REFUSED_OPS):
                raise _pt2_refusal(name, f"its graph calls {target}, which reads or writes files on the host")
