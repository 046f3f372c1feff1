"""The packages are layers, and imports only point down (README, "Architecture").

Every import in the project's code is read with ``ast`` — module-level, inside functions and
under ``TYPE_CHECKING`` alike, since each is a dependency the next engineer has to know about —
and placed by the layer of the importing and the imported module. An import of a higher layer
fails this test, naming the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Bottom first: one package per floor, so the folders are the floors (README, "Architecture").
#: The faces live inside l4mon (the product's layout: l4mon holds the hub, its API and CLI) as
#: their own package, l4mon.faces; every other l4mon module is the hub.
LAYERS: tuple[tuple[str, str], ...] = (
    ("telemetry", "wire model, site model, link statistics"),
    ("handover", "handover, failover and intersection analysis"),
    ("l4mon", "the hub: ingest, state, alert rules, store, console stream, live process"),
    ("scenarios", "simulator, scenarios, importers, replay"),
    ("l4mon.faces", "HTTP API, reports, CLI"),
)
FLOORS = tuple(package for package, _ in LAYERS)
PACKAGES = tuple(dict.fromkeys(floor.split(".")[0] for floor in FLOORS))


def layer_of(module: str) -> int:
    """The floor of ``module``: the innermost floor package that holds it (-1: none).

    A package's ``__main__`` is how ``python -m`` enters the program, the door of its command
    line, so it stands on the top floor wherever Python wants the file to be."""
    parts = module.split(".")
    if parts[-1] == "__main__" and parts[0] in PACKAGES:
        return len(FLOORS) - 1
    found = -1
    for index, floor in enumerate(FLOORS):
        inside = module == floor or module.startswith(floor + ".")
        if inside and (found < 0 or len(floor) > len(FLOORS[found])):
            found = index
    return found


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import of a project module in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # ``from l4mon import views`` imports the module l4mon.views
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def test_every_module_has_a_layer() -> None:
    assert [m for m in modules() if layer_of(m) < 0] == []


def test_imports_only_point_down() -> None:
    known = modules()
    upward = []
    for module, path in known.items():
        mine = layer_of(module)
        for line, name in imports(path):
            if name not in known:  # ``from l4mon import __version__``: a name, not a module
                continue
            theirs = layer_of(name)
            if theirs > mine:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {module} ({LAYERS[mine][1]}) "
                              f"imports {name} ({LAYERS[theirs][1]})")
    assert upward == [], "imports that run back up:\n" + "\n".join(upward)


def test_the_layer_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The check itself: a telemetry module importing the hub is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("from l4mon.hub import Hub\n\ndef f():\n    import scenarios.replay\n")
    found = imports(bad)
    assert [n for _, n in found] == ["l4mon.hub", "l4mon.hub.Hub", "scenarios.replay"]
    assert layer_of("telemetry.link") < layer_of("l4mon.hub") < layer_of("scenarios.replay")
    assert layer_of("l4mon.faces.api.app") > layer_of("scenarios.replay")
    assert layer_of("scenarios.replay") > layer_of("l4mon.runtime")
    assert layer_of("l4mon.__main__") == layer_of("l4mon.faces.cli")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_round_about() -> None:
    """No import cycles between modules, lazy ones included: a cycle is two modules that
    cannot be understood (or changed) one without the other."""
    known = modules()
    graph = {module: {name for _, name in imports(path) if name in known and name != module}
             for module, path in known.items()}
    for module in list(graph):  # a package's __init__ is not a dependency of its modules
        graph[module] = {name for name in graph[module] if not module.startswith(name + ".")}
    assert _cycles(graph) == []


def test_no_cycle_in_the_whole_tree() -> None:
    """The same for everything in the tree, test support, benches and tests included: a
    bench that needs a test module that needs the bench is as hard to change."""
    tops = (*PACKAGES, "testing", "bench", "tests")
    known: dict[str, Path] = {}
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            known[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for module, path in known.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        graph[module] = {name for name in found if name in known and name != module
                         and not module.startswith(name + ".")}
    assert _cycles(graph) == []


def sub_packages(root: str) -> list[str]:
    """The packages directly inside ``root`` (``l4mon.alerts``, ``l4mon.store``, …)."""
    base = ROOT.joinpath(*root.split("."))
    return sorted(f"{root}.{d.name}" for d in base.iterdir() if (d / "__init__.py").exists())


def package_graph(root: str) -> dict[str, set[str]]:
    """Which of ``root``'s sub-packages import which, each module standing for the sub-package
    that holds it; ``root``'s own modules stand for themselves, so a path through one of them
    (alerts → hub → store) is followed too."""
    known = modules()
    inside = [m for m in known if m.startswith(root + ".")]
    groups = sub_packages(root)

    def group_of(module: str) -> str:
        for group in groups:
            if module == group or module.startswith(group + "."):
                return group
        return module

    graph: dict[str, set[str]] = {group_of(m): set() for m in inside}
    for module in inside:
        mine = group_of(module)
        for _, name in imports(known[module]):
            if name in known and name.startswith(root + ".") and group_of(name) != mine:
                graph[mine].add(group_of(name))
    return graph


def test_no_cycle_between_the_hubs_packages() -> None:
    """No two of l4mon's packages (alerts, store, commands, ingest, faces, …) need each other,
    even through a third: a package is a unit one can read, test and change from the bottom
    up only if the arrows between packages run one way (the store below the engines that
    write it, the records it keeps below both)."""
    assert {"l4mon.alerts", "l4mon.store", "l4mon.commands", "l4mon.records",
            "l4mon.faces"} <= set(sub_packages("l4mon"))
    assert _cycles(package_graph("l4mon")) == []


def test_the_package_check_catches_a_cycle() -> None:
    """The check itself: two packages importing each other through their modules are one
    cycle, whichever modules the imports start from."""
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]
    assert _cycles({"p.a": {"p.b"}, "p.b": set()}) == []


#: Functions over ``LONG_LINES`` lines, and why each is still long. A new long function fails
#: the test below until it is split or says here why it cannot be: the list only shrinks.
LONG_LINES = 80
STILL_LONG: dict[str, str] = {
    "l4mon.ingest._gmqtt.install_lean_publish": "the one patched fast path, kept in one piece "
                                                "so its self-check covers all of it",
    "l4mon.faces.cli.build_parser": "one declarative table of the commands and their flags",
    "l4mon.faces.api.alerts.routes": "one table of the alert routes over the engine",
    "scenarios.sim.fleet._vehicle_tick": "one tick's random draws in one visible order: "
                                         "tests/test_simfleet.py pins the bytes they make",
    "scenarios.sim.radio.measure": "one sample's random draws in one visible order: "
                                   "tests/test_simfleet.py pins the bytes they make",
}


def test_long_functions_say_why() -> None:
    """No function runs over ``LONG_LINES`` lines unless ``STILL_LONG`` says why; one that has
    been split comes off the list (so the list stays true)."""
    long = {}
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > LONG_LINES:
                    long[f"{module}.{node.name}"] = lines
    assert sorted(set(long) - set(STILL_LONG)) == []
    assert sorted(set(STILL_LONG) - set(long)) == []
