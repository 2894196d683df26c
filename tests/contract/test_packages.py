"""The contracts package holds only shapes: importable without boto3 or Powertools' runtime."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

CONTRACTS = ROOT / "schemas/selfservice_contracts"
SHAPES_MAY_IMPORT = {"pydantic", "cloudevents", "selfservice_contracts"}
"""Beyond the standard library: the models' and the envelope's own libraries."""
NEVER_IN_CONTRACTS = ("boto3", "botocore", "aws_lambda_powertools")
"""The AWS SDK and the Lambda runtime's toolkit: selfservice_runtime's, never the shapes'."""
MODULES = sorted(CONTRACTS.rglob("*.py"))
"""Every module of the package, its subpackages' too."""


def _dotted(path: Path) -> str:
    parts = path.relative_to(CONTRACTS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path) -> set[str]:
    """Modules imported at run time (``if TYPE_CHECKING:`` blocks left out)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = {
        id(n) for block in ast.walk(tree) if _type_checking_block(block) for n in ast.walk(block)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _third_party(modules: set[str]) -> set[str]:
    return {
        m for m in modules if m.partition(".")[0] not in sys.stdlib_module_names | {"__future__"}
    }


@pytest.mark.parametrize("module", MODULES, ids=_dotted)
def test_a_contracts_module_imports_only_shapes_libraries(module: Path) -> None:
    refused = {
        m
        for m in _third_party(_imports(module))
        if not any(m == ok or m.startswith(f"{ok}.") for ok in SHAPES_MAY_IMPORT)
    }
    assert not refused, (
        f"{module.name} imports {sorted(refused)}: runtime helpers belong in selfservice_runtime"
    )


@pytest.mark.parametrize("module", MODULES, ids=_dotted)
def test_no_contracts_module_imports_the_sdk_or_powertools(module: Path) -> None:
    found = {m for m in _imports(module) if m.partition(".")[0] in NEVER_IN_CONTRACTS}
    assert not found, f"{_dotted(module)} imports {sorted(found)}: move it to selfservice_runtime"


def test_subpackages_are_checked_too() -> None:
    assert "selfservice_contracts.products" in {_dotted(path) for path in MODULES}


def test_the_check_sees_runtime_imports_and_ignores_type_only_ones() -> None:
    assert "boto3" in _imports(ROOT / "schemas/selfservice_runtime/dedupe.py")
    assert "mypy_boto3_events.type_defs" not in _imports(CONTRACTS / "envelope.py")


def test_every_contracts_module_imports_with_boto3_unavailable() -> None:
    names = ", ".join(_dotted(path) for path in MODULES)
    code = (
        "import sys\n"
        "for blocked in ('boto3', 'botocore', 'aws_xray_sdk', 'aws_lambda_powertools'):\n"
        "    sys.modules[blocked] = None  # any import of it raises ImportError\n"
        f"import {names}\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
