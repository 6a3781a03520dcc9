#!/usr/bin/env python3
"""List every import of the app made inside a function body: python scripts/imports-in-functions.py [DIR]."""

import ast
import pathlib
import sys


def imports_in_functions(root: pathlib.Path) -> list[str]:
    """Return 'path:line: module' for each import of app (or a relative one) inside a function."""
    hits = set()
    for path in sorted(root.rglob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = ["." * node.level + (node.module or "")]
                else:
                    continue
                if any(name == "app" or name.startswith(("app.", ".")) for name in names):
                    hits.add((str(path), node.lineno, ", ".join(names)))
    return [f"{path}:{line}: {names}" for path, line, names in sorted(hits)]


if __name__ == "__main__":
    found = imports_in_functions(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "app"))
    print("\n".join(found))
    print(len(found), "imports of the app inside functions")
