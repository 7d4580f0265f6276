"""House rules checked on the source: no import cycles, and no task named outside `tasks/`."""

from __future__ import annotations

import ast
from pathlib import Path

import batchinfer
from batchinfer.tasks import tasks

PACKAGE = Path(batchinfer.__file__).parent


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `name` imports (at any depth in the file: a lazy import is still an edge)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
            targets = submodules or [base]  # `from pkg import module` needs the module, else pkg itself
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def test_the_import_graph_has_no_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


# Words that are some task's column name but mean something else where they appear (module -> words).
NOT_COLUMNS = {
    "batchinfer.job": {"token"},  # a secret-looking storage option key (SECRET_WORDS)
    "batchinfer.io.lock": {"token", "start"},  # the lock owner's random token and process start time
    "batchinfer.io.formats.object_store": {"token"},  # s3fs's session token option
    "batchinfer.model.onnx_export": {"sequence"},  # the ONNX graph's dynamic axis name
}


def test_no_module_outside_tasks_names_a_task_or_its_columns():
    from batchinfer.media import MEDIA_MODULES

    names = {n for cls in tasks().values() for n in (cls.name, *cls.aliases, *cls.columns)}
    names -= {"text", *MEDIA_MODULES}  # a modality's name (speech recognition's column is "text" too)
    found = []
    for name, path in _modules().items():
        if name.startswith("batchinfer.tasks"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names \
                    and node.value not in NOT_COLUMNS.get(name, ()):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.value!r}")
    assert not found, "\n".join(found)
