"""The SQS part of :mod:`selfservice.local.moto_gaps`: where moto's queues differ from SQS.

Every gap has a test in ``tests/local/test_moto_gaps.py`` that fails without the fix;
:func:`apply` is called by ``moto_gaps.apply``.
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from typing import Any

from moto.core import utils as moto_utils
from moto.sqs import models as sqs_models
from moto.sqs.models import Message, Queue, SQSBackend

__all__ = ["apply"]

_ORIGINAL_RECEIVE = SQSBackend.receive_message


def _receive_releasing_timed_out_messages(
    self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any
) -> Any:
    queue = self.get_queue(queue_name)
    for message in list(queue.pending_messages):
        if message.visible:  # its visibility timeout ran out: it is no longer in flight
            queue.pending_messages.remove(message)
    return _ORIGINAL_RECEIVE(self, queue_name, *args, **kwargs)


def _fifo_redelivery_in_order() -> None:
    """Gap: a FIFO group whose in-flight messages time out is redelivered out of order.

    moto releases timed-out messages one at a time while scanning, so the group still
    looks locked by the later ones and only the last message is delivered. SQS releases
    them all and delivers the group from its oldest message again.
    """
    SQSBackend.receive_message = _receive_releasing_timed_out_messages  # type: ignore[method-assign]


_ORIGINAL_QUEUE_COUNTS = {
    name: Queue.__dict__[name]
    for name in (
        "messages",
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    )
}


_RECEIVE_CLOCK = threading.local()
"""The instant a receive scans its queue at (see :func:`_fifo_groups_wait_for_their_oldest`)."""


def _clock() -> float:
    """moto's clock (what ``Message.visible`` reads), or the instant of the receive scanning."""
    frozen: float | None = getattr(_RECEIVE_CLOCK, "now", None)
    return frozen if frozen is not None else moto_utils.unix_time_millis()


def _ready(queue: Queue) -> list[Any]:
    # moto's own clock (what Message.visible and .delayed read), read once per call
    # instead of twice per message.
    now = _clock()
    return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]


def _delayed_count(queue: Queue) -> int:
    now = moto_utils.unix_time_millis()
    return sum(1 for m in queue._messages if now < m.delayed_until)


def _not_visible_count(queue: Queue) -> int:
    now = _clock()
    return sum(1 for m in queue._messages if not now > m.visible_at)


def _queue_counts_read_the_clock_once() -> None:
    """Gap: each SendMessage reads the clock four times per message already queued.

    ``SendMessage`` asks the queue for every attribute (to read one flag), and the
    three message counts each ask every queued message whether it is visible and
    whether it is delayed — each question reading (and converting) the clock. Sending
    to a queue holding n messages cost O(n) clock reads: ~60 ms at n = 1000, which
    capped EventBridge → SQS at ~50 events/s. The counts and the list of receivable
    messages now read the clock once per call, with the same answers; the attribute
    names' conversion to Python names (a pure function, 14 regex runs a send) is cached.
    """
    Queue.messages = property(_ready)  # type: ignore[assignment]
    Queue.approximate_number_of_messages = property(lambda q: len(_ready(q)))  # type: ignore[assignment]
    Queue.approximate_number_of_messages_delayed = property(_delayed_count)  # type: ignore[assignment]
    Queue.approximate_number_of_messages_not_visible = property(_not_visible_count)  # type: ignore[assignment]
    convert = vars(sqs_models)["camelcase_to_underscores"]
    if not hasattr(convert, "cache_info"):
        setattr(sqs_models, "camelcase_to_underscores", lru_cache(maxsize=256)(convert))  # noqa: B010


LONG_POLL_STEP_SECONDS = 0.05
"""How often a long poll looks again for messages whose visibility timeout ran out."""


def _receive_scanning_at_one_instant(  # noqa: PLR0917 - moto's signature
    self: SQSBackend,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> Any:
    queue = self.get_queue(queue_name)
    deadline = time.monotonic() + int(wait_seconds_timeout or 0)
    while True:
        _RECEIVE_CLOCK.now = moto_utils.unix_time_millis()
        try:
            result = _receive_releasing_timed_out_messages(
                self, queue_name, count, 0, visibility_timeout, message_attribute_names
            )
        finally:
            _RECEIVE_CLOCK.now = None
        left = deadline - time.monotonic()
        if result or left <= 0:
            return result
        with queue._messages_lock:  # a send wakes the poll at once, as in SQS
            queue._messages_lock.wait(timeout=min(left, LONG_POLL_STEP_SECONDS))


def _fifo_groups_wait_for_their_oldest() -> None:
    """Gap: a FIFO group's messages come back out of order when each has its own visibility.

    SQS never returns a message of a group while an earlier message of that group is in
    flight, and a receive sees the queue at one instant. moto decides which groups are
    in flight once per long poll and reads the clock again for every message: when an
    earlier message's visibility runs out during a long poll and a later one's after
    it, the earlier one is passed over (its group still looked in flight) and the later
    one is returned alone — a ticket's second update before its first. Each look of a
    long poll is now a fresh receive (in-flight messages that timed out released first)
    scanning the queue at one instant.
    """
    Message.visible = property(lambda message: _clock() > message.visible_at)  # type: ignore[method-assign,assignment]
    SQSBackend.receive_message = _receive_scanning_at_one_instant  # type: ignore[method-assign]


_ORIGINAL_SET_ATTRIBUTES = Queue._set_attributes


def _set_attributes_keeping_the_policy(
    self: Queue, attributes: dict[str, Any], now: Any = None
) -> None:
    policy = self.__dict__.get("_policy_json")  # unset while the queue is being created
    _ORIGINAL_SET_ATTRIBUTES(self, attributes, now)
    if "Policy" not in attributes and policy is not None:
        self._policy_json = policy


def _set_queue_attributes_keeps_the_policy() -> None:
    """Gap: ``SetQueueAttributes`` without ``Policy`` deletes the queue's policy.

    SQS changes only the attributes a call names. moto sets the policy to whatever the
    call carries, so changing a queue's visibility timeout silently removes the
    resource policy that lets EventBridge send to it: its rules then deliver nothing.
    """
    Queue._set_attributes = _set_attributes_keeping_the_policy  # type: ignore[method-assign]


def apply() -> None:
    """Apply the SQS fixes (``moto_gaps.apply`` calls this once per process)."""
    _fifo_redelivery_in_order()
    _queue_counts_read_the_clock_once()
    _fifo_groups_wait_for_their_oldest()
    _set_queue_attributes_keeps_the_policy()
