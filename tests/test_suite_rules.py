"""Rules about the test suite itself, so that a fresh clone without the evaluation data passes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cpembed.evaluation import data as senteval

TESTS = Path(__file__).resolve().parent
# A path into the shared data folder written out, in any of the forms a test might build it.
_SHARED_PATH = re.compile(r"""["']shared["']\s*[/,)]|shared/data|parents\[2\]""")


def test_only_conftest_knows_where_the_shared_data_is():
    """Real data comes from the `senteval_data` / `raw_stsb_data` fixtures, which skip where it is absent."""
    offenders = [
        path.name
        for path in TESTS.glob("*.py")
        if path.name not in ("conftest.py", Path(__file__).name)
        and _SHARED_PATH.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], f"use the senteval_data / raw_stsb_data fixtures instead of a path in {offenders}"


def test_the_library_finds_no_data_without_the_fixtures():
    """A test that reads the data through the library's own search fails everywhere, not only on a fresh clone."""
    with pytest.raises(senteval.DataNotFoundError):
        senteval.find_data_dir()
    with pytest.raises(senteval.DataNotFoundError):
        senteval.find_raw_stsb_dir()


def _imports(source: Path, package_root: Path) -> set[str]:
    """The cpembed modules a file imports, at any depth (a lazy import inside a function counts too)."""
    import ast

    module = ".".join(source.relative_to(package_root.parent).with_suffix("").parts).removesuffix(".__init__")
    is_package = source.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("cpembed")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                base = ".".join(parts[: len(parts) - node.level + (1 if is_package else 0)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith("cpembed"):
                continue
            for alias in node.names:  # `from . import engine` imports a module, `from .x import y` a name
                submodule = f"{target}.{alias.name}"
                as_path = package_root.parent / Path(*submodule.split("."))
                found.add(submodule if as_path.with_suffix(".py").is_file() or as_path.is_dir() else target)
    return found - {module}


def test_no_import_cycles():
    package_root = TESTS.parent / "src" / "cpembed"
    graph = {}
    for source in package_root.rglob("*.py"):
        name = ".".join(source.relative_to(package_root.parent).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = _imports(source, package_root)
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            assert state.get(target) != "open", f"import cycle: {' -> '.join([*path, node, target])}"
            if target not in state:
                visit(target, [*path, node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert "cpembed.engine" in graph["cpembed.encoder"]  # the check sees relative imports


def test_every_error_cpembed_raises_on_purpose_is_a_cpembed_error():
    import ast

    from cpembed import errors

    ours = {name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, Exception)}
    builtin = {"ValueError", "TypeError", "FileNotFoundError", "OSError", "KeyError", "IsADirectoryError"}
    offenders = []
    for source in (TESTS.parent / "src" / "cpembed").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                if node.exc.func.id in builtin:
                    offenders.append(f"{source.name}:{node.lineno} raises {node.exc.func.id}")
    assert offenders == [], offenders
    assert {"InvalidValueError", "InputNotFoundError", "ModelNotFoundError"} <= ours
