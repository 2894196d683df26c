"""Every function of a deployment run as Lambda runs it, for :class:`LocalPlatform`.

A worker process per function with its execution role's credentials (replaced before
they expire, and after a redeploy), SQS pollers for its queues, a runner for each
``rate(...)`` schedule, an HTTP front for each HTTP API (SigV4-verified when the API is
IAM-authorized); each function's log goes to its CloudWatch Logs group.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfservice.local.deploy import Deployment, StackDeployment
from selfservice.local.event_sources import ScheduledRunner, SqsPoller, schedule_interval
from selfservice.local.functions import FunctionWorker, LogShipper
from selfservice.local.http_front import HttpFront, IamAuthorizer
from selfservice.templates import FunctionSpec

__all__ = ["RENEW_BEFORE_SECONDS", "SESSION_SECONDS", "FunctionHosting"]

SESSION_SECONDS = 3600
"""How long a function's or a build's STS credentials last (IAM's default, one hour)."""
RENEW_BEFORE_SECONDS = 600
"""A function's execution environment is replaced this long before its credentials
expire (Lambda gives an environment fresh credentials; a new one is the simple way)."""


class FunctionHosting:
    """The function-running part of :class:`~selfservice.local.platform.LocalPlatform`.

    A mixin: the platform holds the state declared here (as dataclass fields) and
    provides the deployment, the endpoints every function is given and STS.
    """

    workdir: Path
    say: Callable[[str], None]
    serve: bool
    operator: IamAuthorizer
    workers: dict[str, FunctionWorker]
    pollers: list[SqsPoller]
    schedules: dict[str, ScheduledRunner]
    fronts: dict[str, HttpFront]
    credentials_expire_at: dict[str, float]
    _threads: list[threading.Thread]
    _stopping: threading.Event

    @property
    def deployed(self) -> Deployment:
        """The deployment whose functions run."""
        raise NotImplementedError

    def assume(
        self, role_arn: str, service: str, *, session_name: str, source_arn: str | None = None
    ) -> dict[str, str]:
        """STS credentials of ``role_arn`` as ``service`` gets them (AWS_* names)."""
        raise NotImplementedError

    def client_as(self, service: str, credentials: dict[str, str]) -> Any:
        """A boto3 client of the embedded AWS signing with ``credentials``."""
        raise NotImplementedError

    def _function_environment(self) -> dict[str, str]:
        """What every function gets on top of its template environment: the endpoints."""
        raise NotImplementedError

    def _stop_functions(self) -> None:
        """Stop the event sources, then the HTTP fronts, then the workers."""
        self._stopping.set()
        for poller in self.pollers:
            poller.stop_event.set()
        for schedule in self.schedules.values():
            schedule.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for front in self.fronts.values():
            front.stop()
        for worker in self.workers.values():
            worker.stop()

    def _renew_functions(self, renewed: dict[object, FunctionWorker]) -> None:
        """After a redeploy every function gets a new execution environment (``renewed``
        maps each replaced worker to its successor): its role was deployed again, and the
        credentials it had went with the old server."""
        queue_urls = {
            attrs["QueueName"]: attrs["QueueUrl"]
            for stack in self.deployed.stacks()
            for attrs in stack.attrs.values()
            if "QueueName" in attrs
        }
        for poller in self.pollers:
            poller.queue_url = queue_urls.get(poller.queue_name, poller.queue_url)
        for stack in self.deployed.stacks():
            for spec in stack.functions:
                old = self.workers[spec.logical_id]
                renewed[old] = self._replace_worker(stack, spec)

    @staticmethod
    def _log_group(stack: StackDeployment, spec: FunctionSpec) -> str:
        """The group Lambda would write to: ``LoggingConfig.LogGroup``, else its default."""
        group = spec.properties.get("LoggingConfig", {}).get("LogGroup")
        if isinstance(group, dict) and "Ref" in group:
            return str(stack.refs[group["Ref"]])
        if isinstance(group, str):
            return group
        return f"/aws/lambda/{stack.refs[spec.logical_id]}"

    def function_environment(
        self, stack: StackDeployment, spec: FunctionSpec, credentials: dict[str, str]
    ) -> dict[str, str]:
        """A function's whole environment: the template's, the endpoints, its credentials."""
        return {
            **stack.environments[spec.logical_id],
            **self._function_environment(),
            **credentials,
        }

    def function_credentials(self, stack: StackDeployment, spec: FunctionSpec) -> dict[str, str]:
        """Fresh credentials of a function's execution role, as Lambda gets them."""
        return self.assume(
            stack.function_role_arn(spec),
            "lambda.amazonaws.com",
            session_name=str(stack.refs[spec.logical_id]),
            source_arn=stack.attrs[spec.logical_id]["Arn"],
        )

    def _worker(self, stack: StackDeployment, spec: FunctionSpec) -> FunctionWorker:
        """A new execution environment, with its own credentials (Lambda writes the
        function's logs and polls its queues with the execution role too)."""
        credentials = self.function_credentials(stack, spec)
        self.credentials_expire_at[spec.logical_id] = (
            time.monotonic() + SESSION_SECONDS - RENEW_BEFORE_SECONDS
        )
        worker = FunctionWorker(
            spec,
            self.function_environment(stack, spec, credentials),
            self.workdir / f"{spec.logical_id}.log",
            LogShipper(self.client_as("logs", credentials), self._log_group(stack, spec)),
        )
        worker.credentials = credentials
        return worker

    def _replace_worker(self, stack: StackDeployment, spec: FunctionSpec) -> FunctionWorker:
        """Give a function a new execution environment; its event sources follow."""
        old = self.workers[spec.logical_id]
        new = self._worker(stack, spec)
        self.workers[spec.logical_id] = new
        for poller in self.pollers:
            if poller.worker is old:
                poller.worker = new
                poller.sqs = self.client_as("sqs", new.credentials)
        for runner in self.schedules.values():
            if runner.worker is old:
                runner.worker = new
        for front in self.fronts.values():
            front.routes = [
                (method, pattern, path, new if worker is old else worker)
                for method, pattern, path, worker in front.routes
            ]
        old.stop()  # an invocation it is running finishes first
        return new

    def _renew_credentials(self) -> None:
        """Replace each execution environment before its credentials expire."""
        while not self._stopping.wait(30):
            for stack in self.deployed.stacks():
                for spec in stack.functions:
                    due = self.credentials_expire_at.get(spec.logical_id, float("inf"))
                    if time.monotonic() >= due:
                        self._replace_worker(stack, spec)

    def _start_functions(self) -> None:
        routes: dict[tuple[str, str], list[tuple[str, str, FunctionWorker]]] = {}
        for stack in self.deployed.stacks():
            for spec in stack.functions:
                worker = self._worker(stack, spec)
                self.workers[spec.logical_id] = worker
                for event in spec.events.values():
                    props = event["Properties"]
                    if not self.serve:
                        continue
                    if event["Type"] == "SQS":
                        queue = props["Queue"]["Fn::GetAtt"][0]
                        poller = SqsPoller(
                            self.client_as("sqs", worker.credentials),
                            stack.refs[queue],
                            stack.attrs[queue]["QueueName"],
                            worker,
                            batch_size=int(props.get("BatchSize", 10)),
                            batching_window_seconds=float(
                                props.get("MaximumBatchingWindowInSeconds", 0)
                            ),
                        )
                        self.pollers.append(poller)
                        thread = threading.Thread(target=poller.run, daemon=True)
                        thread.start()
                        self._threads.append(thread)
                    elif event["Type"] in {"Schedule", "ScheduleV2"}:
                        self._schedule(spec.logical_id, event["Type"], props, worker)
                    elif event["Type"] == "HttpApi":
                        # Keyed by the stack declaring the route: an API's logical id
                        # may also name a resource of another stack (the root's nested app).
                        routes.setdefault((stack.name, props["ApiId"]["Ref"]), []).append(
                            (props["Method"], props["Path"], worker)
                        )
        for (stack_name, api), api_routes in routes.items():
            stack = next(s for s in self.deployed.stacks() if s.name == stack_name)
            auth = stack.template.resources()[api].get("Properties", {}).get("Auth", {})
            # An IAM-authorized API verifies SigV4 like API Gateway: never reachable unsigned.
            iam = None
            if auth.get("DefaultAuthorizer") == "AWS_IAM":
                iam = dataclasses.replace(self.operator, api_id=str(stack.refs.get(api, api)))
            self.fronts[api] = HttpFront(api_routes, iam).start()
        renewal = threading.Thread(target=self._renew_credentials, daemon=True)
        renewal.start()
        self._threads.append(renewal)

    def _schedule(
        self, logical_id: str, kind: str, props: dict[str, Any], worker: FunctionWorker
    ) -> None:
        expression = str(props.get("ScheduleExpression") or props.get("Schedule", ""))
        interval = schedule_interval(expression)
        if interval is None:
            self.say(f"{logical_id}: {expression} is not run locally (only rate(...) is)")
            return
        runner = ScheduledRunner(
            worker, interval, kind=kind, input=props.get("Input"), name=logical_id
        )
        self.schedules[logical_id] = runner
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        self._threads.append(thread)
