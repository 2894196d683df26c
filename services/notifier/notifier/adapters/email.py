"""E-mail write-back through SES, for Jira sites that take updates by mail.

Jira's mail handler attaches a message to the issue whose key is the leftmost key in
the subject, so the key leads it. Text and HTML bodies carry the same message: a plan's
tables as aligned plain text in one, as HTML tables in the other.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from notifier.adapters.html import html_table
from notifier.domain.messages import Message
from notifier.domain.ports import Attempt, TicketUpdate
from notifier.settings import EmailWriteBack
from selfservice_contracts.events import WriteBackChannel

if TYPE_CHECKING:
    from mypy_boto3_ses.client import SESClient

__all__ = ["EmailWriter", "html_body"]

_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException"}
_REFUSED = {"MessageRejected", "MailFromDomainNotVerified", "ConfigurationSetDoesNotExist"}


def html_body(message: Message, marker: str) -> str:
    """The message as a small HTML document (every value escaped)."""
    parts = [f"<p><strong>[selfservice] {html.escape(message.title)}</strong></p>"]
    for index, line in enumerate(message.lines):
        if index in message.bullets:
            items = "".join(f"<li>{html.escape(item)}</li>" for item in message.bullets[index])
            parts.append(f"<ul>{items}</ul>")
        elif index in message.tables:
            parts.append(html_table(message.tables[index]))
        elif line:
            parts.append(f"<p>{html.escape(line)}</p>")
    parts.append(f"<p><small>selfservice event {html.escape(marker)}</small></p>")
    return "<html><body>" + "".join(parts) + "</body></html>"


class EmailWriter:
    """Sends one mail per update (SES has no read-back: the per-event marker dedupes)."""

    channel = WriteBackChannel.EMAIL

    def __init__(self, client: SESClient, settings: EmailWriteBack) -> None:
        self._client = client
        self._settings = settings

    def attempt(self, update: TicketUpdate, *, check_existing: bool) -> Attempt:
        """Send the mail; SES errors are mapped to the statuses the retry decision knows."""
        try:
            self._client.send_email(
                Source=self._settings.from_address,
                Destination={"ToAddresses": [self._settings.to_address]},
                Message={
                    "Subject": {
                        "Data": f"{update.ticket.key} {update.message.title}",
                        "Charset": "UTF-8",
                    },
                    "Body": {
                        "Text": {"Data": update.text, "Charset": "UTF-8"},
                        "Html": {
                            "Data": html_body(update.message, update.marker),
                            "Charset": "UTF-8",
                        },
                    },
                },
            )
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in _THROTTLED:
                return Attempt(429)
            return Attempt(400 if code in _REFUSED else 500)
        except BotoCoreError:
            return Attempt(None)
        return Attempt(200)

    def refresh_credentials(self) -> None:
        """AWS credentials refresh themselves."""
