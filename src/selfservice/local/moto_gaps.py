"""Where moto differs from AWS in ways the platform depends on, and the fix for each.

Every gap has a test in ``tests/local/test_moto_gaps.py`` that fails without the fix.
Fixes are applied by :func:`apply` (idempotent) before moto serves any request.
"""

from __future__ import annotations

from moto.events.utils import EventTemplateParser

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


def apply() -> None:
    """Apply every fix once per process."""
    global _applied  # noqa: PLW0603 - a process-wide, apply-once patch
    if _applied:
        return
    _deliver_account_to_targets()
    _applied = True
