"""``selfservice dlq``: what is parked in each dead-letter queue and why; a safe redrive.

Discovery is the same against AWS (standard credential chain and region) and the local
runtime (``--endpoint-url`` or ``AWS_ENDPOINT_URL``): the queues whose names start with
the stack name, each queue's ``RedrivePolicy`` (DLQ → its source queues) and the
EventBridge rules whose targets name a DLQ (those have no source queue: EventBridge
could not deliver to the target, so there is no queue to put the event back on).

Messages are peeked without being consumed: received with a short visibility timeout
and made visible again at once. Why each one is there comes from where the platform
records it (:mod:`selfservice_contracts.failures`): the attributes our code parks a
message with, EventBridge's own attributes, or — for a message SQS moved after
``maxReceiveCount`` failed receives — the consumer's log line for that message id, found
with ``FilterLogEvents`` in the stack's log groups.

A redrive sends each message back to its source queue first and deletes it from the DLQ
only once the send succeeded, so an error leaves it where it was, never lost.

A DLQ can be empty while its source queue is stuck: a message retried for an hour holds
a FIFO queue's group — every later message — all that time. ``dlq list`` therefore also
shows each source queue that holds messages (:class:`SourceBacklog`): how many wait and
how many are in flight, the age of its oldest message (CloudWatch's
``ApproximateAgeOfOldestMessage``, where it exists), the message its consumer has been
failing and since when (the consumer's failure lines), and whether it is **held**: that
failure or that age reaches ``--held-minutes``.

One module a job: :mod:`.queues` (what a queue and a DLQ are), :mod:`.discovery`,
:mod:`.peek`, :mod:`.reasons` (why a message is parked), :mod:`.backlog` (source queues
held up), :mod:`.redrive`, :mod:`.dead_letters` (all of them over one set of clients)
and :mod:`.command` (the command line).
"""

from selfservice.operator.dlq.backlog import SourceBacklog
from selfservice.operator.dlq.command import add_parser
from selfservice.operator.dlq.dead_letters import DeadLetters
from selfservice.operator.dlq.queues import DeadLetterQueue, DlqError, QueueInfo
from selfservice.operator.dlq.reasons import ParkedMessage, Reason
from selfservice.operator.dlq.redrive import RedriveResult

__all__ = [
    "DeadLetterQueue",
    "DeadLetters",
    "DlqError",
    "ParkedMessage",
    "QueueInfo",
    "Reason",
    "RedriveResult",
    "SourceBacklog",
    "add_parser",
]
