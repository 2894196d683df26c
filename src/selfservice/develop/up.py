"""``selfservice up``: the whole platform on this machine, until Ctrl-C.

Starts the embedded AWS, deploys the templates into it, runs every function, and
prints where everything listens. The ops API accepts only SigV4-signed requests: the
operator's SigV4 credentials (fresh each run) are written to an env file readable by
the current user only, with the region and every AWS endpoint — the embedded AWS
(``AWS_ENDPOINT_URL``) and the local CodeBuild and SSM (``AWS_ENDPOINT_URL_CODEBUILD``,
``AWS_ENDPOINT_URL_SSM``, which the AWS CLI v2 and the SDKs honour), where the builds
and the Run Command and association actions live. Everything is local and generated
for this run: the webhook secrets are printed so a ServiceNow or Jira test instance (or
curl) can sign. The state directory is removed on stop unless it was given
(``--workdir``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from selfservice.local.platform import LocalPlatform

__all__ = ["run_up"]

READY_LINE = "READY"
"""Printed once everything listens (scripts and tests wait for it)."""


def _write_env_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.writelines(f"{name}={value}\n" for name, value in values.items())


def _secret(platform: LocalPlatform, secret_id: str) -> str:
    document = json.loads(
        platform.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    )
    return str(document.get("current", ""))


def aws_environment(platform: LocalPlatform) -> dict[str, str]:
    """The variables that point the AWS CLI and the SDKs at the local platform.

    ``AWS_ENDPOINT_URL`` is the embedded AWS; CodeBuild and SSM have endpoints of their
    own (moto runs no build and knows no association: ``ListAssociations`` there is a
    500), which the service-specific variables route to. ``--endpoint-url`` overrides all
    of them: use it only for the other services.
    """
    if platform.codebuild is None or platform.ssm is None:
        raise RuntimeError("the local platform is not started")
    return {
        "AWS_ENDPOINT_URL": platform.embedded.endpoint,
        "AWS_ENDPOINT_URL_CODEBUILD": platform.codebuild.url,
        "AWS_ENDPOINT_URL_SSM": platform.ssm.url,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def describe(platform: LocalPlatform, launched: list[str], env_file: Path) -> dict[str, Any]:
    """Everything a client of the local platform needs, as one JSON-able object."""
    intake = platform.deployed.function("WebhookFunction")[1]
    environment = aws_environment(platform)
    webhooks = platform.fronts["WebhookApi"].url
    return {
        "webhooks": {
            "servicenow": f"{webhooks}/webhooks/servicenow",
            "jira": f"{webhooks}/webhooks/jira",
        },
        "webhook_secrets": {
            "servicenow_hmac": _secret(platform, intake["SERVICENOW_HMAC_SECRET_ID"]),
            "jira_webhook": _secret(platform, intake["JIRA_WEBHOOK_SECRET_ID"]),
            "jira_automation_token": _secret(platform, intake["JIRA_AUTOMATION_TOKEN_SECRET_ID"]),
        },
        "ops_api": platform.ops_url,
        "operator_env_file": str(env_file),
        "aws": {
            "endpoint_url": platform.embedded.endpoint,
            "codebuild_endpoint_url": environment["AWS_ENDPOINT_URL_CODEBUILD"],
            "ssm_endpoint_url": environment["AWS_ENDPOINT_URL_SSM"],
            "environment": environment,
            "region": "us-east-1",
            "access_key_id": "testing",
            "secret_access_key": "testing",
        },
        "itsm_sandbox": platform.itsm.url,
        "build_concurrency": platform.codebuild.concurrency if platform.codebuild else 0,
        "instances": launched,
        "state_dir": str(platform.workdir),
    }


def run_up(
    root: Path,
    *,
    workdir: Path | None,
    instances: int,
    ops_config: Path | None = None,
    as_json: bool = False,
    build_concurrency: int | None = None,
) -> int:
    """Bring the platform up, print its endpoints, and serve until interrupted."""
    directory = workdir or Path(tempfile.mkdtemp(prefix="selfservice-up-"))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        return _serve(
            root,
            directory,
            stop,
            instances=instances,
            ops_config=ops_config,
            as_json=as_json,
            build_concurrency=build_concurrency,
            removed=workdir is None,
        )
    finally:
        if workdir is None:  # ours, made for this run: nothing in it outlives the run
            shutil.rmtree(directory, ignore_errors=True)


def _serve(
    root: Path,
    directory: Path,
    stop: threading.Event,
    *,
    instances: int,
    ops_config: Path | None,
    as_json: bool,
    build_concurrency: int | None,
    removed: bool,
) -> int:
    progress = sys.stderr if as_json else sys.stdout  # --json: stdout starts with the object
    platform = LocalPlatform(
        root,
        directory,
        say=lambda line: print(line, file=progress, flush=True),
        build_concurrency=build_concurrency,
    )
    with platform:
        if ops_config is not None:
            platform.configure_ops(ops_config.read_text())
        launched = platform.launch_instances(instances) if instances else []
        env_file = directory / "operator.env"
        _write_env_file(env_file, {**platform.operator_environment(), **aws_environment(platform)})
        info = describe(platform, launched, env_file)
        aws = platform.embedded.endpoint
        secrets = info["webhook_secrets"]
        print(
            "\n".join(
                [
                    "selfservice is up (Ctrl-C to stop)",
                    f"  webhooks      {info['webhooks']['servicenow']}",
                    f"                {info['webhooks']['jira']}",
                    f"  secrets       ServiceNow HMAC {secrets['servicenow_hmac']}",
                    f"                Jira webhook {secrets['jira_webhook']}, "
                    f"Jira Automation token {secrets['jira_automation_token']}",
                    f"  ops API       {platform.ops_url} (SigV4, service execute-api)",
                    f"  ITSM sandbox  {platform.itsm.url}",
                    f"  embedded AWS  {aws} (region us-east-1, any credentials)",
                    f"  CodeBuild     {info['aws']['codebuild_endpoint_url']} (the builds)",
                    f"  SSM           {info['aws']['ssm_endpoint_url']} (Run Command, "
                    "associations; the rest of SSM passes to the embedded AWS)",
                    f"  builds        {info['build_concurrency']} at once (real Terraform)",
                    f"  instances     {', '.join(launched) or 'none'}"
                    + (" (tagged SSMRunAllowed=true)" if launched else ""),
                    f"  state         {directory}"
                    + (" (removed on stop; --workdir keeps it)" if removed else ""),
                    f"operator credentials and AWS endpoints: {env_file} (mode 600). Try:",
                    f"  set -a; . {env_file}; set +a",
                    "  aws codebuild list-builds; aws ssm list-associations"
                    "   # the AWS CLI and SDKs read the endpoints from it",
                    "  selfservice ops run-commands "
                    + (f"--instance-id {launched[0]} " if launched else "--tag Name=… ")
                    + "uptime hostname",
                    "the operator tools read the embedded AWS:",
                    f"  selfservice status RITM0010042 --endpoint-url {aws}",
                    f"  selfservice replay --start … --end … --endpoint-url {aws}",
                    READY_LINE,
                ]
            ),
            file=progress,
            flush=True,
        )
        if as_json:  # last, so a reader of stdout knows everything is up when it arrives
            print(json.dumps(info), flush=True)
        stop.wait()
        print("stopping …", file=progress, flush=True)
    return 0
