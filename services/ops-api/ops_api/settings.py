"""The ops API's deployment configuration: a JSON document, validated by these models.

It lives in an SSM parameter (``OPS_CONFIG_PARAMETER``) so a platform team changes the
command allow-list without a deployment. ``config/ops-api.example.json`` is a complete
example (a test keeps it valid). A document that names no allow-list gets
:data:`DEFAULT_ALLOWLIST`: read-only diagnostics and nothing else.

Every allow-list entry is either an exact command or an *anchored* regular expression
(``^…$``, matched against the whole command). Shell metacharacters (``;``, ``&``,
``|``, backticks, ``$``, redirections, newlines) are refused in a command even when a
pattern matches it, unless the entry sets ``"shell": true`` — so a pattern such as
``^systemctl status .+$`` cannot be turned into ``systemctl status x; rm -rf /``.
"""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_ALLOWLIST",
    "DEFAULT_COMMANDS",
    "SHELL_METACHARACTERS",
    "AllowEntry",
    "OpsSettings",
    "shell_metacharacters",
]

SHELL_METACHARACTERS = re.compile(r"[;&|`$<>\n\r\x00\\]")
"""Characters that chain, substitute, redirect, expand or continue a shell command."""

BucketName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
Command = Annotated[str, Field(min_length=1, max_length=1000)]


def shell_metacharacters(command: str) -> list[str]:
    """The distinct shell metacharacters in ``command``, in order of appearance."""
    found: list[str] = []
    for match in SHELL_METACHARACTERS.finditer(command):
        if match.group() not in found:
            found.append(match.group())
    return found


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AllowEntry(_Settings):
    """One allowed command: ``command`` (exact) or ``pattern`` (anchored regex)."""

    command: Command | None = None
    pattern: Annotated[str | None, Field(max_length=500)] = None
    shell: bool = False
    """Allow shell metacharacters in commands this entry admits (use sparingly)."""
    description: Annotated[str, Field(max_length=200)] = ""

    @model_validator(mode="after")
    def _exactly_one_form(self) -> Self:
        if (self.command is None) == (self.pattern is None):
            raise ValueError("an allow-list entry has exactly one of command or pattern")
        if self.pattern is not None:
            if not (self.pattern.startswith("^") and self.pattern.endswith("$")):
                raise ValueError(f"pattern {self.pattern!r} must be anchored with ^ and $")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a valid regex: {exc}") from exc
        if self.command is not None and not self.shell and shell_metacharacters(self.command):
            raise ValueError(
                f"command {self.command!r} contains shell metacharacters; "
                'set "shell": true on the entry if that is really intended'
            )
        return self

    def admits(self, command: str) -> bool:
        """Whether this entry matches ``command`` (metacharacters are checked apart)."""
        if self.command is not None:
            return command == self.command
        return re.fullmatch(str(self.pattern), command) is not None


DEFAULT_ALLOWLIST: tuple[AllowEntry, ...] = (
    AllowEntry(command="uptime", description="load and uptime"),
    AllowEntry(command="hostname", description="host name"),
    AllowEntry(command="df -h", description="disk usage"),
    AllowEntry(command="free -m", description="memory"),
    AllowEntry(command="uname -a", description="kernel"),
    AllowEntry(command="cat /etc/os-release", description="distribution"),
    AllowEntry(
        pattern=r"^systemctl status [A-Za-z0-9@._-]{1,100}(\.service)?$",
        description="state of one unit",
    ),
    AllowEntry(
        pattern=r"^journalctl -u [A-Za-z0-9@._-]{1,100} -n [0-9]{1,4} --no-pager$",
        description="recent log lines of one unit",
    ),
)
"""Read-only diagnostics: what an operator may run when nothing else is configured."""

DEFAULT_COMMANDS: tuple[str, ...] = ("uptime", "hostname", "df -h", "free -m")
"""The diagnostic set run when a request names no commands."""


class OpsSettings(_Settings):
    """The whole document."""

    version: int = Field(default=1, ge=1, le=1)
    allowlist: tuple[AllowEntry, ...] = Field(default=DEFAULT_ALLOWLIST, max_length=200)
    default_commands: tuple[Command, ...] = Field(
        default=DEFAULT_COMMANDS, min_length=1, max_length=20
    )
    max_targets: int = Field(default=20, ge=1, le=50)
    """The most instances one tag selection may reach (SendCommand takes 50 ids)."""
    wait_seconds: float = Field(default=20.0, gt=0, le=25)
    """How long a call waits for results (the HTTP API cuts integrations at 29 s)."""
    execution_timeout_seconds: int = Field(default=600, ge=30, le=172_800)
    """``executionTimeout`` of the shell documents: the agent stops the script after this."""
    output_limit: int = Field(default=4000, ge=100, le=24_000)
    """Characters of stdout/stderr per instance in a response (SSM keeps 24,000)."""
    output_s3_bucket: BucketName | None = None
    """Where the agent writes the full output (the instance role needs s3:PutObject)."""
    output_s3_prefix: Annotated[str, Field(max_length=200)] = "ops-api/"
    poll_initial_seconds: float = Field(default=0.25, gt=0, le=5)
    poll_max_seconds: float = Field(default=2.0, gt=0, le=10)

    @field_validator("default_commands")
    @classmethod
    def _no_blank(cls, commands: tuple[str, ...]) -> tuple[str, ...]:
        if any(not c.strip() for c in commands):
            raise ValueError("default commands must not be blank")
        return commands

    @model_validator(mode="after")
    def _defaults_are_allowed(self) -> Self:
        for command in self.default_commands:
            entry = self.entry_for(command)
            if entry is None:
                raise ValueError(f"default command {command!r} is not on the allow-list")
            if shell_metacharacters(command) and not entry.shell:
                raise ValueError(f"default command {command!r} contains shell metacharacters")
        return self

    def entry_for(self, command: str) -> AllowEntry | None:
        """The first allow-list entry admitting ``command``."""
        return next((entry for entry in self.allowlist if entry.admits(command)), None)
