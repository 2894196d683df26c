"""A planned change as a few small tables a reviewer can read on the ticket.

Counts, the resources with the attributes the product shows, the monthly cost by
resource, the failed plan policies with their reasons, and the budget figures. Short
enough for a ticket: each table keeps at most :data:`MAX_ROWS` rows and says how many
it left out (the full plan is one pointer away: ``plan.json`` in the artifacts bucket).
How a table is drawn (ADF, HTML, aligned text) is each writer's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from selfservice_contracts.events import ProvisioningPlanned
from selfservice_contracts.plan import AttributeChange, BudgetResult, ChangeAction, PlanSummary

__all__ = ["MAX_ROWS", "Table", "attribute_text", "format_value", "plan_tables"]

MAX_ROWS = 8
"""Rows a table shows; the rest are counted ("+N more")."""

_ACTION_ORDER = {
    ChangeAction.DELETE: 0,  # what goes first: the reviewer must not miss it
    ChangeAction.REPLACE: 1,
    ChangeAction.UPDATE: 2,
    ChangeAction.CREATE: 3,
}
_ACTION_WORD = {
    ChangeAction.CREATE: "add",
    ChangeAction.UPDATE: "change",
    ChangeAction.REPLACE: "replace",
    ChangeAction.DELETE: "destroy",
}


@dataclass(frozen=True)
class Table:
    """A header row, body rows of the same width, and how many rows were left out."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    more: int = 0
    more_text: str = "more"
    """What the left-out rows are (``+3 more resources: see the full plan``)."""

    def __post_init__(self) -> None:
        if any(len(row) != len(self.header) for row in self.rows):
            raise ValueError("every row has one cell per header")

    @property
    def more_line(self) -> str | None:
        """The line under a capped table, or None when nothing was left out."""
        return f"+{self.more} {self.more_text}" if self.more else None

    def text_lines(self) -> list[str]:
        """Aligned plain text (e-mail, JSM): padded columns, the last one left free."""
        widths = [
            max(len(row[i]) for row in (self.header, *self.rows)) for i in range(len(self.header))
        ]
        last = len(widths) - 1

        def line(row: tuple[str, ...]) -> str:
            cells = [cell if i == last else cell.ljust(widths[i]) for i, cell in enumerate(row)]
            return "  " + "  ".join(cells).rstrip()

        rule = tuple("-" * (min(w, 40) if i == last else w) for i, w in enumerate(widths))
        lines = [line(self.header), line(rule), *(line(row) for row in self.rows)]
        if self.more_line:
            lines.append(f"  {self.more_line}")
        return lines


def format_value(value: object) -> str:
    """A plan value as a reviewer reads it (lists joined, ``none`` for nothing)."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if value is None:
        return "none"
    return str(value)


def attribute_text(attribute: AttributeChange) -> str:
    """``instance_type t3.small -> m6i.large``, or the one value there is."""
    before, after = attribute.before, attribute.after
    if attribute.known_after_apply:
        return f"{attribute.path} (known after apply)"
    if before is not None and after is not None and before != after:
        return f"{attribute.path} {format_value(before)} -> {format_value(after)}"
    return f"{attribute.path} {format_value(after if after is not None else before)}"


def _capped(rows: Sequence[tuple[str, ...]]) -> tuple[tuple[tuple[str, ...], ...], int]:
    return tuple(rows[:MAX_ROWS]), max(0, len(rows) - MAX_ROWS)


_MAX_KINDS = 5


def _kinds_text(kinds: dict[str, int]) -> str:
    """``4 x aws_subnet, 2 x aws_route, … +12 more types``: the commonest types first."""
    ranked = sorted(kinds.items(), key=lambda item: (-item[1], item[0]))
    text = ", ".join(f"{n} x {kind}" for kind, n in ranked[:_MAX_KINDS])
    hidden = len(ranked) - _MAX_KINDS
    return f"{text}, +{hidden} more types" if hidden > 0 else text


def counts_table(summary: PlanSummary) -> Table:
    """Resources to add, change, replace and destroy."""
    counts = summary.counts
    return Table(
        ("Add", "Change", "Replace", "Destroy"),
        ((str(counts.add), str(counts.change), str(counts.replace), str(counts.destroy)),),
    )


def resources_table(summary: PlanSummary) -> Table:
    """Each resource with attributes worth reading, destroys first; the rest by type."""
    detailed = sorted(
        (r for r in summary.resources if r.attributes),
        key=lambda r: (_ACTION_ORDER[r.action], r.address),
    )
    rows = [
        (
            _ACTION_WORD[r.action],
            r.address,
            "; ".join(attribute_text(a) for a in r.attributes)
            + (
                f" (replaced because of {', '.join(r.replace_because)})"
                if r.replace_because
                else ""
            ),
        )
        for r in detailed
    ]
    grouped: dict[ChangeAction, dict[str, int]] = {}
    for r in summary.resources:
        if not r.attributes:
            kinds = grouped.setdefault(r.action, {})
            kinds[r.type] = kinds.get(r.type, 0) + 1
    shown, more = _capped(rows)
    others = tuple(
        (
            _ACTION_WORD[action],
            f"{sum(kinds.values())} other resources",
            _kinds_text(kinds),
        )
        for action, kinds in sorted(grouped.items(), key=lambda item: _ACTION_ORDER[item[0]])
    )
    return Table(
        ("Action", "Resource", "What a reviewer checks"),
        shown + others,
        more,
        "more resources with attributes: see the full plan",
    )


def cost_table(data: ProvisioningPlanned) -> Table:
    """Monthly cost by resource, most expensive first (before or after), and the total."""
    cost = data.cost
    lines = sorted(
        cost.lines,
        key=lambda line: (-max(line.monthly_after, line.monthly_before), line.address),
    )
    rows = [
        (line.address, line.description, f"{line.monthly_before}", f"{line.monthly_after}")
        for line in lines
    ]
    shown, more = _capped(rows)
    total = ("Total", f"{cost.currency}/month", f"{cost.monthly_before}", f"{cost.monthly_after}")
    return Table(
        ("Resource", "Priced as", "Before", "After"),
        (*shown, total),
        more,
        "more priced resources: see the full plan",
    )


def policy_table(data: ProvisioningPlanned) -> Table | None:
    """Each failed plan policy check with its reasons (None: every check passed)."""
    failed = [c for c in data.policy.checks if not c.passed]
    if not failed:
        return None
    rows = [(c.check, "; ".join(c.reasons) or "failed") for c in failed]
    shown, more = _capped(rows)
    return Table(
        ("Failed check", "Reasons"),
        shown,
        more,
        "more failed checks: see the full plan",
    )


def _money(value: Decimal | None) -> str:
    return "none" if value is None else f"{value:.2f}"


def budget_table(budget: BudgetResult | None) -> Table | None:
    """Ceiling, what already runs, this request, and the verdict (None: no budget)."""
    if budget is None or budget.ceiling is None:
        return None
    if budget.within:
        verdict = "within"
    elif budget.action is None:
        verdict = "over"
    else:
        verdict = f"over: {budget.action.value.replace('_', ' ')}"  # over: require approval
    return Table(
        ("Cost center", "Ceiling", "Committed", "This request", "Total", "Verdict"),
        (
            (
                budget.cost_center or "none",
                _money(budget.ceiling),
                _money(budget.committed),
                _money(budget.requested),
                _money(budget.committed + budget.requested),
                verdict,
            ),
        ),
    )


def plan_tables(data: ProvisioningPlanned) -> dict[str, Table]:
    """Every table of the plan, by the name the message template places it with."""
    tables = {
        "counts_table": counts_table(data.summary),
        "resources_table": resources_table(data.summary),
        "cost_table": cost_table(data),
    }
    policy = policy_table(data)
    if policy is not None:
        tables["policy_table"] = policy
    budget = budget_table(data.budget)
    if budget is not None:
        tables["budget_table"] = budget
    return tables
