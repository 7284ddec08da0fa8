"""Imports flow one way: only lwdash/ui imports streamlit; the library never does."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_library_never_imports_streamlit() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "lwdash").rglob("*.py")
        if "ui" not in p.relative_to(ROOT / "lwdash").parts[:1] and "streamlit" in _imports(p)
    ]
    assert offenders == []


def test_pages_stay_thin_and_use_the_ui_layer() -> None:
    pages = sorted((ROOT / "pages").glob("*.py"))
    assert pages, "no pages found"
    for page in pages:
        lines = [ln for ln in page.read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]
        assert len(lines) <= 80, f"{page.name} has {len(lines)} code lines; move logic into lwdash/ui or the library"
        assert "ui" in page.read_text(), f"{page.name} does not go through lwdash.ui"


def test_every_module_has_future_annotations() -> None:
    missing = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "lwdash").rglob("*.py")
        if p.read_text().strip() and "from __future__ import annotations" not in p.read_text()
    ]
    assert missing == []
