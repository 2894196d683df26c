"""The local CodeBuild follows CodeBuild's phase rules and event shape."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from provisioner.domain.build_events import parse_build_state_change
from selfservice.local.codebuild import LocalCodeBuildClient, run_buildspec, state_change_event

SPEC = "services/provisioner/buildspec.yml"


def _workspace(tmp_path: Path, phases: dict[str, list[str]]) -> Path:
    path = tmp_path / SPEC
    path.parent.mkdir(parents=True)
    spec = {
        "version": 0.2,
        "env": {"variables": {"GREETING": "hello"}},
        "phases": {name: {"commands": commands} for name, commands in phases.items()},
    }
    path.write_text(yaml.safe_dump(spec))
    return tmp_path


def _env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"]}


def test_a_passing_build_keeps_its_directory_across_phases(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    workspace = _workspace(
        tmp_path,
        {
            "install": ['echo "$GREETING $WHO (it\'s quoted)"'],
            "pre_build": ["cd sub"],
            "build": ['test "$(basename "$PWD")" = sub'],
            "post_build": ["echo done"],
        },
    )
    run = run_buildspec(workspace, {**_env(), "WHO": "world"})
    assert run.status == "SUCCEEDED", run.log
    assert "hello world (it's quoted)" in run.log
    assert run.failed_phase is None


def test_a_failed_build_still_runs_post_build(tmp_path: Path) -> None:
    workspace = _workspace(
        tmp_path,
        {
            "build": ["echo before", "false", "echo skipped"],
            "post_build": ["echo post-build ran"],
        },
    )
    run = run_buildspec(workspace, _env())
    assert run.status == "FAILED"
    assert run.failed_phase == "BUILD"
    assert "post-build ran" in run.log
    assert "skipped" not in run.log
    assert run.phase_context is not None
    assert "false" in run.phase_context


def test_a_failed_pre_build_skips_everything_after_it(tmp_path: Path) -> None:
    workspace = _workspace(
        tmp_path,
        {
            "pre_build": ["exit_code() { return 3; }; exit_code"],
            "build": ["echo build ran"],
            "post_build": ["echo post-build ran"],
        },
    )
    run = run_buildspec(workspace, _env())
    assert (run.status, run.failed_phase) == ("FAILED", "PRE_BUILD")
    assert "build ran" not in run.log
    assert "post-build ran" not in run.log


def test_the_state_change_event_is_what_the_provisioner_reads(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, {"build": ["false"]})
    run = run_buildspec(workspace, _env(), project="p")
    overrides = {"REQUEST_ID": "req-0123456789abcdef", "ATTEMPT": "2"}
    event = state_change_event(run, overrides, project="p")
    result = parse_build_state_change(event["detail"], None)
    assert (result.status, result.request_id, result.attempt, result.failed_phase) == (
        "FAILED",
        "req-0123456789abcdef",
        2,
        "BUILD",
    )
    assert result.build_id == run.build_id


def test_the_idempotency_token_returns_the_same_build(tmp_path: Path) -> None:
    client = LocalCodeBuildClient(
        tmp_path, tmp_path / "w", project="p", project_environment={}, base_environment=_env()
    )
    overrides = [{"name": "REQUEST_ID", "value": "r", "type": "PLAINTEXT"}]
    first = client.start_build(
        projectName="p", idempotencyToken="t1", environmentVariablesOverride=overrides
    )
    again = client.start_build(
        projectName="p", idempotencyToken="t1", environmentVariablesOverride=overrides
    )
    other = client.start_build(
        projectName="p", idempotencyToken="t2", environmentVariablesOverride=overrides
    )
    assert first["build"]["id"] == again["build"]["id"] != other["build"]["id"]
    assert len(client._queue) == 2
