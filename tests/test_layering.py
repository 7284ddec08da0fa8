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


def _module_imports(path: Path) -> set[str]:
    """Every module a file imports, by full dotted name (``from a import b`` counts ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    files = sorted((ROOT / "lwdash" / package).rglob("*.py"))
    assert files, f"no files under lwdash/{package}"
    out = []
    for p in files:
        bad = sorted(n for n in _module_imports(p) if any(n == f or n.startswith(f + ".") for f in forbidden))
        if bad:
            out.append(f"{p.relative_to(ROOT)}: {', '.join(bad)}")
    return out


def test_measure_and_runtimes_never_import_jobs_store_or_streamlit() -> None:
    # Measurement runs inside the job process; it must not reach back into the queue, the store or the UI.
    for package in ("measure", "runtimes"):
        assert _offenders(package, ("lwdash.jobs", "lwdash.store", "lwdash.ui", "streamlit")) == []


def test_figures_are_pure_builders() -> None:
    # results in, figures out: no store, no jobs, no UI.
    assert _offenders("figures", ("lwdash.store", "lwdash.jobs", "lwdash.ui", "streamlit")) == []


def test_the_layering_check_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("from lwdash import store\nimport lwdash.jobs.spec\nif True:\n    from streamlit import x\n")
    assert {"lwdash.store", "lwdash.jobs.spec", "streamlit"} <= _module_imports(sample)
