#!/usr/bin/env python3
"""List the import cycles between modules of app and agent (imports inside functions count too):
python scripts/import-cycles.py from the top of the tree.
Uses grimp, which import-linter brings (requirements-test.txt)."""

import pathlib
import sys

import grimp


def cycles(*packages: str) -> list[list[str]]:
    """The strongly connected groups of two or more modules in the direct-import graph, sorted."""
    graph = grimp.build_graph(*packages)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for module in edges:
        if module not in index:
            visit(module)
    return sorted(groups)


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path.cwd()))
    found = cycles(*(sys.argv[1:] or ["app", "agent"]))
    for group in found:
        print(f"{len(group)} modules: {', '.join(group)}")
    print(len(found), "import cycles")
