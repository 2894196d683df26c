"""SSM for the embedded AWS on 127.0.0.1, with Run Command and associations that really run.

:class:`SsmEndpoint` stands in front of moto (``AWS_ENDPOINT_URL_SSM`` points here): the
Run Command and association actions are answered by
:class:`~selfservice.local.run_command.LocalRunCommand`, every other SSM action
(parameters…) is passed through to moto unchanged.

The actions it serves itself are authorized as SSM authorizes them (``authorize``): the
caller's SigV4 signature, then its policies for the action on the document, on each
target instance (with ``ssm:resourceTag/<key>`` from the instance's tags) or on each
association; a refusal is SSM's ``AccessDeniedException``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from selfservice.local.loopback import LoopbackServer, QuietHandler, forward
from selfservice.local.run_command import LocalRunCommand, SsmError

__all__ = ["Authorize", "SsmEndpoint"]

ACCOUNT = "123456789012"
Authorize = Callable[..., None]
"""``authorize(action, resources, headers, body, path, context=...)``: raises on refusal
(an exception with ``code`` and ``message``)."""


class SsmEndpoint(LoopbackServer):
    """SSM's JSON API on 127.0.0.1: Run Command and associations here, the rest to moto."""

    def __init__(
        self,
        run_command: LocalRunCommand,
        moto_endpoint: str,
        *,
        authorize: Authorize | None = None,
    ) -> None:
        self.run_command = run_command
        self.authorize = authorize
        upstream = urlsplit(moto_endpoint)
        self._upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self._actions: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "SendCommand": run_command.send_command,
            "GetCommandInvocation": run_command.get_command_invocation,
            "ListCommandInvocations": run_command.list_command_invocations,
            "CreateAssociation": run_command.create_association,
            "DescribeAssociation": run_command.describe_association,
            "ListAssociations": run_command.list_associations,
            "StartAssociationsOnce": run_command.start_associations_once,
            "DescribeAssociationExecutions": run_command.describe_association_executions,
        }
        super().__init__(self._handler())

    def _handler(self) -> type[QuietHandler]:
        endpoint = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib handler protocol
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                action = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                handler = endpoint._actions.get(action)
                if handler is None:
                    self._proxy(raw)
                    return
                try:
                    request = json.loads(raw or b"{}")
                    endpoint.check(action, request, dict(self.headers.items()), raw, self.path)
                    status, body = 200, handler(request)
                except SsmError as error:
                    status, body = 400, {"__type": error.code, "message": error.message}
                self.send_body(
                    status,
                    json.dumps(body, default=str).encode(),
                    {"Content-Type": "application/x-amz-json-1.1"},
                )

            def _proxy(self, raw: bytes) -> None:
                status, headers, body = forward(
                    endpoint._upstream, self.command, self.path, self.headers.items(), raw
                )
                self.send_body(status, body, headers)

        return Handler

    def check(
        self, action: str, request: dict[str, Any], headers: dict[str, str], raw: bytes, path: str
    ) -> None:
        """Authorize one call as SSM does; :class:`SsmError` (AccessDeniedException) if not."""
        if self.authorize is None:
            return
        for resources, context in self._checks(action, request):
            try:
                self.authorize(f"ssm:{action}", resources, headers, raw, path, context=context)
            except Exception as exc:
                raise SsmError(
                    str(getattr(exc, "code", "AccessDeniedException")),
                    str(getattr(exc, "message", exc)),
                ) from exc

    def _checks(
        self, action: str, request: dict[str, Any]
    ) -> list[tuple[list[str], dict[str, list[str]]]]:
        region = self.run_command.region
        if action in {"SendCommand", "CreateAssociation"}:
            name = str(request.get("DocumentName") or request.get("Name") or "")
            owner = "" if name.startswith("AWS-") else ACCOUNT  # AWS's documents: no account
            checks: list[tuple[list[str], dict[str, list[str]]]] = [
                ([f"arn:aws:ssm:{region}:{owner}:document/{name}"], {})
            ]
            instances = list(request.get("InstanceIds") or [])
            instances += [request["InstanceId"]] if request.get("InstanceId") else []
            for instance in instances:
                tags = self.run_command.instance_tags(str(instance))
                # Condition keys are case-insensitive (the tag key's spelling included).
                context = {f"ssm:resourcetag/{k}".lower(): [v] for k, v in tags.items()}
                context |= {f"aws:resourcetag/{k}".lower(): [v] for k, v in tags.items()}
                checks.append(([f"arn:aws:ec2:{region}:{ACCOUNT}:instance/{instance}"], context))
            return checks
        if action in {"StartAssociationsOnce", "DescribeAssociation"}:
            ids = request.get("AssociationIds") or [request.get("AssociationId")]
            return [
                (
                    [f"arn:aws:ssm:{region}:{ACCOUNT}:association/{i}"],
                    self._association_tags(str(i)),
                )
                for i in ids
                if i
            ] or [(["*"], {})]
        return [(["*"], {})]

    def _association_tags(self, association_id: str) -> dict[str, list[str]]:
        known = self.run_command.associations.get(association_id)
        tags = known.tags if known else {}
        return {f"aws:resourcetag/{k}".lower(): [v] for k, v in tags.items()}
