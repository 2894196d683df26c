"""Which instances a call reaches, and whether the API may reach them (the allow tag).

Only running instances carrying the allow tag are targets of Run Command; every
instance an association reaches (instance ids and tag targets, resolved now) must carry
it too, and the results of a command are read only on instances that carry it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ops_api.domain.errors import (
    InstanceNotEligibleError,
    InvalidRequestError,
    NotFoundError,
    SsmFailureError,
)
from ops_api.domain.models import Association, Instance, Invocation, RunCommandsBody
from ops_api.domain.ports import Instances, SsmUnavailableError

__all__ = ["ASSOCIATION_REACH_LIMIT", "command_targets", "eligible", "reached"]

ASSOCIATION_REACH_LIMIT = 1000
"""The most instances the associations of one call may reach (each is checked for the tag)."""

AllowTag = tuple[str, str]


def command_targets(
    body: RunCommandsBody, instances: Instances, allow_tag: AllowTag, max_targets: int
) -> list[Instance]:
    """The instances a run-commands call names or selects; refused unless all are eligible."""
    key, value = allow_tag
    try:
        if body.instance_id is not None:
            found = instances.get([body.instance_id])
            if not found:
                raise NotFoundError(f"no instance {body.instance_id}")
            instance = found[0]
            if instance.tags.get(key) != value:
                raise InstanceNotEligibleError(
                    f"{instance.instance_id} is not tagged {key}={value}"
                )
            if instance.state != "running":
                raise InstanceNotEligibleError(
                    f"{instance.instance_id} is {instance.state}, not running"
                )
            return [instance]
        tags = dict(body.tags or {})
        if tags.get(key, value) != value:
            raise InstanceNotEligibleError(f"only instances tagged {key}={value} are eligible")
        limit = max_targets
        found = instances.find({**tags, key: value}, limit=limit)
    except SsmUnavailableError as exc:
        raise SsmFailureError(f"EC2 failed: {exc}") from None
    if not found:
        raise NotFoundError(f"no running instance tagged {tags} and {key}={value}")
    if len(found) > limit:
        raise InvalidRequestError(
            f"the tags select more than {limit} instances; narrow them", max_targets=limit
        )
    return found


def eligible(
    listed: list[Invocation], instances: Instances, allow_tag: AllowTag
) -> list[Invocation]:
    """The invocations on instances carrying the allow tag (whatever their state)."""
    key, value = allow_tag
    tagged = {
        i.instance_id
        for i in instances.get([i.instance_id for i in listed])
        if i.tags.get(key) == value
    }
    return [i for i in listed if i.instance_id in tagged]


def reached(
    associations: Sequence[Association], instances: Instances, allow_tag: AllowTag
) -> list[str]:
    """Every instance the associations reach, each carrying the allow tag (else 403)."""
    key, value = allow_tag
    limit = ASSOCIATION_REACH_LIMIT
    found: set[str] = set()
    unknown: list[dict[str, str]] = []
    refused: list[dict[str, str]] = []
    try:
        for association in associations:
            named, selected = _association_targets(association, instances, limit)
            known = instances.get(sorted(named)) if named else []
            unknown.extend(
                {"association_id": association.association_id, "instance_id": i}
                for i in sorted(named - {k.instance_id for k in known})
            )
            for instance in [*known, *selected]:
                if instance.tags.get(key) != value:
                    refused.append(
                        {
                            "association_id": association.association_id,
                            "instance_id": instance.instance_id,
                        }
                    )
                found.add(instance.instance_id)
            if len(found) > limit:
                raise InvalidRequestError(
                    f"the associations reach more than {limit} instances, more than the API "
                    "checks in one call; start fewer at once",
                    max_targets=limit,
                )
    except SsmUnavailableError as exc:
        raise SsmFailureError(f"EC2 failed: {exc}") from None
    if unknown:
        raise InstanceNotEligibleError(
            f"{len(unknown)} target(s) are not EC2 instances whose {key} tag the API can "
            "check; none was started",
            instances=unknown,
        )
    if refused:
        raise InstanceNotEligibleError(
            f"{len(refused)} instance(s) reached are not tagged {key}={value}; none was started",
            instances=refused,
        )
    return sorted(found)


def _association_targets(
    association: Association, instances: Instances, limit: int
) -> tuple[set[str], list[Instance]]:
    """What one association reaches now: instance ids it names, instances its tags select."""
    association_id = association.association_id
    if association.elsewhere:
        raise InstanceNotEligibleError(
            f"association {association_id} targets other accounts, regions or target "
            "maps, which the API cannot check"
        )
    named: set[str] = {association.instance_id} if association.instance_id else set()
    selected: list[Instance] = []
    for target in association.targets:
        if target.key == "InstanceIds":
            if "*" in target.values:
                raise InstanceNotEligibleError(
                    f"association {association_id} targets every instance"
                )
            named.update(target.values)
        elif target.key.startswith("tag:") or target.key == "tag-key":
            selected.extend(instances.select({target.key: target.values}, limit=limit))
        else:
            raise InstanceNotEligibleError(
                f"association {association_id} targets {target.key}, which the API "
                "cannot resolve to EC2 instances"
            )
    return named, selected
