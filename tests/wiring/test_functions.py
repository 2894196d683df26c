"""Every function's Handler resolves, and its environment equals its configuration model.

Mutating one function's Handler or one environment variable name in a template (and
nothing else) must fail here with a message naming the function: the mutation tests
below prove it on a scratch copy of the repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from selfservice.develop.wiring import check_function
from selfservice.templates import FunctionSpec, load_platform
from tests.conftest import platform_functions

EXPECTED_FUNCTIONS = {
    "WebhookFunction",
    "RequestConsumerFunction",
    "BuildEventsFunction",
    "WriteBackFunction",
    "OpsApiFunction",
    "StuckTicketsFunction",
}


def test_the_platform_declares_every_function() -> None:
    # Guards the parametrized tests below against silently running over nothing.
    assert {fn.logical_id for fn in platform_functions()} == EXPECTED_FUNCTIONS


@pytest.mark.parametrize("function", platform_functions(), ids=lambda fn: fn.logical_id)
def test_handler_resolves_and_environment_matches_config(function: FunctionSpec) -> None:
    report = check_function(function)
    assert not report.problems, str(report)


def _scratch_copy(root: Path, destination: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copy(root / "template.yaml", destination / "template.yaml")
    for folder in ("sam", "services", "schemas"):
        shutil.copytree(root / folder, destination / folder, ignore=ignore)
    return destination


def _function(copy: Path, logical_id: str) -> FunctionSpec:
    platform = load_platform(copy / "template.yaml")
    (spec,) = [fn for t in platform.walk() for fn in t.functions() if fn.logical_id == logical_id]
    return spec


def _mutate(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur exactly once in {path.name}"
    path.write_text(text.replace(old, new))


def test_a_renamed_handler_is_reported_by_function_name(root: Path, tmp_path: Path) -> None:
    copy = _scratch_copy(root, tmp_path)
    _mutate(
        copy / "sam/intake.yaml",
        "Handler: intake.handlers.webhook.lambda_handler",
        "Handler: intake.handlers.webhook.handler",
    )
    report = check_function(_function(copy, "WebhookFunction"))
    assert report.problems
    assert "WebhookFunction (intake.yaml)" in str(report)
    assert "has no callable 'handler'" in str(report)


def test_a_handler_module_outside_the_code_uri_is_reported(root: Path, tmp_path: Path) -> None:
    copy = _scratch_copy(root, tmp_path)
    # The notifier's code is importable in the developer's environment, but not from the
    # provisioner's CodeUri: Lambda would fail with Runtime.ImportModuleError.
    _mutate(
        copy / "sam/provisioner.yaml",
        "Handler: provisioner.handlers.build_events.lambda_handler",
        "Handler: notifier.handlers.write_back.lambda_handler",
    )
    report = check_function(_function(copy, "BuildEventsFunction"))
    assert "BuildEventsFunction (provisioner.yaml)" in str(report)
    assert "cannot import handler module 'notifier.handlers.write_back'" in str(report)


def test_a_renamed_environment_variable_is_reported_by_function_name(
    root: Path, tmp_path: Path
) -> None:
    copy = _scratch_copy(root, tmp_path)
    _mutate(
        copy / "sam/notifier.yaml",
        "IDEMPOTENCY_TABLE_NAME: !Ref IdempotencyTable",
        "IDEMPOTENCY_TABLE: !Ref IdempotencyTable",
    )
    report = str(check_function(_function(copy, "WriteBackFunction")))
    assert "WriteBackFunction (notifier.yaml)" in report
    assert "does not set environment variable(s) the code reads: IDEMPOTENCY_TABLE_NAME" in report
    assert "the configuration model does not declare: IDEMPOTENCY_TABLE" in report


def test_a_renamed_global_environment_variable_is_reported(root: Path, tmp_path: Path) -> None:
    copy = _scratch_copy(root, tmp_path)
    _mutate(
        copy / "sam/provisioner.yaml",
        "        LEDGER_TABLE_NAME: !Ref LedgerTable",
        "        LEDGER_TABLE: !Ref LedgerTable",
    )
    for logical_id in ("RequestConsumerFunction", "BuildEventsFunction"):
        report = str(check_function(_function(copy, logical_id)))
        assert f"{logical_id} (provisioner.yaml)" in report
        assert "LEDGER_TABLE_NAME" in report
