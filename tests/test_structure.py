"""Issue 17's layout rules, checked on every run rather than trusted to review.

- no module of the code (``services/``, ``schemas/``, ``src/``) over 400 lines: a longer
  one holds several jobs;
- no handler module (``services/*/*/handlers/*.py``) over 100 lines: a handler parses,
  calls one domain function and maps the result;
- no import cycle among the project's packages;
- every service has the same skeleton (:data:`SKELETON`).

The contracts' freedom from boto3 is ``tests/contract/test_packages.py``'s.

Each rule is a function over a tree, so each is also run here against a small tree that
breaks it: a check that cannot fail proves nothing.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

MAX_MODULE_LINES = 400
MAX_HANDLER_LINES = 100
CODE_DIRECTORIES = ("services", "schemas", "src")
SKELETON = (
    "handlers/",
    "domain/",
    "domain/ports.py",
    "adapters/",
    "environment.py",
    "settings.py",
    "runtime.py",
)
"""What every service package holds (a trailing slash: a package)."""

# -- allowed for now ----------------------------------------------------------------------
# issue 17: being split; remove when merged. Each entry must still offend (checked below),
# so an entry left behind after its fix fails the suite instead of hiding a regression.

PENDING_SPLIT: frozenset[str] = frozenset()
"""Modules over :data:`MAX_MODULE_LINES`."""

PENDING_THIN_HANDLERS: frozenset[str] = frozenset()
"""Handler modules over :data:`MAX_HANDLER_LINES`."""

PENDING_SKELETON: frozenset[str] = frozenset()
"""Parts of :data:`SKELETON` a service does not have yet."""

KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()
"""Import cycles (the modules in each)."""


# -- the rules, over any tree -------------------------------------------------------------


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def line_count(path: Path) -> int:
    """Lines in a file, as an editor numbers them."""
    return len(path.read_text().splitlines())


def long_modules(root: Path, limit: int = MAX_MODULE_LINES) -> dict[str, int]:
    """Python modules of the code (not tests, not benches) over ``limit`` lines."""
    return {
        _relative(path, root): lines
        for directory in CODE_DIRECTORIES
        for path in sorted((root / directory).rglob("*.py"))
        if (lines := line_count(path)) > limit
    }


def long_handlers(root: Path, limit: int = MAX_HANDLER_LINES) -> dict[str, int]:
    """Handler modules over ``limit`` lines."""
    return {
        _relative(path, root): lines
        for path in sorted(root.glob("services/*/*/handlers/*.py"))
        if (lines := line_count(path)) > limit
    }


def service_packages(root: Path) -> dict[str, Path]:
    """Each service's package, by service folder (``ops-api`` keeps ``ops_api``)."""
    return {
        folder.name: folder / folder.name.replace("-", "_")
        for folder in sorted((root / "services").iterdir())
        if folder.is_dir()
    }


def missing_skeleton(root: Path) -> set[str]:
    """Parts of :data:`SKELETON` absent from a service package (paths from ``root``)."""
    missing = set()
    for package in service_packages(root).values():
        for part in SKELETON:
            path = package / part.rstrip("/")
            present = (path / "__init__.py").is_file() if part.endswith("/") else path.is_file()
            if not present:
                missing.add(_relative(path, root))
    return missing


def package_roots(root: Path) -> list[Path]:
    """The project's importable packages: each service's, each under schemas/, selfservice."""
    candidates = [
        *sorted(root.glob("services/*/*/__init__.py")),
        *sorted(root.glob("schemas/*/__init__.py")),
        root / "src/selfservice/__init__.py",
    ]
    return [init.parent for init in candidates if init.is_file()]


def project_modules(root: Path) -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    modules = {}
    for package in package_roots(root):
        for path in sorted(package.rglob("*.py")):
            parts = path.relative_to(package.parent).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _type_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(name: str, path: Path) -> Iterator[tuple[str, list[str]]]:
    """What a module imports when it runs, as (module, names taken from it); ``if
    TYPE_CHECKING:`` blocks are left out, imports deferred into a function count (they
    run, and a cycle they close is still one)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = {id(n) for block in ast.walk(tree) if _type_only(block) for n in ast.walk(block)}
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield module, [alias.name for alias in node.names]


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the project's modules it imports (``from package import module`` is an
    edge to the module, ``from module import name`` to the module)."""
    modules = project_modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for module, names in _imports(name, path):
            submodules = {f"{module}.{n}" for n in names} & modules.keys()
            if len(submodules) < len(names) or not names:
                submodules.add(module)  # some name is not a module: the module itself
            targets |= {target for target in submodules if target in modules}
        graph[name] = targets - {name}
    return graph


def _strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[set[str]]:
    """Tarjan's components (iterative), those of more than one module only."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(graph[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def _cycle_path(graph: Mapping[str, Iterable[str]], component: set[str]) -> list[str]:
    """One cycle through a component, as a path that ends where it starts."""
    start = min(component)
    paths = [[start]]
    seen = {start}
    while paths:
        path = paths.pop(0)
        for successor in sorted(graph[path[-1]]):
            if successor == start:
                return [*path, start]
            if successor in component and successor not in seen:
                seen.add(successor)
                paths.append([*path, successor])
    raise AssertionError(f"no cycle through {sorted(component)}")  # a component has one


def import_cycles(root: Path) -> dict[frozenset[str], list[str]]:
    """Each import cycle (its modules) with one path round it."""
    graph = import_graph(root)
    return {
        frozenset(component): _cycle_path(graph, component)
        for component in _strongly_connected(graph)
    }


# -- the rules, on this repository --------------------------------------------------------


@functools.cache
def _cycles_here() -> dict[frozenset[str], list[str]]:
    return import_cycles(ROOT)  # parses every module: once for both tests that need it


def test_no_module_of_the_code_is_over_400_lines() -> None:
    offenders = {path: n for path, n in long_modules(ROOT).items() if path not in PENDING_SPLIT}
    assert not offenders, f"over {MAX_MODULE_LINES} lines (split by job): {offenders}"


def test_no_handler_module_is_over_100_lines() -> None:
    offenders = {
        path: n for path, n in long_handlers(ROOT).items() if path not in PENDING_THIN_HANDLERS
    }
    assert not offenders, (
        f"handler modules over {MAX_HANDLER_LINES} lines (move the work to domain/ and "
        f"adapters/, the wiring to runtime.py): {offenders}"
    )


def test_no_import_cycle_among_the_projects_packages() -> None:
    cycles = {
        " -> ".join(path) for members, path in _cycles_here().items() if members not in KNOWN_CYCLES
    }
    assert not cycles, f"import cycles: {sorted(cycles)}"


def test_every_service_has_the_skeleton() -> None:
    missing = missing_skeleton(ROOT) - PENDING_SKELETON
    assert not missing, f"the service skeleton is {', '.join(SKELETON)}; missing: {sorted(missing)}"


def test_the_services_and_packages_are_found() -> None:
    assert set(service_packages(ROOT)) == {"intake", "notifier", "ops-api", "provisioner"}
    names = {path.name for path in package_roots(ROOT)}
    assert {"intake", "ops_api", "selfservice_contracts", "selfservice"} <= names
    assert "intake.handlers.webhook" in import_graph(ROOT)


# -- the allow-lists hold only what still offends ------------------------------------------


def test_every_pending_split_still_exists_and_is_too_long() -> None:
    stale = PENDING_SPLIT - set(long_modules(ROOT))
    assert not stale, f"split or gone: remove from PENDING_SPLIT: {sorted(stale)}"


def test_every_pending_handler_still_exists_and_is_too_long() -> None:
    stale = PENDING_THIN_HANDLERS - set(long_handlers(ROOT))
    assert not stale, f"thin or gone: remove from PENDING_THIN_HANDLERS: {sorted(stale)}"


def test_every_pending_skeleton_part_is_still_missing() -> None:
    stale = PENDING_SKELETON - missing_skeleton(ROOT)
    assert not stale, f"present now: remove from PENDING_SKELETON: {sorted(stale)}"


def test_every_known_cycle_is_still_a_cycle() -> None:
    stale = KNOWN_CYCLES - set(_cycles_here())
    assert not stale, f"no longer a cycle: remove from KNOWN_CYCLES: {sorted(map(sorted, stale))}"


# -- each rule can fail -------------------------------------------------------------------


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_long_module_and_a_long_handler_are_found(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "src/tool/big.py": "x = 1\n" * 401,
            "src/tool/fits.py": "x = 1\n" * 400,
            "services/svc/svc/handlers/fat.py": "x = 1\n" * 101,
            "services/svc/svc/handlers/thin.py": "x = 1\n" * 100,
            "tests/huge_test.py": "x = 1\n" * 1000,
        },
    )
    assert long_modules(tmp_path) == {"src/tool/big.py": 401}
    assert long_handlers(tmp_path) == {"services/svc/svc/handlers/fat.py": 101}


def test_a_missing_skeleton_part_is_found(tmp_path: Path) -> None:
    complete = {
        "handlers/__init__.py": "",
        "domain/__init__.py": "",
        "domain/ports.py": "",
        "adapters/__init__.py": "",
        "environment.py": "",
        "settings.py": "",
        "runtime.py": "",
    }
    _write(tmp_path, {f"services/ok-svc/ok_svc/{name}": text for name, text in complete.items()})
    partial = {k: v for k, v in complete.items() if k not in {"runtime.py", "adapters/__init__.py"}}
    _write(tmp_path, {f"services/bare/bare/{name}": text for name, text in partial.items()})
    assert missing_skeleton(tmp_path) == {
        "services/bare/bare/runtime.py",
        "services/bare/bare/adapters",
    }


def test_an_import_cycle_is_found_with_its_path(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "src/selfservice/__init__.py": "",
            "src/selfservice/a.py": "from selfservice import b\n",
            "src/selfservice/b.py": "from .c import helper\n",
            "src/selfservice/c.py": "def helper():\n    import selfservice.a\n",
            "src/selfservice/d.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from selfservice import a\n"
            ),
            "schemas/shapes/__init__.py": "",
            "schemas/shapes/x.py": "from shapes.y import Y\n",
            "schemas/shapes/y.py": "Y = 1\n",
        },
    )
    assert import_cycles(tmp_path) == {
        frozenset({"selfservice.a", "selfservice.b", "selfservice.c"}): [
            "selfservice.a",
            "selfservice.b",
            "selfservice.c",
            "selfservice.a",
        ]
    }


@pytest.mark.parametrize(
    ("graph", "cycles"),
    [
        ({"a": {"b"}, "b": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [{"a", "b"}]),
        ({"a": {"b"}, "b": {"c"}, "c": {"b"}, "d": {"d"}}, [{"b", "c"}]),
    ],
)
def test_components_are_the_cycles(graph: dict[str, set[str]], cycles: list[set[str]]) -> None:
    assert _strongly_connected(graph) == cycles
