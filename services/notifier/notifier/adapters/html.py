"""Tables as HTML: ServiceNow journal entries (inside ``[code]``) and e-mail bodies.

Every value is escaped: resource addresses, tag values and policy reasons come from a
Terraform plan, which the requester's variables shape.
"""

from __future__ import annotations

import html

from notifier.domain.messages import Table

__all__ = ["escape", "html_table", "journal_table"]


def escape(text: str) -> str:
    """HTML-escaped, and no ``[``: a value must not close a journal's ``[code]`` block."""
    return html.escape(text).replace("[", "&#91;").replace("]", "&#93;")


def html_table(table: Table) -> str:
    """One ``<table>`` with a header row, on one line (journals turn newlines into breaks)."""
    head = "".join(f"<th>{escape(cell)}</th>" for cell in table.header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in table.rows
    )
    more = f"<p>{escape(table.more_line)}</p>" if table.more_line else ""
    return f'<table border="1" cellpadding="3"><tr>{head}</tr>{rows}</table>{more}'


def journal_table(table: Table) -> list[str]:
    """A table for a ServiceNow work note or comment.

    A journal entry is plain text, shown with its whitespace collapsed in a proportional
    font, so an aligned text table falls apart there; text inside ``[code]…[/code]`` is
    rendered as HTML (ServiceNow: "Journal field type"; an instance that switched that
    off with ``glide.ui.security.allow_codetag`` sets ``servicenow.tables: text``).
    """
    return [f"[code]{html_table(table)}[/code]"]
