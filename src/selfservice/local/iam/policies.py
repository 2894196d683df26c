"""Resource policies the local runtime's own helpers need, written once."""

from __future__ import annotations

import json

__all__ = ["rule_delivery_policy"]


def rule_delivery_policy(queue_arn: str, rule_arn: str) -> str:
    """A queue policy letting one EventBridge rule deliver to the queue, as AWS requires
    (and the embedded AWS, with IAM enforced, checks) for an SQS rule target."""
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})
