"""`selfservice up` + `selfservice ops`: the CLI signs, the local API runs real commands.

The platform runs as the operator would run it (a separate `selfservice up` process);
the CLI is a separate process too, with nothing but the credentials `up` wrote.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from selfservice.develop.demo import Webhooks

pytestmark = pytest.mark.e2e

STARTUP_SECONDS = 240


@dataclass
class Up:
    process: subprocess.Popen[str]
    lines: list[str]
    env: dict[str, str]
    instances: list[str]
    aws_endpoint: str
    info: dict[str, Any]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return subprocess.run(
            [sys.executable, "-m", "selfservice.cli", "ops", *args],
            env={**clean, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _first_line(process: subprocess.Popen[str], progress: Path) -> str:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        lines.put(process.stdout.readline())

    threading.Thread(target=pump, daemon=True).start()
    try:
        return lines.get(timeout=STARTUP_SECONDS)
    except queue.Empty:
        raise AssertionError("selfservice up did not get ready:\n" + progress.read_text()) from None


def _start_up(
    root: Path, options: list[str], *, stderr: IO[str], env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`selfservice up` as a child process; the first line of its stdout describes it."""
    return subprocess.Popen(
        [sys.executable, "-m", "selfservice.cli", "up", "--root", str(root), *options, "--json"],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
    )


@pytest.fixture(scope="module")
def up(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    workdir = tmp_path_factory.mktemp("up")
    progress = (workdir / "up.err").open("w")
    # The example allow-list, plus short sleeps so a command can outlive the wait.
    document = json.loads((root / "config/ops-api.example.json").read_text())
    document["allowlist"].append({"pattern": "^sleep [0-9]$", "description": "tests only"})
    config = workdir / "ops-api.json"
    config.write_text(json.dumps(document))
    process = _start_up(
        root,
        ["--workdir", str(workdir), "--instances", "2", "--ops-config", str(config)],
        stderr=progress,
    )
    try:
        first = _first_line(process, workdir / "up.err")
        info = json.loads(first)  # --json: the first line of stdout is the whole description
        env_file = Path(info["operator_env_file"])
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        printed = first + (workdir / "up.err").read_text()
        assert "READY" in printed
        assert env["AWS_SECRET_ACCESS_KEY"] not in printed  # the SigV4 secret: in the file only
        assert set(info["webhook_secrets"]) == {
            "servicenow_hmac",
            "jira_webhook",
            "jira_automation_token",
        }
        assert all(info["webhook_secrets"].values())
        instances = info["instances"]
        assert len(instances) == 2
        yield Up(process, [first], env, instances, info["aws"]["endpoint_url"], info)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=60) == 0
            assert (workdir / "operator.env").is_file()  # --workdir: kept after the stop
        finally:
            if process.poll() is None:
                process.kill()
            progress.close()


def test_the_cli_returns_the_real_output_of_uptime_and_hostname(up: Up) -> None:
    result = up.cli("run-commands", "--instance-id", up.instances[0], "uptime", "hostname")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "load average" in result.stdout
    assert f"\n{socket.gethostname()}\n" in result.stdout
    assert f"── {up.instances[0]}  Success (exit 0)" in result.stdout
    assert "waiting for results" in result.stderr  # progress while it waits


def test_fan_out_by_tag_answers_for_every_instance_and_get_command_fetches_it(up: Up) -> None:
    result = up.cli("run-commands", "--tag", "Name=selfservice-local", "--json", "hostname")
    assert result.returncode == 0, result.stdout + result.stderr
    body = json.loads(result.stdout)
    assert sorted(r["instance_id"] for r in body["results"]) == sorted(up.instances)
    fetched = json.loads(up.cli("get-command", body["command_ids"][0], "--json").stdout)
    assert fetched["complete"] is True
    assert {r["stdout"] for r in fetched["results"]} == {socket.gethostname() + "\n"}


def test_an_injection_attempt_is_refused_before_anything_runs(up: Up) -> None:
    marker = Path(f"/tmp/selfservice-e2e-{os.getpid()}")  # noqa: S108 - must stay absent
    result = up.cli("run-commands", "--instance-id", up.instances[0], f"uptime; touch {marker}")
    assert result.returncode == 1
    assert "HTTP 403 CommandNotAllowed" in result.stdout
    assert not marker.exists()


def test_unsigned_and_wrongly_signed_requests_are_403(up: Up) -> None:
    url = up.env["SELFSERVICE_OPS_URL"] + "/run-commands"
    body = json.dumps({"instance_id": up.instances[0]}).encode()
    unsigned = urllib.request.Request(url, data=body, method="POST")
    forged = AWSRequest(method="POST", url=url, data=body)
    SigV4Auth(
        Credentials(up.env["AWS_ACCESS_KEY_ID"], "wrong"), "execute-api", "us-east-1"
    ).add_auth(forged)
    signed_wrong = urllib.request.Request(
        url, data=body, method="POST", headers=dict(forged.headers)
    )
    for request in (unsigned, signed_wrong):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 403


def test_iam_decides_execute_api_invoke_for_the_operator(up: Up) -> None:
    """The front asks the embedded IAM, as API Gateway asks IAM: without a grant of
    ``execute-api:Invoke`` a correctly signed call is refused, naming the action."""
    import boto3  # noqa: PLC0415

    iam = boto3.client(
        "iam",
        region_name="us-east-1",
        endpoint_url=up.aws_endpoint,
        aws_access_key_id="testing",  # the embedded AWS's root user
        aws_secret_access_key="testing",
    )
    policy = "arn:aws:iam::aws:policy/PowerUserAccess"
    iam.detach_user_policy(UserName="local-operator", PolicyArn=policy)
    try:
        refused = up.cli("run-commands", "--instance-id", up.instances[0], "uptime")
    finally:
        iam.attach_user_policy(UserName="local-operator", PolicyArn=policy)
    assert refused.returncode == 1
    assert "HTTP 403" in refused.stdout, refused.stdout
    assert "execute-api:Invoke" in refused.stdout, refused.stdout
    allowed = up.cli("run-commands", "--instance-id", up.instances[0], "uptime")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr


def test_a_command_that_outlives_the_wait_gives_504_and_can_be_fetched_later(up: Up) -> None:
    result = up.cli("run-commands", "--instance-id", up.instances[1], "--wait", "1", "sleep 4")
    assert "HTTP 504 Timeout" in result.stdout, result.stdout
    command_id = re.search(r"get-command ([0-9a-f-]{36})", result.stdout)
    assert command_id is not None
    threading.Event().wait(4)
    later = json.loads(up.cli("get-command", command_id.group(1), "--json").stdout)
    assert later["complete"] is True
    assert later["results"][0]["status"] == "Success"


_SDK_SCRIPT = """
import json, sys, boto3
calls = json.loads(sys.argv[1])
out = []
for service, operation, arguments in calls:
    out.append(getattr(boto3.client(service), operation)(**arguments))
print(json.dumps(out, default=str))
"""


def _sdk(up: Up, *calls: tuple[str, str, dict[str, Any]]) -> list[dict[str, Any]]:
    """boto3 in a process of its own with exactly the environment `up` wrote, no config."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, "-c", _SDK_SCRIPT, json.dumps(calls)],
        env={
            **clean,
            **up.env,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers: list[dict[str, Any]] = json.loads(result.stdout)
    return answers


def _ticket_note(up: Up, sys_id: str, needle: str) -> str | None:
    """The first work note or comment of a ServiceNow ticket in the sandbox holding ``needle``."""
    query = urllib.parse.quote(f"element_id={sys_id}^valueLIKE{needle}")
    request = urllib.request.Request(
        f"{up.info['itsm_sandbox']}/api/now/table/sys_journal_field?sysparm_query={query}",
        headers={
            "Authorization": "Basic " + base64.b64encode(b"selfservice:sandbox-password").decode()
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        rows = json.loads(answer.read())["result"]
    return str(rows[0]["value"]) if rows else None


def test_the_printed_environment_reaches_the_builds_and_associations_the_platform_made(
    root: Path, up: Up
) -> None:
    """As a user would: source operator.env, then the AWS CLI (here boto3, which reads the
    same variables) lists the platform's builds and associations."""
    aws = up.info["aws"]
    # Every endpoint, printed and in the env file (before anything talks to them).
    assert up.env["AWS_ENDPOINT_URL"] == aws["endpoint_url"] == up.aws_endpoint
    assert up.env["AWS_ENDPOINT_URL_CODEBUILD"] == aws["codebuild_endpoint_url"]
    assert up.env["AWS_ENDPOINT_URL_SSM"] == aws["ssm_endpoint_url"]
    assert up.env["AWS_REGION"] == up.env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert {"127.0.0.1"} == {
        urllib.parse.urlsplit(up.env[name]).hostname
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CODEBUILD", "AWS_ENDPOINT_URL_SSM")
    }
    # A ServiceNow request, signed as the business rule signs it, starts a build.
    body = (root / "demo/servicenow-ec2-request.json").read_bytes()
    webhooks = Webhooks(
        up.info["webhooks"]["servicenow"].removesuffix("/webhooks/servicenow"),
        {"servicenow": up.info["webhook_secrets"]["servicenow_hmac"]},
    )
    status, _ = webhooks.send("servicenow", body, "msg_e2e_endpoints")
    assert status == 202
    # An association made with the SDK, started through the ops API.
    (created,) = _sdk(
        up,
        (
            "ssm",
            "create_association",
            {
                "Name": "AWS-RunShellScript",
                "Targets": [{"Key": "InstanceIds", "Values": [up.instances[0]]}],
                "Parameters": {"commands": ["uptime"]},
                # The ops API's role may start only associations carrying the allow tag.
                "Tags": [{"Key": "SSMRunAllowed", "Value": "true"}],
            },
        ),
    )
    association = created["AssociationDescription"]["AssociationId"]
    started = up.cli("start-association", association)
    assert started.returncode == 0, started.stdout + started.stderr
    deadline = time.monotonic() + 120
    while True:
        builds, associations, executions = _sdk(
            up,
            ("codebuild", "list_builds", {}),
            ("ssm", "list_associations", {}),
            ("ssm", "describe_association_executions", {"AssociationId": association}),
        )
        if (builds["ids"] and executions["AssociationExecutions"]) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert association in [a["AssociationId"] for a in associations["Associations"]]
    assert executions["AssociationExecutions"], executions
    (build_id,) = builds["ids"]
    (described,) = _sdk(up, ("codebuild", "batch_get_builds", {"ids": [build_id]}))
    (build,) = described["builds"]
    link = build["logs"]["deepLink"]
    assert link.startswith(aws["codebuild_endpoint_url"] + "/builds/")
    # The ticket's build log link is that local log, not the AWS console.
    sys_id = json.loads(body)["sys_id"]
    while (note := _ticket_note(up, sys_id, "Build log")) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert note is not None
    assert f"Build log: {link}" in note
    with urllib.request.urlopen(link, timeout=10) as answer:
        assert answer.status == 200


def test_ctrl_c_removes_the_state_directory_it_made(root: Path, tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    progress = (tmp_path / "up.err").open("w")
    process = _start_up(
        root, ["--instances", "0"], stderr=progress, env={**os.environ, "TMPDIR": str(temporary)}
    )
    try:
        state = Path(json.loads(_first_line(process, tmp_path / "up.err"))["state_dir"])
        assert state.parent == temporary
        assert (state / "operator.env").is_file()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        progress.close()
    assert not state.exists()
