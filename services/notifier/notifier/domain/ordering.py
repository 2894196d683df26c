"""A ticket's updates never overtake each other, within a batch or across receives.

The queue is FIFO with one message group, so a batch holds every ticket's updates in
order. Once a ticket's update fails, that ticket's later updates in the batch are not
attempted: they fail too and come back with it, after the same wait — while other
tickets' updates go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TicketOrdering"]


@dataclass
class TicketOrdering:
    """The ordering rule of one batch: which tickets wait, and for how long."""

    _held: dict[str, float] = field(default_factory=dict)
    """Tickets whose update failed in this batch, with when it comes back (seconds)."""

    def start_batch(self) -> None:
        """Forget the previous batch: every ticket may be written again."""
        self._held.clear()

    def held_back(self, ticket: str) -> float | None:
        """The wait of the failed update ``ticket``'s next update is behind, or None."""
        return self._held.get(ticket)

    def failed(self, ticket: str, wait_seconds: float) -> None:
        """``ticket``'s update failed and comes back after ``wait_seconds``.

        The first failure of the batch sets the wait: a later update must not come
        back before the one it follows.
        """
        self._held.setdefault(ticket, wait_seconds)
