"""Where moto differs from AWS in ways the platform depends on, and the fix for each.

Every gap has a test in ``tests/local/test_moto_gaps.py`` that fails without the fix.
The SQS gaps are in :mod:`selfservice.local.moto_sqs_gaps`.
Fixes are applied by :func:`apply` (idempotent) before moto serves any request.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache, wraps
from typing import Any

import jsonpath_ng.ext
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
from moto.core.types import Base64EncodedString
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler
from moto.ec2.models.launch_templates import LaunchTemplateVersion
from moto.events.models import Archive, Replay, ReplayState, Rule, events_backends
from moto.events.utils import EventTemplateParser
from moto.iam.policy_validation import IAMPolicyDocumentValidator

from selfservice.local import moto_sqs_gaps

__all__ = ["apply"]

_applied = False


def _deliver_account_to_targets() -> None:
    """Gap: EventBridge targets receive events without the ``account`` field.

    AWS always delivers ``account``; moto's default input template leaves it out, so
    strict consumers (Powertools' ``EventBridgeModel``) reject every delivered event.
    """
    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"version": "0", ', '"version": "0", "account": "<account>", ', 1
        )


_REFRESHES: dict[str, list[dict[str, Any]]] = {}


def _start_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    group_name = self._get_param("AutoScalingGroupName")
    group = self.autoscaling_backend.autoscaling_groups[group_name]
    # Replace every instance at once from the group's current launch template version:
    # what a finished rolling refresh leaves behind.
    capacity = group.desired_capacity
    group.set_desired_capacity(0)
    group.set_desired_capacity(capacity)
    now = datetime.now(UTC).isoformat()
    refresh = {
        "InstanceRefreshId": str(uuid.uuid4()),
        "AutoScalingGroupName": group_name,
        "Status": "Successful",
        "PercentageComplete": 100,
        "InstancesToUpdate": 0,
        "StartTime": now,
        "EndTime": now,
    }
    _REFRESHES.setdefault(group_name, []).insert(0, refresh)
    return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})


def _describe_instance_refreshes(self: AutoScalingResponse) -> ActionResult:
    group_name = self._get_param("AutoScalingGroupName")
    return ActionResult({"InstanceRefreshes": _REFRESHES.get(group_name, [])})


def _cancel_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    # Refreshes finish immediately here, so there is never one to cancel.
    return ActionResult({"InstanceRefreshId": ""})


def _instance_refresh() -> None:
    """Gap: Auto Scaling instance refreshes are not implemented (HTTP 500).

    Terraform starts one whenever a group's launch template version changes (a new
    instance type), so an update of ``ec2-app`` failed after ten retries.
    """
    AutoScalingResponse.start_instance_refresh = _start_instance_refresh  # type: ignore[attr-defined]
    AutoScalingResponse.describe_instance_refreshes = _describe_instance_refreshes  # type: ignore[attr-defined]
    AutoScalingResponse.cancel_instance_refresh = _cancel_instance_refresh  # type: ignore[attr-defined]


_ORIGINAL_USER_DATA = LaunchTemplateVersion.user_data


def _template_version_user_data(self: LaunchTemplateVersion) -> Base64EncodedString | None:
    user_data = self.data.get("UserData")
    if isinstance(user_data, str):
        return Base64EncodedString(user_data) if user_data else None
    return user_data


def _launch_template_versions_keep_user_data_encoded() -> None:
    """Gap: versions made by CreateLaunchTemplateVersion keep UserData as a plain string.

    Launching from such a version (an Auto Scaling group after an update) then fails an
    assertion inside moto with HTTP 500.
    """
    LaunchTemplateVersion.user_data = property(_template_version_user_data)  # type: ignore[assignment,method-assign]


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    text = str(value)
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


_ORIGINAL_REPLAY = Replay.replay_events


def _replay_window_and_filters(self: Replay, archive: Archive) -> None:
    """Replay the archive's events of [EventStartTime, EventEndTime) to FilterArns' rules."""
    start, end = _epoch(self.event_start_time), _epoch(self.event_end_time)
    bus = events_backends[self.account_id][self.region].describe_event_bus(
        self.destination["Arn"].split("/")[-1]
    )
    chosen = set(self.destination.get("FilterArns") or [])
    for event in list(archive.events):
        if not start <= _epoch(event["time"]) < end:
            continue
        for rule in list(bus.rules.values()):
            if chosen and rule.arn not in chosen:
                continue
            replayed = dict(event, id=str(uuid.uuid4()), **{"replay-name": self.name})
            rule.send_to_targets(replayed, transform_input=False)  # type: ignore[arg-type]
    self.state = ReplayState.COMPLETED
    self.end_time = datetime.now(UTC).timestamp()


def _replays_honour_window_and_filters() -> None:
    """Gap: a replay re-sends the whole archive to every rule of the bus.

    EventBridge replays only the events whose time falls in the replay's window, and
    only to the rules in ``Destination.FilterArns`` when given — which is what keeps an
    audit replay away from the consumers.
    """
    Replay.replay_events = _replay_window_and_filters  # type: ignore[method-assign]


_ORIGINAL_SEND = Rule.send_to_targets
_ORIGINAL_JSONPATH_PARSE = jsonpath_ng.ext.__dict__["parse"]


def _send_if_enabled(self: Rule, original_event: Any, transform_input: bool = True) -> None:
    if self.state != "ENABLED":
        return
    _ORIGINAL_SEND(self, original_event, transform_input)


def _disabled_rules_deliver_nothing() -> None:
    """Gap: a disabled rule still delivers every matching event to its targets."""
    Rule.send_to_targets = _send_if_enabled  # type: ignore[method-assign]


def _jsonpath_compiled_once() -> None:
    """Gap: every delivery compiles the input paths' JSONPath parsers again.

    moto imports ``jsonpath_ng.ext.parse`` per delivery and builds each expression
    (a PLY parser) anew, most of the cost of an EventBridge → SQS delivery. The
    expressions are immutable once built, so they are compiled once and kept.
    """
    setattr(jsonpath_ng.ext, "parse", lru_cache(maxsize=512)(_ORIGINAL_JSONPATH_PARSE))  # noqa: B010


_DYNAMODB_ITEM_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "get_item",
    "query",
    "scan",
)
_ORIGINAL_DYNAMODB = {name: DynamoDBBackend.__dict__[name] for name in _DYNAMODB_ITEM_OPERATIONS}
_DYNAMODB_ITEM_REQUESTS = (
    *_DYNAMODB_ITEM_OPERATIONS,
    "batch_write_item",
    "batch_get_item",
    "transact_get_items",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)
_ORIGINAL_DYNAMODB_REQUESTS = {
    name: DynamoHandler.__dict__[name] for name in _DYNAMODB_ITEM_REQUESTS
}
_DYNAMODB_LOCK = threading.RLock()


def _serialized(operation: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(operation)
    def one_at_a_time(self: object, *args: Any, **kwargs: Any) -> Any:
        with _DYNAMODB_LOCK:
            return operation(self, *args, **kwargs)

    return one_at_a_time


def _dynamodb_transactions_are_atomic() -> None:
    """Gap: under the threaded server, ``TransactWriteItems`` is neither safe nor atomic.

    A transaction deep-copies each table it touches (its rollback point) while other
    request threads go on writing: the copy fails with "dictionary changed size during
    iteration" (a 500 the SDK retries), and a cancelled transaction restores that copy,
    erasing every item other requests wrote meanwhile — lost writes. Scans iterate the
    table the same way, and ``UpdateItem``'s request handler deep-copies the item it
    updates. DynamoDB serializes conflicting writes; here every item request (the
    handler, so its own copies are covered, PartiQL and batches included) and every
    item operation of the backend (for in-process callers) takes one lock —
    re-entrant, as a request calls the backend and a transaction calls ``put_item``
    itself. It costs the single-process embedded AWS nothing it had.
    """
    for name, operation in _ORIGINAL_DYNAMODB.items():
        setattr(DynamoDBBackend, name, _serialized(operation))
    for name, request in _ORIGINAL_DYNAMODB_REQUESTS.items():
        setattr(DynamoHandler, name, _serialized(request))


_ORIGINAL_VALIDATE_VERSION = IAMPolicyDocumentValidator._validate_version
_POLICY_LANGUAGE_VERSIONS = ("2012-10-17", "2008-10-17")


def _validate_policy_language_version(self: IAMPolicyDocumentValidator) -> None:
    version = self._policy_json.get("Version")
    assert version is None or version in _POLICY_LANGUAGE_VERSIONS  # noqa: S101 - moto's protocol


def _policies_without_the_current_version_are_accepted() -> None:
    """Gap: IAM policies must say ``"Version": "2012-10-17"`` or moto refuses them.

    IAM accepts a document without ``Version`` (the 2008-10-17 language, in which policy
    variables are plain text) and one with ``2008-10-17``; SAM generates such documents
    (a ScheduleV2 event's invoke policy), so a deployment moto refuses works in AWS.
    """
    IAMPolicyDocumentValidator._validate_version = _validate_policy_language_version  # type: ignore[method-assign,assignment]


def apply() -> None:
    """Apply every fix once per process."""
    global _applied  # noqa: PLW0603 - a process-wide, apply-once patch
    if _applied:
        return
    _deliver_account_to_targets()
    _instance_refresh()
    _launch_template_versions_keep_user_data_encoded()
    _replays_honour_window_and_filters()
    _disabled_rules_deliver_nothing()
    _jsonpath_compiled_once()
    _dynamodb_transactions_are_atomic()
    _policies_without_the_current_version_are_accepted()
    moto_sqs_gaps.apply()
    _applied = True
