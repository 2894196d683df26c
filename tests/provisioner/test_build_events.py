"""Reading CodeBuild's state-change event."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from provisioner.domain.build_events import NotOurBuildError, parse_build_state_change
from tests.conftest import ROOT

FIXTURE: dict[str, Any] = json.loads(
    (ROOT / "tests/fixtures/codebuild-state-change-succeeded.json").read_text()
)
END = datetime(2026, 11, 20, 9, 21, 28, tzinfo=UTC)


def test_the_succeeded_fixture() -> None:
    result = parse_build_state_change(FIXTURE["detail"], END)
    assert result.status == "SUCCEEDED"
    assert result.request_id == "req-7f3a9c21"
    assert result.attempt == 1
    assert result.build_id == "selfservice-provision:8745a7a9-c340-456a-9166-edf953571baa"
    assert result.log_group == "/aws/codebuild/selfservice-provision"
    assert result.duration_seconds == 326.0
    assert result.failed_phase is None


def test_a_failed_build_names_its_phase() -> None:
    detail = copy.deepcopy(FIXTURE["detail"])
    detail["build-status"] = "FAILED"
    detail["additional-information"]["phases"] = [
        {"phase-type": "PRE_BUILD", "phase-status": "SUCCEEDED"},
        {
            "phase-type": "BUILD",
            "phase-status": "FAILED",
            "phase-context": [
                "COMMAND_EXECUTION_ERROR: Error while executing command: terraform apply"
            ],
        },
    ]
    detail["additional-information"]["environment"]["environment-variables"].append(
        {"name": "ATTEMPT", "type": "PLAINTEXT", "value": "3"}
    )
    result = parse_build_state_change(detail, END)
    assert (result.status, result.failed_phase, result.attempt) == ("FAILED", "BUILD", 3)
    assert result.phase_context is not None
    assert "terraform apply" in result.phase_context


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update({"build-status": "IN_PROGRESS"}),
        lambda d: d["additional-information"]["environment"].update({"environment-variables": []}),
    ],
    ids=["not-terminal", "not-ours"],
)
def test_other_builds_are_not_ours(mutate: Any) -> None:
    detail = copy.deepcopy(FIXTURE["detail"])
    mutate(detail)
    with pytest.raises(NotOurBuildError):
        parse_build_state_change(detail, END)
