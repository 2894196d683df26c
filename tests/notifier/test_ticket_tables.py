"""The plan's tables as each ITSM receives them: Jira ADF, a ServiceNow note, an e-mail.

No server: the writers talk to a recording transport (and a recording SES client). The
ADF is checked against the structure rules of Atlassian's node reference (doc, table,
tableRow, tableHeader, tableCell, paragraph, text), not only by looking for strings.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from notifier.adapters.adf import adf_document
from notifier.adapters.email import EmailWriter
from notifier.adapters.http import HttpResponse, Transport
from notifier.adapters.itsm import BasicCredentials, JiraWriter, ServiceNowWriter
from notifier.domain.messages import render
from notifier.domain.ports import TicketUpdate
from notifier.settings import EmailWriteBack, JiraWriteBack, ServiceNowWriteBack
from selfservice_contracts.events import ProvisioningPlannedEvent
from tests.notifier.test_plan_table import planned, review

MARKER = "selfservice.provisioner#plan-1"

# -- ADF structure rules ---------------------------------------------------------------

_BLOCKS = {"paragraph", "bulletList", "table"}
_TABLE_LAYOUTS = {"default", "center", "wide", "full-width", "align-start", "align-end"}
_MARKS = {"strong", "em"}


def _keys(node: dict[str, Any], allowed: set[str]) -> None:
    assert set(node) <= allowed, f"{node['type']}: unexpected {set(node) - allowed}"


def _text(node: dict[str, Any]) -> None:
    _keys(node, {"type", "text", "marks"})
    assert node["type"] == "text"
    assert isinstance(node["text"], str)
    assert node["text"], "an ADF text node may not be empty"
    for mark in node.get("marks", []):
        assert mark["type"] in _MARKS


def _paragraph(node: dict[str, Any]) -> None:
    _keys(node, {"type", "content"})
    assert node["type"] == "paragraph"
    for child in node.get("content", []):
        _text(child)


def _table(node: dict[str, Any]) -> None:
    _keys(node, {"type", "attrs", "content"})
    attrs = node.get("attrs", {})
    assert set(attrs) <= {"isNumberColumnEnabled", "layout", "width", "displayMode", "localId"}
    assert isinstance(attrs.get("isNumberColumnEnabled", False), bool)
    assert attrs.get("layout", "default") in _TABLE_LAYOUTS
    rows = node["content"]
    assert rows, "a table holds one or more rows"
    widths = set()
    for row in rows:
        _keys(row, {"type", "content"})
        assert row["type"] == "tableRow"
        assert row["content"], "a row holds one or more cells"
        widths.add(len(row["content"]))
        for cell in row["content"]:
            _keys(cell, {"type", "attrs", "content"})
            assert cell["type"] in {"tableHeader", "tableCell"}
            assert set(cell.get("attrs", {})) <= {"colspan", "rowspan", "colwidth", "background"}
            assert cell["content"], "a cell holds one or more blocks"
            for block in cell["content"]:
                _paragraph(block)  # no nested tables
    assert len(widths) == 1, "every row has as many cells as the header"


def validate_adf(document: dict[str, Any]) -> None:
    """Raise AssertionError unless ``document`` follows the ADF rules for these nodes."""
    assert document["type"] == "doc"
    assert document["version"] == 1
    for node in document["content"]:
        assert node["type"] in _BLOCKS
        if node["type"] == "paragraph":
            _paragraph(node)
        elif node["type"] == "table":
            _table(node)
        else:
            for item in node["content"]:
                assert item["type"] == "listItem"
                for block in item["content"]:
                    _paragraph(block)


def test_the_validator_refuses_what_adf_refuses() -> None:
    empty_text = {"type": "paragraph", "content": [{"type": "text", "text": ""}]}
    with pytest.raises(AssertionError):
        validate_adf({"type": "doc", "version": 1, "content": [empty_text]})
    ragged = {
        "type": "table",
        "content": [
            {"type": "tableRow", "content": [{"type": "tableHeader", "content": [empty_text]}]},
        ],
    }
    with pytest.raises(AssertionError):
        validate_adf({"type": "doc", "version": 1, "content": [ragged]})
    stray_cell = {"type": "table", "content": [{"type": "tableCell", "content": []}]}
    with pytest.raises(AssertionError):
        validate_adf({"type": "doc", "version": 1, "content": [stray_cell]})


# -- writers ---------------------------------------------------------------------------


@dataclass
class Recorder(Transport):
    """Answers every request with ``status``; keeps what was sent."""

    sent: list[tuple[str, str, Any]] = field(default_factory=list)
    status: int = 200

    def __post_init__(self) -> None:
        super().__init__()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        json_body: Any = None,
        form: dict[str, str] | None = None,
    ) -> HttpResponse:
        self.sent.append((method, url, json_body))
        return HttpResponse(self.status, {}, {"result": []})


def _event(**context: Any) -> ProvisioningPlannedEvent:
    return planned(review("ec2-app-update", "staging", **context))


def _update(event: ProvisioningPlannedEvent) -> TicketUpdate:
    message = render(event)
    assert message is not None
    ticket = event.data.ticket
    return TicketUpdate(ticket, event.type, message, MARKER)


def _cells(table: dict[str, Any]) -> list[list[str]]:
    return [
        [
            "".join(t["text"] for p in cell["content"] for t in p.get("content", []))
            for cell in row["content"]
        ]
        for row in table["content"]
    ]


def test_the_jira_comment_is_valid_adf_with_each_plan_table() -> None:
    transport = Recorder()
    writer = JiraWriter(transport, JiraWriteBack(), BasicCredentials(lambda f: "u:p"), "https://j")
    event = _event(committed=Decimal("550.00"))
    writer.attempt(_update(event), check_existing=False)
    ((method, url, body),) = transport.sent
    assert (method, url) == ("POST", f"https://j/rest/api/3/issue/{event.data.ticket.key}/comment")
    document = body["body"]
    validate_adf(document)
    tables = [node for node in document["content"] if node["type"] == "table"]
    by_header = {tuple(_cells(t)[0]): _cells(t)[1:] for t in tables}
    assert by_header[("Add", "Change", "Replace", "Destroy")] == [["0", "4", "0", "0"]]
    assert by_header[("Failed check", "Reasons")] == [
        [
            "allowed_instance_types",
            "aws_launch_template.this uses instance type m6i.large, not allowed here "
            "(allowed: t3.small, t3.medium)",
        ]
    ]
    (budget,) = by_header[
        ("Cost center", "Ceiling", "Committed", "This request", "Total", "Verdict")
    ]
    assert budget[-1] == "over: require approval"
    # Header cells are tableHeader (bold); body cells tableCell.
    first = tables[0]["content"]
    assert {cell["type"] for cell in first[0]["content"]} == {"tableHeader"}
    assert {cell["type"] for cell in first[1]["content"]} == {"tableCell"}
    assert MARKER in json.dumps(document)  # a retry still finds its own comment


def test_the_servicenow_note_draws_each_table_as_escaped_html_in_code_tags() -> None:
    transport = Recorder()
    writer = ServiceNowWriter(
        transport, ServiceNowWriteBack(), BasicCredentials(lambda f: "u:p"), "https://sn"
    )
    event = _event()
    writer.attempt(_update(event), check_existing=False)
    ((_, _, body),) = transport.sent
    note = body["work_notes"]
    blocks = [line for line in note.splitlines() if line.startswith("[code]")]
    assert len(blocks) == 5  # counts, resources, cost, failed policies, budget
    assert all(line.endswith("[/code]") and "<table" in line for line in blocks)
    assert "<th>Failed check</th><th>Reasons</th>" in note
    assert html.escape("instance_type t3.small -> m6i.large") in note  # escaped: -&gt;
    assert "->" not in "".join(blocks)
    assert note.startswith("[selfservice] Plan and cost\n")
    assert note.endswith(f"(selfservice event {MARKER})")  # the marker a retry looks for


def test_a_value_cannot_close_the_code_block_or_inject_markup() -> None:
    event = _event()
    summary = event.data.summary
    hostile = summary.resources[0].model_copy(update={"address": "x[/code]<script>alert(1)"})
    data = event.data.model_copy(
        update={"summary": summary.model_copy(update={"resources": [hostile]})}
    )
    transport = Recorder()
    writer = ServiceNowWriter(
        transport, ServiceNowWriteBack(), BasicCredentials(lambda f: "u:p"), "https://sn"
    )
    writer.attempt(_update(event.model_copy(update={"data": data})), check_existing=False)
    note = transport.sent[0][2]["work_notes"]
    assert "<script>" not in note
    assert note.count("[/code]") == note.count("[code]")


def test_an_instance_without_code_tags_gets_the_aligned_text_table() -> None:
    transport = Recorder()
    writer = ServiceNowWriter(
        transport,
        ServiceNowWriteBack(tables="text"),
        BasicCredentials(lambda f: "u:p"),
        "https://sn",
    )
    update = _update(_event())
    writer.attempt(update, check_existing=False)
    note = transport.sent[0][2]["work_notes"]
    assert "[code]" not in note
    assert note == update.text
    assert "  Add  Change  Replace  Destroy" in note


@dataclass
class Ses:
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send_email(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


def test_the_email_text_is_a_plain_table_and_the_html_a_real_one() -> None:
    ses = Ses()
    settings = EmailWriteBack(from_address="ss@acme.example", to_address="jira@acme.example")
    EmailWriter(ses, settings).attempt(_update(_event()), check_existing=False)  # type: ignore[arg-type]
    ((mail,),) = [ses.sent]
    text = mail["Message"]["Body"]["Text"]["Data"]
    assert "  Failed check            Reasons" in text
    assert "  allowed_instance_types  aws_launch_template.this uses instance type m6i.large" in text
    assert "<table" not in text
    page = mail["Message"]["Body"]["Html"]["Data"]
    assert "<th>Failed check</th>" in page
    assert "<td>allowed_instance_types</td>" in page


def test_adf_of_every_recorded_plan_is_valid() -> None:
    for name in ("ec2-app-create", "ec2-app-update-port", "ec2-app-destroy", "aws-account-create"):
        validate_adf(adf_document(_update(planned(review(name, destroy_confirmed=True)))))
