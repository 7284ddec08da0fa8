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


def test_techniques_never_import_jobs_store_or_the_ui() -> None:
    # A technique is a config and a function on a model: it knows nothing of queues or storage.
    assert _offenders("techniques", ("lwdash.jobs", "lwdash.store", "lwdash.workspace", "lwdash.ui", "streamlit")) == []


def test_the_store_is_storage_only() -> None:
    # The backends know rows, kinds and folders; models, data, jobs and techniques live above them.
    outside = {m: sorted(d for d in deps if not d.startswith("lwdash.store"))
               for m, deps in _import_graph().items() if m == "lwdash.store" or m.startswith("lwdash.store.")}
    assert {m: d for m, d in outside.items() if d} == {}


def test_the_ui_never_imports_the_cli() -> None:
    assert _offenders("ui", ("lwdash.cli",)) == []


MAX_MODULE_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "lwdash").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}, f"split these by concern: {long}"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the lwdash modules it imports at run time (anywhere in the file, ``TYPE_CHECKING`` blocks aside)."""
    paths = {_module_name(p): p for p in (ROOT / "lwdash").rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, path in paths.items():
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for node in ast.walk(tree)
                       if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                deps.update(r for a in node.names if (r := resolve(a.name)))
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.update(r for a in node.names if (r := resolve(f"{node.module}.{a.name}")))
        graph[mod] = deps - {mod}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_between_modules() -> None:
    # Imports inside functions count too: a cycle hidden in a function is still a cycle.
    assert _cycles(_import_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
