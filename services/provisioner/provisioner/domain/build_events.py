"""Reading AWS's ``CodeBuild Build State Change`` event into a :class:`BuildResult`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from provisioner.domain.ports import BuildResult

__all__ = ["NotOurBuildError", "parse_build_state_change"]

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED", "TIMED_OUT", "FAULT"}
_START_FORMAT = "%b %d, %Y %I:%M:%S %p"


class NotOurBuildError(ValueError):
    """The event is not a terminal state of a build the provisioner started."""


def _duration(info: dict[str, Any], end: datetime | None) -> float | None:
    started = info.get("build-start-time")
    if not isinstance(started, str) or end is None:
        return None
    try:
        start = datetime.strptime(started, _START_FORMAT).replace(tzinfo=end.tzinfo)
    except ValueError:
        return None
    return max(0.0, (end - start).total_seconds())


def parse_build_state_change(detail: dict[str, Any], time: datetime | None) -> BuildResult:
    """The result, or :class:`NotOurBuildError` for anything else."""
    status = detail.get("build-status")
    if status not in TERMINAL:
        raise NotOurBuildError(f"build status {status!r} is not terminal")
    info = detail.get("additional-information") or {}
    variables = {
        item.get("name"): item.get("value")
        for item in (info.get("environment") or {}).get("environment-variables", [])
        if isinstance(item, dict)
    }
    request_id = variables.get("REQUEST_ID")
    attempt = str(variables.get("ATTEMPT") or "1")
    if not request_id or not str(attempt).isdigit():
        raise NotOurBuildError("the build carries no REQUEST_ID/ATTEMPT: not started by us")
    build_arn = str(detail.get("build-id", ""))
    build_id = build_arn.split(":build/", 1)[1] if ":build/" in build_arn else build_arn
    failed = next(
        (
            phase
            for phase in info.get("phases") or []
            if isinstance(phase, dict)
            and phase.get("phase-status") in ("FAILED", "FAULT", "TIMED_OUT")
        ),
        None,
    )
    context = None
    if failed:
        messages = [str(m) for m in failed.get("phase-context") or [] if str(m).strip(": ")]
        context = "; ".join(messages)[:500] or None
    logs = info.get("logs") or {}
    return BuildResult(
        build_id=build_id,
        status=status,
        request_id=str(request_id),
        attempt=int(attempt),
        failed_phase=failed.get("phase-type") if failed else None,
        phase_context=context,
        log_group=logs.get("group-name"),
        log_stream=logs.get("stream-name"),
        log_url=logs.get("deep-link"),
        duration_seconds=_duration(info, time),
    )
