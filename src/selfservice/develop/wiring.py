"""Check that every function a template declares can start: handler and environment.

Two field failures motivate this: a ``Handler`` naming a function that does not exist
(``Runtime.HandlerNotFound`` on the first request) and an environment variable set by
the template under one name but read by the code under another (a ``KeyError`` that
surfaced as a 502). Both are found here, before a deployment, for every function.

The handler is imported in a fresh interpreter whose ``sys.path`` is what Lambda gives
it — the function's CodeUri, then its layers, then the third-party packages — and not
the developer's editable installs, so a wrong CodeUri or a missing layer shows up too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass

from selfservice.templates import FunctionSpec

__all__ = ["WiringReport", "check_function"]

# Runs inside the isolated interpreter. Prints one JSON line: the problems found and the
# environment variables the handler's configuration model reads.
_PROBE = """
import importlib, json, sys
module_name, attribute = sys.argv[1], sys.argv[2]
report = {"problems": [], "env": None}
try:
    module = importlib.import_module(module_name)
except Exception as exc:
    report["problems"].append(
        f"cannot import handler module {module_name!r}: {type(exc).__name__}: {exc}"
    )
else:
    handler = getattr(module, attribute, None)
    if not callable(handler):
        report["problems"].append(f"handler module {module_name!r} has no callable {attribute!r}")
    model = getattr(module, "CONFIG_MODEL", None)
    if model is None:
        report["problems"].append(f"handler module {module_name!r} declares no CONFIG_MODEL")
    else:
        from selfservice_runtime.config import env_var_names
        report["env"] = sorted(env_var_names(model))
print(json.dumps(report))
"""


@dataclass(frozen=True)
class WiringReport:
    """What was found for one function; ``problems`` is empty when it is sound."""

    function: FunctionSpec
    problems: tuple[str, ...]

    def __str__(self) -> str:
        if not self.problems:
            return f"{self.function.describe()}: ok"
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        return f"{self.function.describe()}:\n{lines}"


def _third_party_path() -> str:
    return sysconfig.get_paths()["purelib"]


def check_function(spec: FunctionSpec, *, python: str = sys.executable) -> WiringReport:
    """Import the function's handler as Lambda would and compare environment with config."""
    problems: list[str] = []
    if not spec.code_uri.is_dir():
        problems.append(f"CodeUri {spec.code_uri} is not a directory")
        return WiringReport(spec, tuple(problems))
    path = os.pathsep.join([*(str(p) for p in spec.import_paths), _third_party_path()])
    # -S: no site processing, so .pth-based editable installs of the project are invisible;
    # -I would also drop PYTHONPATH, hence the explicit environment instead.
    completed = subprocess.run(  # noqa: S603 - fixed interpreter and arguments
        [python, "-S", "-c", _PROBE, spec.handler_module, spec.handler_attribute],
        env={"PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1", "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        problems.append(f"handler probe crashed: {completed.stderr.strip()[-2000:]}")
        return WiringReport(spec, tuple(problems))
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    problems.extend(f"Handler {spec.handler!r}: {problem}" for problem in report["problems"])
    if report["env"] is not None:
        declared = set(spec.environment)
        expected = set(report["env"])
        if missing := sorted(expected - declared):
            problems.append(
                "the template does not set environment variable(s) the code reads: "
                + ", ".join(missing)
            )
        if extra := sorted(declared - expected):
            problems.append(
                "the template sets environment variable(s) the configuration model does "
                "not declare: " + ", ".join(extra)
            )
    return WiringReport(spec, tuple(problems))
