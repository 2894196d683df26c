"""A ticket message as an Atlassian Document Format document (Jira Cloud REST v3 comments).

Paragraphs, bullet lists and tables: ``table`` → ``tableRow`` → ``tableHeader`` (the
first row) or ``tableCell`` → ``paragraph`` → ``text``. A text node is never empty (ADF
refuses one): an empty cell holds an empty paragraph. Jira renders tables on the web and
desktop (not in its mobile apps, which show the text).
"""

from __future__ import annotations

from typing import Any

from notifier.domain.messages import Table
from notifier.domain.ports import TicketUpdate

__all__ = ["adf_document", "adf_table"]

Node = dict[str, Any]


def _paragraph(text: str, *, mark: str | None = None) -> Node:
    if not text:
        return {"type": "paragraph", "content": []}
    node: Node = {"type": "text", "text": text}
    if mark is not None:
        node["marks"] = [{"type": mark}]
    return {"type": "paragraph", "content": [node]}


def adf_table(table: Table) -> list[Node]:
    """The table, and the "+N more" line under it when rows were left out."""

    def row(cells: tuple[str, ...], kind: str) -> Node:
        mark = "strong" if kind == "tableHeader" else None
        return {
            "type": "tableRow",
            "content": [
                {"type": kind, "attrs": {}, "content": [_paragraph(cell, mark=mark)]}
                for cell in cells
            ],
        }

    nodes: list[Node] = [
        {
            "type": "table",
            "attrs": {"isNumberColumnEnabled": False, "layout": "default"},
            "content": [
                row(table.header, "tableHeader"),
                *(row(cells, "tableCell") for cells in table.rows),
            ],
        }
    ]
    if table.more_line:
        nodes.append(_paragraph(table.more_line, mark="em"))
    return nodes


def adf_document(update: TicketUpdate) -> Node:
    """Title, lines, bullet lists, tables, and the marker a retry looks for."""
    message = update.message
    content: list[Node] = [_paragraph(f"[selfservice] {message.title}", mark="strong")]
    for index, line in enumerate(message.lines):
        if index in message.bullets:
            content.append(
                {
                    "type": "bulletList",
                    "content": [
                        {"type": "listItem", "content": [_paragraph(item)]}
                        for item in message.bullets[index]
                    ],
                }
            )
        elif index in message.tables:
            content += adf_table(message.tables[index])
        elif line:
            content.append(_paragraph(line))
    content.append(_paragraph(f"selfservice event {update.marker}", mark="em"))
    return {"type": "doc", "version": 1, "content": content}
