"""What every benchmark shares: the machine description and robust statistics."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IN_PROCESS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_EC2_METADATA_DISABLED": "true",
    # Untraced: no daemon, and not "in Lambda" for the tracer (no LAMBDA_TASK_ROOT).
    "POWERTOOLS_TRACE_DISABLED": "1",
}
"""What an in-process benchmark sets besides a function's own environment (AWS is
stubbed in memory: the credentials are placeholders nothing checks)."""


def function_environment(logical_id: str, values: dict[str, str] | None = None) -> dict[str, str]:
    """A function's template environment (:meth:`Template.function_environment`), plus
    :data:`IN_PROCESS`: what an in-process benchmark of that function runs with."""
    from selfservice.templates import load_platform

    platform = load_platform(ROOT / "template.yaml")
    return {**IN_PROCESS, **platform.function_environment(logical_id, values)}


def machine() -> str:
    """One line naming the machine the figures come from."""
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{platform.system()} {platform.machine()}"
    )


def load_average() -> float:
    """The one-minute load average (0 where the system does not report it)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    """The median."""
    return statistics.median(values)


@contextlib.contextmanager
def stdout_silenced() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null: handlers still format and write their log
    and metric lines (part of the cost measured), nobody has to read them."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)
