"""Exactly once, keyed on meaning: Powertools idempotency on DynamoDB.

Used by intake (one event per ticket, action and outcome) and by every SQS consumer
(one processing per CloudEvent ``source`` + ``id``). The first call for a key runs
the action and stores its JSON result; later calls get the stored result without
running it. A failed action stores nothing, so a retry runs it again. A store that
cannot be reached is :class:`DeduplicationUnavailableError`, never a library error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyInconsistentStateError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

__all__ = [
    "DeduplicationUnavailableError",
    "DuplicateInProgressError",
    "DynamoDBDeduplicator",
    "InMemoryDeduplicator",
]


class DuplicateInProgressError(RuntimeError):
    """The same key is being processed right now; retry shortly."""


class DeduplicationUnavailableError(RuntimeError):
    """The store of keys could not be read or written (unreachable, throttled, missing).

    Whether the action ran is unknown — it may have, if only recording its result
    failed — so the caller answers "retry later"; the retry is safe because every
    action is keyed on its meaning (intake's events carry ids derived from the key).
    """


class DynamoDBDeduplicator:
    """Stores each key's result; a repeat gets it back, a concurrent twin an error."""

    def __init__(
        self,
        table_name: str,
        ttl_seconds: int,
        boto3_session: boto3.session.Session,
        boto_config: Config | None = None,
    ) -> None:
        """``boto_config`` is the client's (its retry policy); botocore's default if None."""
        self._store = DynamoDBPersistenceLayer(
            table_name=table_name, boto3_session=boto3_session, boto_config=boto_config
        )
        self._config = IdempotencyConfig(
            event_key_jmespath="key",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=ttl_seconds,
        )

    def register_lambda_context(self, context: LambdaContext) -> None:
        """Lets an in-progress record expire with the invocation's remaining time."""
        self._config.register_lambda_context(context)

    def once(self, key: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``action`` the first time ``key`` is seen; replay its result afterwards."""

        @idempotent_function(  # type: ignore[untyped-decorator]
            data_keyword_argument="delivery",
            persistence_store=self._store,
            config=self._config,
        )
        def run(delivery: dict[str, str]) -> dict[str, Any]:
            return action()

        try:
            result: dict[str, Any] = run(delivery={"key": key})
        except IdempotencyAlreadyInProgressError:
            raise DuplicateInProgressError(f"{key} is being processed; retry shortly") from None
        except (IdempotencyPersistenceLayerError, IdempotencyInconsistentStateError) as exc:
            raise DeduplicationUnavailableError(
                f"{key}: the deduplication store is unavailable ({exc})"
            ) from exc
        return result


class InMemoryDeduplicator:
    """Same contract, in memory (tests, benchmarks)."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, Any]] = {}

    def once(self, key: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``action`` the first time ``key`` is seen; replay its result afterwards."""
        if key not in self.results:
            self.results[key] = action()
        return self.results[key]
