"""The CLI is a client of emustore.api: no command reaches a store, fsck, explain, load or save itself."""

from __future__ import annotations

import ast
from pathlib import Path

COMMANDS = Path(__file__).resolve().parents[2] / "emustore" / "commands"
FORBIDDEN_MODULES = ("emustore.stores", "emustore.fsck", "emustore.explain.walk", "emustore.load")
FORBIDDEN_NAMES = {"emustore.pull": {"pull"}, "emustore.save": {"save", "save_to_path"}}


def _runtime_imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module, names) of every import outside `if TYPE_CHECKING:` blocks."""
    found: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_no_command_bypasses_the_api() -> None:
    offending = []
    modules = sorted(COMMANDS.glob("*.py"))
    for path in modules:
        for module, names in _runtime_imports(ast.parse(path.read_text())):
            if module.startswith(FORBIDDEN_MODULES) or set(names) & FORBIDDEN_NAMES.get(module, set()):
                offending.append("%s: %s %s" % (path.name, module, names))
    assert len(modules) >= 17
    assert offending == []


def test_the_check_sees_a_bypass() -> None:
    tree = ast.parse("from emustore.stores.docker.catalog import Catalog\nif TYPE_CHECKING:\n    from emustore.load import load\n")
    assert _runtime_imports(tree) == [("emustore.stores.docker.catalog", ["Catalog"])]
