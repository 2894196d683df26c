"""One set of pins: pyproject.toml, constraints.txt and every requirements.txt agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(?P<version>[^\s;#]+)")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str], origin: str) -> dict[str, str]:
    pins = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _PIN.match(line)
        assert match, f"{origin}: {line!r} is not pinned with =="
        pins[_normalize(match["name"])] = match["version"]
    return pins


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return _pins(lines, "pyproject.toml")


REQUIREMENTS = [
    ROOT / "schemas/requirements.txt",
    *sorted(ROOT.glob("services/*/requirements.txt")),
]


def test_every_service_ships_a_requirements_file() -> None:
    services = {path.name for path in (ROOT / "services").iterdir() if path.is_dir()}
    assert services == {"intake", "provisioner", "notifier", "ops-api"}
    assert {path.parent.name for path in REQUIREMENTS[1:]} == services


@pytest.mark.parametrize("path", REQUIREMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_lambda_requirements_use_the_project_pins(path: Path) -> None:
    expected = _pyproject_pins()
    for name, version in _pins(path.read_text().splitlines(), path.name).items():
        assert expected.get(name) == version, f"{path.relative_to(ROOT)}: {name}=={version}"


def test_the_layer_carries_the_shared_runtime() -> None:
    layer = _pins((ROOT / "schemas/requirements.txt").read_text().splitlines(), "layer")
    assert {"aws-lambda-powertools", "pydantic", "cloudevents"} <= set(layer)


def test_the_lock_agrees_with_the_direct_pins() -> None:
    locked = _pins((ROOT / "constraints.txt").read_text().splitlines(), "constraints.txt")
    for name, version in _pyproject_pins().items():
        assert locked.get(name) == version, f"constraints.txt: {name} is {locked.get(name)}"
