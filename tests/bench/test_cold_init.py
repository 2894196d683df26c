"""The cold-init benchmark's helpers: what it runs and parses decides the published figures.

No timing here: speed targets live only in bench/ (``make bench``).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import subprocess
import sys
from typing import Literal

import pytest

from bench import cold_init
from bench.common import ROOT
from selfservice.templates import FunctionSpec
from tests.conftest import platform_functions


def test_the_result_line_is_the_last_marked_one() -> None:
    out = 'noise\nRESULT {"seconds": 1}\nlibrary chatter\nRESULT {"seconds": 2}\n'
    assert cold_init.parse_result(out) == {"seconds": 2}
    with pytest.raises(ValueError, match="no RESULT line"):
        cold_init.parse_result("nothing\n")


def test_the_floor_creates_each_recorded_client_in_order() -> None:
    code = cold_init.floor_code(["dynamodb", "events", "dynamodb"])
    assert code.splitlines() == [
        "import boto3",
        "session = boto3.session.Session()",
        "session.client('dynamodb')",
        "session.client('events')",
        "session.client('dynamodb')",
    ]


def test_the_libraries_floor_imports_the_recorded_library_modules_after_the_clients() -> None:
    code = cold_init.floor_code(["events"], ["pydantic", "aws_lambda_powertools.logging"])
    assert code.startswith(cold_init.floor_code(["events"]))
    namespace: dict[str, object] = {}
    exec(code.removeprefix(cold_init.floor_code(["events"])), namespace)  # noqa: S102
    assert namespace["_name"] == "aws_lambda_powertools.logging"  # the last one, imported


def test_discovery_reports_clients_and_only_the_required_libraries_modules() -> None:
    body = (
        "import boto3, pydantic, json\n"
        "import selfservice_contracts.request\n"
        "boto3.session.Session(region_name='us-east-1').client('sts')\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", cold_init.discover_code(body)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"},
    )
    found = cold_init.parse_result(completed.stdout)
    assert found["clients"] == ["sts"]
    assert "pydantic" in found["libraries"]
    tops = {name.partition(".")[0] for name in found["libraries"]}
    assert tops <= set(cold_init.REQUIRED_LIBRARIES)  # no boto3, json or platform module
    assert found["libraries"].index("pydantic") < found["libraries"].index("pydantic.main")


@pytest.mark.parametrize("fn", platform_functions(), ids=lambda fn: fn.logical_id)
def test_every_handler_module_has_the_builders_cold_init_runs(fn: FunctionSpec) -> None:
    # Cold init calls the builders by name; a function building its clients under
    # another name would be measured without them (a flattering, wrong figure).
    module = importlib.import_module(fn.handler_module)
    found = [name for name in cold_init.BUILDERS if callable(getattr(module, name, None))]
    assert found[0] == "config", fn.logical_id
    assert len(found) >= 2, f"{fn.logical_id} builds no adapters under {cold_init.BUILDERS}"


def test_a_function_environment_is_the_templates_plus_the_runtimes_only() -> None:
    (spec,) = [fn for fn in platform_functions() if fn.logical_id == "WebhookFunction"]
    environment = cold_init.function_environment(
        spec, {"EVENT_BUS_NAME": "bus"}, "http://127.0.0.1:1"
    )
    assert environment["EVENT_BUS_NAME"] == "bus"
    assert environment["LAMBDA_TASK_ROOT"] == str(spec.code_uri)
    assert environment["PYTHONPATH"].split(":")[0] == str(spec.code_uri)
    assert "POWERTOOLS_TRACE_DISABLED" not in environment


def test_the_intake_breakdown_ends_with_the_whole_init_the_bench_times() -> None:
    # The stages must add up to the init measured in the table: the handler module
    # imported and every builder cold init runs, called.
    (spec,) = [fn for fn in platform_functions() if fn.logical_id == cold_init.INTAKE_FUNCTION]
    assert spec.handler_module == cold_init.INTAKE_MODULE
    module = importlib.import_module(spec.handler_module)
    builders = [name for name in cold_init.BUILDERS if callable(getattr(module, name, None))]
    code = "\n".join(stage.code for stage in cold_init.INTAKE_STAGES)
    assert f"import {spec.handler_module} as handler" in code
    assert [f"handler.{name}()" for name in builders] == cold_init.INTAKE_STAGES[-1].code.split()
    assert {stage.kind for stage in cold_init.INTAKE_STAGES} == {"floor", "library", "platform"}


def test_the_staged_run_reports_one_duration_per_stage() -> None:
    stages = (
        cold_init.Stage("a", "x = 1", "floor"),
        cold_init.Stage("b", "import json\ny = 2", "library"),
    )
    namespace: dict[str, object] = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(cold_init.staged_code(stages), namespace)  # noqa: S102 - our generated code
    durations = cold_init.parse_result(out.getvalue())
    assert len(durations) == 2
    assert all(d >= 0 for d in durations)
    assert namespace["y"] == 2


def test_the_breakdown_charges_each_kind_separately() -> None:
    def stage(kind: Literal["floor", "library", "platform"], ms: float) -> cold_init.StageTime:
        return cold_init.StageTime(cold_init.Stage(kind, "", kind), ms)

    b = cold_init.Breakdown(
        [stage("floor", 100), stage("library", 30), stage("library", 20), stage("platform", 7)],
        floor_ms=200,
        runs=1,
    )
    assert b.total("library") == 50
    assert b.libraries_ratio == 1.25


def test_the_first_request_run_imports_its_helpers_in_the_functions_interpreter() -> None:
    # FIRST_REQUEST imports bench.intake_warm in a fresh `python -S` whose path is the
    # function's (no editable installs): importing it must not need the CLI package.
    (spec,) = [fn for fn in platform_functions() if fn.logical_id == cold_init.INTAKE_FUNCTION]
    environment = cold_init.function_environment(spec, {}, "http://127.0.0.1:1")
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import bench.intake_warm"
    completed = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
