"""The package's load-time imports form no cycle (tools/layout.py draws the graph)."""
import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "layout.py"
spec = importlib.util.spec_from_file_location("layout", TOOL)
layout = importlib.util.module_from_spec(spec)
spec.loader.exec_module(layout)


def graph() -> dict[str, set[str]]:
    paths = sorted(layout.PACKAGE.rglob("*.py"))
    modules = {layout.module_name(p) for p in paths}
    return {layout.module_name(p): layout.imports(p, modules)[0] for p in paths}


def test_the_graph_is_read():
    edges = graph()
    assert {"render", "engine", "kernels", "kernels.cpu", "__init__"} <= set(edges)
    assert "engine" in edges["__init__"] and "kernels" in edges["engine"]  # relative imports resolved
    assert "jax_draws" in edges["experiment"]  # from zoomer import jax_draws: the submodule


def test_no_import_cycle_at_load_time():
    assert layout.cycles(graph()) == []


def test_a_cycle_is_found():
    assert layout.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
