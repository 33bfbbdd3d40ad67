"""Print zoomer's layout: each module's line count and the package's internal import graph,
and check that the imports a module runs when it loads form no cycle.

Imports inside functions run only when called, so they may point back up the graph (a lazy
import); they are listed, marked "in functions", but left out of the cycle check. A module
that imports `from .kernels import cpu` depends on kernels.cpu; the parent packages that
Python loads on the way are not counted.

    python tools/layout.py          # exit status 1 if the load-time imports have a cycle
"""
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "zoomer"


def module_name(path: Path) -> str:
    """'engine', 'kernels.cpu', 'kernels' for kernels/__init__.py, '__init__' for the package."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path, modules: set[str]) -> tuple[set[str], set[str]]:
    """The package's modules that `path` imports at load time and inside functions."""
    name = module_name(path)
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    if name == "__init__":
        package = []
    at_load, in_functions = set(), set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets = []
            if isinstance(child, ast.Import):
                targets = [a.name.removeprefix("zoomer.") for a in child.names if a.name.startswith("zoomer.")]
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: from . / from .. / from .x
                    base = package[: len(package) - child.level + 1]
                    base = base + child.module.split(".") if child.module else base
                elif child.module and (child.module == "zoomer" or child.module.startswith("zoomer.")):
                    base = child.module.split(".")[1:]
                else:
                    base = None
                if base is not None:
                    for alias in child.names:  # a submodule by name, else the module itself
                        sub = ".".join(base + [alias.name])
                        targets.append(sub if sub in modules else ".".join(base) or "__init__")
            (in_functions if in_function else at_load).update(t for t in targets if t in modules and t != name)
            visit(child, inside)

    visit(ast.parse(path.read_text(), str(path)), False)
    return at_load, in_functions - at_load


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first search meets (each found once, from its first module)."""
    found, state = [], {}  # state: 1 on the current path, 2 finished

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])
    return found


def path_between(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A chain of load-time imports from start to goal, or None."""
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        if path[-1] == goal:
            return path
        for nxt in sorted(graph[path[-1]] - seen):
            seen.add(nxt)
            paths.append(path + [nxt])
    return None


def main() -> int:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph, lazy, lines = {}, {}, {}
    for path in paths:
        name = module_name(path)
        graph[name], lazy[name] = imports(path, modules)
        lines[name] = len(path.read_text().splitlines())
    width = max(map(len, modules))
    print(f"{'module':<{width}}  lines  imports (at load; in functions)")
    for name in sorted(modules, key=lambda n: (n != "__init__", n)):
        late = f"; in functions: {', '.join(sorted(lazy[name]))}" if lazy[name] else ""
        print(f"{name:<{width}}  {lines[name]:5d}  {', '.join(sorted(graph[name])) or '-'}{late}")
    print(f"{len(modules)} modules, {sum(lines.values())} lines; largest: "
          + ", ".join(f"{n} {lines[n]}" for n in sorted(lines, key=lines.get, reverse=True)[:3]))
    found = cycles(graph)
    for cycle in found:
        print("import cycle:", " -> ".join(cycle))
    print("no import cycle at load time" if not found else f"{len(found)} import cycle(s) at load time")
    for name in sorted(lazy):  # allowed, but each is a cycle kept alive by a lazy import
        for target in sorted(lazy[name]):
            back = path_between(graph, target, name)
            if back:
                print(f"lazy import closes a cycle: {name} -> {' -> '.join(back)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
