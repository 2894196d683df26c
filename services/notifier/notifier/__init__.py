"""notifier: writes every lifecycle step back to the ticket."""
