"""What IAM enforcement costs per request of the embedded AWS.

``.venv/bin/python bench/iam_overhead.py [N]`` runs moto in-process (no sockets, so the
number is the enforcement's own CPU time, not the network's or a busy machine's) and
times, for ``sqs:SendMessage`` and ``dynamodb:PutItem``, as root and as a role with an
inline policy and two AWS managed policies attached:

- the time spent in the enforcement hook itself (signature, principal, checks,
  evaluation), median over N requests;
- the whole request with enforcement off and on (best of five batches of N).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"

import boto3
from moto import mock_aws

from selfservice.local import moto_gaps
from selfservice.local.iam import enforcement, routes

REGION = "us-east-1"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["sqs:SendMessage", "dynamodb:PutItem"], "Resource": "*"}
    ],
}


def client(service: str, keys: dict[str, str]) -> Any:
    session = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=keys["aws_access_key_id"],
        aws_secret_access_key=keys["aws_secret_access_key"],
        aws_session_token=keys.get("aws_session_token"),
    )
    return session.client(service)  # type: ignore[call-overload]


def best_batch(call: Callable[[int], object], n: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for i in range(n):
            call(i)
        best = min(best, (time.perf_counter() - start) / n * 1000)
    return best


@dataclass(frozen=True)
class Overhead:
    """One caller and action: the enforcement hook's median, the request off and on."""

    caller: str
    action: str
    hook_ms: float
    off_ms: float
    on_ms: float


def measure(n: int = 200) -> list[Overhead]:
    """Every caller and action, ``n`` requests each (in process, no sockets)."""
    figures: list[Overhead] = []
    moto_gaps.apply()
    spent: list[float] = []
    original = enforcement._handle

    def timed(response: Any, s3_target: Any) -> None:
        start = time.perf_counter()
        try:
            original(response, s3_target)
        finally:
            spent.append((time.perf_counter() - start) * 1000)

    enforcement._handle = timed
    with mock_aws():
        root = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        iam, sqs, dynamodb = client("iam", root), client("sqs", root), client("dynamodb", root)
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        arn = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"][
            "Arn"
        ]
        iam.put_role_policy(RoleName="fn", PolicyName="p", PolicyDocument=json.dumps(POLICY))
        for managed in (
            "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
            "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        ):
            iam.attach_role_policy(RoleName="fn", PolicyArn=managed)
        session = routes.assume_role_as_service(
            {"role_arn": arn, "service": "lambda.amazonaws.com", "session_name": "bench"}
        )
        role = {
            "aws_access_key_id": session["AccessKeyId"],
            "aws_secret_access_key": session["SecretAccessKey"],
            "aws_session_token": session["SessionToken"],
        }
        for label, keys in (("root", root), ("role", role)):
            send, put = client("sqs", keys), client("dynamodb", keys)

            def send_message(i: int, s: Any = send) -> object:
                return s.send_message(QueueUrl=url, MessageBody="x")

            def put_item(i: int, p: Any = put) -> object:
                return p.put_item(TableName="t", Item={"pk": {"S": str(i)}})

            calls: dict[str, Callable[[int], object]] = {
                "sqs:SendMessage": send_message,
                "dynamodb:PutItem": put_item,
            }
            for name, call in calls.items():
                enforcement.disable()
                off = best_batch(call, n)
                enforcement.enable()
                spent.clear()
                on = best_batch(call, n)
                figures.append(Overhead(label, name, statistics.median(spent), off, on))
        enforcement.disable()
    enforcement._handle = original
    return figures


def main(n: int) -> None:
    """Print the figures."""
    for f in measure(n):
        print(
            f"{f.caller:4} {f.action:17} enforcement {f.hook_ms:.3f} ms/request "
            f"(request {f.off_ms:.2f} ms off, {f.on_ms:.2f} ms on)"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
