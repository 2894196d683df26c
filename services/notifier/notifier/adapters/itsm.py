"""The ServiceNow and Jira writers, and the credentials they use."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from notifier.adapters.adf import adf_document
from notifier.adapters.html import journal_table
from notifier.adapters.http import Transport, TransportError
from notifier.domain.ports import Attempt, TicketUpdate
from notifier.settings import JiraWriteBack, ServiceNowWriteBack
from selfservice_contracts.events import WriteBackChannel

__all__ = [
    "BasicCredentials",
    "Credentials",
    "JiraWriter",
    "OAuthClientCredentials",
    "ServiceNowWriter",
]


class Credentials(Protocol):
    """An ``Authorization`` header value, refreshable after a 401."""

    def header(self) -> str:
        """The current header value."""
        ...

    def refresh(self) -> None:
        """Forget the cached value."""
        ...


class BasicCredentials:
    """``user:password`` from a secret loader (Secrets Manager), cached until a 401."""

    def __init__(self, load: Callable[[bool], str]) -> None:
        self._load = load
        self._value: str | None = None
        self._force = False

    def header(self) -> str:
        if self._value is None:
            self._value = self._load(self._force)
            self._force = False
        return "Basic " + base64.b64encode(self._value.encode()).decode()

    def refresh(self) -> None:
        self._value = None
        self._force = True


class OAuthClientCredentials:
    """ServiceNow OAuth 2.0 client credentials: a token from ``/oauth_token.do``, cached."""

    def __init__(self, transport: Transport, token_url: str, load: Callable[[bool], str]) -> None:
        self._transport = transport
        self._token_url = token_url
        self._load = load
        self._token: str | None = None
        self._force = False

    def header(self) -> str:
        if self._token is None:
            client_id, _, client_secret = self._load(self._force).partition(":")
            self._force = False
            response = self._transport.request(
                "POST",
                self._token_url,
                headers={"Accept": "application/json"},
                form={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": client_secret,
                },
            )
            token = (response.body or {}).get("access_token") if response.status == 200 else None  # noqa: PLR2004
            if not token:
                return ""  # the request then gets its own 401 and the credentials are refreshed
            self._token = str(token)
        return f"Bearer {self._token}"

    def refresh(self) -> None:
        self._token = None
        self._force = True


def _json_headers(credentials: Credentials) -> dict[str, str]:
    """JSON in and out, with the current credentials (both APIs want the same)."""
    return {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Authorization": credentials.header(),
    }


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _HttpWriter:
    """What both ITSM writers share: the transport, the credentials, the API's base URL."""

    def __init__(
        self, transport: Transport, credentials: Credentials, base_url: str | None
    ) -> None:
        self._transport = transport
        self._credentials = credentials
        self._base_url = base_url

    def _headers(self) -> dict[str, str]:
        return _json_headers(self._credentials)

    def refresh_credentials(self) -> None:
        """Drop cached credentials after a 401."""
        self._credentials.refresh()


class ServiceNowWriter(_HttpWriter):
    """``PATCH /api/now/table/sc_req_item/{sys_id}``: journal entry and state together."""

    channel = WriteBackChannel.SERVICENOW_TABLE

    def __init__(
        self,
        transport: Transport,
        settings: ServiceNowWriteBack,
        credentials: Credentials,
        base_url: str | None = None,
    ) -> None:
        super().__init__(transport, credentials, base_url)
        self._settings = settings

    def attempt(self, update: TicketUpdate, *, check_existing: bool) -> Attempt:
        base = self._base_url or _origin(update.ticket.url)
        sys_id = update.ticket.internal_id
        state = self._settings.states.get(update.event_type)
        try:
            if check_existing:
                query = f"element_id={sys_id}^valueLIKE{update.marker}"
                found = self._transport.request(
                    "GET",
                    f"{base}/api/now/table/sys_journal_field?sysparm_query={quote(query)}"
                    "&sysparm_limit=1&sysparm_fields=element_id",
                    headers=self._headers(),
                )
                if found.status != 200:  # noqa: PLR2004
                    return Attempt(found.status, found.headers)
                if (found.body or {}).get("result"):
                    return Attempt(200, ticket_state=state)  # written by an earlier attempt
            body: dict[str, Any] = {}
            text = (
                update.text if self._settings.tables == "text" else update.text_with(journal_table)
            )
            if self._settings.journal in ("work_notes", "both"):
                body["work_notes"] = text
            if self._settings.journal in ("comments", "both"):
                body["comments"] = text
            if state is not None:
                body["state"] = state
            response = self._transport.request(
                "PATCH",
                f"{base}/api/now/table/sc_req_item/{sys_id}?sysparm_fields=sys_id,state",
                headers=self._headers(),
                json_body=body,
            )
        except TransportError:
            return Attempt(None)
        return Attempt(response.status, response.headers, state)


class JiraWriter(_HttpWriter):
    """A comment (REST v3, ADF) or a JSM request comment, then a transition by name."""

    channel = WriteBackChannel.JIRA_COMMENT

    def __init__(
        self,
        transport: Transport,
        settings: JiraWriteBack,
        credentials: Credentials,
        base_url: str | None = None,
    ) -> None:
        super().__init__(transport, credentials, base_url)
        self._settings = settings
        self._transition_ids: dict[tuple[str, str], str] = {}
        if settings.mode == "jsm":
            self.channel = WriteBackChannel.JSM_COMMENT

    def _already_commented(self, base: str, key: str, marker: str) -> Attempt | bool:
        response = self._transport.request(
            "GET",
            f"{base}/rest/api/3/issue/{key}/comment?orderBy=-created&maxResults=50",
            headers=self._headers(),
        )
        if response.status != 200:  # noqa: PLR2004
            return Attempt(response.status, response.headers)
        comments = (response.body or {}).get("comments", [])
        return any(marker in json.dumps(comment.get("body")) for comment in comments)

    def _comment(self, base: str, update: TicketUpdate) -> Attempt:
        key = update.ticket.key
        if self._settings.mode == "jsm":
            url = f"{base}/rest/servicedeskapi/request/{key}/comment"
            body: dict[str, Any] = {"body": update.text, "public": self._settings.jsm_public}
        else:
            url = f"{base}/rest/api/3/issue/{key}/comment"
            body = {"body": adf_document(update)}
        response = self._transport.request("POST", url, headers=self._headers(), json_body=body)
        return Attempt(response.status, response.headers)

    def _transition(self, base: str, key: str, name: str) -> Attempt:
        cache_key = (key.split("-", maxsplit=1)[0], name)
        if cache_key not in self._transition_ids:
            listed = self._transport.request(
                "GET", f"{base}/rest/api/3/issue/{key}/transitions", headers=self._headers()
            )
            if listed.status != 200:  # noqa: PLR2004
                return Attempt(listed.status, listed.headers)
            ids = {t.get("name"): t.get("id") for t in (listed.body or {}).get("transitions", [])}
            if name not in ids:
                return Attempt(200)  # not available from this status (already moved): nothing to do
            self._transition_ids[cache_key] = str(ids[name])
        response = self._transport.request(
            "POST",
            f"{base}/rest/api/3/issue/{key}/transitions",
            headers=self._headers(),
            json_body={"transition": {"id": self._transition_ids[cache_key]}},
        )
        if response.status == 400:  # noqa: PLR2004 - ids differ per workflow: look it up again
            del self._transition_ids[cache_key]
        return Attempt(response.status, response.headers, name)

    def attempt(self, update: TicketUpdate, *, check_existing: bool) -> Attempt:
        base = self._base_url or _origin(update.ticket.url)
        key = update.ticket.key
        try:
            done = False
            if check_existing and self._settings.mode == "comment":
                found = self._already_commented(base, key, update.marker)
                if isinstance(found, Attempt):
                    return found
                done = found
            if not done:
                commented = self._comment(base, update)
                if commented.status is None or not 200 <= commented.status < 300:  # noqa: PLR2004
                    return commented
            name = self._settings.transitions.get(update.event_type)
            if name is None:
                return Attempt(201)
            return self._transition(base, key, name)
        except TransportError:
            return Attempt(None)
