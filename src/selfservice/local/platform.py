"""The whole platform on one machine: embedded AWS, the real handlers, real Terraform.

``LocalPlatform.start()`` starts the embedded AWS, deploys ``template.yaml`` into it,
starts the ITSM sandbox and the local CodeBuild endpoint, configures intake (the example
configuration) and the notifier (writing to the sandbox), creates the landing zone's
organizational units, and runs every function of the templates: a worker process each,
SQS pollers for their event sources, an HTTP front for each HTTP API, a runner for each
``rate(...)`` schedule; what each function logs goes to its CloudWatch Logs group
(``LoggingConfig.LogGroup``), as in Lambda, and to ``<workdir>/<function>.log``.

Every function runs as its own execution role, the build as the project's service role
and Terraform as the product's deploy role, with credentials from STS on the roles the
templates deployed (``EmbeddedAws.assume_role_as_service``), so the embedded AWS
authorizes each call against the templates' policies. Local tooling (deploying,
seeding configuration, the tests' own clients) uses the account's root key.

Functions reach EventBridge through :class:`EventBridgeFront`, which can fail
``PutEvents`` entries on request; the embedded AWS can be brought back after it stopped
(:meth:`LocalPlatform.restart_embedded_aws`). Both serve the fault-injection suite.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from selfservice.local import seed
from selfservice.local.codebuild import AccessDeniedError, CodeBuildEndpoint
from selfservice.local.codebuild_client import LocalCodeBuildClient
from selfservice.local.deploy import Deployment, StackDeployment, deploy_platform
from selfservice.local.event_sources import ScheduledRunner, SqsPoller
from selfservice.local.eventbridge_front import EventBridgeFront
from selfservice.local.function_hosting import FunctionHosting
from selfservice.local.functions import FunctionWorker
from selfservice.local.http_front import HttpFront, IamAuthorizer
from selfservice.local.intrinsics import ACCOUNT, REGION
from selfservice.local.itsm_sandbox import ItsmSandbox
from selfservice.local.moto_server import AccessDeniedError as EmbeddedAccessDenied
from selfservice.local.moto_server import EmbeddedAws
from selfservice.local.run_command import LocalRunCommand
from selfservice.local.ssm_agent import SsmEndpoint
from selfservice.local.terraform import terraform_environment
from selfservice.templates import Template, load_platform

__all__ = ["LocalPlatform"]


@dataclass
class LocalPlatform(FunctionHosting):
    """Start with :meth:`start`, stop with :meth:`stop` (or use as a context manager)."""

    root: Path
    workdir: Path
    say: Callable[[str], None] = print
    serve: bool = True
    """Run the event sources (SQS pollers, HTTP fronts); ``False`` for one-off invokes."""
    build_concurrency: int | None = None
    """Builds the local CodeBuild runs at once. Default: the project's
    ``ConcurrentBuildLimit``, capped at the machine's cores (at least 2)."""
    template: Template | None = None
    """The platform's templates (default: ``template.yaml`` and ``sam/`` under ``root``;
    the mutation tests give a changed copy)."""
    aws: EmbeddedAws | None = None
    deployment: Deployment | None = None
    sandbox: ItsmSandbox | None = None
    codebuild: CodeBuildEndpoint | None = None
    ssm: SsmEndpoint | None = None
    eventbridge: EventBridgeFront | None = None
    """The functions' EventBridge endpoint (:meth:`~EventBridgeFront.fail_entries`)."""
    workers: dict[str, FunctionWorker] = field(default_factory=dict)
    pollers: list[SqsPoller] = field(default_factory=list)
    schedules: dict[str, ScheduledRunner] = field(default_factory=dict)
    """Schedules by function logical id (``schedules[...].tick()`` runs one now)."""
    fronts: dict[str, HttpFront] = field(default_factory=dict)
    credentials_expire_at: dict[str, float] = field(default_factory=dict)
    """When each function's current credentials expire (monotonic seconds)."""
    _threads: list[threading.Thread] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _secret_values: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    """Every secret's value once seeded, by (stack, logical id): what a restart restores."""
    operator: IamAuthorizer = field(default_factory=seed.placeholder_operator)
    """Credentials the local IAM-authorized APIs accept: until :meth:`start` a placeholder,
    then the local operator's, an IAM user of the embedded AWS (:func:`.seed.create_operator`)
    with a fresh access key per run (and per restart of the embedded AWS)."""

    @property
    def embedded(self) -> EmbeddedAws:
        """The embedded AWS (once started)."""
        if self.aws is None:
            raise RuntimeError("the local platform is not started")
        return self.aws

    @property
    def deployed(self) -> Deployment:
        """The deployment (once started)."""
        if self.deployment is None:
            raise RuntimeError("the local platform is not started")
        return self.deployment

    @property
    def itsm(self) -> ItsmSandbox:
        """The ITSM sandbox (once started)."""
        if self.sandbox is None:
            raise RuntimeError("the local platform is not started")
        return self.sandbox

    def client(self, service: str) -> Any:
        """A boto3 client of the embedded AWS."""
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=REGION,
            endpoint_url=self.embedded.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - the embedded AWS accepts any
        )

    def assume(
        self, role_arn: str, service: str, *, session_name: str, source_arn: str | None = None
    ) -> dict[str, str]:
        """STS credentials of ``role_arn`` as ``service`` would get them (its trust policy
        decides), as the ``AWS_*`` environment variables an SDK reads."""
        credentials = self.embedded.assume_role_as_service(
            role_arn,
            service,
            session_name=session_name[:64],
            source_arn=source_arn,
            source_account=ACCOUNT,
        )
        return {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }

    def client_as(self, service: str, credentials: dict[str, str]) -> Any:
        """A boto3 client of the embedded AWS signing with ``credentials`` (AWS_* names)."""
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=REGION,
            endpoint_url=self.embedded.endpoint,
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=credentials["AWS_SESSION_TOKEN"],
        )

    def stack(self, suffix: str) -> StackDeployment:
        """A deployed stack by the end of its name (``Intake``, ``Provisioner``…)."""
        return next(s for s in self.deployed.stacks() if s.name.endswith(suffix))

    def start(self) -> LocalPlatform:
        """Bring everything up."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.say("starting the embedded AWS (moto on 127.0.0.1) …")
        self.aws = EmbeddedAws(log_path=self.workdir / "moto.log").start()
        self.say("deploying template.yaml and sam/ into it …")
        self.deployment = deploy_platform(self._templates(), endpoint_url=self.aws.endpoint)
        self.operator = seed.create_operator(self.client, self.embedded.authorize)
        self.sandbox = ItsmSandbox().__enter__()
        seed.configure(self.client, self.deployed, root=self.root, sandbox_url=self.itsm.url)
        self._secret_values = seed.secret_values(self.client, self.deployed)
        self.eventbridge = EventBridgeFront(self.aws.endpoint).start()
        self.ssm = SsmEndpoint(
            LocalRunCommand(self.client("ec2"), self.workdir, region=REGION),
            self.aws.endpoint,
            authorize=self._authorize_signed,
        ).start()
        self._start_codebuild()
        self._start_functions()
        if self.serve:
            self.say(
                f"up: webhooks at {self.fronts['WebhookApi'].url}, "
                f"ITSM sandbox at {self.sandbox.url}"
            )
        return self

    def _templates(self) -> Template:
        return self.template or load_platform(self.root / "template.yaml")

    @property
    def ops_url(self) -> str:
        """Base URL of the local ops API (SigV4-signed requests only)."""
        return self.fronts["OpsApi"].url

    def operator_environment(self) -> dict[str, str]:
        """The environment a SigV4 client needs to call the local ops API as the operator."""
        (access_key, (secret, _)), *_ = self.operator.credentials.items()
        return {
            "SELFSERVICE_OPS_URL": self.ops_url,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": REGION,
        }

    def configure_ops(self, document: str) -> None:
        """Replace the ops API's configuration document (allow-list, limits)."""
        self.client("ssm").put_parameter(
            Name=self.stack("OpsApi").refs["OpsConfig"],
            Type="String",
            Overwrite=True,
            Value=document,
        )

    def launch_instances(self, count: int, *, tags: dict[str, str] | None = None) -> list[str]:
        """Start instances in the embedded EC2 (tagged eligible for the ops API by default)."""
        ec2 = self.client("ec2")
        image = next(  # a Linux image: the local agent runs shell documents only
            i["ImageId"]
            for i in ec2.describe_images(Owners=["amazon"])["Images"]
            if not i.get("Platform")
        )
        chosen = {"SSMRunAllowed": "true", "Name": "selfservice-local"} if tags is None else tags
        reservation = ec2.run_instances(
            ImageId=image,
            InstanceType="t3.micro",
            MinCount=count,
            MaxCount=count,
            MetadataOptions={"HttpTokens": "required"},
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in chosen.items()],
                }
            ],
        )
        return [instance["InstanceId"] for instance in reservation["Instances"]]

    def stop(self) -> None:
        """Stop everything that was started."""
        self._stop_functions()
        if self.codebuild:
            self.codebuild.stop()
        if self.ssm:
            self.ssm.stop()
        if self.eventbridge:
            self.eventbridge.stop()
        if self.sandbox:
            self.sandbox.__exit__(None, None, None)
        if self.aws:
            self.aws.stop()

    def restart_embedded_aws(self) -> float:
        """Bring the embedded AWS back after it stopped or crashed; the seconds it took.

        moto keeps its state in memory, so the new server starts empty. It listens on
        the same port (every client keeps its endpoint); the templates are deployed again
        (the same names); what :meth:`start` seeded is seeded again — the configurations,
        the organization, every secret's value as it was; and a function whose
        environment changed (a secret's ARN has a random suffix) gets a new execution
        environment, as Lambda gives one after a configuration update — here every
        function does, since the credentials of its role went with the old server. Until all that is
        done the HTTP APIs answer 503 with ``Retry-After``: half-deployed, intake would
        read the template's placeholder configuration and refuse deliveries for good.
        What lived only in the old server — queued messages, the ledger, the audit trail,
        instances — is gone; nothing outside it (the ITSM sandbox, builds) is touched.
        """
        began = time.monotonic()
        for front in self.fronts.values():
            front.unavailable = True
        renewed: dict[object, FunctionWorker] = {}
        try:
            port = self.embedded.port
            self.embedded.stop()
            self.aws = EmbeddedAws(port=port, log_path=self.workdir / "moto-restarted.log").start()
            self.deployment = deploy_platform(self._templates(), endpoint_url=self.aws.endpoint)
            # The old user went with the old server.
            self.operator = seed.create_operator(self.client, self.embedded.authorize)
            for front in self.fronts.values():
                if front.iam is not None:
                    front.iam = dataclasses.replace(self.operator, api_id=front.iam.api_id)
            seed.configure(self.client, self.deployed, root=self.root, sandbox_url=self.itsm.url)
            seed.restore_secrets(self.client, self.deployed, self._secret_values)
            self._renew_functions(renewed)
        finally:
            for front in self.fronts.values():
                front.routes = [
                    (method, pattern, path, renewed.get(worker, worker))
                    for method, pattern, path, worker in front.routes
                ]
                front.unavailable = False
        return time.monotonic() - began

    def __enter__(self) -> LocalPlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_codebuild(self) -> CodeBuildEndpoint:
        endpoint = self.embedded.endpoint
        project = self.stack("Provisioner").recorded["ProvisionProject"]
        project_env = {
            variable["Name"]: str(variable["Value"])
            for variable in project["Environment"].get("EnvironmentVariables", [])
        }
        build_env = terraform_environment(self.workdir, endpoint, region=REGION)
        project_arn = self.stack("Provisioner").attrs["ProvisionProject"]["Arn"]
        service_role = str(project["ServiceRole"])

        def build_credentials(build_id: str) -> dict[str, str]:
            # CodeBuild names the session after the build.
            return self.assume(
                service_role,
                "codebuild.amazonaws.com",
                session_name=f"AWSCodeBuild-{build_id.split(':', 1)[1]}",
                source_arn=project_arn,
            )

        client = LocalCodeBuildClient(
            self.root,
            self.workdir / "builds",
            project=project["Name"],
            project_environment=project_env,
            base_environment=build_env,
            timeout_seconds=int(project.get("TimeoutInMinutes", 60)) * 60,
            credentials=build_credentials,
        )
        logs_config = project.get("LogsConfig", {}).get("CloudWatchLogs", {})
        # No ConcurrentBuildLimit: no project limit, as in AWS; the machine's cores bound it.
        cores = max(2, os.cpu_count() or 1)
        limit = int(project.get("ConcurrentBuildLimit", cores))
        self.codebuild = CodeBuildEndpoint(
            client,
            events=self.client("events"),  # CodeBuild itself puts its state changes
            logs=self.client("logs"),
            log_group=logs_config.get("GroupName", f"/aws/codebuild/{project['Name']}"),
            concurrency=self.build_concurrency or min(limit, cores),
            logs_as=lambda credentials: self.client_as("logs", credentials),
            authorize=self._authorize_signed,
        ).start()
        return self.codebuild

    def _authorize_signed(
        self,
        action: str,
        resources: list[str],
        headers: dict[str, str],
        body: bytes,
        path: str,
        *,
        context: dict[str, list[str]] | None = None,
    ) -> None:
        """Authorize a SigV4-signed call to an API the local runtime serves itself, as
        the service would: the signature first, then the signer's policies."""
        try:
            principal = self.embedded.verify_signature(
                method="POST", path=path, headers=headers, body=body
            )
            self.embedded.authorize(principal["access_key_id"], action, resources, context)
        except EmbeddedAccessDenied as exc:
            raise AccessDeniedError(exc.message, "AccessDeniedException") from exc

    @property
    def _ssm_url(self) -> str:
        if self.ssm is None:
            raise RuntimeError("the local SSM endpoint is not started")
        return self.ssm.url

    def _function_environment(self) -> dict[str, str]:
        """What every function gets on top of its template environment: the endpoints."""
        if self.codebuild is None or self.eventbridge is None:
            raise RuntimeError("the local CodeBuild and EventBridge endpoints are not started")
        return {
            "AWS_ENDPOINT_URL": self.embedded.endpoint,
            "AWS_ENDPOINT_URL_CODEBUILD": self.codebuild.url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": self.eventbridge.url,
            "AWS_ENDPOINT_URL_SSM": self._ssm_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "PATH": os.environ.get("PATH", ""),
        }
