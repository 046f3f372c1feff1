"""The console's modules are layers and its data flows one way (README, "The operator console").

socket → frames → store → one render step → views; views call actions; actions call the API
and write the store, then announce what changed (store.js ``announce``), which the render step
turns into drawing. Every ES ``import`` in ``ui/static`` — static, re-exported or dynamic
``import(`` — is read with a small parser and placed by the layer of the importing and the
imported module, declared below as ``tests/test_layers.py`` declares the Python packages. An
import of a higher layer, a view importing another view (a view calling a renderer), a view
calling the API itself, a module no layer names, or a cycle fails, naming file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "ui" / "static"

#: Bottom first: (what the layer is, its modules, whether its modules may import each other).
LAYERS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("constants", ("constants",), False),
    ("the one store and its change announcements", ("store",), False),
    ("pure reads and helpers: words, ordering, incident phrases, geometry, DOM helpers",
     ("dom", "words", "fleet-query", "alert-words", "geometry", "perf"), True),
    ("the hub's API (and which hub of a pair answers)", ("pair", "api"), True),
    ("actions: call the API, write the store, announce what changed",
     ("alert-actions", "selection", "duty-actions", "command-actions", "demo-actions", "me",
      "site-data", "handover-data", "linkmap-data"), True),
    ("the stream and the session: socket → frames → store",
     ("frames", "socket", "session"), True),
    ("parts that views compose (element builders, tab switching)",
     ("runbook", "tabs", "alert-cards", "incident-cards"), True),
    ("views: draw the store, call actions; never another view",
     ("alerts", "cue", "fleet-table", "fleet-filter", "site-plot", "handovers", "linkmap-layer",
      "charts", "vehicle-panel", "duty", "demo-panel", "history-tab", "commands"), False),
    ("the one render step: what changed → which views draw", ("render",), False),
    ("boot: wires the page", ("console",), False),
)
#: Views reach the hub only through actions.
NO_API_FROM = "views"

#: ``import ... from "./x.js"``, ``export ... from "./x.js"``, ``import "./x.js"``,
#: ``import("./x.js")``.
IMPORT = re.compile(
    r"""(?:\bimport\s*(?:[\w*{}\s,$]+?\s*from\s*)?|\bexport\s*[\w*{}\s,$]+?\s*from\s*|\bimport\s*\(\s*)
        ["'](?P<spec>[^"']+)["']""", re.VERBOSE)
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


def layer_of(module: str) -> int:
    for index, (_, names, _peers) in enumerate(LAYERS):
        if module in names:
            return index
    return -1


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a sibling module in ``path``; comments blanked
    first (keeping their newlines, so line numbers hold)."""
    text = COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), path.read_text("utf-8"))
    found = []
    for match in IMPORT.finditer(text):
        spec = match.group("spec")
        line = text.count("\n", 0, match.start()) + 1
        found.append((line, spec.removeprefix("./").removesuffix(".js")))
    return found


def graph(static: Path = STATIC) -> dict[str, list[tuple[int, str]]]:
    return {path.stem: imports(path) for path in sorted(static.glob("*.js"))}


def violations(static: Path = STATIC) -> list[str]:
    found = []
    edges = graph(static)
    views = next(i for i, (what, _, _) in enumerate(LAYERS) if what.startswith(NO_API_FROM))
    for module, targets in edges.items():
        mine = layer_of(module)
        if mine < 0:
            found.append(f"ui/static/{module}.js: in no layer (add it to LAYERS)")
            continue
        for line, target in targets:
            where = f"ui/static/{module}.js:{line} imports {target}.js"
            theirs = layer_of(target)
            if target not in edges:
                found.append(f"{where}, which does not exist")
            elif theirs > mine:
                found.append(f"{where}: upward ({LAYERS[mine][0]} → {LAYERS[theirs][0]})")
            elif theirs == mine and not LAYERS[mine][2]:
                found.append(f"{where}: sideways within '{LAYERS[mine][0]}'")
            elif mine == views and target == "api":
                found.append(f"{where}: a view calls the API itself, not through an action")
    return found + [f"import cycle: {' → '.join(c)}" for c in cycles(edges)]


def cycles(edges: dict[str, list[tuple[int, str]]]) -> list[list[str]]:
    """One cycle per strongly connected part of the import graph that has one."""
    found, state, stack = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for _, target in edges.get(module, []):
            if state.get(target) == "open":
                found.append([*stack[stack.index(target):], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in edges:
        if module not in state:
            visit(module)
    return found


def test_the_parser_reads_every_form_of_import(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text(
        'import { x,\n  y } from "./b.js";\n// import { z } from "./gone.js";\n'
        'import "./c.js";\nexport { w } from "./d.js";\n'
        'const later = () => import("./e.js");\n/* import "./f.js"; */\n', "utf-8")
    assert imports(tmp_path / "a.js") == [(1, "b"), (4, "c"), (5, "d"), (6, "e")]


def test_a_cycle_and_an_upward_import_are_named(tmp_path: Path) -> None:
    (tmp_path / "store.js").write_text('import { S } from "./words.js";\n', "utf-8")
    (tmp_path / "words.js").write_text('import { S } from "./store.js";\n', "utf-8")
    (tmp_path / "alerts.js").write_text('import { api } from "./api.js";\n', "utf-8")
    (tmp_path / "api.js").write_text("\n", "utf-8")
    found = violations(tmp_path)
    assert any(v.startswith("ui/static/store.js:1 imports words.js: upward") for v in found)
    assert any("alerts.js:1 imports api.js: a view calls the API" in v for v in found)
    assert any(v.startswith("import cycle: ") and "store" in v and "words" in v for v in found)


def test_console_imports_point_down_and_never_round() -> None:
    assert graph(), "no ES module found in ui/static"
    found = violations()
    assert not found, "the console's imports:\n" + "\n".join(found)
