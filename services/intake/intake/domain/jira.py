"""Jira deliveries: Cloud admin webhooks and Automation "Send web request" bodies.

The two are told apart by shape (an admin webhook has ``webhookEvent`` and ``issue``;
the Automation body documented in ``itsm/jira/`` has ``issueKey``). Custom field ids
differ on every site, so every variable goes through the configured field mapping.
"""

# No `from __future__ import annotations` here: pydantic would then evaluate every field
# annotation from its string when the models are defined, at each cold start.

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intake.domain.errors import FieldError, MalformedPayloadError
from intake.domain.submission import Ignored, Submission, malformed_from_validation, requester
from intake.settings import JiraProductRule, JiraSource
from selfservice_contracts.request import Action, ApprovalState, TicketRef, TicketSystem

__all__ = ["normalize_jira"]

IssueKey = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,254}-[1-9]\d*$")]
IssueId = Annotated[str, Field(pattern=r"^[1-9]\d{0,18}$")]
_AUTOMATION_METADATA = {
    "source",
    "issueKey",
    "issueId",
    "status",
    "reporter",
    "reporterEmail",
    "reporterName",
    "product",
    "action",
    "issueType",
    "requestType",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class _User(_Model):
    accountId: Annotated[str, Field(min_length=1, max_length=128)]  # noqa: N815 - Jira's name
    displayName: str | None = None  # noqa: N815
    emailAddress: str | None = None  # noqa: N815


class _Named(_Model):
    id: str | None = None
    name: str | None = None
    key: str | None = None


class _Issue(_Model):
    id: IssueId
    key: IssueKey
    fields: dict[str, Any]


class _ChangeItem(_Model):
    field: str = ""
    fieldId: str | None = None  # noqa: N815
    toString: str | None = None  # noqa: N815


class _Changelog(_Model):
    items: list[_ChangeItem] = Field(default_factory=list)


class JiraWebhook(_Model):
    """A Jira Cloud admin webhook body (``jira:issue_created`` / ``jira:issue_updated``)."""

    webhookEvent: Annotated[str, Field(max_length=64)]  # noqa: N815
    issue: _Issue
    changelog: _Changelog | None = None


class JiraAutomation(_Model):
    """The Automation web-request body documented in ``itsm/jira/README.md``."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    issueKey: IssueKey  # noqa: N815
    issueId: IssueId  # noqa: N815
    product: Annotated[str | None, Field(max_length=64)] = None
    action: Action | None = None
    status: Annotated[str | None, Field(max_length=128)] = None
    reporter: Annotated[str, Field(min_length=1, max_length=128)]
    """The reporter's accountId ({{reporter.accountId}})."""
    reporterEmail: str | None = None  # noqa: N815
    reporterName: str | None = None  # noqa: N815
    issueType: str | None = None  # noqa: N815
    requestType: str | None = None  # noqa: N815


def _option_value(value: Any) -> Any:
    """Option objects ({"value": …}) become their value; lists of them, lists of values."""
    if isinstance(value, dict):
        for key in ("value", "name", "key"):
            if key in value:
                return value[key]
        return value
    if isinstance(value, list):
        return [_option_value(item) for item in value]
    return value


def _ticket(source: JiraSource, key: str, issue_id: str) -> TicketRef:
    return TicketRef(
        system=TicketSystem.JIRA,
        key=key,
        internal_id=issue_id,
        url=f"{source.base_url}/browse/{key}",
    )


def _approval(source: JiraSource, status: str | None) -> ApprovalState:
    """An issue in an approved status is approved; any other status says nothing.

    Jira's status is not an approval state: an issue in its first status is not waiting
    for an approval unless the product's policy needs one (intake then publishes
    ``approval-required``, and the move into an approved status approves it). Holding
    every issue until it reaches an approved status would hold dev requests that no
    policy gates, and a Jira workflow that never takes them there would hold them forever.
    """
    if source.approved_statuses and status in source.approved_statuses:
        return ApprovalState.APPROVED
    return ApprovalState.NOT_REQUIRED


def _match_rule(
    source: JiraSource, project: str, issue_type: _Named, request_type: str | None
) -> JiraProductRule | None:
    for rule in source.products:
        if rule.project is not None and rule.project != project:
            continue
        if rule.issue_type is not None and rule.issue_type not in (issue_type.id, issue_type.name):
            continue
        if rule.request_type is not None and rule.request_type != request_type:
            continue
        return rule
    return None


def _request_type(source: JiraSource, fields: dict[str, Any]) -> str | None:
    if not source.request_type_field:
        return None
    value = fields.get(source.request_type_field)
    if isinstance(value, dict):
        nested = value.get("requestType", value)
        return str(nested.get("id")) if isinstance(nested, dict) else None
    return str(value) if value is not None else None


def _from_webhook(
    webhook: JiraWebhook, source: JiraSource, delivery_id: str | None
) -> Submission | Ignored:
    if webhook.webhookEvent not in ("jira:issue_created", "jira:issue_updated"):
        return Ignored(f"{webhook.webhookEvent} does not concern a request")
    fields = webhook.issue.fields
    try:
        status = _Named.model_validate(fields.get("status") or {}).name
        issue_type = _Named.model_validate(fields.get("issuetype") or {})
        project = _Named.model_validate(fields.get("project") or {}).key or ""
        reporter = _User.model_validate(fields.get("reporter"))
    except ValidationError as exc:
        raise malformed_from_validation("jira", exc.errors()) from None
    ticket = _ticket(source, webhook.issue.key, webhook.issue.id)
    rule = _match_rule(
        source,
        project or webhook.issue.key.split("-")[0],
        issue_type,
        _request_type(source, fields),
    )
    action = rule.action if rule else Action.CREATE
    given = False
    if webhook.webhookEvent == "jira:issue_updated":
        changes = webhook.changelog.items if webhook.changelog else []
        status_change = next((c.toString for c in changes if c.field == "status"), None)
        mapped_change = any(
            (c.fieldId or c.field) in source.fields for c in changes if c.field != "status"
        )
        if status_change in source.cancel_statuses:
            action = Action.DESTROY
        elif status_change in source.approved_statuses:
            given = True  # the approval arriving: same action, now approved
        elif mapped_change and action is Action.CREATE:
            action = Action.UPDATE
        else:
            return Ignored("the update changes nothing intake acts on")
    variables = {
        canonical: _option_value(fields[field_id])
        for field_id, canonical in source.fields.items()
        if field_id in fields
    }
    return Submission(
        ticket=ticket,
        product=rule.product if rule else None,
        action=action,
        variables=variables,
        requester=requester(
            "jira", reporter.accountId, reporter.displayName, reporter.emailAddress
        ),
        itsm_approval=_approval(source, status),
        delivery_id=delivery_id,
        approval_given=given,
    )


def _from_automation(body: JiraAutomation, source: JiraSource) -> Submission:
    ticket = _ticket(source, body.issueKey, body.issueId)
    rule = _match_rule(
        source,
        body.issueKey.split("-")[0],
        _Named(id=body.issueType, name=body.issueType),
        body.requestType,
    )
    product = body.product or (rule.product if rule else None)
    action = body.action or (rule.action if rule else Action.CREATE)
    if body.status in source.cancel_statuses:
        action = Action.DESTROY
    variables: dict[str, Any] = {}
    for key, value in (body.model_extra or {}).items():
        if key in _AUTOMATION_METADATA:
            continue
        variables[source.automation_fields.get(key, key)] = _option_value(value)
    return Submission(
        ticket=ticket,
        product=product,
        action=action,
        variables=variables,
        requester=requester("jira", body.reporter, body.reporterName, body.reporterEmail),
        itsm_approval=_approval(source, body.status),
    )


def normalize_jira(body: Any, source: JiraSource, delivery_id: str | None) -> Submission | Ignored:
    """Map an admin webhook or an Automation body to a :class:`Submission`."""
    if isinstance(body, dict) and "webhookEvent" in body and "issue" in body:
        try:
            webhook = JiraWebhook.model_validate(body)
        except ValidationError as exc:
            raise malformed_from_validation("jira", exc.errors()) from None
        return _from_webhook(webhook, source, delivery_id)
    if isinstance(body, dict) and "issueKey" in body:
        try:
            automation = JiraAutomation.model_validate(body)
        except ValidationError as exc:
            raise malformed_from_validation("jira", exc.errors()) from None
        return _from_automation(automation, source)
    raise MalformedPayloadError(
        "not a Jira webhook (webhookEvent + issue) nor an Automation body (issueKey)",
        [FieldError("body", "unrecognized shape")],
    )
