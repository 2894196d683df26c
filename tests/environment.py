"""A function's environment as its template gives it: what a test invokes a handler with.

Tests never type a function's environment by hand; they take the template's
(:meth:`selfservice.templates.Template.function_environment`) and name only what the
test itself decides: the resources it created (a table, a queue, a secret) and, where the
test is about logging, the ``LogLevel`` parameter. A name the template does not set is an
error, so a test cannot drift from the template.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import pytest

from selfservice.templates import Template, load_platform

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def _platform() -> Template:
    return load_platform(ROOT / "template.yaml")


def function_environment(
    logical_id: str, values: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``logical_id``'s environment from the templates, with ``values`` for the names the
    test resolves itself (resource names, a parameter it sets)."""
    return _platform().function_environment(logical_id, values)


def use_function_environment(
    monkeypatch: pytest.MonkeyPatch, logical_id: str, values: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Set :func:`function_environment` in ``os.environ`` for the test; returns it."""
    environment = function_environment(logical_id, values)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment
