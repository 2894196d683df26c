"""The pure IAM evaluator against AWS's documented evaluation logic (no sockets, no moto)."""

from __future__ import annotations

from typing import Any

import pytest

from selfservice.local.iam.conditions import condition_holds, glob_match, substitute
from selfservice.local.iam.evaluator import (
    Decision,
    Policy,
    Principal,
    Request,
    evaluate,
    evaluate_trust,
    parse_policy,
)

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/service/fn-role"
SESSION = Principal(
    "assumed-role",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/fn-role/session",
    ACCOUNT,
    role_arn=ROLE_ARN,
)
USER = Principal("user", f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT)
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"


def policy(*statements: dict[str, Any], name: str = "p") -> Policy:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)}, name)


def allow(
    action: object = "sqs:SendMessage", resource: object = QUEUE, **more: Any
) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def decide(
    *policies: Policy,
    action: str = "sqs:SendMessage",
    resource: str = QUEUE,
    context: dict[str, list[str]] | None = None,
    principal: Principal = SESSION,
    resource_policy: Policy | None = None,
) -> Decision:
    request = Request(principal, action, resource, context or {})
    return evaluate(request, identity_policies=policies, resource_policy=resource_policy).decision


# --- the evaluation logic ---------------------------------------------------------------


def test_default_deny() -> None:
    assert decide() is Decision.IMPLICIT_DENY


def test_an_allow_allows_and_names_its_statement() -> None:
    request = Request(SESSION, "sqs:SendMessage", QUEUE, {})
    outcome = evaluate(request, identity_policies=[policy(allow(Sid="Send"), name="fn/inline")])
    assert outcome.allowed
    assert outcome.matched is not None
    assert outcome.matched.describe() == "fn/inline#Send"


def test_explicit_deny_beats_allow_in_any_policy() -> None:
    deny = policy({"Effect": "Deny", "Action": "sqs:*", "Resource": "*"}, name="deny")
    assert decide(policy(allow()), deny) is Decision.EXPLICIT_DENY


def test_action_names_are_case_insensitive_and_take_wildcards() -> None:
    assert decide(policy(allow("SQS:sendmessage"))) is Decision.ALLOW
    assert decide(policy(allow("sqs:Send*"))) is Decision.ALLOW
    assert decide(policy(allow("sqs:?endMessage"))) is Decision.ALLOW
    assert decide(policy(allow("sqs:Receive*"))) is Decision.IMPLICIT_DENY


def test_not_action_applies_to_every_other_action() -> None:
    everything_but_delete = policy({"Effect": "Allow", "NotAction": "sqs:Delete*", "Resource": "*"})
    assert decide(everything_but_delete) is Decision.ALLOW
    assert decide(everything_but_delete, action="sqs:DeleteQueue") is Decision.IMPLICIT_DENY


def test_not_resource_applies_to_every_other_resource() -> None:
    deny_others = policy(
        allow("sqs:*", "*"),
        {"Effect": "Deny", "Action": "sqs:*", "NotResource": QUEUE},
    )
    assert decide(deny_others) is Decision.ALLOW
    assert decide(deny_others, resource=QUEUE + "-other") is Decision.EXPLICIT_DENY


def test_resource_wildcards_are_case_sensitive() -> None:
    assert decide(policy(allow(resource="arn:aws:sqs:*:*:q"))) is Decision.ALLOW
    assert decide(policy(allow(resource="arn:aws:sqs:us-east-1:*:?"))) is Decision.ALLOW
    assert decide(policy(allow(resource="arn:aws:sqs:us-east-1:*:Q"))) is Decision.IMPLICIT_DENY


def test_a_star_inside_an_arn_segment_stays_in_it_one_ending_a_segment_runs_on() -> None:
    assert decide(policy(allow(resource="arn:aws:sqs:us-*1:q"))) is Decision.IMPLICIT_DENY
    assert decide(policy(allow(resource="arn:aws:sqs:us-*1:*:q"))) is Decision.ALLOW
    assert decide(policy(allow(resource="arn:aws:sqs:*:q"))) is Decision.ALLOW


def test_a_log_group_arn_with_its_star_does_not_match_streams_under_a_second_star() -> None:
    group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/codebuild/p"
    stream = f"{group}:log-stream:build/1"
    good = policy(allow("logs:PutLogEvents", f"{group}:*"))
    broken = policy(allow("logs:PutLogEvents", f"{group}:*:log-stream:*"))  # issue 15's bug
    assert decide(good, action="logs:PutLogEvents", resource=stream) is Decision.ALLOW
    assert decide(broken, action="logs:PutLogEvents", resource=stream) is Decision.IMPLICIT_DENY


def test_a_statement_of_an_identity_policy_with_a_principal_is_ignored() -> None:
    odd = policy(allow(Principal="*"))
    assert decide(odd) is Decision.IMPLICIT_DENY


def test_policy_variables_in_resources() -> None:
    own = policy(allow("s3:GetObject", "arn:aws:s3:::home/${aws:username}/*"))
    context = {"aws:username": ["alice"]}
    mine = "arn:aws:s3:::home/alice/notes"
    theirs = "arn:aws:s3:::home/bob/notes"
    assert decide(own, action="s3:GetObject", resource=mine, context=context) is Decision.ALLOW
    assert (
        decide(own, action="s3:GetObject", resource=theirs, context=context)
        is Decision.IMPLICIT_DENY
    )
    # Unresolvable: the statement matches nothing.
    assert decide(own, action="s3:GetObject", resource=mine) is Decision.IMPLICIT_DENY


def test_policy_variable_defaults_and_escapes() -> None:
    assert substitute("${aws:username, 'nobody'}", {}) == "nobody"
    assert substitute("a${*}b${?}${$}", {}) == "a*b?$"
    assert substitute("${aws:PrincipalTag/team}", {"aws:principaltag/team": ["blue"]}) == "blue"


def test_the_cache_returns_one_parsed_policy_per_document() -> None:
    document = '{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}'
    assert parse_policy(document, "x") is parse_policy(document, "x")
    assert len(parse_policy(document, "x").statements) == 1


# --- resource-based policies -------------------------------------------------------------


def queue_policy(principal: object, effect: str = "Allow", **more: Any) -> Policy:
    return policy(
        {
            "Effect": effect,
            "Principal": principal,
            "Action": "sqs:SendMessage",
            "Resource": QUEUE,
            **more,
        },
        name="queue-policy",
    )


def test_a_resource_policy_naming_the_role_allows_without_an_identity_policy() -> None:
    assert decide(resource_policy=queue_policy({"AWS": ROLE_ARN})) is Decision.ALLOW


def test_a_resource_policy_naming_the_session_arn_allows_that_session() -> None:
    assert decide(resource_policy=queue_policy({"AWS": SESSION.arn})) is Decision.ALLOW
    assert decide(resource_policy=queue_policy({"AWS": USER.arn})) is Decision.IMPLICIT_DENY


def test_a_resource_policy_naming_the_account_only_delegates_to_iam() -> None:
    for account in (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"):
        grant = queue_policy({"AWS": account})
        assert decide(resource_policy=grant) is Decision.IMPLICIT_DENY
        assert decide(policy(allow()), resource_policy=grant) is Decision.ALLOW


def test_a_deny_in_the_resource_policy_beats_the_identity_allow() -> None:
    deny = queue_policy("*", effect="Deny")
    assert decide(policy(allow()), resource_policy=deny) is Decision.EXPLICIT_DENY


def test_not_principal_denies_everyone_else() -> None:
    deny = policy(
        {"Effect": "Deny", "NotPrincipal": {"AWS": ROLE_ARN}, "Action": "sqs:*", "Resource": QUEUE}
    )
    assert decide(policy(allow()), resource_policy=deny) is Decision.ALLOW
    assert decide(policy(allow()), resource_policy=deny, principal=USER) is Decision.EXPLICIT_DENY


def test_a_service_principal_with_source_arn_condition() -> None:
    rule = "arn:aws:events:us-east-1:123456789012:rule/bus/r"
    grant = queue_policy(
        {"Service": "events.amazonaws.com"}, Condition={"ArnEquals": {"aws:SourceArn": rule}}
    )
    events = Principal("service", "events.amazonaws.com", ACCOUNT, service="events.amazonaws.com")
    assert (
        decide(resource_policy=grant, principal=events, context={"aws:sourcearn": [rule]})
        is Decision.ALLOW
    )
    other = {"aws:sourcearn": [rule + "-other"]}
    assert decide(resource_policy=grant, principal=events, context=other) is Decision.IMPLICIT_DENY


def test_cross_account_needs_both_sides() -> None:
    grant = queue_policy({"AWS": ROLE_ARN})
    request = Request(SESSION, "sqs:SendMessage", QUEUE, {})
    alone = evaluate(request, identity_policies=[], resource_policy=grant, resource_account="999")
    both = evaluate(
        request, identity_policies=[policy(allow())], resource_policy=grant, resource_account="999"
    )
    assert alone.decision is Decision.IMPLICIT_DENY
    assert both.allowed


# --- trust policies ---------------------------------------------------------------------


def trust(principal: object, **more: Any) -> Policy:
    return policy({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **more})


def assume(
    trust_policy: Policy,
    principal: Principal,
    context: dict[str, list[str]] | None = None,
    identity: tuple[Policy, ...] = (),
) -> Decision:
    request = Request(principal, "sts:AssumeRole", ROLE_ARN, context or {})
    return evaluate_trust(request, trust_policy=trust_policy, identity_policies=identity).decision


LAMBDA = Principal("service", "lambda.amazonaws.com", ACCOUNT, service="lambda.amazonaws.com")
CODEBUILD = Principal(
    "service", "codebuild.amazonaws.com", ACCOUNT, service="codebuild.amazonaws.com"
)


def test_a_trust_policy_admits_its_service_only() -> None:
    lambda_trust = trust({"Service": "lambda.amazonaws.com"})
    assert assume(lambda_trust, LAMBDA) is Decision.ALLOW
    assert assume(lambda_trust, CODEBUILD) is Decision.IMPLICIT_DENY


def test_a_trust_policy_with_source_conditions() -> None:
    project = "arn:aws:codebuild:us-east-1:123456789012:project/build"
    scoped = trust(
        {"Service": ["codebuild.amazonaws.com"]},
        Condition={
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
            "ArnLike": {"aws:SourceArn": "arn:aws:codebuild:*:*:project/build"},
        },
    )
    context = {"aws:sourceaccount": [ACCOUNT], "aws:sourcearn": [project]}
    assert assume(scoped, CODEBUILD, context) is Decision.ALLOW
    assert assume(scoped, CODEBUILD, {**context, "aws:sourcearn": [project + "2"]}) is (
        Decision.IMPLICIT_DENY
    )
    assert assume(scoped, CODEBUILD) is Decision.IMPLICIT_DENY


def test_a_trust_policy_naming_a_role_admits_its_sessions() -> None:
    caller = Principal(
        "assumed-role",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/build/s",
        ACCOUNT,
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/build",
    )
    assert assume(trust({"AWS": f"arn:aws:iam::{ACCOUNT}:role/build"}), caller) is Decision.ALLOW
    assert assume(trust({"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"}), caller) is (
        Decision.IMPLICIT_DENY
    )


def test_a_trust_policy_naming_the_account_needs_the_identity_policy_too() -> None:
    account_trust = trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
    grant = policy(allow("sts:AssumeRole", ROLE_ARN))
    assert assume(account_trust, USER) is Decision.IMPLICIT_DENY
    assert assume(account_trust, USER, identity=(grant,)) is Decision.ALLOW


def test_an_identity_deny_stops_the_assumption() -> None:
    deny = policy({"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"})
    assert assume(trust({"AWS": USER.arn}), USER, identity=(deny,)) is Decision.EXPLICIT_DENY


# --- condition operators -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "expected", "actual", "holds"),
    [
        ("StringEquals", "a", "a", True),
        ("StringEquals", "a", "A", False),
        ("StringNotEquals", "a", "b", True),
        ("StringNotEquals", "a", "a", False),
        ("StringEqualsIgnoreCase", "abc", "ABC", True),
        ("StringNotEqualsIgnoreCase", "abc", "ABC", False),
        ("StringLike", "selfservice.*", "selfservice.intake", True),
        ("StringLike", "ab?", "abcd", False),
        ("StringNotLike", "x*", "yes", True),
        ("ArnEquals", "arn:aws:events:*:*:rule/r", "arn:aws:events:us-east-1:1:rule/r", True),
        ("ArnLike", "arn:aws:events:*:*:rule/*", "arn:aws:sqs:us-east-1:1:rule/r", False),
        ("ArnNotEquals", "arn:aws:sqs:*:*:q", "arn:aws:sqs:us-east-1:1:other", True),
        ("ArnNotLike", "arn:aws:sqs:*:*:q*", "arn:aws:sqs:us-east-1:1:queue", False),
        ("NumericEquals", "10", "10.0", True),
        ("NumericNotEquals", "10", "11", True),
        ("NumericLessThan", "10", "9", True),
        ("NumericLessThanEquals", "10", "10", True),
        ("NumericGreaterThan", "10", "10", False),
        ("NumericGreaterThanEquals", "10", "11", True),
        ("NumericEquals", "10", "ten", False),
        ("DateEquals", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00+00:00", True),
        ("DateNotEquals", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", True),
        ("DateLessThan", "2026-01-01T00:00:00Z", "2025-12-31T23:59:59Z", True),
        ("DateLessThanEquals", "2026-01-01T00:00:00Z", "1767225600", True),
        ("DateGreaterThan", "2026-01-01T00:00:00Z", "2025-01-01T00:00:00Z", False),
        ("DateGreaterThanEquals", "2026-01-01", "2026-01-01T00:00:00Z", True),
        ("Bool", "true", "TRUE", True),
        ("Bool", "false", "true", False),
        ("IpAddress", "127.0.0.0/8", "127.0.0.1", True),
        ("NotIpAddress", "10.0.0.0/8", "127.0.0.1", True),
        ("BinaryEquals", "QUJD", "QUJD", True),
    ],
)
def test_operator(operator: str, expected: str, actual: str, holds: bool) -> None:
    assert condition_holds(operator, "k", expected, {"k": [actual]}) is holds


def test_keys_are_case_insensitive_and_values_are_ored() -> None:
    assert condition_holds("StringEquals", "Events:Source", ["a", "b"], {"events:source": ["b"]})
    assert not condition_holds(
        "StringEquals", "events:source", ["a", "b"], {"events:source": ["c"]}
    )


def test_several_keys_and_operators_are_anded() -> None:
    statement = allow(
        Condition={
            "StringEquals": {"aws:RequestedRegion": "us-east-1", "aws:PrincipalAccount": ACCOUNT},
            "Bool": {"aws:SecureTransport": "true"},
        }
    )
    full = {
        "aws:requestedregion": ["us-east-1"],
        "aws:principalaccount": [ACCOUNT],
        "aws:securetransport": ["true"],
    }
    assert decide(policy(statement), context=full) is Decision.ALLOW
    for missing in full:
        partial = {k: v for k, v in full.items() if k != missing}
        assert decide(policy(statement), context=partial) is Decision.IMPLICIT_DENY


def test_a_missing_key_fails_positive_operators_and_passes_negated_ones() -> None:
    assert not condition_holds("StringEquals", "k", "a", {})
    assert condition_holds("StringNotEquals", "k", "a", {})
    assert not condition_holds("ArnLike", "k", "arn:*", {})
    assert condition_holds("ArnNotLike", "k", "arn:*", {})


def test_if_exists_passes_on_a_missing_key_only() -> None:
    assert condition_holds("StringEqualsIfExists", "k", "a", {})
    assert condition_holds("StringEqualsIfExists", "k", "a", {"k": ["a"]})
    assert not condition_holds("StringEqualsIfExists", "k", "a", {"k": ["b"]})
    assert condition_holds("ArnLikeIfExists", "aws:SourceArn", "arn:aws:events:*", {})


def test_null_tests_presence() -> None:
    assert condition_holds("Null", "aws:RequestTag/team", "true", {})
    assert not condition_holds(
        "Null", "aws:RequestTag/team", "true", {"aws:requesttag/team": ["x"]}
    )
    assert condition_holds("Null", "aws:RequestTag/team", "false", {"aws:requesttag/team": ["x"]})
    assert not condition_holds("Null", "k", False, {})  # JSON booleans are accepted too


def test_for_any_value() -> None:
    keys = {"aws:tagkeys": ["team", "cost"]}
    assert condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["cost"], keys)
    assert not condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["owner"], keys)
    assert not condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["cost"], {})


def test_for_all_values() -> None:
    keys = {"aws:tagkeys": ["team", "cost"]}
    assert condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["team", "cost", "x"], keys)
    assert not condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["team"], keys)
    assert condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["team"], {})  # vacuous
    assert condition_holds("ForAllValues:StringNotEquals", "aws:TagKeys", ["owner"], keys)


def test_condition_values_take_policy_variables() -> None:
    context = {"aws:principaltag/team": ["blue"], "aws:resourcetag/team": ["blue"]}
    assert condition_holds(
        "StringEquals", "aws:ResourceTag/team", "${aws:PrincipalTag/team}", context
    )
    assert not condition_holds(
        "StringEquals",
        "aws:ResourceTag/team",
        "${aws:PrincipalTag/team}",
        {"aws:resourcetag/team": ["blue"]},
    )


def test_an_unknown_operator_never_matches() -> None:
    statement = allow(Condition={"StringSoundsLike": {"k": "a"}})
    assert decide(policy(statement), context={"k": ["a"]}) is Decision.IMPLICIT_DENY


def test_glob_match() -> None:
    assert glob_match("a*c", "abbbc")
    assert glob_match("a?c", "abc")
    assert not glob_match("a?c", "abbc")
    assert glob_match("A*", "abc", ignore_case=True)
    assert glob_match("a.c", "a.c")
    assert not glob_match("a.c", "abc")  # regex metacharacters are literal


def test_a_permissions_boundary_caps_the_identity_policies() -> None:
    boundary = policy(allow("sqs:*", "*"), name="boundary")
    request = Request(SESSION, "sqs:SendMessage", QUEUE, {})
    everything = [policy(allow("*", "*"))]
    assert evaluate(request, identity_policies=everything, boundary=boundary).allowed
    outside = Request(SESSION, "dynamodb:PutItem", "*", {})
    capped = evaluate(outside, identity_policies=everything, boundary=boundary)
    assert capped.decision is Decision.IMPLICIT_DENY
    # A resource policy's own grant is not capped.
    grant = queue_policy({"AWS": ROLE_ARN})
    narrow = policy(allow("dynamodb:*", "*"), name="boundary")
    assert evaluate(request, identity_policies=[], resource_policy=grant, boundary=narrow).allowed


def test_a_session_policy_caps_the_identity_policies_too() -> None:
    session = policy(allow("sqs:SendMessage", QUEUE), name="session")
    everything = [policy(allow("*", "*"))]
    inside = Request(SESSION, "sqs:SendMessage", QUEUE, {})
    outside = Request(SESSION, "sqs:DeleteQueue", QUEUE, {})
    assert evaluate(inside, identity_policies=everything, session_policy=session).allowed
    capped = evaluate(outside, identity_policies=everything, session_policy=session)
    assert capped.decision is Decision.IMPLICIT_DENY
