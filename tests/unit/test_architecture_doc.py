"""docs/architecture.md names every module of emustore/ (it is the map a newcomer reads first)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules() -> list[str]:
    """Every module and package, as "pkg/module.py" relative to emustore/ (__init__ files stand for their package)."""
    found = []
    for path in sorted((ROOT / "emustore").rglob("*.py")):
        relative = path.relative_to(ROOT / "emustore").as_posix()
        if relative == "__init__.py" or "__pycache__" in relative:
            continue
        found.append(relative.removesuffix("/__init__.py") + "/" if relative.endswith("/__init__.py") else relative)
    return found


def _named(doc: str, module: str) -> bool:
    """Named by its path under emustore/ (a package: a path in it), or by its bare name within its package's row."""
    if module.endswith("/"):
        return "`%s" % module in doc
    if "`%s`" % module in doc:
        return True
    package, _, name = module.rpartition("/")
    if not package:
        return False
    rows = [line for line in doc.splitlines() if line.startswith("| `%s/`" % package)]
    return any(re.search(r"`%s`" % re.escape(name), row) for row in rows)


def test_every_module_is_named_in_architecture_md() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    modules = _modules()
    missing = [module for module in modules if not _named(doc, module)]
    assert len(modules) > 50
    assert missing == [], "docs/architecture.md does not name: %s" % ", ".join(missing)
