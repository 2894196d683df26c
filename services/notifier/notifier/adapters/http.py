"""One HTTP transport (urllib3, shipped with botocore) with timeouts and no hidden retries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import urllib3

__all__ = ["HttpResponse", "Transport", "TransportError"]


class TransportError(RuntimeError):
    """No response: refused, reset, timed out."""


@dataclass(frozen=True)
class HttpResponse:
    """Status, headers and the decoded JSON body (None if empty or not JSON)."""

    status: int
    headers: dict[str, str]
    body: Any


class Transport:
    """Requests with connect/read timeouts; retrying is the caller's decision."""

    def __init__(self, connect_timeout: float = 3.0, read_timeout: float = 10.0) -> None:
        self._pool = urllib3.PoolManager(
            retries=False, timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        json_body: Any = None,
        form: dict[str, str] | None = None,
    ) -> HttpResponse:
        """One request; :class:`TransportError` when nothing answered."""
        try:
            if form is not None:
                response = self._pool.request_encode_body(
                    method, url, fields=form, headers=headers, encode_multipart=False
                )
            else:
                body = None if json_body is None else json.dumps(json_body).encode()
                response = self._pool.request(method, url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            target = url.split("?", maxsplit=1)[0]
            raise TransportError(f"{method} {target}: {type(exc).__name__}") from exc
        try:
            decoded = json.loads(response.data) if response.data else None
        except ValueError:
            decoded = None
        return HttpResponse(response.status, dict(response.headers), decoded)
