"""intake: authenticates ITSM webhooks and turns them into one validated request event."""
