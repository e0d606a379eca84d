"""The package boundaries of the architecture, read from the source of every product module.

Imports are parsed (ast, no import is executed): module-level ones, function-level (lazy)
ones and those under `if TYPE_CHECKING:` all count. Four rules:

- each package imports only what the architecture table allows (project packages and
  third-party libraries), lazy exceptions named one by one;
- nothing imports the app shell (`ironwatch_app`), no product package imports the test
  harness (`ironwatch_testing`);
- what a role runs fits its install: the gateway (`ironwatch[edge]`) never reaches FastAPI,
  SQLAlchemy or scikit-learn, whatever chain of project modules would lead there;
- no import cycle between modules of the project, not even through TYPE_CHECKING imports.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path
from typing import Literal

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("ironwatch", "firmware_bridge", "models", "edge_agent", "simulators", "cloud")
APP_SHELL = "ironwatch_app"
HARNESS = "ironwatch_testing"
PACKAGES = (*PRODUCT, APP_SHELL, HARNESS)
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}

Scope = Literal["module", "function", "type_checking"]


@dataclass(frozen=True)
class Import:
    """One imported name as the importer sees it: the absolute module, where, and when."""

    importer: str
    target: str
    line: int
    scope: Scope

    @property
    def top(self) -> str:
        return self.target.partition(".")[0]

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.target} ({self.scope})"


# -- reading imports ------------------------------------------------------------------------
def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _ImportVisitor(ast.NodeVisitor):
    """Collects imports with their scope; resolves relative imports against the module."""

    def __init__(self, module: str, is_package: bool, known: frozenset[str]) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.known = known
        self.scope: Scope = "module"
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.stmt) -> None:
        self.found.append(Import(self.module, target, node.lineno, self.scope))

    def _in(self, scope: Scope, nodes: Iterable[ast.AST]) -> None:
        outer, self.scope = self.scope, scope if self.scope == "module" else self.scope
        for child in nodes:
            self.visit(child)
        self.scope = outer

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._in("function", node.body)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._in("function", node.body)

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        if _is_type_checking(node.test):
            self._in("type_checking", node.body)
            self._in(self.scope, node.orelse)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            parent = ".".join([*base, node.module] if node.module else base)
        else:
            parent = node.module or ""
        for alias in node.names:
            # `from pkg import mod` imports the submodule when there is one.
            sub = f"{parent}.{alias.name}"
            self._add(sub if sub in self.known else parent, node)


def read_imports(root: Path, packages: Iterable[str]) -> dict[str, list[Import]]:
    """Every module of `packages` under `root`, with its imports."""
    files = {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
    }
    known = frozenset(files)
    graph: dict[str, list[Import]] = {}
    for module, path in files.items():
        visitor = _ImportVisitor(module, path.name == "__init__.py", known)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        graph[module] = visitor.found
    return graph


# -- the rules --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """What one package may import: project modules (by prefix) and third-party libraries."""

    project: frozenset[str]
    libraries: frozenset[str]
    # (module, library) pairs allowed only when not imported with the module: inside a
    # function (a lazy import for one feature) or under TYPE_CHECKING (for its types).
    lazy: frozenset[tuple[str, str]] = frozenset()
    forbidden: frozenset[str] = frozenset()
    anything: bool = False

    def allows(self, imp: Import) -> bool:
        top = imp.top
        if top in STDLIB:
            return True
        if any(imp.target == f or imp.target.startswith(f + ".") for f in self.forbidden):
            return False
        if self.anything:
            return True
        if top in PACKAGES:
            return any(imp.target == p or imp.target.startswith(p + ".") for p in self.project)
        if top in self.libraries:
            return True
        return imp.scope != "module" and (imp.importer, top) in self.lazy


CONTRACT = "ironwatch"
FEATURES = "models.features"
# Libraries are import names (`serial` is pyserial, `paho` is paho-mqtt, `sklearn` is
# scikit-learn); `starlette` comes with FastAPI and `markupsafe` with Jinja2.
RULES: Mapping[str, Rule] = {
    # The leaf: imports nothing of the project. The waveform snapshot converts to numpy
    # arrays and the shared MQTT client builder uses paho, both only when called.
    # pydantic and numpy are in every install (pyproject's base dependencies).
    "ironwatch": Rule(
        project=frozenset({"ironwatch"}),
        libraries=frozenset({"pydantic"}),
        lazy=frozenset({("ironwatch.wire", "numpy"), ("ironwatch.mqtt", "paho")}),
    ),
    # The serial codec (COBS framing) and Modbus profiles.
    "firmware_bridge": Rule(
        project=frozenset({"firmware_bridge", CONTRACT}),
        libraries=frozenset({"serial", "pymodbus", "pydantic", "cobs"}),
    ),
    # Pure maths, no I/O and nothing else of the project.
    "models": Rule(
        project=frozenset({"models"}),
        libraries=frozenset({"numpy", "scipy", "sklearn"}),
    ),
    # `models.features` means the feature maths and the modules it is built on (see
    # feature_modules), never the anomaly, diagnosis or RUL estimators.
    "edge_agent": Rule(
        project=frozenset({"edge_agent", "firmware_bridge", CONTRACT, FEATURES}),
        libraries=frozenset(
            {"paho", "serial", "pymodbus", "numpy", "scipy", "pydantic", "pydantic_settings",
             "prometheus_client"}
        ),
    ),
    # pydantic: the contract's types (secrets, settings) are pydantic's.
    "simulators": Rule(
        project=frozenset({"simulators", "firmware_bridge", CONTRACT, FEATURES}),
        libraries=frozenset({"paho", "serial", "pymodbus", "numpy", "scipy", "pydantic"}),
    ),
    "cloud": Rule(
        project=frozenset({"cloud", CONTRACT, "models"}),
        libraries=frozenset(
            {
                "fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "influxdb_client",
                "jinja2", "markupsafe", "httpx", "psycopg", "tenacity", "paho",
                "msgspec",
                "numpy", "scipy", "pydantic", "pydantic_settings", "prometheus_client",
                # the dashboard's catalogues, locale formats; the API docs' vendored assets
                "babel", "fastapi_offline",
            }
        ),
    ),
    # The app shell is on top: it may import every role, but not the test harness.
    APP_SHELL: Rule(frozenset(), frozenset(), forbidden=frozenset({HARNESS}), anything=True),
    # The test harness helps tests drive the product; it is not a way into the app shell.
    HARNESS: Rule(frozenset(), frozenset(), forbidden=frozenset({APP_SHELL}), anything=True),
}
# Which install each role runs from: pyproject.toml's base dependencies plus these extras.
ROLE_INSTALLS: Mapping[str, tuple[str, ...]] = {
    "edge_agent": ("edge",),
    "simulators": ("sim",),
    "firmware_bridge": ("edge", "sim"),
    FEATURES: ("edge", "sim"),
    "cloud": ("cloud",),
}


@cache
def project_graph() -> dict[str, list[Import]]:
    return read_imports(ROOT, PACKAGES)


def package_of(module: str) -> str:
    return module.partition(".")[0]


def expand_features(rule: Rule, features: frozenset[str]) -> Rule:
    if FEATURES not in rule.project:
        return rule
    return Rule(rule.project | features, rule.libraries, rule.lazy, rule.forbidden, rule.anything)


def reachable(
    graph: Mapping[str, list[Import]], roots: Iterable[str], scopes: frozenset[Scope]
) -> set[str]:
    """Project modules that importing `roots` runs (with their parent packages' __init__)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen or module not in graph:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(i.target for i in graph[module] if i.scope in scopes)
    return seen


RUNTIME: frozenset[Scope] = frozenset({"module", "function"})
ALL_SCOPES: frozenset[Scope] = frozenset({"module", "function", "type_checking"})


@cache
def feature_modules() -> frozenset[str]:
    """`models.features` and the modules of `models` it is built on."""
    graph = project_graph()
    return frozenset(m for m in reachable(graph, [FEATURES], ALL_SCOPES) if m != "models")


def violations(graph: Mapping[str, list[Import]], rules: Mapping[str, Rule]) -> list[str]:
    out = []
    for module, imports in graph.items():
        rule = rules[package_of(module)]
        out += [str(i) for i in imports if not rule.allows(i)]
    return out


def find_cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def strongconnect(v: str) -> None:
        nonlocal counter
        # Iterative Tarjan: a deep import chain must not hit the recursion limit.
        work: list[tuple[str, Iterator[str]]] = [(v, iter(edges.get(v, ())))]
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == node:
                            break
                    if len(component) > 1 or node in edges.get(node, ()):
                        cycles.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(edges.get(child, ()))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for v in sorted(edges):
        if v not in index:
            strongconnect(v)
    return cycles


def installed_import_names(extras: Iterable[str]) -> frozenset[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        wanted += [Requirement(r) for r in project["optional-dependencies"][extra]]
    dists: set[str] = set()
    while wanted:
        req = wanted.pop()
        name = canonicalize_name(req.name)
        if name in dists or name == "ironwatch":
            continue
        dists.add(name)
        try:
            below = requires(req.name) or []
        except PackageNotFoundError:
            continue
        for text in below:
            sub = Requirement(text)
            if sub.marker is None or sub.marker.evaluate({"extra": ""}):
                wanted.append(sub)
    return frozenset(
        module
        for module, owners in packages_distributions().items()
        if any(canonicalize_name(o) in dists for o in owners)
    )


# -- the tests --------------------------------------------------------------------------------
def test_every_package_imports_only_what_the_architecture_allows() -> None:
    graph = project_graph()
    features = feature_modules()
    rules = {name: expand_features(rule, features) for name, rule in RULES.items()}
    assert set(rules) == {package_of(m) for m in graph}
    assert violations(graph, rules) == []


def test_the_feature_maths_stay_apart_from_the_estimators() -> None:
    features = feature_modules()
    assert FEATURES in features
    assert not features & {"models.anomaly", "models.diagnosis", "models.rul"}


def test_nothing_imports_the_app_shell_and_no_product_imports_the_harness() -> None:
    graph = project_graph()
    shell = [
        str(i)
        for m, imports in graph.items()
        if package_of(m) != APP_SHELL
        for i in imports
        if i.top == APP_SHELL
    ]
    harness = [
        str(i)
        for m, imports in graph.items()
        if package_of(m) in (*PRODUCT, APP_SHELL)
        for i in imports
        if i.top == HARNESS
    ]
    assert shell == [] and harness == []


@pytest.mark.parametrize("role", sorted(ROLE_INSTALLS))
def test_what_a_role_runs_fits_its_install(role: str) -> None:
    graph = project_graph()
    roots = [m for m in graph if m == role or m.startswith(role + ".")]
    assert roots, f"no modules under {role}"
    runs = reachable(graph, roots, RUNTIME)
    for extra in ROLE_INSTALLS[role]:
        available = installed_import_names([extra])
        missing = sorted(
            str(i)
            for m in runs
            for i in graph[m]
            if i.scope in RUNTIME and i.top not in STDLIB and i.top not in PACKAGES
            and i.top not in available
        )
        assert missing == [], f"ironwatch[{extra}] lacks what {role} imports"


def test_gateway_install_has_no_web_database_or_learning_libraries() -> None:
    available = installed_import_names(["edge"])
    assert {"numpy", "paho", "serial", "pymodbus"} <= available
    assert not available & {"fastapi", "sqlalchemy", "sklearn", "influxdb_client"}


def test_no_import_cycles_between_project_modules() -> None:
    graph = project_graph()
    edges = {m: sorted({i.target for i in imps if i.target in graph}) for m, imps in graph.items()}
    assert find_cycles(edges) == []


# -- the checker itself -------------------------------------------------------------------------
def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_reader_sees_lazy_type_checking_and_relative_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg._a import A\n",
            "pkg/_a.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg._b import B\n"
                "class A:\n    def f(self) -> None:\n        import numpy\n"
            ),
            "pkg/_b.py": "from . import _a\nfrom ._a import A\n",
        },
    )
    graph = read_imports(tmp_path, ["pkg"])
    seen = {(i.importer, i.target, i.scope) for imps in graph.values() for i in imps}
    assert seen == {
        ("pkg", "pkg._a", "module"),
        ("pkg._a", "typing", "module"),
        ("pkg._a", "pkg._b", "type_checking"),
        ("pkg._a", "numpy", "function"),
        ("pkg._b", "pkg._a", "module"),
    }
    edges = {m: [i.target for i in imps if i.target in graph] for m, imps in graph.items()}
    # The cycle runs through a TYPE_CHECKING import: still a cycle.
    assert find_cycles(edges) == [["pkg._a", "pkg._b"]]


def test_rules_catch_a_lower_package_importing_a_higher_one() -> None:
    def imp(importer: str, target: str, scope: Scope = "module") -> Import:
        return Import(importer, target, 1, scope)

    graph = {
        "models.features": [imp("models.features", "cloud.db")],
        "edge_agent.x": [imp("edge_agent.x", "models.anomaly"), imp("edge_agent.x", "fastapi")],
        "ironwatch.wire": [imp("ironwatch.wire", "numpy")],
        "ironwatch.mqtt": [
            imp("ironwatch.mqtt", "paho.mqtt.client", "function"),
            imp("ironwatch.mqtt", "paho.mqtt.client", "type_checking"),
            imp("ironwatch.mqtt", "paho.mqtt.enums"),
        ],
        "cloud.x": [imp("cloud.x", "ironwatch_app.cli", "function")],
    }
    rules = {name: expand_features(rule, frozenset({FEATURES})) for name, rule in RULES.items()}
    assert violations(graph, rules) == [
        "models.features:1 imports cloud.db (module)",
        "edge_agent.x:1 imports models.anomaly (module)",
        "edge_agent.x:1 imports fastapi (module)",
        # numpy and paho in the contract package only when not imported with the module:
        "ironwatch.wire:1 imports numpy (module)",
        "ironwatch.mqtt:1 imports paho.mqtt.enums (module)",
        "cloud.x:1 imports ironwatch_app.cli (function)",
    ]
