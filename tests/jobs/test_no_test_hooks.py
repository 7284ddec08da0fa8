"""No production module reads a test setting: no environment variable whose name contains TEST.

Tests reach into job processes by their own means (``_launch_worker.py``, Ray's setup hook), so the
library never has to. The check walks every module under ``lwdash/`` with ``ast``: reads of
``os.environ`` / ``os.getenv`` (``get``, ``[...]``, ``pop``, ``setdefault``, ``in``) whose key is a
string (or a module-level name bound to one) containing ``TEST``, and any upper-case identifier-like
string constant containing ``TEST`` (the name of an environment variable handed to a helper).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ`` (``from os import environ``)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _is_getenv(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr in ("getenv", "getenvb") and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "getenv"


def reads_of_test_settings(source: str) -> list[str]:
    """The environment variables with TEST in their names that ``source`` reads (or names), one line each."""
    tree = ast.parse(source)
    constants: dict[str, str] = {}
    for node in tree.body:  # module-level NAME = "..." (what an env read may refer to)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value.value

    def key_text(node: ast.AST | None) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    found: list[str] = []
    for node in ast.walk(tree):
        keys: list[ast.AST | None] = []
        if isinstance(node, ast.Call):
            if _is_getenv(node.func):
                keys.append(node.args[0] if node.args else None)
            elif isinstance(node.func, ast.Attribute) and _is_environ(node.func.value) and node.func.attr in (
                "get", "pop", "setdefault", "__getitem__", "__contains__"
            ):
                keys.append(node.args[0] if node.args else None)
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            keys.append(node.slice)
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            keys.append(node.left)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _ENV_NAME.match(node.value) and "TEST" in node.value:
                found.append(f"line {node.lineno}: names {node.value!r}")
        for key in keys:
            text = key_text(key)
            if text is not None and "TEST" in text.upper():
                found.append(f"line {node.lineno}: reads {text!r}")
    return found


def test_the_checker_finds_every_kind_of_env_read() -> None:
    hook = 'import os\nNAME = "LWDASH_TEST_THING"\nx = os.environ.get(NAME, "")\n'
    assert reads_of_test_settings(hook)  # through a module-level name (and the name itself)
    assert reads_of_test_settings('import os\nif os.getenv("my_test_flag"):\n    pass\n')
    assert reads_of_test_settings('import os\nx = os.environ["LWDASH_TEST_X"]\n')
    assert reads_of_test_settings('import os\nx = "ANY_TEST" in os.environ\n')
    assert reads_of_test_settings('from os import environ\nx = environ.pop("unit_tests", None)\n')
    assert reads_of_test_settings('x = _env_int("LWDASH_TEST_N", 1)\n')  # a variable's name handed to a helper
    assert reads_of_test_settings('import os\nx = os.environ.get("LWDASH_DATA_DIR")\n_TEST_FRACTION = 0.2\n') == []


def test_no_production_module_reads_a_test_environment_variable() -> None:
    files = sorted((ROOT / "lwdash").rglob("*.py"))
    assert len(files) > 20
    offenders = {str(p.relative_to(ROOT)): hits for p in files if (hits := reads_of_test_settings(p.read_text()))}
    assert offenders == {}
