"""What intake needs from the world outside its domain, as interfaces.

The adapters (``intake.adapters``, ``selfservice_runtime``) implement them; tests use
in-memory fakes of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from selfservice_runtime.publisher import EventPublisher

__all__ = ["Deduplicator", "EventPublisher", "SecretStore"]


class SecretStore(Protocol):
    """Where the webhook secrets come from (Secrets Manager / SSM SecureString)."""

    def values(self, secret_id: str) -> list[str]:
        """Accepted values of a secret, current first (two during a rotation)."""
        ...


class Deduplicator(Protocol):
    """Runs an action once per key and replays its stored reply afterwards."""

    def once(self, key: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The action's result, computed now or replayed from the first time."""
        ...
