"""The local CodeBuild follows CodeBuild's phase rules and event shape."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.domain.build_events import parse_build_state_change
from selfservice.local.build_runner import BUNDLE_PATHS, run_buildspec, state_change_event
from selfservice.local.codebuild import CodeBuildEndpoint
from selfservice.local.codebuild_client import LocalCodeBuildClient
from tests.aws import endpoint_client

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


def _bundle(tmp_path: Path, build: list[str]) -> Path:
    """A bundle root (what make_workspace copies) whose buildspec runs ``build``."""
    root = _workspace(tmp_path / "root", {"build": build})
    for relative in BUNDLE_PATHS:
        path = root / relative
        if path.suffix == ".py":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        elif not path.suffix:
            path.mkdir(parents=True, exist_ok=True)
    return root


class _Recorder:
    """Stands in for the EventBridge and CloudWatch Logs clients of the embedded AWS."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.lines: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            self.entries += Entries
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}

    def create_log_group(self, **_: Any) -> None:
        return None

    def create_log_stream(self, **_: Any) -> None:
        return None

    def put_log_events(self, logStreamName: str, logEvents: list[dict[str, Any]], **_: Any) -> None:  # noqa: N803
        with self.lock:
            self.lines[logStreamName] = [e["message"] for e in logEvents]

    def statuses(self, build_id: str) -> list[str]:
        with self.lock:
            details = [json.loads(e["Detail"]) for e in self.entries]
        return [d["build-status"] for d in details if d["build-id"].endswith(build_id)]


def _serving(
    root: Path, tmp_path: Path, concurrency: int = 1, recorder: _Recorder | None = None
) -> tuple[LocalCodeBuildClient, CodeBuildEndpoint, _Recorder]:
    """A started endpoint running builds of the bundle at ``root``, and what it reports to."""
    client = LocalCodeBuildClient(
        root, tmp_path / "w", project="p", project_environment={}, base_environment=_env()
    )
    recorder = recorder or _Recorder()
    endpoint = CodeBuildEndpoint(
        client, events=recorder, logs=recorder, log_group="/g", concurrency=concurrency
    )
    return client, endpoint.start(), recorder


def _start(client: LocalCodeBuildClient, token: str) -> str:
    build = client.start_build(
        projectName="p",
        idempotencyToken=token,
        environmentVariablesOverride=[{"name": "TOKEN", "value": token, "type": "PLAINTEXT"}],
    )
    return str(build["build"]["id"])


def _wait(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_each_build_reports_in_progress_then_its_outcome_and_ships_its_log(
    tmp_path: Path,
) -> None:
    root = _bundle(tmp_path, ['echo "building $TOKEN"', 'test "$TOKEN" != bad'])
    client, endpoint, recorder = _serving(root, tmp_path)
    try:
        good, bad = _start(client, "good"), _start(client, "bad")
        _wait(lambda: len(endpoint.finished) == 2)
    finally:
        endpoint.stop()
    assert recorder.statuses(good) == ["IN_PROGRESS", "SUCCEEDED"]
    assert recorder.statuses(bad) == ["IN_PROGRESS", "FAILED"]
    started = json.loads(recorder.entries[0]["Detail"])
    assert started["current-phase"] == "SUBMITTED"
    assert started["additional-information"]["build-complete"] is False
    assert "building good" in recorder.lines[good.split(":", 1)[1]]
    # What the provisioner's rule matches never includes IN_PROGRESS (terminal only).
    assert [json.loads(e["Detail"])["build-status"] for e in recorder.entries].count(
        "IN_PROGRESS"
    ) == 2


def _concurrent_peak(tmp_path: Path, concurrency: int, builds: int) -> int:
    """Run ``builds`` builds that each hold a slot for a while; the most at once."""
    slots = tmp_path / "slots"
    slots.mkdir(parents=True)
    # Each build leaves a marker while it runs; the peak is the most markers seen by any.
    root = _bundle(
        tmp_path,
        [
            f'touch "{slots}/$TOKEN"',
            "sleep 0.4",
            f'ls "{slots}" | wc -l > "{tmp_path}/peak-$TOKEN"',
            f'rm "{slots}/$TOKEN"',
        ],
    )
    client, endpoint, _ = _serving(root, tmp_path, concurrency)
    try:
        for n in range(builds):
            _start(client, f"b{n}")
        _wait(lambda: len(endpoint.finished) == builds)
    finally:
        endpoint.stop()
    assert all(e["detail"]["build-status"] == "SUCCEEDED" for e in endpoint.finished)
    return max(int((tmp_path / f"peak-b{n}").read_text()) for n in range(builds))


def test_builds_run_in_parallel_up_to_the_concurrency_and_never_beyond(tmp_path: Path) -> None:
    assert _concurrent_peak(tmp_path / "two", concurrency=2, builds=5) == 2
    assert _concurrent_peak(tmp_path / "one", concurrency=1, builds=3) == 1


def test_a_build_over_its_timeout_fails_as_timed_out(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, {"build": ["echo started", "sleep 30"]})
    run = run_buildspec(workspace, _env(), timeout_seconds=1)
    assert (run.status, run.failed_phase) == ("FAILED", "BUILD")
    assert run.phase_context is not None
    assert run.phase_context.startswith("BUILD_TIMED_OUT")


def test_a_build_that_cannot_start_fails_alone_and_the_next_still_runs(tmp_path: Path) -> None:
    root = _bundle(tmp_path, ["echo ok"])
    client, endpoint, recorder = _serving(root, tmp_path)
    try:
        (root / SPEC).write_text("phases: [not, a, mapping")  # unreadable buildspec
        broken = _start(client, "broken")
        _wait(lambda: len(endpoint.finished) == 1)
        (root / SPEC).write_text(yaml.safe_dump({"phases": {"build": {"commands": ["true"]}}}))
        fine = _start(client, "fine")
        _wait(lambda: len(endpoint.finished) == 2)
    finally:
        endpoint.stop()
    assert recorder.statuses(broken) == ["IN_PROGRESS", "FAILED"]
    assert recorder.statuses(fine) == ["IN_PROGRESS", "SUCCEEDED"]


class _FlakyBus(_Recorder):
    """A bus that is unreachable, then refuses the entry, then works."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            self.failures -= 1
            left = self.failures
        if left >= 2:
            raise ConnectionError("bus unreachable")
        if left >= 0:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}
        return super().put_events(Entries)


def test_a_state_change_the_bus_refuses_is_retried_and_the_builder_keeps_going(
    tmp_path: Path,
) -> None:
    bus = _FlakyBus(failures=4)  # two connection errors, two failed entries
    client, endpoint, _ = _serving(_bundle(tmp_path, ["echo ok"]), tmp_path, recorder=bus)
    try:
        first = _start(client, "first")
        _wait(lambda: len(endpoint.finished) == 1)
        second = _start(client, "second")
        _wait(lambda: len(endpoint.finished) == 2)
    finally:
        endpoint.stop()
    # Nothing lost, nothing doubled, and the one builder thread survived to run the next.
    assert bus.statuses(first) == ["IN_PROGRESS", "SUCCEEDED"]
    assert bus.statuses(second) == ["IN_PROGRESS", "SUCCEEDED"]
    assert endpoint.put_retries == 4
    assert endpoint.undelivered == []


def test_a_state_change_still_failing_at_stop_is_kept_not_dropped(tmp_path: Path) -> None:
    bus = _FlakyBus(failures=10**6)
    client, endpoint, _ = _serving(_bundle(tmp_path, ["echo ok"]), tmp_path, recorder=bus)
    _start(client, "stuck")
    _wait(lambda: endpoint.put_retries >= 2)
    endpoint.stop()
    # The build already queued still runs to its end; neither of its state changes is
    # dropped on the floor.
    _wait(lambda: len(endpoint.undelivered) == 2)
    assert [e["detail"]["build-status"] for e in endpoint.undelivered] == [
        "IN_PROGRESS",
        "SUCCEEDED",
    ]
    assert bus.entries == []


def test_concurrency_below_one_is_refused(tmp_path: Path) -> None:
    client = LocalCodeBuildClient(
        tmp_path, tmp_path / "w", project="p", project_environment={}, base_environment=_env()
    )
    with pytest.raises(ValueError, match="at least 1"):
        CodeBuildEndpoint(
            client, events=_Recorder(), logs=_Recorder(), log_group="/g", concurrency=0
        )


def test_the_aws_sdk_lists_its_builds_and_their_local_log_links(tmp_path: Path) -> None:
    """What `aws codebuild list-builds` / `batch-get-builds` with AWS_ENDPOINT_URL_CODEBUILD
    see, and where the ticket's build log link leads: the log itself, served here."""
    root = _bundle(tmp_path, ['echo "building $TOKEN"', 'test "$TOKEN" != bad'])
    _, endpoint, recorder = _serving(root, tmp_path)
    sdk = endpoint_client("codebuild", endpoint.url)
    try:
        started = [
            sdk.start_build(
                projectName="p",
                idempotencyToken=token,
                environmentVariablesOverride=[{"name": "TOKEN", "value": token}],
            )["build"]
            for token in ("good", "bad")
        ]
        _wait(lambda: len(endpoint.finished) == 2)
        ids = [b["id"] for b in started]
        assert sdk.list_builds()["ids"] == ids[::-1]  # newest first
        assert sdk.list_builds_for_project(projectName="p")["ids"] == ids[::-1]
        assert sdk.list_builds_for_project(projectName="other")["ids"] == []
        found = sdk.batch_get_builds(ids=[*ids, "p:nope"])
        logs: dict[str, str] = {}
        for build in found["builds"]:
            link = build["logs"]["deepLink"]
            assert link.startswith(f"{endpoint.url}/builds/")
            with urllib.request.urlopen(link, timeout=10) as answer:
                logs[build["id"]] = answer.read().decode()
    finally:
        endpoint.stop()
    assert found["buildsNotFound"] == ["p:nope"]
    assert [(b["buildStatus"], b["currentPhase"]) for b in found["builds"]] == [
        ("SUCCEEDED", "COMPLETED"),
        ("FAILED", "COMPLETED"),
    ]
    assert found["builds"][1]["phases"][0]["phaseType"] == "BUILD"
    assert "building good" in logs[ids[0]]
    assert "building bad" in logs[ids[1]]
    # The same link in StartBuild's answer and in every state change (CodeBuild's deep-link).
    links = {
        json.loads(e["Detail"])["additional-information"]["logs"]["deep-link"]
        for e in recorder.entries
    }
    assert (
        links
        == {b["logs"]["deepLink"] for b in started}
        == {b["logs"]["deepLink"] for b in found["builds"]}
    )
