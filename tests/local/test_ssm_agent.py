"""The local Run Command: real execution in a sandbox, SSM's answers, moto behind it.

The ops API's own SSM adapter is the client, so what the local runtime returns is
checked against what the adapter (and therefore the API) expects of SSM.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ops_api.adapters.aws import SsmCommands
from ops_api.domain.models import Invocation
from ops_api.domain.ports import (
    AssociationNotFoundError,
    CommandNotFoundError,
    InvocationNotReadyError,
    TargetNotManagedError,
)
from selfservice.local.moto_server import EmbeddedAws
from selfservice.local.run_command import LocalRunCommand
from selfservice.local.ssm_agent import SsmEndpoint
from tests.aws import endpoint_client, run_instance


@dataclass
class Local:
    aws: EmbeddedAws
    endpoint: SsmEndpoint
    commands: SsmCommands
    ssm: Any
    ec2: Any
    workdir: Path

    def instance(self, **tags: str) -> str:
        return run_instance(self.ec2, tags)

    def wait(self, command_id: str, instance_id: str, timeout: float = 15) -> Invocation:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                invocation = self.commands.invocation(command_id, instance_id)
            except InvocationNotReadyError:
                invocation = None
            if invocation is not None and invocation.terminal:
                return invocation
            time.sleep(0.05)
        raise AssertionError("the invocation did not finish")

    def send(self, instance_id: str, commands: list[str], timeout: int = 600) -> str:
        return self.commands.send(
            [instance_id],
            document="AWS-RunShellScript",
            commands=commands,
            execution_timeout=timeout,
            comment="test",
            output_s3_bucket=None,
            output_s3_prefix="",
        )


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    workdir = tmp_path_factory.mktemp("ssm")
    aws = EmbeddedAws(log_path=workdir / "moto.log").start()
    ec2 = endpoint_client("ec2", aws.endpoint)
    endpoint = SsmEndpoint(LocalRunCommand(ec2, workdir), aws.endpoint).start()
    ssm = endpoint_client("ssm", endpoint.url)
    yield Local(aws, endpoint, SsmCommands(ssm), ssm, ec2, workdir)
    endpoint.stop()
    aws.stop()


def test_a_command_really_runs_and_its_output_comes_back(local: Local) -> None:
    instance = local.instance()
    command_id = local.send(instance, ["hostname", "echo second line"])
    with pytest.raises(InvocationNotReadyError):  # as SSM: not visible at once
        local.commands.invocation(command_id, instance)
    invocation = local.wait(command_id, instance)
    assert (invocation.status, invocation.response_code) == ("Success", 0), invocation.stderr
    assert invocation.stdout == f"{socket.gethostname()}\nsecond line\n"


def test_the_sandbox_is_a_private_directory_with_a_scrubbed_environment(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFSERVICE_CANARY", "must-not-leak")
    instance = local.instance()
    command_id = local.send(instance, ["pwd", "env | sort"])
    invocation = local.wait(command_id, instance)
    lines = invocation.stdout.splitlines()
    assert lines[0] == str(local.workdir / "instances" / instance)
    names = {line.split("=", 1)[0] for line in lines[1:]}
    assert "SELFSERVICE_CANARY" not in names
    assert not any(name.startswith("AWS_ACCESS") or name.startswith("AWS_SECRET") for name in names)
    assert f"AWS_SSM_INSTANCE_ID={instance}" in lines


def test_a_failing_command_is_failed_with_its_exit_code_and_stderr(local: Local) -> None:
    instance = local.instance()
    invocation = local.wait(local.send(instance, ["echo oops >&2", "exit 3"]), instance)
    assert (invocation.status, invocation.response_code, invocation.stderr) == (
        "Failed",
        3,
        "oops\n",
    )


def test_a_command_beyond_its_execution_timeout_is_killed_and_timed_out(local: Local) -> None:
    instance = local.instance()
    started = time.monotonic()
    invocation = local.wait(local.send(instance, ["echo before", "sleep 30"], timeout=1), instance)
    assert invocation.status == "TimedOut"
    assert invocation.stdout == "before\n"
    assert time.monotonic() - started < 10


def test_an_instance_the_embedded_ec2_does_not_know_is_refused(local: Local) -> None:
    with pytest.raises(TargetNotManagedError, match="not a running instance"):
        local.send("i-0123456789abcdef0", ["uptime"])


def test_listing_and_unknown_commands(local: Local) -> None:
    instance = local.instance()
    command_id = local.send(instance, ["true"])
    local.wait(command_id, instance)
    assert [i.instance_id for i in local.commands.invocations(command_id)] == [instance]
    with pytest.raises(CommandNotFoundError):
        local.commands.invocations("12345678-1234-4234-8234-123456789012")


def test_associations_are_emulated_and_shell_ones_run(local: Local) -> None:
    instance = local.instance(Role="web")
    created = local.ssm.create_association(
        Name="AWS-RunShellScript",
        Targets=[{"Key": "tag:Role", "Values": ["web"]}],
        Parameters={"commands": ["echo from association"]},
    )
    association_id = created["AssociationDescription"]["AssociationId"]
    local.commands.start_associations_once([association_id])
    (execution,) = local.ssm.describe_association_executions(AssociationId=association_id)[
        "AssociationExecutions"
    ]
    command_id = execution["DetailedStatus"].removeprefix("run as command ")
    assert local.wait(command_id, instance).stdout == "from association\n"
    with pytest.raises(AssociationNotFoundError):
        local.commands.start_associations_once(["00000000-1111-4222-8333-444444444444"])


def test_every_other_ssm_action_reaches_moto(local: Local) -> None:
    local.ssm.put_parameter(Name="/through/the/proxy", Type="String", Value="kept")
    assert local.ssm.get_parameter(Name="/through/the/proxy")["Parameter"]["Value"] == "kept"
